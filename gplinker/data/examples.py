"""The data model: texts with labels in CHARACTER offsets, shared by every task.

Offsets are Python string indices: `text[start:end]` is the mention (end exclusive).
Token positions never appear here; they live only between encoding and decoding.
"""

from __future__ import annotations

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
