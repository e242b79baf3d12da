"""`gplinker train --resume` without a checkpoint stops with advice instead of starting fresh silently."""

from __future__ import annotations

from typer.testing import CliRunner

from gplinker.cli import app
from tests.conftest import NER_SENTENCES, set_args, spans_record, tiny_overrides, write_jsonl

runner = CliRunner()


def train_args(tmp_path, out):
    train = write_jsonl(tmp_path / "train.jsonl", [spans_record(t, e) for t, e in NER_SENTENCES])
    config = write_jsonl(tmp_path / "c.yaml", ["task: ner"])
    return ["train", str(config), *set_args(tiny_overrides(train, None, out, "train.max_steps=1"))]


def flat(output: str) -> str:
    return " ".join(output.split())


def test_resume_into_a_missing_dir_says_no_checkpoint_and_drop_resume(tmp_path):
    out = tmp_path / "never-trained"
    result = runner.invoke(app, [*train_args(tmp_path, out), "--resume"])
    assert result.exit_code == 2, result.output
    assert f"--resume: no checkpoint found in {out} (the dir does not exist); drop --resume" in flat(result.output)
    assert not out.exists()  # nothing was trained or written


def test_resume_into_a_dir_without_checkpoints_suggests_overwrite(tmp_path):
    out = tmp_path / "run"
    (out / "last").mkdir(parents=True)
    (out / "train_log.jsonl").write_text("", encoding="utf-8")
    result = runner.invoke(app, [*train_args(tmp_path, out), "--resume"])
    assert result.exit_code == 2, result.output
    assert (f"--resume: no checkpoint found in {out}; drop --resume and add --overwrite to start a new run there "
            "(it holds last, train_log.jsonl)") in flat(result.output)
    assert sorted(p.name for p in out.iterdir()) == ["last", "train_log.jsonl"]
