"""Inference: texts → windows → length-sorted batches → logits → sparse cells → task decode → merge.

`Predictor` serves `gplinker eval`, `gplinker predict`, evaluation during training and the
Python API (`Pipeline`). Decoding never loops over the L×L grid in Python: cells above the
threshold are found per head and window by tensor ops, at most `MAX_CELLS` of them (`cells_above`).
"""

from __future__ import annotations

import itertools
import json
import math
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import Tensor

from gplinker.data.batching import DEFAULT_COST, BatchCost, collate, inference_batches
from gplinker.data.encoding import Window, WindowEncoder, special_tokens_around
from gplinker.data.examples import Example
from gplinker.data.long_texts import LONG_TEXT_CHARS, LongText
from gplinker.devices import inference_autocast, pick_device
from gplinker.onnx_runtime import OnnxLogits
from gplinker.tasks.base import Prediction, ScoredCells, Task

T = TypeVar("T")
WINDOW_GROUP = 1024  # windows of one long text made and predicted at a time
# A decoding threshold on logits: one for every channel, or per head a list with one per channel
# (`gplinker tune`; a head left out keeps 0)
Thresholds = float | Mapping[str, Sequence[float]]


class Predictor:
    """A model, its tokenizer and its task, ready to predict on `Example`s."""

    def __init__(self, *, model: Any, tokenizer: Any, task: Task, max_length: int, stride: int,
                 threshold: Thresholds = 0.0, batch_size: int = 64, device: str | torch.device = "cpu",
                 amp: str = "off",
                 char_level: bool = False, runtime: Callable[[Tensor, Tensor], dict[str, Tensor]] | None = None,
                 span_limits: dict[str, list[int | None]] | None = None, cut: str = "sentences",
                 encoder_width: int | None = None):
        self.model, self.tokenizer, self.task = model, tokenizer, task
        # encoder_width: the encoder's hidden size, which sets where a mixed set of windows is cut into batches
        # on a CPU (batch_cost); None: the default cut
        self.encoder_width = encoder_width
        # span_limits: head -> per-channel longest span (tokens) decoding keeps (data/span_limits.py)
        self.span_limits = {h: limits for h, limits in (span_limits or {}).items()
                            if any(n is not None for n in limits)}
        # runtime: None = the PyTorch `model`; else a callable (input_ids, attention_mask) -> {head: logits}
        # giving the same logits, e.g. gplinker.onnx_runtime.OnnxLogits (then `model` may be None)
        self.runtime = runtime
        # cut: a text longer than a window is cut at sentence ends (whole sentences per window) or slides over tokens
        self.encoder = WindowEncoder(tokenizer, max_length, stride, char_level, cut)
        # a fast tokenizer is not safe to call from two threads at once ("Already borrowed"); the model is,
        # in eval mode, so Predictor.predict may run in several threads (gplinker serve --workers)
        self.tokenizing = threading.Lock()
        self.threshold, self.batch_size = threshold, batch_size
        self.device = torch.device(device)
        self.amp = amp
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    @classmethod
    def from_pretrained(cls, model_dir: str | Path, device: str = "auto", batch_size: int = 64,
                        trust_remote_code: bool = False, runtime: str = "auto",
                        threshold: float | None = None, max_length: int | None = None,
                        cut: str = "sentences") -> Predictor:
        """Load a model dir written by `gplinker train` (config.json, model.safetensors, tokenizer).

        runtime: "torch" (model.safetensors), "onnx" (model.onnx written by `gplinker export`, CPU
        onnxruntime) or "auto" (torch when model.safetensors exists, else onnx). Decoding uses the
        per-channel thresholds `gplinker tune` wrote (`thresholds`), else the model's one `threshold`;
        an explicit `threshold` overrides both, for every channel. Windows are no longer than the longest training
        window (`inference_windows`) unless `max_length` says otherwise. `cut`: "sentences" (a
        text longer than a window is cut at sentence ends, see data/encoding.py) or "tokens"
        (sliding windows sharing the stride, as in training).
        """
        from gplinker.data.schema import Schema
        from gplinker.model_format import check_model_format
        from gplinker.modeling.encoders import check_saved_tokenizer, load_tokenizer
        from gplinker.modeling.model import GPLinkerModel, resolve_model_dir, warn_unverified
        from gplinker.tasks import build_task

        model_dir = resolve_model_dir(model_dir)  # a dir whose swap a kill cut: its previous copy
        session: OnnxLogits | None = None
        model: GPLinkerModel | None = None
        if pick_runtime(model_dir, runtime) == "onnx":
            from gplinker.manifest import verify

            warn_unverified(model_dir, verify(model_dir))
            session = OnnxLogits.load(model_dir)
            config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
            section, model_type, dev = config["gplinker"], config.get("model_type", "bert"), torch.device("cpu")
            check_model_format(section, str(model_dir / "config.json"))
        else:
            model, section = GPLinkerModel.load(model_dir, trust_remote_code=trust_remote_code)
            model_type, dev = model.model_type, pick_device(device)
            model.to(dev).eval()
        tokenizer = load_tokenizer(str(model_dir), model_type, trust_remote_code)
        if model is not None:
            check_saved_tokenizer(tokenizer, model.encoder, section, str(model_dir))
        event = section.get("event", {})  # missing before model.event: triggers required, as then
        task = build_task(section["task"], Schema.from_dict(section["schema"]), section.get("decode", "nested"),
                          bool(event.get("require_trigger", True)), event.get("min_arguments", 2))
        limits = section.get("limits", {})
        window, stride = inference_windows(section, tokenizer, max_length)
        tuned = model_thresholds(section, str(model_dir / "config.json"))  # checked even when overridden
        width = model.encoder.config.hidden_size if model is not None else config.get("hidden_size")
        return cls(model=model, tokenizer=tokenizer, task=task, max_length=window, stride=stride,
                   threshold=tuned if threshold is None else threshold,
                   char_level=section.get("char_level", False), batch_size=batch_size, device=dev, runtime=session,
                   span_limits={h: v.get("channels", []) for h, v in limits.get("heads", {}).items()}, cut=cut,
                   encoder_width=width if isinstance(width, int) else None)

    def predict(self, examples: Sequence[Example],
                progress: Callable[[int, int], None] | None = None) -> list[Prediction]:
        """One merged prediction per example, in input order; progress(windows done, windows) after each batch.

        A text longer than LONG_TEXT_CHARS is tokenized in blocks and its windows are made and
        predicted WINDOW_GROUP at a time (data/long_texts.py): the same windows, so the same
        prediction, in memory bounded by the group rather than the text.
        """
        texts = [e.text for e in examples]
        short = [k for k, t in enumerate(texts) if len(t) <= LONG_TEXT_CHARS]
        with self.tokenizing:
            windows = self.encoder.encode([texts[k] for k in short])
            long = [LongText(self.encoder, t, k) for k, t in enumerate(texts) if len(t) > LONG_TEXT_CHARS]
        total, done = len(windows) + sum(len(text) for text in long), 0

        def report(n: int, _: int) -> None:
            if progress is not None:
                progress(done + n, total)

        grouped: list[list[Prediction]] = [[] for _ in examples]
        for window, prediction in zip(windows, self.decode_windows(windows, report)):
            grouped[short[window.example_index]].append(prediction)
        done += len(windows)
        for text in long:
            made = text.windows()
            while group := list(itertools.islice(made, WINDOW_GROUP)):
                grouped[text.example_index].extend(self.decode_windows(group, report))
                done += len(group)
        return [self.task.merge(g) for g in grouped]

    @torch.inference_mode()
    def decode_windows(self, windows: Sequence[Window],
                       progress: Callable[[int, int], None] | None = None) -> list[Prediction]:
        """Run the model over windows in length-sorted batches; decode each window; input order kept."""
        cells = self.window_cells(windows, self.threshold, progress)
        return [self.task.decode(w, c) for w, c in zip(windows, cells)]

    @torch.inference_mode()
    def window_cells(self, windows: Sequence[Window], threshold: Thresholds,
                     progress: Callable[[int, int], None] | None = None) -> list[ScoredCells]:
        """The cells above `threshold` of each window (cells_above, within the span limits), input order kept."""
        out: list[ScoredCells] = [{} for _ in windows]
        was_training = self.model is not None and self.model.training
        if self.model is not None:
            self.model.eval()
        done = 0
        for indices in inference_batches([len(w) for w in windows], self.batch_size, self.cut_cost()):
            batch = [windows[k] for k in indices]
            inputs = {k: v.to(self.device) for k, v in collate(batch, self.pad_id).items()}
            cells = cells_above(self.logits(inputs), threshold, len(batch))
            for b, k in enumerate(indices):
                out[k] = self.within_limits(cells[b])
            done += len(indices)
            if progress is not None:
                progress(done, len(windows))
        if was_training and self.model is not None:
            self.model.train()
        return out

    def cut_cost(self) -> BatchCost:
        """The cost model that cuts this predictor's inference batches now (batch_cost)."""
        return batch_cost(self.encoder_width, self.device)

    def within_limits(self, cells: ScoredCells) -> ScoredCells:
        """The cells of span heads that are no longer than their channel's training limit (data/span_limits.py)."""
        if not self.span_limits:
            return cells
        kept = dict(cells)
        for head, limits in self.span_limits.items():
            if head in kept:
                kept[head] = [cell for cell in kept[head] if _fits(cell[2] - cell[1] + 1, limits[cell[0]])]
        return kept

    def logits(self, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        """Logits per head (B, C, L, L) of a collated batch, from the runtime or the PyTorch model."""
        if self.runtime is not None:
            return self.runtime(inputs["input_ids"], inputs["attention_mask"])
        with inference_autocast(self.amp, self.device):
            logits: dict[str, Tensor] = self.model(**inputs).logits
        return logits


def batch_cost(encoder_width: int | None, device: torch.device) -> BatchCost:
    """The cost model that cuts inference batches: on a CPU, fitted to the encoder's width and the torch threads
    in use now (a server's workers set theirs after loading); on other devices, or without a width, the default."""
    if device.type != "cpu" or encoder_width is None:
        return DEFAULT_COST
    return BatchCost.for_cpu(encoder_width, torch.get_num_threads())


def _fits(tokens: int, limit: int | None) -> bool:
    return limit is None or tokens <= limit


def model_thresholds(section: dict[str, Any], source: str = "config.json") -> Thresholds:
    """The decoding threshold of a model dir's `gplinker` section: its per-channel `thresholds` (written by
    `gplinker tune`) when it has them, else its one `threshold` (0 when missing). ConfigError naming `source`
    when `thresholds` does not give one finite number per channel of the section's heads."""
    from gplinker.errors import ConfigError

    tuned = section.get("thresholds")
    if not tuned:
        return float(section.get("threshold", 0.0))
    channels = {h["name"]: int(h["channels"]) for h in section.get("heads", [])}
    if not isinstance(tuned, dict) or set(tuned) - set(channels):
        raise ConfigError(f"{source}: 'thresholds' must map head names {sorted(channels)} to one threshold per "
                          f"channel, got {str(tuned)[:200]}; run `gplinker tune` again or delete the key")
    out: dict[str, list[float]] = {}
    for head, values in tuned.items():
        ok = isinstance(values, list) and len(values) == channels[head] and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values)
        if not ok:
            raise ConfigError(f"{source}: 'thresholds.{head}' must be {channels[head]} finite number(s), one per "
                              f"channel, got {str(values)[:200]}; run `gplinker tune` again or delete the key")
        out[head] = [float(v) for v in values]
    return out


