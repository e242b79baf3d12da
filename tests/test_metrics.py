"""Metrics against hand-computed counts on small synthetic sentences (counts derived in comments)."""

from __future__ import annotations

from collections import Counter
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gplinker.data.examples import TRIGGER_ROLE, Event, Relation, Span
from gplinker.metrics import (
    PRF,
    Scores,
    bio_tags,
    char_f1,
    cluener_official,
    duee_official,
    duie2_official,
    duie_normalize,
    event_scores,
    format_table,
    has_overlap,
    ner_scores,
    relation_scores,
    strict_prf,
)


def sp(text: str, mention: str, label: str, nth: int = 0) -> Span:
    """The nth occurrence of `mention` in `text` as a Span (test data builder)."""
    start = -1
    for _ in range(nth + 1):
        start = text.index(mention, start + 1)
    return Span(start, start + len(mention), label)


def rel(text: str, subject: Span, predicate: str, **objects: Span) -> Relation:
    slots = {("@value" if slot == "value" else slot): span for slot, span in objects.items()}
    return Relation(subject, predicate, tuple(sorted(slots.items())))


def ev(event_type: str, *arguments: Span) -> Event:
    return Event(event_type, frozenset(arguments))


def assert_prf(prf: PRF, tp, n_pred, n_gold) -> None:
    assert (prf.tp, prf.n_pred, prf.n_gold) == pytest.approx((tp, n_pred, n_gold), abs=1e-12)
    p = Fraction(tp) / n_pred if n_pred else 0
    r = Fraction(tp) / n_gold if n_gold else 0
    f = 2 * p * r / (p + r) if p + r else 0
    assert prf.precision == pytest.approx(float(p), abs=1e-12)
    assert prf.recall == pytest.approx(float(r), abs=1e-12)
    assert prf.f1 == pytest.approx(float(f), abs=1e-12)


# --- PRF and strict_prf ------------------------------------------------------------------------


def test_prf_ratios_and_zero_denominators():
    assert_prf(PRF(3, 4, 6), 3, 4, 6)  # P 3/4, R 1/2, F1 0.6
    assert PRF(3, 4, 6).f1 == pytest.approx(0.6)
    assert (PRF(0, 0, 5).precision, PRF(0, 0, 5).recall, PRF(0, 0, 5).f1) == (0.0, 0.0, 0.0)
    assert (PRF(0, 2, 0).precision, PRF(0, 2, 0).recall, PRF(0, 2, 0).f1) == (0.0, 0.0, 0.0)
    assert PRF(0, 0, 0).f1 == 0.0
    assert PRF(1, 2, 3) + PRF(2, 3, 4) == PRF(3, 5, 7)
    assert set(PRF(1, 2, 3).as_dict()) == {"precision", "recall", "f1", "tp", "n_pred", "n_gold"}


def test_strict_prf_counts_sets_per_example_and_per_label():
    gold = [[("a", 1), ("b", 2)], [("a", 3)], []]
    # ("a", 1) predicted twice: a set, so it counts once. ("a", 3) in sentence 0 is not the gold of sentence 1.
    pred = [[("a", 1), ("a", 1), ("a", 3)], [], [("b", 9)]]
    total, per_label = strict_prf(gold, pred, label_of=lambda item: item[0])
    # tp: ("a", 1) -> 1; pred: {("a",1), ("a",3)} + {} + {("b",9)} = 3; gold: 2 + 1 + 0 = 3
    assert_prf(total, 1, 3, 3)
    assert_prf(per_label["a"], 1, 2, 2)  # a: tp ("a",1); pred ("a",1), ("a",3); gold ("a",1), ("a",3)
    assert_prf(per_label["b"], 0, 1, 1)
    assert list(per_label) == ["a", "b"]


