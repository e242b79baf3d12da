"""The page in a real browser: headless Chromium opens `gplinker serve`'s page with `?text=`, the page's script
runs the texts, and the DOM holds one mark per entity (nested ones nested), one arc per subject → object pair and
one card per event. Screenshots are saved beside the test's files. Skips when no Chromium is installed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
from html.parser import HTMLParser
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from typer.testing import CliRunner  # noqa: E402

from gplinker import Pipeline  # noqa: E402
from gplinker.cli import app  # noqa: E402
from tests.conftest import NER_SENTENCES, spans_record, write_jsonl  # noqa: E402
from tests.live_server import live_server  # noqa: E402
from tests.scratch_models import TEXTS, random_model_dir  # noqa: E402

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
BROWSER = next((b for b in map(shutil.which, BROWSERS) if b), None)
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no headless Chromium found (Debian: apt-get install chromium)")


class Elements(HTMLParser):
    """Every element of a page as (tag, attributes, classes of its ancestors' marks)."""

    VOID = {"meta", "link", "input", "br", "img", "hr", "circle", "path", "rect"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, dict]] = []
        self.found: list[tuple[str, dict, int]] = []  # tag, attributes, number of enclosing <mark>s

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.found.append((tag, attributes, sum(t == "mark" for t, _ in self.stack)))
        if tag not in self.VOID:
            self.stack.append((tag, attributes))

    def handle_startendtag(self, tag, attrs):
        self.found.append((tag, dict(attrs), sum(t == "mark" for t, _ in self.stack)))

    def handle_endtag(self, tag):
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def with_class(self, tag: str, cls: str) -> list[tuple[dict, int]]:
        return [(a, depth) for t, a, depth in self.found if t == tag and cls in (a.get("class") or "").split()]


def browse(url: str, screenshot: Path, done: str = "run") -> Elements:
    """The DOM after the page's script has run (virtual time waits for the fetch), and a screenshot."""
    common = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1000,1400",
              "--virtual-time-budget=15000"]
    dom = subprocess.run([*common, "--dump-dom", url], capture_output=True, text=True, timeout=180)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert f'data-done="{done}"' in dom.stdout, dom.stdout[-2000:]  # the script drew the records
    shot = subprocess.run([*common, f"--screenshot={screenshot}", url], capture_output=True, text=True, timeout=180)
    assert shot.returncode == 0 and screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", shot.stderr[-2000:]
    elements = Elements()
    elements.feed(dom.stdout)
    return elements


def nested_pairs(entities: list[dict]) -> int:
    """How many (outer, inner) pairs of entities there are, the inner strictly inside the outer."""
    spans = {(e["start"], e["end"]) for e in entities}
    return sum(1 for a in spans for b in spans if a != b and a[0] <= b[0] and b[1] <= a[1])


@pytest.mark.parametrize("task", ["ner", "relation", "event"])
def test_the_page_draws_the_servers_answer(task, tmp_path):
    model = random_model_dir(tmp_path / "model", task)
    texts = TEXTS[:5]
    records = Pipeline.from_pretrained(model, device="cpu")(texts)
    with live_server(model) as (url, _):
        query = urllib.parse.urlencode([("text", t) for t in texts])
        page = browse(f"{url}/?{query}", tmp_path / f"{task}.png")
    print(f"screenshot: {tmp_path / f'{task}.png'}")
    assert len(page.with_class("article", "record")) == len(texts)
    if task == "ner":
        entities = [e for r in records for e in r["entities"]]
        marks = page.with_class("mark", "entity")
        assert len(marks) == len(entities) > 0
        assert sorted(m["data-label"] for m, _ in marks) == sorted(e["type"] for e in entities)
        if nested_pairs(entities):
            assert any(depth > 0 for _, depth in marks)  # a nested entity is drawn inside its outer mark
        assert all(m["title"].startswith(m["data-label"] + " 0.") for m, _ in marks)  # label and score on hover
    elif task == "relation":
        spos = [s for r in records for s in r["spo_list"]]
        assert len(spos) > 0
        assert len(page.with_class("path", "arc")) == len(spos)  # one "@value" object each in this schema
        labels = [t for t, a, _ in page.found if t == "text" and "arc-label" in (a.get("class") or "")]
        assert len(labels) == len(spos)
        assert len([a for t, a, _ in page.found if t == "tr"]) == len(spos) + sum(1 for r in records if r["spo_list"])
    else:
        events = [e for r in records for e in r["event_list"]]
        assert len(events) > 0
        cards = page.with_class("div", "event-card")
        assert sorted(c["data-event-type"] for c, _ in cards) == sorted(e["event_type"] for e in events)
        assert len(page.with_class("mark", "trigger")) == sum(1 for e in events if e["trigger"] is not None)
        arguments = sum(len(e["arguments"]) for e in events)
        assert len(page.with_class("mark", "argument")) == arguments


def test_the_eval_report_draws_misses_and_false_positives_without_a_server(tmp_path):
    model = random_model_dir(tmp_path / "model", "ner")
    dev = write_jsonl(tmp_path / "dev.jsonl", [spans_record(t, e) for t, e in NER_SENTENCES])
    report, errors = tmp_path / "report.html", tmp_path / "errors.jsonl"
    result = CliRunner().invoke(app, ["eval", str(model), str(dev), "--report", str(report), "--errors", str(errors)])
    assert result.exit_code == 0, result.output
    expected = [json.loads(line) for line in errors.read_text(encoding="utf-8").splitlines()]
    page = browse(report.as_uri(), tmp_path / "report.png", done="report")
    print(f"screenshot: {tmp_path / 'report.png'}")

    def drawn(mark: str) -> int:
        return sum(1 for a, _ in page.with_class("mark", "entity") if mark in a["class"].split())

    assert len(page.with_class("article", "record")) == len(expected) > 0
    assert drawn("fp") == sum(len(e["false_positives"]) for e in expected) > 0
    assert drawn("miss") == sum(len(e["misses"]) for e in expected) > 0


def test_the_page_opened_from_disk_offers_the_file_input_and_disables_run(tmp_path):
    page_file = Path(__file__).resolve().parents[1] / "gplinker" / "serve" / "index.html"
    common = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=3000"]
    dom = subprocess.run([*common, "--dump-dom", page_file.as_uri()], capture_output=True, text=True, timeout=180)
    page = Elements()
    page.feed(dom.stdout)
    run = next(a for t, a, _ in page.found if t == "button" and a.get("id") == "run")
    assert "disabled" in run  # no server to run on: the script disabled Run
    assert any(t == "input" and a.get("type") == "file" for t, a, _ in page.found)
    assert "no server" in dom.stdout
