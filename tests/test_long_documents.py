"""Documents with a model trained on sentences: offsets stay exact and no span is longer than the recorded limit.

A tiny model is trained for a few steps on ~100 short sentences with the default settings
(model.max_span_length auto), then predicts on documents made by joining sentences with no
separator: each is several training windows long, so it goes through sliding windows. Quality is
not the point (scripts/bench_long.py measures it); offsets and the span limit are.
"""

from __future__ import annotations

import json

import pytest

from gplinker.commands.train import train
from gplinker.config import load_config
from gplinker.data.examples import Example
from gplinker.predict import Predictor
from tests.conftest import NER_SENTENCES, spans_record, tiny_overrides, write_jsonl

SENTENCES = [text for text, _ in NER_SENTENCES]
DOCUMENTS = ["".join(SENTENCES), "".join(reversed(SENTENCES)) * 2, "".join(SENTENCES[3:] + SENTENCES[:3]) * 3]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("long_documents")
    rows = [spans_record(t, e) for t, e in NER_SENTENCES] * 12  # 96 training sentences
    data = write_jsonl(tmp / "train.jsonl", rows)
    dev = write_jsonl(tmp / "dev.jsonl", rows[:8])
    train(load_config(None, tiny_overrides(data, dev, tmp / "run", "train.max_steps=4")))
    return tmp / "run" / "best"


def recorded_limit(model_dir) -> int:
    section = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))["gplinker"]
    limit = section["limits"]["heads"]["entities"]["max_span"]
    longest_gold = max(len(surface) for _, entities in NER_SENTENCES for surface, _ in entities)
    assert limit is not None and limit >= longest_gold  # auto: a limit learned from the training spans
    assert all(len(d) > section["max_length"] for d in DOCUMENTS)  # every document needs several windows
    return int(limit)


def token_length(tokenizer, text: str, start: int, end: int) -> int:
    """Tokens of text[start:end], tokenized as the whole text is (no special tokens)."""
    offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    return sum(1 for s, e in offsets if start <= s and e <= end and s < e)


def check_records(records: list[dict], tokenizer, limit: int) -> int:
    """Every entity's offsets lie in its document and give its text, and it has at most `limit` tokens."""
    longest = 0
    for document, record in zip(DOCUMENTS, records):
        assert record["text"] == document
        for entity in record["entities"]:
            start, end = entity["start"], entity["end"]
            assert 0 <= start < end <= len(document), entity
            assert document[start:end] == entity["text"], entity
            tokens = token_length(tokenizer, document, start, end)
            assert 1 <= tokens <= limit, (entity, limit)
            longest = max(longest, tokens)
    return longest


def test_document_predictions_through_gplinker_predict_keep_their_offsets_and_the_limit(model_dir, tmp_path):
    from typer.testing import CliRunner

    from gplinker.cli import app

    limit = recorded_limit(model_dir)
    source = write_jsonl(tmp_path / "docs.jsonl", [{"id": f"doc-{k}", "text": d} for k, d in enumerate(DOCUMENTS)])
    output = tmp_path / "out.jsonl"
    result = CliRunner().invoke(app, ["predict", str(model_dir), str(source), "-o", str(output)])
    assert result.exit_code == 0, result.output
    records = [json.loads(x) for x in output.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in records] == [f"doc-{k}" for k in range(len(DOCUMENTS))]
    check_records(records, Predictor.from_pretrained(model_dir, device="cpu").tokenizer, limit)


def test_with_every_cell_above_the_threshold_spans_reach_the_limit_and_never_pass_it(model_dir):
    """A threshold below every real logit makes each unmasked cell a prediction: only the mask keeps spans short."""
    limit = recorded_limit(model_dir)
    predictor = Predictor.from_pretrained(model_dir, device="cpu", threshold=-1e6)
    predictions = predictor.predict([Example(text=d) for d in DOCUMENTS])
    records = [predictor.task.record(Example(text=d), p) for d, p in zip(DOCUMENTS, predictions)]
    assert all(r["entities"] for r in records)
    assert check_records(records, predictor.tokenizer, limit) == limit


def test_with_every_cell_above_the_threshold_no_span_passes_its_label_limit(model_dir):
    """The per-label decoding limits (gplinker.limits.heads.entities.channels) hold too, person's among them."""
    section = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))["gplinker"]
    head = section["limits"]["heads"]["entities"]
    predictor = Predictor.from_pretrained(model_dir, device="cpu", threshold=-1e6)
    limits = {t: c if c is not None else head["max_span"] for t, c in zip(predictor.task.types, head["channels"])}
    assert any(c is not None for c in head["channels"])  # person has >= LABEL_MIN_SPANS training spans
    for document, prediction in zip(DOCUMENTS, predictor.predict([Example(text=d) for d in DOCUMENTS])):
        for span in prediction:
            assert token_length(predictor.tokenizer, document, span.start, span.end) <= limits[span.label], span
