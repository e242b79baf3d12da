"""Texts too long to tokenize in one call: tokenized in blocks, held as arrays, windowed lazily.

Tokenizing a 5 MB line in one call holds every token as Python objects (ids, offset tuples, the
tokenizer's own encoding): about 1.6 GB. `LongText` instead tokenizes TOKENIZE_BLOCK characters at
a time, keeps ids and character spans as int32 arrays (12 bytes a token), and makes the `Window`s
on demand, so what a prediction holds at once is one group of windows, whatever the line length.

A block ends only at a cut where the tokenizer splits the same way whether the text is cut there or
not: the block and the CUT_CONTEXT characters after the cut, tokenized together, give the same
tokens (ids and spans) as the two tokenized apart. The block starts at the text's start or at such
a cut, so its left side is checked from a true boundary; a "word" longer than CUT_CONTEXT that
runs past the cut is the one case the check cannot see to the end of. Candidates are tried from the block's end back
to its middle, first before whitespace or after a sentence end or comma, then a few anywhere; a
char-level tokenizer (each character its own word) may cut anywhere. So the tokens, and from them
the windows (`WindowEncoder.bounds` and `.window`, as for any text), are those
of the whole text tokenized at once; where no cut in a block checks out (one "word" of
thousands of characters), the block grows until one does.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from gplinker.data.encoding import CLOSERS, SENTENCE_ENDS, Window

if TYPE_CHECKING:
    from gplinker.data.encoding import WindowEncoder

LONG_TEXT_CHARS = 1 << 16  # texts longer than this take this path in Predictor.predict
TOKENIZE_BLOCK = 1 << 14  # characters per tokenizer call
CUT_CONTEXT = 256  # characters after a block cut that must tokenize alike with the block and apart
CUT_TRIES = 64  # candidate cuts checked per block before it grows
ANY_TRIES = 8  # of them, cuts that are neither before whitespace nor after punctuation (a block's first size only)
PREFERRED = frozenset(SENTENCE_ENDS | set("，,；;、：:.")) | CLOSERS


class LongText:
    """One long text's content tokens as arrays, and its windows one at a time."""

    def __init__(self, encoder: WindowEncoder, text: str, example_index: int = 0):
        self.encoder, self.text, self.example_index = encoder, text, example_index
        self.ids, self.spans = token_arrays(encoder, text)
        self.bounds = encoder.bounds(text, self.spans)

    def __len__(self) -> int:
        """How many windows the text has."""
        return len(self.bounds)

    def windows(self) -> Iterator[Window]:
        """The windows, in order, made as they are asked for (as `WindowEncoder.encode` makes them)."""
        for w, (a, b) in enumerate(self.bounds):
            spans: list[tuple[int, int]] = [(s, e) for s, e in self.spans[a:b].tolist()]
            yield self.encoder.window(self.example_index, w, self.ids[a:b].tolist(), spans)


def token_arrays(encoder: WindowEncoder, text: str) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32]]:
    """Content token ids (n,) and character spans (n, 2) of `text`, tokenized block by block (module docstring)."""
    ids_parts, span_parts = [], []
    start = 0
    while start < len(text):
        end, ids, spans = next_block(encoder, text, start)
        ids_parts.append(np.asarray(ids, dtype=np.int32))
        span_parts.append(np.asarray(spans, dtype=np.int32).reshape(-1, 2) + start)
        start = end
    if not ids_parts:
        return np.zeros(0, dtype=np.int32), np.zeros((0, 2), dtype=np.int32)
    return np.concatenate(ids_parts), np.concatenate(span_parts)


Tokens = tuple[list[int], list[tuple[int, int]]]


def next_block(encoder: WindowEncoder, text: str, start: int) -> tuple[int, list[int], list[tuple[int, int]]]:
    """The block from `start`: where it ends (about TOKENIZE_BLOCK characters on, at a cut that tokenizes alike),
    and its tokens, spans counted from `start`. `start` is 0 or such a cut."""
    size = TOKENIZE_BLOCK
    while start + size < len(text):
        target = start + size
        if encoder.char_level:
            ((ids, spans),) = encoder.content_tokens([text[start:target]])
            return target, ids, spans
        for p in itertools.islice(candidate_cuts(text, start + size // 2, target, anywhere=size == TOKENIZE_BLOCK),
                                  CUT_TRIES):
            block = tokens_if_alike(encoder, text, start, p)
            if block is not None:
                return p, block[0], block[1]
        size *= 2  # nothing checked out: a longer block, tried again (at whitespace and punctuation only)
    ((ids, spans),) = encoder.content_tokens([text[start:]])
    return len(text), ids, spans


def candidate_cuts(text: str, low: int, high: int, anywhere: bool = True) -> Iterator[int]:
    """Cut positions p in (low, high], from high down: first before whitespace or after punctuation, then (with
    `anywhere`) the others, at most ANY_TRIES of them: a run with no such position (one long "word") fails them
    all, and each check tokenizes a whole block."""
    preferred = [p for p in range(high, low, -1) if text[p].isspace() or text[p - 1] in PREFERRED]
    yield from preferred
    if anywhere:
        taken = set(preferred)
        yield from itertools.islice((p for p in range(high, low, -1) if p not in taken), ANY_TRIES)


def tokens_if_alike(encoder: WindowEncoder, text: str, start: int, p: int) -> Tokens | None:
    """The tokens of text[start:p] if they and those of text[p:p + CUT_CONTEXT] are the tokens of
    text[start:p + CUT_CONTEXT] tokenized at once (a true cut at p); else None."""
    b = min(len(text), p + CUT_CONTEXT)
    together, left, right = encoder.content_tokens([text[start:b], text[start:p], text[p:b]])
    shift = p - start
    if together[0] != left[0] + right[0]:
        return None
    if together[1] != left[1] + [(s + shift, e + shift) for s, e in right[1]]:
        return None
    return left
