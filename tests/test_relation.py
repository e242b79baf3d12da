"""Relation task (GPLinker five-tuples) on synthetic sentences written for these tests.

Round trips gold → targets → decode → merge use a real tokenizer (a scratch character vocabulary
over the test texts, so token position = character index + 1 for [CLS]) and real windows.
`-m slow`: the oracle round trip on the real DuIE subsets and a short training run.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from gplinker.cli import app
from gplinker.data.encoding import SPECIAL, Window, WindowEncoder
from gplinker.data.examples import Example, Relation, Span
from gplinker.data.schema import Schema, load_duie_schema, schema_from_examples
from gplinker.errors import DataError
from gplinker.modeling.encoders import scratch_tokenizer
from gplinker.tasks import build_task
from gplinker.tasks.relation import RelationTask, aligned, fill_slot, five_tuples, gap, merge_slots
from tests.conftest import (
    BERT_VOCAB,
    SHARED_DATA,
    TINY,
    predict_submission_and_records,
    predict_with_a_bad_second_line,
    read_jsonl,
    set_args,
    write_jsonl,
)
from tests.test_submission import duie_score

V = "@value"

# Schema of the synthetic sentences (DuIE 2.0 style: 饰演 and 获奖 have complex objects).
SCHEMA_ROWS = [
    {"subject_type": "人物", "predicate": "出生地", "object_type": {V: "地点"}},
    {"subject_type": "人物", "predicate": "祖籍", "object_type": {V: "地点"}},
    {"subject_type": "人物", "predicate": "毕业院校", "object_type": {V: "学校"}},
    {"subject_type": "学校", "predicate": "所在城市", "object_type": {V: "城市"}},
    {"subject_type": "影视作品", "predicate": "导演", "object_type": {V: "人物"}},
    {"subject_type": "娱乐人物", "predicate": "饰演", "object_type": {V: "人物", "inWork": "影视作品"}},
    {"subject_type": "娱乐人物", "predicate": "获奖",
     "object_type": {V: "奖项", "inWork": "作品", "onDate": "Date"}},
]


@pytest.fixture(scope="module")
def schema(tmp_path_factory) -> Schema:
    return load_duie_schema(write_jsonl(tmp_path_factory.mktemp("schema") / "duie_schema.json", SCHEMA_ROWS))


def sp(text: str, mention: str, nth: int = 0, label: str = "") -> Span:
    """The nth occurrence of `mention` in `text` as a Span."""
    start = -1
    for _ in range(nth + 1):
        start = text.index(mention, start + 1)
    return Span(start, start + len(mention), label)


def rel(subject: Span, predicate: str, **objects: Span) -> Relation:
    """A relation; keyword `value` is the "@value" slot."""
    slots = {(V if slot == "value" else slot): span for slot, span in objects.items()}
    return Relation(subject, predicate, tuple(sorted(slots.items())))


def typed(schema: Schema, r: Relation) -> Relation:
    """`r` with the schema's types, written out plainly (what decoding must return)."""
    subject = Span(r.subject.start, r.subject.end, schema.subject_types[r.predicate])
    objects = tuple((s, Span(o.start, o.end, schema.object_types[r.predicate][s])) for s, o in r.objects)
    return Relation(subject, r.predicate, objects)


def round_trip(task: RelationTask, examples: list[Example], max_length: int = 64, stride: int = 8) -> list[set]:
    """gold → targets → decode (every target cell with logit 1.0) → merge, per example."""
    tokenizer = scratch_tokenizer(e.text for e in examples)
    windows = WindowEncoder(tokenizer, max_length, stride).encode([e.text for e in examples])
    per_example: list[list] = [[] for _ in examples]
    for w in windows:
        targets = task.targets(examples[w.example_index], w)
        cells = {head: [(c, i, j, 1.0) for c, i, j in cs] for head, cs in targets.items()}
        per_example[w.example_index].append(task.decode(w, cells))
    return [set(task.merge(p)) for p in per_example]


# --- synthetic sentences ---------------------------------------------------------------------

T_MANY = "张晓明，1980年出生于杭州，毕业于浙江大学，祖籍宁波。"  # one subject, three objects
T_PAIR = "王强的出生地和祖籍都是无锡。"  # the same pair under two predicates
T_NESTED = "北京大学位于北京，北京大学的校友刘洋出生于北京。"  # 北京 nested in 北京大学 (same start)
T_AFTER = "由陈静执导的电影《远山》于2019年上映。"  # subject 远山 after object 陈静
T_ROLES = "周迅在《橙色年代》中饰演小玉，在《海边》中饰演阿青。"  # parallel complex objects
T_AWARD = "2015年，刘佳凭借《夏夜》获得最佳新人奖和最受欢迎女演员奖。"  # one date and one work, two awards


