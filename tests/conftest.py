"""Shared fixtures: tiny synthetic NER data and a tiny scratch-encoder config, all written at test time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
BERT_VOCAB = REPO.parent / "shared" / "vocab" / "bert-base-chinese"

# Synthetic sentences (written for these tests): entity spans by (surface, type); 北京大学 nests 北京.
NER_SENTENCES = [
    ("张伟在北京大学读书。", [("张伟", "person"), ("北京大学", "org"), ("北京", "loc")]),
    ("李娜去了上海。", [("李娜", "person"), ("上海", "loc")]),
    ("王芳加入了杭州银行。", [("王芳", "person"), ("杭州银行", "org"), ("杭州", "loc")]),
    ("赵磊说南京很美。", [("赵磊", "person"), ("南京", "loc")]),
    ("陈静在武汉大学任教，常去广州。", [("陈静", "person"), ("武汉大学", "org"), ("武汉", "loc"), ("广州", "loc")]),
    ("刘洋和周杰见面了。", [("刘洋", "person"), ("周杰", "person")]),
    ("孙敏毕业于西安大学。", [("孙敏", "person"), ("西安大学", "org"), ("西安", "loc")]),
    ("马超住在成都。", [("马超", "person"), ("成都", "loc")]),
]


def spans_record(text: str, entities: list[tuple[str, str]]) -> dict:
    """A spans-format line; each surface is located at its first occurrence (unique in these texts)."""
    out = []
    for surface, label in entities:
        start = text.index(surface)
        out.append({"start": start, "end": start + len(surface), "type": label, "text": surface})
    return {"text": text, "entities": out}


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows),
                    encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def predict_submission_and_records(model_dir: Path, lines: list[str], tmp_path: Path,
                                   fmt: str) -> tuple[Path, Path]:
    """`gplinker predict` of the same input lines (so the same batches) as a `fmt` submission and as records."""
    from typer.testing import CliRunner

    from gplinker.cli import app

    source = write_jsonl(tmp_path / "in.jsonl", lines)
    submission, records = tmp_path / f"{fmt}.json", tmp_path / "r.json"
    for form, path in ((fmt, submission), ("records", records)):
        result = CliRunner().invoke(app, ["predict", str(model_dir), str(source), "-o", str(path), "--format", form])
        assert result.exit_code == 0, result.output
    return submission, records


@pytest.fixture
def ner_files(tmp_path: Path) -> dict:
    rows = [spans_record(t, e) for t, e in NER_SENTENCES]
    return {"train": write_jsonl(tmp_path / "train.jsonl", rows), "dev": write_jsonl(tmp_path / "dev.jsonl", rows[:4])}


TINY = [
    "model.scratch.hidden_size=32", "model.scratch.num_layers=1", "model.scratch.num_heads=2",
    "model.scratch.intermediate_size=64", "model.scratch.max_position=64", "model.head_size=16",
    "data.max_length=32", "data.stride=8", "train.batch_size=4", "train.lr=3e-3", "train.log_every=1",
    "train.warmup_ratio=0.0",
]


def tiny_overrides(train: Path, dev: Path | None, out: Path, *extra: str) -> list[str]:
    sets = TINY + [f"data.train={train}", f"train.output_dir={out}", *extra]
    return sets + ([f"data.dev={dev}"] if dev else [])


def set_args(overrides: list[str]) -> list[str]:
    args = []
    for o in overrides:
        args += ["--set", o]
    return args


def predict_with_a_bad_second_line(model_dir: Path, lines: list[str], tmp_path: Path) -> list[dict]:
    """`gplinker predict` over `lines` with "{not json" inserted as line 2.

    Checks that every input line gets one output line and that line 2 carries an error naming
    file:2; returns the other records, in input order.
    """
    from typer.testing import CliRunner

    from gplinker.cli import app

    lines = [lines[0], "{not json", *lines[1:]]
    source = write_jsonl(tmp_path / "in.jsonl", lines)
    output = tmp_path / "out.jsonl"
    result = CliRunner().invoke(app, ["predict", str(model_dir), str(source), "-o", str(output)])
    assert result.exit_code == 0, result.output
    records = [json.loads(x) for x in output.read_text(encoding="utf-8").splitlines()]
    assert len(records) == len(lines) and f"{source}:2" in records[1]["error"]
    return records[:1] + records[2:]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A model dir from a few training steps on NER_SENTENCES: for CLI tests where accuracy does not matter."""
    from typer.testing import CliRunner

    from gplinker.cli import app

    tmp = tmp_path_factory.mktemp("tiny_model")
    train = write_jsonl(tmp / "train.jsonl", [spans_record(t, e) for t, e in NER_SENTENCES])
    config = write_jsonl(tmp / "c.yaml", ["task: ner"])
    result = CliRunner().invoke(app, ["train", str(config),
                                      *set_args(tiny_overrides(train, None, tmp / "run", "train.max_steps=2"))])
    assert result.exit_code == 0, result.output
    return tmp / "run" / "best"
