"""One writer at a time (issue 19): a training locks its output_dir, a predict its -o file; a lock whose
owner died is taken over; predict refuses an -o that is its own input."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from gplinker.cli import app
from gplinker.errors import GPLinkerError
from gplinker.locks import LOCK_FILE, hold_lock, lock_file_for
from tests.conftest import NER_SENTENCES, set_args, spans_record, tiny_overrides, write_jsonl

runner = CliRunner()

HOLD = """import sys
from pathlib import Path
from gplinker.locks import hold_lock
with hold_lock(Path(sys.argv[1]), "a test"):
    print("held", flush=True)
    sys.stdin.read()
"""


def says(output: str, text: str) -> bool:
    return "".join(text.split()) in "".join(output.split())


@pytest.fixture
def holder():
    """Start a process that holds a lock until its stdin closes; yields a function lock path -> process."""
    procs = []

    def start(lock):
        proc = subprocess.Popen([sys.executable, "-c", HOLD, str(lock)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "held"
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_a_second_holder_is_refused_with_the_first_ones_pid(tmp_path, holder):
    lock = tmp_path / "x.lock"
    proc = holder(lock)
    with pytest.raises(GPLinkerError, match=rf"x.lock: job is already running \(process {proc.pid} holds"):
        with hold_lock(lock, "job"):
            pass
    proc.stdin.close()
    assert proc.wait(timeout=30) == 0
    with hold_lock(lock, "job") as stale:
        assert stale is None  # released cleanly: nothing stale
        assert lock.read_text().strip() == str(os.getpid())
    assert not lock.exists()  # released: removed


def test_a_lock_whose_owner_was_killed_is_taken_over_and_named(tmp_path, holder):
    lock = tmp_path / "x.lock"
    proc = holder(lock)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with hold_lock(lock, "job") as stale:
        assert stale == str(proc.pid)


def test_train_refuses_an_output_dir_another_run_holds(tmp_path, holder):
    out = tmp_path / "run"
    out.mkdir()
    proc = holder(out / LOCK_FILE)
    train = write_jsonl(tmp_path / "train.jsonl", [spans_record(t, e) for t, e in NER_SENTENCES])
    config = write_jsonl(tmp_path / "c.yaml", ["task: ner"])
    result = runner.invoke(app, ["train", str(config), *set_args(tiny_overrides(train, None, out,
                                                                                "train.max_steps=1"))])
    assert result.exit_code == 2, result.output
    assert says(result.output, f"a training into {out} is already running (process {proc.pid} holds this lock)")
    assert sorted(p.name for p in out.iterdir()) == [LOCK_FILE]  # nothing written beside it


def test_predict_refuses_an_output_that_is_its_input(tiny_model_dir, tmp_path):
    data = write_jsonl(tmp_path / "in.jsonl", [{"text": "张伟在北京"}])
    before = data.read_bytes()
    for target in (data, tmp_path / "sub" / ".." / "in.jsonl"):
        (tmp_path / "sub").mkdir(exist_ok=True)
        result = runner.invoke(app, ["predict", str(tiny_model_dir), str(data), "-o", str(target)])
        assert result.exit_code == 2, result.output
        assert says(result.output, f"is the input file {data}")
    link = tmp_path / "link.jsonl"
    link.symlink_to(data)
    result = runner.invoke(app, ["predict", str(tiny_model_dir), str(link), "-o", str(data)])
    assert result.exit_code == 2, result.output
    assert data.read_bytes() == before


def test_predict_refuses_an_output_another_predict_holds(tiny_model_dir, tmp_path, holder):
    data = write_jsonl(tmp_path / "in.jsonl", [{"text": "张伟在北京"}])
    out = tmp_path / "out.jsonl"
    proc = holder(lock_file_for(out))
    result = runner.invoke(app, ["predict", str(tiny_model_dir), str(data), "-o", str(out)])
    assert result.exit_code == 2, result.output
    assert says(result.output, f"a predict into {out} is already running (process {proc.pid}")
    assert not out.exists()
    proc.stdin.close()
    proc.wait(timeout=30)
    result = runner.invoke(app, ["predict", str(tiny_model_dir), str(data), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert len(out.read_text().splitlines()) == 1
