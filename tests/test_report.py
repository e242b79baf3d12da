"""`gplinker eval --report`: one self-contained HTML file with the tables, the type confusion, the run's curves and
the first errors (false positives and misses marked) as records the page's script draws.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gplinker.cli import app
from gplinker.commands.train import train
from gplinker.config import load_config
from gplinker.data.examples import TRIGGER_ROLE, Event, Example, Relation, Span
from gplinker.data.schema import Schema
from gplinker.report.confusion import type_confusion
from gplinker.report.curves import line_chart, read_train_log
from gplinker.report.marked_records import marked_record
from gplinker.tasks.event import EventTask
from gplinker.tasks.ner import NerTask
from gplinker.tasks.relation import RelationTask
from tests.conftest import NER_SENTENCES, spans_record, tiny_overrides, write_jsonl
from tests.scratch_models import random_model_dir

NER = NerTask(Schema(task="ner", entity_types=["loc", "org", "person"]))


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("report")
    rows = [spans_record(t, e) for t, e in NER_SENTENCES]
    data = write_jsonl(tmp / "train.jsonl", rows * 4)
    dev = write_jsonl(tmp / "dev.jsonl", rows)
    train(load_config(None, tiny_overrides(data, dev, tmp / "run", "train.max_steps=6", "train.eval_every=3")))
    return {"best": tmp / "run" / "best", "dev": dev, "log": tmp / "run" / "train_log.jsonl"}


def embedded_records(page: str) -> list[dict]:
    found = re.search(r'<script type="application/json" id="error-records">(.*?)</script>', page, flags=re.S)
    assert found, "the report embeds its error records"
    assert "<" not in found.group(1)  # a text holding "</script>" cannot end the script early
    return json.loads(found.group(1))


def test_eval_report_holds_tables_curves_and_the_errors_of_the_errors_file(run, tmp_path):
    report, errors, metrics = tmp_path / "report.html", tmp_path / "errors.jsonl", tmp_path / "metrics.json"
    result = CliRunner().invoke(app, ["eval", str(run["best"]), str(run["dev"]), "-o", str(metrics),
                                      "--errors", str(errors), "--report", str(report)])
    assert result.exit_code == 0, result.output
    assert f"report written to {report}" in " ".join(result.output.split())
    page = report.read_text(encoding="utf-8")
    scores = json.loads(metrics.read_text(encoding="utf-8"))
    for label, prf in scores["per_label"].items():
        assert f"<td>{label}</td>" in page and f"<td class=num>{prf['n_gold']}</td>" in page
    assert page.count('<svg class="curve"') == 3  # loss, dev score, learning rate
    assert "training loss" in page and "dev score" in page and "learning rate" in page
    assert not re.search(r'<link|src="|href="http|@import', page)  # self-contained: nothing fetched
    assert "const GPL" in page  # the page's renderer, inlined

    expected = [json.loads(line) for line in errors.read_text(encoding="utf-8").splitlines()]
    drawn = embedded_records(page)
    assert expected  # six steps leave errors to draw
    assert [r["source"] for r in drawn] == [e["source"] for e in expected]
    for record, error in zip(drawn, expected):
        marks = Counter(entity.get("mark") for entity in record["entities"])
        assert marks["fp"] == len(error["false_positives"]) and marks["miss"] == len(error["misses"])
        assert all("score" not in e for e in record["entities"] if e.get("mark") == "miss")
        assert all(record["text"][e["start"] : e["end"]] == e["text"] for e in record["entities"])


def test_a_model_dir_from_no_run_gets_a_report_without_curves(tmp_path):
    model = random_model_dir(tmp_path / "model", "ner")
    dev = write_jsonl(tmp_path / "dev.jsonl", [spans_record(t, e) for t, e in NER_SENTENCES[:3]])
    result = CliRunner().invoke(app, ["eval", str(model), str(dev), "--report", str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "did not come from a run" in page and '<svg class="curve"' not in page


def test_train_log_gives_loss_lr_and_dev_score_per_step(run):
    train_lines, eval_lines = read_train_log(run["log"])
    assert [e["step"] for e in train_lines] == [1, 2, 3, 4, 5, 6]  # train.log_every=1
    assert [e["step"] for e in eval_lines] == [3, 6] and all("score" in e for e in eval_lines)
    chart = line_chart("loss", [(1, 2.0), (2, 1.0), (3, 0.5)])
    assert chart.count("<circle") == 3 and ">2<" in chart and ">0.5<" in chart  # the value range on y


def test_type_confusion_counts_items_found_in_a_gold_place_with_another_label():
    text = "张伟在北京大学读书。"
    gold = Example(text=text, spans=(Span(0, 2, "person"), Span(3, 7, "org"), Span(3, 5, "loc")))
    prediction = {Span(0, 2, "org"): 1.0, Span(3, 7, "loc"): 1.0, Span(3, 5, "loc"): 1.0, Span(8, 9, "loc"): 1.0}
    assert type_confusion(NER, [gold], [prediction]) == Counter({("person", "org"): 1, ("org", "loc"): 1})

    schema = Schema(task="relation", predicates=["出生地", "祖籍"])
    relation = RelationTask(schema)
    born = Relation(Span(0, 2, ""), "出生地", (("@value", Span(3, 5, "")),))
    origin = Relation(Span(0, 2, ""), "祖籍", (("@value", Span(3, 5, "")),))
    assert type_confusion(relation, [Example(text=text, relations=(born,))], [{origin: 1.0}]) == \
        Counter({("出生地", "祖籍"): 1})

    events = EventTask(Schema(task="event", event_roles=[("出行", TRIGGER_ROLE), ("任职", TRIGGER_ROLE)]))
    trip = Event("出行", frozenset({Span(8, 10, TRIGGER_ROLE)}))
    job = Event("任职", frozenset({Span(8, 10, TRIGGER_ROLE)}))
    assert type_confusion(events, [Example(text=text, events=(trip,))], [{job: 1.0}]) == Counter({("出行", "任职"): 1})


def test_marked_record_marks_false_positives_and_misses_and_keeps_correct_items_plain():
    text = "李娜去了上海。"
    example = Example(text=text, spans=(Span(0, 2, "person"), Span(4, 6, "loc")), source="dev.jsonl", line=3)
    record = marked_record(NER, example, {Span(0, 2, "person"): 2.0, Span(4, 6, "org"): 0.0})
    assert record["source"] == "dev.jsonl:3" and record["text"] == text
    assert [(e["type"], e["start"], e.get("mark")) for e in record["entities"]] == [
        ("person", 0, None), ("loc", 4, "miss"), ("org", 4, "fp")]
    assert record["entities"][0]["score"] == pytest.approx(0.8808, abs=1e-4)  # sigmoid(2), as predict writes
    assert "score" not in record["entities"][1]


def test_a_text_with_markup_stays_text_in_the_report(tmp_path):
    from gplinker.commands.evaluate import EvalResult
    from gplinker.data.formats import ReadReport
    from gplinker.report.html import render_report

    text = "</script><b>张伟</b><!-- 在北京"
    example = Example(text=text, spans=(Span(text.index("张伟"), text.index("张伟") + 2, "person"),))
    predictions = [{Span(text.index("北京"), text.index("北京") + 2, "loc"): 1.0}]
    result = EvalResult(NER, NER.score([example], predictions), ReadReport("x.jsonl"), [example], predictions)
    page, drawn = render_report(result, tmp_path, "x.jsonl")
    assert drawn == 1 and page.count("</script>") == 2  # the inlined renderer's and nothing else
    assert embedded_records(page)[0]["text"] == text
    assert "<b>" not in page.split('id="error-records">')[0]
