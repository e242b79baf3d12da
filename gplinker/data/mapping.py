"""`Dataset.map` over a large data set in chunks, into named Arrow files, with a rich progress bar.

`datasets` does the work (worker processes with `num_proc`, Arrow files written batch by batch,
memory-mapped on read); this module only splits the input into contiguous chunks so that the
progress bar moves with a rate and an ETA, names the output files so that a cache entry can list
and reopen them, and turns datasets' own progress bars off.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from rich.progress import Progress, TaskID

CHUNK_ROWS = 100_000  # rows per map call at least: each call starts a worker pool (50k: num_proc 2 cost 5-20% more CPU)
MAX_CHUNKS = 24  # at most this many map calls, whatever the size
# rows per call of the mapped function, which is also the rows per Arrow record batch written (datasets
# writes each call's output as its own batch): opening a memory map walks one header per batch
MAP_BATCH = 10_000
SCAN_ROWS = 65_536  # rows per table that `scan` yields


def quiet_datasets() -> None:
    """Silence datasets' progress bars and info logs (gplinker draws its own progress)."""
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()


def map_in_chunks(dataset: Any, function: Callable[..., dict[str, list[Any]]], *, directory: Path, name: str,
                  fn_kwargs: dict[str, Any], num_proc: int, progress: Progress | None, description: str,
                  features: Any = None) -> tuple[Any, list[str]]:
    """(mapped Dataset, its Arrow files in order): `function(batch, indices, **fn_kwargs)` over every row.

    The function is batched and gets the global row indices; it may return any number of rows.
    Files are `directory/<name>-<chunk>[_<rank>_of_<n>].arrow`.
    """
    import datasets

    quiet_datasets()
    n = len(dataset)
    step = max(CHUNK_ROWS, -(-n // MAX_CHUNKS)) if n else 1
    task: TaskID | None = progress.add_task(description, total=n) if progress is not None else None
    parts: list[Any] = []
    files: list[str] = []
    for k, start in enumerate(range(0, n, step)):
        chunk = dataset.select(range(start, min(n, start + step)))
        procs = max(1, min(num_proc, len(chunk) // MAP_BATCH))  # a tiny chunk is not worth a pool
        mapped = chunk.map(
            _with_offset, batched=True, with_indices=True, batch_size=MAP_BATCH,
            remove_columns=chunk.column_names, num_proc=procs if procs > 1 else None,
            fn_kwargs={"function": function, "offset": start, "kwargs": fn_kwargs},
            cache_file_name=str(directory / f"{name}-{k:05d}.arrow"), writer_batch_size=MAP_BATCH,
            new_fingerprint=f"{name}-{k:05d}", load_from_cache_file=False, features=features,
        )
        parts.append(mapped)
        files.extend(f["filename"] for f in mapped.cache_files)
        if progress is not None and task is not None:
            progress.advance(task, len(chunk))
    if progress is not None and task is not None:
        progress.update(task, visible=False)
    if not parts:
        empty = function({c: [] for c in dataset.column_names}, [], **fn_kwargs)
        return datasets.Dataset.from_dict(empty, features=features), []
    return datasets.concatenate_datasets(parts), [str(Path(f).name) for f in files]


def _with_offset(batch: dict[str, list[Any]], indices: list[int], *, function: Callable[..., dict[str, list[Any]]],
                 offset: int, kwargs: dict[str, Any]) -> dict[str, list[Any]]:
    """Call `function` with indices into the whole data set, not into the chunk."""
    return function(batch, [offset + i for i in indices], **kwargs)


def open_files(directory: Path, files: Sequence[str]) -> Any:
    """The Dataset of Arrow files written by map_in_chunks, memory-mapped, in order."""
    import datasets

    quiet_datasets()
    parts = [datasets.Dataset.from_file(str(directory / f)) for f in files]
    return datasets.concatenate_datasets(parts) if len(parts) > 1 else parts[0]


def scan(dataset: Any, columns: Sequence[str], rows: int = SCAN_ROWS) -> Iterator[Any]:
    """`columns` of every row of `dataset`, in order, as pyarrow Tables of about `rows` rows.

    A pass over the memory map itself leaves each page it touched mapped into the process, and
    counted in its RSS, for as long as the map is open: one pass over a 1.7M-line corpus held 1.3 GB.
    So a Dataset made of whole Arrow files (open_files, map_in_chunks) is read file by file through
    buffered reads instead: the bytes pass through the OS page cache, which the kernel reclaims.
    The columns are copied out of the record batches read (whose columns all share one buffer), so
    a table kept holds only its own columns. A Dataset without files (in memory) is sliced as it is.
    """
    import pyarrow as pa

    files = [f["filename"] for f in dataset.cache_files]
    if not files:
        table = dataset.select_columns(list(columns)).with_format("arrow")
        for start in range(0, len(dataset), rows):
            yield table[start : start + rows]
        return
    if dataset._indices is not None:
        raise ValueError("scan reads whole Arrow files; this Dataset has an indices mapping (select/shuffle)")
    pending: list[Any] = []
    count = seen = 0
    for name in files:
        with pa.OSFile(name) as source:
            for batch in pa.ipc.open_stream(source):
                pending.append(batch)
                count += batch.num_rows
                if count >= rows:
                    seen += count
                    yield _copied(pending, columns)
                    pending, count = [], 0
    if pending:
        seen += count
        yield _copied(pending, columns)
    if seen != len(dataset):
        raise ValueError(f"scan read {seen} rows from {len(files)} Arrow file(s) but the Dataset has {len(dataset)}: "
                         "it is not made of whole files")


def _copied(batches: list[Any], columns: Sequence[str]) -> Any:
    """A Table of `columns` of these record batches, in buffers of its own (pa.concat_arrays copies)."""
    import pyarrow as pa

    return pa.table({name: pa.concat_arrays([b.column(name) for b in batches]) for name in columns})
