"""`gplinker train --init-from MODEL_DIR`: the encoder and every head channel whose label both schemas share.

The three checks the issue asks for: with a superset schema and 0 steps the old labels predict
the same spans as the old model, with the same scores up to float32 rounding; after a short run on
data with a new type the old types keep their dev F1 (within 2 points) while the new one is learned; a
mismatched encoder is refused with a message.
"""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from gplinker.cli import app
from gplinker.data.examples import Example
from gplinker.modeling.pointer import EfficientGlobalPointer, GlobalPointer
from gplinker.predict import Predictor
from tests.conftest import NER_SENTENCES, set_args, spans_record, tiny_overrides, write_jsonl

# A new entity type made of characters the old scratch vocabulary has (its tokenizer comes with the model dir);
# "activity" sorts before the old types, so every old channel moves to a new index.
ACTIVITY = {0: "读书", 2: "加入", 4: "任教", 5: "见面", 6: "毕业"}
EXTRA = [("李娜在上海读书。", [("李娜", "person"), ("上海", "loc"), ("读书", "activity")]),
         ("王芳在成都任教。", [("王芳", "person"), ("成都", "loc"), ("任教", "activity")])]
# every run decodes every span length (the span limits learned from training data would differ between runs)
SPANS = "model.max_span_length=none"
# The copied channels' scores match their sources' to the last few float32 ulps, not always bit for bit: the
# old and the new head's projections are matrix products of different output widths (2·3 vs 2·4 rows in
# q_dense), and a CPU's gemm kernel may block and sum them in a different order (an AMD EPYC does, an Intel
# Xeon did not). One ulp of float32 is 2^-23 ≈ 1.2e-7 relative; 1e-6 (relative, and absolute for logits near 0,
# which are of order 1) allows about eight and still fails a copy from the wrong channel or a missing bias,
# whose scores differ in the first or second digit.
FLOAT32_ROUNDING = 1e-6


def with_activity() -> list[tuple[str, list[tuple[str, str]]]]:
    rows = [(t, e + ([(ACTIVITY[k], "activity")] if k in ACTIVITY else [])) for k, (t, e) in enumerate(NER_SENTENCES)]
    return rows + EXTRA


def train(tmp_path, name: str, rows, *extra: str, init_from=None, dev=None):
    data = write_jsonl(tmp_path / f"{name}.jsonl", [spans_record(t, e) for t, e in rows])
    config = write_jsonl(tmp_path / "c.yaml", ["task: ner"])
    args = ["train", str(config), *set_args(tiny_overrides(data, dev, tmp_path / name, SPANS, *extra))]
    if init_from is not None:
        args += ["--init-from", str(init_from)]
    return CliRunner().invoke(app, args)


@pytest.fixture(scope="module")
def old_model(tmp_path_factory):
    """A tiny NER model (loc, org, person) trained until it fits NER_SENTENCES."""
    tmp = tmp_path_factory.mktemp("old")
    dev = write_jsonl(tmp / "dev.jsonl", [spans_record(t, e) for t, e in NER_SENTENCES])
    result = train(tmp, "old", NER_SENTENCES, "train.max_steps=150", "train.eval_every=50", dev=dev)
    assert result.exit_code == 0, result.output
    return tmp / "old" / "best"


def test_a_superset_schema_after_zero_steps_predicts_the_old_labels_as_the_old_model(old_model, tmp_path):
    result = train(tmp_path, "new", with_activity(), "train.epochs=0", init_from=old_model)
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "3 channel(s) kept their weights" in output and "entities:activity" in output and "dropped: none" in output
    new_dir = tmp_path / "new" / "last"
    assert json.loads((new_dir / "config.json").read_text())["gplinker"]["schema"]["entity_types"] == [
        "activity", "loc", "org", "person"]
    texts = [Example(text=t) for t, _ in with_activity()] + [Example(text="".join(t for t, _ in NER_SENTENCES))]
    old = Predictor.from_pretrained(old_model, device="cpu").predict(texts)
    new = Predictor.from_pretrained(new_dir, device="cpu").predict(texts)
    assert any(old)
    for before, after in zip(old, new):
        kept = {span: score for span, score in after.items() if span.label != "activity"}
        assert kept.keys() == before.keys()  # the very same spans, and scores equal up to float32 rounding (below)
        close = FLOAT32_ROUNDING
        assert kept == {span: pytest.approx(score, rel=close, abs=close) for span, score in before.items()}


