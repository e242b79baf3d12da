"""The Python API: Pipeline gives predict's records, for lists and single texts, long texts through windows."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from gplinker import Pipeline
from gplinker.commands.predict import predict_lines
from gplinker.config import ScratchConfig
from gplinker.data.examples import Span
from gplinker.data.schema import Schema
from gplinker.modeling.encoders import scratch_encoder, scratch_tokenizer
from gplinker.modeling.model import GPLinkerModel
from gplinker.predict import Predictor
from gplinker.tasks.ner import NerTask
from tests.conftest import NER_SENTENCES

TEXTS = [t for t, _ in NER_SENTENCES]
LONG = "".join(TEXTS) * 3  # ≈ 200 characters: many 32-token windows
MAX_LENGTH, STRIDE = 32, 8


def build_model_dir(directory: Path, texts: list[str] = TEXTS + [LONG], seed: int = 0) -> Path:
    """A tiny random-weight NER model dir whose threshold makes ~3% of the live cells positive.

    The threshold sits in the middle of the widest gap between neighbouring logits around the
    97th percentile, so runtimes that differ in the last bits decode the same cells.
    """
    torch.manual_seed(seed)
    tokenizer = scratch_tokenizer(texts)
    encoder = scratch_encoder(ScratchConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64,
                                            max_position=64, dropout=0.0), len(tokenizer))
    task = NerTask(Schema(task="ner", entity_types=["loc", "org", "person"]))
    model = GPLinkerModel(encoder, task.heads(), "egp", 16).eval()
    section = {"task": "ner", "schema": task.schema.to_dict(), "format": "spans", "max_length": MAX_LENGTH,
               "stride": STRIDE, "threshold": 0.0, "char_level": False}
    predictor = Predictor(model=model, tokenizer=tokenizer, task=task, max_length=MAX_LENGTH, stride=STRIDE)
    windows = predictor.encoder.encode(texts)
    live = []
    with torch.inference_mode():
        for w in windows:
            x = predictor.logits({"input_ids": torch.tensor([w.input_ids]),
                                  "attention_mask": torch.ones(1, len(w), dtype=torch.long)})["entities"]
            live.append(x[x > -1e11])
    values = torch.cat(live).sort().values
    k = int(0.97 * len(values))
    window = values[k - 20 : k + 20]
    gaps = window[1:] - window[:-1]
    g = int(gaps.argmax())
    section["threshold"] = float((window[g] + window[g + 1]) / 2)
    model.save(directory, section)
    tokenizer.save_pretrained(str(directory))
    return directory


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return build_model_dir(tmp_path_factory.mktemp("pipeline") / "model")


def reference_spans(model_dir: Path, text: str) -> dict[Span, float]:
    """Plain reference: each window alone through the model, every cell above the threshold by loops, union by max."""
    p = Predictor.from_pretrained(model_dir, device="cpu", runtime="torch")
    found: dict[Span, float] = {}
    for w in p.encoder.encode([text]):
        with torch.inference_mode():
            x = p.logits({"input_ids": torch.tensor([w.input_ids]),
                          "attention_mask": torch.ones(1, len(w), dtype=torch.long)})["entities"][0].tolist()
        for c, rows in enumerate(x):  # (C, L, L) as nested lists
            for i, row in enumerate(rows):
                for j, logit in enumerate(row):
                    chars = w.char_span(i, j)
                    if logit > p.threshold and chars is not None:
                        span = Span(chars[0], chars[1], p.task.types[c])
                        found[span] = max(found.get(span, -1e30), logit)
    return found


def test_pipeline_returns_the_records_of_predict_lines(model_dir):
    lines = [json.dumps({"text": t}, ensure_ascii=False) for t in TEXTS + [LONG]]
    expected: list[dict] = []
    predict_lines(Predictor.from_pretrained(model_dir, device="cpu"), lines, lambda s: expected.append(json.loads(s)))
    nlp = Pipeline.from_pretrained(model_dir, device="cpu")
    records = nlp(TEXTS + [LONG])
    assert records == expected
    assert sum(len(r["entities"]) for r in records) > 10  # the threshold makes the random model predict
    with_ids = nlp([{"id": 7, "text": TEXTS[0]}, {"text": TEXTS[1]}])
    assert with_ids[0] == {"id": 7, **expected[0]} and with_ids[1] == expected[1]  # the id keeps its JSON type
    assert list(nlp.stream(iter(TEXTS[:2]))) == expected[:2]


def test_single_string_gives_one_record(model_dir):
    nlp = Pipeline.from_pretrained(model_dir, device="cpu")
    record = nlp(TEXTS[2])
    assert isinstance(record, dict) and record == nlp([TEXTS[2]])[0]
    assert record["text"] == TEXTS[2]
    assert nlp("") == {"text": "", "entities": []}


def test_long_text_goes_through_windows_and_matches_the_plain_reference(model_dir):
    nlp = Pipeline.from_pretrained(model_dir, device="cpu", batch_size=3, chunk_size=2)
    record = nlp([TEXTS[0], LONG, TEXTS[1]])[1]
    got = {(e["start"], e["end"], e["type"]): e["score"] for e in record["entities"]}
    reference = reference_spans(model_dir, LONG)
    assert set(got) == {(s.start, s.end, s.label) for s in reference}
    for span, logit in reference.items():
        assert got[span.start, span.end, span.label] == pytest.approx(1 / (1 + math.exp(-logit)), abs=1e-3)
    assert all(LONG[e["start"] : e["end"]] == e["text"] for e in record["entities"])
    assert max(e["end"] for e in record["entities"]) > len(LONG) // 2  # later windows are read too


def test_threshold_override_and_bad_inputs(model_dir):
    strict = Pipeline.from_pretrained(model_dir, device="cpu", threshold=1e9)
    assert strict(TEXTS)[0]["entities"] == []
    with pytest.raises(TypeError):
        strict([3])
    with pytest.raises(ValueError, match="missing field 'text'"):
        strict({"txt": "x"})
