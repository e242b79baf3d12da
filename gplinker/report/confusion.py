"""Type confusion: predicted items that sit exactly where a gold item sits but carry another label.

An item's place is what is left of it without its label: a span's offsets (NER), the subject's
and objects' offsets of a triple (relation, label = predicate), the trigger's offsets (event,
label = event type). A false positive whose place matches a missed gold item is a confusion of
the gold label with the predicted one, counted once per such pair.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from typing import Any

from gplinker.data.examples import Event, Example, Relation, Span
from gplinker.tasks.base import Prediction, Task


def place(item: Any) -> Hashable:
    """Where an item is in its text, whatever its label."""
    if isinstance(item, Span):
        return (item.start, item.end)
    if isinstance(item, Relation):
        return ((item.subject.start, item.subject.end), tuple((s, o.start, o.end) for s, o in item.objects))
    if isinstance(item, Event):
        trigger = item.trigger
        return None if trigger is None else (trigger.start, trigger.end)
    raise TypeError(f"no place for a {type(item).__name__}")


def type_confusion(task: Task, examples: Sequence[Example],
                   predictions: Sequence[Prediction]) -> Counter[tuple[str, str]]:
    """(gold label, predicted label) -> how many wrong-typed items, over all examples."""
    counts: Counter[tuple[str, str]] = Counter()
    for example, prediction in zip(examples, predictions):
        gold, pred = set(task.gold(example)), set(prediction)
        missed: dict[Hashable, list[str]] = {}
        for item in gold - pred:
            if place(item) is not None:
                missed.setdefault(place(item), []).append(task.label_of(item))
        for item in pred - gold:
            for gold_label in missed.get(place(item), []):
                if gold_label != task.label_of(item):
                    counts[gold_label, task.label_of(item)] += 1
    return counts
