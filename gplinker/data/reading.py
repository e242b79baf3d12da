"""Which reader reads which format, format detection, and reading a file into Examples."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gplinker.data.examples import Example
from gplinker.data.formats import (
    LineAccounting,
    LineError,
    LineParser,
    ReadReport,
    check_encodable,
    numbered_lines,
    parse_cluener,
    parse_spans,
)
from gplinker.data.sources import records
from gplinker.errors import ConfigError, DataError


def _parsers() -> dict[str, tuple[str, LineParser]]:
    """Format name -> (the task its data is for, its line parser)."""
    from gplinker.data.duee import parse_duee
    from gplinker.data.duie import parse_duie1, parse_duie2
    from gplinker.data.english_re import parse_casrel, parse_tplinker

    return {
        "cluener": ("ner", parse_cluener),
        "spans": ("ner", parse_spans),
        "duie2": ("relation", parse_duie2),
        "duie1": ("relation", parse_duie1),
        "duee": ("event", parse_duee),
        "casrel": ("relation", parse_casrel),
        "tplinker": ("relation", parse_tplinker),
    }


# Formats whose objects are plain strings: their models write DuIE 1.0 style records (`"object": "..."`)
PLAIN_OBJECTS = ("duie1", "casrel", "tplinker")


def parser_for(fmt: str) -> LineParser:
    """The line parser of a resolved format name."""
    return _parsers()[fmt][1]


DEFAULT_FORMAT = {"ner": "spans", "relation": "duie2", "event": "duee"}


def detect_format(path: str | Path, task: str) -> str:
    """Guess the format from the first parseable line's fields; texts without labels get the task's default."""
    for _, obj in records(path):
        if isinstance(obj, DataError):
            continue
        if "label" in obj:
            return "cluener"
        if "entities" in obj:
            return "spans"
        if "event_list" in obj:
            return "duee"
        if "triple_list" in obj:
            return "casrel"
        if "relation_list" in obj:
            return "tplinker"
        if "spo_list" in obj:
            spos = obj["spo_list"] or [{}]
            first = spos[0] if isinstance(spos, list) and spos and isinstance(spos[0], dict) else {}
            return "duie1" if isinstance(first.get("object"), str) else "duie2"
        return DEFAULT_FORMAT[task]
    return DEFAULT_FORMAT[task]


def resolve_format(path: str | Path, fmt: str, task: str) -> str:
    """The format to read `path` with ("auto" detected); ConfigError if unknown or of another task."""
    parsers = _parsers()
    fmt = detect_format(path, task) if fmt == "auto" else fmt
    if fmt not in parsers:
        raise ConfigError(f"unknown data format '{fmt}' (known: {', '.join(parsers)}, auto)")
    if parsers[fmt][0] != task:
        raise ConfigError(f"{path}: format '{fmt}' holds {parsers[fmt][0]} data, but the task is '{task}'")
    return fmt


def read_lines(path: str | Path, parse: LineParser, *, skip_invalid: bool = False) -> tuple[list[Example], ReadReport]:
    """Run `parse(obj, path)` on every record of a source (data/sources.py); raise or count bad ones."""
    source = str(path)
    accounting = LineAccounting(source, skip_invalid)
    examples: list[Example] = []
    for line, obj in records(source):
        accounting.report.lines += 1
        if isinstance(obj, DataError):
            accounting.reject(line, obj.message)
            continue
        try:
            example = parse(obj, source)
        except LineError as exc:
            accounting.reject(line, str(exc))
            continue
        if accounting.accept(line, example.id):
            example.source, example.line = source, line
            examples.append(example)
    return examples, accounting.report


def read_examples(
    path: str | Path, fmt: str, task: str, skip_invalid: bool = False
) -> tuple[list[Example], ReadReport]:
    """Read a labelled file for `task`; bad lines raise DataError(file:line) or are counted when skipping."""
    fmt = resolve_format(path, fmt, task)
    return read_lines(path, _parsers()[fmt][1], skip_invalid=skip_invalid)


def parse_input(obj: dict[str, Any]) -> Example:
    """A prediction input line: a JSON object with a string 'text' (labels, if any, are ignored)."""
    if "text" not in obj:
        raise LineError("missing field 'text'")
    text = obj["text"]
    if not isinstance(text, str):
        raise LineError(f"field 'text' must be str, got {type(text).__name__}")
    ident = obj.get("id")
    meta = {} if ident is None else {"json_id": ident}  # records write the id back with its JSON type
    return Example(text=check_encodable(text), id=None if ident is None else str(ident), meta=meta)


def parse_input_line(line: str, lineno: int, source: str) -> Example | dict[str, Any]:
    """A prediction input line as an Example, or an error record {"error": "source:line: ...", "line"}."""
    try:
        if not line.strip():
            raise LineError("empty line")
        try:
            obj = json.loads(line)
        except RecursionError:
            raise LineError("malformed JSON: nested too deeply") from None
        if not isinstance(obj, dict):
            raise LineError(f"expected a JSON object, got {type(obj).__name__}")
        return parse_input(obj)
    except (json.JSONDecodeError, LineError) as exc:
        message = f"malformed JSON: {exc.msg}" if isinstance(exc, json.JSONDecodeError) else str(exc)
        return {"error": f"{source}:{lineno}: {message}", "line": lineno}


def read_text_lines(path: str) -> Iterator[str]:
    """Lines of a file (or stdin for '-'), decoded leniently: invalid UTF-8 becomes U+FFFD, BOM dropped.

    Prediction input is read this way so that one bad byte costs one output line, not the run.
    """
    if path == "-":
        yield from _decoded(sys.stdin.buffer, "<stdin>")
        return
    if not os.path.exists(path):
        raise ConfigError(f"input file {path} not found")
    if os.path.isdir(path):
        raise ConfigError(f"input {path} is a directory; give a JSON-lines file (or - for stdin)")
    # a pipe (a FIFO, <(...)) or a device is read like a file; lines are capped (formats.max_line_bytes)
    with open(path, "rb") as fh:
        yield from _decoded(fh, path)


def _decoded(stream: Any, source: str) -> Iterator[str]:
    """The lines of a binary stream as text, without line endings (see read_text_lines)."""
    for _, raw in numbered_lines(stream, source):
        yield raw.decode("utf-8", errors="replace").rstrip("\r\n")
