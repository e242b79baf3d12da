"""A prediction record of one example with its items marked: none (correct), "fp" (found, not gold), "miss" (not found).

The records are those of `gplinker predict` (task.record), so the page's script draws them; the
marks tell it how (render.js).
"""

from __future__ import annotations

from typing import Any

from gplinker.data.examples import Example
from gplinker.tasks.base import Prediction, Task

ITEM_LISTS = ("entities", "spo_list", "event_list")


def marked_record(task: Task, example: Example, prediction: Prediction) -> dict[str, Any]:
    """The record of `example` holding its correct items, its false positives and its misses, each marked."""
    gold, found = set(task.gold(example)), set(prediction)
    items: list[tuple[Any, float | None, str | None]] = [(x, s, None if x in gold else "fp")
                                                         for x, s in prediction.items()]
    items += [(x, None, "miss") for x in sorted(gold - found, key=repr)]
    out: list[dict[str, Any]] = []
    for item, score, mark in items:
        entry = item_entry(task, example, item, 0.0 if score is None else score)
        if score is None:
            entry.pop("score", None)
        if mark is not None:
            entry["mark"] = mark
        out.append(entry)
    record = task.record(Example(text=example.text, id=example.id), {})
    key = next(k for k in ITEM_LISTS if k in record)
    order = {"entities": lambda e: (e["start"], e["end"], e["type"])}.get(key)
    record[key] = sorted(out, key=order) if order else out
    if example.source:
        record["source"] = f"{example.source}:{example.line}"
    return record


def item_entry(task: Task, example: Example, item: Any, score: float) -> dict[str, Any]:
    """One item as it appears in a prediction record (with its score)."""
    record = task.record(Example(text=example.text), {item: score})
    entries: list[dict[str, Any]] = next(record[k] for k in ITEM_LISTS if k in record)
    return entries[0]
