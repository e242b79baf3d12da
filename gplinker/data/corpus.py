"""A training corpus read into Arrow: every record parsed and checked, memory-mapped, no Python object per line.

Reading runs the same line parsers as `reading.read_examples`, in `Dataset.map` workers
(`data.num_proc`), and writes one row per record:
    line (int64), error (string, "" when the record is fine), id (string or null), text, labels
where `labels` is the example's gold in character offsets as compact JSON (`examples.labels_to_json`).
The main process then applies the reader rules in line order (`formats.LineAccounting`): the first
bad record raises `DataError(file:line)`, or every bad one is counted with `--skip-invalid`, exactly
as when reading into memory; a repeated id is a bad record. Rows of bad records stay in the table,
and `skipped_lines` names them, so later stages leave them out.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.progress import Progress

from gplinker.data.encoding import char_counts
from gplinker.data.examples import LABEL_KEYS, Example, example_from_json, labels_to_json
from gplinker.data.formats import LineAccounting, LineError, ReadReport, decode_json_line
from gplinker.data.mapping import map_in_chunks, open_files, quiet_datasets, scan
from gplinker.data.reading import parser_for
from gplinker.data.sources import raw_records

RAW_FILE = "records.arrow"


@dataclass
class Corpus:
    """The parsed records of one source: `dataset` (memory-mapped rows), the reader's report, what to leave out."""

    source: str
    dataset: Any  # datasets.Dataset with columns line, error, id, text, labels
    report: ReadReport
    skipped_lines: frozenset[int] = frozenset()
    files: list[str] = field(default_factory=list)

    def kept(self, line: int, error: str) -> bool:
        """Whether the record on `line` (with its parse `error`) is a training example."""
        return not error and line not in self.skipped_lines

    def examples(self) -> Iterator[Example]:
        """The kept records as Examples, streamed from the memory map (for label sets and character counts)."""
        for batch in self.batches(["line", "error", "id", "text", "labels"]):
            for line, error, ident, text, labels in zip(batch["line"], batch["error"], batch["id"], batch["text"],
                                                        batch["labels"]):
                if self.kept(line, error):
                    yield example_from_json(text, labels, id=ident, source=self.source, line=line)

    def has_gold(self, task: str) -> bool:
        """Whether a kept record holds a gold item of `task` (spans, triples, events); stops at the first one."""
        key = LABEL_KEYS[task]
        for batch in self.batches(["line", "error", "labels"]):
            for line, error, labels in zip(batch["line"], batch["error"], batch["labels"]):
                if self.kept(line, error) and json.loads(labels).get(key):
                    return True
        return False

    def texts(self) -> Iterator[str]:
        """The texts of the kept records, in order."""
        for batch in self.batches(["line", "error", "text"]):
            for line, error, text in zip(batch["line"], batch["error"], batch["text"]):
                if self.kept(line, error):
                    yield text

    def char_counts(self) -> Counter[str]:
        """How often each character occurs in the kept texts (a scratch vocabulary is made from them)."""
        return char_counts(self.texts())

    def batches(self, columns: list[str]) -> Iterator[dict[str, list[Any]]]:
        """Columns of the table, a part at a time, as Python lists (read past the memory map: mapping.scan)."""
        for part in scan(self.dataset, columns):
            yield part.to_pydict()


def write_records(source: str, path: Path) -> Any:
    """The raw records of `source` as an Arrow file (line int64, raw binary), written in batches."""
    import datasets
    from datasets.arrow_writer import ArrowWriter

    quiet_datasets()
    features = datasets.Features({"line": datasets.Value("int64"), "raw": datasets.Value("binary")})
    with ArrowWriter(features=features, path=str(path), writer_batch_size=10_000) as writer:
        lines: list[int] = []
        raws: list[bytes] = []
        for line, raw in raw_records(source):
            lines.append(line)
            raws.append(raw)
            if len(lines) == 10_000:
                writer.write_batch({"line": lines, "raw": raws})
                lines, raws = [], []
        if lines:
            writer.write_batch({"line": lines, "raw": raws})
        writer.finalize()
    return datasets.Dataset.from_file(str(path))