def test_strict_prf_rejects_misaligned_inputs():
    with pytest.raises(ValueError, match="one entry per sentence"):
        strict_prf([[1]], [[1], [2]], label_of=str)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sets(st.integers(0, 9), max_size=6), st.sets(st.integers(0, 9), max_size=6)),
        max_size=5,
    )
)
def test_strict_prf_matches_plain_formula(pairs):
    gold, pred = [g for g, _ in pairs], [p for _, p in pairs]
    total, per_label = strict_prf(gold, pred, label_of=lambda i: "even" if i % 2 == 0 else "odd")
    tp = sum(len(g & p) for g, p in pairs)
    assert (total.tp, total.n_pred, total.n_gold) == (tp, sum(map(len, pred)), sum(map(len, gold)))
    expected_f1 = 2 * tp / (total.n_pred + total.n_gold) if tp else 0.0
    assert total.f1 == pytest.approx(expected_f1)
    assert sum(prf.tp for prf in per_label.values()) == tp


# --- NER ---------------------------------------------------------------------------------------

NER_TEXTS = ["张三在北京工作", "李四去了上海", "王五喜欢读红楼梦"]
NER_GOLD = [
    [sp(NER_TEXTS[0], "张三", "name"), sp(NER_TEXTS[0], "北京", "address")],
    [sp(NER_TEXTS[1], "李四", "name"), sp(NER_TEXTS[1], "上海", "address")],
    [sp(NER_TEXTS[2], "王五", "name"), sp(NER_TEXTS[2], "红楼梦", "book")],
]
NER_PRED = [
    [sp(NER_TEXTS[0], "张三", "name"), sp(NER_TEXTS[0], "北京", "name")],  # 北京: wrong label
    [sp(NER_TEXTS[1], "李四", "name"), sp(NER_TEXTS[1], "上海", "address")],
    [sp(NER_TEXTS[2], "王五", "name"), sp(NER_TEXTS[2], "楼梦", "book")],  # 楼梦: wrong boundary
]


def test_ner_scores_strict_span_f1_by_hand():
    scores = ner_scores(NER_TEXTS, NER_GOLD, NER_PRED)
    # tp = 张三, 李四, 上海, 王五 = 4; 6 predicted, 6 gold -> P = R = F1 = 2/3
    assert scores.main == pytest.approx(2 / 3)
    assert scores.metrics["span_precision"] == pytest.approx(2 / 3)
    assert scores.metrics["span_recall"] == pytest.approx(2 / 3)
    # name: pred 张三 北京 李四 王五, gold 张三 李四 王五, tp 3 -> F1 6/7
    assert_prf(scores.per_label["name"], 3, 4, 3)
    assert_prf(scores.per_label["address"], 1, 1, 2)  # F1 2/3
    assert_prf(scores.per_label["book"], 0, 1, 1)
    # Official CLUENER: macro mean over gold labels (address, book, name) of per-label F1.
    assert scores.metrics["cluener_f1"] == pytest.approx((2 / 3 + 0 + 6 / 7) / 3)
    # Flat gold: seqeval on char BIO tags finds the same 4 of 6 entities.
    assert scores.metrics["seqeval_f1"] == pytest.approx(2 / 3)
    assert "name" in scores.reports["seqeval"] and "book" in scores.reports["per_label"]


def test_ner_scores_empty_predictions():
    scores = ner_scores(NER_TEXTS, NER_GOLD, [[], [], []])
    assert scores.main == 0.0
    assert_prf(scores.per_label["name"], 0, 0, 3)
    assert scores.metrics["cluener_f1"] == 0.0
    assert scores.metrics["seqeval_f1"] == 0.0


def test_ner_scores_without_any_span_reports_zero():
    scores = ner_scores(["今天天气很好"], [[]], [[]])
    assert scores.main == 0.0 and scores.per_label == {}
    assert scores.metrics["seqeval_f1"] == 0.0 and scores.reports["seqeval"] == ""


def test_ner_scores_nested_gold_skips_seqeval_and_scores_nested_spans():
    text = "北京大学的老师"
    gold = [[sp(text, "北京大学", "organization"), sp(text, "北京", "address")]]
    pred = [[sp(text, "北京大学", "organization"), sp(text, "北京", "address"), sp(text, "老师", "position")]]
    scores = ner_scores([text], gold, pred)
    assert scores.main == pytest.approx(2 * 2 / (3 + 2))  # tp 2, pred 3, gold 2
    assert "seqeval_f1" not in scores.metrics and "seqeval" not in scores.reports


