"""English relation benchmarks: CasRel's and TPLinker's NYT / WebNLG files, an English WordPiece tokenizer.

The files are written here (made-up sentences in the benchmarks' layout: CasRel's token-spaced text,
TPLinker's character spans), with mentions repeated in one text and overlapping triples (one entity
in several triples, SEO; one entity pair with two predicates, EPO). The tokenizer is a cased
WordPiece vocabulary written in the test (no hub): some entities are cut inside a word, so the
offsets come from offset_mapping, never from string search.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from gplinker.cli import app
from gplinker.data.encoding import WindowEncoder
from gplinker.data.english_re import word_occurrences
from gplinker.data.reading import detect_format, read_examples
from gplinker.data.schema import schema_from_examples
from gplinker.data.sources import records
from gplinker.errors import DataError
from gplinker.metrics import relation_scores
from gplinker.tasks.oracle import oracle_predictions
from gplinker.tasks.relation import RelationTask

BORN, LIVED, CONTAINS, CAPITAL = ("/people/person/place_of_birth", "/people/person/place_lived",
                                  "/location/location/contains", "/location/country/capital")
# NYT*-style (CasRel): the last word of each entity; "Obama" twice in the first text
STAR = [
    {"text": "Barack Obama was born in Honolulu , Hawaii , and Obama later lived in Chicago .",
     "triple_list": [["Obama", BORN, "Honolulu"], ["Obama", LIVED, "Chicago"], ["Hawaii", CONTAINS, "Honolulu"]]},
    {"text": "Paris is the capital of France , and France contains Lyon too .",
     "triple_list": [["France", CAPITAL, "Paris"], ["France", CONTAINS, "Paris"], ["France", CONTAINS, "Lyon"]]},
    {"text": "Washingtonians say Washington is in America .", "triple_list": [["America", CONTAINS, "Washington"]]},
]
# NYT-style (exact): whole spans
WHOLE = [
    {"text": "Barack Obama was born in Honolulu , Hawaii , and Barack Obama later lived in New York City .",
     "triple_list": [["Barack Obama", BORN, "Honolulu"], ["Barack Obama", LIVED, "New York City"],
                     ["Hawaii", CONTAINS, "Honolulu"]]},
    {"text": "The United States capital Washington is not Washington State .",
     "triple_list": [["United States", CAPITAL, "Washington"], ["United States", CONTAINS, "Washington"],
                     ["United States", CONTAINS, "Washington State"]]},
]
WORDS = ("Barack Obama was born in Honolulu , Hawaii and later lived Chicago . Paris is the capital of France "
         "contains Lyon too say in America New York City The United States not State").split()
# WordPiece pieces: "Washington" is Wash ##ington, "Washingtonians" Wash ##ington ##ians
PIECES = ["Wash", "##ington", "##ians"]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from transformers import BertTokenizerFast

    directory = tmp_path_factory.mktemp("vocab")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *dict.fromkeys(WORDS), *PIECES]
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tok = BertTokenizerFast.from_pretrained(str(directory), do_lower_case=False)  # cased, as bert-base-cased
    assert tok.tokenize("Washingtonians") == ["Wash", "##ington", "##ians"]
    return tok


def tplinker_record(casrel: dict, k: int) -> dict:
    """The TPLinker layout of a CasRel record: character spans of the mentions CasRel's reader locates, dummy
    token spans (TPLinker's own tokenizer's; ignored)."""
    from gplinker.data.english_re import parse_casrel

    example = parse_casrel(casrel)
    text = example.text
    relations = [{"subject": text[r.subject.start : r.subject.end], "predicate": r.predicate,
                  "object": text[o.start : o.end], "subj_char_span": [r.subject.start, r.subject.end],
                  "obj_char_span": [o.start, o.end], "subj_tok_span": [0, 1], "obj_tok_span": [0, 1]}
                 for r in example.relations for _, o in r.objects]
    entities = sorted({(s.start, s.end) for r in example.relations for s in (r.subject, r.objects[0][1])})
    return {"text": text, "id": f"t{k}", "relation_list": relations,
            "entity_list": [{"text": text[s:e], "type": "DEFAULT", "char_span": [s, e]} for s, e in entities]}


def write_array(path, rows):
    path.write_text(json.dumps(rows, ensure_ascii=False, indent=2), encoding="utf-8")  # as published: indented
    return path


def round_trip(tokenizer, examples):
    task = RelationTask(schema_from_examples("relation", examples, relation_format="duie1"))
    windows = WindowEncoder(tokenizer, 24, 8).encode([e.text for e in examples])  # some texts take two windows
    predictions = oracle_predictions(task, examples, windows)
    return task, relation_scores([e.text for e in examples], [task.gold(e) for e in examples],
                                 [sorted(p) for p in predictions]), predictions


@pytest.mark.parametrize("rows", [STAR, WHOLE], ids=["star", "whole"])
@pytest.mark.parametrize("layout", ["casrel", "tplinker"])
def test_the_oracle_round_trip_is_exact_on_both_layouts(tokenizer, tmp_path, rows, layout):
    data = [tplinker_record(r, k) for k, r in enumerate(rows)] if layout == "tplinker" else rows
    path = write_array(tmp_path / "train.json", data)
    assert detect_format(path, "relation") == layout
    examples, report = read_examples(path, "auto", "relation")
    assert report.examples == len(rows) and report.lines == len(rows)
    assert sum(len(e.relations) for e in examples) == sum(len(r["triple_list"]) for r in rows)
    task, scores, predictions = round_trip(tokenizer, examples)
    assert scores.main == 1.0 and scores.metrics["offset_f1"] == 1.0 and scores.metrics["last_word_f1"] == 1.0
    assert [set(p) for p in predictions] == [set(task.gold(e)) for e in examples]


def test_repeated_mentions_and_overlapping_triples_are_located_at_the_right_words():
    from gplinker.data.english_re import parse_casrel

    first = parse_casrel(STAR[0])
    text = first.text
    spans = {(r.subject.start, r.predicate, r.objects[0][1].start) for r in first.relations}
    obama, second_obama = text.index("Obama"), text.index("Obama", text.index("Obama") + 1)
    honolulu, chicago = text.index("Honolulu"), text.index("Chicago")
    # each triple takes the Obama nearest its object: the place of birth the first, the later residence the second
    hawaii = text.index("Hawaii")
    assert spans == {(obama, BORN, honolulu), (second_obama, LIVED, chicago), (hawaii, CONTAINS, honolulu)}
    third = parse_casrel(STAR[2])
    (relation,) = third.relations
    o = relation.objects[0][1]
    assert third.text[o.start : o.end] == "Washington" and o.start == third.text.index(" Washington ") + 1
    assert word_occurrences("Bobby met Bob", "Bob") == [10] and word_occurrences("Bobby", "Bob") == [0]


def last_word(text: str, span):
    """The span cut to its last word."""
    start = text.rindex(" ", span.start, span.end) + 1 if " " in text[span.start : span.end] else span.start
    return type(span)(start, span.end, span.label)


def test_the_two_scoring_conventions():
    from gplinker.data.english_re import parse_casrel

    example = parse_casrel(WHOLE[0])
    text, gold = example.text, list(example.relations)
    # the same triples, each entity cut to its last word (what a model trained on NYT* predicts)
    cut = [type(r)(last_word(text, r.subject), r.predicate, ((slot, last_word(text, o)),)) for r in gold
           for slot, o in r.objects]
    scores = relation_scores([text], [gold], [cut])
    assert scores.metrics["last_word_f1"] == 1.0
    assert scores.main == pytest.approx(1 / 3)  # of the three, only Hawaii contains Honolulu is whole: P = R = 1/3


def test_a_json_array_file_gives_each_record_the_line_it_starts_on(tmp_path):
    path = write_array(tmp_path / "a.json", STAR)
    lines = path.read_text(encoding="utf-8").splitlines()
    starts = [k + 1 for k, line in enumerate(lines) if line.strip() == "{"]
    assert [line for line, _ in records(path)] == starts
    bad = [STAR[0], {**STAR[1], "triple_list": [["France", CAPITAL]]}]
    path = write_array(tmp_path / "b.json", bad)
    with pytest.raises(DataError, match=rf"b\.json:{starts[1]}: triple_list\[0\] must be \[subject, predicate"):
        read_examples(path, "casrel", "relation")
    path.write_text('[\n  {"text": "a b", "triple_list": []},\n  {"text": \n]', encoding="utf-8")
    with pytest.raises(DataError, match=r"c\.json:4: malformed JSON array"):
        read_examples(path.rename(tmp_path / "c.json"), "casrel", "relation")


def test_tplinker_spans_that_disagree_with_the_text_or_are_missing_are_refused(tmp_path):
    record = tplinker_record(STAR[0], 0)
    record["relation_list"][0]["subj_char_span"] = [0, 5]  # "Barac", not "Obama"
    path = write_array(tmp_path / "t.json", [tplinker_record(STAR[1], 1), record])
    with pytest.raises(DataError, match=r"t\.json:\d+: relation_list\[0\]: span \[0, 5\) of 'subject' reads 'Barac'"):
        read_examples(path, "tplinker", "relation")
    del record["relation_list"][0]["subj_char_span"]
    path = write_array(tmp_path / "t.json", [record])
    with pytest.raises(DataError, match="no 'subj_char_span'"):
        read_examples(path, "tplinker", "relation")


def test_a_triple_whose_mention_is_not_in_the_text_is_counted_not_dropped(tmp_path):
    row = {"text": "Paris is in France .", "triple_list": [["France", CONTAINS, "Paris"], ["Spain", CONTAINS, "Paris"]]}
    (example,), _ = read_examples(write_array(tmp_path / "u.json", [row]), "casrel", "relation")
    assert len(example.relations) == 1 and example.meta["unlocated"] == [
        ("subject not in text", {"subject": "Spain", "predicate": CONTAINS, "object": "Paris"})]


def test_check_with_the_english_tokenizer_reports_the_full_round_trip(tokenizer, tmp_path):
    tokenizer.save_pretrained(str(tmp_path / "tok"))
    path = write_array(tmp_path / "nyt.json", STAR + WHOLE)
    result = CliRunner().invoke(app, ["check", str(path), "--task", "relation", "--tokenizer", str(tmp_path / "tok"),
                                      "--max-length", "24", "--stride", "8"])
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "format casrel" in output and "100.00" in output, output


def test_shipped_english_configs_read_casrel_files():
    from gplinker.config import load_config
    from tests.conftest import REPO

    for name, folder in (("nyt.yaml", "nyt"), ("webnlg.yaml", "webnlg")):
        cfg = load_config(REPO / "configs" / name)
        assert cfg.task == "relation" and cfg.data.format == "casrel"
        assert cfg.data.train.endswith(f"{folder}/train_triples.json") and cfg.model.encoder == "bert-base-cased"