def test_a_short_run_learns_a_new_type_and_keeps_the_old_ones(old_model, tmp_path):
    old_dev = write_jsonl(tmp_path / "old_dev.jsonl", [spans_record(t, e) for t, e in NER_SENTENCES])
    new_dev = write_jsonl(tmp_path / "new_dev.jsonl", [spans_record(t, e) for t, e in with_activity()])
    result = train(tmp_path, "new", with_activity(), "train.max_steps=60", "train.lr=2e-3", init_from=old_model)
    assert result.exit_code == 0, result.output

    def per_label(model_dir, dev):
        out = tmp_path / "m.json"
        run = CliRunner().invoke(app, ["eval", str(model_dir), str(dev), "-o", str(out), "--device", "cpu"])
        assert run.exit_code == 0, run.output
        return {label: prf["f1"] for label, prf in json.loads(out.read_text())["per_label"].items()}

    before, after = per_label(old_model, old_dev), per_label(tmp_path / "new" / "last", new_dev)
    for label in ("loc", "org", "person"):
        assert after[label] >= before[label] - 0.02, (label, before, after)
    assert after["activity"] >= 0.9, after


def test_dropped_labels_are_reported_and_the_kept_ones_still_match_by_label(old_model, tmp_path):
    rows = [(t, [(s, label) for s, label in e if label != "org"]) for t, e in with_activity()]
    result = train(tmp_path, "new", rows, "train.epochs=0", init_from=old_model)
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "2 channel(s) kept their weights" in output and "dropped: entities:org" in output
    texts = [Example(text=t) for t, _ in NER_SENTENCES]
    old = Predictor.from_pretrained(old_model, device="cpu").predict(texts)
    new = Predictor.from_pretrained(tmp_path / "new" / "last", device="cpu").predict(texts)
    for before, after in zip(old, new):
        assert {s: v for s, v in after.items() if s.label != "activity"} == {
            s: v for s, v in before.items() if s.label != "org"}


@pytest.mark.parametrize(("setting", "message"), [
    ("model.scratch.hidden_size=64", "model.scratch.hidden_size: config 64, model dir 32"),
    ("model.head_size=8", "model.head_size: config 8, model dir 16"),
    ("model.head=gp", "model.head: config 'gp', model dir 'egp'"),
])
def test_a_mismatched_encoder_is_refused_with_the_setting_named(old_model, tmp_path, setting, message):
    result = train(tmp_path, "new", with_activity(), "train.epochs=0", setting, init_from=old_model)
    assert result.exit_code == 2
    output = " ".join(result.output.split())
    assert message in output and "--init-from" in output and "Traceback" not in output


def test_init_from_another_task_or_with_resume_is_refused(old_model, tmp_path):
    data = write_jsonl(tmp_path / "r.jsonl", [{"text": "张伟出生于北京。", "spo_list": [
        {"subject": "张伟", "predicate": "出生地", "object": {"@value": "北京"}, "subject_type": "人物",
         "object_type": {"@value": "地点"}}]}])
    config = write_jsonl(tmp_path / "c.yaml", ["task: relation"])
    result = CliRunner().invoke(app, ["train", str(config), "--init-from", str(old_model),
                                      *set_args(tiny_overrides(data, None, tmp_path / "r", "train.epochs=0"))])
    assert result.exit_code == 2 and "a ner model" in " ".join(result.output.split())
    ner = write_jsonl(tmp_path / "n.jsonl", [spans_record(t, e) for t, e in NER_SENTENCES])
    config = write_jsonl(tmp_path / "c.yaml", ["task: ner"])
    result = CliRunner().invoke(app, ["train", str(config), "--init-from", str(old_model), "--resume",
                                      *set_args(tiny_overrides(ner, None, tmp_path / "n", "train.epochs=0"))])
    assert result.exit_code == 2 and "pass one of them" in " ".join(result.output.split())


@pytest.mark.parametrize("pointer", [EfficientGlobalPointer, GlobalPointer])
def test_copied_channels_score_as_the_channels_they_came_from(pointer):
    torch.manual_seed(0)
    old, new = pointer(16, 3, 8), pointer(16, 4, 8)
    new.copy_channels_from(old, [(0, 2), (3, 0)])
    hidden, mask = torch.randn(2, 5, 16), torch.ones(2, 5)
    a, b = old(hidden, mask).logits, new(hidden, mask).logits
    torch.testing.assert_close(b[:, 0], a[:, 2], rtol=FLOAT32_ROUNDING, atol=FLOAT32_ROUNDING)
    torch.testing.assert_close(b[:, 3], a[:, 0], rtol=FLOAT32_ROUNDING, atol=FLOAT32_ROUNDING)
    assert not torch.allclose(b[:, 1], a[:, 1])  # a fresh channel
