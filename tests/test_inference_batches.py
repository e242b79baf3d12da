"""`inference_batches`: every window once, in length order, at most batch_size per batch, and the cheapest cut of
the sorted order at length boundaries under `batches_cost` (checked against an exhaustive search)."""

from __future__ import annotations

import itertools
import random

import pytest

from gplinker.data.batching import BATCH_OVERHEAD, batches_cost, inference_batches


def check_shape(lengths: list[int], batches: list[list[int]], batch_size: int) -> None:
    flat = [k for b in batches for k in b]
    assert sorted(flat) == list(range(len(lengths)))  # every window exactly once
    assert all(1 <= len(b) <= batch_size for b in batches)
    assert [lengths[k] for k in flat] == sorted(lengths, reverse=True)  # longest first, throughout


def chunked(order: list[int], groups: list[int], batch_size: int) -> list[list[int]]:
    """Groups of consecutive windows of `order` (their sizes), each cut into pieces of batch_size."""
    out, start = [], 0
    for size in groups:
        out += [order[b : min(b + batch_size, start + size)] for b in range(start, start + size, batch_size)]
        start += size
    return out


def cheapest_by_search(lengths: list[int], batch_size: int) -> float:
    """The least cost over every way to cut the sorted windows at boundaries between lengths."""
    order = sorted(range(len(lengths)), key=lambda k: -lengths[k])
    sizes = [len(list(g)) for _, g in itertools.groupby(lengths[k] for k in order)]
    best = float("inf")
    for cuts in itertools.product([False, True], repeat=len(sizes) - 1):
        groups, current = [], sizes[0]
        for cut, size in zip(cuts, sizes[1:]):
            if cut:
                groups.append(current)
                current = size
            else:
                current += size
        groups.append(current)
        best = min(best, batches_cost(lengths, chunked(order, groups, batch_size)))
    return best


@pytest.mark.parametrize("seed", range(40))
def test_the_cut_is_the_cheapest_at_length_boundaries_and_never_dearer_than_plain_chunks(seed):
    rng = random.Random(seed)
    batch_size = rng.choice([1, 2, 4, 8, 64])
    lengths = [rng.choice([5, 12, 30, 31, 60, 128, 200]) for _ in range(rng.randint(1, 40))]
    batches = inference_batches(lengths, batch_size)
    check_shape(lengths, batches, batch_size)
    order = sorted(range(len(lengths)), key=lambda k: -lengths[k])
    plain = [order[a : a + batch_size] for a in range(0, len(order), batch_size)]
    assert batches_cost(lengths, batches) == pytest.approx(cheapest_by_search(lengths, batch_size))
    assert batches_cost(lengths, batches) <= batches_cost(lengths, plain) + 1e-9


def test_a_few_long_windows_among_short_ones_get_a_batch_of_their_own():
    lengths = [30] * 20 + [128] * 3 + [20] * 5  # a micro-batch: one long text's windows among sentences
    batches = inference_batches(lengths, 64)
    check_shape(lengths, batches, 64)
    assert sorted(lengths[k] for k in batches[0]) == [128, 128, 128]  # plain chunks would pad 28 windows to 128
    assert batches_cost(lengths, batches) < BATCH_OVERHEAD + len(lengths) * (128 + 128**2 / 256)


def test_equal_lengths_are_the_plain_chunks_and_nothing_is_no_batch():
    assert [len(b) for b in inference_batches([40] * 150, 64)] == [64, 64, 22]
    assert inference_batches([], 64) == []
