"""A model dir's or checkpoint's manifest.json: the sha256 and size of every file it holds, checked on load.

The manifest is written last, atomically (atomic_files.write_json), after every other file of the
dir is complete, so a dir whose manifest verifies holds exactly the bytes that were saved. A flipped
byte, a truncated or deleted file is caught before torch, safetensors or the tokenizer read it:
`verify` raises `CorruptFile` naming DIR/FILE and the sha256 it expected.

Dirs written before the manifest existed carry none: they load as "unverified" (docs/formats.md).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from gplinker.atomic_files import write_json
from gplinker.errors import GPLinkerError

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
_BLOCK = 1 << 20  # bytes read at a time while hashing: memory stays flat whatever the file's size


class CorruptFile(GPLinkerError):
    """A file of a model dir or checkpoint does not match its manifest entry (or is missing)."""


def sha256_file(path: Path) -> tuple[str, int]:
    """(hex sha256, size in bytes) of a file, read in blocks."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while block := fh.read(_BLOCK):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def write_manifest(directory: str | Path) -> Path:
    """Hash every file under `directory` (subdirs included) into manifest.json, written last and atomically."""
    directory = Path(directory)
    files: dict[str, dict[str, Any]] = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        name = path.relative_to(directory).as_posix()
        if name == MANIFEST or path.name.startswith(f".{MANIFEST}.tmp-"):
            continue
        sha, size = sha256_file(path)
        files[name] = {"sha256": sha, "size": size}
    target = directory / MANIFEST
    write_json(target, {"manifest_format": MANIFEST_FORMAT, "files": files})
    return target


def read_manifest(directory: Path) -> dict[str, dict[str, Any]] | None:
    """The `files` table of a dir's manifest; None when the dir has none (written before manifests existed)."""
    path = directory / MANIFEST
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        files = raw["files"]
        if not isinstance(files, dict) or not all(isinstance(v, dict) for v in files.values()):
            raise TypeError("files is not a table of {sha256, size}")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CorruptFile(f"{path}: corrupt or incomplete (not a readable manifest: {exc})") from None
    return files


def verify(directory: str | Path) -> str:
    """"verified" when every file the manifest lists has its size and sha256, "unverified" when there is no manifest.

    Raises CorruptFile at the first file that is missing or differs. Files the manifest does not list
    (a user's notes, an eval report) are left alone.
    """
    directory = Path(directory)
    files = read_manifest(directory)
    if files is None:
        return "unverified"
    edited = (f"; changed on purpose? re-hash the dir: python -c \"from gplinker.manifest import write_manifest; "
              f"write_manifest('{directory}')\"")
    for name, entry in files.items():
        path = directory / name
        expected = f"expected sha256 {entry.get('sha256')}, {entry.get('size')} bytes"
        if not path.is_file():
            raise CorruptFile(f"{path}: corrupt or incomplete ({expected}; the file is missing)")
        size = path.stat().st_size
        if size != entry.get("size"):
            raise CorruptFile(f"{path}: corrupt or incomplete ({expected}; found {size} bytes){edited}")
        sha, _ = sha256_file(path)
        if sha != entry.get("sha256"):
            raise CorruptFile(f"{path}: corrupt or incomplete ({expected}; found sha256 {sha}){edited}")
    return "verified"