def synthetic() -> list[Example]:
    t = T_MANY
    many = [rel(sp(t, "张晓明"), "出生地", value=sp(t, "杭州")),
            rel(sp(t, "张晓明"), "毕业院校", value=sp(t, "浙江大学")),
            rel(sp(t, "张晓明"), "祖籍", value=sp(t, "宁波"))]
    t = T_PAIR
    pair = [rel(sp(t, "王强"), "出生地", value=sp(t, "无锡")), rel(sp(t, "王强"), "祖籍", value=sp(t, "无锡"))]
    t = T_NESTED
    nested = [rel(sp(t, "北京大学"), "所在城市", value=sp(t, "北京")),  # object nested in subject, same start
              rel(sp(t, "刘洋"), "毕业院校", value=sp(t, "北京大学", 1)),
              rel(sp(t, "刘洋"), "出生地", value=sp(t, "北京", 3))]
    t = T_AFTER
    after = [rel(sp(t, "远山"), "导演", value=sp(t, "陈静"))]
    t = T_ROLES
    roles = [rel(sp(t, "周迅"), "饰演", value=sp(t, "小玉"), inWork=sp(t, "橙色年代")),
             rel(sp(t, "周迅"), "饰演", value=sp(t, "阿青"), inWork=sp(t, "海边"))]
    t = T_AWARD
    award = [rel(sp(t, "刘佳"), "获奖", value=sp(t, "最佳新人奖"), inWork=sp(t, "夏夜"), onDate=sp(t, "2015年")),
             rel(sp(t, "刘佳"), "获奖", value=sp(t, "最受欢迎女演员奖"), inWork=sp(t, "夏夜"), onDate=sp(t, "2015年"))]
    texts = [T_MANY, T_PAIR, T_NESTED, T_AFTER, T_ROLES, T_AWARD]
    return [Example(text, relations=tuple(rs)) for text, rs in zip(texts, [many, pair, nested, after, roles, award])]


def test_build_task_gives_relation_heads(schema):
    task = build_task("relation", schema)
    assert isinstance(task, RelationTask)
    n = len(schema.relation_channels())
    assert n == 10  # 5 simple predicates, 饰演 @value/inWork, 获奖 @value/inWork/onDate
    assert [(h.name, h.channels, h.rope, h.tril_mask) for h in task.heads()] == [
        ("entities", 2, True, True), ("heads", n, False, False), ("tails", n, False, False)]


def test_targets_are_the_four_cells_per_triple(schema):
    # 王0强1的2出3生4地5和6祖7籍8都9是10无11锡12。13 -> token = char + 1 ([CLS] first).
    task = RelationTask(schema)
    example = synthetic()[1]
    [window] = WindowEncoder(scratch_tokenizer([example.text]), 64, 8).encode([example.text])
    born, origin = schema.relation_channels().index("出生地@@value"), schema.relation_channels().index("祖籍@@value")
    assert task.targets(example, window) == {
        "entities": [(0, 1, 2), (1, 12, 13)],  # subject 王强, object 无锡, once each
        "heads": sorted([(born, 1, 12), (origin, 1, 12)]),
        "tails": sorted([(born, 2, 13), (origin, 2, 13)]),
    }


def test_round_trip_recovers_every_synthetic_triple(schema):
    task = RelationTask(schema)
    examples = synthetic()
    for example, decoded in zip(examples, round_trip(task, examples)):
        assert decoded == {typed(schema, r) for r in example.relations}, example.text


def test_round_trip_through_sliding_windows(schema):
    # 54 filler characters, then the triple; 14-token windows (12 content tokens) sharing 6, so
    # content windows cover characters [0,12) [6,18) ... [48,60) [54,66) [60,72) ...
    filler = (
        "天地玄黄宇宙洪荒日月盈昃辰宿列张寒来暑往秋收冬藏闰余成岁律吕调阳"
        "云腾致雨露结为霜金生丽水玉出昆冈剑号巨阙珠称夜光果珍"
    )
    text = filler[:54] + "王强生于无锡。" + filler[:5] + "李华祖籍苏州。"
    late = rel(sp(text, "王强"), "出生地", value=sp(text, "无锡"))  # characters 54..60: in [48,60) and [54,66)
    other = rel(sp(text, "李华"), "祖籍", value=sp(text, "苏州"))  # characters 66..72: in [60,72) and the last, [66,73)
    too_far = rel(sp(text, "天地"), "出生地", value=sp(text, "苏州"))  # no 12-token window holds both
    task = RelationTask(schema)
    example = Example(text, relations=(late, other, too_far))
    windows = WindowEncoder(scratch_tokenizer([text]), 14, 6).encode([text])
    assert [w.char_range for w in windows[:3]] == [(0, 12), (6, 18), (12, 24)]
    assert [w.window_index for w in windows if task.place(late, w) is not None] == [8, 9]  # the overlap
    assert [w.window_index for w in windows if task.place(other, w) is not None] == [10, 11]
    assert windows[-1].char_range == (66, 73)
    # `too_far` never gets a cell, not even its subject's entity cell in the first window
    assert (0, 1, 2) not in task.targets(example, windows[0])["entities"]
    [decoded] = round_trip(task, [example], max_length=14, stride=6)
    assert decoded == {typed(schema, late), typed(schema, other)}


