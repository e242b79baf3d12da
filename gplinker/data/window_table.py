"""Training windows in Arrow: one row per window, memory-mapped; batches are gathered from the map.

Columns (written by tasks/training_windows.py):
    example (int64)      row of the corpus the window comes from
    window (int32)       its index among that example's windows
    input_ids (int32[])  token ids, special tokens included
    length (int32)       len(input_ids), for length bucketing
    unplaced (int32)     on an example's first window: its gold items no window can express; else 0
    t_<head> (int32[])   positive cells of that head, flattened (channel, i, j) triples
Nothing per window lives in Python between batches: `lengths` is one numpy array, and `batch`
takes the rows it needs from the memory map. Whole-table passes (lengths, unplaced, span_tokens)
read the files past the map (mapping.scan), so they leave no page of it resident.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from gplinker.data.batching import LabelledBatch
from gplinker.data.mapping import open_files, scan

TARGET_PREFIX = "t_"


def window_features(heads: list[str]) -> Any:
    """Arrow column types of a window table with these heads."""
    import datasets

    ints = datasets.Sequence(datasets.Value("int32"))
    columns = {"example": datasets.Value("int64"), "window": datasets.Value("int32"), "input_ids": ints,
               "length": datasets.Value("int32"), "unplaced": datasets.Value("int32")}
    return datasets.Features({**columns, **{TARGET_PREFIX + h: ints for h in heads}})


@dataclass
class WindowTable:
    """Memory-mapped training windows with their targets; `batch(indices)` collates like batching.collate."""

    dataset: Any  # datasets.Dataset, columns in the module docstring
    heads: list[str]
    files: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._batches = self.dataset.data.table.to_batches()  # record batches over the memory-mapped files
        sizes = np.fromiter((b.num_rows for b in self._batches), dtype=np.int64, count=len(self._batches))
        self._starts = np.concatenate([[0], np.cumsum(sizes)])  # row where each record batch starts, and the end
        lengths, unplaced = [], 0
        for part in scan(self.dataset, ["length", "unplaced"]):  # one pass for both small columns
            lengths.append(np.asarray(part.column("length").to_numpy()))
            unplaced += int(np.asarray(part.column("unplaced").to_numpy()).sum())
        self.lengths: npt.NDArray[np.int32] = np.concatenate(lengths) if lengths else np.zeros(0, dtype=np.int32)
        self._unplaced = unplaced

    def __len__(self) -> int:
        return len(self.dataset)

    def span_tokens(self, head: str, channels: int) -> tuple[list[int], list[int]]:
        """(longest span in tokens, number of spans) per channel of a head's training targets."""
        longest = np.zeros(channels, dtype=np.int64)
        counts = np.zeros(channels, dtype=np.int64)
        for part in scan(self.dataset, [TARGET_PREFIX + head]):
            chunk = part.column(0).combine_chunks()
            cells = np.asarray(chunk.flatten().to_numpy(zero_copy_only=False), dtype=np.int64).reshape(-1, 3)
            if len(cells):
                np.maximum.at(longest, cells[:, 0], cells[:, 2] - cells[:, 1] + 1)
                np.add.at(counts, cells[:, 0], 1)
        return longest.tolist(), counts.tolist()

    def unplaced(self) -> int:
        """Gold items of the kept examples that no window can express."""
        return self._unplaced

    def batch(self, indices: Any, pad_id: int, head_channels: dict[str, int],
              max_spans: dict[str, int | None] | None = None) -> LabelledBatch:
        """Padded input_ids and attention_mask (B, L) and sparse labels (B, C, K) per head, for window `indices`.

        Same tensors as batching.collate over the same windows: labels hold each (window, channel)'s
        sorted distinct cells i * L + j, padded with -1, K >= 1. With max_spans, a head's gold spans of
        more tokens are left out (the head masks those cells, so they cannot be positives).
        """
        rows = self._rows(indices)
        offsets, values = _flat(rows.column("input_ids"))
        sizes = np.diff(offsets)
        b, length = len(sizes), int(sizes.max()) if len(sizes) else 0
        row = np.repeat(np.arange(b), sizes)
        col = np.arange(len(values)) - np.repeat(offsets[:-1], sizes)
        input_ids = torch.full((b, length), pad_id, dtype=torch.long)
        attention_mask = torch.zeros((b, length), dtype=torch.long)
        input_ids[row, col] = torch.from_numpy(values.astype(np.int64))
        attention_mask[row, col] = 1
        limits = max_spans or {}
        labels = {head: _sparse_labels(rows.column(TARGET_PREFIX + head), b, channels, length, limits.get(head))
                  for head, channels in head_channels.items()}
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}

    def _rows(self, indices: Any) -> Any:
        """The rows at `indices`, in that order, as a small pyarrow Table.

        Taken record batch by record batch: pyarrow's Table.take concatenates every chunk of a list
        column before taking from it, which reads the whole memory map for each training batch (6.7 s
        and 1 GB at 1.7M DuIE windows).
        """
        import pyarrow as pa

        index = np.asarray(indices, dtype=np.int64)
        if len(index) and (index.min() < 0 or index.max() >= self._starts[-1]):
            raise IndexError(f"window index out of range 0..{self._starts[-1] - 1}")
        batch = np.searchsorted(self._starts, index, side="right") - 1  # (n,) record batch of each row
        order = np.argsort(batch, kind="stable")  # rows grouped by record batch
        grouped_index, grouped_batch = index[order], batch[order]
        parts = [self._batches[k].take(pa.array(grouped_index[grouped_batch == k] - self._starts[k]))
                 for k in np.unique(batch)]
        grouped = pa.Table.from_batches(parts, schema=self._batches[0].schema) if parts else \
            self.dataset.data.table.slice(0, 0)
        back = np.empty_like(order)
        back[order] = np.arange(len(order))  # row r of the result is row back[r] of `grouped`
        return grouped.take(pa.array(back))  # a take over the few rows just gathered