def test_cluener_official_compares_surface_strings_not_offsets():
    text = "北京和北京"
    gold = [[sp(text, "北京", "address", 0)]]
    pred = [[sp(text, "北京", "address", 1)]]  # right string, other occurrence
    assert ner_scores([text], gold, pred).main == 0.0
    score, per_label = cluener_official([text], gold, pred)
    assert score == 1.0 and per_label == {"address": 1.0}


def test_cluener_official_counts_a_string_once_per_sentence_and_ignores_unknown_labels():
    text = "上海到上海"
    gold = [[sp(text, "上海", "address", 0), sp(text, "上海", "address", 1)]]
    pred = [[sp(text, "上海", "address", 0), sp(text, "到", "scene")]]  # scene is not a gold label
    score, per_label = cluener_official([text], gold, pred)
    assert per_label == {"address": 1.0} and score == 1.0
    # With an explicit label list, a listed label without gold or predictions scores 0 and lowers the mean.
    score, per_label = cluener_official([text], gold, pred, labels=["address", "game"])
    assert per_label == {"address": 1.0, "game": 0.0} and score == 0.5


def test_cluener_official_is_macro_not_micro():
    texts = ["甲乙丙丁", "戊己"]
    gold = [[Span(0, 1, "a"), Span(1, 2, "a"), Span(2, 3, "a"), Span(3, 4, "a")], [Span(0, 1, "b")]]
    pred = [[Span(0, 1, "a"), Span(1, 2, "a"), Span(2, 3, "a"), Span(3, 4, "a")], [Span(1, 2, "b")]]
    score, _ = cluener_official(texts, gold, pred)
    assert score == pytest.approx((1.0 + 0.0) / 2)  # micro would give 8/10
    assert ner_scores(texts, gold, pred).main == pytest.approx(0.8)


def test_has_overlap():
    assert not has_overlap([Span(0, 2, "a"), Span(2, 4, "b")])  # adjacent
    assert has_overlap([Span(0, 4, "a"), Span(1, 2, "b")])  # nested
    assert has_overlap([Span(0, 3, "a"), Span(2, 5, "b")])  # crossing
    assert has_overlap([Span(0, 2, "a"), Span(0, 2, "b")])  # same offsets, two labels
    assert not has_overlap([Span(0, 2, "a"), Span(0, 2, "a")])  # a duplicate is one span


def test_bio_tags_flat_and_overlapping_predictions():
    assert bio_tags(5, [Span(0, 2, "人名"), Span(3, 5, "地名")]) == ["B-人名", "I-人名", "O", "B-地名", "I-地名"]
    # Overlaps: the earlier start wins, then the longer span; the loser is dropped.
    assert bio_tags(4, [Span(1, 3, "b"), Span(0, 4, "a")]) == ["B-a", "I-a", "I-a", "I-a"]
    assert bio_tags(4, [Span(0, 2, "b"), Span(1, 4, "a")]) == ["B-b", "I-b", "O", "O"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 11), st.integers(1, 4), st.sampled_from("xyz")), max_size=6))
def test_has_overlap_matches_character_sharing(raw):
    spans = [Span(s, s + n, label) for s, n, label in raw]
    distinct = sorted(set(spans))
    shares = any(
        set(range(a.start, a.end)) & set(range(b.start, b.end))
        for i, a in enumerate(distinct)
        for b in distinct[i + 1 :]
    )
    assert has_overlap(spans) == shares


# --- relations -----------------------------------------------------------------------------------

