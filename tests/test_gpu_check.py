"""scripts/gpu_check.sh: its CPU dry run end to end (so it cannot rot), and how it reports what fails.

The dry run covers the smoke runs of the three scripts it calls (bench_heads, bench_train,
bench_predict); no timing is asserted.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

SCRIPT = REPO / "scripts" / "gpu_check.sh"


def run(results: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    base = {**os.environ, "PYTHONPATH": str(REPO)}
    base.pop("GPLINKER_CACHE_DIR", None)
    return subprocess.run(["bash", str(SCRIPT), *args, str(results)], cwd=REPO, env={**base, **(env or {})},
                          capture_output=True, text=True, timeout=2400)


def sections(text: str) -> dict[str, str]:
    parts = re.split(r"^## (.+)$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory) -> tuple[subprocess.CompletedProcess, dict[str, str]]:
    results = tmp_path_factory.mktemp("gpu_check") / "results.md"
    done = run(results, "--dry-run")
    return done, sections(results.read_text(encoding="utf-8"))


def test_the_dry_run_passes_every_step_and_writes_one_results_file(dry_run):
    done, parts = dry_run
    assert done.returncode == 0, done.stderr[-3000:]
    steps = [name for name in parts if name.startswith(("pytest", "bench_"))]
    assert len(steps) == 4
    for name in steps:
        assert re.search(r"^exit 0 after \d+ s$", parts[name], flags=re.M), (name, parts[name][-2000:])
    assert parts["summary"].strip() == "every step passed"


def test_the_cuda_tests_are_collected_and_skip_without_a_gpu(dry_run):
    _, parts = dry_run
    pytest_part = next(text for name, text in parts.items() if name.startswith("pytest -m cuda"))
    pattern = r"^SKIPPED \[(\d+)\] tests/test_cuda\.py:\d+: needs a CUDA device$"
    skipped = [int(n) for n in re.findall(pattern, pytest_part, flags=re.M)]
    assert sum(skipped) >= 9 and "failed" not in pytest_part.lower()


def test_each_benchmark_prints_its_table(dry_run):
    _, parts = dry_run
    by_script = {name.split(":")[0]: text for name, text in parts.items()}
    heads = by_script["bench_heads"]
    for shape in ("duie-smoke", "cluener-smoke"):
        assert f"| {shape} | gplinker |" in heads
    assert "bert4torch not importable" in heads or "| bert4torch |" in heads  # without it, gplinker alone
    assert "| step | wall median s | wall min s | wall max s | CPU median s | ratio (wall) | ratio (CPU) |" \
        in by_script["bench_train"]
    assert "device cpu, amp bf16" in by_script["bench_train"]
    predict = by_script["bench_predict"]
    assert "| variant | median s | lines/s | windows/s | speed-up vs fixed padding |" in predict
    assert re.search(r"bucketed predict / encoder alone \(windows/s\): \d+\.\d\d", predict)


def stand_in_python(tmp_path: Path, body: str) -> Path:
    """A `python` for the script (PYTHON=...): a shell script with `body`."""
    fake = tmp_path / "python"
    fake.write_text("#!/usr/bin/env bash\n" + body, encoding="utf-8")
    fake.chmod(0o755)
    return fake


def test_missing_imports_are_named_before_anything_runs(tmp_path):
    fake = stand_in_python(tmp_path, 'if [ "$1" = "-" ]; then echo "seqeval datasets"; fi\nexit 0\n')
    done = run(tmp_path / "results.md", "--dry-run", env={"PYTHON": str(fake)})
    assert done.returncode == 1
    assert "not importable: seqeval datasets (put their wheels in gpu_wheels/" in done.stderr
    assert "pytest" not in (tmp_path / "results.md").read_text(encoding="utf-8")


def test_a_failing_step_fails_the_script_and_the_others_still_run(tmp_path):
    fake = stand_in_python(tmp_path, 'if [ "$2" = "pytest" ]; then echo "2 failed"; exit 1; fi\nexit 0\n')
    done = run(tmp_path / "results.md", "--dry-run", env={"PYTHON": str(fake)})
    parts = sections((tmp_path / "results.md").read_text(encoding="utf-8"))
    assert done.returncode == 1
    assert parts["summary"].strip().startswith("failed: pytest -m cuda") and "(exit 1)" in parts["summary"]
    assert sum(bool(re.search(r"^exit 0 after", t, flags=re.M)) for t in parts.values()) == 3
