"""Leaderboard submission lines (gplinker/submission.py), each read back by a scorer written here.

Every scorer below follows the benchmark's published description, not gplinker's metrics: a round
trip gold file → our reader → our writer → that scorer must give F1 1.0, and a prediction with one
item missing must not. Sentences are synthetic, written for these tests.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest

from gplinker.data.duee import parse_duee
from gplinker.data.duie import parse_duie1, parse_duie2
from gplinker.data.examples import Relation, Span
from gplinker.data.formats import parse_cluener
from gplinker.errors import ConfigError
from gplinker.submission import check_format, clue_line, duee_line, duie_line, submission_line
from tests.conftest import NER_SENTENCES

# ------------------------------------------------------------------ independent scorers


def f1(tp: float, n_pred: float, n_gold: float) -> float:
    p, r = (tp / n_pred if n_pred else 0.0), (tp / n_gold if n_gold else 0.0)
    return 2 * p * r / (p + r) if p + r else 0.0


def cluener_score(gold_lines: list[dict], submission: list[dict]) -> float:
    """CLUENER2020: predictions matched by id; per label, sets of surface strings per line; macro F1."""
    by_id = {line["id"]: line for line in submission}
    assert len(by_id) == len(submission)
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # label -> tp, pred, gold
    for gold in gold_lines:
        pred = by_id[gold["id"]]
        assert set(pred) == {"id", "label"}  # nothing else on a submission line
        for mentions in pred["label"].values():
            for surface, positions in mentions.items():  # end inclusive: text[start : end + 1]
                assert all(gold["text"][s : e + 1] == surface for s, e in positions)
        labels = set(gold["label"]) | set(pred["label"])
        for label in labels:
            g, p = set(gold["label"].get(label, {})), set(pred["label"].get(label, {}))
            counts[label][0] += len(g & p)
            counts[label][1] += len(p)
            counts[label][2] += len(g)
    return sum(f1(*c) for c in counts.values()) / len(counts)


def duie_norm(mention: str) -> str:
    """DuIE evaluation: lowercase, one enclosing 《》 dropped."""
    mention = mention.lower()
    return mention[1:-1] if mention.startswith("《") and mention.endswith("》") else mention


def duie_score(gold_lines: list[dict], submission: list[dict], version: int) -> float:
    """DuIE: lines matched by text; deduplicated (subject, predicate, object slots) triples; micro F1."""
    def triples(line: dict) -> set:
        out = set()
        for spo in line["spo_list"]:
            if version == 1:
                assert isinstance(spo["object"], str) and isinstance(spo["object_type"], str)
                objects = frozenset({("@value", duie_norm(spo["object"]))})
            else:
                assert set(spo["object"]) == set(spo["object_type"]) and "@value" in spo["object"]
                objects = frozenset((k, duie_norm(v)) for k, v in spo["object"].items())
            out.add((duie_norm(spo["subject"]), spo["predicate"], objects))
        return out

    by_text = {line["text"]: line for line in submission}
    tp = n_pred = n_gold = 0
    for gold in gold_lines:
        pred = by_text[gold["text"]]
        assert set(pred) == {"text", "spo_list"}
        for spo in pred["spo_list"]:
            assert set(spo) == {"subject", "subject_type", "predicate", "object", "object_type"}
        g, p = triples(gold), triples(pred)
        tp, n_pred, n_gold = tp + len(g & p), n_pred + len(p), n_gold + len(g)
    return f1(tp, n_pred, n_gold)


def char_f1(a: str, b: str) -> float:
    common = sum((Counter(a) & Counter(b)).values())
    return f1(common, len(a), len(b))


def duee_score(gold_lines: list[dict], submission: list[dict]) -> float:
    """DuEE 1.0: by id; each predicted (event type, role, argument) scores its best char-level F1 against the
    gold arguments of the same event type and role (case-insensitive); P = sum / #pred, R = sum / #gold."""
    by_id = {line["id"]: line for line in submission}
    total = n_pred = n_gold = 0.0
    for gold in gold_lines:
        pred = by_id[gold["id"]]
        assert set(pred) == {"id", "event_list"}
        gold_args = {(e["event_type"], a["role"], a["argument"].lower()) for e in gold["event_list"]
                     for a in e["arguments"]}
        pred_args = set()
        for e in pred["event_list"]:
            assert set(e) == {"event_type", "arguments"}
            for a in e["arguments"]:
                assert set(a) == {"role", "argument"}
                pred_args.add((e["event_type"], a["role"], a["argument"].lower()))
        for etype, role, mention in pred_args:
            total += max((char_f1(mention, g) for t, r, g in gold_args if (t, r) == (etype, role)), default=0.0)
        n_pred, n_gold = n_pred + len(pred_args), n_gold + len(gold_args)
    return f1(total, n_pred, n_gold)


