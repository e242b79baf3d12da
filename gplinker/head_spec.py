"""What a task asks of the model: named pointer heads, each with its channels. Torch-free."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HeadSpec:
    """One pointer head: `channels` score matrices over (start token i, end token j).

    `rope` rotates q and k by position (the score sees j - i); `tril_mask` masks cells i > j;
    `max_span` masks spans of more tokens (None: any length; link heads, whose cells pair two
    spans' heads or tails, always keep their full range). `span_head` says whether the head's
    cells are spans (subject to model.max_span_length) rather than links.
    """

    name: str
    channels: int
    rope: bool = True
    tril_mask: bool = True
    span_head: bool = True
    max_span: int | None = None
