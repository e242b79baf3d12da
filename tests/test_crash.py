"""Crash safety: kill -9 a training run mid-way, resume it, and land on the uninterrupted run's weights."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from safetensors.torch import load_file

from tests.conftest import NER_SENTENCES, set_args, spans_record, tiny_overrides, write_jsonl


def test_kill_minus_9_then_resume_matches_uninterrupted_run(tmp_path):
    rows = [spans_record(t, e) for t, e in NER_SENTENCES]
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    cfg = write_jsonl(tmp_path / "c.yaml", ["task: ner"])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def command(out, *extra):
        sets = tiny_overrides(train, train, out, "train.max_steps=120", "train.eval_every=5",
                              "model.scratch.dropout=0.1", "train.device=cpu")
        return [sys.executable, "-m", "gplinker", "train", str(cfg), *set_args(sets), *extra]

    full = tmp_path / "full"
    subprocess.run(command(full), check=True, capture_output=True, env=env, timeout=600)

    crashed = tmp_path / "crashed"
    proc = subprocess.Popen(command(crashed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 300
    while not (crashed / "checkpoint-15" / "trainer_state.pt").exists():
        assert proc.poll() is None, "training ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    assert not (crashed / "last").exists(), "the run was killed before it finished"
    steps_done = max(int(p.name.split("-")[1]) for p in crashed.glob("checkpoint-*") if p.name[11:].isdigit())

    resumed = subprocess.run(command(crashed, "--resume"), capture_output=True, text=True, env=env, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resumed from {crashed / f'checkpoint-{steps_done}'}" in resumed.stderr.replace("\n", "")

    a = load_file(str(full / "last" / "model.safetensors"))
    b = load_file(str(crashed / "last" / "model.safetensors"))
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst <= 1e-6, worst
    history_a = json.loads((full / "history.json").read_text())
    history_b = json.loads((crashed / "history.json").read_text())
    assert [(h["step"], h["score"]) for h in history_a] == [(h["step"], h["score"]) for h in history_b]
    assert not list(crashed.glob(".*.tmp-*")), "no temp dir survives the resumed run"