def test_gold_takes_schema_types_so_the_oracle_ignores_data_type_labels(schema):
    # DuIE 1.0 types 成立日期 subjects as 机构 or 企业; the decoder can only give the schema's one.
    text = "王强出生于无锡。"
    data = Relation(Span(0, 2, "娱乐人物"), "出生地", ((V, Span(5, 7, "城市")),))
    unknown = Relation(Span(0, 2, "人物"), "星座", ((V, Span(5, 7, "星座")),))  # predicate not in the schema
    task = RelationTask(schema)
    gold = task.gold(Example(text, relations=(data, unknown)))
    assert gold == sorted([Relation(Span(0, 2, "人物"), "出生地", ((V, Span(5, 7, "地点")),)), unknown])
    [decoded] = round_trip(task, [Example(text, relations=(data, unknown))])
    assert decoded == {gold[0]}  # the unknown predicate has no channel: an honest oracle miss
    scores = task.score([Example(text, relations=(data,))], [{gold[0]: 1.0}])
    assert scores.metrics["offset_f1"] == 1.0 and scores.main == 1.0


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_round_trip_exact_for_disjoint_mentions(data):
    """With pairwise disjoint mentions every start names one entity, so decoding is exact."""
    schema = Schema("relation", entity_types=["甲", "乙"], predicates=["p", "q", "r"],
                    subject_types={"p": "甲", "q": "甲", "r": "乙"},
                    object_types={"p": {V: "乙"}, "q": {V: "甲"}, "r": {V: "乙"}})
    text = "".join(data.draw(st.lists(st.sampled_from("甲乙丙丁戊己庚辛壬癸子丑"), min_size=20, max_size=20)))
    cuts = sorted(data.draw(st.sets(st.integers(1, 19), min_size=4, max_size=10)))
    bounds = list(zip([0] + cuts, cuts + [20]))
    mentions = [Span(a, b, "") for a, b in bounds if data.draw(st.booleans()) or b - a < 4]
    if len(mentions) < 2:
        mentions = [Span(a, b, "") for a, b in bounds]
    triples = data.draw(st.sets(st.tuples(st.sampled_from(mentions), st.sampled_from(["p", "q", "r"]),
                                          st.sampled_from(mentions)), max_size=8))
    relations = tuple(rel(s, p, value=o) for s, p, o in triples)
    task = RelationTask(schema)
    [decoded] = round_trip(task, [Example(text, relations=relations)])
    assert decoded == {typed(schema, r) for r in relations}


# --- decode on noisy cells -------------------------------------------------------------------


def plain_window(n_chars: int) -> Window:
    """A window of one token per character: position k + 1 holds character k."""
    return Window(0, [1] * (n_chars + 2), [SPECIAL] + [(k, k + 1) for k in range(n_chars)] + [SPECIAL])


def test_decode_score_is_the_smallest_of_four_logits(schema):
    task, ch = RelationTask(schema), schema.relation_channels().index("出生地@@value")
    cells = {"entities": [(0, 1, 2, 3.0), (1, 6, 7, 2.5)], "heads": [(ch, 1, 6, 0.7)], "tails": [(ch, 2, 7, 1.2)]}
    decoded = task.decode(plain_window(10), cells)
    assert decoded == {Relation(Span(0, 2, "人物"), "出生地", ((V, Span(5, 7, "地点")),)): 0.7}


def test_noise_cells_without_all_four_links_decode_nothing(schema):
    task, ch = RelationTask(schema), schema.relation_channels().index("出生地@@value")
    entities = [(0, 1, 2, 1.0), (1, 6, 7, 1.0), (0, 3, 4, 1.0), (1, 8, 9, 1.0)]
    window = plain_window(10)
    assert task.decode(window, {"entities": entities, "heads": [], "tails": []}) == {}
    # head link without its tail link, tail link without its head link, links to a missing entity
    noisy = {"entities": entities, "heads": [(ch, 1, 6, 1.0), (ch, 3, 5, 1.0)],
             "tails": [(ch, 4, 9, 1.0), (ch, 3, 5, 1.0)]}
    assert task.decode(window, noisy) == {}
    # the same noise around one complete five-tuple gives exactly that triple
    noisy["tails"].append((ch, 2, 7, 1.0))
    assert set(task.decode(window, noisy)) == {Relation(Span(0, 2, "人物"), "出生地", ((V, Span(5, 7, "地点")),))}
    # a special-token position (0 = [CLS]) never becomes a character span
    special = {"entities": [(0, 0, 0, 1.0), (1, 6, 7, 1.0)], "heads": [(ch, 0, 6, 1.0)], "tails": [(ch, 0, 7, 1.0)]}
    assert task.decode(window, special) == {}


def test_decode_walks_links_not_entity_pairs(schema):
    # ~2000 entity cells of each kind, two true five-tuples; the result is exactly those two.
    task = RelationTask(schema)
    born, school = (schema.relation_channels().index(c) for c in ("出生地@@value", "毕业院校@@value"))
    n = 140
    entities = [(c, i, j, 0.5) for c in (0, 1) for i in range(1, n + 1) for j in range(i, min(i + 15, n + 1))]
    assert len(entities) > 3900
    heads = [(born, 10, 100, 2.0), (school, 10, 120, 2.0), (born, 11, 50, 2.0)]  # the last one has no tail
    tails = [(born, 12, 101, 2.0), (school, 13, 125, 2.0), (school, 30, 31, 2.0)]
    decoded = task.decode(plain_window(n), {"entities": entities, "heads": heads, "tails": tails})
    assert decoded == {
        Relation(Span(9, 12, "人物"), "出生地", ((V, Span(99, 101, "地点")),)): 0.5,
        Relation(Span(9, 13, "人物"), "毕业院校", ((V, Span(119, 125, "学校")),)): 0.5,
    }
    assert five_tuples(entities, heads, tails) == {(10, 12, born, 100, 101): 0.5, (10, 13, school, 120, 125): 0.5}


def test_decode_stops_at_the_limit_keeping_the_strongest_links():
    # three complete five-tuples on channel 0; head-link logits 3 > 2 > 1
    entities = [(0, 1, 1, 5.0), (0, 2, 2, 5.0), (0, 3, 3, 5.0), (1, 7, 7, 5.0), (1, 8, 8, 5.0), (1, 9, 9, 5.0)]
    heads = [(0, 1, 7, 1.0), (0, 2, 8, 3.0), (0, 3, 9, 2.0)]
    tails = [(0, 1, 7, 4.0), (0, 2, 8, 4.0), (0, 3, 9, 4.0)]
    assert five_tuples(entities, heads, tails, limit=2) == {(2, 2, 0, 8, 8): 3.0, (3, 3, 0, 9, 9): 2.0}
    assert len(five_tuples(entities, heads, tails)) == 3


