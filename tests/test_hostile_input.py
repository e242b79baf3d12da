"""Hostile input for every reader and for predict: a file:line error, a counted skip, or an error record.

Never a traceback, a hang or a lost line. Run with -s to see how many cases each reader survived.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gplinker.data.duee import parse_duee
from gplinker.data.duie import parse_duie1, parse_duie2
from gplinker.data.formats import parse_cluener, parse_spans
from gplinker.data.reading import read_lines
from gplinker.errors import DataError

READERS = {"cluener": parse_cluener, "spans": parse_spans, "duie2": parse_duie2, "duie1": parse_duie1,
           "duee": parse_duee}

VALID = {
    "cluener": {"text": "张伟在北京", "label": {"name": {"张伟": [[0, 1]]}}},
    "spans": {"text": "张伟在北京", "entities": [{"start": 3, "end": 5, "type": "loc"}]},
    "duie2": {"text": "张伟写了星河", "spo_list": [{"subject": "星河", "subject_type": "书", "predicate": "作者",
                                                 "object": {"@value": "张伟"}, "object_type": {"@value": "人"}}]},
    "duie1": {"text": "张伟写了星河", "spo_list": [{"subject": "星河", "subject_type": "书", "predicate": "作者",
                                                 "object": "张伟", "object_type": "人"}]},
    "duee": {"text": "张伟在北京被捕", "id": "a", "event_list": [{"event_type": "司法-拘捕", "trigger": "被捕",
             "trigger_start_index": 5,
             "arguments": [{"role": "被拘捕者", "argument": "张伟", "argument_start_index": 0}]}]},
}


def line(obj) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode("utf-8")


HAND_MADE: dict[str, bytes] = {
    "malformed JSON": b'{"text": "abc"',
    "JSON array": b"[1, 2]",
    "JSON string": b'"text"',
    "missing text": line({"label": {}}),
    "text is a number": line({"text": 12}),
    "text is null": line({"text": None}),
    "empty text": line({"text": ""}),
    "whitespace text": line({"text": " \t\u3000 "}),
    "NUL and control chars": line({"text": "张\x00伟\x07在\x1b北京"}),
    "invalid UTF-8": b'{"text": "\xff\xfe\xfd"}',
    "lone surrogate escape": b'{"text": "\\ud800abc"}',
    "100k characters": line({"text": "张伟在北京。" * 16_667}),
    "labels of the wrong type": line({"text": "北京", "label": "loc", "entities": "x", "spo_list": "x",
                                      "event_list": 5}),
    "offsets out of range": line({"text": "北京", "label": {"loc": {"北京": [[0, 9]]}},
                                  "entities": [{"start": -1, "end": 99, "type": "loc"}],
                                  "event_list": [{"event_type": "e", "trigger": "北", "trigger_start_index": 7,
                                                  "arguments": []}]}),
    "offsets disagree with text": line({"text": "北京", "label": {"loc": {"上海": [[0, 1]]}},
                                        "entities": [{"start": 0, "end": 2, "type": "loc", "text": "上海"}],
                                        "event_list": [{"event_type": "e", "trigger": "京", "trigger_start_index": 0,
                                                        "arguments": []}]}),
    "float offsets": line({"text": "北京", "label": {"loc": {"北京": [[0.0, 1.0]]}},
                           "entities": [{"start": 0.0, "end": 2, "type": "loc"}]}),
    "bool offsets": line({"text": "北京", "label": {"loc": {"北京": [[False, True]]}},
                          "entities": [{"start": False, "end": 2, "type": "loc"}]}),
    "spo with missing fields": line({"text": "北京", "spo_list": [{"subject": "北京"}]}),
    "spo with unlocatable mention": line({"text": "北京", "spo_list": [{"subject": "上海", "subject_type": "地",
                                          "predicate": "p", "object": {"@value": "北京"},
                                          "object_type": {"@value": "地"},
                                          }]}),
    "extra fields": line({"text": "北京", "whatever": [1, {"x": None}], "label": {}, "entities": []}),
    "duplicate id": line({"text": "北京", "id": "dup"}),
}


def survive(reader: str, raw: bytes, tmp_path, skip: bool):
    """Feed one case (after a valid line and a first 'dup' id line) and classify what happened."""
    path = tmp_path / f"{reader}.jsonl"
    header = line({**VALID[reader], "id": "dup"})
    path.write_bytes(b"\xef\xbb\xbf" + header + b"\r\n" + raw + b"\r\n")
    try:
        examples, report = read_lines(path, READERS[reader], skip_invalid=skip)
    except DataError as err:
        assert not skip, f"{reader}: skip_invalid must not raise: {err}"
        assert err.path == str(path) and err.line == 2, str(err)
        return "error"
    assert report.lines == 2 and len(examples) + len(report.skipped) == 2, "a line was lost"
    if report.skipped:
        assert report.skipped[0].line == 2
        return "skipped"
    return "read"


def test_hand_made_cases_end_in_read_error_or_skip(tmp_path, capsys):
    table = {}
    for reader in READERS:
        outcomes = Counter()
        for name, raw in HAND_MADE.items():
            strict = survive(reader, raw, tmp_path, skip=False)
            lenient = survive(reader, raw, tmp_path, skip=True)
            assert (strict, lenient) in {("error", "skipped"), ("read", "read")}, (reader, name, strict, lenient)
            outcomes[lenient] += 1
        table[reader] = outcomes
    # cases every reader must reject
    for reader in READERS:
        for name in ("malformed JSON", "JSON array", "missing text", "text is a number", "empty text",
                     "whitespace text", "invalid UTF-8", "lone surrogate escape", "duplicate id"):
            assert survive(reader, HAND_MADE[name], tmp_path, skip=True) == "skipped", (reader, name)
    with capsys.disabled():
        print(f"\nhostile hand-made cases ({len(HAND_MADE)} per reader): " + "; ".join(
            f"{r}: {c['read']} read, {c['skipped']} skipped with file:line, 0 crashes" for r, c in table.items()))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 60) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(
        st.sampled_from(["text", "label", "entities", "start", "end", "type", "spo_list", "subject", "object",
                         "predicate", "subject_type", "object_type", "@value", "event_list", "event_type", "trigger",
                         "trigger_start_index", "arguments", "role", "argument", "argument_start_index", "id"]),
        children, max_size=5),
    max_leaves=12)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(reader=st.sampled_from(sorted(READERS)), obj=json_values, raw=st.binary(max_size=24),
       use_raw=st.booleans())
def test_fuzzed_lines_never_crash_a_reader(tmp_path, reader, obj, raw, use_raw):
    data = raw if use_raw else json.dumps(obj).encode("utf-8")
    if not data.strip() or b"\n" in data or b"\r" in data:
        return  # one case must be exactly one line
    strict = survive(reader, data, tmp_path, skip=False)
    lenient = survive(reader, data, tmp_path, skip=True)
    assert (strict, lenient) in {("error", "skipped"), ("read", "read")}


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    from gplinker.commands.train import train
    from gplinker.config import load_config
    from gplinker.predict import Predictor
    from tests.conftest import NER_SENTENCES, spans_record, tiny_overrides, write_jsonl

    tmp = tmp_path_factory.mktemp("hostile")
    data = write_jsonl(tmp / "t.jsonl", [spans_record(t, e) for t, e in NER_SENTENCES])
    train(load_config(None, tiny_overrides(data, None, tmp / "m", "train.max_steps=40")))
    return Predictor.from_pretrained(tmp / "m" / "last", device="cpu", threshold=2.0)


def test_predict_answers_every_hostile_line(tmp_path, predictor, capsys):
    from gplinker.commands.predict import predict_lines
    from gplinker.data.reading import read_text_lines

    cases = list(HAND_MADE.values()) + [b"", b"   ", line({"text": "北京", "id": "dup"})]
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b"\r\n".join(cases) + b"\r\n")
    out: list[str] = []
    summary = predict_lines(predictor, read_text_lines(str(path)), out.append, source=str(path))
    records = [json.loads(x) for x in out]
    assert len(records) == len(cases) == summary.lines
    for k, (_raw, record) in enumerate(zip(cases, records), start=1):
        if "error" in record:
            assert record["error"].startswith(f"{path}:{k}: ") and record["line"] == k
        else:
            for ent in record["entities"]:
                assert record["text"][ent["start"]:ent["end"]] == ent["text"]
    by_name = dict(zip(list(HAND_MADE) + ["blank", "spaces", "second dup"], records))
    for name in ("malformed JSON", "missing text", "blank", "lone surrogate escape", "text is a number"):
        assert "error" in by_name[name], name
    assert by_name["100k characters"]["text"] == "张伟在北京。" * 16_667  # long text predicted, not truncated
    assert "error" not in by_name["invalid UTF-8"]  # decoded with U+FFFD replacement, predicted like any text
    with capsys.disabled():
        print(f"\npredict: {len(cases)} hostile lines → {len(records)} output lines, {summary.errors} with error")
