"""Where labelled records come from: a JSON-lines file, a parquet file, a `Dataset.save_to_disk` dir, or the hub.

`data.train` and `data.dev` (and `gplinker eval`'s data) name one of:
  - FILE.jsonl / FILE.json   JSON lines (the published CLUENER / DuIE / DuEE files); "line" = line number
  - FILE.json holding one JSON array of objects (CasRel's and TPLinker's NYT / WebNLG files): one record
    per element; "line" = the line its element starts on
  - FILE.parquet             one record per row; "line" = row number from 1
  - DIR                      written by `datasets.Dataset.save_to_disk`; "line" = row number from 1
  - hf:NAME[:SPLIT]          `datasets.load_dataset(NAME, split=SPLIT)`, split "train" by default
    (NAME may be a local dataset dir as well as a hub name); "line" = row number from 1
Every source yields the same (line, record) pairs, so the readers, their `file:line` errors and the
`--skip-invalid` counts are the same whatever the source. Tabular rows are read as JSON objects;
their null fields are dropped first, because Arrow gives every row of a column the union of the
keys of all rows (a DuIE 2.0 object without an "inWork" slot reads back with "inWork": null).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gplinker.data.formats import decode_json_line, is_blank, numbered_lines
from gplinker.errors import DataError

HUB_PREFIX = "hf:"
ROWS_PER_READ = 4096  # rows converted to Python at a time from a tabular source


def kind_of(spec: str | Path) -> str:
    """'jsonl', 'parquet', 'disk' (a save_to_disk dir) or 'hub' for a data spec; a missing path is a DataError."""
    text = str(spec)
    if text.startswith(HUB_PREFIX):
        return "hub"
    path = Path(text)
    if path.is_dir():
        if (path / "dataset_info.json").is_file() or (path / "state.json").is_file() \
                or (path / "dataset_dict.json").is_file():
            return "disk"
        raise DataError(text, 0, "is a directory, but not one written by Dataset.save_to_disk")
    if not path.exists():
        raise DataError(text, 0, "no such file")
    if not path.is_file():
        raise DataError(text, 0, "is not a regular file")
    if path.suffix.lower() == ".parquet":
        return "parquet"
    return "jsonarray" if _first_byte(path) == b"[" else "jsonl"


def _first_byte(path: Path) -> bytes:
    """The first byte of a file that is not JSON whitespace or a UTF-8 BOM (b"" for an empty file)."""
    with open(path, "rb") as fh:
        head = fh.read(4096).removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n")
    return head[:1]


def array_records(path: str | Path) -> Iterator[tuple[int, bytes]]:
    """(line its element starts on, the element as UTF-8 JSON) of a file holding one JSON array.

    The file is decoded whole (the published NYT and WebNLG files are tens of MB); a syntax error
    is a DataError naming its line, and an element that is not an object is passed on for the
    readers to reject as they do a bad JSON line.
    """
    try:
        text = Path(path).read_bytes().decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise DataError(str(path), 0, f"invalid UTF-8 at byte {exc.start}") from None
    decoder = json.JSONDecoder()
    pos, line = text.index("[") + 1, 1 + text.count("\n", 0, text.index("["))
    while True:
        start = _skip_space(text, pos)
        line += text.count("\n", pos, start)
        if start < len(text) and text[start] == "]":
            if _skip_space(text, start + 1) != len(text):
                raise DataError(str(path), line + text.count("\n", start, _skip_space(text, start + 1)),
                                "text after the closing ']' of the JSON array")
            return
        try:
            value, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError as exc:
            raise DataError(str(path), exc.lineno, f"malformed JSON array: {exc.msg} (column {exc.colno})") from None
        yield line, json.dumps(value, ensure_ascii=False).encode("utf-8")
        line += text.count("\n", start, end)
        pos = _skip_space(text, end)
        line += text.count("\n", end, pos)
        if pos < len(text) and text[pos] == ",":
            pos += 1
        elif pos >= len(text) or text[pos] != "]":
            raise DataError(str(path), line, "malformed JSON array: expected ',' or ']' after an element")


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def hub_name_and_split(spec: str) -> tuple[str, str]:
    """("NAME", "SPLIT") of "hf:NAME[:SPLIT]"; the split defaults to "train"."""
    rest = spec[len(HUB_PREFIX):]
    name, sep, split = rest.rpartition(":")
    if not sep or not split or "/" in split:
        return rest, "train"
    return name, split


def raw_records(spec: str | Path) -> Iterator[tuple[int, bytes]]:
    """(line, UTF-8 JSON bytes) of every non-blank record, in source order (not yet decoded or checked)."""
    kind = kind_of(spec)
    if kind == "jsonarray":
        yield from array_records(spec)
        return
    if kind == "jsonl":
        with open(spec, "rb") as fh:
            for lineno, raw in numbered_lines(fh, str(spec)):
                if not is_blank(raw):
                    yield lineno, raw
        return
    for row, record in table_records(spec, kind):
        yield row, json.dumps(record, ensure_ascii=False, default=str).encode("utf-8")


def records(spec: str | Path) -> Iterator[tuple[int, dict[str, Any] | DataError]]:
    """(line, JSON object or the DataError saying why the record is not one) for every non-blank record."""
    for line, raw in raw_records(spec):
        obj = decode_json_line(raw)
        yield line, DataError(str(spec), line, obj) if isinstance(obj, str) else obj


def table_records(spec: str | Path, kind: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row number from 1, row as a dict without null fields) of a parquet file, a save_to_disk dir or a hub set.

    Rows of a `datasets.Dataset` are decoded by datasets (its Json and nested features), a few
    thousand at a time, so memory stays flat.
    """
    row = 0
    for columns in _column_batches(spec, kind):
        names = list(columns)
        for values in zip(*(columns[n] for n in names)):
            row += 1
            yield row, without_nulls(dict(zip(names, values)))