def test_the_tuple_cap_is_checked_inside_one_link_keeping_its_strongest_subject():
    # one head link (0, 1, 7) makes 5 subject ends × 5 object ends = 25 tuples; a weaker link makes one more
    entities = [(0, 1, end, 1.0 + (end == 3)) for end in range(1, 6)] + [(1, 7, end, 5.0) for end in range(7, 12)]
    entities += [(0, 2, 2, 5.0), (1, 12, 12, 5.0)]
    heads = [(0, 1, 7, 3.0), (0, 2, 12, 1.0)]
    tails = [(0, s_t, o_t, 4.0) for s_t in range(1, 6) for o_t in range(7, 12)] + [(0, 2, 12, 4.0)]
    assert len(five_tuples(entities, heads, tails)) == 26
    kept = five_tuples(entities, heads, tails, limit=3)
    assert len(kept) == 3 and all(key[:2] == (1, 3) and key[3] == 7 for key in kept)


def reference_five_tuples(entities, heads, tails) -> dict:
    """Every (s_h, s_t, ch, o_h, o_t) whose four cells are present, by brute force over subject × object × channel."""
    subjects = {(i, j): s for c, i, j, s in entities if c == 0}
    objects = {(i, j): s for c, i, j, s in entities if c == 1}
    head_of, tail_of = {cell[:3]: cell[3] for cell in heads}, {cell[:3]: cell[3] for cell in tails}
    out = {}
    for (s_h, s_t), s_score in subjects.items():
        for (o_h, o_t), o_score in objects.items():
            for ch in {c for c, _, _ in head_of}:
                if (ch, s_h, o_h) in head_of and (ch, s_t, o_t) in tail_of:
                    out[s_h, s_t, ch, o_h, o_t] = min(s_score, o_score, head_of[ch, s_h, o_h], tail_of[ch, s_t, o_t])
    return out


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 2**32), st.integers(1, 12))
def test_five_tuples_match_brute_force_and_a_cap_keeps_the_strongest_links(seed, limit):
    import random

    rng = random.Random(seed)
    n, score = 8, lambda: float(rng.randrange(1, 20))  # noqa: E731
    entities = [(c, i, j, score()) for c in (0, 1) for i in range(n) for j in range(i, n) if rng.random() < 0.3]
    heads = [(ch, i, j, score()) for ch in range(2) for i in range(n) for j in range(n) if rng.random() < 0.3]
    tails = [(ch, i, j, score()) for ch in range(2) for i in range(n) for j in range(n) if rng.random() < 0.3]
    expected = reference_five_tuples(entities, heads, tails)
    assert five_tuples(entities, heads, tails, limit=10**6, budget=10**9) == expected
    kept = five_tuples(entities, heads, tails, limit=limit, budget=10**9)
    assert len(kept) == min(limit, len(expected)) and kept.items() <= expected.items()
    link = {cell[:3]: cell[3] for cell in heads}
    if kept and len(kept) < len(expected):  # nothing dropped comes from a link stronger than one kept
        weakest_kept = min(link[ch, sh, oh] for sh, _, ch, oh, _ in kept)
        assert all(link[ch, sh, oh] <= weakest_kept for sh, _, ch, oh, _ in expected.keys() - kept.keys())


def test_tuples_on_special_tokens_never_count_toward_the_cap(schema):
    """The strongest tuples touch [CLS] (0) or [SEP] (11); with a cap of 3 the one content triple still comes back."""
    ch = schema.relation_channels().index("出生地@@value")
    window = plain_window(10)
    special = {"entities": [(0, 0, 0, 9.0), (0, 0, 3, 9.0), (0, 11, 11, 9.0)] + [(1, 6, ot, 9.0) for ot in (6, 7, 8)],
               "heads": [(ch, 0, 6, 9.0), (ch, 11, 6, 8.0), (ch, 3, 0, 9.0)],
               "tails": [(ch, st, ot, 9.0) for st in (0, 3, 11) for ot in (0, 6, 7, 8)]}
    content = {"entities": [(0, 1, 2, 1.0)], "heads": [(ch, 1, 6, 0.5)], "tails": [(ch, 2, 7, 0.5)]}
    cells = {head: special[head] + content[head] for head in special}
    unfiltered = five_tuples(cells["entities"], cells["heads"], cells["tails"], limit=3)
    assert len(unfiltered) == 3 and all({0, 11} & {key[0], key[1]} for key in unfiltered)
    triple = {Relation(Span(0, 2, "人物"), "出生地", ((V, Span(5, 7, "地点")),)): 0.5}
    assert RelationTask(schema, max_tuples=3).decode(window, cells) == triple
    assert RelationTask(schema, max_tuples=1).decode(window, cells) == triple
    assert RelationTask(schema).decode(window, cells) == triple  # within the caps: as before


# --- slot merge ------------------------------------------------------------------------------


def test_gap_between_spans():
    assert gap((0, 2), (5, 7)) == 3 and gap((5, 7), (0, 2)) == 3
    assert gap((0, 4), (0, 2)) == 0 and gap((0, 2), (2, 4)) == 0


