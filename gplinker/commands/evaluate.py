"""`gplinker eval`: predict on a labelled file with a saved model, score it, and write the evidence."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from gplinker.atomic_files import atomic_text
from gplinker.data.examples import Example
from gplinker.data.formats import ReadReport
from gplinker.data.reading import read_examples
from gplinker.errors import GPLinkerError
from gplinker.metrics import Scores
from gplinker.predict import Predictor
from gplinker.tasks.base import Prediction, Task


@dataclass
class EvalResult:
    """Scores of one evaluation, with the task that made them and the examples and predictions behind them."""

    task: Task
    scores: Scores
    report: ReadReport
    examples: list[Example]
    predictions: list[Prediction]


def evaluate_dir(model_dir: str | Path, data: str | Path, fmt: str | None = None, skip_invalid: bool = False,
                 device: str = "auto", batch_size: int = 64, trust_remote_code: bool = False,
                 threshold: float | None = None, max_length: int | None = None, cut: str = "sentences") -> EvalResult:
    """Predict on a labelled file with a saved model and score it.

    `threshold`, `max_length` and `cut` override the model's decoding threshold, window length and cuts, as in
    `gplinker predict`. A file without a single gold item is refused before predicting: its scores
    would be zeros that say nothing.
    """
    predictor = Predictor.from_pretrained(model_dir, device=device, batch_size=batch_size,
                                          trust_remote_code=trust_remote_code, threshold=threshold,
                                          max_length=max_length, cut=cut)
    task = predictor.task
    examples, report = read_examples(data, fmt or "auto", task.name, skip_invalid)
    if not any(task.gold(e) for e in examples):
        raise GPLinkerError(f"{data}: none of its {len(examples)} example(s) carries a gold label, so there is "
                            f"nothing to score; to label unlabelled text, run: gplinker predict {model_dir} {data} "
                            f"-o predictions.jsonl")
    predictions = predictor.predict(examples)
    return EvalResult(task, task.score(examples, predictions), report, examples, predictions)


def write_errors(path: Path, result: EvalResult) -> int:
    """One JSON line per example with a false positive or a miss; returns how many lines were written."""
    task, n = result.task, 0
    with atomic_text(path) as fh:
        for e, p in zip(result.examples, result.predictions):
            gold, pred = set(task.gold(e)), set(p)
            fp, fn = pred - gold, gold - pred
            if fp or fn:
                n += 1
                fh.write(json.dumps({
                    "source": f"{e.source}:{e.line}", "text": e.text,
                    "false_positives": [task.item_record(e.text, x) for x in sorted(fp, key=repr)],
                    "misses": [task.item_record(e.text, x) for x in sorted(fn, key=repr)],
                }, ensure_ascii=False) + "\n")
    return n
