"""`gplinker score`: the metrics of `gplinker eval` for any prediction or submission file against a gold file.

So systems are compared on one scorer: our records, our submission files, or another tool's
output in the benchmark's gold form (data/prediction_files.py reads and pairs the lines).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gplinker.data.prediction_files import FORMS, SUBMISSION_ONLY, read_predictions
from gplinker.data.reading import read_examples
from gplinker.data.schema import schema_from_examples
from gplinker.errors import ConfigError
from gplinker.metrics import Scores, duee_submission_scores
from gplinker.tasks import build_task


@dataclass
class ScoreResult:
    """The scores, the prediction form read, and what could not be scored and why."""

    scores: Scores
    form: str
    examples: int
    notes: list[str]


def score_files(pred: str | Path, gold: str | Path, task_name: str, form: str = "auto",
                gold_format: str = "auto") -> ScoreResult:
    """Score a prediction file (one line per gold line, same order) against a labelled gold file.

    The task is built over the gold file's labels, so predictions get the types `eval` would give
    them (relations: the schema's subject and object types, tasks/relation.py).
    """
    if task_name not in FORMS:
        raise ConfigError(f"--task must be one of {', '.join(FORMS)}, got '{task_name}'")
    for path in (pred, gold):
        if not Path(path).is_file():
            raise ConfigError(f"{path} not found")
    gold_examples, _ = read_examples(gold, gold_format, task_name)
    predicted, form = read_predictions(str(pred), gold_examples, str(gold), task_name, form)
    task = build_task(task_name, schema_from_examples(task_name, gold_examples))
    notes = []
    unlocated = sum(len(p.meta.get("unlocated", ())) for p in predicted)
    if unlocated:
        notes.append(f"{unlocated} predicted triple(s) name a subject or object that is not in the text: left out "
                     "(the official DuIE script would count them as wrong)")
    texts = [g.text for g in gold_examples]
    if (task_name, form) in SUBMISSION_ONLY:
        scores = duee_submission_scores(texts, [g.events for g in gold_examples], [p.events for p in predicted])
        notes.append("a DuEE submission has no offsets or triggers: only the official DuEE score is computed "
                     "(score a records file for the strict event, argument and trigger F1)")
    else:
        scores = task.score(gold_examples, [dict.fromkeys(task.gold(p), 0.0) for p in predicted])
    return ScoreResult(scores, form, len(gold_examples), notes)
