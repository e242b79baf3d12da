"""DuIE 1.0/2.0 and DuEE readers and the label schema, on synthetic sentences written here.

The `slow` tests at the end read the real (subset) files under ../shared/data when present.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gplinker.data.duee import parse_duee
from gplinker.data.duie import (
    locate_relation,
    location_report,
    nearest_pair,
    occurrences,
    occurrences_ignoring_case,
    parse_duie1,
    parse_duie2,
)
from gplinker.data.examples import TRIGGER_ROLE, Event, Relation, Span
from gplinker.data.formats import LineError
from gplinker.data.reading import read_lines
from gplinker.data.schema import (
    Schema,
    load_duee_schema,
    load_duie_schema,
    schema_from_examples,
    split_channel,
)
from gplinker.errors import DataError

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def write_jsonl(path: Path, rows: list) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows]
    path.write_text("".join(line + "\n" for line in lines), "utf-8")
    return path


def spo2(subject, subject_type, predicate, objects: dict, types: dict) -> dict:
    return {"subject": subject, "subject_type": subject_type, "predicate": predicate,
            "object": objects, "object_type": types}


def spo1(subject, subject_type, predicate, obj, obj_type) -> dict:
    return {"subject": subject, "subject_type": subject_type, "predicate": predicate,
            "object": obj, "object_type": obj_type}


def value(span: Span) -> tuple[tuple[str, Span], ...]:
    return (("@value", span),)


# --- locating mentions ------------------------------------------------------------------------


def test_occurrences_include_overlapping_matches():
    assert occurrences("嘻嘻嘻嘻", "嘻嘻") == [0, 1, 2]
    assert occurrences("李明和李明", "李明") == [0, 3]
    assert occurrences("李明", "王芳") == []
    assert occurrences("李明", "") == []


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="甲乙丙", max_size=12), st.text(alphabet="甲乙丙", max_size=3))
def test_occurrences_match_startswith_at_every_index(text, mention):
    reference = [i for i in range(len(text)) if mention and text.startswith(mention, i)]
    assert occurrences(text, mention) == reference


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="甲乙丙", min_size=1, max_size=12), st.text(alphabet="甲乙", min_size=1, max_size=2),
       st.text(alphabet="乙丙", min_size=1, max_size=2))
def test_located_pair_reads_back_and_is_nearest_non_overlapping(text, subject, obj):
    relation, reason, _ = locate_relation(text, subject, "S", "p", {"@value": (obj, "O")})
    subjects, objects = occurrences(text, subject), occurrences(text, obj)
    if not subjects or not objects:
        assert relation is None and reason in {"subject not in text", "object not in text"}
        return
    s, o = relation.subject, relation.object
    assert text[s.start : s.end] == subject and text[o.start : o.end] == obj
    separate = [(a, b) for a in subjects for b in objects if a + len(subject) <= b or b + len(obj) <= a]
    if separate:  # reference: the smallest start distance among non-overlapping pairs
        assert o.start >= s.end or s.start >= o.end
        assert abs(s.start - o.start) == min(abs(a - b) for a, b in separate)


def test_nearest_pair_breaks_ties_by_subject_then_object_start():
    assert nearest_pair([0, 6], 2, [3], 2) == (0, 3)  # 王芳和李明和王芳: both subjects 3 away
    assert nearest_pair([3], 2, [0, 6], 2) == (3, 0)  # 北京的李明去北京: both objects 3 away


def test_case_insensitive_search_is_only_a_separate_function():
    assert occurrences("《Ada之歌》", "ada之歌") == []
    assert occurrences_ignoring_case("《Ada之歌》", "ada之歌") == [1]


# --- DuIE 2.0 ----------------------------------------------------------------------------------


def test_duie2_simple_triple():
    text = "《星河旅人》是李明演唱的歌曲"
    ex = parse_duie2(
        {"text": text, "spo_list": [spo2("星河旅人", "歌曲", "歌手", {"@value": "李明"}, {"@value": "人物"})]}
    )
    assert ex.relations == (Relation(Span(1, 5, "歌曲"), "歌手", value(Span(7, 9, "人物"))),)
    assert ex.meta["located"] == 1 and ex.meta["unlocated"] == []


def test_duie2_picks_nearest_pair_not_first_occurrences():
    # 晚风 at 14, 24; 李明 at 0, 18 -> distances 14, 4, 24, 6 -> (14, 18)
    text = "李明写了《晨光》，王芳唱了《晚风》，李明也唱了《晚风》"
    ex = parse_duie2({"text": text, "spo_list": [spo2("晚风", "歌曲", "歌手", {"@value": "李明"}, {"@value": "人物"})]})
    (rel,) = ex.relations
    assert (rel.subject.start, rel.object.start) == (14, 18)


def test_duie2_subject_after_object():
    # 晚风 at 1, 16; 李明 at 11 -> distances 10 and 5 -> subject 16, after the object
    text = "《晚风》很好听，王芳说李明唱的《晚风》最动人"
    ex = parse_duie2({"text": text, "spo_list": [spo2("晚风", "歌曲", "歌手", {"@value": "李明"}, {"@value": "人物"})]})
    assert ex.relations == (Relation(Span(16, 18, "歌曲"), "歌手", value(Span(11, 13, "人物"))),)


def test_duie2_distance_tie_takes_smaller_subject_start():
    # 晚风 at 9, 17; 李明 at 3, 13 -> (9, 13) and (17, 13) both 4 apart -> subject 9
    text = "王芳、李明合唱了《晚风》，李明说《晚风》是他最爱"
    ex = parse_duie2({"text": text, "spo_list": [spo2("晚风", "歌曲", "歌手", {"@value": "李明"}, {"@value": "人物"})]})
    (rel,) = ex.relations
    assert (rel.subject.start, rel.object.start) == (9, 13)


def test_duie2_overlapping_occurrences_are_candidates():
    # 嘻嘻 occurs at 0 and 1 (overlapping); the one at 1 is nearer to 李明 at 3
    text = "嘻嘻嘻李明"
    ex = parse_duie2({"text": text, "spo_list": [spo2("嘻嘻", "歌曲", "歌手", {"@value": "李明"}, {"@value": "人物"})]})
    assert ex.relations[0].subject == Span(1, 3, "歌曲")


def test_duie2_subject_nested_in_object_prefers_separate_occurrence():
    # 星河 at 1 and 10; 星河之歌 at 10: (10, 10) overlaps, so the separate (1, 10) wins
    text = "《星河》收录于专辑《星河之歌》中"
    row = spo2("星河", "歌曲", "所属专辑", {"@value": "星河之歌"}, {"@value": "音乐专辑"})
    ex = parse_duie2({"text": text, "spo_list": [row]})
    assert ex.relations == (Relation(Span(1, 3, "歌曲"), "所属专辑", value(Span(10, 14, "音乐专辑"))),)
    # when only the nested occurrence exists it is used
    ex = parse_duie2({"text": "专辑《星河之歌》", "spo_list": [row]})
    assert ex.relations == (Relation(Span(3, 5, "歌曲"), "所属专辑", value(Span(3, 7, "音乐专辑"))),)


def test_duie2_complex_object_slots_located_nearest_to_subject():
    # 王芳 at 10; 小蓝 at 21; 星河旅人 at 1 and 14 -> inWork 14 (4 from the subject, not 9)
    text = "《星河旅人》首播后，王芳在《星河旅人》中为小蓝配音"
    row = spo2("王芳", "娱乐人物", "配音", {"@value": "小蓝", "inWork": "星河旅人"},
               {"@value": "人物", "inWork": "影视作品"})
    ex = parse_duie2({"text": text, "spo_list": [row]})
    expected_objects = (("@value", Span(21, 23, "人物")), ("inWork", Span(14, 18, "影视作品")))
    assert ex.relations == (Relation(Span(10, 12, "娱乐人物"), "配音", expected_objects),)
    assert ex.relations[0].object == Span(21, 23, "人物")


def test_duie2_unlocated_triples_are_recorded_with_reason():
    text = "《云端》由李明作词、王芳作曲"
    rows = [
        spo2("云端", "歌曲", "作词", {"@value": "李明"}, {"@value": "人物"}),
        spo2("晚风", "歌曲", "作曲", {"@value": "王芳"}, {"@value": "人物"}),
        spo2("云端", "歌曲", "歌手", {"@value": "赵雷"}, {"@value": "人物"}),
        spo2("云端", "歌曲", "作曲", {"@value": ""}, {"@value": "人物"}),
        spo2("王芳", "娱乐人物", "配音", {"@value": "李明", "inWork": "星河"},
             {"@value": "人物", "inWork": "影视作品"}),
    ]
    ex = parse_duie2({"text": text, "spo_list": rows})
    assert ex.relations == (Relation(Span(1, 3, "歌曲"), "作词", value(Span(5, 7, "人物"))),)
    assert ex.meta["located"] == 1
    assert ex.meta["unlocated"] == [
        ("subject not in text", rows[1]),
        ("object not in text", rows[2]),
        ("empty mention", rows[3]),
        ("object not in text", rows[4]),
    ]
    counts = location_report([ex])
    assert counts["located"] == 1 and counts["object not in text"] == 2
    assert counts["subject not in text"] == 1 and counts["empty mention"] == 1


def test_duie2_duplicate_spo_kept_once_and_counted():
    row = spo2("云端", "歌曲", "作词", {"@value": "李明"}, {"@value": "人物"})
    ex = parse_duie2({"text": "《云端》由李明作词", "spo_list": [row, dict(row)]})
    assert len(ex.relations) == 1
    assert ex.meta["located"] == 2 and ex.meta["duplicates"] == 1


def test_duie2_unlabelled_line_has_no_relations():
    ex = parse_duie2({"text": "《云端》由李明作词"})
    assert ex.relations == () and "unlocated" not in ex.meta


@pytest.mark.parametrize(
    "bad, fragment",
    [
        ({"subject": "云端", "subject_type": "歌曲", "object": {"@value": "李明"}, "object_type": {"@value": "人物"}},
         "predicate"),
        (spo2("云端", "歌曲", "作词", "李明", "人物"), "DuIE 1.0"),
        (spo2("云端", "歌曲", "作词", {"inWork": "李明"}, {"inWork": "人物"}), "@value"),
        (spo2("云端", "歌曲", "作词", {"@value": "李明"}, {"inWork": "人物"}), "slot '@value'"),
        (spo2(3, "歌曲", "作词", {"@value": "李明"}, {"@value": "人物"}), "subject"),
    ],
)
def test_duie2_malformed_spo_is_line_error(bad, fragment):
    with pytest.raises(LineError, match="spo_list\\[0\\]") as info:
        parse_duie2({"text": "《云端》由李明作词", "spo_list": [bad]})
    assert fragment in str(info.value)


def test_duie2_type_error_reports_file_and_line(tmp_path):
    good = {"text": "《云端》由李明作词",
            "spo_list": [spo2("云端", "歌曲", "作词", {"@value": "李明"}, {"@value": "人物"})]}
    bad = {"text": "《云端》由李明作词", "spo_list": [{"subject": "云端", "subject_type": "歌曲"}]}
    path = write_jsonl(tmp_path / "train.json", [good, "", bad])
    with pytest.raises(DataError) as info:
        read_lines(path, parse_duie2)
    assert info.value.line == 3 and f"{path}:3:" in str(info.value) and "predicate" in str(info.value)


def test_duie2_skip_invalid_counts_bad_lines(tmp_path):
    good = {"text": "《云端》由李明作词",
            "spo_list": [spo2("云端", "歌曲", "作词", {"@value": "李明"}, {"@value": "人物"})]}
    rows = [good, {"text": "《云端》", "spo_list": "云端"}, good, "{not json", {"spo_list": []}]
    examples, report = read_lines(write_jsonl(tmp_path / "train.json", rows), parse_duie2, skip_invalid=True)
    assert [e.line for e in examples] == [1, 3]
    assert report.lines == 5 and report.examples == 2
    assert [e.line for e in report.skipped] == [2, 4, 5]


# --- DuIE 1.0 ----------------------------------------------------------------------------------


def test_duie1_plain_string_objects(tmp_path):
    rows = [
        {"postag": [], "text": "《星河旅人》是李明演唱的歌曲",
         "spo_list": [spo1("星河旅人", "歌曲", "歌手", "李明", "人物")]},
        {"text": "《云端》由李明作词"},
    ]
    examples, _ = read_lines(write_jsonl(tmp_path / "dev.json", rows), parse_duie1)
    assert examples[0].relations == (Relation(Span(1, 5, "歌曲"), "歌手", value(Span(7, 9, "人物"))),)
    assert examples[1].relations == ()
    assert examples[0].line == 1 and examples[1].line == 2


def test_duie1_lowercased_mention_found_ignoring_case():
    text = "《Ada之歌》是李明的作品"
    ex = parse_duie1({"text": text, "spo_list": [spo1("ada之歌", "歌曲", "作词", "李明", "人物")]})
    assert ex.relations == (Relation(Span(1, 6, "歌曲"), "作词", value(Span(8, 10, "人物"))),)
    assert ex.meta["ignoring_case"] == 1 and ex.meta["unlocated"] == []


def test_duie1_rejects_dict_object_and_missing_type():
    with pytest.raises(LineError, match="DuIE 2.0"):
        parse_duie1({"text": "李明", "spo_list": [spo2("李明", "人物", "p", {"@value": "李明"}, {"@value": "人物"})]})
    with pytest.raises(LineError, match="object_type"):
        no_type = {"subject": "李明", "subject_type": "人物", "predicate": "p", "object": "李明"}
        parse_duie1({"text": "李明", "spo_list": [no_type]})


# --- DuEE --------------------------------------------------------------------------------------

DUEE_TEXT = "海风公司于4月1日宣布裁员三百人，4月2日又宣布扩招"


def duee_row(**overrides) -> dict:
    event = {
        "event_type": "组织关系-裁员",
        "trigger": "裁员",
        "trigger_start_index": 11,
        "arguments": [
            {"argument_start_index": 0, "role": "裁员方", "argument": "海风公司", "alias": []},
            {"argument_start_index": 5, "role": "时间", "argument": "4月1日", "alias": []},
            {"argument_start_index": 13, "role": "裁员人数", "argument": "三百人", "alias": []},
        ],
        "class": "组织关系",
    }
    event.update(overrides)
    return {"text": DUEE_TEXT, "id": "e1", "event_list": [event]}


def test_duee_event_with_trigger_as_role():
    ex = parse_duee(duee_row())
    expected = Event(
        "组织关系-裁员",
        frozenset({Span(11, 13, TRIGGER_ROLE), Span(0, 4, "裁员方"), Span(5, 9, "时间"), Span(13, 16, "裁员人数")}),
    )
    assert ex.events == (expected,)
    assert ex.events[0].trigger == Span(11, 13, TRIGGER_ROLE)
    assert ex.id == "e1"


def test_duee_offset_mismatch_names_argument_offset_and_text(tmp_path):
    row = duee_row()
    row["event_list"][0]["arguments"][2]["argument_start_index"] = 12
    path = write_jsonl(tmp_path / "dev.json", [duee_row(), row])
    with pytest.raises(DataError) as info:
        read_lines(path, parse_duee)
    message = str(info.value)
    assert info.value.line == 2
    assert "arguments[2]" in message and "'三百人'" in message and "[12, 15)" in message and "'员三百'" in message


def test_duee_trigger_offset_checked():
    with pytest.raises(LineError, match="触发词.*'宣布'.*'裁员'"):
        parse_duee(duee_row(trigger_start_index=9))


def test_duee_missing_event_list_and_bad_types():
    ex = parse_duee({"text": DUEE_TEXT, "id": 7})
    assert ex.events == () and ex.id == "7"
    with pytest.raises(LineError, match="trigger_start_index"):
        parse_duee(duee_row(trigger_start_index="11"))
    with pytest.raises(LineError, match="event_list"):
        parse_duee({"text": DUEE_TEXT, "event_list": {}})
    with pytest.raises(LineError, match="arguments\\[0\\].*role"):
        parse_duee(duee_row(arguments=[{"argument_start_index": 0, "argument": "海风公司"}]))


def test_duee_keeps_non_empty_alias_in_meta():
    row = duee_row(arguments=[{"argument_start_index": 0, "role": "裁员方", "argument": "海风公司", "alias": ["海风"]}])
    ex = parse_duee(row)
    assert ex.meta["aliases"] == [(0, Span(0, 4, "裁员方"), ("海风",))]


# --- schema ------------------------------------------------------------------------------------


def test_load_duie2_schema_channels(tmp_path):
    rows = [
        {"object_type": {"@value": "人物"}, "predicate": "歌手", "subject_type": "歌曲"},
        {"object_type": {"inWork": "影视作品", "@value": "人物"}, "predicate": "配音", "subject_type": "娱乐人物"},
    ]
    schema = load_duie_schema(write_jsonl(tmp_path / "duie_schema.json", rows))
    assert schema.task == "relation"
    assert schema.predicates == ["歌手", "配音"]
    assert schema.entity_types == ["歌曲", "人物", "娱乐人物", "影视作品"]
    assert schema.relation_channels() == ["歌手@@value", "配音@@value", "配音@inWork"]
    split = [split_channel(c) for c in schema.relation_channels()]
    assert split == [("歌手", "@value"), ("配音", "@value"), ("配音", "inWork")]


def test_load_duie1_schema_merges_repeated_predicate(tmp_path):
    rows = [
        {"object_type": "Date", "predicate": "成立日期", "subject_type": "机构"},
        {"object_type": "人物", "predicate": "父亲", "subject_type": "人物"},
        {"object_type": "Date", "predicate": "成立日期", "subject_type": "企业"},
    ]
    schema = load_duie_schema(write_jsonl(tmp_path / "all_50_schemas", rows))
    assert schema.predicates == ["成立日期", "父亲"]
    assert schema.entity_types == ["机构", "Date", "人物", "企业"]
    assert schema.relation_channels() == ["成立日期@@value", "父亲@@value"]


def test_load_duee_schema_adds_trigger_role_first(tmp_path):
    rows = [
        {"event_type": "组织关系-裁员", "role_list": [{"role": "时间"}, {"role": "裁员方"}], "class": "组织关系"},
        {"event_type": "灾害/意外-地震", "role_list": [{"role": "震级"}], "class": "灾害/意外"},
    ]
    schema = load_duee_schema(write_jsonl(tmp_path / "duee_event_schema.json", rows))
    assert schema.event_roles == [
        ("组织关系-裁员", TRIGGER_ROLE), ("组织关系-裁员", "时间"), ("组织关系-裁员", "裁员方"),
        ("灾害/意外-地震", TRIGGER_ROLE), ("灾害/意外-地震", "震级"),
    ]
    assert schema.event_types() == ["组织关系-裁员", "灾害/意外-地震"]


def test_schema_errors_carry_file_and_line(tmp_path):
    with pytest.raises(DataError, match="no such schema file"):
        load_duie_schema(tmp_path / "missing.json")
    path = write_jsonl(tmp_path / "s.json",
                       [{"object_type": "人物", "predicate": "父亲", "subject_type": "人物"}, "{oops"])
    with pytest.raises(DataError) as info:
        load_duie_schema(path)
    assert info.value.line == 2 and "malformed JSON" in info.value.message
    path = write_jsonl(tmp_path / "e.json", [{"event_type": "组织关系-裁员", "role_list": [{"name": "时间"}]}])
    with pytest.raises(DataError) as info:
        load_duee_schema(path)
    assert info.value.line == 1 and "role" in info.value.message
    path = write_jsonl(tmp_path / "p.json", [{"object_type": "人物", "subject_type": "人物"}])
    with pytest.raises(DataError, match="predicate") as info:
        load_duie_schema(path)
    assert info.value.line == 1


def test_schema_round_trips_through_json(tmp_path):
    rows = [{"object_type": {"inWork": "影视作品", "@value": "人物"}, "predicate": "配音", "subject_type": "娱乐人物"}]
    for schema in (
        load_duie_schema(write_jsonl(tmp_path / "s.json", rows)),
        Schema("event", event_roles=[("组织关系-裁员", TRIGGER_ROLE), ("组织关系-裁员", "时间")]),
        Schema("ner", entity_types=["人物", "地点"]),
    ):
        assert Schema.from_dict(json.loads(json.dumps(schema.to_dict(), ensure_ascii=False))) == schema
    with pytest.raises(DataError, match="unknown schema key"):
        Schema.from_dict({"task": "ner", "labels": []})
    with pytest.raises(DataError, match="task"):
        Schema.from_dict({"task": "parse"})


def test_schema_from_examples_sorted_with_trigger_first():
    rel = parse_duie2({"text": "《星河旅人》首播后，王芳在《星河旅人》中为小蓝配音，《云端》由李明作词", "spo_list": [
        spo2("王芳", "娱乐人物", "配音", {"@value": "小蓝", "inWork": "星河旅人"},
             {"@value": "人物", "inWork": "影视作品"}),
        spo2("云端", "歌曲", "作词", {"@value": "李明"}, {"@value": "人物"}),
    ]})
    schema = schema_from_examples("relation", [rel])
    assert schema.predicates == ["作词", "配音"]
    assert schema.entity_types == sorted(["娱乐人物", "人物", "影视作品", "歌曲"])
    assert schema.relation_channels() == ["作词@@value", "配音@@value", "配音@inWork"]
    event = schema_from_examples("event", [parse_duee(duee_row())])
    assert event.event_roles == [
        ("组织关系-裁员", TRIGGER_ROLE), ("组织关系-裁员", "时间"),
        ("组织关系-裁员", "裁员人数"), ("组织关系-裁员", "裁员方"),
    ]
    ner = schema_from_examples("ner", [])
    assert ner.task == "ner" and ner.entity_types == []


# --- real data (subsets), -m slow ------------------------------------------------------------


def real(relative: str) -> Path:
    path = DATA / relative
    if not path.is_file():
        pytest.skip(f"{path} not present")
    return path


@pytest.mark.slow
@pytest.mark.parametrize(
    "relative, parse, spos",
    [
        ("duie2-subset/train.json", parse_duie2, 8945),
        ("duie2-subset/dev.json", parse_duie2, 3656),
        ("duie1-subset/train.json", parse_duie1, 4299),
        ("duie1-subset/dev.json", parse_duie1, 448),
    ],
)
def test_real_duie_subset_reads_every_spo(relative, parse, spos):
    examples, report = read_lines(real(relative), parse)
    counts = location_report(examples)
    unlocated = sum(n for k, n in counts.items() if k not in {"located", "duplicates", "ignoring_case"})
    print(relative, dict(counts))
    assert report.skipped == []
    assert counts["located"] + unlocated == spos
    for ex in examples:
        for rel in ex.relations:
            for span in (rel.subject, *(s for _, s in rel.objects)):
                assert 0 <= span.start < span.end <= len(ex.text)


@pytest.mark.slow
@pytest.mark.parametrize("relative, events, arguments", [("duee/train.json", 580, 1221), ("duee/dev.json", 1790, 3696)])
def test_real_duee_counts(relative, events, arguments):
    examples, report = read_lines(real(relative), parse_duee)
    assert report.skipped == []
    assert sum(len(e.events) for e in examples) == events
    # every event holds its trigger plus its arguments
    assert sum(len(ev.arguments) - 1 for e in examples for ev in e.events) == arguments


@pytest.mark.slow
def test_real_duee_test1_and_schemas():
    examples, _ = read_lines(real("duee/test1.json"), parse_duee)
    assert len(examples) == 1489 and all(e.events == () and e.id for e in examples)
    assert len(load_duie_schema(real("duie2-subset/duie_schema.json")).predicates) == 48
    assert len(load_duie_schema(real("duie1-subset/all_50_schemas")).predicates) == 49  # 成立日期 listed twice
    duee = load_duee_schema(real("duee/duee_event_schema.json"))
    assert len(duee.event_types()) == 65
    assert all((t, TRIGGER_ROLE) in duee.event_roles for t in duee.event_types())
