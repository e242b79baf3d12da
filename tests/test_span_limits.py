"""model.max_span_length: the span mask equals its formula, limits come from the training targets and round-trip."""

from __future__ import annotations

import json

import pytest
import torch

from gplinker.commands.train import train
from gplinker.config import load_config
from gplinker.data.span_limits import LABEL_MIN_SPANS, limits_from_training
from gplinker.modeling.losses import pointer_loss
from gplinker.modeling.model import GPLinkerModel
from gplinker.modeling.pointer import EfficientGlobalPointer, GlobalPointer, PairScores, _dropped_cells, mask_value
from tests.conftest import NER_SENTENCES, spans_record, tiny_overrides, write_jsonl


def plain_drop(mask: torch.Tensor, tril: bool, max_span: int | None) -> torch.Tensor:
    """The masked cells written out cell by cell."""
    b, l = mask.shape
    drop = torch.zeros(b, l, l, dtype=torch.bool)
    for k in range(b):
        for i in range(l):
            for j in range(l):
                drop[k, i, j] = (not mask[k, i] or not mask[k, j] or (tril and i > j)
                                 or (max_span is not None and j - i + 1 > max_span))
    return drop


@pytest.mark.parametrize("tril", [True, False])
@pytest.mark.parametrize("max_span", [None, 1, 3, 100])
def test_dropped_cells_equal_the_plain_formula(tril, max_span):
    mask = torch.tensor([[1, 1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1, 1]])
    assert torch.equal(_dropped_cells(mask, tril, max_span), plain_drop(mask, tril, max_span))


@pytest.mark.parametrize("head_type", [EfficientGlobalPointer, GlobalPointer])
def test_limited_head_masks_long_spans_and_leaves_the_rest(head_type):
    torch.manual_seed(0)
    hidden, mask = torch.randn(2, 9, 16), torch.tensor([[1] * 9, [1] * 6 + [0] * 3])
    free = head_type(16, 3, 8)
    limited = head_type(16, 3, 8, max_span=4)
    limited.load_state_dict(free.state_dict())
    a, b = free(hidden, mask).logits, limited(hidden, mask).logits
    span = torch.arange(9)[None, :] - torch.arange(9)[:, None] + 1  # (L, L): tokens of span (i, j)
    long = (span > 4)[None, None].expand_as(b)
    assert torch.all(b[long] == mask_value(b.dtype))
    assert torch.equal(b[~long], a[~long])


def test_loss_of_a_limited_head_is_the_plain_loss_over_masked_logits():
    torch.manual_seed(1)
    hidden, mask = torch.randn(2, 8, 16, requires_grad=True), torch.ones(2, 8, dtype=torch.long)
    head = EfficientGlobalPointer(16, 2, 8, max_span=3)
    positives = torch.tensor([[[0 * 8 + 2, 5 * 8 + 5], [3 * 8 + 4, -1]], [[1 * 8 + 1, -1], [6 * 8 + 7, 2 * 8 + 2]]])
    scores = head(hidden, mask)
    fast = pointer_loss(scores, positives)
    (g_fast,) = torch.autograd.grad(fast, hidden)
    plain = pointer_loss(PairScores(head(hidden, mask).logits, None), positives)
    (g_plain,) = torch.autograd.grad(plain, hidden)
    torch.testing.assert_close(fast, plain)
    torch.testing.assert_close(g_fast, g_plain)
    assert torch.isfinite(fast)


def test_limits_from_training_by_hand():
    many, few = LABEL_MIN_SPANS, LABEL_MIN_SPANS - 1
    limits = limits_from_training([8, 3, 20], [many, many, few])
    assert limits.max_span == 25  # ceil(1.25 * 20)
    assert limits.channels == [8, 3, None]  # the longest of a well-seen label; the rare one keeps the head's limit
    assert limits_from_training([0, 0], [0, 0]).max_span is None


def tiny_run(tmp_path, *extra):
    rows = [spans_record(t, e) for t, e in NER_SENTENCES]
    data = write_jsonl(tmp_path / "train.jsonl", rows)
    cfg = load_config(None, tiny_overrides(data, data, tmp_path / "run", "train.max_steps=3", *extra))
    return train(cfg), tmp_path / "run"


