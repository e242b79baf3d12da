"""Reported scores: the pointer logit s read as a probability, sigmoid(s), rounded for JSON."""

import math


def probability(logit: float) -> float:
    """sigmoid(logit) to 4 decimals; a logit at the default threshold 0 reads as 0.5."""
    if logit >= 0:
        return round(1.0 / (1.0 + math.exp(-logit)), 4)
    z = math.exp(logit)
    return round(z / (1.0 + z), 4)