def test_parallel_slots_pair_in_text_order_not_by_nearest():
    # "在《AAAA》中饰演XX，在《BB》中饰演YY": A=(3,7) X=(12,14) B=(17,19) Y=(24,26).
    # X's nearest work is B (gap 3 < 5), but in-order pairing A-X, B-Y costs 5 + 5 < 3 + gap(Y, A)=17.
    values, works = [(12, 14), (24, 26)], [(3, 7), (17, 19)]
    assert fill_slot(values, works) == {(12, 14): (3, 7), (24, 26): (17, 19)}
    # more candidates than values: the best order-preserving choice, extra candidates unused
    assert aligned([(10, 12)], [(0, 2), (13, 15), (30, 32)]) == {(10, 12): (13, 15)}
    # a tie keeps the earlier candidate: (4,6) and (16,18) are both 4 characters from (10,12)
    assert aligned([(10, 12)], [(4, 6), (16, 18)]) == {(10, 12): (4, 6)}


def test_fewer_candidates_are_shared_by_nearest():
    assert fill_slot([(5, 8), (20, 25)], [(0, 4)]) == {(5, 8): (0, 4), (20, 25): (0, 4)}
    assert fill_slot([(5, 8), (20, 25), (40, 42)], [(0, 4), (30, 33)]) == {
        (5, 8): (0, 4), (20, 25): (30, 33), (40, 42): (30, 33)}  # 20..25: gap 5 to (30,33) < 16 to (0,4)


def test_merge_slots_groups_by_subject_and_predicate_and_drops_orphan_slots():
    s1, s2 = (0, 2), (40, 42)
    found = {
        (s1, "饰演", V, (12, 14)): 3.0, (s1, "饰演", "inWork", (3, 7)): 1.5,
        (s1, "饰演", V, (24, 26)): 2.0, (s1, "饰演", "inWork", (17, 19)): 4.0,
        (s2, "饰演", "inWork", (30, 33)): 9.0,  # a slot with no @value for its subject: dropped
        (s2, "获奖", V, (44, 46)): 1.0,  # the other subject's slot is not a candidate here
    }
    assert merge_slots(found) == {
        Relation(Span(0, 2, ""), "饰演", ((V, Span(12, 14, "")), ("inWork", Span(3, 7, "")))): 1.5,
        Relation(Span(0, 2, ""), "饰演", ((V, Span(24, 26, "")), ("inWork", Span(17, 19, "")))): 2.0,
        Relation(Span(40, 42, ""), "获奖", ((V, Span(44, 46, "")),)): 1.0,
    }


# --- merge, records, scores, schema ----------------------------------------------------------


def test_merge_keeps_max_score_over_windows(schema):
    task = RelationTask(schema)
    a = Relation(Span(0, 2, "人物"), "出生地", ((V, Span(5, 7, "地点")),))
    b = Relation(Span(0, 2, "人物"), "祖籍", ((V, Span(5, 7, "地点")),))
    assert task.merge([{a: 0.2}, {a: 1.5, b: -0.1}, {}]) == {a: 1.5, b: -0.1}


def test_record_duie2_format_with_offsets_and_scores(schema):
    task = RelationTask(schema)
    [example] = [e for e in synthetic() if e.text == T_ROLES]
    first = typed(schema, example.relations[0])  # 周迅 饰演 小玉 in 橙色年代
    record = task.record(Example(T_ROLES, id="7"), {first: 0.0})
    assert record == {"id": "7", "text": T_ROLES, "spo_list": [{
        "subject": "周迅", "subject_type": "娱乐人物", "predicate": "饰演",
        "object": {"@value": "小玉", "inWork": "橙色年代"}, "object_type": {"@value": "人物", "inWork": "影视作品"},
        "object_start": {"@value": 12, "inWork": 4}, "object_end": {"@value": 14, "inWork": 8},
        "subject_start": 0, "subject_end": 2, "score": 0.5}]}
    assert task.label_of(first) == "饰演"
    assert task.item_record(T_ROLES, first)["object"] == {"@value": "小玉", "inWork": "橙色年代"}


def test_record_duie1_format_has_plain_string_objects(tmp_path):
    rows = [{"object_type": "地点", "predicate": "出生地", "subject_type": "人物"},
            {"object_type": "Date", "predicate": "成立日期", "subject_type": "机构"}]
    schema = load_duie_schema(write_jsonl(tmp_path / "all_50_schemas", rows))
    assert schema.relation_format == "duie1"
    task = RelationTask(schema)
    text = "王强出生于无锡。"
    r = Relation(Span(0, 2, "人物"), "出生地", ((V, Span(5, 7, "地点")),))
    assert task.record(Example(text), {r: 2.0})["spo_list"] == [{
        "subject": "王强", "subject_type": "人物", "predicate": "出生地", "object": "无锡", "object_type": "地点",
        "object_start": 5, "object_end": 7, "subject_start": 0, "subject_end": 2, "score": 0.8808}]


def test_score_strict_and_official(schema):
    # gold: 2 triples; prediction: one right (with 《》 marks in its object), one wrong predicate.
    text = "王强的出生地是《无锡》。"
    gold = [Relation(Span(0, 2, "人物"), "出生地", ((V, Span(7, 11, "地点")),)),
            Relation(Span(0, 2, "人物"), "祖籍", ((V, Span(7, 11, "地点")),))]
    pred = {gold[0]: 1.0, Relation(Span(0, 2, "人物"), "毕业院校", ((V, Span(7, 11, "学校")),)): 1.0}
    scores = RelationTask(schema).score([Example(text, relations=tuple(gold))], [pred])
    assert scores.main == pytest.approx(0.5)  # tp 1, 2 predicted, 2 gold
    assert scores.metrics["duie_f1"] == pytest.approx(0.5)
    assert scores.per_label["出生地"].f1 == 1.0 and scores.per_label["祖籍"].recall == 0.0


