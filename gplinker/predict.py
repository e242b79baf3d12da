"""Inference: texts → windows → length-sorted batches → logits → sparse cells → task decode → merge.

`Predictor` serves `gplinker eval`, `gplinker predict`, evaluation during training and the
Python API (`Pipeline`). Decoding never loops over the L×L grid in Python: cells above the
threshold are found with one `nonzero` per head and batch.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import Tensor

from gplinker.data.batching import collate, inference_batches
from gplinker.data.encoding import Window, WindowEncoder
from gplinker.data.examples import Example
from gplinker.devices import inference_autocast, pick_device
from gplinker.onnx_runtime import OnnxLogits
from gplinker.tasks.base import Prediction, ScoredCells, Task

T = TypeVar("T")


class Predictor:
    """A model, its tokenizer and its task, ready to predict on `Example`s."""

    def __init__(self, *, model: Any, tokenizer: Any, task: Task, max_length: int, stride: int,
                 threshold: float = 0.0, batch_size: int = 64, device: str | torch.device = "cpu", amp: str = "off",
                 char_level: bool = False, runtime: Callable[[Tensor, Tensor], dict[str, Tensor]] | None = None):
        self.model, self.tokenizer, self.task = model, tokenizer, task
        # runtime: None = the PyTorch `model`; else a callable (input_ids, attention_mask) -> {head: logits}
        # giving the same logits, e.g. gplinker.onnx_runtime.OnnxLogits (then `model` may be None)
        self.runtime = runtime
        self.encoder = WindowEncoder(tokenizer, max_length, stride, char_level)
        self.threshold, self.batch_size = threshold, batch_size
        self.device = torch.device(device)
        self.amp = amp
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    @classmethod
    def from_pretrained(cls, model_dir: str | Path, device: str = "auto", batch_size: int = 64,
                        trust_remote_code: bool = False, runtime: str = "auto",
                        threshold: float | None = None) -> Predictor:
        """Load a model dir written by `gplinker train` (config.json, model.safetensors, tokenizer).

        runtime: "torch" (model.safetensors), "onnx" (model.onnx written by `gplinker export`, CPU
        onnxruntime) or "auto" (torch when model.safetensors exists, else onnx). `threshold`
        overrides the model's decoding threshold.
        """
        from gplinker.data.schema import Schema
        from gplinker.model_format import check_model_format
        from gplinker.modeling.encoders import load_tokenizer
        from gplinker.modeling.model import GPLinkerModel
        from gplinker.tasks import build_task

        model_dir = Path(model_dir)
        session: OnnxLogits | None = None
        model: GPLinkerModel | None = None
        if pick_runtime(model_dir, runtime) == "onnx":
            session = OnnxLogits.load(model_dir)
            config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
            section, model_type, dev = config["gplinker"], config.get("model_type", "bert"), torch.device("cpu")
            check_model_format(section, str(model_dir / "config.json"))
        else:
            model, section = GPLinkerModel.load(model_dir, trust_remote_code=trust_remote_code)
            model_type, dev = model.model_type, pick_device(device)
            model.to(dev).eval()
        tokenizer = load_tokenizer(str(model_dir), model_type, trust_remote_code)
        task = build_task(section["task"], Schema.from_dict(section["schema"]))
        return cls(model=model, tokenizer=tokenizer, task=task, max_length=section["max_length"],
                   stride=section["stride"],
                   threshold=section.get("threshold", 0.0) if threshold is None else threshold,
                   char_level=section.get("char_level", False), batch_size=batch_size, device=dev, runtime=session)

    def predict(self, examples: Sequence[Example]) -> list[Prediction]:
        """One merged prediction per example, in input order."""
        windows = self.encoder.encode([e.text for e in examples])
        per_window = self.decode_windows(windows)
        grouped: list[list[Prediction]] = [[] for _ in examples]
        for window, prediction in zip(windows, per_window):
            grouped[window.example_index].append(prediction)
        return [self.task.merge(g) for g in grouped]

    @torch.inference_mode()
    def decode_windows(self, windows: Sequence[Window]) -> list[Prediction]:
        """Run the model over windows in length-sorted batches; decode each window; input order kept."""
        out: list[Prediction] = [{} for _ in windows]
        was_training = self.model is not None and self.model.training
        if self.model is not None:
            self.model.eval()
        for indices in inference_batches([len(w) for w in windows], self.batch_size):
            batch = [windows[k] for k in indices]
            inputs = {k: v.to(self.device) for k, v in collate(batch, self.pad_id).items()}
            cells = cells_above(self.logits(inputs), self.threshold, len(batch))
            for b, k in enumerate(indices):
                out[k] = self.task.decode(windows[k], cells[b])
        if was_training and self.model is not None:
            self.model.train()
        return out

    def logits(self, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        """Logits per head (B, C, L, L) of a collated batch, from the runtime or the PyTorch model."""
        if self.runtime is not None:
            return self.runtime(inputs["input_ids"], inputs["attention_mask"])
        with inference_autocast(self.amp, self.device):
            logits: dict[str, Tensor] = self.model(**inputs).logits
        return logits


def pick_runtime(model_dir: Path, runtime: str) -> str:
    """torch | onnx; "auto" is torch when the dir has PyTorch weights, else onnx when it has model.onnx."""
    from gplinker.errors import ConfigError

    if runtime not in ("auto", "torch", "onnx"):
        raise ConfigError(f"runtime must be auto, torch or onnx, got '{runtime}'")
    if runtime == "auto":
        has_onnx = (model_dir / "model.onnx").is_file() and not (model_dir / "model.safetensors").is_file()
        return "onnx" if has_onnx else "torch"
    return runtime


MAX_CELLS = 4096  # per head and window: far above what a trained model predicts, bounds an untrained one


def cells_above(logits: dict[str, torch.Tensor], threshold: float, batch_size: int,
                max_cells: int = MAX_CELLS) -> list[ScoredCells]:
    """Per batch row: head -> [(channel, i, j, logit)] for every cell with logit > threshold.

    A window with more than `max_cells` such cells in one head (an untrained model scores about
    half of its L×L cells above 0) keeps its `max_cells` highest, so decoding stays fast.
    """
    rows: list[ScoredCells] = [{name: [] for name in logits} for _ in range(batch_size)]
    for name, x in logits.items():  # x: (B, C, L, L)
        idx = (x > threshold).nonzero()  # (N, 4): b, c, i, j; counting from here, a bool .sum() is ~5x slower
        if idx.numel() == 0:
            continue
        scores = x[idx[:, 0], idx[:, 1], idx[:, 2], idx[:, 3]].float()  # (N,)
        counts = torch.bincount(idx[:, 0], minlength=x.shape[0])  # (B,) cells above per window
        if int(counts.max()) > max_cells:
            idx, scores = _strongest(x, idx, scores, counts > max_cells, max_cells)
        for (b, c, i, j), s in zip(idx.tolist(), scores.tolist()):
            rows[b][name].append((c, i, j, s))
    return rows


def _strongest(x: Tensor, idx: Tensor, scores: Tensor, crowded: Tensor, max_cells: int) -> tuple[Tensor, Tensor]:
    """Keep, in each crowded window (crowded: (B,) bool), only cells scoring >= its max_cells-th highest."""
    flat = x[crowded].flatten(1).float()  # (crowded windows, C*L*L)
    kth = torch.full((x.shape[0],), float("-inf"), device=x.device)
    kth[crowded] = flat.topk(min(max_cells, flat.shape[1]), dim=1).values[:, -1]
    keep = scores >= kth[idx[:, 0]]
    return idx[keep], scores[keep]


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of `size` items (the last may be shorter); keeps memory flat when streaming."""
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
