"""Output files of eval and predict: missing parent dirs are made before any work, files appear whole."""

from __future__ import annotations

import json
import os

import pytest
from typer.testing import CliRunner

from gplinker.atomic_files import atomic_text, write_json
from gplinker.cli import app
from gplinker.errors import GPLinkerError
from tests.conftest import NER_SENTENCES, spans_record, write_jsonl

runner = CliRunner()


def flat(output: str) -> str:
    """The CLI's output with rich's line wrapping undone."""
    return " ".join(output.split())


def labelled(tmp_path):
    return write_jsonl(tmp_path / "dev.jsonl", [spans_record(t, e) for t, e in NER_SENTENCES[:3]])


def test_predict_creates_the_missing_dirs_of_its_output(tiny_model_dir, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", [{"text": t} for t, _ in NER_SENTENCES])
    out = tmp_path / "missing" / "dir" / "out.jsonl"
    result = runner.invoke(app, ["predict", str(tiny_model_dir), str(source), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert [json.loads(x)["text"] for x in out.read_text(encoding="utf-8").splitlines()] == \
        [t for t, _ in NER_SENTENCES]
    assert os.listdir(out.parent) == ["out.jsonl"]  # no temp file left behind


def test_eval_creates_the_missing_dirs_of_metrics_and_errors(tiny_model_dir, tmp_path):
    metrics, errors = tmp_path / "a" / "m.json", tmp_path / "b" / "c" / "e.jsonl"
    result = runner.invoke(app, ["eval", str(tiny_model_dir), str(labelled(tmp_path)), "-o", str(metrics),
                                 "--errors", str(errors)])
    assert result.exit_code == 0, result.output
    assert "main" in json.loads(metrics.read_text(encoding="utf-8"))
    assert errors.is_file()


def test_eval_refuses_an_unwritable_output_before_scoring(tiny_model_dir, tmp_path, monkeypatch):
    import gplinker.commands.evaluate as evaluate

    def must_not_run(*args, **kwargs):
        raise AssertionError("scored before the output path was checked")

    monkeypatch.setattr(evaluate, "evaluate_dir", must_not_run)
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    result = runner.invoke(app, ["eval", str(tiny_model_dir), str(labelled(tmp_path)), "-o", str(blocker / "m.json")])
    assert result.exit_code == 2, result.output
    assert f"{blocker / 'm.json'}: cannot write here" in flat(result.output) and "Traceback" not in result.output


def test_predict_refuses_a_dir_as_output_before_loading_the_model(tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", [{"text": "北京"}])
    result = runner.invoke(app, ["predict", str(tmp_path / "no-model"), str(source), "-o", str(tmp_path)])
    assert result.exit_code == 2 and f"{tmp_path}: is a dir" in flat(result.output)


def test_failed_predict_leaves_the_old_output_untouched(tiny_model_dir, tmp_path, monkeypatch):
    import gplinker.commands.predict as predict

    def write_one_then_fail(predictor, lines, write, source, **options):
        write('{"text": "half"}')
        raise GPLinkerError("stopped halfway")

    monkeypatch.setattr(predict, "predict_lines", write_one_then_fail)
    source = write_jsonl(tmp_path / "in.jsonl", [{"text": "北京"}])
    out = write_jsonl(tmp_path / "out.jsonl", [{"text": "old"}])
    result = runner.invoke(app, ["predict", str(tiny_model_dir), str(source), "-o", str(out)])
    assert result.exit_code == 2 and "stopped halfway" in flat(result.output)
    assert out.read_text(encoding="utf-8") == '{"text": "old"}\n'
    assert sorted(os.listdir(tmp_path)) == ["in.jsonl", "out.jsonl"]


def test_atomic_text_keeps_the_old_file_when_the_block_fails(tmp_path):
    path = tmp_path / "x.json"
    write_json(path, {"v": 1})
    with pytest.raises(RuntimeError), atomic_text(path) as fh:
        fh.write("{partial")
        raise RuntimeError
    assert json.loads(path.read_text(encoding="utf-8")) == {"v": 1}
    assert os.listdir(tmp_path) == ["x.json"]


def test_checkpoint_dirs_and_json_save_where_directories_cannot_be_opened(tmp_path, monkeypatch):
    """Windows refuses os.open on a directory (PermissionError); the dir fsync is skipped there."""
    from gplinker.training.checkpoints import atomic_dir

    real_open = os.open

    def windows_open(path, flags, *args, **kwargs):
        if os.path.isdir(path):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", windows_open)
    target = atomic_dir(tmp_path / "checkpoint-2", lambda d: (d / "weights").write_bytes(b"w"))
    write_json(tmp_path / "history.json", [1])
    monkeypatch.undo()
    assert (target / "weights").read_bytes() == b"w"
    assert json.loads((tmp_path / "history.json").read_text(encoding="utf-8")) == [1]
    assert sorted(os.listdir(tmp_path)) == ["checkpoint-2", "history.json"]
