"""`gplinker eval` refuses data with no gold labels, and takes predict's decoding overrides."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from gplinker.cli import app
from tests.conftest import NER_SENTENCES, spans_record, write_jsonl

runner = CliRunner()


def test_eval_refuses_unlabelled_text_and_points_to_predict(tiny_model_dir, tmp_path):
    data = write_jsonl(tmp_path / "texts.jsonl", [{"id": k, "text": t} for k, (t, _) in enumerate(NER_SENTENCES)])
    metrics = tmp_path / "m.json"
    result = runner.invoke(app, ["eval", str(tiny_model_dir), str(data), "-o", str(metrics)])
    message = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert f"{data}: none of its {len(NER_SENTENCES)} example(s) carries a gold label" in message
    assert f"gplinker predict {tiny_model_dir} {data}" in message
    assert not metrics.exists() and "Traceback" not in result.output


def errors_at(model_dir, data, tmp_path, threshold: str) -> list[dict]:
    errors = tmp_path / f"errors{threshold}.jsonl"
    result = runner.invoke(app, ["eval", str(model_dir), str(data), "--threshold", threshold, "--errors", str(errors)])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in errors.read_text(encoding="utf-8").splitlines()]


def test_eval_threshold_overrides_the_models(tiny_model_dir, tmp_path):
    rows = [spans_record(t, e) for t, e in NER_SENTENCES]
    data = write_jsonl(tmp_path / "dev.jsonl", rows)
    nothing = errors_at(tiny_model_dir, data, tmp_path, "1e9")  # no logit is that high: nothing predicted
    assert len(nothing) == len(rows)
    assert all(not e["false_positives"] and len(e["misses"]) == len(r["entities"]) for e, r in zip(nothing, rows))
    everything = errors_at(tiny_model_dir, data, tmp_path, "-1e9")  # every allowed span predicted
    assert len(everything) == len(rows) and all(e["false_positives"] and not e["misses"] for e in everything)
