"""The body of `POST /predict`, checked: bytes in, texts out, or a `BadRequest` saying what is wrong.

Accepted bodies: `{"text": "..."}` (answered with one record) or `{"texts": ["...", ...]}`
(answered with a list of records, in order). Anything else is a 4xx with a message: a body over
`max_bytes` (413), bytes that are not UTF-8 or not JSON (400), a JSON value that is not such an
object, a `text` that is missing or not a string, an unpaired surrogate (422), more than
`max_texts` texts (413).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from gplinker.data.formats import LineError, check_encodable


class BadRequest(Exception):
    """A request the server refuses: the HTTP status and a message for the client."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class PredictRequest:
    """The texts to predict and whether the client sent one `text` (one record back) or `texts` (a list)."""

    texts: list[str]
    single: bool


def parse_predict_body(body: bytes, max_texts: int, max_bytes: int) -> PredictRequest:
    """Check a /predict body; raises BadRequest (see the module docstring)."""
    if len(body) > max_bytes:
        raise BadRequest(413, f"request body is {len(body)} bytes, the limit is {max_bytes}")
    try:
        decoded = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(400, f"request body is not valid UTF-8 (byte {exc.start})") from None
    try:
        obj: Any = json.loads(decoded)
    except json.JSONDecodeError as exc:
        raise BadRequest(400, f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(obj, dict):
        raise BadRequest(422, f'expected a JSON object {{"text": ...}} or {{"texts": [...]}}, got {type(obj).__name__}')
    if ("text" in obj) == ("texts" in obj):
        raise BadRequest(422, 'give exactly one of "text" (a string) or "texts" (a list of strings)')
    if "text" in obj:
        return PredictRequest([checked_text(obj["text"], "text")], single=True)
    texts = obj["texts"]
    if not isinstance(texts, list):
        raise BadRequest(422, f'"texts" must be a list of strings, got {type(texts).__name__}')
    if len(texts) > max_texts:
        raise BadRequest(413, f'"texts" holds {len(texts)} texts, the limit is {max_texts} per request')
    return PredictRequest([checked_text(t, f"texts[{k}]") for k, t in enumerate(texts)], single=False)


def checked_text(value: Any, where: str) -> str:
    """`value` if it is a string every tokenizer can encode; else BadRequest(422) naming `where`."""
    if not isinstance(value, str):
        raise BadRequest(422, f'"{where}" must be a string, got {type(value).__name__}')
    try:
        return check_encodable(value)
    except LineError as exc:
        raise BadRequest(422, f'"{where}": {exc}') from None
