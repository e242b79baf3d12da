"""The Task protocol: what a task module provides to the shared layers.

A task is pure functions of plain data. It never sees the training loop, an optimizer or a
device; it sees `Example`s (character offsets), `Window`s (token positions) and, when decoding,
the sparse list of cells that scored above the threshold.

Cells are `(channel, i, j, score)`: head channel, start position, end position (positions in the
window's input_ids), and the logit. Targets are the same cells without the score.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from gplinker.data.encoding import Window
from gplinker.data.examples import Example
from gplinker.data.schema import Schema
from gplinker.head_spec import HeadSpec
from gplinker.metrics import PRF, Scores

Cells = dict[str, list[tuple[int, int, int]]]
ScoredCells = dict[str, list[tuple[int, int, int, float]]]
Prediction = dict[Any, float]  # predicted item (Span / Relation / Event) -> score


class Task(Protocol):
    """What every task module provides (ner.py, relation.py, event.py)."""

    name: str
    schema: Schema

    def heads(self) -> list[HeadSpec]:
        """The pointer heads this task needs."""

    def channel_labels(self) -> dict[str, list[str]]:
        """Per head (in `heads()` order), the label of each channel: what `gplinker tune` and `--init-from` match."""

    def gold(self, example: Example) -> Sequence[Any]:
        """The gold items of an example (what decoding should give back)."""

    def label_of(self, item: Any) -> str:
        """The per-label key of an item in score tables (entity type, predicate, event type)."""

    def targets(self, example: Example, window: Window) -> Cells:
        """Positive cells of each head for the gold items expressible in this window."""

    def decode(self, window: Window, cells: ScoredCells) -> Prediction:
        """Items (character offsets) from the cells that scored above the threshold in one window."""

    def merge(self, windows: Sequence[Prediction]) -> Prediction:
        """One prediction for the whole text from its windows' predictions."""

    def score(self, examples: Sequence[Example], predictions: Sequence[Prediction]) -> Scores:
        """Metrics of predictions against the examples' gold; `main` is the headline score."""

    def score_counts(self, example: Example, prediction: Prediction) -> PRF:
        """The counts behind `score(...).main` for one example: `main` is the F1 of their sum over examples."""

    def record(self, example: Example, prediction: Prediction) -> dict[str, Any]:
        """The output JSON object of one input line."""

    def item_record(self, text: str, item: Any) -> dict[str, Any]:
        """One item as JSON (for error files)."""


def merge_max(windows: Sequence[Prediction]) -> Prediction:
    """Union of window predictions, keeping each item's highest score (windows overlap)."""
    merged: Prediction = {}
    for prediction in windows:
        for item, score in prediction.items():
            if score > merged.get(item, float("-inf")):
                merged[item] = score
    return merged
