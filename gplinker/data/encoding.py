"""Characters ⇄ tokens, and sliding windows over long texts.

A text is tokenized once, without special tokens, using the fast tokenizer's `offset_mapping`
(never by searching strings). Its content tokens are cut into windows of at most
`max_length - n_special` tokens; consecutive windows share `stride` tokens. With cut="sentences"
(prediction's default), a text longer than one window is cut at sentence ends instead: each window
holds whole sentences, as many as fit, so a model trained on sentences sees windows like its
training data; only a sentence longer than a window slides. Each window knows,
for every position of its `input_ids`, the character span of that token, so targets can be
placed (characters → positions) and predictions read back (positions → characters).
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

import numpy as np
import numpy.typing as npt

from gplinker.errors import ConfigError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

SPECIAL = (-1, -1)  # character span of a special token ([CLS], [SEP], <s>, ...)
SENTENCE_ENDS = frozenset("。！？!?\n")
CLOSERS = frozenset("”’」』）)]》\"'")  # a sentence end may be followed by closing quotes or brackets
CUTS = ("tokens", "sentences")


@dataclass
class Window:
    """One model input: a contiguous run of a text's tokens plus the special tokens around it."""

    example_index: int
    input_ids: list[int]
    char_spans: Sequence[tuple[int, int]]  # per position; SPECIAL for special tokens (a list, or cache.SpanRows)
    window_index: int = 0
    targets: dict[str, list[tuple[int, int, int]]] | None = None  # head -> [(channel, i, j), ...], set for training
    _starts: dict[int, int] | None = field(default=None, repr=False)
    _ends: dict[int, int] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def char_range(self) -> tuple[int, int]:
        """Characters covered by the content tokens: [first token start, last token end)."""
        content = [s for s in self.char_spans if s != SPECIAL]
        return (content[0][0], content[-1][1]) if content else (0, 0)

    def token_span(self, start: int, end: int) -> tuple[int, int] | None:
        """Positions (i, j) of the tokens that start at char `start` and end at char `end`, or None.

        None means the span cannot be expressed in this window: it lies (partly) outside the
        window, or a boundary falls inside a token.
        """
        if self._starts is None or self._ends is None:  # built together on first use
            self._starts, self._ends = {}, {}
            for pos, (s, e) in enumerate(self.char_spans):
                if (s, e) != SPECIAL and s < e:
                    self._starts.setdefault(s, pos)
                    self._ends[e] = pos
        i, j = self._starts.get(start), self._ends.get(end)
        if i is None or j is None or i > j:
            return None
        return i, j

    def char_span(self, i: int, j: int) -> tuple[int, int] | None:
        """Characters [start, end) of the token positions i..j (inclusive), or None if either is special."""
        if not (0 <= i < len(self.char_spans) and 0 <= j < len(self.char_spans)):
            return None
        (s, _), (_, e) = self.char_spans[i], self.char_spans[j]
        if self.char_spans[i] == SPECIAL or self.char_spans[j] == SPECIAL or s >= e:
            return None
        return s, e


