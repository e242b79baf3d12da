"""`inference_batches`: every window once, in length order, at most batch_size per batch, and the cheapest cut of
the sorted order at length boundaries under its BatchCost (checked against an exhaustive search), for the default
cost model and for others."""

from __future__ import annotations

import itertools
import random

import pytest
import torch

from gplinker.data.batching import DEFAULT_COST, BatchCost, inference_batches


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


def cheapest_by_search(lengths: list[int], batch_size: int, cost: BatchCost) -> float:
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
        best = min(best, cost.of(lengths, chunked(order, groups, batch_size)))
    return best


@pytest.mark.parametrize("cost", [DEFAULT_COST, BatchCost(overhead=16.0, quadratic_tokens=2304.0),
                                  BatchCost(overhead=1000.0, quadratic_tokens=64.0)])
@pytest.mark.parametrize("seed", range(25))
def test_the_cut_is_the_cheapest_at_length_boundaries_and_never_dearer_than_plain_chunks(seed, cost):
    rng = random.Random(seed)
    batch_size = rng.choice([1, 2, 4, 8, 64])
    lengths = [rng.choice([5, 12, 30, 31, 60, 128, 200]) for _ in range(rng.randint(1, 40))]
    batches = inference_batches(lengths, batch_size, cost)
    check_shape(lengths, batches, batch_size)
    order = sorted(range(len(lengths)), key=lambda k: -lengths[k])
    plain = [order[a : a + batch_size] for a in range(0, len(order), batch_size)]
    assert cost.of(lengths, batches) == pytest.approx(cheapest_by_search(lengths, batch_size, cost))
    assert cost.of(lengths, batches) <= cost.of(lengths, plain) + 1e-9


def test_a_few_long_windows_among_short_ones_get_a_batch_of_their_own():
    lengths = [30] * 20 + [128] * 3 + [20] * 5  # a micro-batch: one long text's windows among sentences
    batches = inference_batches(lengths, 64)
    check_shape(lengths, batches, 64)
    assert sorted(lengths[k] for k in batches[0]) == [128, 128, 128]  # plain chunks would pad 28 windows to 128
    assert DEFAULT_COST.of(lengths, batches) < DEFAULT_COST.overhead + len(lengths) * (128 + 128**2 / 256)


def test_equal_lengths_are_the_plain_chunks_and_nothing_is_no_batch():
    assert [len(b) for b in inference_batches([40] * 150, 64)] == [64, 64, 22]
    assert inference_batches([], 64) == []


def test_a_cheaper_forward_splits_a_mixed_batch_that_a_dearer_one_keeps_whole():
    lengths = [60] * 8 + [20] * 8
    assert [len(b) for b in inference_batches(lengths, 64, BatchCost(overhead=1000.0, quadratic_tokens=64.0))] == [16]
    assert [len(b) for b in inference_batches(lengths, 64, BatchCost(overhead=16.0, quadratic_tokens=2304.0))] == [8, 8]


def test_the_cpu_cost_model_charges_more_tokens_per_forward_to_narrow_models_and_more_threads():
    narrow, wide, wide_on_two = BatchCost.for_cpu(64, 1), BatchCost.for_cpu(768, 1), BatchCost.for_cpu(768, 2)
    assert narrow.overhead == pytest.approx(12 * wide.overhead)  # 14,000 x threads / width tokens
    assert wide_on_two.overhead == pytest.approx(2 * wide.overhead)
    assert wide.quadratic_tokens == pytest.approx(12 * narrow.quadratic_tokens) == 5 * 768
    # a BERT-base micro-batch of 16 sentences: the two longer ones go alone on a CPU (18 tokens a forward), but
    # not under the default model (256 tokens a forward)
    lengths = [30] * 14 + [40] * 2
    assert [len(b) for b in inference_batches(lengths, 64, wide)] == [2, 14]
    assert [len(b) for b in inference_batches(lengths, 64, DEFAULT_COST)] == [16]


def test_the_width_sets_the_cut_on_a_cpu_only():
    from gplinker.predict import batch_cost

    assert batch_cost(256, torch.device("cpu")) == BatchCost.for_cpu(256, torch.get_num_threads())
    assert batch_cost(256, torch.device("cuda")) == DEFAULT_COST  # kernel launches, not dispatch: unmeasured
    assert batch_cost(None, torch.device("cpu")) == DEFAULT_COST
