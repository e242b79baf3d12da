"""DuIE 1.0 / 2.0 line parsers: triples given as strings are located in the text.

DuIE gives no offsets, only the subject and object strings. Every occurrence of each string is
found (`str.find` advancing by one character, so overlapping occurrences count too), then one
occurrence is chosen deterministically:

- subject and "@value" object: among all (subject, object) occurrence pairs, prefer pairs whose
  spans do not overlap, then the nearest (minimal |subject_start - object_start|), then the
  smaller subject start, then the smaller object start. The no-overlap preference keeps a
  subject from being matched inside its own object (e.g. a song title inside the album title
  that repeats it) when a separate occurrence exists; overlapping pairs are used only when no
  other pair exists.
- every other slot of a complex DuIE 2.0 object: located on its own, choosing the occurrence that
  does not overlap the chosen subject, then the nearest to the subject start, then the smaller start.

A string that does not occur exactly is searched again ignoring case (DuIE 1.0 lowercases some
Latin-script mentions); such triples are counted in `meta["ignoring_case"]`. A triple that still
cannot be located (or has an empty mention) is left out of `relations` and recorded in
`meta["unlocated"]` as `(reason, spo dict)`; `meta["located"]` counts the located SPO entries and
`meta["duplicates"]` those that repeat a relation already read from the same line, so that
`located + len(unlocated) == len(spo_list)`. Malformed fields raise `LineError`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from gplinker.data.examples import Example, Relation, Span
from gplinker.data.formats import LineError, example_id, require, require_text

VALUE_SLOT = "@value"
EMPTY_MENTION = "empty mention"
SUBJECT_NOT_IN_TEXT = "subject not in text"
OBJECT_NOT_IN_TEXT = "object not in text"

Objects = dict[str, tuple[str, str]]  # object slot -> (mention, type)


def occurrences(text: str, mention: str) -> list[int]:
    """Every start index of `mention` in `text`, overlapping occurrences included."""
    starts, i = [], text.find(mention)
    while i != -1 and mention:
        starts.append(i)
        i = text.find(mention, i + 1)
    return starts


def occurrences_ignoring_case(text: str, mention: str) -> list[int]:
    """Every start index i where `text[i:i+len(mention)]` equals `mention` up to case."""
    n, target = len(mention), mention.lower()
    return [i for i in range(len(text) - n + 1) if n and text[i : i + n].lower() == target]


def _overlaps(a: int, a_len: int, b: int, b_len: int) -> bool:
    """Whether [a, a + a_len) and [b, b + b_len) share a character."""
    return a < b + b_len and b < a + a_len


def nearest_pair(subjects: list[int], s_len: int, objects: list[int], o_len: int) -> tuple[int, int]:
    """The (subject start, object start) pair: non-overlapping first, then nearest, then leftmost."""
    return min(
        ((s, o) for s in subjects for o in objects),
        key=lambda p: (_overlaps(p[0], s_len, p[1], o_len), abs(p[0] - p[1]), p[0], p[1]),
    )


def nearest_to(anchor: int, anchor_len: int, starts: list[int], length: int) -> int:
    """The start in `starts` not overlapping the anchor span if possible, then nearest, then leftmost."""
    return min(starts, key=lambda s: (_overlaps(s, length, anchor, anchor_len), abs(s - anchor), s))


def _find(text: str, mention: str) -> tuple[list[int], bool]:
    """Occurrences of `mention`, falling back to a case-insensitive search; flag says which."""
    starts = occurrences(text, mention)
    if starts:
        return starts, False
    return occurrences_ignoring_case(text, mention), True


def locate_relation(
    text: str, subject: str, subject_type: str, predicate: str, objects: Objects
) -> tuple[Relation | None, str, bool]:
    """Locate one triple; `objects` maps slot -> (mention, type). Returns (relation, reason, ignoring_case)."""
    if not subject or any(not mention for mention, _ in objects.values()):
        return None, EMPTY_MENTION, False
    subject_starts, s_case = _find(text, subject)
    if not subject_starts:
        return None, SUBJECT_NOT_IN_TEXT, False
    found = {slot: _find(text, mention) for slot, (mention, _) in objects.items()}
    if any(not starts for starts, _ in found.values()):
        return None, OBJECT_NOT_IN_TEXT, False
    value, _ = objects[VALUE_SLOT]
    s, o = nearest_pair(subject_starts, len(subject), found[VALUE_SLOT][0], len(value))
    spans = {VALUE_SLOT: Span(o, o + len(value), objects[VALUE_SLOT][1])}
    for slot, (mention, kind) in objects.items():
        if slot != VALUE_SLOT:
            start = nearest_to(s, len(subject), found[slot][0], len(mention))
            spans[slot] = Span(start, start + len(mention), kind)
    relation = Relation(Span(s, s + len(subject), subject_type), predicate, tuple(sorted(spans.items())))
    return relation, "", s_case or any(case for _, case in found.values())


def _objects_v2(spo: dict[str, Any]) -> Objects:
    """Slot -> (mention, type) for a DuIE 2.0 SPO, validating the object and object_type dicts."""
    obj, types = spo.get("object"), spo.get("object_type")
    if not isinstance(obj, dict):
        hint = " (a plain string is DuIE 1.0: use the duie1 format)" if isinstance(obj, str) else ""
        raise LineError(f"'object' must be an object with '@value', got {type(obj).__name__}{hint}")
    if not isinstance(types, dict):
        raise LineError(f"'object_type' must be an object, got {type(types).__name__}")
    if VALUE_SLOT not in obj:
        raise LineError(f"'object' has no '@value' slot (slots: {sorted(obj)})")
    slots: Objects = {}
    for slot, mention in obj.items():
        if not isinstance(mention, str):
            raise LineError(f"object slot {slot!r} must be a string, got {type(mention).__name__}")
        if not isinstance(types.get(slot), str):
            raise LineError(f"'object_type' has no string type for slot {slot!r}")
        slots[slot] = (mention, types[slot])
    return slots


def _objects_v1(spo: dict[str, Any]) -> Objects:
    """{"@value": (mention, type)} for a DuIE 1.0 SPO."""
    if isinstance(spo.get("object"), dict):
        raise LineError("'object' is an object, which is DuIE 2.0: use the duie2 format")
    return {VALUE_SLOT: (require(spo, "object", str), require(spo, "object_type", str))}


def _parse_duie(obj: dict[str, Any], objects_of: Callable[[dict[str, Any]], Objects]) -> Example:
    """Shared body of the two DuIE parsers; `objects_of(spo)` reads the version's object field."""
    text = require_text(obj)
    spo_list = obj.get("spo_list")
    if spo_list is None:
        return Example(text=text, id=example_id(obj))
    if not isinstance(spo_list, list):
        raise LineError(f"field 'spo_list' must be a list, got {type(spo_list).__name__}")
    relations: list[Relation] = []
    unlocated: list[tuple[str, dict[str, Any]]] = []
    ignoring_case = 0
    for k, spo in enumerate(spo_list):
        if not isinstance(spo, dict):
            raise LineError(f"spo_list[{k}] must be an object, got {type(spo).__name__}")
        try:
            subject = require(spo, "subject", str)
            subject_type = require(spo, "subject_type", str)
            predicate = require(spo, "predicate", str)
            objects = objects_of(spo)
        except LineError as exc:
            raise LineError(f"spo_list[{k}]: {exc}") from None
        relation, reason, case = locate_relation(text, subject, subject_type, predicate, objects)
        if relation is None:
            unlocated.append((reason, spo))
            continue
        relations.append(relation)
        ignoring_case += case
    meta: dict[str, Any] = {
        "located": len(relations),
        "unlocated": unlocated,
        "ignoring_case": ignoring_case,
        "duplicates": len(relations) - len(set(relations)),
    }
    return Example(text=text, relations=tuple(sorted(set(relations))), id=example_id(obj), meta=meta)


def parse_duie2(obj: dict[str, Any], path: str = "") -> Example:  # noqa: ARG001 -- LineParser signature
    """DuIE 2.0: {"text", "spo_list": [{subject, subject_type, predicate, object: {slot}, object_type: {slot}}]}."""
    return _parse_duie(obj, _objects_v2)


def parse_duie1(obj: dict[str, Any], path: str = "") -> Example:  # noqa: ARG001 -- LineParser signature
    """DuIE 1.0: {"text", "spo_list": [{subject, subject_type, predicate, object, object_type}]} (plain strings)."""
    return _parse_duie(obj, _objects_v1)


def location_report(examples: Iterable[Example]) -> Counter[str]:
    """Count located SPOs, duplicates, case-insensitive matches and unlocated SPOs by reason."""
    counts: Counter[str] = Counter()
    for example in examples:
        counts["located"] += example.meta.get("located", 0)
        counts["duplicates"] += example.meta.get("duplicates", 0)
        counts["ignoring_case"] += example.meta.get("ignoring_case", 0)
        for reason, _ in example.meta.get("unlocated", ()):
            counts[reason] += 1
    return counts
