"""ONNX export: the encoder and every head of a model dir as one graph, plus an onnxruntime runtime.

Graph: inputs `input_ids` and `attention_mask` (int64, (B, L), B and L dynamic; L fixed to the
model's max_length for the bilstm encoder, whose nn.LSTM torch.export cannot trace at a dynamic
length, and OnnxLogits pads to it); one output per
head, named after the head, with the logits (B, C, L, L) that `GPLinkerModel` gives in PyTorch.
The exported dir is a self-contained model dir for `--runtime onnx`: config.json (with an `onnx`
entry in its `gplinker` section), model.onnx and the tokenizer files; no PyTorch weights.

Exporter: torch.onnx.export with `dynamo=True` (torch.export, needs the `onnxscript` package). On
torch 2.13 the legacy TorchScript exporter (`dynamo=False`) writes a graph that onnxruntime
rejects (an Einsum after the RoPE pair interleave gets a rank-5 input), so it is not used.

Parity is checked at export time, on the same windows through both runtimes: the largest absolute
difference between unmasked logits, and the decoded items of every text (the records without
their scores, which are sigmoids of logits and differ in the last bits).
"""

from __future__ import annotations

import json
import logging
import random
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gplinker.errors import ConfigError
from gplinker.manifest import MANIFEST, write_manifest
from gplinker.modeling.model import GPLinkerModel, resolve_model_dir
from gplinker.onnx_runtime import ONNX_FILE, OnnxLogits

INPUTS = ("input_ids", "attention_mask")
MASKED = -1e11  # logits at or below this are masked cells (pointer.mask_value is -1e12 in float32)
EXTERNAL_DATA_BYTES = 1_800_000_000  # larger weights go to model.onnx.data (protobuf's 2 GB limit)


class LogitsGraph(nn.Module):
    """A GPLinkerModel as a traceable graph: (input_ids, attention_mask) -> one logits tensor per head."""

    def __init__(self, model: GPLinkerModel):
        super().__init__()
        self.model = model
        self.names = [h.name for h in model.head_specs]

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        hidden = self.model.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (B, L, D)
        return tuple(traceable_logits(self.model.heads[name], hidden, attention_mask) for name in self.names)


