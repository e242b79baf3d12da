"""Signals and interrupted writes (issue 19): the first SIGTERM saves a checkpoint and says so, the second
stops at once; a dir swap cut between its renames is recovered; a resumed run logs each step once."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings

import pytest

from gplinker.manifest import verify
from gplinker.training.checkpoints import prepare_output_dir
from gplinker.training.train_log import truncate_log
from tests.conftest import NER_SENTENCES, set_args, spans_record, tiny_overrides, write_jsonl

TWO_SIGNALS = """import os, signal, time, torch
from gplinker.training.stop_signals import StopSignals
with StopSignals() as stop:
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.1)
    print("first:", stop.requested(torch.device("cpu")), flush=True)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)
    print("still running", flush=True)
"""


def test_the_first_signal_asks_to_stop_and_the_second_kills_at_once():
    proc = subprocess.run([sys.executable, "-c", TWO_SIGNALS], capture_output=True, text=True, timeout=120)
    assert proc.stdout.splitlines() == ["first: True"]
    assert proc.returncode == -signal.SIGTERM


def test_sigterm_saves_a_checkpoint_says_so_and_the_run_resumes_from_it(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", [spans_record(t, e) for t, e in NER_SENTENCES])
    cfg = write_jsonl(tmp_path / "c.yaml", ["task: ner"])
    out = tmp_path / "run"
    command = [sys.executable, "-m", "gplinker", "train", str(cfg),
               *set_args(tiny_overrides(train, None, out, "train.max_steps=40", "train.eval_every=1000",
                                        "train.device=cpu"))]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    log = out / "train_log.jsonl"
    deadline = time.monotonic() + 300
    while not (log.is_file() and len(log.read_text().splitlines()) >= 3):
        assert proc.poll() is None, proc.stdout.read()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signal.SIGTERM, output
    text = "".join(output.split())
    steps = [p for p in out.glob("checkpoint-*")]
    assert len(steps) == 1
    step = int(steps[0].name.split("-")[1])
    assert 3 <= step < 40
    assert "".join(f"stopped by SIGTERM at step {step}: saved {steps[0]}; continue with --resume".split()) in text
    assert verify(steps[0]) == "verified"
    assert not (out / "last").exists()

    resumed = subprocess.run([*command, "--resume"], capture_output=True, text=True, env=env, timeout=600)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    logged = [json.loads(x)["step"] for x in log.read_text().splitlines() if json.loads(x)["event"] == "train"]
    assert logged == list(range(1, 41))  # each step once


def test_a_swap_cut_between_its_renames_loads_the_old_copy_and_the_next_run_puts_it_back(tiny_model_dir, tmp_path):
    from gplinker.data.examples import Example
    from gplinker.modeling.model import GPLinkerModel
    from gplinker.predict import Predictor

    out = tmp_path / "run"
    out.mkdir()
    old = shutil.copytree(tiny_model_dir, out / ".best.old-4242")
    shutil.copytree(tiny_model_dir, out / ".best.tmp-4242")  # the new copy, never renamed into place
    with pytest.warns(UserWarning, match=r"run/best is missing: a run was killed while replacing it; loading the "
                                         r"previous copy .*\.best\.old-4242"):
        predictor = Predictor.from_pretrained(out / "best", device="cpu")  # model, tokenizer and all
    assert len(predictor.predict([Example(text="张伟在北京")])) == 1
    assert prepare_output_dir(out) == [f"{out / 'best'}: put back the previous copy (a run was killed while "
                                       "replacing it)"]
    assert sorted(p.name for p in out.iterdir()) == ["best"]
    assert not old.exists()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a whole dir with its manifest: no warning
        GPLinkerModel.load(out / "best")


def test_an_old_copy_beside_a_whole_dir_is_removed(tiny_model_dir, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(tiny_model_dir, out / "best")
    shutil.copytree(tiny_model_dir, out / ".best.old-77")
    assert prepare_output_dir(out) == []
    assert sorted(p.name for p in out.iterdir()) == ["best"]


def test_truncate_log_keeps_the_lines_up_to_the_checkpoint_step(tmp_path):
    log = tmp_path / "train_log.jsonl"
    lines = [{"event": "train", "step": s} for s in range(1, 7)] + [{"event": "eval", "step": 4}]
    log.write_text("".join(json.dumps(x) + "\n" for x in lines) + '{"event": "tr', encoding="utf-8")
    assert truncate_log(log, 4) == 3  # steps 5 and 6, and the line a crash cut short
    assert [json.loads(x) for x in log.read_text().splitlines()] == [x for x in lines if x["step"] <= 4]
    assert truncate_log(tmp_path / "none.jsonl", 4) == 0
