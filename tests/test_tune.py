"""`gplinker tune`: per-channel thresholds searched on dev, stored in the model dir, used by eval/predict/serve.

The search is checked on hand-made logits (the thresholds it finds, applied by `cells_above` as
predict applies them, give back the score it reports, never below the one it started from), and
end to end on a random-weight model dir (tests/scratch_models.py).
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from typer.testing import CliRunner

from gplinker.cli import app
from gplinker.commands.tune import GRID, per_channel, search_thresholds
from gplinker.data.encoding import SPECIAL, Window
from gplinker.data.examples import Example, Span
from gplinker.data.schema import Schema
from gplinker.predict import Predictor, cells_above
from gplinker.tasks.ner import NerTask
from tests.conftest import NER_SENTENCES, spans_record, write_jsonl
from tests.scratch_models import random_model_dir

TYPES = ["loc", "org", "person"]
TEXT = "abcdefghij"  # one window: [CLS] a..j [SEP]; token k + 1 is character k


def one_window(example_index: int) -> Window:
    return Window(example_index, [0] * (len(TEXT) + 2), [SPECIAL] + [(k, k + 1) for k in range(len(TEXT))] + [SPECIAL])


def score_at(task, windows, logits, examples, thresholds) -> float:
    """The dev score predict gives at `thresholds`: cells_above per window, decode, merge, score."""
    predictions = []
    for w, x in zip(windows, logits):
        cells = cells_above({"entities": x}, thresholds, 1)[0]
        predictions.append(task.merge([task.decode(w, cells)]))
    return task.score(examples, predictions).main


def tune_on(task, windows, logits, examples):
    lowest = min(GRID)
    cells = [cells_above({"entities": x}, lowest, 1)[0] for x in logits]
    return search_thresholds(task, windows, cells, examples, per_channel(0.0, task))


def test_a_shifted_channel_gets_its_threshold_and_the_score_rises_to_what_predict_then_gives():
    # loc: its gold span scores -0.7 (missed at 0); person: a false span at 0.3 (kept at 0); org: all right
    task = NerTask(Schema(task="ner", entity_types=TYPES))
    x = torch.full((1, 3, 12, 12), -8.0)
    x[0, 0, 1, 2] = -0.7  # loc "ab" (tokens 1..2 = chars 0..1)
    x[0, 1, 4, 6] = 5.0  # org "def"
    x[0, 2, 8, 9] = 3.0  # person "hi"
    x[0, 2, 7, 7] = 0.3  # person "g": false
    gold = Example(text=TEXT, spans=[Span(0, 2, "loc"), Span(3, 6, "org"), Span(7, 9, "person")])
    result = tune_on(task, [one_window(0)], [x], [gold])
    assert result.before == pytest.approx(2 / 3)  # 2 of 3 gold found, 2 of 3 predicted right
    assert result.after == 1.0
    loc, org, person = result.thresholds["entities"]
    assert loc < -0.7 < 0.3 < person < 3.0 and org == 0.0  # org: no value scores higher, so 0 stays
    assert score_at(task, [one_window(0)], [x], [gold], result.thresholds) == result.after
    assert score_at(task, [one_window(0)], [x], [gold], 0.0) == result.before
    assert [(head, label) for head, label, _, _ in result.changed()] == [("entities", "loc"), ("entities", "person")]


@pytest.mark.parametrize("seed", range(6))
def test_tuning_never_lowers_the_dev_score_it_is_tuned_on(seed):
    g = torch.Generator().manual_seed(seed)
    task = NerTask(Schema(task="ner", entity_types=TYPES))
    windows, logits, examples = [], [], []
    for e in range(5):
        x = torch.randn(1, 3, 12, 12, generator=g) * 2 - 3  # a few cells above each grid value
        spans = sorted({Span(int(s), int(s) + 1 + int(n), TYPES[int(t)])
                        for s, n, t in torch.randint(0, 3, (4, 3), generator=g).tolist()})
        for span in spans:  # gold spans score higher on average, not always above 0
            x[0, TYPES.index(span.label), span.start + 1, span.end] += 2.5
        windows.append(one_window(e))
        logits.append(x)
        examples.append(Example(text=TEXT, spans=spans))
    result = tune_on(task, windows, logits, examples)
    assert result.after >= result.before
    assert result.before == score_at(task, windows, logits, examples, 0.0)
    assert result.after == score_at(task, windows, logits, examples, result.thresholds)
    assert all(t in GRID for t in result.thresholds["entities"])


def test_a_window_without_cells_of_a_channel_keeps_its_threshold_and_costs_no_scoring():
    task = NerTask(Schema(task="ner", entity_types=TYPES))
    x = torch.full((1, 3, 12, 12), -8.0)
    x[0, 1, 4, 6] = 5.0
    gold = Example(text=TEXT, spans=[Span(3, 6, "org")])
    result = tune_on(task, [one_window(0)], [x], [gold])
    assert result.thresholds == {"entities": [0.0, 0.0, 0.0]} and result.after == result.before == 1.0
    assert result.trials == 1 + (len(GRID) - 1)  # the start, then org's other grid values only


# ---------------------------------------------------------------- the CLI and the model dir


def dev_file(tmp_path):
    return write_jsonl(tmp_path / "dev.jsonl", [spans_record(t, e) for t, e in NER_SENTENCES])


def eval_main(model_dir, dev, tmp_path, *extra) -> float:
    out = tmp_path / "m.json"
    result = CliRunner().invoke(app, ["eval", str(model_dir), str(dev), "-o", str(out), "--device", "cpu", *extra])
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text(encoding="utf-8"))["main"]


def test_tune_writes_thresholds_that_eval_uses_and_an_explicit_threshold_still_wins(tmp_path):
    model_dir = random_model_dir(tmp_path / "m", "ner")
    untouched = shutil.copytree(model_dir, tmp_path / "untouched")
    dev = dev_file(tmp_path)
    config_before = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    scalar = config_before["gplinker"]["threshold"]
    result = CliRunner().invoke(app, ["tune", str(model_dir), str(dev), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    tuned, tuning = config["gplinker"].pop("thresholds"), config["gplinker"].pop("tuning")
    assert config == config_before  # nothing else in config.json changed
    assert set(tuned) == {"entities"} and len(tuned["entities"]) == len(config["gplinker"]["schema"]["entity_types"])
    assert tuning["after"] >= tuning["before"] and tuning["examples"] == len(NER_SENTENCES)
    assert f"{100 * tuning['before']:.2f} before, {100 * tuning['after']:.2f} after" in " ".join(result.output.split())
    assert eval_main(model_dir, dev, tmp_path) == pytest.approx(tuning["after"])
    assert eval_main(untouched, dev, tmp_path) == pytest.approx(tuning["before"])
    assert eval_main(model_dir, dev, tmp_path, "--threshold", repr(scalar)) == pytest.approx(tuning["before"])


def test_a_model_dir_without_thresholds_decodes_with_its_one_threshold(tmp_path):
    model_dir = random_model_dir(tmp_path / "m", "ner")
    scalar = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))["gplinker"]["threshold"]
    plain = Predictor.from_pretrained(model_dir, device="cpu")
    assert plain.threshold == scalar  # a float: cells_above's one-threshold path, as before per-channel thresholds
    texts = [Example(text=t) for t, _ in NER_SENTENCES]
    explicit = Predictor.from_pretrained(model_dir, device="cpu", threshold=scalar)
    assert plain.predict(texts) == explicit.predict(texts)


def test_dry_run_leaves_the_model_dir_alone(tmp_path):
    model_dir = random_model_dir(tmp_path / "m", "ner")
    before = (model_dir / "config.json").read_bytes()
    result = CliRunner().invoke(app, ["tune", str(model_dir), str(dev_file(tmp_path)), "--device", "cpu", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert (model_dir / "config.json").read_bytes() == before and "unchanged" in result.output


@pytest.mark.parametrize("bad", [{"entities": [0.0]}, {"nope": [0.0, 0.0, 0.0]}, {"entities": [0, "x", 1]},
                                 {"entities": [0.0, float("nan"), 0.0]}])
def test_bad_thresholds_in_config_json_are_refused_naming_the_file(tmp_path, bad):
    model_dir = random_model_dir(tmp_path / "m", "ner")
    path = model_dir / "config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config["gplinker"]["thresholds"] = bad
    path.write_text(json.dumps(config), encoding="utf-8")
    result = CliRunner().invoke(app, ["eval", str(model_dir), str(dev_file(tmp_path)), "--device", "cpu"])
    assert result.exit_code == 2
    assert "config.json:'thresholds" in "".join(result.output.split())  # rich wraps lines
    assert "thresholds" in result.output and "Traceback" not in result.output


def test_tune_refuses_a_file_without_gold_labels(tmp_path):
    model_dir = random_model_dir(tmp_path / "m", "ner")
    dev = write_jsonl(tmp_path / "plain.jsonl", [{"text": t} for t, _ in NER_SENTENCES])
    result = CliRunner().invoke(app, ["tune", str(model_dir), str(dev), "--device", "cpu"])
    assert result.exit_code == 2 and "gold label" in result.output


def test_pipeline_and_so_serve_decode_with_the_tuned_thresholds(tmp_path):
    from gplinker.pipeline import Pipeline

    model_dir = random_model_dir(tmp_path / "m", "ner")
    path = model_dir / "config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config["gplinker"]["thresholds"] = {"entities": [1e9, -1e9, 1e9]}  # every span org, no loc or person
    path.write_text(json.dumps(config), encoding="utf-8")
    record = Pipeline.from_pretrained(model_dir, device="cpu")(NER_SENTENCES[0][0])
    assert record["entities"] and {e["type"] for e in record["entities"]} == {"org"}
    overridden = Pipeline.from_pretrained(model_dir, device="cpu", threshold=1e9)(NER_SENTENCES[0][0])
    assert overridden["entities"] == []


RELATION_DEV = [{"text": "张伟在北京大学读书。", "spo_list": [
    {"subject": "张伟", "subject_type": "人物", "predicate": "毕业院校", "object": {"@value": "北京大学"},
     "object_type": {"@value": "学校"}}]},
    {"text": "马超住在成都。", "spo_list": [
        {"subject": "马超", "subject_type": "人物", "predicate": "出生地", "object": {"@value": "成都"},
         "object_type": {"@value": "地点"}}]}]
EVENT_DEV = [{"id": "e1", "text": "李娜去了上海。", "event_list": [
    {"event_type": "出行", "trigger": "去", "trigger_start_index": 2, "arguments": [
        {"role": "出行者", "argument": "李娜", "argument_start_index": 0},
        {"role": "目的地", "argument": "上海", "argument_start_index": 4}]}]}]


@pytest.mark.parametrize(("task", "rows"), [("relation", RELATION_DEV), ("event", EVENT_DEV)])
def test_tuning_the_link_heads_of_relations_and_events_gives_what_eval_then_scores(tmp_path, task, rows):
    from gplinker.commands.tune import tune_dir

    model_dir = random_model_dir(tmp_path / "m", task)
    dev = write_jsonl(tmp_path / "dev.jsonl", rows)
    result = tune_dir(model_dir, dev, device="cpu")
    assert set(result.thresholds) == {h for h in result.labels} and len(result.labels) == 3
    assert result.after >= result.before
    assert eval_main(model_dir, dev, tmp_path) == pytest.approx(result.after)


def test_each_tasks_score_counts_sum_to_its_headline_score():
    from gplinker.data.reading import parser_for
    from gplinker.metrics import PRF
    from gplinker.tasks import build_task
    from tests.scratch_models import SCHEMAS

    ner = [parser_for("spans")(spans_record(t, e)) for t, e in NER_SENTENCES]
    relation = [parser_for("duie2")(r) for r in RELATION_DEV]
    event = [parser_for("duee")(r) for r in EVENT_DEV]
    for name, examples in (("ner", ner), ("relation", relation), ("event", event)):
        task = build_task(name, SCHEMAS[name])
        gold = [dict.fromkeys(task.gold(e), 1.0) for e in examples]
        # predictions: every second example loses its first gold item, and the first takes a wrong one
        wrong = dict.fromkeys(task.gold(examples[-1]), 1.0)
        predictions = [dict(list(g.items())[k % 2 :]) for k, g in enumerate(gold)]
        predictions[0] = {**predictions[0], **wrong}
        if name == "event":  # one example: predict its event with one argument cut to its first character
            (gold_event,) = task.gold(examples[0])
            a = max(gold_event.arguments, key=lambda s: s.end - s.start)
            cut = type(a)(a.start, a.start + 1, a.label)
            predictions = [{type(gold_event)(gold_event.type, gold_event.arguments - {a} | {cut}): 1.0}]
        expected = task.score(examples, predictions).main
        assert 0 < expected < 1
        assert sum((task.score_counts(e, p) for e, p in zip(examples, predictions)), PRF()).f1 == expected
