"""Events without a trigger: model.event.require_trigger false, model.event.min_arguments.

Decoding on hand-made cells, the DuEE reader, the records and submissions, the scores, the oracle
round trip, and a synthetic training run in which half the events have no trigger.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from gplinker.cli import app
from gplinker.data.duee import parse_duee
from gplinker.data.examples import Event, Example, Span
from gplinker.data.reading import read_examples
from gplinker.errors import ConfigError, DataError
from gplinker.metrics import event_scores
from gplinker.submission import submission_line
from gplinker.tasks import build_task
from gplinker.tasks.event import EventTask
from tests.conftest import TINY, set_args, write_jsonl
from tests.test_event import JOIN, MEET, SCHEMA, SENTENCES, WIN, T, all_links, char_window, event, make, oracle

WINNER, LOSER = Span(0, 2, "胜者"), Span(4, 6, "败者")  # 红队击败蓝队: 红队 tokens 1..2, 击败 3..4, 蓝队 5..6
TRIGGER = Span(2, 4, T)


def decode(task, arguments, linked_positions):
    return task.decode(char_window(6), {"arguments": arguments, **all_links(linked_positions)})


def test_a_linked_pair_without_a_trigger_is_an_event_only_when_triggers_are_not_required():
    cells = [(1, 1, 2, 0.7), (2, 5, 6, 4.0)]  # 胜者 and 败者, linked, no trigger cell
    assert decode(EventTask(SCHEMA), cells, [(1, 2), (5, 6)]) == {}  # the reference rule
    assert decode(EventTask(SCHEMA, require_trigger=False), cells, [(1, 2), (5, 6)]) == {
        Event(WIN, frozenset({WINNER, LOSER})): 0.7}
    assert decode(EventTask(SCHEMA, require_trigger=False, min_arguments=3), cells, [(1, 2), (5, 6)]) == {}


def test_min_arguments_counts_lone_arguments_and_events_with_a_trigger_are_unchanged():
    lone = [(1, 1, 2, 0.5)]  # one unlinked 胜者
    assert decode(EventTask(SCHEMA, require_trigger=False), lone, []) == {}
    assert decode(EventTask(SCHEMA, require_trigger=False, min_arguments=1), lone, []) == {
        Event(WIN, frozenset({WINNER})): 0.5}
    full = [(0, 3, 4, 2.5), (1, 1, 2, 0.7), (2, 5, 6, 4.0)]
    links = [(3, 4), (1, 2), (5, 6)]
    assert decode(EventTask(SCHEMA, require_trigger=False), full, links) == decode(EventTask(SCHEMA), full, links) == {
        Event(WIN, frozenset({TRIGGER, WINNER, LOSER})): 0.7}
    # a trigger alone (no links) is still an event, whatever min_arguments says
    alone = [(0, 3, 4, 1.0), (1, 1, 2, 1.0), (2, 5, 6, 1.0)]
    got = decode(EventTask(SCHEMA, require_trigger=False), alone, [(1, 2), (5, 6)])
    assert got == {Event(WIN, frozenset({TRIGGER})): 1.0, Event(WIN, frozenset({WINNER, LOSER})): 1.0}


def test_min_arguments_below_one_is_refused():
    with pytest.raises(ConfigError, match="min_arguments"):
        build_task("event", SCHEMA, require_trigger=False, min_arguments=0)


# ---------------------------------------------------------------- reading, writing, scoring

TEXT = "红队击败蓝队"


def line(*events):
    return {"id": "x", "text": TEXT, "event_list": list(events)}


NO_TRIGGER = {"event_type": WIN, "trigger": None, "arguments": [
    {"role": "胜者", "argument": "红队", "argument_start_index": 0},
    {"role": "败者", "argument": "蓝队", "argument_start_index": 4}]}


def test_the_duee_reader_takes_an_event_without_a_trigger():
    for event_line in (NO_TRIGGER, {k: v for k, v in NO_TRIGGER.items() if k != "trigger"},
                       {**NO_TRIGGER, "trigger_start_index": None}):
        example = parse_duee(line(event_line))
        assert example.events == (Event(WIN, frozenset({WINNER, LOSER})),) and example.events[0].trigger is None


def test_the_duee_reader_refuses_an_index_without_a_trigger_and_an_empty_event_naming_the_line(tmp_path):
    rows = [line(NO_TRIGGER), line({**NO_TRIGGER, "trigger_start_index": 2})]
    path = write_jsonl(tmp_path / "d.json", rows)
    with pytest.raises(DataError, match=r"d\.json:2: .*trigger_start_index 2 without a trigger"):
        read_examples(path, "duee", "event")
    write_jsonl(path, [line({"event_type": WIN, "trigger": None, "arguments": []})])
    with pytest.raises(DataError, match=r"d\.json:1: .*needs at least one argument"):
        read_examples(path, "duee", "event")


def test_records_and_submissions_write_a_null_trigger_that_reads_back():
    task = EventTask(SCHEMA, require_trigger=False)
    example = parse_duee(line(NO_TRIGGER))
    prediction = {example.events[0]: 1.0}
    record = task.record(example, prediction)
    assert record["event_list"][0]["trigger"] is None and record["event_list"][0]["trigger_start_index"] is None
    assert parse_duee(record).events == example.events
    submission = submission_line("duee", "x", TEXT, prediction)
    assert submission["event_list"] == [{"event_type": WIN, "arguments": [{"role": "胜者", "argument": "红队"},
                                                                          {"role": "败者", "argument": "蓝队"}]}]


def test_scores_count_events_without_a_trigger_and_no_trigger_for_them():
    with_trigger = Event(WIN, frozenset({TRIGGER, WINNER}))
    without = Event(WIN, frozenset({WINNER, LOSER}))
    perfect = event_scores([TEXT], [[with_trigger, without]], [[with_trigger, without]])
    assert perfect.main == 1.0 and all(perfect.metrics[k] == 1.0 for k in ("event_f1", "argument_f1", "trigger_f1"))
    missed = event_scores([TEXT], [[with_trigger, without]], [[with_trigger]])
    assert missed.metrics["event_recall"] == 0.5 and missed.metrics["trigger_f1"] == 1.0
    assert missed.metrics["argument_recall"] == 0.5  # a set of (type, role, text, start): 胜者 红队 once, 败者 蓝队


# ---------------------------------------------------------------- the oracle and a training run


def half_without_triggers() -> list[Example]:
    """The synthetic sentences of tests/test_event.py, the trigger of every second event removed."""
    out, k = [], 0
    for example in SENTENCES.values():
        events = []
        for e in example.events:
            events.append(Event(e.type, frozenset(a for a in e.arguments if a.label != T)) if k % 2 else e)
            k += 1
        out.append(Example(text=example.text, events=tuple(events)))
    out.append(make("李四会见了王五。", (MEET, ("李四", "会见主体"), ("王五", "会见对象"))))
    out.append(make("张三加盟月亮队。", (JOIN, ("张三", "加盟者"), ("月亮队", "所加盟组织"))))
    return out


def test_the_oracle_round_trip_needs_require_trigger_false_for_events_without_one():
    examples = half_without_triggers()
    assert sum(e.trigger is None for x in examples for e in x.events) >= 5
    relaxed, _ = oracle(EventTask(SCHEMA, require_trigger=False), examples)
    assert [set(p) for p in relaxed] == [set(x.events) for x in examples]
    strict, _ = oracle(EventTask(SCHEMA), examples)
    assert [set(p) for p in strict] == [{e for e in x.events if e.trigger is not None} for x in examples]
    assert event(TEXT, WIN, ("红队", "胜者")) != event(TEXT, WIN, ("红队", "胜者"), ("击败", T))


def duee_line(example: Example, ident: str) -> dict:
    events = []
    for e in example.events:
        trigger = e.trigger
        events.append({
            "event_type": e.type, "trigger": None if trigger is None else trigger.text_in(example.text),
            "trigger_start_index": None if trigger is None else trigger.start,
            "arguments": [{"role": a.label, "argument": a.text_in(example.text), "argument_start_index": a.start}
                          for a in sorted(e.arguments) if a.label != T]})
    return {"id": ident, "text": example.text, "event_list": events}


def test_a_short_run_where_half_the_events_have_no_trigger_learns_them(tmp_path):
    examples = half_without_triggers()
    data = write_jsonl(tmp_path / "train.json", [duee_line(e, f"s{k}") for k, e in enumerate(examples)])
    schema = write_jsonl(tmp_path / "schema.json", [
        {"event_type": etype, "role_list": [{"role": r} for t, r in SCHEMA.event_roles if t == etype and r != T]}
        for etype in SCHEMA.event_types()])
    config = write_jsonl(tmp_path / "duee.yaml", ["task: event", "data:", "  format: duee"])
    out = tmp_path / "run"
    sets = TINY + [f"data.train={data}", f"data.dev={data}", f"data.schema={schema}", f"train.output_dir={out}",
                   "model.event.require_trigger=false", "train.max_steps=300", "train.eval_every=100",
                   "model.scratch.dropout=0.0", "model.max_span_length=none"]
    result = CliRunner().invoke(app, ["train", str(config), *set_args(sets)])
    assert result.exit_code == 0, result.output
    section = json.loads((out / "best" / "config.json").read_text(encoding="utf-8"))["gplinker"]
    assert section["event"] == {"require_trigger": False, "min_arguments": 2}
    predictions = tmp_path / "p.json"
    inputs = write_jsonl(tmp_path / "in.json", [{"id": f"s{k}", "text": e.text} for k, e in enumerate(examples)])
    result = CliRunner().invoke(app, ["predict", str(out / "best"), str(inputs), "-o", str(predictions)])
    assert result.exit_code == 0, result.output
    predicted = [parse_duee(json.loads(x)) for x in predictions.read_text(encoding="utf-8").splitlines()]
    gold_without = {(k, e) for k, x in enumerate(examples) for e in x.events if e.trigger is None}
    found = {(k, e) for k, x in enumerate(predicted) for e in x.events if e.trigger is None}
    assert len(found & gold_without) >= 0.8 * len(gold_without), (found, gold_without)
    scores = event_scores([x.text for x in examples], [x.events for x in examples], [x.events for x in predicted])
    assert scores.metrics["event_f1"] >= 0.8, scores.metrics
