"""`gplinker tune`: search a decoding threshold per head channel on a dev file, and write it into the model dir.

ZLPR pushes positives above 0 and negatives below it, so 0 is the threshold the loss implies; a
channel whose logits are shifted (a rare label, a label the encoder confuses) may do better a
little above or below it. The search (`search_thresholds`) is coordinate ascent, one sweep:

    for each head, for each channel c (in `Task.channel_labels` order):
        t[c] <- the value of GRID ∪ {t[c]} with the highest dev score, others held; ties keep t[c]

The score is the task's headline (`Task.score(...).main`: strict span F1, strict triple F1,
DuEE F1), the one `gplinker eval` prints, computed as the F1 of the per-example counts
`Task.score_counts` summed in example order. A value replaces t[c] only when it scores strictly
higher, so the dev score after the sweep is never below the one before it.

Time is bounded: the model runs once, over every window, keeping the cells above the lowest
threshold tried (`Predictor.window_cells`); each trial then filters those cells, decodes only the
windows holding a cell of channel c, recounts only their examples and sums the counts: at most
1 + channels × len(GRID) trials, no forward pass, each costing the decoding of the windows it
changes plus one sum over the dev examples. A trial equals what `predict` decodes at those thresholds unless a
window has more than predict.MAX_CELLS cells of one head above the lowest threshold (then
`cells_above` keeps only its strongest cells, in search and in predict alike, ranked by margin).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from gplinker.atomic_files import write_json
from gplinker.data.encoding import Window
from gplinker.data.examples import Example
from gplinker.data.reading import read_examples
from gplinker.errors import GPLinkerError
from gplinker.manifest import read_manifest, write_manifest
from gplinker.metrics import PRF
from gplinker.predict import Predictor, Thresholds
from gplinker.tasks.base import Prediction, ScoredCells, Task

# Thresholds on logits tried for every channel (0 = probability 0.5; ±1 ≈ 0.27 / 0.73; ±4 ≈ 0.02 / 0.98)
GRID = (-4.0, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 4.0)


@dataclass
class TuneResult:
    """The dev score before and after, the thresholds found, and each channel's label."""

    before: float
    after: float
    thresholds: dict[str, list[float]]
    start: dict[str, list[float]]
    labels: dict[str, list[str]]
    examples: int
    trials: int  # threshold vectors scored on dev (the start included)
    grid: list[float]

    def changed(self) -> list[tuple[str, str, float, float]]:
        """(head, channel label, threshold before, after) of every channel whose threshold moved."""
        return [(head, self.labels[head][c], self.start[head][c], t)
                for head, values in self.thresholds.items() for c, t in enumerate(values) if t != self.start[head][c]]


def per_channel(threshold: Thresholds, task: Task) -> dict[str, list[float]]:
    """A threshold as one value per channel of every head of the task (a head left out of a mapping keeps 0)."""
    out = {}
    for head in task.heads():
        if isinstance(threshold, (int, float)):
            out[head.name] = [float(threshold)] * head.channels
        else:
            out[head.name] = [float(t) for t in threshold.get(head.name, [0.0] * head.channels)]
    return out


def kept_cells(cells: ScoredCells, thresholds: dict[str, list[float]]) -> ScoredCells:
    """The cells of one window above their channel's threshold, order kept."""
    return {head: [cell for cell in found if cell[3] > thresholds[head][cell[0]]] for head, found in cells.items()}