T1 = "《星光》是王芳演唱的歌曲，王芳也写了《星光》的词。"
T2 = "李雷凭借《远方》获得金曲奖"
T3 = "Hello是韩梅演唱的歌，HELLO也很好听"
T4 = "张伟的妻子是刘丽"
REL_TEXTS = [T1, T2, T3, T4]
REL_GOLD = [
    [
        rel(T1, sp(T1, "星光", "歌曲"), "歌手", value=sp(T1, "王芳", "人物")),
        rel(T1, sp(T1, "星光", "歌曲"), "作词", value=sp(T1, "王芳", "人物", 1)),
    ],
    [rel(T2, sp(T2, "李雷", "人物"), "获奖", value=sp(T2, "金曲奖", "奖项"), inWork=sp(T2, "远方", "作品"))],
    [rel(T3, sp(T3, "Hello", "歌曲"), "歌手", value=sp(T3, "韩梅", "人物"))],
    [rel(T4, sp(T4, "张伟", "人物"), "妻子", value=sp(T4, "刘丽", "人物"))],
]
REL_PRED = [
    [
        rel(T1, sp(T1, "《星光》", "歌曲"), "歌手", value=sp(T1, "王芳", "人物")),  # with book-title marks
        rel(T1, sp(T1, "星光", "歌曲"), "作词", value=sp(T1, "王芳", "人物", 1)),  # exact
        rel(T1, sp(T1, "星光", "歌曲", 1), "作词", value=sp(T1, "王芳", "人物", 1)),  # same strings, other offsets
    ],
    [
        rel(T2, sp(T2, "李雷", "人物"), "获奖", value=sp(T2, "金曲奖", "奖项"), inWork=sp(T2, "《远方》", "作品")),
        rel(T2, sp(T2, "李雷", "人物"), "获奖", value=sp(T2, "金曲奖", "奖项")),  # inWork slot missing
    ],
    [rel(T3, sp(T3, "HELLO", "歌曲"), "歌手", value=sp(T3, "韩梅", "人物"))],  # other case
    [],
]


def test_relation_scores_strict_triples_by_hand():
    scores = relation_scores(REL_TEXTS, REL_GOLD, REL_PRED)
    # Text triples. T1 gold {(星光,歌手,王芳), (星光,作词,王芳)}; pred {(《星光》,歌手,王芳), (星光,作词,王芳)}
    # (the two 作词 predictions are one string triple) -> tp 1, pred 2, gold 2.
    # T2: gold 1, pred 2 (《远方》 / no inWork), tp 0. T3: gold 1, pred 1 (HELLO), tp 0. T4: gold 1, pred 0.
    # Total tp 1, pred 5, gold 5.
    assert scores.main == pytest.approx(1 / 5)
    assert scores.metrics["triple_precision"] == pytest.approx(1 / 5)
    assert scores.metrics["triple_recall"] == pytest.approx(1 / 5)
    assert_prf(scores.per_label["歌手"], 0, 2, 2)
    assert_prf(scores.per_label["作词"], 1, 1, 1)
    assert_prf(scores.per_label["获奖"], 0, 2, 1)
    assert_prf(scores.per_label["妻子"], 0, 0, 1)
    # Offsets: T1 pred 3 relations, 1 matches (作词, first 星光, second 王芳); T2 0/2; T3 0/1; T4 0/0.
    # tp 1, pred 6, gold 5 -> P 1/6, R 1/5, F1 2/11.
    assert scores.metrics["offset_precision"] == pytest.approx(1 / 6)
    assert scores.metrics["offset_recall"] == pytest.approx(1 / 5)
    assert scores.metrics["offset_f1"] == pytest.approx(2 / 11)


def test_duie2_official_normalises_case_and_book_marks_and_needs_every_slot():
    prf = duie2_official(REL_TEXTS, REL_GOLD, REL_PRED)
    # T1: 《星光》 -> 星光, duplicates collapse: pred {(星光,歌手,王芳), (星光,作词,王芳)} = gold: tp 2, pred 2, gold 2.
    # T2: inWork 《远方》 -> 远方 matches; the prediction without inWork has other keys: tp 1, pred 2, gold 1.
    # T3: HELLO -> hello = hello: tp 1, pred 1, gold 1. T4: tp 0, pred 0, gold 1.
    assert_prf(prf, 4, 5, 5)
    scores = relation_scores(REL_TEXTS, REL_GOLD, REL_PRED)
    assert scores.metrics["duie_f1"] == pytest.approx(0.8)
    assert scores.metrics["duie_precision"] == pytest.approx(0.8)
    assert scores.metrics["duie_recall"] == pytest.approx(0.8)


