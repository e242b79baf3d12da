"""Files that appear whole or not at all: write under a temp name next to the target, then rename.

`os.replace` is atomic on POSIX and Windows when source and target are on one file system, which
a temp file in the target's own dir guarantees; a crash leaves the old file (or none), never half
of the new one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from gplinker.errors import GPLinkerError


def ensure_parent(path: str | Path) -> Path:
    """Create the dirs an output file needs, before any work; a clear error if that is impossible."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise GPLinkerError(f"{path}: cannot write here: a part of {path.parent} is a file, not a dir") from None
    except PermissionError:
        raise GPLinkerError(f"{path}: cannot create the dir {path.parent}: permission denied") from None
    if path.is_dir():
        raise GPLinkerError(f"{path}: is a dir; give a file name")
    return path


@contextmanager
def atomic_text(path: str | Path) -> Iterator[IO[str]]:
    """A text handle whose content lands at `path` only if the block ends without an exception."""
    path = ensure_parent(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def write_json(path: str | Path, value: Any) -> None:
    """Write `value` as indented JSON through a temp file and a rename."""
    with atomic_text(path) as fh:
        fh.write(json.dumps(value, ensure_ascii=False, indent=2))


def fsync_dir(path: Path) -> None:
    """Make a rename inside `path` durable (POSIX fsync of the dir entry).

    Windows refuses to open a directory (PermissionError); there NTFS journals the rename and
    there is nothing to fsync, so the call does nothing.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except PermissionError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
