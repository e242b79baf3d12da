"""Encoded training windows (+ targets) cached on disk, keyed on everything they are computed from.

The key is the sha256 of a JSON object holding:
  - file       sha256 of the training file's bytes (any edit, even a byte, is a new key)
  - tokenizer  sha256 of the fast tokenizer's serialisation (tokenizer.json: vocab, normalizer,
               pre-tokenizer, added tokens), without its per-call truncation/padding state
  - data       max_length, stride, char_level, the resolved format, skip_invalid
  - task       the task name and its label schema (so also its heads and channels)
  - code       sha256 of the source files that read, window and target the data, and CACHE_FORMAT
A changed file, tokenizer, setting, schema or gplinker source therefore never reuses a stale entry.

Storage: one `<key>.safetensors` file per entry: flat integer tensors plus JSON metadata, no pickle,
so a cache file can hold nothing but numbers and strings. Default directory: `<train.output_dir>/cache`
(it lives and dies with the run); set GPLINKER_CACHE_DIR to share one directory across runs (e.g.
~/.cache/gplinker for a sweep), or to "off" to disable caching. Writes are atomic (temp file +
rename); an unreadable entry is a miss and is rewritten; a directory keeps its KEEP newest entries.
"""

from __future__ import annotations

import gc
import hashlib
import importlib.util
import json
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, overload

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from gplinker.data.encoding import Window

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from transformers import PreTrainedTokenizerFast

    from gplinker.data.schema import Schema

CACHE_FORMAT = 1
ENV = "GPLINKER_CACHE_DIR"
KEEP = 4  # entries kept per cache directory, most recently used first
SUFFIX = ".safetensors"
CODE_MODULES = ("gplinker.data.encoding", "gplinker.data.examples", "gplinker.data.formats", "gplinker.data.reading",
                "gplinker.data.duie", "gplinker.data.duee", "gplinker.data.cache", "gplinker.tasks.oracle")

Encode = Callable[[], tuple[list[Window], dict[str, Any]]]  # -> (windows with targets, JSON-able stats)


class KeyedTask(Protocol):
    """What the cache key reads of a task: structural, because data/ sits below tasks/ and may not import it."""

    @property
    def name(self) -> str: ...

    @property
    def schema(self) -> Schema: ...


def cache_dir(output_dir: str | Path) -> Path | None:
    """Where entries go: $GPLINKER_CACHE_DIR ("off" = no cache), else <output_dir>/cache."""
    env = os.environ.get(ENV)
    if env is not None and env.strip().lower() in ("off", "0", "false", "none", ""):
        return None
    return Path(env).expanduser() if env else Path(output_dir) / "cache"


