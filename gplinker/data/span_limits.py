"""How long a predicted span may be: limits learned from the training targets (model.max_span_length auto).

No training window holds a gold span longer than the longest training span, so the heads never
learn that longer cells are negatives, and on documents longer than the training sentences they
fire on absurd spans. With `auto`, a span head masks (in the loss and in decoding) every span of
more than
    max_span = ceil((1 + SPAN_MARGIN) * longest training span of the head)    tokens,
and decoding also drops a span of channel c longer than
    ceil((1 + LABEL_MARGIN) * longest training span of c)
when c had at least LABEL_MIN_SPANS training spans (a label seen rarely has no reliable longest:
it keeps only the head's limit). The constants were chosen with scripts/span_limits.py on CLUENER,
the DuIE 2.0 subset and DuEE 1.0 (its 500-line train sample). Of their dev gold span cells these
limits cut 2 of 3,072, 0 of 6,014 and 0 of 5,316; a label margin of 0.25 would cut 1, 0 and 0,
but lets a well-seen label predict spans a quarter longer than any it was trained on (on the
synthetic documents of scripts/bench_long.py, a 12-character organisation where the longest
trained was 9). Per-label limits from 20 spans on would lose dozens of the DuEE sample's dev
cells, whatever the margin.
Link heads (relation head/tail pairs, event argument links) keep their full range.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

SPAN_MARGIN = 0.25  # the head's mask: what the loss and decoding never score
LABEL_MARGIN = 0.0  # a well-seen label's decoding limit: its longest training span
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
    return SpanLimits(math.ceil((1 + SPAN_MARGIN) * overall),
                      [math.ceil((1 + LABEL_MARGIN) * n) if c >= LABEL_MIN_SPANS else None
                       for n, c in zip(longest, counts)])
