"""Every evaluation during training shows a progress bar over its windows, and logs its wall time."""

from __future__ import annotations

import json

from rich.console import Console

from gplinker.commands.train import train
from gplinker.config import load_config
from gplinker.data.batching import inference_batches
from gplinker.data.examples import Example
from gplinker.predict import Predictor, batch_cost
from tests.conftest import NER_SENTENCES, spans_record, tiny_overrides, write_jsonl


def test_predict_reports_windows_done_after_each_batch(tmp_path):
    data = write_jsonl(tmp_path / "train.jsonl", [spans_record(t, e) for t, e in NER_SENTENCES])
    train(load_config(None, tiny_overrides(data, None, tmp_path / "run", "train.max_steps=1")))
    predictor = Predictor.from_pretrained(tmp_path / "run" / "last", device="cpu", batch_size=3)
    calls = []
    predictor.predict([Example(t) for t, _ in NER_SENTENCES], lambda done, total: calls.append((done, total)))
    windows = predictor.encoder.encode([t for t, _ in NER_SENTENCES])
    # cut by length, at most 3 each, under the cost model of the model's width on the CPU
    assert predictor.encoder_width == json.loads((tmp_path / "run" / "last" / "config.json").read_text())["hidden_size"]
    cost = predictor.cut_cost()
    assert cost == batch_cost(predictor.encoder_width, predictor.device)
    sizes = [len(b) for b in inference_batches([len(w) for w in windows], 3, cost)]
    assert len(windows) == 8 and max(sizes) <= 3
    assert calls == [(sum(sizes[: k + 1]), 8) for k in range(len(sizes))]  # one report per batch, running total


def test_training_evaluations_draw_a_bar_and_log_seconds(tmp_path):
    data = write_jsonl(tmp_path / "train.jsonl", [spans_record(t, e) for t, e in NER_SENTENCES])
    console = Console(record=True, width=200, force_terminal=True)
    train(load_config(None, tiny_overrides(data, data, tmp_path / "run", "train.max_steps=2", "train.eval_every=1")),
          console=console)
    assert "evaluating" in console.export_text()
    evals = [json.loads(x) for x in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()
             if json.loads(x)["event"] == "eval"]
    assert len(evals) == 2 and all(e["seconds"] >= 0 for e in evals)
