"""The Task protocol: what a task module provides to the shared layers.

A task is pure functions of plain data. It never sees the training loop, an optimizer or a
device; it sees `Example`s (character offsets), `Window`s (token positions) and, when decoding,
the sparse list of cells that scored above the threshold.

Cells are `(channel, i, j, score)`: head channel, start position, end position (positions in the
window's input_ids), and the logit. Targets are the same cells without the score.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Protocol

from gplinker.data.encoding import Window
from gplinker.data.examples import Example
from gplinker.head_spec import HeadSpec

Cells = dict[str, list[tuple[int, int, int]]]
ScoredCells = dict[str, list[tuple[int, int, int, float]]]
Prediction = dict[Hashable, float]  # predicted item (Span / Relation / Event) -> score


class Task(Protocol):
    name: str

    def heads(self) -> list[HeadSpec]:
        """The pointer heads this task needs."""

    def gold(self, example: Example) -> list[Hashable]:
        """The gold items of an example (what decoding should give back)."""

    def targets(self, example: Example, window: Window) -> Cells:
        """Positive cells of each head for the gold items expressible in this window."""

    def decode(self, window: Window, cells: ScoredCells) -> Prediction:
        """Items (character offsets) from the cells that scored above the threshold in one window."""

    def merge(self, example: Example, windows: Sequence[Prediction]) -> Prediction:
        """One prediction for the whole text from its windows' predictions."""

    def score(self, examples: Sequence[Example], predictions: Sequence[Prediction]):
        """Metrics (a gplinker.metrics.Scores) of predictions against the examples' gold."""

    def record(self, example: Example, prediction: Prediction) -> dict:
        """The output JSON object of one input line."""

    def item_record(self, text: str, item: Hashable) -> dict:
        """One item as JSON (for error files)."""


def merge_max(windows: Sequence[Prediction]) -> Prediction:
    """Union of window predictions, keeping each item's highest score (windows overlap)."""
    merged: Prediction = {}
    for prediction in windows:
        for item, score in prediction.items():
            if score > merged.get(item, float("-inf")):
                merged[item] = score
    return merged
