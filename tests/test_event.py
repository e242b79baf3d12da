"""Event task: targets ⇄ decode round trips, link and noise rules, the top-k cap, merge, output, CLI.

Sentences and event types here are synthetic, written for these tests.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gplinker.cli import app
from gplinker.data.duee import parse_duee
from gplinker.data.encoding import SPECIAL, Window, WindowEncoder
from gplinker.data.examples import TRIGGER_ROLE, Event, Example, Span
from gplinker.data.schema import Schema
from gplinker.head_spec import HeadSpec
from gplinker.modeling.encoders import scratch_tokenizer
from gplinker.tasks.event import MAX_ARGUMENTS_PER_TYPE, EventTask
from gplinker.tasks.event_assembly import drop_strict_subsets
from gplinker.tasks.oracle import oracle_predictions
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
from tests.test_submission import duee_score

T = TRIGGER_ROLE
WIN, JOIN, MEET = "比赛-胜负", "组织-加盟", "交往-会见"
SCHEMA = Schema("event", event_roles=[
    (WIN, T), (WIN, "胜者"), (WIN, "败者"), (WIN, "赛事"),
    (JOIN, T), (JOIN, "加盟者"), (JOIN, "所加盟组织"), (JOIN, "场合"),
    (MEET, T), (MEET, "会见主体"), (MEET, "会见对象"),
])


def arg(text: str, mention: str, role: str, nth: int = 0) -> Span:
    """The span of the nth occurrence of `mention` in `text`, labelled `role` (test data only)."""
    start = -1
    for _ in range(nth + 1):
        start = text.index(mention, start + 1)
    return Span(start, start + len(mention), role)


def event(text: str, event_type: str, *arguments: tuple) -> Event:
    return Event(event_type, frozenset(arg(text, *a) for a in arguments))


def make(text: str, *events: tuple) -> Example:
    return Example(text=text, events=tuple(event(text, etype, *args) for etype, *args in events))


S_SHARED = "红队在决赛中击败蓝队，随后又战胜了绿队。"
SENTENCES = {
    # two events of one type sharing the argument 红队
    "same_type_shared_argument": make(
        S_SHARED,
        (WIN, ("击败", T), ("红队", "胜者"), ("蓝队", "败者"), ("决赛", "赛事")),
        (WIN, ("战胜", T), ("红队", "胜者"), ("绿队", "败者")),
    ),
    # two event types; 张三 is an argument of both
    "different_types": make(
        "张三加盟星辰俱乐部后首次会见了李四。",
        (JOIN, ("加盟", T), ("张三", "加盟者"), ("星辰俱乐部", "所加盟组织")),
        (MEET, ("会见", T), ("张三", "会见主体"), ("李四", "会见对象")),
    ),
    # 加盟星辰队的王五 contains the other event's trigger and arguments; 星辰队 ⊂ 星辰队队长 elsewhere
    "nested_and_overlapping": make(
        "加盟星辰队的王五会见了星辰队队长。",
        (JOIN, ("加盟", T), ("星辰队", "所加盟组织"), ("王五", "加盟者")),
        (MEET, ("会见", T), ("加盟星辰队的王五", "会见主体"), ("星辰队队长", "会见对象")),
    ),
    # nested spans inside one event: both start on the same token, so their head link is diagonal
    "nested_same_head": make(
        "星辰杯冠军红队击败了蓝队。",
        (WIN, ("击败", T), ("星辰杯", "赛事"), ("星辰杯冠军红队", "胜者"), ("蓝队", "败者")),
    ),
    # 会见 is the trigger of one event and an argument (场合) of an event of another type
    "argument_is_trigger_elsewhere": make(
        "王五在会见李四时宣布加盟月亮队。",
        (MEET, ("会见", T), ("王五", "会见主体"), ("李四", "会见对象")),
        (JOIN, ("加盟", T), ("王五", "加盟者"), ("月亮队", "所加盟组织"), ("会见", "场合")),
    ),
}
FILLER = "今天天气很好，大家都在公园里散步，孩子们在草地上奔跑，老人们在树下下棋。"


def tokenizer_for(examples):
    return scratch_tokenizer(e.text for e in examples)


def oracle(task, examples, max_length=64, stride=8):
    """Targets → decode with every target cell scored 1.0 → merge, as `gplinker check` does."""
    windows = WindowEncoder(tokenizer_for(examples), max_length, stride).encode([e.text for e in examples])
    return oracle_predictions(task, examples, windows), windows


def char_window(n: int) -> Window:
    """A window over n one-character tokens, [CLS] at 0 and [SEP] at n + 1: token p covers char p - 1."""
    return Window(0, list(range(n + 2)), [SPECIAL] + [(k, k + 1) for k in range(n)] + [SPECIAL])


def all_links(positions) -> dict:
    """Head and tail link cells between every two of the given (h, t) positions, stored at (min, max)."""
    heads = {(0, min(a[0], b[0]), max(a[0], b[0])) for a in positions for b in positions}
    tails = {(0, min(a[1], b[1]), max(a[1], b[1])) for a in positions for b in positions}
    return {"head_links": [(*c, 1.0) for c in heads], "tail_links": [(*c, 1.0) for c in tails]}


# ------------------------------------------------------------------ heads and targets


def test_heads_one_argument_channel_per_type_role_and_two_unrotated_link_heads():
    task = EventTask(SCHEMA)
    assert task.heads() == [
        HeadSpec("arguments", 11, rope=True, tril_mask=True),
        HeadSpec("head_links", 1, rope=False, tril_mask=True, span_head=False),
        HeadSpec("tail_links", 1, rope=False, tril_mask=True, span_head=False),
    ]


def test_targets_put_arguments_by_label_and_links_at_min_max():
    example = make("红队击败蓝队", (WIN, ("击败", T), ("红队", "胜者"), ("蓝队", "败者")))
    window = WindowEncoder(tokenizer_for([example]), 16, 0).encode([example.text])[0]
    # [CLS] at position 0: 红队 = tokens 1..2, 击败 = 3..4, 蓝队 = 5..6; labels 0 触发词, 1 胜者, 2 败者
    assert EventTask(SCHEMA).targets(example, window) == {
        "arguments": [(0, 3, 4), (1, 1, 2), (2, 5, 6)],
        "head_links": [(0, 1, 3), (0, 1, 5), (0, 3, 5)],
        "tail_links": [(0, 2, 4), (0, 2, 6), (0, 4, 6)],
    }


def test_targets_never_put_a_link_below_the_diagonal():
    task = EventTask(SCHEMA)
    examples = list(SENTENCES.values())
    windows = WindowEncoder(tokenizer_for(examples), 64, 8).encode([e.text for e in examples])
    for w in windows:
        cells = task.targets(examples[w.example_index], w)
        for head in ("head_links", "tail_links"):
            assert cells[head] and all(c == 0 and i <= j for c, i, j in cells[head])
    diagonal = task.targets(SENTENCES["nested_same_head"], windows[3])["head_links"]
    assert (0, 1, 1) in diagonal  # 星辰杯 and 星辰杯冠军红队 both start at token 1


def test_targets_skip_roles_outside_the_schema_and_spans_outside_the_window():
    text = "红队击败蓝队"
    example = Example(
        text, events=(Event(WIN, frozenset({Span(2, 4, T), Span(0, 2, "未知角色"), Span(4, 6, "败者")})),)
    )
    window = char_window(4)  # sees 红队击败 only
    cells = EventTask(SCHEMA).targets(example, window)
    assert cells == {"arguments": [(0, 3, 4)], "head_links": [], "tail_links": []}


# ------------------------------------------------------------------ round trips


@pytest.mark.parametrize("name", sorted(SENTENCES))
def test_round_trip_gold_targets_decode_gives_gold(name):
    example = SENTENCES[name]
    [prediction], _ = oracle(EventTask(SCHEMA), [example])
    assert set(prediction) == set(example.events)
    assert all(score == 1.0 for score in prediction.values())


def test_round_trip_on_all_sentences_scores_one():
    task = EventTask(SCHEMA)
    examples = list(SENTENCES.values())
    predictions, _ = oracle(task, examples)
    scores = task.score(examples, predictions)
    for key in ("duee_f1", "event_f1", "argument_f1", "trigger_f1"):
        assert scores.metrics[key] == 1.0, key
    assert scores.main == 1.0 and set(scores.per_label) == {WIN, JOIN, MEET}


def test_event_in_a_later_window_survives_and_partial_window_events_are_merged_away():
    task = EventTask(SCHEMA)
    text = FILLER + S_SHARED
    shared = SENTENCES["same_type_shared_argument"]
    shift = len(FILLER)
    example = Example(text, events=tuple(
        Event(e.type, frozenset(Span(a.start + shift, a.end + shift, a.label) for a in e.arguments))
        for e in shared.events
    ))
    windows = WindowEncoder(tokenizer_for([example]), 30, 12).encode([text])
    assert len(windows) == 3 and windows[0].char_range[1] <= shift  # the events lie in later windows
    per_window = [task.decode(w, {h: [(*c, 1.0) for c in cs] for h, cs in task.targets(example, w).items()})
                  for w in windows]
    partial = [e for p in per_window for e in p if e not in example.events]
    assert partial and all(any(e.arguments < g.arguments for g in example.events) for e in partial)
    merged = task.merge(per_window)
    assert set(merged) == set(example.events)


# ------------------------------------------------------------------ decoding rules


def test_event_score_is_the_lowest_argument_logit():
    task = EventTask(SCHEMA)
    window = char_window(6)  # 红队击败蓝队: 红队 tokens 1..2, 击败 3..4, 蓝队 5..6
    cells = {"arguments": [(0, 3, 4, 2.5), (1, 1, 2, 0.7), (2, 5, 6, 4.0)], **all_links([(3, 4), (1, 2), (5, 6)])}
    prediction = task.decode(window, cells)
    gold = Event(WIN, frozenset({Span(2, 4, T), Span(0, 2, "胜者"), Span(4, 6, "败者")}))
    assert prediction == {gold: 0.7}


def test_a_head_link_without_its_tail_link_is_no_link():
    task = EventTask(SCHEMA)
    window = char_window(6)
    cells = {"arguments": [(0, 3, 4, 1.0), (1, 1, 2, 1.0)], "head_links": [(0, 1, 3, 1.0)], "tail_links": []}
    # trigger and 胜者 are not linked: the trigger alone is an event, 胜者 alone is dropped
    assert set(task.decode(window, cells)) == {Event(WIN, frozenset({Span(2, 4, T)}))}


def test_unlinked_noise_adds_only_trigger_only_events():
    """An extra argument cell with no links is a clique of one: kept only if it is a trigger.

    So an unlinked non-trigger cell changes nothing, and an unlinked trigger cell adds one event
    holding that trigger alone (the rule "drop events without a trigger" keeps it; GPLinker does
    the same). Neither joins or splits the real event.
    """
    task = EventTask(SCHEMA)
    window = char_window(10)
    real = [(0, 3, 4, 3.0), (1, 1, 2, 3.0), (2, 5, 6, 3.0)]
    links = all_links([(3, 4), (1, 2), (5, 6)])
    gold = Event(WIN, frozenset({Span(2, 4, T), Span(0, 2, "胜者"), Span(4, 6, "败者")}))

    noise_argument = [(3, 7, 8, 5.0), (1, 9, 10, 0.1)]  # 赛事 at chars 6..8, 胜者 at 8..10, no links
    assert task.decode(window, {"arguments": real + noise_argument, **links}) == {gold: 3.0}

    noise_trigger = [(0, 7, 8, 0.2), (4, 9, 10, 0.4)]  # a 胜负 trigger and a 加盟 trigger, no links
    assert task.decode(window, {"arguments": real + noise_trigger, **links}) == {
        gold: 3.0,
        Event(WIN, frozenset({Span(6, 8, T)})): 0.2,
        Event(JOIN, frozenset({Span(8, 10, T)})): 0.4,
    }


def test_cells_on_special_tokens_are_ignored():
    task = EventTask(SCHEMA)
    window = char_window(4)
    cells = {"arguments": [(0, 0, 2, 9.0), (0, 3, 5, 9.0), (0, 1, 2, 1.0)], "head_links": [], "tail_links": []}
    assert task.decode(window, cells) == {Event(WIN, frozenset({Span(0, 2, T)})): 1.0}


def test_same_span_with_two_roles_in_one_type_gives_crossed_events():
    """Known limit of position-only links: 红队 is 胜者 of one event and 败者 of another.

    Links cannot tell the two roles apart, so each trigger also links to the other role: the two
    gold events come back, plus the two crossed ones. (The oracle on DuEE dev shows this too.)
    """
    text = "红队先胜后负"
    a = Event(WIN, frozenset({Span(2, 3, T), Span(0, 2, "胜者")}))
    b = Event(WIN, frozenset({Span(4, 5, T), Span(0, 2, "败者")}))
    [prediction], _ = oracle(EventTask(SCHEMA), [Example(text, events=(a, b))])
    crossed = {Event(WIN, frozenset({Span(2, 3, T), Span(0, 2, "败者")})),
               Event(WIN, frozenset({Span(4, 5, T), Span(0, 2, "胜者")}))}
    assert set(prediction) == {a, b} | crossed


def test_top_k_cap_keeps_the_best_arguments_per_type_under_all_links():
    """100 arguments of one type, all linked: one event of the 40 best, whatever the noise."""
    task = EventTask(SCHEMA)
    n = 100
    window = char_window(n)
    roles = [1, 2, 3]  # 胜者, 败者, 赛事 of 比赛-胜负
    cells = []
    for k in range(n):  # one-character arguments; scores distinct, 1..100, the trigger at k = 99
        label = 0 if k == n - 1 else roles[k % 3]
        cells.append((label, k + 1, k + 1, float(k + 1)))
    cells.append((4, 1, 1, 0.5))  # a 加盟 trigger: another type, untouched by the cap
    links = all_links([(p, p) for p in range(1, n + 1)])
    prediction = task.decode(window, {"arguments": cells, **links})
    best = sorted(cells[:n], key=lambda c: -c[3])[:MAX_ARGUMENTS_PER_TYPE]
    top = Event(WIN, frozenset(Span(i - 1, i, SCHEMA.event_roles[c][1]) for c, i, _, _ in best))
    assert prediction == {top: float(n - MAX_ARGUMENTS_PER_TYPE + 1), Event(JOIN, frozenset({Span(0, 1, T)})): 0.5}


def test_events_per_window_are_capped_strongest_triggers_first():
    """Four lone triggers (no links): a 加盟 one at 5.0 and 比赛-胜负 ones at 3.0, 2.0, 1.0."""
    window = char_window(8)
    cells = {"arguments": [(0, 1, 1, 1.0), (0, 2, 2, 3.0), (4, 5, 5, 5.0), (0, 3, 3, 2.0)], "head_links": [],
             "tail_links": []}
    lone = lambda event_type, p, score: (Event(event_type, frozenset({Span(p - 1, p, T)})), score)  # noqa: E731
    assert EventTask(SCHEMA, max_events=2).decode(window, cells) == dict([lone(JOIN, 5, 5.0), lone(WIN, 2, 3.0)])
    assert EventTask(SCHEMA, max_events=3).decode(window, cells) == dict(
        [lone(JOIN, 5, 5.0), lone(WIN, 2, 3.0), lone(WIN, 3, 2.0)])
    assert len(EventTask(SCHEMA).decode(window, cells)) == 4


def test_arguments_on_special_tokens_never_count_toward_the_caps():
    """The strongest trigger cells sit on [CLS] (0) and [SEP] (5); under tight caps the content event comes back."""
    window = char_window(4)
    cells = {"arguments": [(0, 0, 0, 9.0), (0, 5, 5, 9.0), (0, 0, 5, 9.0), (0, 2, 3, 1.0), (1, 1, 1, 0.5)],
             **all_links([(0, 0), (5, 5), (0, 5), (2, 3), (1, 1)])}
    task = EventTask(SCHEMA, max_arguments_per_type=2, max_events=1, max_frames=1)
    assert task.decode(window, cells) == {Event(WIN, frozenset({Span(1, 3, T), Span(0, 1, "胜者")})): 0.5}


def test_the_frame_budget_bounds_the_search_and_keeps_what_it_found():
    # one trigger and 18 arguments of its type, every pair linked except 9 disjoint pairs: 2^9 cliques
    task = EventTask(SCHEMA)
    window = char_window(19)
    cells = [(0, 1, 1, 9.0)] + [(1 + k % 3, p, p, 5.0) for k, p in enumerate(range(2, 20))]
    missing = {(p, p + 1) for p in range(2, 20, 2)}
    links = all_links([(p, p) for p in range(1, 20)])
    links = {head: [c for c in cs if (c[1], c[2]) not in missing] for head, cs in links.items()}
    assert len(task.decode(window, {"arguments": cells, **links})) == 2**9
    assert len(EventTask(SCHEMA, max_events=100).decode(window, {"arguments": cells, **links})) == 100
    few = EventTask(SCHEMA, max_frames=20).decode(window, {"arguments": cells, **links})
    assert 0 < len(few) < 2**9 and all(Span(0, 1, T) in e.arguments and len(e.arguments) == 10 for e in few)


def test_top_k_cap_is_a_setting():
    task = EventTask(SCHEMA, max_arguments_per_type=2)
    window = char_window(6)
    cells = {"arguments": [(0, 3, 4, 3.0), (1, 1, 2, 2.0), (2, 5, 6, 1.0)], **all_links([(3, 4), (1, 2), (5, 6)])}
    assert task.decode(window, cells) == {Event(WIN, frozenset({Span(2, 4, T), Span(0, 2, "胜者")})): 2.0}


# ------------------------------------------------------------------ merge


def test_merge_keeps_max_score_and_drops_strict_subsets_of_the_same_type_only():
    task = EventTask(SCHEMA)
    full = Event(WIN, frozenset({Span(2, 4, T), Span(0, 2, "胜者"), Span(4, 6, "败者")}))
    part = Event(WIN, frozenset({Span(2, 4, T), Span(4, 6, "败者")}))
    other_type = Event(JOIN, frozenset({Span(2, 4, T)}))
    other = Event(WIN, frozenset({Span(8, 9, T), Span(0, 2, "胜者")}))
    merged = task.merge([{full: 1.0, other_type: 0.3}, {part: 5.0, full: 2.0, other: 0.1}])
    assert merged == {full: 2.0, other_type: 0.3, other: 0.1}


def test_merge_of_one_window_returns_it_unchanged():
    task = EventTask(SCHEMA)
    a = Event(WIN, frozenset({Span(2, 4, T)}))
    b = Event(WIN, frozenset({Span(2, 4, T), Span(0, 2, "胜者")}))
    assert task.merge([{a: 1.0, b: 2.0}]) == {a: 1.0, b: 2.0}  # one window never nests


def test_drop_strict_subsets_matches_the_definition():
    spans = [Span(k, k + 1, T if k == 0 else "胜者") for k in range(5)]
    events = [Event(WIN, frozenset(spans[k] for k in ks)) for ks in
              [(0, 1), (0, 1, 2), (0, 3), (0,), (4,), (0, 1, 2)]] + [Event(JOIN, frozenset({spans[0]}))]
    expected = [e for e in dict.fromkeys(events)
                if not any(o.type == e.type and e.arguments < o.arguments for o in events)]
    assert drop_strict_subsets(events) == expected
    assert [sorted(s.start for s in e.arguments) for e in expected[:3]] == [[0, 1, 2], [0, 3], [4]]


# ------------------------------------------------------------------ output


def test_record_is_duee_format_and_reads_back_with_the_duee_reader():
    task = EventTask(SCHEMA)
    example = dataclasses.replace(SENTENCES["argument_is_trigger_elsewhere"], id="s4")
    prediction = {e: 1.0 + k for k, e in enumerate(sorted(example.events, key=lambda e: e.type))}
    record = task.record(example, prediction)
    assert record["id"] == "s4" and record["text"] == example.text
    assert [e["event_type"] for e in record["event_list"]] == [MEET, JOIN]  # by trigger position
    meet = record["event_list"][0]
    assert meet == {
        "event_type": MEET, "trigger": "会见", "trigger_start_index": 3,
        "arguments": [{"role": "会见主体", "argument": "王五", "argument_start_index": 0},
                      {"role": "会见对象", "argument": "李四", "argument_start_index": 5}],
        "score": round(1 / (1 + 2.718281828459045 ** -prediction[example.events[0]]), 4),
    }
    assert set(parse_duee(json.loads(json.dumps(record, ensure_ascii=False))).events) == set(example.events)


def test_item_record_and_label_of_are_readable():
    task = EventTask(SCHEMA)
    example = SENTENCES["different_types"]
    join = example.events[0]
    assert task.label_of(join) == JOIN
    assert task.item_record(example.text, join) == {
        "event_type": JOIN, "trigger": "加盟",
        "arguments": [{"role": "加盟者", "text": "张三", "start": 0, "end": 2},
                      {"role": T, "text": "加盟", "start": 2, "end": 4},
                      {"role": "所加盟组织", "text": "星辰俱乐部", "start": 4, "end": 9}],
    }


# ------------------------------------------------------------------ CLI end to end


def duee_line(example: Example, ident: str) -> dict:
    """The DuEE 1.0 JSON line of a synthetic example (the trigger apart, as in the data files)."""
    events = []
    for e in example.events:
        trigger = e.trigger
        events.append({
            "event_type": e.type, "trigger": trigger.text_in(example.text), "trigger_start_index": trigger.start,
            "arguments": [{"role": a.label, "argument": a.text_in(example.text), "argument_start_index": a.start}
                          for a in sorted(e.arguments) if a is not trigger],
        })
    return {"id": ident, "text": example.text, "event_list": events}


def test_cli_train_eval_predict_check_on_tiny_duee_files(tmp_path):
    runner = CliRunner()
    rows = [duee_line(e, f"s{k}") for k, e in enumerate(SENTENCES.values())]
    train = write_jsonl(tmp_path / "train.json", rows)
    schema = write_jsonl(tmp_path / "schema.json", [
        {"event_type": etype, "role_list": [{"role": r} for t, r in SCHEMA.event_roles if t == etype and r != T]}
        for etype in SCHEMA.event_types()
    ])
    config = write_jsonl(tmp_path / "duee.yaml", ["task: event", "data:", "  format: duee"])
    out = tmp_path / "run"
    sets = TINY + [f"data.train={train}", f"data.dev={train}", f"data.schema={schema}", f"train.output_dir={out}",
                   "train.max_steps=4", "train.eval_every=2"]
    result = runner.invoke(app, ["train", str(config), *set_args(sets)])
    assert result.exit_code == 0, result.output
    best = out / "best"
    section = json.loads((best / "config.json").read_text(encoding="utf-8"))["gplinker"]
    assert section["task"] == "event" and [tuple(p) for p in section["schema"]["event_roles"]] == SCHEMA.event_roles

    metrics = tmp_path / "metrics.json"
    result = runner.invoke(app, ["eval", str(best), str(train), "-o", str(metrics)])
    assert result.exit_code == 0, result.output
    scores = json.loads(metrics.read_text(encoding="utf-8"))
    for key in ("duee_f1", "event_f1", "argument_f1", "trigger_f1"):
        assert 0.0 <= scores["metrics"][key] and key in result.output

    lines = [json.dumps({"id": r["id"], "text": r["text"]}, ensure_ascii=False) for r in rows]
    good = predict_with_a_bad_second_line(best, lines, tmp_path)
    assert [r["id"] for r in good] == [r["id"] for r in rows]
    for record in good:
        parse_duee(record)  # every predicted offset reads back against its text
        assert all(0.0 <= e["score"] <= 1.0 for e in record["event_list"])

    submission, records = predict_submission_and_records(best, lines, tmp_path, "duee")
    submitted, good = read_jsonl(submission), read_jsonl(records)
    assert [s["id"] for s in submitted] == [r["id"] for r in rows]
    assert 0.0 <= duee_score(rows, submitted) <= 2.0  # the DuEE scorer of test_submission reads it (R may pass 1)
    def arguments(event_list: list[dict]) -> set:
        return {(e["event_type"], a["role"], a["argument"]) for e in event_list for a in e["arguments"]
                if a["role"] != T}  # an untrained model's clique may hold a second trigger: never submitted
    assert [arguments(s["event_list"]) for s in submitted] == [arguments(r["event_list"]) for r in good]
    evaluated = json.loads(metrics.read_text(encoding="utf-8"))
    scored = tmp_path / "scored.json"
    result = runner.invoke(app, ["score", str(records), str(train), "--task", "event", "-o", str(scored)])
    assert result.exit_code == 0, result.output
    assert json.loads(scored.read_text()) == evaluated  # records carry offsets and triggers: every metric
    result = runner.invoke(app, ["score", str(submission), str(train), "--task", "event", "-o", str(scored)])
    assert result.exit_code == 0, result.output
    from_submission = json.loads(scored.read_text())
    assert set(from_submission["metrics"]) == {"duee_precision", "duee_recall", "duee_f1"}
    assert from_submission["main"] == pytest.approx(evaluated["main"])  # the official score compares strings
    assert "only the official DuEE score" in " ".join(result.output.split())

    result = runner.invoke(app, ["check", str(train), "--task", "event", "--schema", str(schema),
                                 "--max-length", "32", "--stride", "4"])
    assert result.exit_code == 0, result.output
    assert "0 invalid" in result.output and "F1 100.00" in result.output


# ------------------------------------------------------------------ real data (-m slow)

DUEE = SHARED_DATA / "duee"
needs_duee = pytest.mark.skipif(not (DUEE / "dev.json").is_file() or not (BERT_VOCAB / "vocab.txt").is_file(),
                                reason="../shared/data/duee or ../shared/vocab/bert-base-chinese is absent")


def lost_and_extra(task, examples, predictions, windows):
    """Per gold event the oracle misses, why; per extra predicted event, why (see the slow test)."""
    by_example: dict[int, list[Window]] = {}
    for w in windows:
        by_example.setdefault(w.example_index, []).append(w)
    lost, extra = [], []
    for k, (example, prediction) in enumerate(zip(examples, predictions)):
        gold = set(example.events)
        for e in gold - set(prediction):
            unplaceable = [a for a in e.arguments if all(w.token_span(a.start, a.end) is None for w in by_example[k])]
            blank_edge = any(example.text[a.start].isspace() or example.text[a.end - 1].isspace() for a in unplaceable)
            lost.append("blank at a span edge" if blank_edge else "unplaceable" if unplaceable else "links")
        for e in set(prediction) - gold:
            if any(e.arguments < g.arguments for g in gold - set(prediction)):
                extra.append("part of a lost event")
                continue
            roles_at: dict[tuple[int, int], set[str]] = {}
            for g in gold:
                if g.type == e.type:
                    for a in g.arguments:
                        roles_at.setdefault((a.start, a.end), set()).add(a.label)
            two_roles = any(len(roles_at.get((a.start, a.end), ())) > 1 for a in e.arguments)
            extra.append("span with two roles in one type" if two_roles else "other")
    return lost, extra


@pytest.mark.slow
@needs_duee
@pytest.mark.parametrize("split", ["train", "dev"])
def test_oracle_on_duee_with_the_bert_vocabulary(split, capsys):
    from collections import Counter

    from transformers import BertTokenizerFast

    from gplinker.commands.check import check_data
    from gplinker.data.reading import read_examples
    from gplinker.data.schema import load_duee_schema

    tokenizer = BertTokenizerFast.from_pretrained(str(BERT_VOCAB))
    schema = load_duee_schema(DUEE / "duee_event_schema.json")
    report = check_data(str(DUEE / f"{split}.json"), "event", "duee", tokenizer, 512, 32, schema=schema)
    assert not report.report.skipped and report.long_texts == 0
    task = EventTask(schema)
    examples, _ = read_examples(DUEE / f"{split}.json", "duee", "event")
    windows = WindowEncoder(tokenizer, 512, 32).encode([e.text for e in examples])
    lost, extra = lost_and_extra(task, examples, oracle_predictions(task, examples, windows), windows)
    o = report.oracle
    with capsys.disabled():
        print(f"\nDuEE {split} oracle (bert-base-chinese vocab, max_length 512): {o.tp}/{o.n_gold} gold events "
              f"recovered (R {100 * o.recall:.2f}), {o.n_pred} predicted (P {100 * o.precision:.2f}, "
              f"F1 {100 * o.f1:.2f}); lost: {dict(Counter(lost))}; extra: {dict(Counter(extra))}")
    assert o.n_gold - o.tp == len(lost)
    assert set(lost) <= {"blank at a span edge"}  # a span starting or ending on a space no token can start/end on
    assert set(extra) <= {"part of a lost event", "span with two roles in one type"}
    assert o.recall >= 0.99


@pytest.mark.slow
@needs_duee
def test_short_scratch_training_on_duee_raises_argument_f1(tmp_path, capsys):
    """configs/duee.yaml, 1000 steps of 8 windows of <= 128 tokens (~14 epochs of the 500-line sample)."""
    from gplinker.commands.train import train
    from gplinker.config import load_config

    dev = write_jsonl(tmp_path / "dev.json", (DUEE / "dev.json").read_text(encoding="utf-8").splitlines()[:500])
    config = Path(__file__).resolve().parents[1] / "configs" / "duee.yaml"
    steps, every = 1000, 250
    cfg = load_config(config, [f"data.dev={dev}", f"train.output_dir={tmp_path / 'run'}", f"train.max_steps={steps}",
                               f"train.eval_every={every}", "data.max_length=128", "data.stride=32"])
    start = time.perf_counter()
    history = train(cfg).fit.history
    seconds = time.perf_counter() - start
    with capsys.disabled():
        print(f"\nDuEE train (500-line sample) -> first 500 dev lines, scratch encoder, {steps} steps of "
              f"{cfg.train.batch_size} windows (max_length 128) in {seconds:.0f} s:")
        for h in history:
            print(f"  step {h['step']}: duee F1 {100 * h['duee_f1']:.2f}, argument F1 {100 * h['argument_f1']:.2f}, "
                  f"trigger F1 {100 * h['trigger_f1']:.2f}, event F1 {100 * h['event_f1']:.2f}")
    assert [h["step"] for h in history] == [250, 500, 750, 1000]
    assert history[-1]["argument_f1"] > history[0]["argument_f1"]
    assert history[-1]["argument_f1"] > 0.0
    assert history[-1]["trigger_f1"] > 0.3  # triggers are lexical: learned long before the links


def test_schema_gaps_name_event_type_and_role():
    from gplinker.data.schema import schema_gaps

    lacking = Schema("event", event_roles=[p for p in SCHEMA.event_roles if p not in ((WIN, "赛事"), (MEET, T))])
    gaps = schema_gaps(lacking, SENTENCES.values())
    # 赛事 of the two 决赛/星辰杯 wins; the trigger of the three 会见 events
    assert gaps.labels == {f"{WIN}/赛事": 2, f"{MEET}/{T}": 3} and gaps.items == 5
    assert schema_gaps(SCHEMA, SENTENCES.values()).items == 0
