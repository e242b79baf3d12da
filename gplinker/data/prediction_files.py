"""Reading a prediction or submission file line by line beside its gold file (`gplinker score`).

Line k of the prediction file (blank lines aside) predicts gold example k: the two files must have
as many lines; where both lines carry an id, the ids must be equal, and where both carry a text,
the texts must be equal. Either mismatch is a DataError naming both files and lines. A line
without a text (CLUENER and DuEE submissions) takes its gold line's, so the usual readers parse it.

Forms (`--format` of `gplinker score`; auto takes the first line with labels):
- ner: records (`entities`, our records) | clue (`label`: CLUENER gold or submission);
- relation: records | duie (`spo_list`: our records, DuIE submissions or gold, 2.0 or 1.0 per line);
- event: records (`event_list` with triggers and offsets: our records, DuEE gold) | duee (the DuEE
  submission: arguments as strings, no trigger, no offsets). A submission argument is placed at
  its first occurrence in the text: the official DuEE score compares strings, so where it sits
  does not matter to it; the strict scores, which need offsets and triggers, are not computed from
  this form (`SUBMISSION_ONLY`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gplinker.data.duee import parse_duee
from gplinker.data.duie import parse_duie1, parse_duie2
from gplinker.data.examples import TRIGGER_ROLE, Event, Example, Span
from gplinker.data.formats import LineError, example_id, iter_json_lines, parse_cluener, parse_spans, require
from gplinker.errors import ConfigError, DataError

FORMS = {"ner": ("records", "clue"), "relation": ("records", "duie"), "event": ("records", "duee")}
SUBMISSION_ONLY = {("event", "duee")}  # forms without the offsets the strict scores need


def parse_duie_either(obj: dict[str, Any], path: str = "") -> Example:
    """A DuIE line of either version: 1.0 when its first SPO's object is a plain string."""
    spo_list = obj.get("spo_list")
    first = spo_list[0] if isinstance(spo_list, list) and spo_list and isinstance(spo_list[0], dict) else {}
    return (parse_duie1 if isinstance(first.get("object"), str) else parse_duie2)(obj, path)


def parse_duee_submission(obj: dict[str, Any], path: str = "") -> Example:  # noqa: ARG001 -- LineParser signature
    """A DuEE submission line {"id", "event_list": [{"event_type", "arguments": [{"role", "argument"}]}]}, text given.

    Each argument is placed at its first occurrence in the text; one that does not occur is a LineError.
    """
    text = require(obj, "text", str)
    events = []
    for k, event in enumerate(require(obj, "event_list", list)):
        if not isinstance(event, dict):
            raise LineError(f"event_list[{k}] must be an object, got {type(event).__name__}")
        event_type = require(event, "event_type", str)
        spans = set()
        for j, argument in enumerate(require(event, "arguments", list)):
            if not isinstance(argument, dict):
                raise LineError(f"event_list[{k}].arguments[{j}] must be an object")
            role, mention = require(argument, "role", str), require(argument, "argument", str)
            start = text.find(mention) if mention else -1
            if start < 0 or role == TRIGGER_ROLE:
                why = "is not in the text" if start < 0 else "has the trigger role, which a submission leaves out"
                raise LineError(f"event_list[{k}].arguments[{j}] {mention!r} ({role}) {why}")
            spans.add(Span(start, start + len(mention), role))
        events.append(Event(event_type, frozenset(spans)))
    return Example(text=text, events=tuple(events), id=example_id(obj))


PARSERS: dict[tuple[str, str], Callable[[dict[str, Any], str], Example]] = {
    ("ner", "records"): parse_spans, ("ner", "clue"): parse_cluener,
    ("relation", "records"): parse_duie_either, ("relation", "duie"): parse_duie_either,
    ("event", "records"): parse_duee, ("event", "duee"): parse_duee_submission,
}


def detect_form(task: str, obj: dict[str, Any]) -> str | None:
    """The form of one prediction line of `task`, or None when the line shows none (no labels)."""
    if task == "ner":
        return "clue" if "label" in obj else "records" if "entities" in obj else None
    if task == "relation":
        return "records" if "spo_list" in obj else None
    events = obj.get("event_list")
    if not isinstance(events, list) or not events or not isinstance(events[0], dict):
        return None
    return "records" if "trigger" in events[0] or "trigger_start_index" in events[0] else "duee"


def read_predictions(path: str, gold: list[Example], gold_path: str, task: str,
                     form: str = "auto") -> tuple[list[Example], str]:
    """(one Example per gold example, the form read) of a prediction file paired with its gold examples."""
    if task not in FORMS:
        raise ConfigError(f"--task must be one of {', '.join(FORMS)}, got '{task}'")
    if form != "auto" and form not in FORMS[task]:
        raise ConfigError(f"--format {form} is not a {task} prediction form (known: {', '.join(FORMS[task])}, auto)")
    lines = list(iter_json_lines(path))
    for _, obj in lines:
        if isinstance(obj, DataError):
            raise obj
    objects: list[tuple[int, dict[str, Any]]] = [(n, o) for n, o in lines if isinstance(o, dict)]
    if len(objects) != len(gold):
        raise DataError(path, 0, f"{len(objects)} prediction line(s), but {gold_path} has {len(gold)} example(s): "
                                 "a prediction file has one line per gold line, in the same order")
    if form == "auto":
        form = next((f for f in (detect_form(task, o) for _, o in objects) if f is not None), "records")
    parse = PARSERS[task, form]
    out = []
    for (lineno, obj), g in zip(objects, gold):
        where = f"{gold_path}:{g.line}"
        if "id" in obj and g.id is not None and str(obj["id"]) != g.id:
            raise DataError(path, lineno, f"id {obj['id']!r}, but {where} has id {g.id!r}: predictions must "
                                          "follow the gold file's order")
        if "text" in obj and obj["text"] != g.text:
            raise DataError(path, lineno, f"the text differs from the text of {where}: predictions must follow "
                                          "the gold file's order")
        try:
            example = parse({**obj, "text": g.text}, path)
        except LineError as exc:
            raise DataError(path, lineno, str(exc)) from None
        example.source, example.line = path, lineno
        out.append(example)
    return out, form