def test_schema_types_and_format_from_loader_and_examples(schema, tmp_path):
    assert schema.relation_format == "duie2"
    assert schema.subject_type("饰演") == "娱乐人物" and schema.object_type("获奖", "onDate") == "Date"
    assert schema.subject_type("不存在") == "" and schema.object_type("饰演", "period") == ""
    # a predicate listed twice keeps its first subject type
    rows = [{"object_type": "Date", "predicate": "成立日期", "subject_type": "机构"},
            {"object_type": "Date", "predicate": "成立日期", "subject_type": "企业"}]
    assert load_duie_schema(write_jsonl(tmp_path / "s", rows)).subject_types == {"成立日期": "机构"}
    # from examples: the most frequent type, ties to the smallest name
    text = "甲乙丙丁"
    relations = [Relation(Span(0, 1, "企业"), "成立日期", ((V, Span(3, 4, "Date")),)),
                 Relation(Span(1, 2, "机构"), "成立日期", ((V, Span(3, 4, "Date")),)),
                 Relation(Span(2, 3, "机构"), "成立日期", ((V, Span(3, 4, "Date")),)),
                 Relation(Span(0, 1, "乙"), "父亲", ((V, Span(1, 2, "甲")),)),
                 Relation(Span(1, 2, "甲"), "父亲", ((V, Span(2, 3, "甲")),))]
    derived = schema_from_examples("relation", [Example(text, relations=tuple(relations))], relation_format="duie1")
    assert derived.subject_types == {"成立日期": "机构", "父亲": "乙"}
    assert derived.object_types == {"成立日期": {V: "Date"}, "父亲": {V: "甲"}}
    assert derived.relation_format == "duie1"


def test_schema_round_trip_and_old_dicts_read_with_defaults(schema):
    assert Schema.from_dict(json.loads(json.dumps(schema.to_dict(), ensure_ascii=False))) == schema
    old = {"task": "relation", "entity_types": ["人物"], "predicates": ["父亲"], "event_roles": [], "object_slots": {}}
    loaded = Schema.from_dict(old)
    assert loaded.subject_types == {} and loaded.object_types == {} and loaded.relation_format == "duie2"
    with pytest.raises(DataError, match="relation_format"):
        Schema.from_dict({**old, "relation_format": "duie3"})


# --- CLI end to end on a tiny scratch model ------------------------------------------------


def duie2_line(example: Example, schema: Schema) -> dict:
    """A DuIE 2.0 line (no offsets) for a synthetic example."""
    spos = []
    for r in example.relations:
        objects = dict(r.objects)
        spos.append({"subject": r.subject.text_in(example.text), "subject_type": schema.subject_types[r.predicate],
                     "predicate": r.predicate, "object": {s: o.text_in(example.text) for s, o in objects.items()},
                     "object_type": {s: schema.object_types[r.predicate][s] for s in objects}})
    return {"text": example.text, "spo_list": spos}


runner = CliRunner()


def test_cli_train_eval_predict_check(schema, tmp_path):
    examples = [e for e in synthetic() if e.text != T_NESTED]  # the reader would place 北京 apart from 北京大学
    rows = [duie2_line(e, schema) for e in examples]
    train = write_jsonl(tmp_path / "train.json", rows)
    schema_file = write_jsonl(tmp_path / "duie_schema.json", SCHEMA_ROWS)
    config = write_jsonl(tmp_path / "duie.yaml", ["task: relation", "data:", "  schema: duie_schema.json"])
    out = tmp_path / "run"
    sets = TINY + [f"data.train={train}", f"data.dev={train}", f"train.output_dir={out}", "train.max_steps=6",
                   "train.eval_every=3"]
    result = runner.invoke(app, ["train", str(config), *set_args(sets)])
    assert result.exit_code == 0, result.output
    best = out / "best"
    saved = json.loads((best / "config.json").read_text(encoding="utf-8"))["gplinker"]
    assert saved["task"] == "relation" and Schema.from_dict(saved["schema"]) == schema

    metrics = tmp_path / "metrics.json"
    result = runner.invoke(
        app, ["eval", str(best), str(train), "-o", str(metrics), "--errors", str(tmp_path / "e.jsonl")]
    )
    assert result.exit_code == 0, result.output
    scores = json.loads(metrics.read_text())
    assert {"triple_f1", "offset_f1", "duie_f1"} <= set(scores["metrics"]) and "duie_f1" in result.output

    lines = [json.dumps({"id": k, "text": e.text}, ensure_ascii=False) for k, e in enumerate(examples)]
    good = predict_with_a_bad_second_line(best, lines, tmp_path)
    assert not any("error" in r for r in good)
    assert [r["text"] for r in good] == [e.text for e in examples]
    # a 6-step model may or may not find triples; whatever it writes must read back from the text
    for r in good:
        for spo in r["spo_list"]:
            assert r["text"][spo["subject_start"]:spo["subject_end"]] == spo["subject"]
            assert set(spo["object"]) == set(spo["object_type"]) and V in spo["object"]
            for slot, mention in spo["object"].items():
                assert r["text"][spo["object_start"][slot]:spo["object_end"][slot]] == mention
            assert spo["subject_type"] == schema.subject_types[spo["predicate"]] and 0 <= spo["score"] <= 1

    submission, records = predict_submission_and_records(best, lines, tmp_path, "duie")
    submitted, good = read_jsonl(submission), read_jsonl(records)
    assert 0.0 <= duie_score(rows, submitted, version=2) <= 1.0  # the DuIE scorer of test_submission reads it
    def strings(spo_list: list[dict]) -> set:
        return {(s["subject"], s["predicate"], tuple(sorted(s["object"].items()))) for s in spo_list}
    assert [strings(s["spo_list"]) for s in submitted] == [strings(r["spo_list"]) for r in good]  # same triples
    for path in (records, submission):  # `score` gives what `eval` gave, from either file
        scored = tmp_path / "scored.json"
        result = runner.invoke(app, ["score", str(path), str(train), "--task", "relation", "-o", str(scored)])
        assert result.exit_code == 0, result.output
        assert json.loads(scored.read_text()) == json.loads(metrics.read_text())

    result = runner.invoke(app, ["check", str(train), "--task", "relation", "--schema", str(schema_file)])
    assert result.exit_code == 0, result.output
    gold = sum(len(r["spo_list"]) for r in rows)
    assert f"({gold}/{gold} gold items recovered)" in result.output


