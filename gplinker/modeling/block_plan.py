"""How the pointer heads and the sparse loss cut their work into blocks, decided once per device.

On a CPU, blocks of 2^18 cells (1 MiB of float32) keep each block's temporaries in cache, and
reading a value back (is everything finite? where does each row's list of positives start?) is
free, so the code may take a fast path and check it afterwards. On an accelerator each block is a
kernel launch or several, and each read-back stalls the host until the device's queue drains; so
blocks are as large as a (B, H, L, L) step of a BERT-base batch (one block per head and step), and
nothing in the forward or backward reads a value back: the exact path is always taken.

`plan_for(device)` is the only place that looks at the device type; `forced(plan)` makes every
device use one plan (tests run the accelerator plan on the CPU and compare it with the CPU plan).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class BlockPlan:
    """Cells per block, and whether the code may read values back to the host to pick a faster path."""

    cells: int
    host_checks: bool


CPU_PLAN = BlockPlan(cells=1 << 18, host_checks=True)
ACCELERATOR_PLAN = BlockPlan(cells=1 << 26, host_checks=False)  # 64M cells: 256 MiB per float32 block buffer

_forced: list[BlockPlan] = []


def plan_for(device: torch.device) -> BlockPlan:
    """The plan of tensors on `device` (CPU_PLAN on the CPU, ACCELERATOR_PLAN elsewhere), unless one is forced."""
    if _forced:
        return _forced[-1]
    return CPU_PLAN if device.type == "cpu" else ACCELERATOR_PLAN


@contextmanager
def forced(plan: BlockPlan) -> Iterator[None]:
    """Use `plan` on every device inside the block."""
    _forced.append(plan)
    try:
        yield
    finally:
        _forced.pop()