# ------------------------------------------------------------------ gold files in benchmark form


def cluener_gold() -> list[dict]:
    lines = []
    for k, (text, entities) in enumerate(NER_SENTENCES):
        label: dict = {}
        for surface, kind in entities:
            start = text.index(surface)
            label.setdefault(kind, {})[surface] = [[start, start + len(surface) - 1]]
        lines.append({"id": k, "text": text, "label": label})
    return lines


DUIE2_GOLD = [
    {"text": "周迅在《橙色年代》中饰演小玉。", "spo_list": [
        {"subject": "周迅", "subject_type": "娱乐人物", "predicate": "饰演",
         "object": {"@value": "小玉", "inWork": "橙色年代"}, "object_type": {"@value": "人物", "inWork": "影视作品"}}]},
    {"text": "《远山》由陈静执导，陈静出生于杭州。", "spo_list": [
        {"subject": "《远山》", "subject_type": "影视作品", "predicate": "导演",
         "object": {"@value": "陈静"}, "object_type": {"@value": "人物"}},
        {"subject": "陈静", "subject_type": "人物", "predicate": "出生地",
         "object": {"@value": "杭州"}, "object_type": {"@value": "地点"}}]},
]
DUIE1_GOLD = [
    {"text": "李娜毕业于华中大学，出生于武汉。", "spo_list": [
        {"subject": "李娜", "subject_type": "人物", "predicate": "毕业院校", "object": "华中大学",
         "object_type": "学校"},
        {"subject": "李娜", "subject_type": "人物", "predicate": "出生地", "object": "武汉", "object_type": "地点"}]},
]
DUEE_GOLD = [
    {"id": "e0", "text": "红队在决赛中击败蓝队。", "event_list": [
        {"event_type": "比赛-胜负", "trigger": "击败", "trigger_start_index": 6, "arguments": [
            {"role": "胜者", "argument": "红队", "argument_start_index": 0},
            {"role": "败者", "argument": "蓝队", "argument_start_index": 8},
            {"role": "赛事", "argument": "决赛", "argument_start_index": 3}]}]},
    {"id": 7, "text": "张三加盟星辰队后会见了李四。", "event_list": [
        {"event_type": "组织-加盟", "trigger": "加盟", "trigger_start_index": 2, "arguments": [
            {"role": "加盟者", "argument": "张三", "argument_start_index": 0},
            {"role": "所加盟组织", "argument": "星辰队", "argument_start_index": 4}]},
        {"event_type": "交往-会见", "trigger": "会见", "trigger_start_index": 8, "arguments": [
            {"role": "会见主体", "argument": "张三", "argument_start_index": 0},
            {"role": "会见对象", "argument": "李四", "argument_start_index": 11}]}]},
]


def without_last(items: list) -> list:
    return sorted(items, key=repr)[:-1]


# ------------------------------------------------------------------ round trips


def test_cluener_submission_scores_one_and_keeps_id_types():
    gold = cluener_gold()
    examples = [parse_cluener(line) for line in gold]
    submission = [clue_line(line["id"], e.text, e.spans) for line, e in zip(gold, examples)]
    assert cluener_score(gold, submission) == 1.0
    assert [s["id"] for s in submission] == list(range(len(gold)))  # ints stay ints
    assert submission[0]["label"]["loc"] == {"北京": [[3, 4]]}  # end inclusive
    worse = [clue_line(line["id"], e.text, without_last(list(e.spans))) for line, e in zip(gold, examples)]
    assert cluener_score(gold, worse) < 1.0


def test_cluener_submission_lists_every_occurrence_of_a_surface():
    example = parse_cluener({"text": "上海和上海", "label": {"loc": {"上海": [[0, 1], [3, 4]]}}})
    line = clue_line("x", example.text, reversed(example.spans))
    assert line == {"id": "x", "label": {"loc": {"上海": [[0, 1], [3, 4]]}}}


