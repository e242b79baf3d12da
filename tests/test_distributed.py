"""DDP on CPU: torchrun with 2 gloo processes follows the single-process run for the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import torch
from safetensors.torch import load_file

from tests.conftest import NER_SENTENCES, set_args, spans_record, tiny_overrides, write_jsonl


def launch(args: list[str], nproc: int, cwd) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", "--standalone",
           "-m", "gplinker", *args] if nproc > 1 else [sys.executable, "-m", "gplinker", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


def train_with(tmp_path, cfg, train, dev, nproc: int, *extra: str):
    """`gplinker train` under torchrun with `nproc` processes (global batch 8, eval every 2 steps) into np{nproc}/."""
    out = tmp_path / f"np{nproc}"
    sets = tiny_overrides(train, dev, out, "train.batch_size=8", "train.eval_every=2", "train.device=cpu", *extra)
    result = launch(["train", str(cfg), *set_args(sets)], nproc, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_two_gloo_processes_match_one_process(tmp_path):
    rows = [spans_record(t, e) for t, e in NER_SENTENCES] * 2  # 16 windows: 2 global batches of 8
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    dev = write_jsonl(tmp_path / "dev.jsonl", rows[:5])  # odd size: the shards differ in length
    cfg = write_jsonl(tmp_path / "c.yaml", ["task: ner"])
    runs = {nproc: train_with(tmp_path, cfg, train, dev, nproc, "train.max_steps=4", "model.scratch.dropout=0.0")
            for nproc in (1, 2)}
    h1 = json.loads((runs[1] / "history.json").read_text())
    h2 = json.loads((runs[2] / "history.json").read_text())
    assert [h["step"] for h in h1] == [h["step"] for h in h2] == [2, 4]
    for a, b in zip(h1, h2):  # every dev example scored exactly once, with the same predictions
        assert a["score"] == b["score"] and a["span_precision"] == b["span_precision"]
    w1, w2 = (
        load_file(str(runs[1] / "last" / "model.safetensors")),
        load_file(str(runs[2] / "last" / "model.safetensors")),
    )
    for k in w1:
        torch.testing.assert_close(w1[k], w2[k], rtol=1e-4, atol=1e-5)
    # rank 0 alone wrote logs and checkpoints
    assert len([x for x in (runs[2] / "train_log.jsonl").read_text().splitlines() if '"eval"' in x]) == 2


def test_predict_sharded_over_two_ranks_writes_one_ordered_output(tmp_path):
    from gplinker.commands.train import train
    from gplinker.config import load_config

    rows = [spans_record(t, e) for t, e in NER_SENTENCES]
    data = write_jsonl(tmp_path / "train.jsonl", rows)
    train(load_config(None, tiny_overrides(data, None, tmp_path / "m", "train.max_steps=30")))
    lines = [
        json.dumps({"id": k, "text": t * (1 + k % 3)}, ensure_ascii=False) for k, (t, _) in enumerate(NER_SENTENCES)
    ]
    lines[3] = "{bad json"
    src = write_jsonl(tmp_path / "in.jsonl", lines * 3)
    outputs = {}
    for nproc in (1, 2):
        out = tmp_path / f"out{nproc}.jsonl"
        result = launch(["predict", str(tmp_path / "m" / "last"), str(src), "-o", str(out), "--device", "cpu"],
                        nproc, tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        outputs[nproc] = out.read_text(encoding="utf-8").splitlines()
    assert len(outputs[2]) == len(lines) * 3
    assert outputs[1] == outputs[2]


def test_with_dropout_two_processes_draw_other_masks_than_one(tmp_path):
    """README's condition, tested: the N-process run equals the 1-process run only without dropout. With
    dropout each rank draws its own masks (seed + rank), so the weights differ after the first step."""
    rows = [spans_record(t, e) for t, e in NER_SENTENCES] * 2
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    cfg = write_jsonl(tmp_path / "c.yaml", ["task: ner"])
    weights = {nproc: load_file(str(train_with(tmp_path, cfg, train, None, nproc, "train.max_steps=2",
                                               "model.scratch.dropout=0.1") / "last" / "model.safetensors"))
               for nproc in (1, 2)}
    worst = max((weights[1][k] - weights[2][k]).abs().max().item() for k in weights[1])
    assert worst > 1e-4, worst