def search_thresholds(task: Task, windows: Sequence[Window], cells: Sequence[ScoredCells],
                      examples: Sequence[Example], start: dict[str, list[float]],
                      grid: Sequence[float] = GRID) -> TuneResult:
    """Coordinate ascent over the grid (module docstring) from `start`, given each window's cells above
    min(grid ∪ start). Pure: no model, so hand-made cells test it."""
    if len(windows) != len(cells):
        raise ValueError(f"{len(windows)} windows but {len(cells)} cell lists")
    t = {head: list(values) for head, values in start.items()}
    of_example: list[list[int]] = [[] for _ in examples]  # example -> its windows, in order
    for k, window in enumerate(windows):
        of_example[window.example_index].append(k)
    per_window = [task.decode(w, kept_cells(c, t)) for w, c in zip(windows, cells)]
    merged = [task.merge([per_window[k] for k in ks]) for ks in of_example]
    counts = [task.score_counts(e, p) for e, p in zip(examples, merged)]
    best = before = sum(counts, PRF()).f1
    trials = 1
    holding: dict[tuple[str, int], list[int]] = {}  # (head, channel) -> the windows with a cell of it, in order
    for k, window_cells in enumerate(cells):
        for head, found in window_cells.items():
            for channel in sorted({cell[0] for cell in found}):
                holding.setdefault((head, channel), []).append(k)
    for head, labels in task.channel_labels().items():
        for channel in range(len(labels)):
            affected = holding.get((head, channel), [])
            if not affected:
                continue  # no cell of this channel above any threshold tried: every value decodes the same
            current = t[head][channel]
            touched = sorted({windows[k].example_index for k in affected})
            chosen: tuple[float, dict[int, Prediction], dict[int, Prediction], dict[int, PRF]] | None = None
            for value in sorted(set(grid) - {current}):
                t[head][channel] = value
                trial = {k: task.decode(windows[k], kept_cells(cells[k], t)) for k in affected}
                trial_merged = {e: task.merge([trial.get(k, per_window[k]) for k in of_example[e]]) for e in touched}
                trial_counts = {e: task.score_counts(examples[e], p) for e, p in trial_merged.items()}
                score = sum((trial_counts.get(e, c) for e, c in enumerate(counts)), PRF()).f1  # example order
                trials += 1
                if score > best:
                    best, chosen = score, (value, trial, trial_merged, trial_counts)
            t[head][channel] = current
            if chosen is not None:
                t[head][channel] = chosen[0]
                for k, prediction in chosen[1].items():
                    per_window[k] = prediction
                for e, prediction in chosen[2].items():
                    merged[e], counts[e] = prediction, chosen[3][e]
    return TuneResult(before=before, after=best, thresholds=t, start={h: list(v) for h, v in start.items()},
                      labels=task.channel_labels(), examples=len(examples), trials=trials,
                      grid=sorted(set(grid)))


def tune_dir(model_dir: str | Path, data: str | Path, fmt: str | None = None, skip_invalid: bool = False,
             device: str = "auto", batch_size: int = 64, trust_remote_code: bool = False,
             grid: Sequence[float] = GRID, write: bool = True,
             progress: Callable[[int, int], None] | None = None) -> TuneResult:
    """Search per-channel thresholds on a labelled file from the model dir's current ones; with `write`, store them
    in its config.json (`gplinker.thresholds`, docs/formats.md)."""
    model_dir = Path(model_dir)
    predictor = Predictor.from_pretrained(model_dir, device=device, batch_size=batch_size,
                                          trust_remote_code=trust_remote_code)
    task = predictor.task
    examples, _ = read_examples(data, fmt or "auto", task.name, skip_invalid)
    if not any(task.gold(e) for e in examples):
        raise GPLinkerError(f"{data}: none of its {len(examples)} example(s) carries a gold label: thresholds tuned "
                            "on it would mean nothing; give a labelled dev file")
    start = per_channel(predictor.threshold, task)
    lowest = min([*grid, *(v for values in start.values() for v in values)])
    windows = predictor.encoder.encode([e.text for e in examples])
    cells = predictor.window_cells(windows, lowest, progress)
    result = search_thresholds(task, windows, cells, examples, start, grid)
    if write:
        write_thresholds(model_dir, result, str(data))
    return result


def write_thresholds(model_dir: Path, result: TuneResult, data: str) -> None:
    """Put the thresholds and how they were found into config.json's gplinker section (temp file + rename),
    and the dir's manifest.json (gplinker/manifest.py) after it."""
    import json

    path = model_dir / "config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config["gplinker"]["thresholds"] = result.thresholds
    config["gplinker"]["tuning"] = {"data": data, "examples": result.examples, "grid": result.grid,
                                    "before": result.before, "after": result.after}
    write_json(path, config)
    if read_manifest(model_dir) is not None:  # the dir was verified when tune loaded it: hash it again
        write_manifest(model_dir)