# --- real data (subsets), -m slow ------------------------------------------------------------

REAL = [
    ("duie2", "duie2-subset", "duie_schema.json"),
    ("duie1", "duie1-subset", "all_50_schemas"),
]


def miss_cause(task: RelationTask, example: Example, relation: Relation, windows: list[Window]) -> str:
    """Why the oracle cannot give back one located gold relation."""
    spans = [relation.subject] + [o for _, o in relation.objects]
    for span in spans:
        mention = span.text_in(example.text)
        if mention != mention.strip():
            return "mention starts or ends with whitespace"
        if all(w.token_span(span.start, span.end) is None for w in windows):
            return "mention boundary inside a token"
    if all(task.place(relation, w) is None for w in windows):
        return "subject and objects in no common window"
    return "slot merge (five-tuples of one subject and predicate do not say which slot goes with which value)"


@pytest.mark.slow
@pytest.mark.parametrize("fmt,folder,schema_name", REAL)
def test_real_oracle_round_trip(fmt, folder, schema_name):
    from transformers import BertTokenizerFast

    from gplinker.commands.check import check_data
    from gplinker.data.duie import location_report
    from gplinker.data.reading import read_examples
    from gplinker.tasks.oracle import oracle_predictions

    if not (SHARED_DATA / folder).is_dir() or not BERT_VOCAB.is_dir():
        pytest.skip("../shared data or vocabulary not present")
    tokenizer = BertTokenizerFast.from_pretrained(str(BERT_VOCAB))
    schema = load_duie_schema(SHARED_DATA / folder / schema_name)
    task = RelationTask(schema)
    for split in ("train", "dev"):
        path = SHARED_DATA / folder / f"{split}.json"
        report = check_data(str(path), "relation", fmt, tokenizer, 256, 32, schema=schema)
        examples, _ = read_examples(path, fmt, "relation")
        windows = WindowEncoder(tokenizer, 256, 32).encode([e.text for e in examples])
        by_example: dict[int, list[Window]] = {}
        for w in windows:
            by_example.setdefault(w.example_index, []).append(w)
        predictions = oracle_predictions(task, examples, windows)
        causes = Counter()
        for k, (e, p) in enumerate(zip(examples, predictions)):
            for r in set(task.gold(e)) - set(p):
                causes[miss_cause(task, e, r, by_example[k])] += 1
        o = report.oracle
        located = location_report(examples)
        spos = sum(1 for line in path.read_text(encoding="utf-8").splitlines() for _ in json.loads(line)["spo_list"])
        print(f"\n{folder}/{split}: {spos} SPOs, reader {dict(located)}; oracle recovered {o.tp}/{o.n_gold} "
              f"({100 * o.recall:.2f}%), precision {100 * o.precision:.2f}% ({o.n_pred} decoded); "
              f"{report.long_texts} text(s) over one window; misses by cause: {dict(causes)}")
        assert sum(causes.values()) == o.n_gold - o.tp
        assert o.recall > 0.995 and o.precision > 0.995
        assert causes["subject and objects in no common window"] == 0


SHORT_RUN_STEPS = 200
SHORT_RUN_PREDICATES = ("作者", "成立日期")  # the two most frequent single-predicate lines of DuIE 2.0 train


def predicate_subset(lines: list[str], predicates: tuple[str, ...]) -> list[str]:
    """The lines whose every SPO has one of `predicates` (at least one SPO)."""
    keep = []
    for line in lines:
        spos = json.loads(line)["spo_list"]
        if spos and all(spo["predicate"] in predicates for spo in spos):
            keep.append(line)
    return keep