def _flat(column: Any) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int32]]:
    """(offsets (n + 1,), values) of a list<int32> column taken from the table."""
    array = column.combine_chunks()
    offsets = np.asarray(array.offsets.to_numpy(), dtype=np.int64)
    values = np.asarray(array.values.to_numpy(zero_copy_only=False), dtype=np.int32)
    return offsets - offsets[0], values[offsets[0] : offsets[-1]]


def _sparse_labels(column: Any, b: int, channels: int, length: int, max_span: int | None = None) -> torch.Tensor:
    """(B, C, K) distinct flat cells i * L + j per (window, channel), ascending, -1 padded."""
    offsets, values = _flat(column)
    cells = values.reshape(-1, 3).astype(np.int64)  # (channel, i, j)
    window = np.repeat(np.arange(b), np.diff(offsets) // 3)
    if max_span is not None:
        fits = cells[:, 2] - cells[:, 1] + 1 <= max_span
        cells, window = cells[fits], window[fits]
    keys = (window * channels + cells[:, 0]) * (length * length) + cells[:, 1] * length + cells[:, 2]
    unique = np.unique(keys)  # sorted: by (window, channel), then by cell
    group, cell = unique // (length * length), unique % (length * length)
    position = np.arange(len(unique)) - np.searchsorted(group, group, side="left")
    k = max(1, int(position.max()) + 1 if len(unique) else 1)
    labels = torch.full((b * channels, k), -1, dtype=torch.long)
    labels[torch.from_numpy(group), torch.from_numpy(position)] = torch.from_numpy(cell)
    return labels.view(b, channels, k)


def save_meta(table: WindowTable, directory: Path, extra: dict[str, Any]) -> None:
    """meta.json of a window cache entry: heads, Arrow files and what the encoding reported."""
    meta = {"heads": table.heads, "files": table.files, **extra}
    (directory / "meta.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")


def load_windows(directory: Path) -> tuple[WindowTable, dict[str, Any]]:
    """The window table of a cache entry and its meta.json."""
    meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
    return WindowTable(open_files(directory, meta["files"]), list(meta["heads"]), list(meta["files"])), meta
