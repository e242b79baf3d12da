"""Batches: length-bucketed order for training, length-sorted order for inference, and collate.

Targets stay sparse: collate turns each window's positive cells into flat indices i*L + j of the
padded batch, shape (B, C, K) padded with -1. No dense (B, C, L, L) label tensor is ever built.
"""

from __future__ import annotations

from collections.abc import Sequence
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


def inference_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Batches in length order (longest first), so each pads to its own length; callers restore order."""
    order = sorted(range(len(lengths)), key=lambda k: -lengths[k])
    return [order[a : a + batch_size] for a in range(0, len(order), batch_size)]


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