@pytest.mark.slow
def test_real_short_training_raises_dev_f1(tmp_path):
    """A scratch model on a DuIE 2.0 subset (two predicates): dev triple F1 after training beats the untrained one's."""
    from gplinker.commands.train import build_model, train
    from gplinker.config import load_config
    from gplinker.data.encoding import char_counts
    from gplinker.data.reading import read_examples
    from gplinker.devices import seed_everything
    from gplinker.predict import Predictor

    folder = SHARED_DATA / "duie2-subset"
    if not folder.is_dir():
        pytest.skip("../shared data not present")
    read = lambda name: (folder / name).read_text(encoding="utf-8").splitlines()  # noqa: E731
    train_file = write_jsonl(tmp_path / "train.json", predicate_subset(read("train.json"), SHORT_RUN_PREDICATES))
    dev_file = write_jsonl(tmp_path / "dev.json", predicate_subset(read("dev.json"), SHORT_RUN_PREDICATES)[:200])
    schema_file = write_jsonl(tmp_path / "schema.json", [json.loads(x) for x in read("duie_schema.json")
                                                          if json.loads(x)["predicate"] in SHORT_RUN_PREDICATES])
    steps = SHORT_RUN_STEPS
    cfg = load_config(Path(__file__).resolve().parents[1] / "configs" / "duie.yaml", [
        f"data.train={train_file}", f"data.dev={dev_file}", f"data.schema={schema_file}",
        f"train.output_dir={tmp_path / 'run'}", f"train.max_steps={steps}", f"train.eval_every={steps // 2}",
        "data.max_length=128", "train.log_every=50", "train.lr=3e-3", "train.eval_batch_size=64", "model.head_size=32",
        "model.scratch.hidden_size=128", "model.scratch.num_layers=2", "model.scratch.intermediate_size=256",
        "model.scratch.min_char_count=1"])
    train_examples, _ = read_examples(train_file, "duie2", "relation")
    dev, _ = read_examples(dev_file, "duie2", "relation")
    # the untrained model: same seed, so the same initialisation as the run below
    seed_everything(cfg.train.seed)
    task = build_task("relation", load_duie_schema(schema_file))
    model, tokenizer = build_model(cfg, task, char_counts(e.text for e in train_examples))
    untrained = Predictor(model=model, tokenizer=tokenizer, task=task, max_length=128,
                          stride=cfg.data.stride, threshold=0.0, batch_size=64)
    f1_before = task.score(dev, untrained.predict(dev)).main
    start = time.time()
    report = train(cfg)
    minutes = (time.time() - start) / 60
    history = [(h["step"], round(h["score"], 4)) for h in report.fit.history]
    print(f"\nDuIE 2.0 subset ({'/'.join(SHORT_RUN_PREDICATES)} lines: {len(train_examples)} train, {len(dev)} dev), "
          f"scratch encoder {cfg.model.scratch.hidden_size}x{cfg.model.scratch.num_layers}, {steps} steps of "
          f"{cfg.train.batch_size} windows, max_length {cfg.data.max_length}: dev triple F1 untrained {f1_before:.4f}, "
          f"during training {history}, best {report.fit.best_score:.4f}; {minutes:.1f} min")
    assert report.fit.best_score > f1_before + 0.03


def test_labels_the_schema_lacks_are_reported_by_predicate_and_slot_apart_from_window_losses(tmp_path, monkeypatch):
    examples = [e for e in synthetic() if e.text != T_NESTED]
    full = load_duie_schema(write_jsonl(tmp_path / "full.json", SCHEMA_ROWS))
    train = write_jsonl(tmp_path / "train.json", [duie2_line(e, full) for e in examples])
    rows = [r for r in SCHEMA_ROWS if r["predicate"] != "导演"]  # no 导演, and 饰演 without its inWork slot
    rows = [{**r, "object_type": {V: "人物"}} if r["predicate"] == "饰演" else r for r in rows]
    lacking = write_jsonl(tmp_path / "lacking.json", rows)
    result = runner.invoke(app, ["check", str(train), "--task", "relation", "--schema", str(lacking)])
    said = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    assert "3 gold item(s) have labels the schema lacks: 饰演@inWork 2, 导演@@value 1" in said
    assert "0 other gold item(s) lost to token positions or decoding" in said

    config = write_jsonl(tmp_path / "duie.yaml", ["task: relation"])
    sets = TINY + [f"data.train={train}", f"data.schema={lacking}", f"train.output_dir={tmp_path / 'run'}",
                   "train.max_steps=1"]
    cache_dir = tmp_path / "cache"
    result = runner.invoke(app, ["train", str(config), *set_args(sets)], env={"GPLINKER_CACHE_DIR": str(cache_dir)})
    said = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    assert "3 gold item(s) of the training data have labels the schema lacks" in said and "饰演@inWork 2" in said
    assert list(cache_dir.glob("gaps-*.json"))
    assert "cannot be expressed in token positions" not in said  # the windows lose nothing here

    # a second run over the same corpus and schema reads the gaps from the cache: no pass over the corpus
    from gplinker.data.corpus import Corpus

    def no_pass(*_):
        raise AssertionError("a pass over every training example")

    monkeypatch.setattr(Corpus, "examples", no_pass)
    sets = [s for s in sets if not s.startswith("train.output_dir=")] + [f"train.output_dir={tmp_path / 'run2'}"]
    result = runner.invoke(app, ["train", str(config), *set_args(sets)], env={"GPLINKER_CACHE_DIR": str(cache_dir)})
    said = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    assert "3 gold item(s) of the training data have labels the schema lacks" in said and "饰演@inWork 2" in said


def test_a_schema_of_the_other_task_is_named_as_such(tmp_path):
    from gplinker.data.schema import load_duee_schema

    event_schema = write_jsonl(tmp_path / "duee_event_schema.json", [{"event_type": "比赛-胜负",
                                                                      "role_list": [{"role": "胜者"}]}])
    with pytest.raises(DataError, match=r"duee_event_schema.json:1: this is an event schema .*relation task"):
        load_duie_schema(event_schema)
    with pytest.raises(DataError, match=r"duie_schema.json:1: this is a relation schema .*event task"):
        load_duee_schema(write_jsonl(tmp_path / "duie_schema.json", SCHEMA_ROWS))
