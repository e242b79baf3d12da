"""The machine line printed above every benchmark table (shared by the scripts/bench_*.py)."""

from __future__ import annotations

import datetime
import os
import platform

import torch


def machine() -> str:
    """CPU model, cores, torch threads, load average and date: the context every table needs."""
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), "
            f"load avg {load}, {datetime.datetime.now():%Y-%m-%d %H:%M}")
