"""Readers for the published JSON-lines formats; each yields `Example`s in character offsets.

Every reader validates as it goes. A bad line raises `DataError("file:line: what is wrong")`,
or, when the user asked for `skip_invalid`, is counted in `ReadReport.skipped` and left out.
Nothing is dropped silently.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterator
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


# The longest line any reader accepts, in bytes (GPLINKER_MAX_LINE_BYTES overrides it). A line is held
# whole in memory, and predicting on it costs far more (tokens, windows): a file without newlines
# (/dev/zero, a binary file) is then an error that names the line, not a MemoryError.
MAX_LINE_BYTES = 16 << 20
MAX_LINE_ENV = "GPLINKER_MAX_LINE_BYTES"


def max_line_bytes() -> int:
    """The line-length cap: $GPLINKER_MAX_LINE_BYTES when it is a positive integer, else MAX_LINE_BYTES."""
    text = os.environ.get(MAX_LINE_ENV, "").strip()
    return int(text) if text.isdigit() and int(text) > 0 else MAX_LINE_BYTES


def numbered_lines(stream: Any, source: str = "<stream>") -> Iterator[tuple[int, bytes]]:
    """(line number from 1, raw bytes) of a binary stream, a UTF-8 BOM dropped from the first line.

    A line longer than max_line_bytes() is a DataError naming it, read no further than the cap.
    """
    limit = max_line_bytes()
    lineno = 0
    while raw := stream.readline(limit + 1):
        lineno += 1
        if len(raw) > limit and not raw.endswith(b"\n"):
            raise DataError(source, lineno, f"line longer than {limit} bytes (no newline within them: a binary or "
                                            f"special file?); set {MAX_LINE_ENV} to allow longer lines")
        yield lineno, raw[len(BOM):] if lineno == 1 and raw.startswith(BOM) else raw


def is_blank(raw: bytes) -> bool:
    """True for a line holding only JSON's own whitespace (space, tab, CR, LF): such lines are skipped."""
    return not raw.strip(JSON_WHITESPACE.encode("ascii"))


def decode_json_line(raw: bytes) -> dict[str, Any] | str:
    """The JSON object of a non-blank raw line, or the message saying why it is not one.

    Invalid UTF-8, malformed JSON and a value that is not an object are messages; a trailing CR or
    LF is ignored (CRLF files read like LF ones).
    """
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"invalid UTF-8 at byte {exc.start}"
    try:
        obj = json.loads(line.rstrip("\r\n"))
    except json.JSONDecodeError as exc:
        return f"malformed JSON: {exc.msg} (column {exc.colno})"
    except RecursionError:
        return "malformed JSON: nested too deeply"
    if not isinstance(obj, dict):
        return f"expected a JSON object, got {type(obj).__name__}"
    return obj


def iter_json_lines(path: str | Path) -> Iterator[tuple[int, dict[str, Any] | DataError]]:
    """Yield (line number, parsed JSON object or DataError) for each non-blank line.

    Accepts a UTF-8 BOM and CRLF endings; invalid UTF-8 and malformed JSON become DataErrors.
    """
    path = str(path)
    with open(path, "rb") as fh:
        for lineno, raw in numbered_lines(fh, path):
            if is_blank(raw):
                continue
            obj = decode_json_line(raw)
            yield lineno, DataError(path, lineno, obj) if isinstance(obj, str) else obj


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


class LineAccounting:
    """The reader rules, applied to records in source order: a bad record raises DataError(file:line), or is
    counted in the report when skipping; an id seen on an earlier accepted line is a bad record too."""

    def __init__(self, path: str, skip_invalid: bool):
        self.report = ReadReport(path)
        self.skip_invalid = skip_invalid
        self.first_line_of_id: dict[str, int] = {}

    def reject(self, line: int, message: str) -> None:
        """A bad record: raise, or count it as skipped."""
        if not self.skip_invalid:
            raise DataError(self.report.path, line, message + " (pass --skip-invalid to skip bad lines)")
        self.report.skipped.append(DataError(self.report.path, line, message))

    def accept(self, line: int, ident: str | None) -> bool:
        """A record that parsed: True when it is kept; a repeated id is rejected (False when skipping)."""
        if ident is not None:
            first = self.first_line_of_id.get(ident)
            if first is not None:
                self.reject(line, f"duplicate id {ident!r} (first on line {first})")
                return False
            self.first_line_of_id[ident] = line
        self.report.examples += 1
        return True


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
