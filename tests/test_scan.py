"""mapping.scan: whole-table passes read the Arrow files past the memory map, row for row as the Dataset."""

from __future__ import annotations

from pathlib import Path

import datasets
import pyarrow as pa
import pytest

from gplinker.data import mapping
from gplinker.data.mapping import map_in_chunks, open_files, scan
from gplinker.data.window_table import WindowTable


def mapped_files(tmp_path: Path, n: int, monkeypatch) -> datasets.Dataset:
    """n rows (i, text of i, a 200-byte payload) mapped into several Arrow files of several record batches."""
    monkeypatch.setattr(mapping, "CHUNK_ROWS", 70)  # several map calls, so several files
    monkeypatch.setattr(mapping, "MAP_BATCH", 16)  # several record batches per file
    source = datasets.Dataset.from_dict({"i": list(range(n))})

    def rows(batch, indices):
        return {"i": batch["i"], "text": [f"t{i}" for i in batch["i"]], "payload": ["x" * 200 for _ in batch["i"]],
                "length": [i % 7 for i in batch["i"]], "unplaced": [i % 2 for i in batch["i"]]}

    _, files = map_in_chunks(source, rows, directory=tmp_path, name="rows", fn_kwargs={}, num_proc=1, progress=None,
                             description="rows")
    assert len(files) > 1
    return open_files(tmp_path, files)


def test_scan_yields_every_row_in_order_in_parts_of_about_rows(tmp_path, monkeypatch):
    dataset = mapped_files(tmp_path, 203, monkeypatch)
    parts = list(scan(dataset, ["i", "text"], rows=50))
    assert [p.column_names for p in parts] == [["i", "text"]] * len(parts)
    assert all(50 <= p.num_rows < 50 + 16 for p in parts[:-1])
    assert [i for p in parts for i in p["i"].to_pylist()] == list(range(203))
    assert [t for p in parts for t in p["text"].to_pylist()] == dataset["text"]


def test_a_kept_part_holds_only_its_own_columns(tmp_path, monkeypatch):
    """The record batches read hold every column in one buffer; a part keeps a copy of the columns asked for."""
    dataset = mapped_files(tmp_path, 400, monkeypatch)
    before = pa.total_allocated_bytes()
    parts = list(scan(dataset, ["i"], rows=64))
    held = pa.total_allocated_bytes() - before
    payload = 400 * 200
    assert sum(p.nbytes for p in parts) == 400 * 8
    assert held < payload // 4, f"{held} bytes still allocated after scanning one int column"


def test_in_memory_dataset_is_sliced_and_a_selected_one_is_refused(tmp_path, monkeypatch):
    memory = datasets.Dataset.from_dict({"i": list(range(10)), "s": list("abcdefghij")})
    assert [i for p in scan(memory, ["s"], rows=3) for i in p["s"].to_pylist()] == list("abcdefghij")
    dataset = mapped_files(tmp_path, 100, monkeypatch)
    with pytest.raises(ValueError, match="indices mapping"):
        list(scan(dataset.shuffle(seed=0), ["i"]))
    with pytest.raises(ValueError, match="not made of whole files"):
        list(scan(dataset.select(range(10, 40)), ["i"]))  # contiguous: a slice of the files, no indices mapping


def test_window_rows_are_taken_batch_by_batch_in_the_order_asked(tmp_path, monkeypatch):
    """WindowTable gathers a training batch from the record batches that hold its rows, in the order given."""
    dataset = mapped_files(tmp_path, 300, monkeypatch)
    table = WindowTable(dataset, heads=[])
    assert len(table._batches) > 4 and table.lengths.tolist() == [i % 7 for i in range(300)]
    assert table.unplaced() == 150
    for index in ([299, 0, 17, 16, 150, 17, 3], [5], list(range(299, -1, -1))):
        rows = table._rows(index)
        assert rows["i"].to_pylist() == index and rows["text"].to_pylist() == [f"t{i}" for i in index]
    assert table._rows([]).num_rows == 0
    with pytest.raises(IndexError, match="out of range"):
        table._rows([300])
