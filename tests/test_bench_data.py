"""The synthetic triples and events of scripts/make_long_data.py read back whole through gplinker's readers."""

from __future__ import annotations

import sys

from gplinker.data.reading import read_examples
from gplinker.data.schema import load_duee_schema, load_duie_schema
from tests.conftest import REPO, write_jsonl

sys.path.insert(0, str(REPO / "scripts"))
from make_long_data import (  # noqa: E402 -- a script module, found through the path above
    EVENT_SCHEMA,
    RELATION_SCHEMA,
    event_sentences,
    relation_sentences,
    write_event_schema,
    write_relation_schema,
)


def test_every_synthetic_triple_is_located_where_it_was_put_and_its_predicate_is_in_the_schema(tmp_path):
    rows = relation_sentences(300, seed=7)
    examples, report = read_examples(write_jsonl(tmp_path / "train.jsonl", rows), "duie2", "relation")
    assert len(examples) == 300 and not report.skipped and not any(e.meta.get("unlocated") for e in examples)
    for row, example in zip(rows, examples):
        assert 20 <= len(example.text) <= 40
        assert sorted((r.subject.text_in(example.text), r.predicate, r.object.text_in(example.text))
                      for r in example.relations) == sorted(
            (spo["subject"], spo["predicate"], spo["object"]["@value"]) for spo in row["spo_list"])
    assert sum(len(e.relations) for e in examples) > 300  # most templates hold one or two triples
    schema = load_duie_schema(write_relation_schema(tmp_path / "schema.jsonl"))
    assert set(schema.predicates) == set(RELATION_SCHEMA)
    assert {r.predicate for e in examples for r in e.relations} <= set(schema.predicates)


def test_every_synthetic_event_has_its_trigger_and_arguments_at_their_offsets(tmp_path):
    rows = event_sentences(300, seed=7)
    examples, report = read_examples(write_jsonl(tmp_path / "train.jsonl", rows), "duee", "event")
    assert len(examples) == 300 and not report.skipped  # the reader checks every offset against the text
    assert sum(len(e.events) for e in examples) == sum(len(r["event_list"]) for r in rows) > 200
    for example in examples:
        for event in example.events:
            trigger = event.trigger
            assert trigger is not None and trigger.text_in(example.text) in {"毕业", "签署", "见面", "获得", "开通",
                                                                                "回到", "出版"}
    schema = load_duee_schema(write_event_schema(tmp_path / "schema.jsonl"))
    assert set(schema.event_types()) == set(EVENT_SCHEMA)
