"""NER task: gold → targets → decode round trips (nested spans, windows), records, oracle check."""

from __future__ import annotations

from gplinker.commands.check import check_data
from gplinker.data.encoding import WindowEncoder
from gplinker.data.examples import Example, Span
from gplinker.data.schema import schema_from_examples
from gplinker.modeling.encoders import scratch_tokenizer
from gplinker.tasks.ner import NerTask, flat_spans
from gplinker.tasks.oracle import oracle_predictions
from tests.conftest import NER_SENTENCES, spans_record, write_jsonl


def make_examples() -> list[Example]:
    examples = []
    for text, entities in NER_SENTENCES:
        rec = spans_record(text, entities)
        examples.append(Example(text, tuple(sorted(Span(e["start"], e["end"], e["type"]) for e in rec["entities"]))))
    return examples


def round_trip(examples, max_length=64, stride=8):
    task = NerTask(schema_from_examples("ner", examples))
    tok = scratch_tokenizer(e.text for e in examples)
    windows = WindowEncoder(tok, max_length, stride).encode([e.text for e in examples])
    return task, windows, oracle_predictions(task, examples, windows)


def test_round_trip_gives_back_nested_gold():
    examples = make_examples()
    task, _, predicted = round_trip(examples)
    for e, p in zip(examples, predicted):
        assert sorted(p) == sorted(e.spans)


def test_window_merge_keeps_entity_crossing_boundary():
    # 30 filler characters, then an entity that straddles the first window's end (max_length 16 → 14 tokens)
    text = "的" * 12 + "北京大学" + "的" * 20 + "上海"
    gold = (Span(12, 16, "org"), Span(12, 14, "loc"), Span(36, 38, "loc"))
    examples = [Example(text, gold)]
    task, windows, predicted = round_trip(examples, max_length=16, stride=6)
    assert len(windows) > 2
    assert any(w.token_span(12, 16) is None and w.char_range[0] <= 12 < w.char_range[1] for w in windows), \
        "the org must be cut by some window, so only the overlap recovers it"
    assert sorted(predicted[0]) == sorted(gold)


def test_decode_ignores_cells_on_special_tokens_and_keeps_max_score():
    examples = make_examples()[:1]
    task, windows, _ = round_trip(examples)
    w = windows[0]
    last = len(w) - 1  # [SEP]
    pred = task.decode(w, {"entities": [(0, 0, 2, 5.0), (0, 1, last, 3.0), (0, 1, 2, 1.5)]})
    assert list(pred) == [Span(0, 2, task.types[0])]
    merged = task.merge([pred, {Span(0, 2, task.types[0]): 4.0}])
    assert merged[Span(0, 2, task.types[0])] == 4.0


def test_record_has_character_offsets_text_and_probability():
    examples = make_examples()[:1]
    task, _, predicted = round_trip(examples)
    rec = task.record(examples[0], predicted[0])
    assert rec["text"] == examples[0].text
    for ent in rec["entities"]:
        assert examples[0].text[ent["start"]:ent["end"]] == ent["text"]
        assert ent["score"] == 0.7311  # sigmoid(1.0), the oracle's logit
    assert [(e["start"], e["end"]) for e in rec["entities"]] == sorted((e["start"], e["end"]) for e in rec["entities"])


def test_check_reports_full_oracle_and_counts_invalid_lines(tmp_path):
    rows = [spans_record(t, e) for t, e in NER_SENTENCES]
    bad = {"text": "张伟", "entities": [{"start": 0, "end": 2, "type": "person", "text": "李娜"}]}
    path = write_jsonl(tmp_path / "d.jsonl", rows + ["{not json", bad])
    report = check_data(str(path), "ner", max_length=16, stride=4)
    assert report.oracle.f1 == 1.0 and report.oracle.n_gold == sum(len(e) for _, e in NER_SENTENCES)
    assert len(report.report.skipped) == 2
    assert [e.line for e in report.report.skipped] == [len(rows) + 1, len(rows) + 2]
    assert report.long_texts >= 1


