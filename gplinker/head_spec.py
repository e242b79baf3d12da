"""What a task asks of the model: named pointer heads, each with its channels. Torch-free."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HeadSpec:
    """One pointer head: `channels` score matrices over (start token i, end token j).

    `rope` rotates q and k by position (the score sees j - i); `tril_mask` masks cells i > j.
    """

    name: str
    channels: int
    rope: bool = True
    tril_mask: bool = True