def test_duie2_official_complex_object_with_one_wrong_slot_is_a_miss():
    text = "李雷凭借《远方》和《归途》获得金曲奖"
    subject = sp(text, "李雷", "人物")
    gold = [[rel(text, subject, "获奖", value=sp(text, "金曲奖", "奖项"), inWork=sp(text, "远方", "作品"))]]
    wrong = [[rel(text, subject, "获奖", value=sp(text, "金曲奖", "奖项"), inWork=sp(text, "归途", "作品"))]]
    extra = [[rel(text, subject, "获奖", value=sp(text, "金曲奖", "奖项"), inWork=sp(text, "远方", "作品"),
                  onDate=sp(text, "归途", "Date"))]]  # fmt: skip
    assert_prf(duie2_official([text], gold, wrong), 0, 1, 1)
    assert_prf(duie2_official([text], gold, extra), 0, 1, 1)  # keys must match both ways
    assert_prf(duie2_official([text], gold, gold), 1, 1, 1)


def test_duie2_official_ignores_entity_types():
    text = "张伟的妻子是刘丽"
    gold = [[rel(text, sp(text, "张伟", "人物"), "妻子", value=sp(text, "刘丽", "人物"))]]
    pred = [[rel(text, sp(text, "张伟", "机构"), "妻子", value=sp(text, "刘丽", "地点"))]]
    assert_prf(duie2_official([text], gold, pred), 1, 1, 1)
    assert relation_scores([text], gold, pred).metrics["offset_f1"] == 0.0  # offsets level checks types


def test_duie_normalize():
    assert duie_normalize("《红楼梦》") == "红楼梦"
    assert duie_normalize("《ABC》") == "abc"
    assert duie_normalize("《《双》》") == "《双》"  # one pair only
    assert duie_normalize("《半") == "《半"
    assert duie_normalize("Hello") == "hello"


# --- events --------------------------------------------------------------------------------------

E1 = "警方于周一在上海逮捕了嫌犯王某"
E2 = "IBM宣布收购红帽，ibm将支付现金"
E3 = "李娜在澳网夺冠"
E4 = "王强与李梅结婚"
ARREST, BUY, SELL, WIN, MARRY = "司法行为-拘捕", "财经/交易-收购", "财经/交易-出售", "竞赛行为-夺冠", "人生-结婚"
EV_TEXTS = [E1, E2, E3, E4]
EV_GOLD = [
    [ev(ARREST, sp(E1, "逮捕", TRIGGER_ROLE), sp(E1, "警方", "拘捕者"), sp(E1, "嫌犯王某", "被拘捕者"),
        sp(E1, "周一", "时间"))],
    [ev(BUY, sp(E2, "收购", TRIGGER_ROLE), sp(E2, "IBM", "收购方"), sp(E2, "红帽", "被收购方"))],
    [ev(WIN, sp(E3, "夺冠", TRIGGER_ROLE), sp(E3, "李娜", "冠军"), sp(E3, "澳网", "夺冠赛事"))],
    [ev(MARRY, sp(E4, "结婚", TRIGGER_ROLE), sp(E4, "王强", "结婚双方"), sp(E4, "李梅", "结婚双方"))],
]
EV_PRED = [
    [
        ev(ARREST, sp(E1, "逮捕", TRIGGER_ROLE), sp(E1, "警方", "拘捕者"), sp(E1, "王某", "被拘捕者"),
           sp(E1, "周一", "时间"), sp(E1, "上海", "地点")),
    ],  # fmt: skip
    [
        ev(BUY, sp(E2, "收购", TRIGGER_ROLE), sp(E2, "ibm", "收购方"), sp(E2, "红帽", "被收购方")),
        ev(BUY, sp(E2, "收购", TRIGGER_ROLE), sp(E2, "红帽", "被收购方"), sp(E2, "现金", "收购方")),
        ev(SELL, sp(E2, "收购", TRIGGER_ROLE), sp(E2, "IBM", "出售方")),
    ],
    [],
    [ev(MARRY, sp(E4, "结婚", TRIGGER_ROLE), sp(E4, "王强", "结婚双方"), sp(E4, "李梅", "结婚双方"))],
]


def test_char_f1_is_bag_of_characters():
    assert char_f1("王某", "嫌犯王某") == pytest.approx(2 / 3)  # common 2: P 1, R 1/2
    assert char_f1("哈哈哈", "哈哈") == pytest.approx(0.8)  # common 2 (multiset): P 2/3, R 1
    assert char_f1("甲乙", "乙甲") == 1.0  # order does not matter
    assert char_f1("甲", "乙") == 0.0 and char_f1("", "乙") == 0.0


