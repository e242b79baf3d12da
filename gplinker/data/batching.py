"""Batches: length-bucketed order for training, length-sorted order for inference, and collate.

Targets stay sparse: collate turns each window's positive cells into flat indices i*L + j of the
padded batch, shape (B, C, K) padded with -1. No dense (B, C, L, L) label tensor is ever built.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np
import numpy.typing as npt
import torch

from gplinker.data.encoding import Window


def train_batches(lengths: Sequence[int] | npt.NDArray[np.integer[Any]], batch_size: int, seed: int, epoch: int,
                  bucket: int = 50) -> list[npt.NDArray[np.int64]]:
    """Shuffled batches of similar length: shuffle, sort within chunks of `bucket` batches, shuffle batches.

    Deterministic in (seed, epoch), so a resumed run replays the same order. Each batch is an
    int64 array of window indices (a million windows cost a few MB, not a Python int each);
    sorting is stable, longest first.
    """
    sizes = np.asarray(lengths, dtype=np.int64)
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    order = torch.randperm(len(sizes), generator=g).numpy()
    chunk = batch_size * bucket
    batches: list[npt.NDArray[np.int64]] = []
    for a in range(0, len(order), chunk):
        part = order[a : a + chunk]
        part = part[np.argsort(-sizes[part], kind="stable")]
        batches.extend(part[b : b + batch_size] for b in range(0, len(part), batch_size))
    shuffle = torch.randperm(len(batches), generator=g).tolist()
    return [batches[k] for k in shuffle]


# BatchCost.for_cpu, fitted by scripts/fit_batch_cost.py (2026-12-02 14:57 and 15:46, AMD EPYC, 2 cores, idle) to
# forward times of scratch BERTs 64 x 1, 256 x 4, 512 x 6 and 768 x 12 on 1 and 2 threads: overhead x width / threads
# was 9,000-26,000 tokens (the 64-wide model's the noisiest), and q mostly 3-8 times the width; the formula is
# within 2x of every fit.
CPU_OVERHEAD_WIDTH_TOKENS = 14_000.0
CPU_QUADRATIC_PER_WIDTH = 5.0


@dataclass(frozen=True)
class BatchCost:
    """The cost model of `inference_batches`, in token units: a forward pass costs a fixed `overhead` plus, per
    window padded to length L, L + L**2 / `quadratic_tokens` (the linear layers per token; the L x L attention
    and pointer grids).

    On a CPU a forward of a few short windows costs as much as many tokens of a full one (small matrix
    products, Python and dispatch per layer): the narrower the model and the more threads share each
    token's work, the more tokens that is. The default (256, 256) predates the fit and stays for
    other devices.
    """

    overhead: float = 256.0
    quadratic_tokens: float = 256.0

    @classmethod
    def for_cpu(cls, width: int, threads: int) -> BatchCost:
        """The cost model of an encoder of hidden size `width` on `threads` CPU threads: per forward about
        14,000 x threads / width tokens, and attention as dear as the linear layers at 5 x width tokens.

        Per token the linear layers cost ~width² per layer and the attention ~L·width per layer (their
        ratio L/width up to a constant), while the fixed cost per layer barely grows with width.
        """
        width, threads = max(1, width), max(1, threads)
        return cls(overhead=CPU_OVERHEAD_WIDTH_TOKENS * threads / width,
                   quadratic_tokens=CPU_QUADRATIC_PER_WIDTH * width)

    def window(self, length: int) -> float:
        """The cost of one window padded to `length` tokens."""
        return length + length**2 / self.quadratic_tokens

    def of(self, lengths: Sequence[int], batches: Sequence[Sequence[int]]) -> float:
        """The cost of `batches` (lists of indices into `lengths`): per batch overhead + n * window(its longest)."""
        return sum(self.overhead + len(b) * self.window(max(lengths[k] for k in b)) for b in batches)


DEFAULT_COST = BatchCost()


def inference_batches(lengths: Sequence[int], batch_size: int, cost: BatchCost = DEFAULT_COST) -> list[list[int]]:
    """Batches of at most `batch_size` windows in length order (longest first); callers restore the order.

    Each batch pads to its longest window, so where the sorted order is cut matters when lengths
    are mixed (a server's micro-batch: a few long windows among many short ones). The windows are
    cut into groups at boundaries between lengths, each group into consecutive pieces of
    `batch_size`; the groups minimise `cost` exactly among such cuts (dynamic programming over
    the runs of equal length). One group of everything, the plain chunks of the sorted order, is
    among them, so the cost is never higher than theirs.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    order = sorted(range(len(lengths)), key=lambda k: -lengths[k])
    runs: list[tuple[int, int]] = []  # (length, count) of each run of equal lengths in `order`
    for k in order:
        if runs and runs[-1][0] == lengths[k]:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((lengths[k], 1))
    # best[j]: the least cost of the windows of the first j runs; cut[j]: the first run of the last group
    best, cut = [0.0] + [math.inf] * len(runs), [0] * (len(runs) + 1)
    for i in range(len(runs)):
        windows, full, last = 0, 0.0, 0.0  # windows in runs i..j-1; cost of the group's full pieces, of its last
        for j in range(i + 1, len(runs) + 1):
            length, count = runs[j - 1]
            while count:  # the run's windows fill the last piece, then open new ones
                room = batch_size - windows % batch_size if windows % batch_size else 0
                if room == 0:  # a new piece starts with this run: it pads to this run's length
                    full += last
                    piece_cost = cost.window(length)
                    last, room = cost.overhead, batch_size
                take = min(room, count)
                last += take * piece_cost
                windows, count = windows + take, count - take
            total = best[i] + full + last
            if total < best[j]:
                best[j], cut[j] = total, i
    groups: list[int] = []  # windows per group, the last group first
    j = len(runs)
    while j > 0:
        groups.append(sum(count for _, count in runs[cut[j] : j]))
        j = cut[j]
    batches: list[list[int]] = []
    start = 0
    for size in reversed(groups):
        batches.extend(order[b : min(b + batch_size, start + size)] for b in range(start, start + size, batch_size))
        start += size
    return batches


Batch = dict[str, torch.Tensor]  # input_ids, attention_mask: (B, L)
LabelledBatch = dict[str, torch.Tensor | dict[str, torch.Tensor]]  # also labels: head name -> (B, C, K)


@overload
def collate(windows: Sequence[Window], pad_id: int, head_channels: None = None) -> Batch: ...
@overload
def collate(windows: Sequence[Window], pad_id: int, head_channels: dict[str, int]) -> LabelledBatch: ...
def collate(
    windows: Sequence[Window], pad_id: int, head_channels: dict[str, int] | None = None
) -> Batch | LabelledBatch:
    """Pad a batch; with `head_channels` (head name -> channels) also build sparse labels from window.targets."""
    B, L = len(windows), max(len(w) for w in windows)
    input_ids = torch.full((B, L), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((B, L), dtype=torch.long)
    for b, w in enumerate(windows):
        input_ids[b, : len(w)] = torch.tensor(w.input_ids, dtype=torch.long)
        attention_mask[b, : len(w)] = 1
    batch: LabelledBatch = {"input_ids": input_ids, "attention_mask": attention_mask}
    if head_channels is not None:
        batch["labels"] = {name: sparse_labels(windows, name, channels, L) for name, channels in head_channels.items()}
    return batch


def sparse_labels(windows: Sequence[Window], head: str, channels: int, length: int) -> torch.Tensor:
    """(B, C, K) flat positive indices i*L + j per (window, channel), -1 padded; K >= 1."""
    per: list[list[list[int]]] = [[[] for _ in range(channels)] for _ in windows]  # [window][channel] -> cells
    for b, w in enumerate(windows):
        for c, i, j in (w.targets or {}).get(head, ()):
            per[b][c].append(i * length + j)
    k = max([1] + [len(set(cells)) for row in per for cells in row])
    labels = torch.full((len(windows), channels, k), -1, dtype=torch.long)
    for b, row in enumerate(per):
        for c, cells in enumerate(row):
            if cells:
                unique = sorted(set(cells))
                labels[b, c, : len(unique)] = torch.tensor(unique, dtype=torch.long)
    return labels