def traceable_logits(head: nn.Module, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """A head's logits (B, C, L, L) in ops torch.export can trace.

    EfficientGlobalPointer.forward writes its logits block by block inside a custom autograd
    Function (Python loops over batch blocks, a data-dependent finiteness branch), which
    torch.export rejects; pointer.egp_logits computes the same values from the same parts in plain
    broadcast ops. check_parity compares the result against the PyTorch forward on every export.
    """
    from gplinker.modeling.pointer import EfficientGlobalPointer, egp_logits

    if not isinstance(head, EfficientGlobalPointer):
        logits: torch.Tensor = head(hidden, mask).logits
        return logits
    parts = head.parts(hidden, mask)  # the same projections and mask as the forward; only the sum differs
    return egp_logits(parts.qk, parts.start, parts.end, parts.drop)


@dataclass
class ExportReport:
    out_dir: Path
    outputs: list[str]
    max_abs_diff: float  # over unmasked logits of the check windows
    texts: int  # texts decoded by both runtimes
    windows: int
    mismatched: list[int] = field(default_factory=list)  # indices of texts whose decoded items differ
    masks_agree: bool = True  # the same cells are masked in both runtimes
    seconds: float = 0.0  # export time

    @property
    def ok(self) -> bool:
        return self.masks_agree and not self.mismatched


def export_onnx(model_dir: str | Path, out_dir: str | Path, texts: Sequence[str] | None = None,
                opset: int | None = None, tolerance: float = 1e-3) -> ExportReport:
    """Export MODEL_DIR to OUT_DIR/model.onnx, copy config + tokenizer, and check parity on `texts`.

    Without `texts`, parity is checked on synthetic texts drawn from the tokenizer's vocabulary
    (one of them longer than a window). Raises ConfigError when the logits differ by more than
    `tolerance`; decoded mismatches are reported (`ExportReport.ok`).
    """
    from gplinker.modeling.encoders import load_tokenizer

    model_dir, out_dir = resolve_model_dir(model_dir), Path(out_dir)
    if out_dir.resolve() == model_dir.resolve():
        raise ConfigError("the ONNX output dir must differ from the model dir")
    model, section = GPLinkerModel.load(model_dir)
    model.eval()
    (out_dir / MANIFEST).unlink(missing_ok=True)  # an earlier export's, which the new files would contradict
    tokenizer = load_tokenizer(str(model_dir), model.model_type)
    graph = LogitsGraph(model).eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    write_graph(graph, out_dir / ONNX_FILE, tokenizer, section["max_length"], model_positions(model), opset)
    seconds = time.perf_counter() - t0
    tokenizer.save_pretrained(str(out_dir))
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    config["gplinker"]["onnx"] = {"file": ONNX_FILE, "inputs": list(INPUTS), "outputs": graph.names,
                                  "opset": graph_opset(out_dir / ONNX_FILE), "torch": torch.__version__}
    (out_dir / "config.json").write_text(json.dumps(config, ensure_ascii=False, indent=2), encoding="utf-8")
    write_manifest(out_dir)

    check_texts = list(texts) if texts else synthetic_texts(tokenizer, section["max_length"])
    report = check_parity(model_dir, out_dir, check_texts)
    report.seconds = seconds
    config["gplinker"]["onnx"]["max_abs_diff"] = report.max_abs_diff
    (out_dir / "config.json").write_text(json.dumps(config, ensure_ascii=False, indent=2), encoding="utf-8")
    write_manifest(out_dir)  # last, over the final config.json
    if report.max_abs_diff > tolerance or not report.masks_agree:
        raise ConfigError(f"ONNX parity check failed: max |logit difference| {report.max_abs_diff:.3g} > {tolerance:g}"
                          f" or masked cells differ ({out_dir} is kept for inspection)")
    return report


def write_graph(graph: LogitsGraph, path: Path, tokenizer: Any, max_length: int, max_positions: int | None,
                opset: int | None) -> None:
    """torch.onnx.export (dynamo) with dynamic batch and length."""
    try:
        import onnxscript  # noqa: F401
    except ImportError:
        raise ConfigError("gplinker export needs onnx, onnxscript and onnxruntime: "
                          "pip install 'gplinker[onnx]'") from None
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    dynamic_length = getattr(graph.model.encoder, "exports_dynamic_length", True)
    sample = sample_inputs(tokenizer, batch=2, length=min(max_length, 16) if dynamic_length else max_length)
    batch = torch.export.Dim("batch", min=1, max=1 << 16)
    length = torch.export.Dim("length", min=2, max=max_positions or 1 << 16)
    # a graph of one length (bilstm: nn.LSTM does not export a dynamic time axis) takes windows padded to
    # data.max_length; OnnxLogits pads to it and cuts the logits back
    shapes = {name: {0: batch, 1: length} if dynamic_length else {0: batch} for name in INPUTS}
    big = sum(p.numel() * p.element_size() for p in graph.parameters()) > EXTERNAL_DATA_BYTES
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation and axis-naming notices
        torch.onnx.export(graph, sample, str(path), input_names=list(INPUTS), output_names=graph.names,
                          dynamo=True, dynamic_shapes=shapes, opset_version=opset, external_data=big,
                          verbose=False, report=False)


def graph_opset(path: Path) -> int | None:
    """The default-domain opset an ONNX file was written with."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)


def model_positions(model: GPLinkerModel) -> int | None:
    """The encoder's position limit (max_position_embeddings) when it has one."""
    return getattr(model.encoder.config, "max_position_embeddings", None)


def sample_inputs(tokenizer: Any, batch: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Example (input_ids, attention_mask) for tracing: ordinary tokens, the second row half padded."""
    g = torch.Generator().manual_seed(0)
    special = set(tokenizer.all_special_ids)
    ordinary = torch.tensor([i for i in range(min(len(tokenizer), 5000)) if i not in special])
    ids = ordinary[torch.randint(len(ordinary), (batch, length), generator=g)]
    mask = torch.ones_like(ids)
    mask[1:, length // 2 :] = 0
    ids[mask == 0] = tokenizer.pad_token_id or 0
    return ids, mask


def synthetic_texts(tokenizer: Any, max_length: int, n: int = 24, seed: int = 0) -> list[str]:
    """Texts of single-character vocabulary entries, 4 to 40 characters, plus one of 3 windows."""
    rng = random.Random(seed)
    chars = [t for t in tokenizer.get_vocab() if len(t) == 1 and not t.isspace()]
    chars = sorted(chars) or list("abcdefghij")
    texts = [
        "".join(rng.choice(chars) for _ in range(rng.randint(4, 40))) for _ in range(n - 1)
    ]
    texts.append("".join(rng.choice(chars) for _ in range(3 * max_length)))
    return texts


def check_parity(model_dir: Path, onnx_dir: Path, texts: list[str], batch_size: int = 16) -> ExportReport:
    """Run the same windows through PyTorch (model_dir) and onnxruntime (onnx_dir); compare logits and items."""
    from gplinker.data.batching import collate
    from gplinker.data.examples import Example
    from gplinker.predict import Predictor

    reference = Predictor.from_pretrained(model_dir, device="cpu", batch_size=batch_size, runtime="torch")
    exported = Predictor.from_pretrained(onnx_dir, batch_size=batch_size, runtime="onnx")
    windows = reference.encoder.encode(texts)
    worst, masks_agree = 0.0, True
    with torch.inference_mode():
        for a in range(0, len(windows), batch_size):
            inputs = collate(windows[a : a + batch_size], reference.pad_id)
            diff, same_mask = logit_difference(reference.logits(inputs), exported.logits(inputs))
            worst, masks_agree = max(worst, diff), masks_agree and same_mask
    examples = [Example(text=t) for t in texts]
    mismatched = [k for k, (p, q) in enumerate(zip(reference.predict(examples), exported.predict(examples)))
                  if set(p) != set(q)]
    assert isinstance(exported.runtime, OnnxLogits)
    return ExportReport(onnx_dir, exported.runtime.names, worst, len(texts), len(windows), mismatched, masks_agree)


def logit_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> tuple[float, bool]:
    """(max |a - b| over cells unmasked in a, whether both mask the same cells), across heads."""
    worst, same = 0.0, a.keys() == b.keys()
    for name in a:
        x, y = a[name].float(), b[name].float()  # (B, C, L, L)
        live = x > MASKED
        same = same and bool(torch.equal(live, y > MASKED))
        if live.any():
            worst = max(worst, float((x - y).abs()[live].max()))
    return worst, same