@settings(max_examples=60, deadline=None)
@given(st.text("甲乙丙丁", min_size=1, max_size=6), st.text("甲乙丙丁", min_size=1, max_size=6))
def test_char_f1_matches_formula(a, b):
    common = sum(min(Counter(a)[c], Counter(b)[c]) for c in set(a))
    expected = 2 * common / (len(a) + len(b))  # 2PR/(P+R) with P = common/|a|, R = common/|b|
    assert char_f1(a, b) == pytest.approx(expected)
    assert char_f1(a, b) == pytest.approx(char_f1(b, a))


def test_duee_official_by_hand():
    prf = duee_official(EV_TEXTS, EV_GOLD, EV_PRED)
    # E1: 警方 1 + 王某 vs 嫌犯王某 2/3 + 周一 1 + 上海 (no gold 地点) 0 = 8/3; pred 4, gold 3.
    # E2: pred set {(收购,收购方,ibm), (收购,被收购方,红帽) [twice -> once], (收购,收购方,现金), (出售,出售方,ibm)}:
    #     ibm ~ IBM 1 (case-insensitive) + 红帽 1 + 现金 0 + 出售 (no gold of that type) 0 = 2; pred 4, gold 2.
    # E3: pred 0, gold 2. E4: 1 + 1 = 2; pred 2, gold 2. Triggers are not arguments.
    # Sum 20/3, pred 10, gold 9 -> P 2/3, R 20/27, F1 40/57.
    assert_prf(prf, Fraction(20, 3), 10, 9)
    assert prf.f1 == pytest.approx(40 / 57)


def test_event_scores_by_hand():
    scores = event_scores(EV_TEXTS, EV_GOLD, EV_PRED)
    assert scores.main == pytest.approx(40 / 57)
    assert scores.metrics["duee_f1"] == pytest.approx(40 / 57)
    assert scores.metrics["duee_precision"] == pytest.approx(2 / 3)
    assert scores.metrics["duee_recall"] == pytest.approx(20 / 27)
    # Events (type + all (role, text, start), trigger included): only E4 matches; gold 4, pred 1+3+0+1 = 5.
    assert scores.metrics["event_precision"] == pytest.approx(1 / 5)
    assert scores.metrics["event_recall"] == pytest.approx(1 / 4)
    assert scores.metrics["event_f1"] == pytest.approx(2 / 9)
    # Arguments (type, role, text, start), trigger excluded:
    # E1 tp 2 (警方, 周一), pred 4, gold 3; E2 tp 1 (红帽), pred 4 (红帽 once), gold 2; E3 0/0/2; E4 2/2/2.
    # tp 5, pred 10, gold 9 -> P 1/2, R 5/9, F1 10/19.
    assert scores.metrics["argument_precision"] == pytest.approx(1 / 2)
    assert scores.metrics["argument_recall"] == pytest.approx(5 / 9)
    assert scores.metrics["argument_f1"] == pytest.approx(10 / 19)
    # Triggers (type, text, start): E1 1/1/1, E2 tp 1 pred 2 (收购 as 收购 and as 出售) gold 1, E3 0/0/1, E4 1/1/1.
    assert scores.metrics["trigger_f1"] == pytest.approx(2 * 3 / (4 + 4))
    assert_prf(scores.per_label[ARREST], 2, 4, 3)
    assert_prf(scores.per_label[BUY], 1, 3, 2)
    assert_prf(scores.per_label[SELL], 0, 1, 0)
    assert_prf(scores.per_label[WIN], 0, 0, 2)
    assert_prf(scores.per_label[MARRY], 2, 2, 2)


def test_duee_official_duplicate_events_count_once():
    one = [[ev(ARREST, sp(E1, "逮捕", TRIGGER_ROLE), sp(E1, "王某", "被拘捕者"))]]
    twice = [one[0] * 2 + [ev(ARREST, sp(E1, "王某", "被拘捕者"))]]
    gold = [[ev(ARREST, sp(E1, "逮捕", TRIGGER_ROLE), sp(E1, "嫌犯王某", "被拘捕者"))]]
    assert_prf(duee_official([E1], gold, twice), Fraction(2, 3), 1, 1)
    assert duee_official([E1], gold, twice) == duee_official([E1], gold, one)


