"""Long texts (data/long_texts.py): tokenized in blocks, they give exactly the tokens, sentence cuts and windows of
the whole text tokenized at once, for WordPiece, byte-level BPE and char-level tokenizers, and Predictor.predict
gives the same predictions through the long path, in groups of WINDOW_GROUP windows."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gplinker.data.long_texts as long_texts
import gplinker.predict as predict_module
from gplinker.data.encoding import CLOSERS, SENTENCE_ENDS, WindowEncoder, sentence_cuts
from gplinker.data.long_texts import LongText, token_arrays
from gplinker.modeling.encoders import scratch_tokenizer
from gplinker.predict import Predictor
from tests.conftest import BERT_VOCAB
from tests.scratch_models import LONG, TEXTS, random_model_dir

PIECES = ["张伟在北京大学读书。", "李娜去了上海！", "“你好。”他说", "New York is big, isn't it? ", "  two  spaces ",
          "\n", "《三体》", "a" * 91,
          "3.14159", "，", "Ünïcödé ", "e\u0301", "🙂", "tab\tend"]


def joined(seed: int, n: int = 120) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice(PIECES) for _ in range(n))


def byte_level_tokenizer():
    """A byte-level BPE tokenizer (RoBERTa/GPT-2 style, whitespace belongs to the next token), trained here."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator([joined(s) for s in range(20)], trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<pad>", "<s>", "</s>", "<unk>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>")


def tokenizers() -> dict[str, object]:
    found: dict[str, object] = {"scratch wordpiece": scratch_tokenizer([joined(s) for s in range(5)]),
                                "byte-level bpe": byte_level_tokenizer()}
    if (BERT_VOCAB / "vocab.txt").exists():
        from transformers import BertTokenizerFast

        found["bert-base-chinese"] = BertTokenizerFast.from_pretrained(str(BERT_VOCAB))
    return found


TOKENIZERS = tokenizers()


@pytest.mark.parametrize("name", sorted(TOKENIZERS))
@pytest.mark.parametrize("char_level", [False, True])
@pytest.mark.parametrize("seed", range(4))
def test_block_tokens_and_windows_equal_the_whole_text_tokenized_at_once(monkeypatch, name, char_level, seed):
    monkeypatch.setattr(long_texts, "TOKENIZE_BLOCK", 97)  # a few dozen blocks per text
    encoder = WindowEncoder(TOKENIZERS[name], 24, 6, char_level, cut="sentences")
    text = joined(seed)
    ((ids, spans),) = encoder.content_tokens([text])
    got_ids, got_spans = token_arrays(encoder, text)
    assert got_ids.tolist() == ids and [tuple(s) for s in got_spans.tolist()] == spans
    whole = encoder.encode([text])
    lazy = list(LongText(encoder, text).windows())
    assert len(lazy) == len(LongText(encoder, text)) == len(whole) > 10
    assert [(w.input_ids, list(w.char_spans), w.window_index) for w in lazy] == \
           [(w.input_ids, list(w.char_spans), w.window_index) for w in whole]


def test_a_block_with_no_cut_that_tokenizes_alike_grows_until_one_does(monkeypatch):
    monkeypatch.setattr(long_texts, "TOKENIZE_BLOCK", 16)
    encoder = WindowEncoder(TOKENIZERS["scratch wordpiece"], 24, 6)
    text = "a" * 300 + " b" * 20  # one 300-letter word: [UNK] whole, so no cut inside it tokenizes alike
    ((ids, spans),) = encoder.content_tokens([text])
    got_ids, got_spans = token_arrays(encoder, text)
    assert got_ids.tolist() == ids and [tuple(s) for s in got_spans.tolist()] == spans
    assert ids[0] == TOKENIZERS["scratch wordpiece"].unk_token_id and spans[0] == (0, 300)


def sentence_cuts_by_formula(text: str, spans: list[tuple[int, int]]) -> list[int]:
    """The rule of encoding.sentence_cuts, one token at a time: t where the token before t ends a sentence (its
    last character a sentence end, or a closer right after one) and no closer follows, or a line break lies
    between the two tokens."""
    cuts = []
    for t, (_, e) in enumerate(spans[:-1], start=1):
        if "\n" in text[e:spans[t][0]]:
            cuts.append(t)
        elif 0 < e <= len(text) and (e == len(text) or text[e] not in CLOSERS):
            last = text[e - 1]
            if last in SENTENCE_ENDS or (last in CLOSERS and e >= 2 and text[e - 2] in SENTENCE_ENDS):
                cuts.append(t)
    return cuts


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab。！？!?\n”’」』）)]》\"' ")), max_size=60))
def test_sentence_cuts_follow_the_rule_for_span_lists_and_arrays(text):
    spans = [(k, k + 1) for k in range(len(text)) if not text[k].isspace()]  # one token per visible character
    expected = sentence_cuts_by_formula(text, spans)
    assert sentence_cuts(text, spans) == expected
    assert sentence_cuts(text, np.asarray(spans, dtype=np.int32).reshape(-1, 2)) == expected


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("long")
    return {task: random_model_dir(root / task, task) for task in ("ner", "relation", "event")}


@pytest.mark.parametrize("task", ["ner", "relation", "event"])
def test_predict_gives_the_same_predictions_through_the_long_path_in_bounded_groups(monkeypatch, model_dirs, task):
    predictor = Predictor.from_pretrained(model_dirs[task], device="cpu", batch_size=4)
    from gplinker.data.examples import Example

    examples = [Example(text=t) for t in [LONG * 4, TEXTS[0], LONG * 2 + TEXTS[1], ""]]
    whole = predictor.predict(examples)
    calls: list[int] = []
    reports: list[tuple[int, int]] = []
    decode = predictor.decode_windows

    def counted(windows, progress=None):
        calls.append(len(windows))
        return decode(windows, progress)

    monkeypatch.setattr(predictor, "decode_windows", counted)
    monkeypatch.setattr(predict_module, "LONG_TEXT_CHARS", 150)  # the two long texts take the long path
    monkeypatch.setattr(predict_module, "WINDOW_GROUP", 8)
    monkeypatch.setattr(long_texts, "TOKENIZE_BLOCK", 61)
    lazy = predictor.predict(examples, progress=lambda done, total: reports.append((done, total)))
    assert [set(p) for p in lazy] == [set(p) for p in whole]
    assert all(abs(lazy[k][item] - whole[k][item]) < 1e-4 for k in range(len(whole)) for item in whole[k])
    assert max(calls[1:]) <= 8 and len(calls) > 4  # the short texts in one call, then long ones 8 windows at a time
    assert reports[-1][0] == reports[-1][1] and [d for d, _ in reports] == sorted(d for d, _ in reports)
    assert any(whole)  # the random models predict something, so the comparison is not empty == empty
