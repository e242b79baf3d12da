"""The training data of `gplinker train`: a parsed corpus and its windows, from the encoding cache when it has them.

Stages, each cached under its own key (data/cache.py) and shown on a progress bar:
  1. corpus   the source's records read and checked into Arrow (data/corpus.py)
  2. lengths  token counts of the texts, when `data.max_length` is auto (data/encoding.py)
  3. windows  the windows and targets of every kept record (tasks/training_windows.py)
and, beside them, the gold items whose labels a schema file lacks (`gaps-<key>.json`).
Under torchrun rank 0 builds each entry and the other ranks open it after a barrier, so no two
processes write one entry. With the cache off every rank builds its own in a temporary directory.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress

from gplinker import distributed as dist
from gplinker.atomic_files import WriteFailed, write_failed, write_json
from gplinker.console import make_progress, say
from gplinker.data import cache
from gplinker.data.corpus import Corpus, load_corpus, parse_source, save_meta
from gplinker.data.encoding import WindowEncoder, auto_max_length, share_tokens, special_tokens_around, token_counts
from gplinker.data.schema import Schema, SchemaGaps, schema_gaps
from gplinker.data.sources import fingerprint
from gplinker.data.window_table import WindowTable, load_windows
from gplinker.data.window_table import save_meta as save_window_meta
from gplinker.tasks.base import Task
from gplinker.tasks.training_windows import encode_windows

MAX_AUTO_PROCS = 8


def num_procs(configured: int) -> int:
    """data.num_proc, with 0 meaning one per CPU core (at most MAX_AUTO_PROCS)."""
    return configured if configured > 0 else max(1, min(MAX_AUTO_PROCS, os.cpu_count() or 1))


@contextmanager
def data_progress(console: Console | None) -> Iterator[Progress | None]:
    """A progress display for the data stages (rows, rate, ETA); None without a console."""
    if console is None:
        yield None
        return
    with make_progress(console, "rows", transient=True) as progress:
        yield progress


class TrainingData:
    """Where the stages put their entries (the cache, or a temporary directory) and who builds them."""

    def __init__(self, output_dir: str | Path, num_proc: int, console: Console | None):
        try:
            self.root = cache.work_dir(output_dir)
            self.shared = cache.cache_dir(output_dir) is not None
        except OSError as exc:  # the cache dir cannot be made (a file in the way, a full disk): run without it
            self.root, self.shared = Path(tempfile.mkdtemp(prefix="gplinker-cache-")), False
            atexit.register(shutil.rmtree, self.root, ignore_errors=True)
            say(console, f"[yellow]{write_failed(Path(str(cache.cache_dir(output_dir))), exc)}: running without the "
                         f"encoding cache (in {self.root})[/]")
        self.num_proc = num_procs(num_proc)
        self.console = console

    def _built_by_rank_0(self, kind: str, key: str, build: Any) -> Path:
        """The entry kind-key: opened when present, else built (by rank 0 when the cache is shared)."""
        path = cache.entry(self.root, kind, key)
        if path is None and (dist.is_main() or not self.shared):
            tmp = cache.staging(self.root, kind, key)
            try:
                build(tmp)
                path = cache.commit(tmp, self.root, kind, key)
            except OSError as exc:  # a full cache disk: this run goes on uncached (not under torchrun: peers wait)
                shutil.rmtree(tmp, ignore_errors=True)
                if dist.active():
                    raise write_failed(tmp, exc) from None
                path = self._uncached(kind, build, exc)
        if self.shared:
            dist.barrier()
            path = path or cache.entry(self.root, kind, key)
        if path is None:
            raise RuntimeError(f"cache entry {kind}-{key} is missing after rank 0 built it")
        return path

    def _uncached(self, kind: str, build: Any, exc: OSError) -> Path:
        """Build an entry in a temporary dir of the system's (removed at exit) after the cache refused it."""
        tmp = Path(tempfile.mkdtemp(prefix=f"gplinker-{kind}-"))
        atexit.register(shutil.rmtree, tmp, ignore_errors=True)
        say(self.console, f"[yellow]{write_failed(self.root, exc)}: the {kind} stage runs without the encoding cache "
                          f"this time (in {tmp})[/]")
        build(tmp)
        return tmp

    def corpus(self, source: str, fmt: str, skip_invalid: bool) -> tuple[Corpus, str, bool]:
        """(corpus, its key, cache hit) of the training source."""
        key = cache.corpus_key(fingerprint(source), fmt)
        hit = cache.entry(self.root, "corpus", key) is not None

        def build(tmp: Path) -> None:
            with data_progress(self.console) as progress:
                corpus = parse_source(source, fmt, directory=tmp, num_proc=self.num_proc, skip_invalid=skip_invalid,
                                      progress=progress)
            save_meta(corpus, tmp)

        path = self._built_by_rank_0("corpus", key, build)
        return load_corpus(path, source, skip_invalid), key, hit

    def _summary(self, name: str, key: str, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """A small JSON summary of the corpus, `name-key.json` in the cache: read when there, else computed and
        written (by rank 0 when the cache is shared)."""
        path = self.root / f"{name}-{key}.json"
        try:
            summary: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            summary = compute()
            if dist.is_main() or not self.shared:
                try:
                    write_json(path, summary)
                except (OSError, WriteFailed) as exc:  # a full cache disk: the summary is not cached
                    say(self.console, f"[yellow]{write_failed(path, exc) if isinstance(exc, OSError) else exc}[/]")
        return summary

    def max_length(self, corpus: Corpus, corpus_key: str, tokenizer: Any, char_level: bool,
                   limit: int | None) -> tuple[int, dict[str, Any]]:
        """data.max_length auto for this corpus and tokenizer, and the token-count summary behind it."""

        def compute() -> dict[str, Any]:
            counts: list[int] = []
            batch: list[str] = []
            for text in corpus.texts():
                batch.append(text)
                if len(batch) == 4096:
                    counts += token_counts(tokenizer, batch, char_level)
                    batch = []
            counts += token_counts(tokenizer, batch, char_level)
            return {"texts": len(counts), "max": max(counts, default=0), "need": share_tokens(counts)}

        summary = self._summary("lengths", cache.lengths_key(corpus_key, tokenizer, char_level), compute)
        prefix, suffix = special_tokens_around(tokenizer)
        return auto_max_length([int(summary["need"])], len(prefix) + len(suffix), limit), summary

    def schema_gaps(self, corpus: Corpus, corpus_key: str, schema: Schema) -> SchemaGaps:
        """The corpus's gold items whose labels `schema` lacks (data/schema.py); one pass per corpus and schema."""

        def compute() -> dict[str, Any]:
            gaps = schema_gaps(schema, corpus.examples())
            return {"items": gaps.items, "labels": dict(gaps.labels)}

        summary = self._summary("gaps", cache.gaps_key(corpus_key, schema.to_dict()), compute)
        return SchemaGaps(int(summary["items"]), Counter({str(k): int(v) for k, v in summary["labels"].items()}))

    def windows(self, corpus: Corpus, corpus_key: str, tokenizer: Any, task: Task, *, max_length: int, stride: int,
                char_level: bool, pack: bool | float = False) -> tuple[WindowTable, bool]:
        """(windows with targets, cache hit) of every kept record of the corpus (packed with `pack`)."""
        key = cache.windows_key(corpus_key, tokenizer, task, max_length=max_length, stride=stride,
                                char_level=char_level, pack=pack)
        hit = cache.entry(self.root, "windows", key) is not None
        encoder = WindowEncoder(tokenizer, max_length, stride, char_level)

        def build(tmp: Path) -> None:
            with data_progress(self.console) as progress:
                table = encode_windows(corpus, encoder, task, directory=tmp, num_proc=self.num_proc,
                                       progress=progress, pack=pack)
            save_window_meta(table, tmp, {"max_length": max_length, "stride": stride, "pack": pack})

        path = self._built_by_rank_0("windows", key, build)
        table, _ = load_windows(path)
        if hit:
            say(self.console, f"training windows read from the encoding cache ({len(table)} windows, key {key[:12]})")
        return table, hit
