"""The data model: texts with labels in CHARACTER offsets, shared by every task.

Offsets are Python string indices: `text[start:end]` is the mention (end exclusive).
Token positions never appear here; they live only between encoding and decoding.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

TRIGGER_ROLE = "触发词"  # DuEE: the trigger is one more role of each event type


@dataclass(frozen=True, order=True)
class Span:
    """A labelled character span `[start, end)`; `label` is an entity type or a role."""

    start: int
    end: int
    label: str

    def text_in(self, text: str) -> str:
        """The mention: `text[start:end]`."""
        return text[self.start : self.end]


@dataclass(frozen=True, order=True)
class Relation:
    """A triple. `subject.label` is the subject type; each object slot's label is its type.

    `objects` holds (slot, span) pairs sorted by slot; DuIE 1.0 and simple DuIE 2.0 objects
    have the single slot "@value", complex DuIE 2.0 objects add slots such as "inWork".
    """

    subject: Span
    predicate: str
    objects: tuple[tuple[str, Span], ...]

    @property
    def object(self) -> Span:
        """The span of the "@value" object slot."""
        return dict(self.objects)["@value"]


@dataclass(frozen=True)
class Event:
    """An event: its type and its arguments; the trigger is the argument with role 触发词."""

    type: str
    arguments: frozenset[Span]

    @property
    def trigger(self) -> Span | None:
        """The first argument with role 触发词 (in span order), or None if the event has none."""
        return next((a for a in sorted(self.arguments) if a.label == TRIGGER_ROLE), None)


@dataclass
class Example:
    """One input line: its text, its gold labels (for the task at hand) and where it came from."""

    text: str
    spans: tuple[Span, ...] = ()
    relations: tuple[Relation, ...] = ()
    events: tuple[Event, ...] = ()
    id: str | None = None
    source: str = "<memory>"
    line: int = 0
    meta: dict[str, Any] = field(default_factory=dict)  # reader notes, e.g. DuIE "unlocated", DuEE "aliases"

    def json_id(self) -> Any:
        """The line's "id" as its JSON value (0 stays 0): `meta["json_id"]` when the reader kept it, else `id`."""
        return self.meta.get("json_id", self.id)


LABEL_KEYS = {"ner": "s", "relation": "r", "event": "e"}  # task -> its key in labels_to_json


def labels_to_json(example: Example) -> str:
    """The gold labels of an example as compact JSON (the encoded corpus stores them beside the text).

    {"s": [[start, end, label], ...], "r": [[subject, predicate, [[slot, span], ...]], ...],
     "e": [[type, [span, ...]], ...]}, each span as [start, end, label]; empty keys are left out.
    """
    out: dict[str, Any] = {}
    if example.spans:
        out["s"] = [[s.start, s.end, s.label] for s in example.spans]
    if example.relations:
        out["r"] = [[_span_json(r.subject), r.predicate, [[slot, _span_json(o)] for slot, o in r.objects]]
                    for r in example.relations]
    if example.events:
        out["e"] = [[ev.type, [_span_json(a) for a in sorted(ev.arguments)]] for ev in example.events]
    return json.dumps(out, ensure_ascii=False, separators=(",", ":"))


def example_from_json(text: str, labels: str, *, id: str | None = None, source: str = "<memory>",
                      line: int = 0) -> Example:
    """Inverse of labels_to_json: the Example of `text` with the labels it wrote."""
    obj = json.loads(labels)
    return Example(
        text=text,
        spans=tuple(Span(*s) for s in obj.get("s", ())),
        relations=tuple(Relation(Span(*subject), predicate, tuple((slot, Span(*o)) for slot, o in objects))
                        for subject, predicate, objects in obj.get("r", ())),
        events=tuple(Event(t, frozenset(Span(*a) for a in arguments)) for t, arguments in obj.get("e", ())),
        id=id, source=source, line=line,
    )


def _span_json(span: Span) -> list[Any]:
    return [span.start, span.end, span.label]


def _shifted(span: Span, offset: int) -> Span:
    return Span(span.start + offset, span.end + offset, span.label)


def joined(examples: list[Example], separator: str = "\n") -> Example:
    """One example whose text is the examples' texts joined by `separator`, with every gold label shifted along.

    Used to pack several short training examples into one window (data.pack): each label keeps
    its own characters, and no label joins two examples.
    """
    spans: list[Span] = []
    relations: list[Relation] = []
    events: list[Event] = []
    offset = 0
    for example in examples:
        spans += [_shifted(s, offset) for s in example.spans]
        relations += [Relation(_shifted(r.subject, offset), r.predicate,
                               tuple((slot, _shifted(o, offset)) for slot, o in r.objects)) for r in example.relations]
        events += [Event(e.type, frozenset(_shifted(a, offset) for a in e.arguments)) for e in example.events]
        offset += len(example.text) + len(separator)
    return Example(text=separator.join(e.text for e in examples), spans=tuple(spans), relations=tuple(relations),
                   events=tuple(events))
