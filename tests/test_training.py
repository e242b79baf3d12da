"""The training loop and encoders: accumulation, AMP, seeds, early stopping, pretrained dirs."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from gplinker.commands.train import train
from gplinker.config import load_config
from gplinker.errors import GPLinkerError
from gplinker.predict import Predictor
from tests.conftest import NER_SENTENCES, spans_record, tiny_overrides, write_jsonl


@pytest.fixture
def data(tmp_path):
    rows = [spans_record(t, e) for t, e in NER_SENTENCES]
    return write_jsonl(tmp_path / "train.jsonl", rows)


def run(tmp_path, data, name, *extra, dev=True):
    cfg = load_config(None, tiny_overrides(data, data if dev else None, tmp_path / name, *extra))
    return train(cfg), tmp_path / name


def weights(path):
    return load_file(str(path / "last" / "model.safetensors"))


def test_same_seed_gives_identical_weights_and_scores(tmp_path, data):
    a, out_a = run(tmp_path, data, "a", "train.max_steps=4", "train.eval_every=2")
    b, out_b = run(tmp_path, data, "b", "train.max_steps=4", "train.eval_every=2")
    assert [h["score"] for h in a.fit.history] == [h["score"] for h in b.fit.history]
    wa, wb = weights(out_a), weights(out_b)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    c, out_c = run(tmp_path, data, "c", "train.max_steps=4", "train.seed=7")
    assert any(not torch.equal(wa[k], weights(out_c)[k]) for k in wa)


def test_grad_accumulation_matches_one_big_batch(tmp_path, data):
    # without dropout, 2 micro-batches of 4 accumulated == 1 batch of 8 (loss is a mean over the batch)
    common = ("model.scratch.dropout=0.0", "train.max_steps=2", "train.max_grad_norm=0")
    _, big = run(tmp_path, data, "big", *common, "train.batch_size=8", dev=False)
    _, acc = run(tmp_path, data, "acc", *common, "train.batch_size=4", "train.grad_accum=2", dev=False)
    wa, wb = weights(big), weights(acc)
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-4, atol=1e-5)


def test_bf16_autocast_trains_on_cpu(tmp_path, data):
    report, out = run(tmp_path, data, "bf16", "train.max_steps=3", "train.amp=bf16", dev=False)
    assert report.fit.steps == 3
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert all(torch.isfinite(torch.tensor(e["loss"])) for e in log if e["event"] == "train")


def test_fp16_on_cpu_is_refused_with_advice(tmp_path, data):
    with pytest.raises(GPLinkerError, match="fp16 needs a CUDA device"):
        run(tmp_path, data, "fp16", "train.max_steps=1", "train.amp=fp16", dev=False)


def test_early_stopping_after_patience(tmp_path, data):
    # lr 0 keeps the score constant, so every evaluation after the first is "no improvement"
    report, _ = run(tmp_path, data, "es", "train.max_steps=50", "train.eval_every=1", "train.patience=2",
                    "train.lr=0.0")
    assert report.fit.steps == 3 and len(report.fit.history) == 3


def test_non_finite_loss_skips_steps_then_stops(tmp_path, data, monkeypatch):
    from gplinker.modeling import model as model_module

    def nan_loss(scores, positives):
        return scores.logits.sum() * float("nan")

    monkeypatch.setattr(model_module, "pointer_loss", nan_loss)
    with pytest.raises(GPLinkerError, match="non-finite losses in a row"):
        run(tmp_path, data, "nan", "train.max_steps=30", dev=False)


def tiny_pretrained_dir(tmp_path, kind: str):
    """A local encoder dir made with save_pretrained (the hub is not reachable in tests)."""
    from transformers import BertConfig, BertModel, BertTokenizerFast, RoFormerConfig, RoFormerModel

    chars = sorted({c for t, _ in NER_SENTENCES for c in t})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars
    d = tmp_path / kind
    d.mkdir()
    (d / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    sizes = dict(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                 intermediate_size=64, max_position_embeddings=64)
    if kind == "roformer":
        RoFormerModel(RoFormerConfig(embedding_size=32, **sizes)).save_pretrained(d)
    else:
        BertModel(BertConfig(**sizes)).save_pretrained(d)
        BertTokenizerFast.from_pretrained(str(d)).save_pretrained(d)
    return d


@pytest.mark.parametrize("kind", ["bert", "roformer"])
def test_pretrained_encoder_from_local_dir(tmp_path, data, kind):
    encoder_dir = tiny_pretrained_dir(tmp_path, kind)
    report, out = run(tmp_path, data, "pre", f"model.encoder={encoder_dir}", "train.max_steps=2")
    assert report.fit.steps == 2
    section = json.loads((out / "best" / "config.json").read_text())
    assert section["model_type"] == kind and section["gplinker"]["task"] == "ner"
    predictor = Predictor.from_pretrained(out / "best", device="cpu")
    assert type(predictor.model.encoder).__name__ == {"bert": "BertModel", "roformer": "RoFormerModel"}[kind]
    assert predictor.tokenizer.is_fast and type(predictor.tokenizer).__name__.startswith("Bert")
