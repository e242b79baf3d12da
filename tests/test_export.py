"""ONNX export: one graph for encoder + heads, dynamic batch/length, parity with PyTorch, --runtime onnx."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from gplinker import Pipeline  # noqa: E402
from gplinker.cli import app  # noqa: E402
from gplinker.errors import ConfigError  # noqa: E402
from gplinker.export import logit_difference, traceable_logits  # noqa: E402
from gplinker.modeling.pointer import EfficientGlobalPointer, GlobalPointer  # noqa: E402
from gplinker.onnx_runtime import ONNX_FILE, OnnxLogits  # noqa: E402
from gplinker.predict import Predictor  # noqa: E402
from tests.conftest import write_jsonl  # noqa: E402
from tests.test_pipeline import LONG, TEXTS, build_model_dir  # noqa: E402

runner = CliRunner()


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict:
    """A tiny random model dir and its export (the export checks parity on TEXTS + LONG)."""
    tmp = tmp_path_factory.mktemp("export")
    model_dir = build_model_dir(tmp / "model")
    check = write_jsonl(tmp / "check.jsonl", [{"text": t} for t in TEXTS + [LONG]])
    out = tmp / "onnx"
    result = runner.invoke(app, ["export", str(model_dir), "--onnx", str(out), "--check", str(check)])
    assert result.exit_code == 0, result.output
    return {"model": model_dir, "onnx": out, "output": result.output, "tmp": tmp}


def test_export_writes_a_self_contained_dir_and_reports_parity(exported):
    out = exported["onnx"]
    assert {p.name for p in out.iterdir()} >= {ONNX_FILE, "config.json", "tokenizer.json"}
    assert not (out / "model.safetensors").exists()  # the graph holds the weights
    section = json.loads((out / "config.json").read_text())["gplinker"]
    assert section["onnx"]["outputs"] == ["entities"] and section["onnx"]["inputs"] == ["input_ids", "attention_mask"]
    assert section["onnx"]["max_abs_diff"] < 1e-4
    assert section["threshold"] == json.loads((exported["model"] / "config.json").read_text())["gplinker"]["threshold"]
    text = " ".join(exported["output"].split())  # rich wraps long lines
    assert "max |logit difference|" in text and "decoded items differ on 0 text(s)" in text


@pytest.mark.parametrize("batch,length,padded", [(1, 5, 0), (3, 32, 7), (5, 19, 12)])
def test_onnx_logits_equal_torch_logits_for_any_batch_and_length(exported, batch, length, padded):
    torch.manual_seed(batch * 100 + length)
    reference = Predictor.from_pretrained(exported["model"], device="cpu", runtime="torch")
    ids = torch.randint(5, len(reference.tokenizer), (batch, length))
    mask = torch.ones(batch, length, dtype=torch.long)
    mask[-1, length - padded :] = 0
    ids[mask == 0] = reference.pad_id
    with torch.inference_mode():
        a = reference.logits({"input_ids": ids, "attention_mask": mask})
    b = OnnxLogits.load(exported["onnx"])(ids, mask)
    assert b["entities"].shape == (batch, 3, length, length)
    live = a["entities"] > -1e11
    assert torch.equal(live, b["entities"] > -1e11)  # padding and i > j masked alike
    assert (a["entities"] - b["entities"]).abs()[live].max() < 1e-4


def test_predict_runtime_onnx_writes_the_records_of_torch(exported):
    lines = [{"id": k, "text": t} for k, t in enumerate(TEXTS + [LONG])]
    src = write_jsonl(exported["tmp"] / "in.jsonl", lines)
    outputs = {}
    for runtime, directory in (("torch", exported["model"]), ("onnx", exported["onnx"]), ("auto", exported["onnx"])):
        out = exported["tmp"] / f"{runtime}.jsonl"
        result = runner.invoke(app, ["predict", str(directory), str(src), "-o", str(out), "--runtime", runtime])
        assert result.exit_code == 0, result.output
        outputs[runtime] = [json.loads(x) for x in out.read_text().splitlines()]
    assert sum(len(r["entities"]) for r in outputs["torch"]) > 10
    for runtime in ("onnx", "auto"):
        for t, o in zip(outputs["torch"], outputs[runtime]):
            strip = lambda r: [{k: v for k, v in e.items() if k != "score"} for e in r["entities"]]  # noqa: E731
            assert strip(t) == strip(o) and t["id"] == o["id"]
            assert all(abs(x["score"] - y["score"]) <= 1e-4 for x, y in zip(t["entities"], o["entities"]))


def test_pipeline_runtime_onnx_matches_torch(exported):
    a = Pipeline.from_pretrained(exported["model"], device="cpu")(TEXTS + [LONG])
    b = Pipeline.from_pretrained(exported["onnx"], runtime="onnx")(TEXTS + [LONG])
    spans = lambda records: [{(e["start"], e["end"], e["type"]) for e in r["entities"]} for r in records]  # noqa: E731
    assert spans(a) == spans(b)


@pytest.mark.parametrize("head_cls", [EfficientGlobalPointer, GlobalPointer])
@pytest.mark.parametrize("tril_mask", [True, False])
def test_traceable_logits_equal_the_head_forward_bit_for_bit(head_cls, tril_mask):
    torch.manual_seed(0)
    head = head_cls(8, 3, 4, tril_mask=tril_mask)
    hidden = torch.randn(2, 6, 8, generator=torch.Generator().manual_seed(1))
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])
    with torch.no_grad():
        assert torch.equal(traceable_logits(head, hidden, mask), head(hidden, mask).logits)


def test_logit_difference_ignores_masked_cells_and_flags_mask_changes():
    a = {"h": torch.tensor([[[[1.0, 2.0], [-1e12, 3.0]]]])}  # (1, 1, 2, 2), cell (1, 0) masked
    b = {"h": torch.tensor([[[[1.5, 2.0], [-1e12 + 4096, 2.75]]]])}
    assert logit_difference(a, b) == (0.5, True)
    c = {"h": torch.tensor([[[[1.0, 2.0], [0.0, 3.0]]]])}
    assert logit_difference(a, c) == (0.0, False)


def test_serve_gives_each_onnx_worker_its_share_of_the_threads(exported):
    from gplinker.cli import serve_threads

    nlp = Pipeline.from_pretrained(exported["onnx"], runtime="onnx")
    runtime = nlp.predictor.runtime
    assert runtime is not None
    before = torch.get_num_threads()
    try:
        assert serve_threads(nlp, 0, 0) == 1 and runtime.session.get_session_options().intra_op_num_threads == 0
        assert serve_threads(nlp, 4, 2) == 2 and runtime.session.get_session_options().intra_op_num_threads == 2
        assert serve_threads(nlp, 2, 4) == 4 and runtime.session.get_session_options().intra_op_num_threads == 1
    finally:
        torch.set_num_threads(before)
    assert nlp(TEXTS) == Pipeline.from_pretrained(exported["onnx"], runtime="onnx")(TEXTS)  # reopened, same graph


def test_onnx_runtime_errors_say_how_to_fix(exported, tmp_path):
    with pytest.raises(ConfigError, match="gplinker export"):
        OnnxLogits.load(exported["model"])
    with pytest.raises(ConfigError, match="runtime must be"):
        Predictor.from_pretrained(exported["model"], runtime="tensorrt")
    result = runner.invoke(app, ["export", str(exported["model"]), "--onnx", str(exported["model"])])
    assert result.exit_code == 2 and "must differ" in result.output
