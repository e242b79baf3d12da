"""data.pack: packs keep every gold item in its own characters, and no target cell joins two examples."""

from __future__ import annotations

import pytest

from gplinker.config import load_config
from gplinker.data.encoding import WindowEncoder
from gplinker.data.examples import Event, Example, Relation, Span, joined
from gplinker.data.reading import read_examples
from gplinker.data.schema import Schema
from gplinker.errors import ConfigError
from gplinker.modeling.encoders import scratch_tokenizer
from gplinker.tasks.ner import NerTask
from gplinker.tasks.oracle import oracle_predictions
from gplinker.tasks.training_windows import pack_drawn, packed
from tests.conftest import NER_SENTENCES, spans_record, tiny_overrides, write_jsonl


def ner_examples(tmp_path):
    rows = [spans_record(t, e) for t, e in NER_SENTENCES] * 3
    examples, _ = read_examples(write_jsonl(tmp_path / "train.jsonl", rows), "spans", "ner")
    return examples


def test_joined_keeps_every_label_on_its_own_characters():
    relation = Relation(Span(0, 1, "s"), "p", (("@value", Span(2, 3, "o")),))
    a = Example("甲乙丙", spans=(Span(0, 2, "x"),), relations=(relation,),
                events=(Event("t", frozenset([Span(1, 2, "触发词")])),))
    b = Example("丁戊", spans=(Span(1, 2, "y"),))
    both = joined([a, b])
    assert both.text == "甲乙丙\n丁戊"
    assert [both.text[s.start:s.end] for s in both.spans] == ["甲乙", "戊"]
    (r,) = both.relations
    assert both.text[r.subject.start:r.subject.end] == "甲" and both.text[r.object.start:r.object.end] == "丙"
    (e,) = both.events
    assert [both.text[s.start:s.end] for s in e.arguments] == ["乙"]


def test_packs_fill_windows_keep_all_gold_and_never_pair_two_examples(tmp_path):
    examples = ner_examples(tmp_path)
    task = NerTask(Schema(task="ner", entity_types=["loc", "org", "person"]))
    encoder = WindowEncoder(scratch_tokenizer(e.text for e in examples), 40, 8)
    packs, first_rows = packed(examples, list(range(len(examples))), encoder)
    assert 1 < len(packs) < len(examples) and first_rows[0] == 0 and first_rows == sorted(first_rows)
    # every example is in exactly one pack, in order, and each pack fits one window
    assert "\n".join(p.text for p in packs) == "\n".join(e.text for e in examples)
    windows = encoder.encode([p.text for p in packs])
    assert len(windows) == len(packs)
    gold = [(e.text[s.start:s.end], s.label) for e in examples for s in e.spans]
    assert sorted((p.text[s.start:s.end], s.label) for p in packs for s in p.spans) == sorted(gold)
    oracle = oracle_predictions(task, packs, windows)
    assert all(set(task.gold(p)) == set(o) for p, o in zip(packs, oracle))  # nothing lost to packing
    for w in windows:  # every positive cell lies inside one example: a cell across two is a negative
        pack = packs[w.example_index]
        starts = [0]
        for part in pack.text.split("\n")[:-1]:
            starts.append(starts[-1] + len(part) + 1)
        for _, i, j in task.targets(pack, w)["entities"]:
            (a, _), (_, b) = w.char_spans[i], w.char_spans[j]
            owner = [k for k, s in enumerate(starts) if s <= a]
            assert pack.text[starts[owner[-1]]:b].count("\n") == 0


def test_training_with_pack_uses_fewer_windows(tmp_path):
    from gplinker.commands.train import train

    data = write_jsonl(tmp_path / "train.jsonl", [spans_record(t, e) for t, e in NER_SENTENCES] * 3)
    plain = train(load_config(None, tiny_overrides(data, None, tmp_path / "a", "train.max_steps=2")))
    packed_run = train(load_config(None, tiny_overrides(data, None, tmp_path / "b", "train.max_steps=2",
                                                        "data.pack=true")))
    assert plain.windows == 3 * len(NER_SENTENCES) and packed_run.windows < plain.windows
    assert packed_run.unplaced == 0


def test_a_pack_share_makes_about_that_share_of_windows_packs_the_same_way_every_time(tmp_path):
    examples = ner_examples(tmp_path) * 40  # 1,320 short sentences
    encoder = WindowEncoder(scratch_tokenizer(e.text for e in examples), 64, 8)
    rows = list(range(len(examples)))
    full, _ = packed(examples, rows, encoder)
    for share in (0.25, 0.5, 0.75):
        packs, first_rows = packed(examples, rows, encoder, share)
        assert "\n".join(p.text for p in packs) == "\n".join(e.text for e in examples)  # each example once, in order
        multi = [p for p in packs if "\n" in p.text]
        drawn = [r for r in first_rows if pack_drawn(r, share)]
        # a window is a pack exactly when its first row was drawn (a drawn pack of one: the next did not fit)
        assert all(("\n" in p.text) <= pack_drawn(r, share) for p, r in zip(packs, first_rows))
        assert len(multi) >= len(drawn) - 2
        assert abs(len(drawn) / len(packs) - share) < 0.08  # ~230-900 windows: 3 standard deviations
        assert len(full) < len(packs) < len(examples)
        assert packed(examples, rows, encoder, share) == (packs, first_rows)  # deterministic
    # the draw follows corpus rows (keys), not a batch's own numbering: rows 100.. draw as rows 100.. anywhere
    shifted, _ = packed(examples[100:], rows[:-100], encoder, 0.5, keys=rows[100:])
    again, _ = packed(examples[100:], rows[100:], encoder, 0.5)
    other, _ = packed(examples[100:], rows[:-100], encoder, 0.5)
    assert shifted == again != other
    assert [pack_drawn(k, 1.0) for k in range(50)] == [True] * 50
    assert sum(pack_drawn(k, 0.3) for k in range(10_000)) in range(2860, 3141)  # 3 standard deviations


def test_training_with_a_pack_share_sits_between_plain_and_packed(tmp_path):
    from gplinker.commands.train import train

    data = write_jsonl(tmp_path / "train.jsonl", [spans_record(t, e) for t, e in NER_SENTENCES] * 6)
    runs = {pack: train(load_config(None, tiny_overrides(data, None, tmp_path / str(pack), "train.max_steps=1",
                                                         f"data.pack={pack}"))).windows
            for pack in ("false", "0.5", "true")}
    assert runs["true"] < runs["0.5"] < runs["false"] == 6 * len(NER_SENTENCES)


def test_a_pack_share_outside_0_1_is_refused():
    for bad in ("0", "1.5", "-0.5"):
        with pytest.raises(ConfigError, match=r"data.pack must be true, false or a share"):
            load_config(None, ["data.train=x.json", f"data.pack={bad}"])
    assert load_config(None, ["data.train=x.json", "data.pack=1"]).data.pack == 1.0