def parse_batch(batch: dict[str, list[Any]], indices: list[int], *, fmt: str, source: str) -> dict[str, list[Any]]:
    """The parse map: one output row per record (line, error, id, text, labels)."""
    del indices  # rows keep their line numbers; the position is not needed
    parse = parser_for(fmt)
    out: dict[str, list[Any]] = {"line": [], "error": [], "id": [], "text": [], "labels": []}
    for line, raw in zip(batch["line"], batch["raw"]):
        obj = decode_json_line(raw)
        error, ident, text, labels = "", None, "", ""
        if isinstance(obj, str):
            error = obj
        else:
            try:
                example = parse(obj, source)
            except LineError as exc:
                error = str(exc)
            else:
                ident, text, labels = example.id, example.text, labels_to_json(example)
        out["line"].append(line)
        out["error"].append(error)
        out["id"].append(ident)
        out["text"].append(text)
        out["labels"].append(labels)
    return out


def parsed_features() -> Any:
    """Arrow column types of the parsed table."""
    import datasets

    return datasets.Features({"line": datasets.Value("int64"), "error": datasets.Value("string"),
                              "id": datasets.Value("string"), "text": datasets.Value("string"),
                              "labels": datasets.Value("string")})


def parse_source(source: str, fmt: str, *, directory: Path, num_proc: int, skip_invalid: bool,
                 progress: Progress | None = None) -> Corpus:
    """Read and check every record of `source` into Arrow files under `directory` (module docstring)."""
    raw = write_records(source, directory / RAW_FILE)
    dataset, files = map_in_chunks(raw, parse_batch, directory=directory, name="parsed",
                                   fn_kwargs={"fmt": fmt, "source": source}, num_proc=num_proc,
                                   progress=progress, description="reading", features=parsed_features())
    del raw
    (directory / RAW_FILE).unlink(missing_ok=True)
    corpus = Corpus(source, dataset, ReadReport(source), files=files)
    return check_records(corpus, skip_invalid)


def check_records(corpus: Corpus, skip_invalid: bool) -> Corpus:
    """Apply the reader rules in line order (module docstring); returns the corpus with its report and skips."""
    import pyarrow as pa
    import pyarrow.compute as pc

    accounting = LineAccounting(corpus.source, skip_invalid)
    n = len(corpus.dataset)
    accounting.report.lines = n
    parts = list(scan(corpus.dataset, ["line", "error", "id"]))  # three small columns; the map stays untouched
    ids = pa.chunked_array([part["id"].combine_chunks() for part in parts]) if parts else None
    repeated: set[str] = set()
    if ids is not None and ids.null_count < n:  # only ids that occur twice need a look in line order
        counts = pc.value_counts(pc.drop_null(ids))
        repeated = {v.as_py() for v, c in zip(counts.field("values"), counts.field("counts")) if c.as_py() > 1}
    for part in parts:
        bad = pc.not_equal(part["error"], "")
        if not repeated and not pc.any(bad).as_py():
            accounting.report.examples += len(part)
            continue
        rows = part.to_pydict()
        for line, error, ident in zip(rows["line"], rows["error"], rows["id"]):
            if error:
                accounting.reject(line, error)
            else:
                accounting.accept(line, ident if ident in repeated else None)
    skipped = frozenset(e.line for e in accounting.report.skipped)
    return Corpus(corpus.source, corpus.dataset, accounting.report, skipped, corpus.files)


def save_meta(corpus: Corpus, directory: Path) -> None:
    """meta.json of a corpus cache entry: the source and its Arrow files (the checks rerun on every load)."""
    meta = {"source": corpus.source, "files": corpus.files}
    (directory / "meta.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")


def load_corpus(directory: Path, source: str, skip_invalid: bool) -> Corpus:
    """The corpus of a cache entry written by parse_source + save_meta, checked again with today's skip rule."""
    meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
    dataset = open_files(directory, meta["files"])
    return check_records(Corpus(source, dataset, ReadReport(source), files=list(meta["files"])), skip_invalid)
