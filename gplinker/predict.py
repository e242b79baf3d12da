"""Inference: texts → windows → length-sorted batches → logits → sparse cells → task decode → merge.

`Predictor` serves `gplinker eval`, `gplinker predict`, evaluation during training and the
Python API (`Pipeline`). Decoding never loops over the L×L grid in Python: cells above the
threshold are found with one `nonzero` per head and batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import torch

from gplinker.data.batching import collate, inference_batches
from gplinker.data.encoding import WindowEncoder
from gplinker.data.examples import Example
from gplinker.tasks.base import Prediction, ScoredCells, Task


class Predictor:
    """A model, its tokenizer and its task, ready to predict on `Example`s."""

    def __init__(self, model, tokenizer, task: Task, max_length: int, stride: int, threshold: float = 0.0,
                 batch_size: int = 64, device: str | torch.device = "cpu", amp: str = "off",
                 char_level: bool = False):
        self.model, self.tokenizer, self.task = model, tokenizer, task
        self.encoder = WindowEncoder(tokenizer, max_length, stride, char_level)
        self.threshold, self.batch_size = threshold, batch_size
        self.device = torch.device(device)
        self.amp = amp
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    @classmethod
    def from_pretrained(cls, model_dir: str | Path, device: str = "auto", batch_size: int = 64,
                        trust_remote_code: bool = False, **overrides) -> "Predictor":
        """Load a model dir written by `gplinker train` (config.json, model.safetensors, tokenizer)."""
        from gplinker.modeling.encoders import load_tokenizer
        from gplinker.modeling.model import GPLinkerModel
        from gplinker.tasks import build_task
        from gplinker.data.schema import Schema
        from gplinker.training import pick_device

        model, section = GPLinkerModel.load(model_dir, trust_remote_code=trust_remote_code)
        tokenizer = load_tokenizer(str(model_dir), model.encoder.config.model_type, trust_remote_code)
        task = build_task(section["task"], Schema.from_dict(section["schema"]))
        settings = {"max_length": section["max_length"], "stride": section["stride"],
                    "threshold": section.get("threshold", 0.0), "char_level": section.get("char_level", False),
                    **overrides}
        dev = pick_device(device)
        model.to(dev).eval()
        return cls(model, tokenizer, task, batch_size=batch_size, device=dev, **settings)

    def predict(self, examples: Sequence[Example]) -> list[Prediction]:
        """One merged prediction per example, in input order."""
        windows = self.encoder.encode([e.text for e in examples])
        per_window = self.decode_windows(windows)
        grouped: list[list[Prediction]] = [[] for _ in examples]
        for window, prediction in zip(windows, per_window):
            grouped[window.example_index].append(prediction)
        return [self.task.merge(e, g) for e, g in zip(examples, grouped)]

    @torch.inference_mode()
    def decode_windows(self, windows) -> list[Prediction]:
        """Run the model over windows in length-sorted batches; decode each window; input order kept."""
        out: list[Prediction | None] = [None] * len(windows)
        was_training = self.model.training
        self.model.eval()
        for indices in inference_batches([len(w) for w in windows], self.batch_size):
            batch = [windows[k] for k in indices]
            inputs = {k: v.to(self.device) for k, v in collate(batch, self.pad_id).items()}
            with autocast(self.amp, self.device):
                logits = self.model(**inputs).logits
            cells = cells_above(logits, self.threshold, len(batch))
            for b, k in enumerate(indices):
                out[k] = self.task.decode(windows[k], cells[b])
        self.model.train(was_training)
        return out  # type: ignore[return-value]


def cells_above(logits: dict[str, torch.Tensor], threshold: float, batch_size: int) -> list[ScoredCells]:
    """Per batch row: head -> [(channel, i, j, logit)] for every cell with logit > threshold."""
    rows: list[ScoredCells] = [{name: [] for name in logits} for _ in range(batch_size)]
    for name, x in logits.items():  # x: (B, C, L, L)
        idx = (x > threshold).nonzero()  # (N, 4): b, c, i, j
        if idx.numel() == 0:
            continue
        scores = x[idx[:, 0], idx[:, 1], idx[:, 2], idx[:, 3]].float().tolist()
        for (b, c, i, j), s in zip(idx.tolist(), scores):
            rows[b][name].append((c, i, j, s))
    return rows


def autocast(amp: str, device: torch.device):
    from gplinker.training import amp_context

    if amp == "fp16" and device.type != "cuda":
        amp = "off"
    return amp_context(amp, device)


def chunks(items: Iterable, size: int) -> Iterator[list]:
    """Consecutive lists of `size` items (the last may be shorter); keeps memory flat when streaming."""
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