def _column_batches(spec: str | Path, kind: str) -> Iterator[dict[str, list[Any]]]:
    """Batches of rows as {column: values} from a tabular source."""
    if kind == "parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(str(spec)).iter_batches(batch_size=ROWS_PER_READ):
            yield batch.to_pydict()
        return
    yield from open_dataset(spec, kind).iter(batch_size=ROWS_PER_READ)


def open_dataset(spec: str | Path, kind: str) -> Any:
    """The `datasets.Dataset` behind a save_to_disk dir or a hub spec (memory-mapped, nothing copied)."""
    import datasets

    from gplinker.data.mapping import quiet_datasets

    quiet_datasets()
    if kind == "disk":
        loaded = datasets.load_from_disk(str(spec))
        if isinstance(loaded, datasets.DatasetDict):
            raise DataError(str(spec), 0, f"holds several splits ({', '.join(loaded)}); point at one split's dir")
        return loaded
    name, split = hub_name_and_split(str(spec))
    try:
        return datasets.load_dataset(name, split=split)
    except (FileNotFoundError, ValueError, ConnectionError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(str(spec), 0, f"cannot load data set {name!r} split {split!r}: {message}") from None


def without_nulls(value: Any) -> Any:
    """`value` with every None-valued key of every nested dict removed (lists keep their None items)."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def fingerprint(spec: str | Path) -> str:
    """A digest that changes whenever the records of the source change (file bytes; a dir's files; a hub set's)."""
    kind = kind_of(spec)
    h = hashlib.sha256(kind.encode())
    if kind in ("jsonl", "jsonarray", "parquet"):
        _update_with_file(h, Path(spec))
    elif kind == "disk":
        for path in sorted(p for p in Path(spec).rglob("*") if p.is_file()):
            h.update(str(path.relative_to(spec)).encode())
            _update_with_file(h, path)
    else:
        h.update(str(open_dataset(spec, kind)._fingerprint).encode())
    return h.hexdigest()


def _update_with_file(h: Any, path: Path) -> None:
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
