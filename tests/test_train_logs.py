"""`gplinker train` with its output going to a file or pipe (nohup, CI) prints timestamped step lines."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from tests.conftest import NER_SENTENCES, REPO, set_args, spans_record, tiny_overrides, write_jsonl


def test_train_to_a_pipe_prints_a_timestamped_line_every_log_every_steps(tmp_path):
    rows = [spans_record(t, e) for t, e in NER_SENTENCES]
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    config = write_jsonl(tmp_path / "c.yaml", ["task: ner"])
    out = tmp_path / "run"
    sets = tiny_overrides(train, train, out, "train.max_steps=4", "train.log_every=2", "train.eval_every=4")
    proc = subprocess.run([sys.executable, "-m", "gplinker", "train", str(config), *set_args(sets)],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
    steps = re.findall(rf"^{stamp} step (\d+)/4 loss \d+\.\d{{4}} lr \S+ \d+ win/s$", proc.stderr, re.M)
    assert steps == ["2", "4"], proc.stderr
    (dev,) = re.findall(rf"^{stamp} step 4: dev score (\d+\.\d\d) \(best \d+\.\d\d at step 4\)$", proc.stderr, re.M)
    logged = [json.loads(x) for x in (out / "train_log.jsonl").read_text(encoding="utf-8").splitlines()]
    (entry,) = [e for e in logged if e["event"] == "eval"]
    assert float(dev) == round(100 * entry["score"], 2)  # the console in percent, the log in fractions
    assert re.search(r"best dev score \d+\.\d\d at step 4", proc.stderr)