def test_duee_official_excludes_the_trigger():
    gold = [[ev(ARREST, sp(E1, "逮捕", TRIGGER_ROLE))]]
    pred = [[ev(ARREST, sp(E1, "上海", TRIGGER_ROLE))]]
    assert_prf(duee_official([E1], gold, pred), 0, 0, 0)


def test_duee_official_matching_is_not_one_to_one():
    # As the published description reads: each prediction takes its best gold, with no removal.
    gold = [[ev(ARREST, sp(E1, "嫌犯王某", "被拘捕者"))]]
    pred = [[ev(ARREST, sp(E1, "王某", "被拘捕者"), sp(E1, "嫌犯王某", "被拘捕者"))]]
    prf = duee_official([E1], gold, pred)
    assert_prf(prf, Fraction(2, 3) + 1, 2, 1)  # R = 5/3 > 1 on this tiny case


def test_duee_official_takes_the_best_alias():
    gold = [[ev(ARREST, sp(E1, "嫌犯王某", "被拘捕者"))]]
    pred = [[ev(ARREST, sp(E1, "王某", "被拘捕者"))]]
    aliases = [{sp(E1, "嫌犯王某", "被拘捕者"): ["王某"]}]
    assert_prf(duee_official([E1], gold, pred, aliases=aliases), 1, 1, 1)
    assert_prf(duee_official([E1], gold, pred), Fraction(2, 3), 1, 1)


def test_duee_official_needs_event_type_and_role():
    gold = [[ev(ARREST, sp(E1, "警方", "拘捕者"))]]
    other_role = [[ev(ARREST, sp(E1, "警方", "被拘捕者"))]]
    other_type = [[ev(BUY, sp(E1, "警方", "拘捕者"))]]
    assert_prf(duee_official([E1], gold, other_role), 0, 1, 1)
    assert_prf(duee_official([E1], gold, other_type), 0, 1, 1)


def test_event_scores_empty_predictions():
    scores = event_scores(EV_TEXTS, EV_GOLD, [[], [], [], []])
    assert scores.main == 0.0
    assert all(value == 0.0 for value in scores.metrics.values())
    assert_prf(scores.per_label[ARREST], 0, 0, 3)


# --- reporting -----------------------------------------------------------------------------------


def test_scores_as_dict_and_table():
    scores = ner_scores(NER_TEXTS, NER_GOLD, NER_PRED)
    data = scores.as_dict()
    assert data["main"] == scores.main and data["metrics"]["cluener_f1"] == scores.metrics["cluener_f1"]
    assert data["per_label"]["name"]["tp"] == 3
    table = format_table({"name": PRF(3, 4, 3)}, PRF(4, 6, 6)).splitlines()
    assert table[1].split() == ["name", "0.7500", "1.0000", "0.8571", "3", "4", "3"]
    assert table[2].split()[0] == "(micro)"
    assert isinstance(scores, Scores)


def test_duee_official_is_exact_whatever_order_the_predictions_come_in():
    """The per-sentence sum runs over a set, whose order follows its insertion history; summed exactly (fsum), the
    score cannot depend on it (`gplinker score` on a file and `eval` on the same predictions must agree)."""
    import math
    import random

    text = "".join(f"甲{k}乙{k}丙" for k in range(40))
    gold = [Event("比赛-胜负", frozenset(Span(4 * k, 4 * k + 3, "胜者") for k in range(40)))]
    spans = [Span(4 * k + 1, 4 * k + 5, "胜者") for k in range(40)]  # each overlaps a gold one in part
    scores = set()
    rng = random.Random(0)
    for _ in range(200):
        rng.shuffle(spans)
        scores.add(duee_official([text], [gold], [[Event("比赛-胜负", frozenset(spans))]]).tp)
    mentions = {s.text_in(text) for s in spans}
    expected = math.fsum(max(char_f1(m, g.text_in(text)) for g in gold[0].arguments) for m in mentions)
    assert scores == {expected}
