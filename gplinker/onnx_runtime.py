"""onnxruntime as a prediction runtime: a model dir written by `gplinker export`, called like the model.

Lives below predict.py (which picks it with `--runtime onnx`) and beside export.py (which writes
the graph); it needs only onnxruntime, not the exporter.
"""

from __future__ import annotations

from pathlib import Path

import torch

from gplinker.errors import ConfigError

ONNX_FILE = "model.onnx"


class OnnxLogits:
    """An onnxruntime session over an exported graph, called like the model: -> {head: logits (B, C, L, L)}."""

    def __init__(self, path: str | Path, threads: int = 0):
        self.path = Path(path)
        self.use_threads(threads)
        self.names = [o.name for o in self.session.get_outputs()]
        length = self.session.get_inputs()[0].shape[1]  # a name when the graph takes any length
        self.length: int | None = length if isinstance(length, int) else None

    def use_threads(self, threads: int) -> None:
        """(Re)open the session with `threads` intra-op threads (0: onnxruntime's default, one per physical core).
        Concurrent runs of a session share its pool, so `gplinker serve --workers N` gives each run its share."""
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])

    @classmethod
    def load(cls, model_dir: str | Path, threads: int = 0) -> OnnxLogits:
        """The runtime of an exported model dir (needs model.onnx and the `onnx` extra installed)."""
        path = Path(model_dir) / ONNX_FILE
        if not path.is_file():
            raise ConfigError(f"{model_dir} has no {ONNX_FILE}: export it first with "
                              f"`gplinker export {model_dir} --onnx OUT_DIR` and predict from OUT_DIR")
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            raise ConfigError("--runtime onnx needs onnxruntime: pip install 'gplinker[onnx]'") from None
        return cls(path, threads)

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """{head: logits (B, C, L, L)}; a graph of one length gets the batch padded to it and its logits cut to L."""
        n = input_ids.shape[1]
        if self.length is not None:
            if n > self.length:
                raise ConfigError(f"this ONNX graph takes windows of at most {self.length} tokens, got {n}: "
                                  f"predict with max_length <= {self.length}")
            pad = (0, self.length - n)  # masked positions: the encoder exported this way is padding-invariant
            input_ids = torch.nn.functional.pad(input_ids, pad)
            attention_mask = torch.nn.functional.pad(attention_mask, pad)
        feeds = {"input_ids": input_ids.cpu().numpy(), "attention_mask": attention_mask.cpu().numpy()}
        outputs = self.session.run(self.names, feeds)
        if self.length is None:
            return {name: torch.from_numpy(x) for name, x in zip(self.names, outputs)}
        return {name: torch.from_numpy(x)[..., :n, :n].contiguous() for name, x in zip(self.names, outputs)}
