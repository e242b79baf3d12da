"""NER: one Efficient GlobalPointer channel per entity type; nested spans are just more cells.

Target cell of an entity of type t spanning tokens i..j: entities[t, i, j] (i <= j).

Flat decoding (`model.decode: flat`), applied to the merged prediction of a whole text: spans are
taken by score, highest first (ties: smaller start, then smaller end, then label name), and each
is kept unless it shares a character with a span kept before it. So of 《英雄联盟》 scored as book,
game and movie only the best type survives, and of 北京大学 ⊃ 北京 only the better span.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gplinker.data.encoding import Window
from gplinker.data.examples import Example, Span
from gplinker.data.schema import Schema
from gplinker.head_spec import HeadSpec
from gplinker.metrics import PRF, Scores, ner_scores, strict_prf
from gplinker.probability import probability
from gplinker.tasks.base import Cells, Prediction, ScoredCells, merge_max


class NerTask:
    name = "ner"
    HEAD = "entities"

    def __init__(self, schema: Schema, flat: bool = False):
        self.schema = schema
        self.flat = flat  # keep no two overlapping spans (module docstring)
        self.types = list(schema.entity_types)
        self.type_index = {t: k for k, t in enumerate(self.types)}

    def heads(self) -> list[HeadSpec]:
        return [HeadSpec(self.HEAD, len(self.types), rope=True, tril_mask=True)]

    def channel_labels(self) -> dict[str, list[str]]:
        """The entity type of each channel."""
        return {self.HEAD: list(self.types)}

    def label_of(self, span: Span) -> str:
        """Per-label tables group spans by entity type."""
        return span.label

    def gold(self, example: Example) -> list[Span]:
        return list(example.spans)

    def targets(self, example: Example, window: Window) -> Cells:
        cells = []
        for span in example.spans:
            pos = window.token_span(span.start, span.end)
            if pos is not None and span.label in self.type_index:
                cells.append((self.type_index[span.label], *pos))
        return {self.HEAD: cells}

    def decode(self, window: Window, cells: ScoredCells) -> Prediction:
        prediction: Prediction = {}
        for c, i, j, score in cells.get(self.HEAD, ()):
            chars = window.char_span(i, j)
            if chars is not None:
                prediction[Span(chars[0], chars[1], self.types[c])] = score
        return prediction

    def merge(self, windows: Sequence[Prediction]) -> Prediction:
        merged = merge_max(windows)
        return flat_spans(merged) if self.flat else merged

    def score(self, examples: Sequence[Example], predictions: Sequence[Prediction]) -> Scores:
        return ner_scores([e.text for e in examples], [e.spans for e in examples],
                          [sorted(p) for p in predictions])

    def score_counts(self, example: Example, prediction: Prediction) -> PRF:
        """Strict span counts of one example (ner_scores' main)."""
        return strict_prf([example.spans], [list(prediction)], label_of=self.label_of)[0]

    def item_record(self, text: str, span: Span) -> dict[str, Any]:
        return {"type": span.label, "text": text[span.start : span.end], "start": span.start, "end": span.end}

    def record(self, example: Example, prediction: Prediction) -> dict[str, Any]:
        entities = [
            {**self.item_record(example.text, span), "score": probability(score)}
            for span, score in sorted(prediction.items(), key=lambda kv: (kv[0].start, kv[0].end, kv[0].label))
        ]
        out: dict[str, Any] = {"id": example.json_id()} if example.id is not None else {}
        return {**out, "text": example.text, "entities": entities}


def flat_spans(prediction: Prediction) -> Prediction:
    """The spans no two of which overlap, greedily by score (rule and ties in the module docstring)."""
    taken: set[int] = set()  # characters covered by a kept span
    kept: Prediction = {}
    for span, score in sorted(prediction.items(), key=lambda kv: (-kv[1], kv[0].start, kv[0].end, kv[0].label)):
        if taken.isdisjoint(range(span.start, span.end)):
            kept[span] = score
            taken.update(range(span.start, span.end))
    return kept
