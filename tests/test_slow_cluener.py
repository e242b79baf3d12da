"""Real CLUENER data (../shared/data/cluener): oracle round trip and a short training run. `-m slow`."""

from __future__ import annotations

import json

import pytest

from gplinker.commands.check import check_data
from gplinker.commands.train import train
from gplinker.config import load_config
from tests.conftest import BERT_VOCAB, REPO, SHARED_DATA

CLUENER = SHARED_DATA / "cluener"
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not CLUENER.is_dir(), reason="../shared/data/cluener is absent")]


@pytest.mark.parametrize("split", ["train", "dev"])
@pytest.mark.parametrize("vocab", ["scratch", "bert"])
def test_cluener_oracle_is_exact(split, vocab):
    tokenizer = None
    if vocab == "bert":
        if not (BERT_VOCAB / "vocab.txt").is_file():
            pytest.skip("../shared/vocab is absent")
        from transformers import BertTokenizerFast

        tokenizer = BertTokenizerFast.from_pretrained(str(BERT_VOCAB))
    report = check_data(str(CLUENER / f"{split}.json"), "ner", "cluener", tokenizer, max_length=64, stride=16,
                        skip_invalid=False, char_level=True)
    print(f"\nCLUENER {split} ({vocab} vocab): oracle P/R/F1 {report.oracle.precision:.4f}/{report.oracle.recall:.4f}/"
          f"{report.oracle.f1:.4f}, {report.oracle.tp}/{report.oracle.n_gold} spans, {report.windows} windows")
    assert not report.report.skipped
    assert report.oracle.f1 == 1.0 and report.oracle.n_gold == report.oracle.tp
    assert report.oracle.n_gold == {"train": 23972, "dev": 3072}[split]


def write_subset(directory) -> None:
    """The first 3,000 CLUENER training lines and 300 dev lines, as train.json and dev.json in `directory`."""
    for name, n in (("train.json", 3000), ("dev.json", 300)):
        lines = (CLUENER / name).read_text(encoding="utf-8").splitlines()
        (directory / name).write_text("\n".join(lines[:n]) + "\n", encoding="utf-8")


def test_short_cluener_training_raises_dev_f1(tmp_path):
    """300 steps of a small scratch encoder on the first 3,000 training lines; dev F1 on 300 dev lines rises."""
    write_subset(tmp_path)
    cfg = load_config(REPO / "configs" / "cluener.yaml", [
        f"data.train={tmp_path / 'train.json'}", f"data.dev={tmp_path / 'dev.json'}",
        f"train.output_dir={tmp_path / 'run'}", "train.max_steps=300", "train.eval_every=100",
        "model.scratch.hidden_size=128", "model.scratch.num_layers=2", "model.scratch.intermediate_size=256",
        "train.lr=1e-3", "train.patience=0",
    ])
    report = train(cfg)
    scores = [h["score"] for h in report.fit.history]
    print(f"\nCLUENER short run: dev span F1 by step {[(h['step'], round(h['score'], 4)) for h in report.fit.history]}")
    assert len(scores) == 3
    assert scores[-1] > scores[0] and scores[-1] > 0.2
    best = json.loads((tmp_path / "run" / "best" / "metrics.json").read_text())
    assert best["score"] == max(scores)


@pytest.mark.parametrize(("encoder", "settings"), [
    ("bilstm", []),  # configs/cluener-light.yaml as shipped
    ("dgcnn", ["model.light.hidden_size=128", "model.light.dropout=0.1", "model.light.min_char_count=2"]),
])
def test_short_cluener_training_raises_dev_f1_with_each_light_encoder(tmp_path, encoder, settings):
    """600 steps of a light encoder (configs/cluener-light.yaml) on 3,000 training lines; dev F1 on 300 lines rises.

    The dgcnn keeps the settings this test was first measured with: the full-data run in README.md was at span F1
    0.04 after 336 steps and 0.13 after 672. The bilstm as shipped was at 0.0 after 336 steps and 0.25 after 672.
    (At hidden 128, dropout 0.1 and min_char_count 2 the bilstm learned nothing in 600 steps: 0.0 at 200, 400, 600.)
    """
    write_subset(tmp_path)
    cfg = load_config(REPO / "configs" / "cluener-light.yaml", [
        f"data.train={tmp_path / 'train.json'}", f"data.dev={tmp_path / 'dev.json'}",
        f"train.output_dir={tmp_path / 'run'}", "train.max_steps=600", "train.eval_every=200",
        f"model.encoder={encoder}", "train.patience=0", *settings,
    ])
    report = train(cfg)
    scores = [h["score"] for h in report.fit.history]
    print(f"\nCLUENER short run, {encoder}: dev span F1 by step "
          f"{[(h['step'], round(h['score'], 4)) for h in report.fit.history]}")
    assert len(scores) == 3
    assert scores[-1] > scores[0] and scores[-1] > 0.02