def inference_windows(section: dict[str, Any], tokenizer: Any, max_length: int | None = None) -> tuple[int, int]:
    """(window length, stride) for prediction with a saved model.

    Windows are no longer than the longest training window (`limits.max_window`): positions
    beyond it were never trained (a scratch encoder's position embeddings there are random), so a
    model trained on sentences predicts on documents through sentence-sized windows. `max_length`
    overrides that; beyond the longest training window a warning says why it is risky. The stride
    is the training one, at most half of a window's content tokens; when every head of the model is a
    span head with a length limit (NER), it is at most
        overlap = longest decodable span - 1 tokens,
    enough for every span that decoding keeps to lie wholly in some window (windows step by
    budget - overlap, so one of them holds tokens [p, p + max_span) for every p), and fewer windows
    cover a document. Link heads (relations, events) pair spans at any distance: those keep the
    training stride.
    """
    trained = int(section["max_length"])
    longest = int(section.get("limits", {}).get("max_window") or trained)
    window = min(trained, longest) if max_length is None else max_length
    if max_length is not None and max_length > longest:
        warnings.warn(f"windows of {max_length} tokens are longer than any training window ({longest}): the model "
                      "never saw those positions or spans that long, and may predict absurdly long spans there",
                      UserWarning, stacklevel=3)
    prefix, suffix = special_tokens_around(tokenizer)
    budget = window - len(prefix) - len(suffix)
    overlap = min(int(section["stride"]), budget // 2)
    spans = [h.get("max_span") for h in section.get("heads", [])]
    if spans and all(h.get("span_head", True) for h in section["heads"]) and None not in spans:
        overlap = min(overlap, max(spans) - 1)
    return window, max(0, overlap)


def pick_runtime(model_dir: Path, runtime: str) -> str:
    """torch | onnx; "auto" is torch when the dir has PyTorch weights, else onnx when it has model.onnx."""
    from gplinker.errors import ConfigError

    if runtime not in ("auto", "torch", "onnx"):
        raise ConfigError(f"runtime must be auto, torch or onnx, got '{runtime}'")
    if runtime == "auto":
        has_onnx = (model_dir / "model.onnx").is_file() and not (model_dir / "model.safetensors").is_file()
        return "onnx" if has_onnx else "torch"
    return runtime


# Cells kept per head and window. A perfect model (gold cells, `scripts/bench_decode.py
# --gold-stats`: CLUENER, DuIE and DuEE at their configs' max_length) has at most 64 in one head
# and window; an untrained one about half of its C×L×L (~790k at C 96, L 128), which this bounds
# before the tasks' own caps apply.
MAX_CELLS = 4096
# Cells per step when a crowded window's strongest cells are searched: bounds that search's
# workspace (the chunk and the running top max_cells, copied, and topk's (value, index) pairs:
# ~20 bytes a cell, ~20 MB) whatever C and L are. 2**20 is 64 channels at L 128 (a DuIE link head
# in one step: the fewer ops, the fewer stalls on a busy machine), 4 at L 512.
_CHUNK = 1 << 20
# The cut of a crowded window comes from a strided sample of _SAMPLE of its cells, set so that
# about _OVERSHOOT x max_cells cells pass it (cells_above). 2**16 samples put the sampled quantile
# within a few per cent of the true one whenever max_cells is 1/1000 of the window or more, and
# a misjudged window is searched cell by cell, so the sample decides the speed, never the cells.
_SAMPLE = 1 << 16
_OVERSHOOT = 4


def cells_above(logits: dict[str, torch.Tensor], threshold: Thresholds, batch_size: int,
                max_cells: int = MAX_CELLS) -> list[ScoredCells]:
    """Per batch row: head -> [(channel, i, j, logit)] for every cell with logit > threshold, in (c, i, j) order.

    A window with more than `max_cells` such cells in one head (an untrained model scores about
    half of its cells above 0) keeps exactly its `max_cells` highest; of the cells tied with the
    max_cells-th highest logit, those first in (c, i, j) order.

    Per-channel thresholds (a mapping head -> one threshold per channel; a head left out keeps 0):
    a cell is kept when logit > t[c], and "highest" ranks the margins logit - t[c], computed in
    float32 (`_margins`). Whatever their values, the search below runs on the margins against 0,
    so the bounds are those of one threshold; the cells keep their logits as scores.

    How: one compare pass `x > threshold` over the batch; when it sets few cells in all (a trained
    model: at most 2 × _OVERSHOOT × max_cells 8-cell words), one sparse nonzero lists them all and
    nothing is sampled. Otherwise each window gets a cut v >= threshold from a strided sample of
    its cells (`_cuts`): the threshold itself when the sample shows few cells above it, else a value that about
    _OVERSHOOT × max_cells cells exceed. The top max_cells of a window lie among the cells above
    any v >= threshold that at least max_cells of them exceed (every cell tied with the
    max_cells-th is above v too, that one being > v), so one compare pass `x > v` over the batch
    and one sparse nonzero list every candidate, and a sort by (window, logit desc, position)
    keeps the first max_cells of each window. A window the sample misjudged (fewer than
    max_cells cells above a raised cut, or too many above its cut to list) is searched alone,
    cell by cell (`_strongest_by_chunks`).

    Memory: besides the cells returned, the work tensors are the bool mask `x > v` (B×C×L×L
    bytes) and at most 8 × 2 × _OVERSHOOT × max_cells candidate indices per window: never a
    tensor proportional to the cells above. (One `(x > t).nonzero()` builds (N, 4) int64 indices,
    N half of B×C×L×L for an untrained model: 1.6 GB at B 64, C 96, L 128.) Either model, trained
    or not, costs a handful of whole-batch ops (many small ops are slow on a busy machine).
    Distinct per-channel thresholds add one tensor, the float32 margins (4 × B×C×L×L bytes).
    """
    if max_cells < 1:
        raise ValueError(f"max_cells must be >= 1, got {max_cells}")
    rows: list[ScoredCells] = [{name: [] for name in logits} for _ in range(batch_size)]
    for name, x in logits.items():  # (B, C, L, L)
        x = x[:batch_size]
        t = _head_threshold(threshold, name, x.shape[1])
        if isinstance(t, float):
            flat = _strongest_cells(x, t, max_cells)  # (K,) ascending: (b, c, i, j) order
        else:
            flat = _strongest_cells(_margins(x, t), 0.0, max_cells)
        per_window, height, width = x[0].numel(), x.shape[2], x.shape[3]
        b, c, i, j = flat // per_window, flat // (height * width) % x.shape[1], flat // width % height, flat % width
        scores = x.reshape(-1)[flat].float()
        for window, channel, start, end, score in zip(b.tolist(), c.tolist(), i.tolist(), j.tolist(),
                                                      scores.tolist()):
            rows[window][name].append((channel, start, end, score))
    return rows


def _head_threshold(threshold: Thresholds, head: str, channels: int) -> float | list[float]:
    """One threshold for every channel of a head (float), or one per channel (a list of `channels`)."""
    if isinstance(threshold, (int, float)):
        return float(threshold)
    values = [float(t) for t in threshold.get(head, [0.0] * channels)]
    if len(values) != channels:
        raise ValueError(f"head '{head}' has {channels} channel(s) but {len(values)} threshold(s)")
    if any(not math.isfinite(t) for t in values):
        raise ValueError(f"head '{head}': thresholds must be finite numbers, got {values}")
    return values[0] if len(set(values)) == 1 else values


def _margins(x: Tensor, thresholds: list[float]) -> Tensor:
    """x (B, C, L, L) minus each channel's threshold, in float32: margin > 0 iff logit > t[c] (IEEE subtraction
    of finite floats keeps the sign of the exact difference; masked -inf cells stay -inf, NaN stays NaN)."""
    t = torch.tensor(thresholds, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
    return x.float() - t  # (B, C, L, L)


def _strongest_cells(x: Tensor, threshold: float, k: int) -> Tensor:
    """Flat indices into x (B, C, L, L), ascending, of each window's k highest cells above the threshold (the rule
    of cells_above)."""
    n_windows, per_window = len(x), x[0].numel()
    if n_windows == 0 or per_window == 0:
        return torch.empty(0, dtype=torch.long, device=x.device)
    bound = 2 * _OVERSHOOT * k  # 8-cell words set per window, at most: then few enough cells to list
    passed = x > threshold  # (B, C, L, L) bool
    raised = torch.zeros(n_windows, dtype=torch.bool, device=x.device)
    few = int(torch.count_nonzero(_words(passed)[1])) <= bound  # a trained model: few cells in the whole batch
    if not few:  # crowded: every cell above its window's cut, from a sample (skipped when few: it costs a pass)
        cut = _cuts(x.reshape(n_windows, -1), threshold, k)  # (B,)
        raised = cut > threshold
        if bool(raised.any()):
            passed = x > cut.view(-1, *([1] * (x.dim() - 1)))
            few = int(torch.count_nonzero(_words(passed)[1])) <= bound
    # windows with too many cells above their cut to list (the sample misjudged) are searched alone
    alone = [False] * n_windows if few else (_words_per_window(passed) > bound).tolist()
    if any(alone):
        passed[torch.tensor(alone, device=x.device)] = False
    flat = _flat_nonzero(passed)
    window = flat // per_window
    counts = torch.bincount(window, minlength=n_windows)
    alone = [a or (bool(r) and n < k) for a, r, n in zip(alone, raised.tolist(), counts.tolist())]  # too few
    if max(counts.tolist()) > k:  # keep the first k of each window by (logit desc, position)
        order = torch.argsort(x.reshape(-1)[flat], descending=True, stable=True)  # ties: flat order
        order = order[torch.argsort(window[order], stable=True)]  # by window, each window still by logit
        first = torch.cumsum(counts, 0) - counts  # where each window's cells start in `order`
        rank = torch.arange(len(order), device=x.device) - first[window[order]]
        flat = flat[order[rank < k]]
    if not any(alone):
        return flat.sort().values
    flat = flat[~torch.tensor(alone, device=x.device)[flat // per_window]]
    searched = [_search_window(x[w], threshold, k) + w * per_window for w, a in enumerate(alone) if a]
    return torch.cat([flat, *searched]).sort().values


def _search_window(x: Tensor, threshold: float, k: int) -> Tensor:
    """Flat indices, ascending, of one window's k highest cells above the threshold (all of them when fewer)."""
    above = x > threshold
    if int(torch.count_nonzero(above)) <= k:
        return _flat_nonzero(above)
    return _strongest_by_chunks(x, above, k)


def _cuts(windows: Tensor, threshold: float, k: int) -> Tensor:
    """Per window (B, N): a cut >= threshold that about _OVERSHOOT × k of its cells exceed, from a strided sample
    of _SAMPLE cells; the threshold itself when the sample shows fewer above it (or the window is small)."""
    step = max(1, windows.shape[1] // _SAMPLE)
    sample = windows[:, ::step]  # (B, S)
    m = _OVERSHOOT * k * sample.shape[1] // windows.shape[1] + 1  # sampled cells expected above the cut
    floor = torch.full((len(windows),), threshold, dtype=windows.dtype, device=windows.device)
    if m >= sample.shape[1]:
        return floor
    crowded = (sample > threshold).sum(dim=1) >= m  # the others' m-th sampled cell is not above the threshold
    if not bool(crowded.any()):  # a trained model: no topk at all
        return floor
    # topk ranks NaN first: a NaN in the sample lowers its window's cut (fmax: the threshold when the m-th is NaN);
    # a NaN cell is never above a cut
    floor[crowded] = torch.fmax(sample[crowded].topk(m, dim=1).values[:, -1], floor[crowded])
    return floor


def _words_per_window(mask: Tensor) -> Tensor:
    """(B,) per window of a bool mask (B, ...): its 8-cell words (see _words) holding a True cell, counting the
    two it may share with its neighbours: at least 1/8 of its True cells, at most all of them plus 2."""
    flat, words = _words(mask)
    per_window = mask[0].numel()
    counts = [int(torch.count_nonzero(words[b * per_window // 8 : -(-(b + 1) * per_window // 8)]))
              + int(flat[8 * len(words) :].any()) * (b == len(mask) - 1) for b in range(len(mask))]
    return torch.tensor(counts, device=mask.device)


def _words(mask: Tensor) -> tuple[Tensor, Tensor]:
    """A bool tensor flattened (N,), and its first N - N % 8 cells as int64 words: byte k of word w is cell 8w + k."""
    flat = mask.reshape(-1)  # contiguous
    return flat, flat[: flat.numel() - flat.numel() % 8].view(torch.int64)


def _flat_nonzero(mask: Tensor) -> Tensor:
    """Flat (row-major) indices of the True cells of a bool tensor, ascending: `mask.reshape(-1).nonzero()`.

    Searched 8 cells at a time, as int64 words: a sparse mask has few nonzero words, and the
    search over them is ~4x faster than `nonzero` over the bytes (a 98×128×128 mask with a few
    hundred cells set, 2 CPU cores).
    """
    flat, words = _words(mask)
    hit = words.nonzero().squeeze(1)  # words holding a True cell
    w, k = flat[: 8 * len(words)].view(-1, 8)[hit].nonzero().unbind(1)  # (hits, 8) -> its True cells
    out = hit[w] * 8 + k
    if 8 * len(words) < flat.numel():
        out = torch.cat([out, flat[8 * len(words) :].nonzero().squeeze(1) + 8 * len(words)])
    return out


def _strongest_by_chunks(x: Tensor, above: Tensor, k: int) -> Tensor:
    """_strongest by searching every cell of the window. One pass over chunks of whole
    channels keeps a running top k with its indices (few, large ops: on a busy machine each op
    can stall), and a count of the cells equal to the k-th logit shows whether topk's own choice
    among ties already is the rule's; when not (or with NaN logits, which topk ranks first),
    _strongest_in_order decides.
    """
    top, where = x.new_empty(0), torch.empty(0, dtype=torch.long, device=x.device)  # running top k, flat indices
    for start, values, _ in _channel_chunks(x, above):
        m = len(top)
        top, pos = (torch.cat([top, values]) if m else values).topk(min(k, m + len(values)))  # descending
        where = torch.where(pos < m, where[pos.clamp(max=max(m - 1, 0))], pos - m + start) if m else pos + start
    kth = top[k - 1]
    if not bool(torch.isnan(top).any()):  # then the top k are all above the threshold (more than k cells are)
        equal = sum(int(torch.count_nonzero(values == kth)) for _, values, _ in _channel_chunks(x, above))
        if equal == int((top == kth).sum()):  # every cell tied with the k-th is in the top k
            return where.sort().values
    return _strongest_in_order(x, above, k)


def _strongest_in_order(x: Tensor, above: Tensor, k: int) -> Tensor:
    """_strongest by its rule, in two passes: the k-th highest logit among the cells above the threshold,
    then the cells above it and the first cells (in flat order) equal to it."""
    top = x.new_empty(0)
    for _, values, live in _channel_chunks(x, above):
        candidates = torch.cat([top, values.masked_fill(~live, float("-inf"))])  # NaN is never above: -inf
        top = candidates.topk(min(k, candidates.numel())).values  # descending
    kth = top[k - 1]  # > threshold: more than k cells are above it
    ties = k - int((top > kth).sum())  # cells equal to kth to keep; every cell above kth is in top
    out = []
    for start, values, _ in _channel_chunks(x, above):
        picked = (values > kth).nonzero().squeeze(1)
        if ties:
            equal = (values == kth).nonzero().squeeze(1)[:ties]
            ties -= len(equal)
            picked = torch.cat([picked, equal]).sort().values
        out.append(picked + start)
    return torch.cat(out)


def _channel_chunks(x: Tensor, above: Tensor) -> Iterator[tuple[int, Tensor, Tensor]]:
    """(first flat index, logits, above) of one window (C, L, L), flattened, _CHUNK cells (whole channels) at a time."""
    cells = x.shape[1] * x.shape[2]  # per channel
    step = max(1, _CHUNK // cells)  # channels per chunk
    for c0 in range(0, len(x), step):
        yield c0 * cells, x[c0 : c0 + step].reshape(-1), above[c0 : c0 + step].reshape(-1)


# Characters per chunk of texts (gplinker predict, Pipeline.stream): with the line count, what bounds a
# chunk's windows and so its memory, however long the lines. A character is at most one token for
# WordPiece and char-level tokenizers, so 2**18 characters make at most 2**18 tokens, ~2k windows of 128.
CHUNK_CHARS = 1 << 18
IDLE_FLUSH_S = 0.2  # a partial chunk of a slow stream (a pipe) is predicted after this long without input
READ_AHEAD = 16  # items the reader thread may hold beyond the chunk being built


FIRST_CHUNK = 16  # gplinker predict's first chunk holds at most 1/FIRST_CHUNK of a full one (see `chunks`)


def chunks(items: Iterable[T], size: int, weight: Callable[[T], int] | None = None, budget: int = 0,
           idle: float | None = None, ramp: int = 1) -> Iterator[list[T]]:
    """Consecutive lists of at most `size` items whose `weight`s sum to at most `budget` (an item heavier than
    the budget goes alone); keeps memory flat when streaming.

    With `idle` (seconds), items are read on a background thread and a partial chunk is yielded
    when no new item came for that long, so a slow producer (stdin from a pipe) gets its results
    without waiting for `size` items. With `ramp` > 1, the first chunk's limits are size/ramp and
    budget/ramp, doubling with each chunk up to the full ones: the first output comes after a
    small chunk, and the rest batch as before.
    """
    source: Iterable[T] = items if idle is None else _read_ahead(items, idle)
    scale = max(1, ramp)
    limit, cap = max(1, size // scale), max(1, budget // scale) if budget else 0
    chunk: list[T] = []
    total = 0

    def full() -> list[T]:
        nonlocal chunk, total, limit, cap
        out, chunk, total = chunk, [], 0
        limit, cap = min(size, 2 * limit), min(budget, 2 * cap) if budget else 0
        return out

    for item in source:
        if item is _IDLE:
            if chunk:
                yield full()
            continue
        w = weight(item) if weight is not None else 0
        if chunk and cap and total + w > cap:
            yield full()
        chunk.append(item)
        total += w
        if len(chunk) >= limit:
            yield full()
    if chunk:
        yield chunk


_IDLE: Any = object()  # yielded by _read_ahead when no item came within the wait
_END: Any = object()


def _read_ahead(items: Iterable[T], idle: float) -> Iterator[T]:
    """The items of `items`, read by a daemon thread into a bounded queue; `_IDLE` after `idle` s without one."""
    import queue

    q: queue.Queue[Any] = queue.Queue(maxsize=READ_AHEAD)  # lines, not chunks: memory stays bounded by the chunk
    failure: list[BaseException] = []

    def feed() -> None:
        try:
            for item in items:
                q.put(item)
        except BaseException as exc:  # re-raised in the consumer's thread
            failure.append(exc)
        finally:
            q.put(_END)

    threading.Thread(target=feed, daemon=True, name="gplinker-read-ahead").start()
    waiting = False  # after an _IDLE, block until the next item: no busy loop on an idle pipe
    while True:
        try:
            item = q.get(timeout=None if waiting else idle)
        except queue.Empty:
            waiting = True
            yield _IDLE
            continue
        waiting = False
        if item is _END:
            if failure:
                raise failure[0]
            return
        yield item
