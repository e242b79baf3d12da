"""Prediction windows cut at sentence ends: whole sentences per window, a longer sentence slides, no token lost."""

from __future__ import annotations

import random

import pytest

from gplinker.data.encoding import WindowEncoder, sentence_cuts, window_bounds
from gplinker.errors import ConfigError
from gplinker.modeling.encoders import scratch_tokenizer


@pytest.mark.parametrize("seed", range(30))
def test_windows_end_at_a_cut_when_one_fits_else_slide_and_cover_every_token(seed):
    rng = random.Random(seed)
    n, budget = rng.randint(1, 300), rng.randint(4, 40)
    stride = rng.randint(0, budget - 1)
    cuts = sorted(rng.sample(range(1, max(2, n)), k=min(n - 1, rng.randint(0, 30)))) if n > 1 else []
    bounds = window_bounds(n, budget, stride, cuts)
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    covered = set()
    for (a, b), nxt in zip(bounds, bounds[1:] + [None]):
        assert 0 < b - a <= budget or n == 0
        covered.update(range(a, b))
        if nxt is None:
            continue
        fitting = [c for c in cuts if a < c <= a + budget]
        if fitting:  # the window ends at the last cut that fits, and the next one starts there
            assert b == fitting[-1] and nxt[0] == b
        else:  # a sentence longer than the window: it slides as without cuts
            assert b == a + budget and nxt[0] == a + budget - stride
    assert covered == set(range(n))
    assert window_bounds(n, budget, stride, None) == window_bounds(n, budget, stride, [])


def test_a_sentence_ends_after_its_terminator_and_the_quotes_that_close_it():
    text = "他说：“好。”然后走了！再见?Yes.Next\n末尾"
    offsets = [(k, k + 1) for k in range(len(text))]  # one token per character
    ends = [text[: t] for t in sentence_cuts(text, offsets)]
    assert ends == ["他说：“好。”", "他说：“好。”然后走了！", "他说：“好。”然后走了！再见?",
                    "他说：“好。”然后走了！再见?Yes.Next\n"]


def test_a_line_break_between_tokens_ends_a_sentence():
    """Lines with no end punctuation (headlines, CLUENER's fragments): the newline makes no token, and a window
    still ends at it rather than sliding over two lines."""
    lines = ["东湖银行信贷部的王立新经理", "李晓雨认为本地的书店正在走向连锁经营的模式",
             "本报记者张三报道", "会议在北京举行"]
    text = "\n".join(lines)
    tokenizer = scratch_tokenizer([text])
    encoder = WindowEncoder(tokenizer, 30, 4, char_level=True, cut="sentences")
    ((ids, spans),) = encoder.content_tokens([text])
    assert len(ids) == len(text) - 3  # no token for the newlines
    assert [text[: spans[t][0]] for t in sentence_cuts(text, spans)] == [
        "\n".join(lines[:k]) + "\n" for k in range(1, 4)]
    windows = encoder.encode([text])  # whole lines, as many as fit in 28 tokens: the last two share one
    assert [text[slice(*w.char_range)] for w in windows] == [lines[0], lines[1], "\n".join(lines[2:])]
    assert sentence_cuts("甲 乙", [(0, 1), (2, 3)]) == []  # a space is no line break


def test_prediction_windows_hold_whole_sentences_and_the_old_cut_slides():
    sentences = ["张三在北京工作。", "李四毕业于上海大学！", "王五说：“明天见。”", "赵六去了广州？"]
    text = "".join(sentences)
    tokenizer = scratch_tokenizer([text])
    starts = {sum(len(s) for s in sentences[:k]) for k in range(len(sentences) + 1)}
    by_sentence = WindowEncoder(tokenizer, 24, 4, char_level=True, cut="sentences").encode([text])
    assert len(by_sentence) > 1
    for window in by_sentence:
        first, last = window.char_range
        assert first in starts and last in starts  # whole sentences, nothing cut
    assert "".join(text[slice(*w.char_range)] for w in by_sentence) == text  # no overlap, nothing lost
    sliding = WindowEncoder(tokenizer, 24, 4, char_level=True).encode([text])
    assert any(w.char_range[1] not in starts for w in sliding)
    with pytest.raises(ConfigError, match="tokens or sentences"):
        WindowEncoder(tokenizer, 24, 4, cut="words")
