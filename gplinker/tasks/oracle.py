"""The oracle round trip: gold → targets → decode → merge, as if the model were perfect.

What it gives back is the most any model can score with these windows; what it loses are gold
items that the token positions or the decoder cannot express (`gplinker check` lists them).
"""

from __future__ import annotations

from collections.abc import Sequence

from gplinker.data.encoding import Window
from gplinker.data.examples import Example
from gplinker.tasks.base import Prediction, Task


def oracle_predictions(task: Task, examples: Sequence[Example], windows: Sequence[Window]) -> list[Prediction]:
    """Decode each window's own targets (computed when the window has none), then merge windows per example."""
    grouped: list[list[Prediction]] = [[] for _ in examples]
    for w in windows:
        targets = w.targets if w.targets is not None else task.targets(examples[w.example_index], w)
        cells = {head: [(c, i, j, 1.0) for c, i, j in cs] for head, cs in targets.items()}
        grouped[w.example_index].append(task.decode(w, cells))
    return [task.merge(g) for g in grouped]


def unplaced_count(task: Task, examples: Sequence[Example], windows: Sequence[Window]) -> int:
    """Gold items that the oracle does not give back (what training can never learn)."""
    oracle = oracle_predictions(task, examples, windows)
    return sum(len(set(task.gold(e)) - set(p)) for e, p in zip(examples, oracle))