def test_check_reports_spans_lost_to_tokenization(tmp_path):
    # "ab" inside the word "abc": with a WordPiece vocabulary where "abc" is one token the span is lost
    from transformers import BertTokenizerFast

    (tmp_path / "vocab").mkdir()
    (tmp_path / "vocab" / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nabc\n北\n", encoding="utf-8")
    tok = BertTokenizerFast.from_pretrained(str(tmp_path / "vocab"))
    path = write_jsonl(tmp_path / "d.jsonl", [{"text": "abc北", "entities": [
        {"start": 0, "end": 2, "type": "x"}, {"start": 3, "end": 4, "type": "y"}]}])
    report = check_data(str(path), "ner", tokenizer=tok)
    assert report.oracle.tp == 1 and report.oracle.n_gold == 2
    assert report.lost[0][1] == {"type": "x", "text": "ab", "start": 0, "end": 2}


def test_cells_above_keeps_the_strongest_cells_of_a_crowded_window():
    import torch

    from gplinker.predict import cells_above

    x = torch.full((2, 1, 8, 8), -5.0)
    x[0] = torch.arange(64, dtype=torch.float).view(1, 8, 8)  # 63 cells above 0 in row 0
    x[1, 0, 2, 3] = 1.0  # one cell in row 1
    rows = cells_above({"h": x}, 0.0, 2, max_cells=10)
    assert sorted(s for *_, s in rows[0]["h"]) == [float(v) for v in range(54, 64)]
    assert rows[1]["h"] == [(0, 2, 3, 1.0)]
    assert len(cells_above({"h": x}, 0.0, 2, max_cells=100)[0]["h"]) == 63


def test_cells_above_matches_a_plain_loop_over_every_cell():
    import torch

    from gplinker.predict import cells_above

    torch.manual_seed(0)
    x = torch.randn(3, 2, 6, 6)
    x[0] -= 2.0  # window 0: a few cells above 0
    x[1] += 3.0  # window 1 is crowded: most of its 72 cells are above 0
    rows = cells_above({"h": x}, 0.0, 3, max_cells=20)
    for b in range(3):
        above = [(c, i, j, float(x[b, c, i, j])) for c in range(2) for i in range(6) for j in range(6)
                 if x[b, c, i, j] > 0]
        if len(above) > 20:
            kth = sorted((s for *_, s in above), reverse=True)[19]
            above = [cell for cell in above if cell[3] >= kth]
        assert sorted(rows[b]["h"]) == sorted(above)
    assert len(rows[1]["h"]) == 20 and len(rows[0]["h"]) < 20


# --- flat decoding (model.decode: flat) --------------------------------------------------------

TITLE = "我玩《英雄联盟》和《王者荣耀》。"


def test_flat_keeps_one_type_of_a_span_predicted_as_three():
    a, b = TITLE.index("《英雄联盟》"), TITLE.index("《王者荣耀》")
    predicted = {Span(a, a + 6, "book"): 1.0, Span(a, a + 6, "game"): 3.0, Span(a, a + 6, "movie"): 2.0,
                 Span(b, b + 6, "game"): 0.5}
    flat = NerTask(schema_from_examples("ner", []), flat=True).merge([predicted])
    assert flat == {Span(a, a + 6, "game"): 3.0, Span(b, b + 6, "game"): 0.5}  # disjoint spans both stay
    assert NerTask(schema_from_examples("ner", [])).merge([predicted]) == predicted  # nested keeps all


def test_flat_is_greedy_by_score_with_ties_by_start_end_label():
    text = "张伟在北京大学读书。"
    uni, city, crossing = Span(3, 7, "org"), Span(3, 5, "loc"), Span(2, 4, "x")
    assert flat_spans({uni: 2.0, city: 5.0, crossing: 1.0}) == {city: 5.0}  # city blocks both
    assert flat_spans({uni: 5.0, city: 2.0, Span(0, 2, "person"): 1.0}) == {uni: 5.0, Span(0, 2, "person"): 1.0}
    # a tie: the smaller start wins, then the smaller end, then the label name
    assert flat_spans({uni: 1.0, crossing: 1.0}) == {crossing: 1.0}
    assert flat_spans({uni: 1.0, city: 1.0}) == {city: 1.0}
    assert flat_spans({Span(3, 5, "loc"): 1.0, Span(3, 5, "gpe"): 1.0}) == {Span(3, 5, "gpe"): 1.0}
    assert len(text) > uni.end


def test_flat_applies_after_windows_merge():
    left, right = Span(0, 4, "org"), Span(2, 6, "org")  # found in two windows, overlapping
    task = NerTask(schema_from_examples("ner", []), flat=True)
    assert task.merge([{left: 1.0}, {right: 2.0}]) == {right: 2.0}
