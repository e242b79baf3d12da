"""The benchmark scripts run end to end in --smoke mode (tiny shapes) and print their tables; no timing is asserted.

bench_heads, bench_train and bench_predict run inside scripts/gpu_check.sh's dry run (tests/test_gpu_check.py).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

HEADERS = {
    "bench_decode.py": ["| task | head channels | forward s | decode s | decode / forward | items decoded |",
                        "| event clique search (EventTask.decode, one window) | median ms | events |"],
    "bench_cache.py": ["| stage | median s | speed-up |"],
    "bench_compile.py": ["| L | eager ms | compiled ms | compiled / eager |"],
    "bench_cliques.py": ["| graph | edges | maximal cliques | events (1 trigger) | maximal_cliques |"],
    "bench_scale.py": ["| row | measurement | before | now | goal | met |"],
    "bench_long.py": ["| variant | sentence F1 | document F1 | document / sentence |",
                      "| variant | predict window (tokens) | longest training window |"],
    "bench_long.py --task relation": ["sentence vs document triple F1", "| document triples across sentences |"],
    "bench_long.py --task event": ["sentence vs document event F1", "| document events across sentences |"],
    "bench_faults.py": ["| case | outcome |"],
    "bench_light.py": ["| encoder | parameters M | step median s | windows/s | vs scratch BERT | CPU s | "
                       "vs scratch (CPU) | GFLOP (fwd+bwd) | vs scratch (GFLOP) | goal | met |",
                       "| figure | value | minutes | goal | met |"],
    "fit_batch_cost.py": ["| size | threads | overhead a/b (tokens) | q (tokens) | worst fit error | a (ms) | "
                          "BatchCost.for_cpu overhead, q | for_cpu / fit overhead | goal | met |"],
    "bench_serve.py": ["| round | clients | seconds | requests | requests/s | p50 ms | p99 ms | errors | batches |"],
}


@pytest.fixture(scope="module")
def smoke_runs() -> dict:
    """Every script started at once with --smoke (they are mostly import time), then collected."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("GPLINKER_CACHE_DIR", None)
    procs = {name: subprocess.Popen([sys.executable, str(REPO / "scripts" / name.split()[0]), *name.split()[1:],
                                     "--smoke"], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True)
             for name in HEADERS}
    return {name: (p.wait(timeout=600), *p.communicate()) for name, p in procs.items()}


@pytest.mark.parametrize("script", sorted(HEADERS))
def test_smoke_run_exits_0_and_prints_its_tables(smoke_runs, script):
    code, out, err = smoke_runs[script]
    assert code == 0, err[-3000:]
    assert f"# {script.split()[0].removesuffix('.py')}:" in out  # the machine/date line
    for header in HEADERS[script]:
        assert header in out, out
    assert "goal" in out


def test_bench_light_counts_an_lstm_steps_products(monkeypatch):
    """The flop column's LSTM formula: one forward and backward of a 2-layer LSTM over T x B steps is
    3 x sum over layers of 2 T B 4H (I + H) (the counter alone sees no products in nn.LSTM's one CPU op)."""
    import torch

    monkeypatch.syspath_prepend(str(REPO / "scripts"))
    import bench_light

    class Lstm(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(12, 8, num_layers=2, batch_first=True)

        def forward(self, input_ids, attention_mask, labels):  # noqa: ARG002 (GPLinkerModel's call)
            out = self.lstm(input_ids)[0]
            return type("Out", (), {"loss": out.square().sum()})()

    T, B, H = 7, 3, 8
    gflops = bench_light.step_gflops(Lstm(), {"input_ids": torch.randn(B, T, 12), "attention_mask": None,
                                              "labels": None})
    expected = 3 * (2 * T * B * 4 * H * (12 + H) + 2 * T * B * 4 * H * (H + H))
    assert gflops * 1e9 == pytest.approx(expected, rel=0.02)
