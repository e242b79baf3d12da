"""The encoding cache: parsed corpora and training windows in Arrow, keyed on everything they come from.

Two kinds of entry, each a directory of Arrow files plus a meta.json (no pickle anywhere):
  corpus-<key>/    the parsed records of a source (data/corpus.py). Key: the cache format, the
                   source's fingerprint (a file's bytes, a dir's files, a hub set's fingerprint),
                   the resolved format, and the source code of the modules that read it.
  windows-<key>/   the training windows and targets (data/window_table.py). Key: the corpus key,
                   the tokenizer's serialisation (without per-call truncation/padding), max_length,
                   stride, char_level, pack, the task and its label schema, and the source code of the
                   modules that window and target the data.
  lengths-<key>.json  token counts behind `data.max_length: auto` (corpus key, tokenizer, char_level).
A changed file, tokenizer, setting, schema or gplinker source never reuses a stale entry. skip_invalid
is not in the keys: the reader rules are applied again to a cached corpus on every load.

Directory: `<train.output_dir>/cache` by default; GPLINKER_CACHE_DIR moves it (e.g. ~/.cache/gplinker
to share entries across runs), and "off" keeps nothing: the Arrow files then live in a temporary
directory removed when the process exits. Entries are written under a temporary name and renamed
into place; an entry without a readable meta.json is a miss; a directory keeps its KEEP newest entries.
"""

from __future__ import annotations

import atexit
import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

    from gplinker.data.schema import Schema

CACHE_FORMAT = 2
ENV = "GPLINKER_CACHE_DIR"
KEEP = 4  # entries of each kind kept per cache directory, most recently used first
CORPUS_MODULES = ("gplinker.data.examples", "gplinker.data.formats", "gplinker.data.reading", "gplinker.data.duie",
                  "gplinker.data.duee", "gplinker.data.sources", "gplinker.data.corpus", "gplinker.data.mapping")
WINDOW_MODULES = ("gplinker.data.encoding", "gplinker.data.window_table", "gplinker.tasks.training_windows",
                  "gplinker.tasks.oracle")


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


def work_dir(output_dir: str | Path) -> Path:
    """The cache directory, or (cache off) a temporary directory under output_dir removed at exit."""
    root = cache_dir(output_dir)
    if root is not None:
        root.mkdir(parents=True, exist_ok=True)
        return root
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".encoded-", dir=output_dir))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    return tmp


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


def digest(parts: dict[str, Any]) -> str:
    """sha256 of a JSON object (keys sorted)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


def corpus_key(source_fingerprint: str, fmt: str) -> str:
    """The key of a parsed corpus (module docstring)."""
    return digest({"cache_format": CACHE_FORMAT, "source": source_fingerprint, "format": fmt,
                   "code": source_digest(CORPUS_MODULES)})


def windows_key(corpus: str, tokenizer: PreTrainedTokenizerFast, task: KeyedTask, *, max_length: int, stride: int,
                char_level: bool, pack: bool | float = False) -> str:
    """The key of a corpus's training windows and targets (module docstring)."""
    return digest({"cache_format": CACHE_FORMAT, "corpus": corpus, "tokenizer": tokenizer_digest(tokenizer),
                   "data": {"max_length": max_length, "stride": stride, "char_level": char_level, "pack": pack},
                   "task": {"name": task.name, "schema": task.schema.to_dict()},
                   "code": source_digest(WINDOW_MODULES + (type(task).__module__,))})


def lengths_key(corpus: str, tokenizer: PreTrainedTokenizerFast, char_level: bool) -> str:
    """The key of a corpus's token counts under a tokenizer."""
    return digest({"cache_format": CACHE_FORMAT, "corpus": corpus, "tokenizer": tokenizer_digest(tokenizer),
                   "char_level": char_level, "code": source_digest(("gplinker.data.encoding",))})


def gaps_key(corpus: str, schema: dict[str, Any]) -> str:
    """The key of a corpus's schema gaps under a schema (Schema.to_dict)."""
    return digest({"cache_format": CACHE_FORMAT, "corpus": corpus, "schema": schema,
                   "code": source_digest(("gplinker.data.schema", "gplinker.data.examples"))})


def entry(root: Path, kind: str, key: str) -> Path | None:
    """The entry `kind-key` of `root` when it is complete (its meta.json reads), marked most recently used."""
    path = root / f"{kind}-{key}"
    try:
        json.loads((path / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    os.utime(path)
    return path


def staging(root: Path, kind: str, key: str) -> Path:
    """An empty temporary directory to write the entry `kind-key` into before `commit`."""
    tmp = root / f".{kind}-{key}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def commit(tmp: Path, root: Path, kind: str, key: str) -> Path:
    """Rename a staged entry into place and drop the oldest entries of its kind beyond KEEP."""
    final = root / f"{kind}-{key}"
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    prune(root, kind, KEEP, protect=final)
    return final


def prune(root: Path, kind: str, keep: int, protect: Path | None = None) -> None:
    """Delete all but the `keep` most recently used entries of `kind` (and stale staging dirs of dead runs)."""
    entries = sorted((p for p in root.glob(f"{kind}-*") if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in entries[keep:]:
        if old != protect:
            shutil.rmtree(old, ignore_errors=True)
    for tmp in root.glob(f".{kind}-*.tmp-*"):
        pid = tmp.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
