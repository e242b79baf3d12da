"""Leaderboard submission lines: for one input line, exactly what each benchmark accepts, nothing else.

Forms (one JSON object per input line, in input order; `--format` of `gplinker predict`):

- clue (CLUENER2020, CLUEbenchmark/CLUENER2020 README "提交格式"):
  {"id": ..., "label": {type: {surface: [[start, end_inclusive], ...]}}}; no text, end inclusive.
- duie (DuIE 2.0, LIC2020 / PaddleNLP DuIE README; the form of the gold file without extras):
  {"text": ..., "spo_list": [{"predicate", "subject", "subject_type",
                              "object": {"@value": ..., slot: ...}, "object_type": {"@value": ..., slot: ...}}]}
  DuIE 1.0 (LIC2019), for models trained on it (schema.relation_format "duie1"): the same with
  plain strings, "object": "...", "object_type": "...". Neither version carries ids.
- duee (DuEE 1.0, PaddleNLP DuEE `duee_1_postprocess.py`, bojone's GPLinker DuEE script):
  {"id": ..., "event_list": [{"event_type", "arguments": [{"role", "argument"}]}]}. The trigger is not
  submitted: the official score is on arguments alone (metrics.duee_official), so role 触发词 is left out.

No scores, no offsets (other than CLUENER's), and items that read the same in a form collapse
into one (two DuIE triples located at different offsets, two events of one type with the same
arguments). Ids are written with their JSON type (0 stays 0, "0" stays "0").
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gplinker.data.examples import TRIGGER_ROLE, Event, Relation, Span
from gplinker.errors import ConfigError

RECORDS = "records"
TASK_OF_FORMAT = {"clue": "ner", "duie": "relation", "duee": "event"}  # submission form -> the task it scores
FORMATS = (RECORDS, *TASK_OF_FORMAT)
NEEDS_ID = {"clue": "CLUENER", "duee": "DuEE"}  # leaderboards that match predictions to inputs by id
VALUE_SLOT = "@value"


def check_format(fmt: str, task: str) -> None:
    """ConfigError unless `fmt` is records or the submission form of `task`."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown output format '{fmt}' (known: {', '.join(FORMATS)})")
    if fmt != RECORDS and TASK_OF_FORMAT[fmt] != task:
        fits = next(f for f, t in TASK_OF_FORMAT.items() if t == task)
        raise ConfigError(f"--format {fmt} is the submission form of the {TASK_OF_FORMAT[fmt]} task, but the "
                          f"model is a {task} model (its form is --format {fits}, or records)")


def clue_line(ident: Any, text: str, spans: Iterable[Span]) -> dict[str, Any]:
    """CLUENER: {"id", "label": {type: {surface: [[start, end_inclusive], ...]}}}, spans in text order."""
    label: dict[str, dict[str, list[list[int]]]] = {}
    for span in sorted(set(spans), key=lambda s: (s.start, s.end, s.label)):
        positions = label.setdefault(span.label, {}).setdefault(span.text_in(text), [])
        positions.append([span.start, span.end - 1])
    return {"id": ident, "label": label}


def duie_line(text: str, relations: Iterable[Relation], plain_strings: bool) -> dict[str, Any]:
    """DuIE: {"text", "spo_list"}; objects as slot dicts (2.0) or, with `plain_strings`, strings (1.0)."""
    spo_list: list[dict[str, Any]] = []
    for relation in sorted(set(relations)):
        objects = dict(relation.objects)
        spo: dict[str, Any] = {"predicate": relation.predicate, "subject": relation.subject.text_in(text),
                               "subject_type": relation.subject.label}
        if plain_strings and set(objects) == {VALUE_SLOT}:
            spo.update(object=objects[VALUE_SLOT].text_in(text), object_type=objects[VALUE_SLOT].label)
        else:
            spo.update(object={slot: o.text_in(text) for slot, o in objects.items()},
                       object_type={slot: o.label for slot, o in objects.items()})
        if spo not in spo_list:
            spo_list.append(spo)
    return {"text": text, "spo_list": spo_list}


def duee_line(ident: Any, text: str, events: Iterable[Event]) -> dict[str, Any]:
    """DuEE: {"id", "event_list": [{"event_type", "arguments": [{"role", "argument"}]}]}, trigger left out."""
    event_list: list[dict[str, Any]] = []
    for event in sorted(set(events), key=_event_order):
        pairs = {(a.label, a.text_in(text)): None  # (role, argument), in text order, each once
                 for a in sorted(event.arguments, key=lambda s: (s.start, s.end, s.label)) if a.label != TRIGGER_ROLE}
        entry = {"event_type": event.type, "arguments": [{"role": r, "argument": a} for r, a in pairs]}
        if entry not in event_list:
            event_list.append(entry)
    return {"id": ident, "event_list": event_list}


def _event_order(event: Event) -> tuple[int, str, list[Span]]:
    trigger = event.trigger
    return (trigger.start if trigger is not None else -1), event.type, sorted(event.arguments)


def submission_line(fmt: str, ident: Any, text: str, items: Iterable[Any],
                    plain_strings: bool = False) -> dict[str, Any]:
    """The submission object of one line in form `fmt` (clue | duie | duee) from its predicted items."""
    if fmt == "clue":
        return clue_line(ident, text, items)
    if fmt == "duie":
        return duie_line(text, items, plain_strings)
    if fmt == "duee":
        return duee_line(ident, text, items)
    raise ValueError(f"no submission form '{fmt}'")