class WindowEncoder:
    """Tokenizes texts and cuts them into windows of at most `max_length` tokens."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, max_length: int, stride: int, char_level: bool = False,
                 cut: str = "tokens"):
        if not getattr(tokenizer, "is_fast", False):
            raise ConfigError("gplinker needs a fast tokenizer (offset_mapping); this one is slow")
        self.tokenizer, self.max_length, self.stride = tokenizer, max_length, stride
        self.char_level = char_level
        if cut not in CUTS:
            raise ConfigError(f"windows are cut at tokens or sentences, got '{cut}'")
        self.cut = cut
        self.prefix, self.suffix = special_tokens_around(tokenizer)
        self.budget = max_length - len(self.prefix) - len(self.suffix)
        if not 0 <= stride < self.budget:
            raise ConfigError(
                f"data.stride ({stride}) must be smaller than the content tokens per window ({self.budget})"
            )

    def encode(self, texts: Sequence[str], first_index: int = 0) -> list[Window]:
        """Windows of every text, in order; `example_index` counts from `first_index`."""
        windows: list[Window] = []
        for k, (ids, spans) in enumerate(self.content_tokens(texts)):
            windows.extend(self._windows(first_index + k, ids, spans, texts[k]))
        return windows

    def content_tokens(self, texts: Sequence[str]) -> list[tuple[list[int], list[tuple[int, int]]]]:
        """Each text's content token ids (no special tokens) and their character spans.

        With char_level, each character is its own word: token boundaries are character boundaries
        (whitespace yields none).
        """
        if not texts:
            return []
        if self.char_level:
            enc = self.tokenizer([list(t) for t in texts], is_split_into_words=True, add_special_tokens=False,
                                 return_offsets_mapping=True, return_attention_mask=False,
                                 return_token_type_ids=False)
            out = []
            for k, (ids, offsets) in enumerate(zip(enc["input_ids"], enc["offset_mapping"])):
                words = cast(list[int], enc.word_ids(k))  # no special tokens, so every token has a word
                out.append((ids, [(w + s, w + e) for w, (s, e) in zip(words, offsets)]))
            return out
        enc = self.tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True,
                             return_attention_mask=False, return_token_type_ids=False)
        return [(ids, [tuple(o) for o in offsets]) for ids, offsets in zip(enc["input_ids"], enc["offset_mapping"])]

    def _windows(self, example_index: int, ids: list[int], offsets: list[tuple[int, int]], text: str) -> list[Window]:
        """The windows of one text from its content token ids and their character spans."""
        return [self.window(example_index, w, ids[a:b], offsets[a:b])
                for w, (a, b) in enumerate(self.bounds(text, offsets))]

    def bounds(self, text: str, spans: Sequence[tuple[int, int]] | npt.NDArray[np.int32]) -> list[tuple[int, int]]:
        """Token ranges [a, b) of the text's windows, from its content tokens' character spans: at sentence ends
        (cut="sentences", a text longer than one window) or sliding by the stride."""
        cuts = sentence_cuts(text, spans) if self.cut == "sentences" and len(spans) > self.budget else None
        return window_bounds(len(spans), self.budget, self.stride, cuts)

    def window(self, example_index: int, window_index: int, ids: list[int], spans: list[tuple[int, int]]) -> Window:
        """The window of these content tokens: the tokenizer's special tokens around them."""
        return Window(example_index=example_index, input_ids=self.prefix + ids + self.suffix,
                      char_spans=[SPECIAL] * len(self.prefix) + spans + [SPECIAL] * len(self.suffix),
                      window_index=window_index)


def window_bounds(n_tokens: int, budget: int, stride: int, cuts: Sequence[int] | None = None) -> list[tuple[int, int]]:
    """Token ranges [a, b) of the windows: each at most `budget` long, neighbours sharing `stride`.

    With `cuts` (ascending token indices where a sentence ends: a window may end there), a window
    ends at the last cut that keeps it within `budget`, and the next starts there, sharing nothing;
    where no cut fits (a sentence longer than a window), the window slides as without cuts.
    Every token is in at least one window; a text with no tokens still gets one (empty) window
    so that every input line yields an output line.
    """
    if n_tokens <= budget:
        return [(0, n_tokens)]
    step = budget - stride
    bounds: list[tuple[int, int]] = []
    a = 0
    while True:
        b = min(a + budget, n_tokens)
        if cuts and b < n_tokens:
            k = bisect.bisect_right(cuts, b) - 1  # the last cut within the budget
            if k >= 0 and cuts[k] > a:
                bounds.append((a, cuts[k]))
                a = cuts[k]
                continue
        bounds.append((a, b))
        if b == n_tokens:
            return bounds
        a += step


