"""The machine line printed above every benchmark table, and the CLI's process setup (shared by scripts/bench_*.py)."""

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
    thp = os.environ.get("THP_MEM_ALLOC_ENABLE", "unset")
    gpu = f"{torch.cuda.get_device_name()} (CUDA {torch.version.cuda}), " if torch.cuda.is_available() else ""
    return (f"{gpu}{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), "
            f"THP_MEM_ALLOC_ENABLE={thp}, load avg {load}, {datetime.datetime.now():%Y-%m-%d %H:%M}")


def add_device_flag(parser) -> None:
    parser.add_argument("--device", default="cpu", help="torch device to run on (cpu, cuda, cuda:1, ...)")


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work, so that a timer read after it measures the work (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def add_huge_pages_flag(parser) -> None:
    parser.add_argument("--no-huge-pages", action="store_true",
                        help="leave THP_MEM_ALLOC_ENABLE unset (PyTorch's default) "
                             "instead of setting it as gplinker's CLI does")


def setup_like_cli(args) -> None:
    """Large CPU tensors on transparent huge pages, as `gplinker` sets up its process (cli._process_setup)."""
    if not args.no_huge_pages:
        os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
