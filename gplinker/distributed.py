"""torch.distributed glue for `torchrun`: NCCL on GPUs, gloo on CPU. One process = one rank.

Without torchrun (no WORLD_SIZE in the environment) every function here is a no-op, so the
same code runs single-process.
"""

from __future__ import annotations

import atexit
import os
import sys
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, TypeVar, cast

import numpy as np
import numpy.typing as npt
import torch
import torch.distributed as dist

T = TypeVar("T")
Shardable = TypeVar("Shardable", bound=Sequence[Any] | npt.NDArray[np.int64])


def launched() -> bool:
    """True inside a torchrun launch with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(device_name: str = "auto") -> torch.device | None:
    """Join the process group (once); return this rank's GPU under torchrun, else None (the caller picks)."""
    if launched() and not dist.is_initialized():
        use_cuda = torch.cuda.is_available() and device_name != "cpu"
        if use_cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if use_cuda else "gloo", timeout=timedelta(minutes=30))
    if launched() and torch.cuda.is_available() and device_name != "cpu":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return None  # let the caller pick


def teardown() -> None:
    """Leave the process group at the end of a torchrun command, all ranks together, and end this process.

    Without the barrier, a rank that finishes early destroys its gloo group while rank 0 is still
    writing output, and its gloo threads can abort the process ("terminate called without an
    active exception", exit -6). The same abort came, rarely, after the barrier (one CI run of a
    2-rank predict, on an AMD EPYC; 0 of 21 runs here reproduced it): that message is C++'s for a
    thread object destroyed while its thread still runs, as gloo's can at the interpreter's
    finalization, which tears down what destroy_process_group leaves. So once the group is gone
    and every rank's work is done, the rank runs Python's exit handlers, flushes its output and
    leaves with os._exit(0), skipping finalization. Without torchrun this is a no-op.
    """
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
        atexit._run_exitfuncs()  # what a normal exit would run: temp dirs, loggers
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def active() -> bool:
    """True when a process group of more than one rank is initialised."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 without torchrun)."""
    return dist.get_rank() if active() else 0


def world_size() -> int:
    """The number of ranks (1 without torchrun)."""
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    """True on rank 0, the rank that writes output."""
    return rank() == 0


def barrier() -> None:
    """Wait for every rank (a no-op without torchrun)."""
    if active():
        dist.barrier()


def gather_objects(obj: T) -> list[T]:
    """Every rank's `obj`, in rank order, on every rank."""
    if not active():
        return [obj]
    out: list[Any] = [None] * world_size()  # filled in by all_gather_object
    dist.all_gather_object(out, obj)
    return out


def mean_scalar(value: float, device: torch.device) -> float:
    """The mean of a float over ranks (for logging)."""
    if not active():
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item()) / world_size()


def shard(items: Shardable, k: int | None = None, n: int | None = None) -> Shardable:
    """This rank's share: items k, k + n, k + 2n, ... (of a list, or of an index array)."""
    k = rank() if k is None else k
    n = world_size() if n is None else n
    return cast(Shardable, items[k::n])


def unshard(parts: list[list[T]]) -> list[T]:
    """Inverse of `shard` over all ranks: interleave the parts back into the original order."""
    out: list[T] = []
    longest = max((len(p) for p in parts), default=0)
    for i in range(longest):
        for p in parts:
            if i < len(p):
                out.append(p[i])
    return out
