"""How long a predicted span may be: limits learned from the training targets (model.max_span_length auto).

No training window holds a gold span longer than the longest training span, so the heads never
learn that longer cells are negatives, and on documents longer than the training sentences they
fire on absurd spans. With `auto`, a span head masks (in the loss and in decoding) every span of
more than
    max_span = ceil((1 + SPAN_MARGIN) * longest training span of the head)    tokens,
and decoding also drops a span of channel c longer than
    ceil((1 + SPAN_MARGIN) * longest training span of c)
when c had at least LABEL_MIN_SPANS training spans (a label seen rarely has no reliable longest).
The two constants were chosen with scripts/span_limits.py on CLUENER, the DuIE 2.0 subset and
DuEE 1.0 (its 500-line train sample): of their dev gold span cells these limits would cut 1 of
3,072, 0 of 6,014 and 0 of 5,316 (with a 0 margin and per-label limits from 20 spans on, the
500-line DuEE sample alone would lose dozens).
Link heads (relation head/tail pairs, event argument links) keep their full range.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

SPAN_MARGIN = 0.25
LABEL_MIN_SPANS = 100


@dataclass(frozen=True)
class SpanLimits:
    """The limits of one span head: the mask limit and each channel's decoding limit (None: no limit)."""

    max_span: int | None
    channels: list[int | None]


def limits_from_training(longest: Sequence[int], counts: Sequence[int]) -> SpanLimits:
    """SpanLimits of a span head from each channel's longest training span (tokens) and its number of spans."""
    overall = max(longest, default=0)
    if overall == 0:
        return SpanLimits(None, [None] * len(longest))  # no gold spans at all: nothing to learn a limit from
    grow = 1 + SPAN_MARGIN
    return SpanLimits(math.ceil(grow * overall),
                      [math.ceil(grow * n) if c >= LABEL_MIN_SPANS else None for n, c in zip(longest, counts)])
