"""scripts/bench_heads.py --smoke runs end to end (no timing is asserted: it only must not rot)."""

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_heads.py"


def test_bench_heads_smoke_prints_its_table():
    done = subprocess.run([sys.executable, str(SCRIPT), "--smoke"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("| shape | implementation |") for line in lines)
    for shape in ("duie-smoke", "cluener-smoke"):
        assert any(line.startswith(f"| {shape} | gplinker |") for line in lines), done.stdout
    # without bert4torch (the project's own env) the script says so and still times gplinker
    assert "bert4torch not importable" in done.stdout or any("| bert4torch |" in line for line in lines)
