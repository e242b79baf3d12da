"""Files that appear whole or not at all: write under a temp name next to the target, then rename.

`os.replace` is atomic on POSIX and Windows when source and target are on one file system, which
a temp file in the target's own dir guarantees; a crash leaves the old file (or none), never half
of the new one.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
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
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                yield fh
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:  # the buffered write, its flush or close
            if exc.errno not in FULL:
                raise
            raise write_failed(path, exc) from None
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


# errno values that mean "no room": the file system is full, or the file would pass a size limit (ulimit -f)
FULL = tuple(getattr(errno, n) for n in ("ENOSPC", "EFBIG", "EDQUOT") if hasattr(errno, n))


class WriteFailed(GPLinkerError):
    """A file could not be written (a full disk, a size limit): names the path and the reason."""


def is_write_error(exc: BaseException) -> bool:
    """Whether an exception from saving a file is the file system refusing bytes, whoever wrapped it.

    torch.save reports a full disk as RuntimeError("... unexpected pos ..."), safetensors as
    SafetensorError("Error while serializing: I/O error: ... (os error 28)").
    """
    if isinstance(exc, OSError):
        return True
    text = str(exc)
    if isinstance(exc, RuntimeError) and ("unexpected pos" in text or "PytorchStreamWriter" in text):
        return True
    return type(exc).__name__ == "SafetensorError" and "I/O error" in text


def write_failed(path: Path, exc: BaseException) -> WriteFailed:
    """The error for a write to `path` that failed: ENOSPC (with the space left) named as such, else the OS reason."""
    code = getattr(exc, "errno", None)
    if code is None and "(os error " in str(exc):  # safetensors: "... (os error 28)"
        tail = str(exc).rsplit("(os error ", 1)[1].split(")")[0]
        code = int(tail) if tail.isdigit() else None
    reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
    if code in FULL or not isinstance(exc, OSError):  # torch.save says "unexpected pos" when the disk fills
        try:
            free = f"{shutil.disk_usage(path.parent if path.parent.exists() else '.').free / 2**20:.0f} MiB free"
        except OSError:
            free = "free space unknown"
        name = errno.errorcode.get(code or 0, "ENOSPC") if code in FULL else "likely ENOSPC"
        return WriteFailed(f"{path}: could not write it: the disk is full or a file size limit was reached "
                             f"({name}, {free}; {reason}); free some space or write elsewhere")
    return WriteFailed(f"{path}: could not write it ({reason})")


def write_json(path: str | Path, value: Any) -> None:
    """Write `value` as indented JSON through a temp file and a rename."""
    with atomic_text(path) as fh:
        fh.write(json.dumps(value, ensure_ascii=False, indent=2))


def swapped_out(target: str | Path) -> Path | None:
    """The previous copy of a missing dir whose swap was cut between its two renames, else None.

    A dir is replaced in two renames (training/checkpoints.py:atomic_dir): TARGET → .TARGET.old-PID,
    then the new copy into TARGET. A kill between them leaves no TARGET but the old copy, whole.
    """
    target = Path(target)
    if target.exists() or not target.parent.is_dir():
        return None
    olds = [p for p in target.parent.glob(f".{target.name}.old-*") if p.is_dir()]
    return max(olds, key=lambda p: p.stat().st_mtime) if olds else None


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