def sentence_cuts(text: str, spans: Sequence[tuple[int, int]] | npt.NDArray[np.int32]) -> list[int]:
    """Token indices t where a sentence ends before token t: the previous token ends the text's sentence there
    (its last character is one of SENTENCE_ENDS, or a closing quote/bracket after one, and no closer follows),
    or a line break lies between the two tokens (whitespace makes no token, so a newline is never inside one).

    `spans`: the content tokens' character spans, a list of pairs or an (n, 2) array; computed over
    the text's code points with numpy, so a 5 MB text (data/long_texts.py) costs no Python loop.
    """
    pairs = np.asarray(spans, dtype=np.int64).reshape(-1, 2)
    e, s = pairs[:-1, 1], pairs[1:, 0]  # the end of the token before t and the start of token t, t = 1 .. n-1
    n = len(text)
    if n == 0 or len(e) == 0:
        return []
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    ends = np.isin(codes, [ord(c) for c in SENTENCE_ENDS])
    closers = np.isin(codes, [ord(c) for c in CLOSERS])
    valid = (e > 0) & (e <= n)
    at = np.clip(e, 1, n)
    not_followed = (e == n) | ~closers[np.clip(e, 0, n - 1)]
    last_is_end = ends[at - 1]
    closer_after_end = closers[at - 1] & (e >= 2) & ends[np.clip(e - 2, 0, n - 1)]
    breaks = np.concatenate([[0], np.cumsum(codes == ord("\n"))])  # line breaks before each character
    break_between = breaks[np.clip(s, 0, n)] > breaks[np.clip(e, 0, n)]
    cut = (valid & not_followed & (last_is_end | closer_after_end)) | break_between
    cuts: list[int] = (np.nonzero(cut)[0] + 1).tolist()
    return cuts


def special_tokens_around(tokenizer: PreTrainedTokenizerBase) -> tuple[list[int], list[int]]:
    """The ids the tokenizer puts before and after a single sequence (e.g. [CLS] ... [SEP])."""
    probe = "a"
    bare = tokenizer(probe, add_special_tokens=False)["input_ids"]
    full = tokenizer(probe, add_special_tokens=True)["input_ids"]
    for k in range(len(full) - len(bare) + 1):
        if full[k : k + len(bare)] == bare:
            return full[:k], full[k + len(bare) :]
    raise ConfigError("could not find where the tokenizer puts its special tokens")


COUNT_CHARS = 1 << 20  # characters counted at a time by char_counts (4 MiB as UTF-32)


def char_counts(texts: Iterable[str]) -> Counter[str]:
    """How often each character occurs in `texts` (a scratch vocabulary is made from them).

    Counted about COUNT_CHARS characters at a time as code points (UTF-32) with numpy.unique, in
    bounded memory: 2.3x faster than Counter.update per text over 170k DuIE lines (this runs serially
    in the main process of a training start).
    """
    counts: Counter[str] = Counter()
    pending: list[str] = []
    size = 0

    def flush() -> None:
        points = np.frombuffer("".join(pending).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        values, times = np.unique(points, return_counts=True)
        counts.update({chr(v): int(t) for v, t in zip(values.tolist(), times.tolist())})

    for text in texts:
        pending.append(text)
        size += len(text)
        if size >= COUNT_CHARS:
            flush()
            pending, size = [], 0
    if pending:
        flush()
    return counts


def token_counts(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], char_level: bool = False) -> list[int]:
    """Content tokens (no special tokens) of each text, tokenized as WindowEncoder tokenizes it."""
    if not texts:
        return []
    if char_level:
        enc = tokenizer([list(t) for t in texts], is_split_into_words=True, add_special_tokens=False,
                        return_attention_mask=False, return_token_type_ids=False)
    else:
        enc = tokenizer(list(texts), add_special_tokens=False, return_attention_mask=False,
                        return_token_type_ids=False)
    return [len(ids) for ids in enc["input_ids"]]


AUTO_SHARE = (999, 1000)  # data.max_length auto holds this share of the training texts (99.9 %) in one window


def auto_max_length(counts: Sequence[int], specials: int, limit: int | None) -> int:
    """`data.max_length: auto`: the smallest window that holds 99.9 % of the texts whole, capped at `limit`.

    counts: content tokens per training text; specials: tokens the tokenizer adds around a sequence;
    limit: the encoder's position limit. With n texts sorted by length, the window must hold text
    number ceil(0.999 n). The result is at least 8 (the smallest window a config accepts); longer
    texts still slide through several windows.
    """
    need = max(8, share_tokens(counts) + specials)
    return min(need, limit) if limit is not None else need


def share_tokens(counts: Sequence[int]) -> int:
    """Content tokens of text number ceil(0.999 n) of n texts sorted by length (0 without texts)."""
    ordered = sorted(counts)
    num, den = AUTO_SHARE
    return ordered[-(-len(ordered) * num // den) - 1] if ordered else 0
