"""Data sources: JSON lines, parquet, a save_to_disk dir and hf:NAME give the same records and the same errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gplinker.data.reading import read_examples
from gplinker.data.sources import fingerprint, hub_name_and_split, kind_of, records, without_nulls
from gplinker.errors import DataError
from tests.conftest import NER_SENTENCES, spans_record, write_jsonl

ROWS = [spans_record(t, e) for t, e in NER_SENTENCES]


def every_source(tmp_path: Path, rows: list[dict]) -> dict[str, str]:
    """The same rows as a JSONL file, a parquet file, a save_to_disk dir and a local hf: data set."""
    import datasets
    import pyarrow.parquet as pq

    jsonl = write_jsonl(tmp_path / "train.jsonl", rows)
    table = datasets.Dataset.from_list(rows)
    table.save_to_disk(str(tmp_path / "disk"))
    pq.write_table(table.data.table, str(tmp_path / "train.parquet"))
    (tmp_path / "hub").mkdir()
    write_jsonl(tmp_path / "hub" / "train.jsonl", rows)
    return {"jsonl": str(jsonl), "parquet": str(tmp_path / "train.parquet"), "disk": str(tmp_path / "disk"),
            "hub": f"hf:{tmp_path / 'hub'}"}


def test_every_source_gives_the_same_examples(tmp_path):
    sources = every_source(tmp_path, ROWS)
    assert {name: kind_of(spec) for name, spec in sources.items()} == \
        {"jsonl": "jsonl", "parquet": "parquet", "disk": "disk", "hub": "hub"}
    read = {name: read_examples(spec, "spans", "ner")[0] for name, spec in sources.items()}
    reference = [(e.text, e.spans, e.line) for e in read["jsonl"]]
    assert len(reference) == len(NER_SENTENCES)
    for name, examples in read.items():
        assert [(e.text, e.spans, e.line) for e in examples] == reference, name


def test_tabular_rows_lose_the_null_fields_arrow_adds(tmp_path):
    # DuIE 2.0: one object has an inWork slot, the other not; Arrow unifies them to {"@value", "inWork": null}
    book = {"predicate": "作者", "subject": "甲书", "subject_type": "图书作品",
            "object": {"@value": "乙"}, "object_type": {"@value": "人物"}}
    voice = {"predicate": "配音", "subject": "丙", "subject_type": "娱乐人物",
             "object": {"@value": "戊", "inWork": "丁剧"}, "object_type": {"@value": "人物", "inWork": "影视作品"}}
    rows = [{"text": "《甲书》作者是乙", "spo_list": [book]}, {"text": "丙在《丁剧》中配音戊", "spo_list": [voice]}]
    sources = every_source(tmp_path, rows)
    examples = {name: read_examples(spec, "duie2", "relation")[0] for name, spec in sources.items()}
    assert len({tuple(r for e in ex for r in e.relations) for ex in examples.values()}) == 1
    assert without_nulls({"a": None, "b": [None, {"c": None, "d": 1}]}) == {"b": [None, {"d": 1}]}


def test_bad_rows_name_source_and_row_and_are_counted_when_skipped(tmp_path):
    rows = [ROWS[0], {"text": "", "entities": []}, ROWS[1], {"text": "x", "entities": [{"start": 0, "end": 5,
                                                                                       "type": "t"}]}]
    for name, spec in every_source(tmp_path, rows).items():
        with pytest.raises(DataError, match=rf"{spec}:2: empty text \(pass --skip-invalid"):
            read_examples(spec, "spans", "ner")
        examples, report = read_examples(spec, "spans", "ner", skip_invalid=True)
        assert [e.line for e in examples] == [1, 3], name
        assert [(e.line, e.message.split(" ")[0]) for e in report.skipped] == [(2, "empty"), (4, "span")], name


def test_missing_sources_are_named(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        kind_of(tmp_path / "nope.jsonl")
    (tmp_path / "plain").mkdir()
    with pytest.raises(DataError, match="not one written by Dataset.save_to_disk"):
        kind_of(tmp_path / "plain")
    with pytest.raises(DataError, match="cannot load data set"):
        list(records(f"hf:{tmp_path / 'absent'}"))


def test_hub_spec_split_parsing():
    assert hub_name_and_split("hf:org/name") == ("org/name", "train")
    assert hub_name_and_split("hf:org/name:validation") == ("org/name", "validation")
    assert hub_name_and_split("hf:/data/c:/x") == ("/data/c:/x", "train")  # a ':' inside a path is not a split


def test_fingerprint_follows_the_content(tmp_path):
    sources = every_source(tmp_path, ROWS)
    before = {name: fingerprint(spec) for name, spec in sources.items()}
    assert len(set(before.values())) == len(before)  # a kind of source never collides with another
    path = Path(sources["jsonl"])
    path.write_text(path.read_text(encoding="utf-8").replace("张伟", "张玮"), encoding="utf-8")
    assert fingerprint(sources["jsonl"]) != before["jsonl"]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ROWS), encoding="utf-8")
    assert fingerprint(sources["jsonl"]) == before["jsonl"]