def file_digest(path: str | Path) -> str:
    """sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def tokenizer_digest(tokenizer: PreTrainedTokenizerFast) -> str:
    """sha256 of a fast tokenizer's serialisation, without the truncation/padding it is called with."""
    state = json.loads(tokenizer.backend_tokenizer.to_str())
    state.pop("truncation", None)
    state.pop("padding", None)
    return hashlib.sha256(json.dumps(state, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


@cache
def source_digest(modules: tuple[str, ...]) -> str:
    """sha256 of the source files of `modules` (a code change invalidates what they computed)."""
    h = hashlib.sha256()
    for name in modules:
        spec = importlib.util.find_spec(name)
        origin = spec.origin if spec is not None else None
        h.update(name.encode())
        if origin and Path(origin).is_file():
            h.update(Path(origin).read_bytes())
    return h.hexdigest()


def encoding_key(path: str | Path, tokenizer: PreTrainedTokenizerFast, task: KeyedTask, *, fmt: str, max_length: int,
                 stride: int, char_level: bool, skip_invalid: bool) -> str:
    """The cache key of a training file's windows and targets (what goes into it: module docstring)."""
    parts = {
        "cache_format": CACHE_FORMAT,
        "file": file_digest(path),
        "tokenizer": tokenizer_digest(tokenizer),
        "data": {"format": fmt, "max_length": max_length, "stride": stride, "char_level": char_level,
                 "skip_invalid": skip_invalid},
        "task": {"name": task.name, "schema": task.schema.to_dict()},
        "code": source_digest(CODE_MODULES + (type(task).__module__,)),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


def load_or_encode(directory: Path | None, key: str, encode: Encode) -> tuple[list[Window], dict[str, Any], bool]:
    """(windows, stats, hit): the entry `key` of `directory` if it is there and readable, else encode() and store it."""
    if directory is None:
        windows, stats = encode()
        return windows, stats, False
    path = Path(directory) / f"{key}{SUFFIX}"
    if path.is_file():
        try:
            windows, stats = read_windows(path)
            os.utime(path)  # most recently used
            return windows, stats, True
        except Exception:  # noqa: BLE001 -- a truncated or foreign file is a miss, rewritten below
            pass
    windows, stats = encode()
    write_windows(path, windows, stats)
    prune(Path(directory), KEEP)
    return windows, stats, False


def write_windows(path: Path, windows: Sequence[Window], stats: dict[str, Any]) -> None:
    """Store windows and their targets as flat int tensors (+ JSON metadata) in one safetensors file, atomically."""
    heads = list(dict.fromkeys(h for w in windows if w.targets for h in w.targets))
    lengths = torch.tensor([len(w) for w in windows], dtype=torch.int64)
    offsets = torch.zeros(len(windows) + 1, dtype=torch.int64)
    offsets[1:] = torch.cumsum(lengths, 0)
    tensors = {
        "example_index": torch.tensor([w.example_index for w in windows], dtype=torch.int64),
        "window_index": torch.tensor([w.window_index for w in windows], dtype=torch.int64),
        "has_targets": torch.tensor([w.targets is not None for w in windows], dtype=torch.bool),
        "offsets": offsets,
        "input_ids": torch.tensor([i for w in windows for i in w.input_ids], dtype=torch.int64),
        "char_spans": torch.tensor([s for w in windows for s in w.char_spans], dtype=torch.int64).reshape(-1, 2),
    }
    for k, head in enumerate(heads):
        rows = [(b, c, i, j) for b, w in enumerate(windows) for c, i, j in (w.targets or {}).get(head, ())]
        tensors[f"targets.{k}"] = torch.tensor(rows, dtype=torch.int64).reshape(-1, 4)  # (M, 4): window, c, i, j
    metadata = {"cache_format": str(CACHE_FORMAT), "heads": json.dumps(heads, ensure_ascii=False),
                "stats": json.dumps(stats, ensure_ascii=False)}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    save_file(tensors, str(tmp), metadata=metadata)
    os.replace(tmp, path)


def read_windows(path: Path) -> tuple[list[Window], dict[str, Any]]:
    """Inverse of write_windows."""
    with gc_paused():
        return _read_windows(path)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many small objects, then restore it.

    The collector only finds cycles, and there are none here; left on, the ~10^6 tuples of a large
    file trigger repeated full collections, which makes reading about 3x slower.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _read_windows(path: Path) -> tuple[list[Window], dict[str, Any]]:
    """read_windows without the gc pause."""
    # numpy arrays and flat tolist(): nested torch tolist() is ~20x slower
    with safe_open(str(path), framework="numpy") as f:
        metadata = f.metadata() or {}
        if metadata.get("cache_format") != str(CACHE_FORMAT):
            raise ValueError(f"{path}: not a gplinker cache file of format {CACHE_FORMAT}")
        t = {name: f.get_tensor(name) for name in f.keys()}
    heads = json.loads(metadata["heads"])
    offsets = t["offsets"].tolist()
    ids = t["input_ids"].tolist()
    spans = t["char_spans"]  # (T, 2)
    windows = [
        Window(example_index=e, input_ids=ids[offsets[b] : offsets[b + 1]],
               char_spans=SpanRows(spans[offsets[b] : offsets[b + 1]]),
               window_index=w, targets={h: [] for h in heads} if has else None)
        for b, (e, w, has) in enumerate(zip(t["example_index"].tolist(), t["window_index"].tolist(),
                                            t["has_targets"].tolist()))
    ]
    for k, head in enumerate(heads):
        rows = t[f"targets.{k}"]  # (M, 4): window, c, i, j
        for b, c, i, j in zip(*(rows[:, col].tolist() for col in range(4))):
            windows[b].targets[head].append((c, i, j))
    return windows, json.loads(metadata["stats"])


class SpanRows(Sequence[tuple[int, int]]):
    """A cached window's char_spans: rows of an (n, 2) int array, read as (start, end) tuples on access.

    Training reads only input_ids and targets of its windows, so the cache does not build the
    ~10^6 span tuples of a large file up front (that would take about 40% of the read time).
    """

    __slots__ = ("rows",)

    def __init__(self, rows: npt.NDArray[np.int64]):
        self.rows = rows  # (n, 2): start, end per position

    def __len__(self) -> int:
        return len(self.rows)

    @overload
    def __getitem__(self, k: int) -> tuple[int, int]: ...
    @overload
    def __getitem__(self, k: slice) -> list[tuple[int, int]]: ...
    def __getitem__(self, k: int | slice) -> tuple[int, int] | list[tuple[int, int]]:
        if isinstance(k, slice):
            return list(map(tuple, self.rows[k].tolist()))
        start, end = self.rows[k].tolist()
        return start, end

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(list(map(tuple, self.rows.tolist())))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    def __repr__(self) -> str:
        return repr(list(self))


def prune(directory: Path, keep: int) -> None:
    """Delete all but the `keep` most recently used entries of a cache directory."""
    entries = sorted(directory.glob(f"*{SUFFIX}"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in entries[keep:]:
        old.unlink(missing_ok=True)