def test_auto_limits_come_from_the_training_spans_and_round_trip_through_the_model_dir(tmp_path):
    _, out = tiny_run(tmp_path)
    section = json.loads((out / "best" / "config.json").read_text(encoding="utf-8"))["gplinker"]
    limits = section["limits"]["heads"]["entities"]
    longest_gold = max(len(surface) for _, entities in NER_SENTENCES for surface, _ in entities)
    assert max(limits["longest"]) == longest_gold  # one character per token in the scratch vocabulary
    assert limits["max_span"] == -(-longest_gold * 5 // 4)
    assert section["limits"]["max_window"] == max(len(t) for t, _ in NER_SENTENCES) + 2
    model, _ = GPLinkerModel.load(out / "best")
    assert model.heads["entities"].max_span == limits["max_span"]
    assert [h.max_span for h in model.head_specs] == [limits["max_span"]]


def test_a_limit_below_the_gold_spans_is_reported_and_training_stays_finite(tmp_path):
    from rich.console import Console

    rows = [spans_record(t, e) for t, e in NER_SENTENCES]
    data = write_jsonl(tmp_path / "train.jsonl", rows)
    console = Console(record=True, width=200)
    cfg = load_config(None, tiny_overrides(data, None, tmp_path / "run", "train.max_steps=3",
                                           "model.max_span_length=2"))
    report = train(cfg, console=console)
    assert "longer than model.max_span_length 2" in console.export_text()
    log = [json.loads(x) for x in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert report.fit.steps == 3 and all(torch.isfinite(torch.tensor(e["loss"])) for e in log if "loss" in e)


def test_none_lifts_every_limit(tmp_path):
    _, out = tiny_run(tmp_path, "model.max_span_length=none")
    model, section = GPLinkerModel.load(out / "best")
    assert model.heads["entities"].max_span is None and section["limits"]["heads"]["entities"]["max_span"] is None


def test_prediction_windows_are_capped_at_the_longest_training_window(tmp_path):
    from gplinker.predict import Predictor

    _, out = tiny_run(tmp_path)
    longest = max(len(t) for t, _ in NER_SENTENCES) + 2  # one token per character, plus [CLS] and [SEP]
    predictor = Predictor.from_pretrained(out / "best", device="cpu")
    assert predictor.encoder.max_length == longest < 32  # trained with data.max_length 32
    assert predictor.encoder.stride <= (longest - 2) // 2
    with pytest.warns(UserWarning, match="longer than any training window"):
        wide = Predictor.from_pretrained(out / "best", device="cpu", max_length=32)
    assert wide.encoder.max_length == 32
    document = "".join(t for t, _ in NER_SENTENCES)
    from gplinker.data.examples import Example

    (spans,) = predictor.predict([Example(document)])
    limit = json.loads((out / "best" / "config.json").read_text())["gplinker"]["limits"]["heads"]["entities"]
    assert all(s.end - s.start <= limit["max_span"] for s in spans)  # one token per character here


def test_decoding_drops_spans_longer_than_their_channel_limit():
    from gplinker.predict import Predictor

    cells = {"entities": [(0, 1, 3, 2.0), (0, 1, 9, 3.0), (1, 0, 9, 1.0)], "other": [(0, 0, 50, 1.0)]}
    predictor = Predictor.__new__(Predictor)
    predictor.span_limits = {"entities": [5, None]}
    assert predictor.within_limits(cells) == {"entities": [(0, 1, 3, 2.0), (1, 0, 9, 1.0)],
                                              "other": [(0, 0, 50, 1.0)]}


def _section(heads, stride=20, max_length=42, max_window=42):
    return {"max_length": max_length, "stride": stride, "limits": {"max_window": max_window}, "heads": heads}


@pytest.mark.parametrize("max_span", [1, 5, 12, 21])
def test_ner_prediction_windows_overlap_by_the_longest_span_and_every_such_span_fits_one(max_span):
    from gplinker.data.encoding import window_bounds
    from gplinker.modeling.encoders import scratch_tokenizer
    from gplinker.predict import inference_windows

    tokenizer = scratch_tokenizer(["甲乙丙"])
    window, overlap = inference_windows(_section([{"name": "entities", "span_head": True, "max_span": max_span}]),
                                        tokenizer)
    assert window == 42 and overlap == min(20, 40 // 2, max_span - 1)
    n = 500
    bounds = window_bounds(n, window - 2, overlap)
    for p in range(n - max_span + 1):  # every span of max_span tokens lies wholly in some window
        assert any(a <= p and p + max_span <= b for a, b in bounds), (p, bounds)
    longer = _section([{"name": "entities", "span_head": True, "max_span": 30}])
    assert inference_windows(longer, tokenizer) == (42, 20)  # at most half a window, as before


def test_heads_without_a_limit_or_with_links_keep_the_training_stride():
    from gplinker.modeling.encoders import scratch_tokenizer
    from gplinker.predict import inference_windows

    tokenizer = scratch_tokenizer(["甲乙丙"])
    span = {"name": "entities", "span_head": True, "max_span": 4}
    link = {"name": "head", "span_head": False, "max_span": None}
    assert inference_windows(_section([span, link]), tokenizer) == (42, 20)
    assert inference_windows(_section([{**span, "max_span": None}]), tokenizer) == (42, 20)
    assert inference_windows(_section([span], stride=2), tokenizer) == (42, 2)
