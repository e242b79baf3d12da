"""Exclusive locks on what a command writes: one training per output_dir, one predict per output file.

A lock is a file holding the owner's PID, locked with `fcntl.flock` (POSIX) and removed on release.
The kernel drops a flock when its process dies, however it dies, so a lock file left by a killed
run (`kill -9`, a power cut) never blocks: the next run takes it over and says whose it was. Where fcntl is missing
(Windows) the lock is the file's existence, and a file naming a PID that no longer runs is stale.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gplinker.errors import GPLinkerError

LOCK_FILE = ".gplinker.lock"  # in train.output_dir


def lock_file_for(output: Path) -> Path:
    """The lock file of an output file: `.NAME.lock` beside it."""
    return output.with_name(f".{output.name}.lock")


@contextmanager
def hold_lock(lock: Path, what: str) -> Iterator[str | None]:
    """Hold `lock` for the block; yields the PID of a dead earlier owner whose lock was stale, else None.

    Raises GPLinkerError naming the live owner's PID when another process holds it. `what` says
    what the lock guards, for that message ("training into runs/x").
    """
    lock = Path(lock)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            stale = _acquire(fd, lock, what)
        except BaseException:
            os.close(fd)
            raise
        if _same_file(fd, lock):
            break
        os.close(fd)  # the owner removed the file between our open and our lock: lock the new one
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.fsync(fd)
        yield stale
    finally:
        try:
            lock.unlink(missing_ok=True)  # before the flock goes: whoever opened it meanwhile retries (_same_file)
        except OSError:  # Windows cannot remove an open file; the next owner overwrites it
            os.ftruncate(fd, 0)
        os.close(fd)


def _same_file(fd: int, lock: Path) -> bool:
    """Whether `lock` still names the file `fd` has open."""
    try:
        return os.stat(lock).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


try:
    import fcntl

    _HAS_FLOCK = True
except ImportError:  # Windows
    _HAS_FLOCK = False


def _acquire(fd: int, lock: Path, what: str) -> str | None:
    """Lock `fd`, or raise naming the owner; returns the PID a stale lock named (its owner died)."""
    owner = _read_owner(lock)
    if _HAS_FLOCK:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise GPLinkerError(f"{lock}: {what} is already running (process {_read_owner(lock) or '?'} holds "
                                "this lock); wait for it to end, or choose another output") from None
        return owner or None  # the kernel dropped the owner's flock: it died without clearing the file
    if owner and owner != str(os.getpid()) and _alive(int(owner)):
        raise GPLinkerError(f"{lock}: {what} is already running (process {owner} holds this lock); wait for it to "
                            "end, or choose another output")
    return owner or None


def _read_owner(lock: Path) -> str:
    try:
        text = lock.read_text(encoding="utf-8").strip()
    except OSError:
        return ""
    return text if text.isdigit() else ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True
