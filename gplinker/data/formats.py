"""Readers for the published JSON-lines formats; each yields `Example`s in character offsets.

Every reader validates as it goes. A bad line raises `DataError("file:line: what is wrong")`,
or, when the user asked for `skip_invalid`, is counted in `ReadReport.skipped` and left out.
Nothing is dropped silently.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gplinker.data.examples import Example, Span
from gplinker.errors import DataError


@dataclass
class ReadReport:
    """What a reader saw: lines read, lines skipped (with reasons), notes such as unlocated mentions."""

    path: str
    lines: int = 0
    examples: int = 0
    skipped: list[DataError] = field(default_factory=list)
    notes: Counter[str] = field(default_factory=Counter)

    def skip_reasons(self) -> Counter[str]:
        """Skipped lines counted by reason (the message up to its first colon)."""
        return Counter(e.message.split(":")[0] for e in self.skipped)


JSON_WHITESPACE = " \t\r\n"


class LineError(ValueError):
    """Raised inside a line parser; the reader adds `file:line` and turns it into a DataError."""


BOM = b"\xef\xbb\xbf"


def numbered_lines(stream: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """(line number from 1, raw bytes) of a binary stream, a UTF-8 BOM dropped from the first line."""
    for lineno, raw in enumerate(stream, start=1):
        yield lineno, raw[len(BOM):] if lineno == 1 and raw.startswith(BOM) else raw


def iter_json_lines(path: str | Path) -> Iterator[tuple[int, dict[str, Any] | DataError]]:
    """Yield (line number, parsed JSON object or DataError) for each non-blank line.

    Accepts a UTF-8 BOM and CRLF endings; invalid UTF-8 and malformed JSON become DataErrors.
    """
    path = str(path)
    with open(path, "rb") as fh:
        for lineno, raw in numbered_lines(fh):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield lineno, DataError(path, lineno, f"invalid UTF-8 at byte {exc.start}")
                continue
            line = line.rstrip("\r\n")
            if not line.strip(JSON_WHITESPACE):  # only JSON's own whitespace makes a blank line
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                yield lineno, DataError(path, lineno, f"malformed JSON: {exc.msg} (column {exc.colno})")
                continue
            if not isinstance(obj, dict):
                yield lineno, DataError(path, lineno, f"expected a JSON object, got {type(obj).__name__}")
                continue
            yield lineno, obj


def require(obj: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    """Return obj[key], raising LineError if it is missing or of the wrong type."""
    if key not in obj:
        raise LineError(f"missing field '{key}'")
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise LineError(f"field '{key}' must be {names}, got {type(value).__name__}")
    return value


def require_text(obj: dict[str, Any]) -> str:
    """The line's "text": a non-blank string that a tokenizer can encode (else LineError)."""
    text = require(obj, "text", str)
    if not text.strip():
        raise LineError("empty text")
    return check_encodable(text)


def check_encodable(text: str) -> str:
    """Reject unpaired surrogates (e.g. a JSON "\\ud800" escape): no tokenizer can encode them."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise LineError(f"text has an unpaired surrogate {text[exc.start]!r} at character {exc.start}") from None
    return text


def check_span(text: str, start: Any, end: Any, label: str, mention: str | None = None) -> Span:
    """Validate `[start, end)` against the text (and the mention string, if given)."""
    if not isinstance(start, int) or not isinstance(end, int) or isinstance(start, bool) or isinstance(end, bool):
        raise LineError(f"offsets of {label!r} must be integers, got {start!r}, {end!r}")
    if not 0 <= start < end <= len(text):
        raise LineError(f"span [{start}, {end}) of {label!r} is outside the text (length {len(text)})")
    if mention is not None and text[start:end] != mention:
        raise LineError(
            f"span [{start}, {end}) of {label!r} reads {text[start:end]!r} but the label says {mention!r}"
        )
    return Span(start, end, label)


LineParser = Callable[[dict[str, Any], str], Example]  # (JSON object of a line, file path) -> Example


def read_lines(path: str | Path, parse: LineParser, *, skip_invalid: bool = False) -> tuple[list[Example], ReadReport]:
    """Run `parse(obj, path)` on every line; raise or count bad lines (see module docstring)."""
    path = str(path)
    if not Path(path).is_file():
        raise DataError(path, 0, "no such file")
    report = ReadReport(path)
    examples: list[Example] = []
    first_line_of_id: dict[str, int] = {}
    for lineno, obj in iter_json_lines(path):
        report.lines += 1
        if isinstance(obj, DataError):
            error = obj
        else:
            try:
                example = parse(obj, path)
                if example.id is not None and example.id in first_line_of_id:
                    raise LineError(f"duplicate id {example.id!r} (first on line {first_line_of_id[example.id]})")
            except LineError as exc:
                error = DataError(path, lineno, str(exc))
            else:
                example.source, example.line = path, lineno
                if example.id is not None:
                    first_line_of_id[example.id] = lineno
                examples.append(example)
                continue
        if not skip_invalid:
            raise DataError(error.path, error.line, error.message + " (pass --skip-invalid to skip bad lines)")
        report.skipped.append(error)
    report.examples = len(examples)
    return examples, report


# --- NER formats -------------------------------------------------------------------------


def parse_cluener(obj: dict[str, Any], path: str = "") -> Example:  # noqa: ARG001 -- LineParser signature
    """CLUENER: {"text", "label": {type: {surface: [[start, end_inclusive], ...]}}}; label optional."""
    text = require_text(obj)
    spans: set[Span] = set()
    labels = obj.get("label")
    labels = {} if labels is None else labels
    if not isinstance(labels, dict):
        raise LineError(f"field 'label' must be an object, got {type(labels).__name__}")
    for label, mentions in labels.items():
        if not isinstance(mentions, dict):
            raise LineError(f"label {label!r} must map surface strings to offset lists")
        for surface, positions in mentions.items():
            if not isinstance(positions, list) or not all(isinstance(p, list) and len(p) == 2 for p in positions):
                raise LineError(f"offsets of {label!r} {surface!r} must be a list of [start, end] pairs")
            for start, end in positions:
                end_exclusive = end + 1 if isinstance(end, int) and not isinstance(end, bool) else end
                spans.add(check_span(text, start, end_exclusive, label, surface))
    return Example(text=text, spans=tuple(sorted(spans)), id=example_id(obj))


def parse_spans(obj: dict[str, Any], path: str = "") -> Example:  # noqa: ARG001 -- LineParser signature
    """Plain spans: {"text", "entities": [{"start", "end" (exclusive), "type", "text"?}]}."""
    text = require_text(obj)
    entities = obj.get("entities")
    entities = [] if entities is None else entities
    if not isinstance(entities, list):
        raise LineError(f"field 'entities' must be a list, got {type(entities).__name__}")
    spans: set[Span] = set()
    for k, entity in enumerate(entities):
        if not isinstance(entity, dict):
            raise LineError(f"entities[{k}] must be an object")
        label = require(entity, "type", str)
        spans.add(check_span(text, entity.get("start"), entity.get("end"), label, entity.get("text")))
    return Example(text=text, spans=tuple(sorted(spans)), id=example_id(obj))


def example_id(obj: dict[str, Any]) -> str | None:
    """The line's "id" as a string, or None."""
    value = obj.get("id")
    return None if value is None else str(value)