@pytest.mark.parametrize("version", [2, 1])
def test_duie_submission_scores_one_in_each_version(version):
    gold, parse = (DUIE2_GOLD, parse_duie2) if version == 2 else (DUIE1_GOLD, parse_duie1)
    examples = [parse(line) for line in gold]
    submission = [duie_line(e.text, e.relations, plain_strings=version == 1) for e in examples]
    assert duie_score(gold, submission, version) == 1.0
    worse = [duie_line(e.text, without_last(list(e.relations)), plain_strings=version == 1) for e in examples]
    assert duie_score(gold, worse, version) < 1.0


def test_duie_submission_collapses_triples_that_read_the_same():
    example = parse_duie2({"text": "陈静和陈静", "spo_list": [
        {"subject": "陈静", "subject_type": "人物", "predicate": "朋友", "object": {"@value": "陈静"},
         "object_type": {"@value": "人物"}}]})
    relation = example.relations[0]
    s, o = relation.subject, relation.object
    moved = Relation(Span(o.start, o.end, s.label), relation.predicate,
                     (("@value", Span(s.start, s.end, o.label)),))  # the same strings at swapped offsets
    assert moved != relation
    line = duie_line(example.text, [relation, moved], plain_strings=False)
    assert len(line["spo_list"]) == 1


def test_duee_submission_scores_one_without_the_trigger():
    examples = [parse_duee(line) for line in DUEE_GOLD]
    submission = [duee_line(line["id"], e.text, e.events) for line, e in zip(DUEE_GOLD, examples)]
    assert duee_score(DUEE_GOLD, submission) == 1.0
    assert [s["id"] for s in submission] == ["e0", 7]
    assert not any(a["role"] == "触发词" for s in submission for e in s["event_list"] for a in e["arguments"])
    worse = [duee_line(line["id"], e.text, without_last(list(e.events)) if len(e.events) > 1 else e.events)
             for line, e in zip(DUEE_GOLD, examples)]
    assert duee_score(DUEE_GOLD, worse) < 1.0


def test_format_of_another_task_is_refused_naming_both():
    check_format("records", "event")
    check_format("duee", "event")
    with pytest.raises(ConfigError, match="--format duee is the submission form of the event task.*ner model.*clue"):
        check_format("duee", "ner")
    with pytest.raises(ConfigError, match="unknown output format 'json'"):
        check_format("json", "ner")
    with pytest.raises(ValueError):
        submission_line("records", 0, "x", [])


def test_score_reads_a_duee_submission_and_scores_each_event_type_officially(tmp_path):
    from gplinker.commands.score import score_files
    from tests.conftest import write_jsonl

    gold = write_jsonl(tmp_path / "gold.json", DUEE_GOLD)
    examples = [parse_duee(line) for line in DUEE_GOLD]
    submission = [duee_line(line["id"], e.text, e.events) for line, e in zip(DUEE_GOLD, examples)]
    submission[1]["event_list"][1]["arguments"][1]["argument"] = "李"  # half of 李四: char F1 2/3
    result = score_files(write_jsonl(tmp_path / "pred.json", submission), gold, "event")
    assert result.form == "duee" and result.scores.main == pytest.approx(duee_score(DUEE_GOLD, submission))
    meet = [{**line, "event_list": [e for e in line["event_list"] if e["event_type"] == "交往-会见"]}
            for line in DUEE_GOLD]
    assert result.scores.per_label["交往-会见"].f1 == pytest.approx(duee_score(meet, submission_of(meet, submission)))
    assert result.scores.per_label["比赛-胜负"].f1 == 1.0


def submission_of(gold_lines: list[dict], submission: list[dict]) -> list[dict]:
    """The submission lines restricted to the event types of the matching gold lines."""
    out = []
    for g, s in zip(gold_lines, submission):
        types = {e["event_type"] for e in g["event_list"]}
        out.append({**s, "event_list": [e for e in s["event_list"] if e["event_type"] in types]})
    return out


def test_a_submitted_argument_that_is_not_in_the_text_is_named(tmp_path):
    from gplinker.commands.score import score_files
    from gplinker.errors import DataError
    from tests.conftest import write_jsonl

    gold = write_jsonl(tmp_path / "gold.json", DUEE_GOLD)
    submission = [{"id": "e0", "event_list": [{"event_type": "比赛-胜负", "arguments": [{"role": "胜者",
                                                                                    "argument": "白队"}]}]},
                  {"id": 7, "event_list": []}]
    pred = write_jsonl(tmp_path / "pred.json", submission)
    named = r"pred.json:1: event_list\[0\].arguments\[0\] '白队' \(胜者\) is not in the text"
    with pytest.raises(DataError, match=named):
        score_files(pred, gold, "event")
