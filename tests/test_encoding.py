"""Characters ⇄ tokens and sliding windows: property tests over mixed scripts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gplinker.data.encoding import SPECIAL, WindowEncoder, window_bounds
from gplinker.modeling.encoders import scratch_tokenizer
from tests.conftest import BERT_VOCAB

PIECES = ["北京", "大学", "张", "伟", "hello", "World", "2019", "年", "😀", "ＡＢＣ", "１２", " ", "  ", "，", "。",
          "e-mail", "x", "\u3000", "Ⅷ", "é"]
texts = st.lists(st.sampled_from(PIECES), min_size=1, max_size=40).map("".join)
TOKENIZER = scratch_tokenizer(PIECES)


@given(n=st.integers(0, 500), budget=st.integers(2, 64), data=st.data())
def test_window_bounds_cover_every_token_with_stride_overlap(n, budget, data):
    stride = data.draw(st.integers(0, budget - 1))
    bounds = window_bounds(n, budget, stride)
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    for a, b in bounds:
        assert 0 <= b - a <= budget
    for (a1, b1), (a2, _b2) in zip(bounds, bounds[1:]):
        assert a2 == a1 + budget - stride  # consecutive windows share exactly `stride` tokens
        assert b1 - a2 == stride


@settings(max_examples=150, deadline=None)
@given(text=texts, max_length=st.integers(8, 24), data=st.data())
def test_positions_and_characters_round_trip(text, max_length, data):
    stride = data.draw(st.integers(0, max_length - 3))
    encoder = WindowEncoder(TOKENIZER, max_length, stride)
    offsets = TOKENIZER(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    windows = encoder.encode([text])
    seen = set()
    for w in windows:
        assert len(w) <= max_length
        for i, span in enumerate(w.char_spans):
            if span == SPECIAL:
                continue
            seen.add(tuple(span))
            assert text[span[0]:span[1]].strip(), "a token must cover visible characters"
            for j in range(i, len(w.char_spans)):
                if w.char_spans[j] == SPECIAL:
                    break
                chars = w.char_span(i, j)
                assert chars == (span[0], w.char_spans[j][1])
                assert w.token_span(*chars) == (i, j)
    assert seen == {tuple(o) for o in offsets}, "every token is in some window"


@settings(max_examples=100, deadline=None)
@given(text=texts, data=st.data())
def test_short_spans_fit_in_some_window(text, data):
    """A span of at most stride + 1 tokens lies wholly inside at least one window."""
    encoder = WindowEncoder(TOKENIZER, 12, 4)
    offsets = TOKENIZER(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    if not offsets:
        return
    i = data.draw(st.integers(0, len(offsets) - 1))
    j = data.draw(st.integers(i, min(len(offsets) - 1, i + 4)))
    start, end = offsets[i][0], offsets[j][1]
    assert any(w.token_span(start, end) is not None for w in encoder.encode([text]))


def test_span_with_boundary_inside_a_token_is_not_expressible():
    tok = scratch_tokenizer(["abc"])
    # "abc" is split into characters by the character vocabulary, so any boundary works ...
    w = WindowEncoder(tok, 16, 2).encode(["abc abc"])[0]
    assert w.token_span(1, 3) is not None
    # ... but a space is not a token: a span starting on it cannot be expressed
    assert w.token_span(3, 7) is None


def test_empty_text_still_gets_one_window():
    windows = WindowEncoder(TOKENIZER, 16, 2).encode(["", "北京"])
    assert [w.example_index for w in windows] == [0, 1]
    assert windows[0].char_range == (0, 0)


@pytest.mark.skipif(not (BERT_VOCAB / "vocab.txt").exists(), reason="../shared/vocab is absent")
@settings(max_examples=60, deadline=None)
@given(text=texts)
def test_bert_wordpiece_offsets_cover_the_text(text):
    """With the real Chinese BERT vocabulary, every token's characters come from the text."""
    from transformers import BertTokenizerFast

    tok = BertTokenizerFast.from_pretrained(str(BERT_VOCAB))
    for w in WindowEncoder(tok, 16, 4).encode([text]):
        for i, span in enumerate(w.char_spans):
            if span != SPECIAL:
                assert 0 <= span[0] < span[1] <= len(text)
                assert w.token_span(*span) == (i, i)


@pytest.mark.parametrize("chunk", [1, 3, 1 << 20])
def test_char_counts_equal_counter_across_chunks_and_odd_code_points(monkeypatch, chunk):
    from collections import Counter

    from gplinker.data import encoding

    monkeypatch.setattr(encoding, "COUNT_CHARS", chunk)
    texts = ["北京大学", "a\ud800b", "\U0001F600x\U0001F600", "", "\x00\n\t ", "ab" * 7]
    expected: Counter[str] = Counter()
    for text in texts:
        expected.update(text)
    assert encoding.char_counts(texts) == expected
    assert encoding.char_counts(iter(texts)) == expected and encoding.char_counts([]) == Counter()
