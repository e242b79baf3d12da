"""Decoding stays bounded on an untrained model, whose logits put about half of all cells above 0.

`predict.cells_above` keeps at most max_cells cells per head and window without building an index
tensor for the cells above; the tasks' own caps (relation.MAX_TUPLES / MAX_WORK, event.MAX_EVENTS
/ MAX_FRAMES) then bound the work of decoding. Work is counted, never timed.
"""

from __future__ import annotations

import pytest
import torch

import gplinker.predict as predict
import gplinker.tasks.event_assembly as event_assembly
import gplinker.tasks.relation as relation
from gplinker.data.encoding import SPECIAL, Window
from gplinker.data.examples import TRIGGER_ROLE
from gplinker.data.schema import Schema
from gplinker.predict import cells_above
from gplinker.tasks.event import MAX_EVENTS, MAX_FRAMES, EventTask
from gplinker.tasks.ner import NerTask
from gplinker.tasks.relation import MAX_TUPLES, MAX_WORK, RelationTask


def plain_cells(x: torch.Tensor, b: int, threshold: float) -> list[tuple[int, int, int, float]]:
    """The reference: every cell of window b above the threshold, by `nonzero`, in (c, i, j) order."""
    return [(c, i, j, float(x[b, c, i, j])) for c, i, j in (x[b] > threshold).nonzero().tolist()]


def top_cells(x: torch.Tensor, b: int, threshold: float, k: int) -> list[tuple[int, int, int, float]]:
    """The reference for a crowded window: the k highest (ties: first in (c, i, j) order), in (c, i, j) order."""
    above = plain_cells(x, b, threshold)
    kept = sorted(range(len(above)), key=lambda n: (-above[n][3], n))[:k]
    return [above[n] for n in sorted(kept)]


def window(length: int) -> Window:
    """[CLS], length - 2 one-character tokens, [SEP]."""
    return Window(0, [0] * length, [SPECIAL] + [(k, k + 1) for k in range(length - 2)] + [SPECIAL])


def untrained(task, batch: int, length: int, every: bool = True, seed: int = 0) -> dict[str, torch.Tensor]:
    """Logits (B, C, L, L), all distinct: every cell above 0 (masks ignored, the harshest case) or, with
    every=False, N(0, 1) like an untrained model (half the cells above 0, link graphs far from complete)."""
    g = torch.Generator().manual_seed(seed)
    draw = (lambda *s: torch.rand(*s, generator=g) + 0.01) if every else (lambda *s: torch.randn(*s, generator=g))
    return {h.name: draw(batch, h.channels, length, length) for h in task.heads()}


# ---------------------------------------------------------------- cells_above


@pytest.mark.parametrize("shape", [(3, 2, 6, 6), (2, 3, 7, 7), (1, 1, 5, 5), (4, 5, 16, 16)])
@pytest.mark.parametrize("threshold", [0.0, 1.0, -0.5])
def test_within_the_cap_the_cells_are_exactly_those_of_nonzero(shape, threshold):
    torch.manual_seed(sum(shape))
    x = torch.randn(*shape)
    x[0, 0, 0, 0] = threshold  # not above: the comparison is strict
    rows = cells_above({"h": x, "g": -x}, threshold, shape[0], max_cells=10**6)
    for b in range(shape[0]):
        assert rows[b]["h"] == plain_cells(x, b, threshold)  # same cells, scores and order
        assert rows[b]["g"] == plain_cells(-x, b, threshold)


def test_an_empty_window_and_a_window_without_cells_above_give_empty_lists():
    x = torch.full((2, 2, 4, 4), -1.0)
    x[1, 1, 2, 3] = 0.5
    assert cells_above({"h": x}, 0.0, 2) == [{"h": []}, {"h": [(1, 2, 3, 0.5)]}]


@pytest.mark.parametrize("chunk", [1, 60, 1 << 20])
@pytest.mark.parametrize("k", [1, 7, 40, 99])
def test_a_crowded_window_keeps_its_k_highest_cells(monkeypatch, k, chunk):
    monkeypatch.setattr(predict, "_CHUNK", chunk)  # one channel (25 cells) or all four per step
    torch.manual_seed(k)
    x = torch.randn(3, 4, 5, 5) + 1.0  # most cells above 0
    x[2] -= 5.0  # window 2 has few
    rows = cells_above({"h": x}, 0.0, 3, max_cells=k)
    for b in range(3):
        assert rows[b]["h"] == top_cells(x, b, 0.0, k)
        assert len(rows[b]["h"]) == min(k, len(plain_cells(x, b, 0.0)))


@pytest.mark.parametrize("chunk", [1, 25, 60, 1 << 18])
def test_ties_at_the_kth_logit_keep_the_first_cells_in_order_whatever_the_chunks(monkeypatch, chunk):
    monkeypatch.setattr(predict, "_CHUNK", chunk)  # chunk of whole channels: 1 and 25 are one channel
    g = torch.Generator().manual_seed(0)
    x = torch.randint(-2, 4, (2, 6, 5, 5), generator=g).float() / 2  # many equal logits
    for k in (1, 10, 33, 80, 149):
        rows = cells_above({"h": x}, 0.0, 2, max_cells=k)
        for b in range(2):
            assert rows[b]["h"] == top_cells(x, b, 0.0, k), k


def test_every_cell_above_the_threshold_is_capped_at_the_top_cells():
    x = torch.rand(2, 3, 16, 16) + 0.01  # an "untrained model": all 768 cells of each window above 0
    rows = cells_above({"h": x}, 0.0, 2, max_cells=50)
    for b in range(2):
        assert len(rows[b]["h"]) == 50
        assert rows[b]["h"] == top_cells(x, b, 0.0, 50)
        assert min(s for *_, s in rows[b]["h"]) == float(x[b].flatten().topk(50).values[-1])


def test_nan_and_half_precision_logits():
    x = torch.full((1, 2, 4, 4), float("nan"))
    x[0, 1, 2, 3], x[0, 0, 1, 1], x[0, 0, 0, 2] = 5.0, 2.0, 1.0
    assert cells_above({"h": x}, 0.0, 1, max_cells=2) == [{"h": [(0, 1, 1, 2.0), (1, 2, 3, 5.0)]}]
    y = torch.rand(1, 2, 4, 4) + 0.01
    y[0, 0, 0, 0] = float("nan")  # one NaN among 32 cells above
    assert cells_above({"h": y}, 0.0, 1, max_cells=5) == [{"h": top_cells(y, 0, 0.0, 5)}]
    torch.manual_seed(1)
    y = torch.randn(2, 3, 8, 8)
    for dtype in (torch.bfloat16, torch.float16):
        half = y.to(dtype)
        for k in (5, 10**6):
            rows = cells_above({"h": half}, 0.0, 2, max_cells=k)
            assert [r["h"] for r in rows] == [top_cells(half.float(), b, 0.0, k) for b in range(2)]


def per_channel_cells(x, b, t, k):
    """The reference with one threshold per channel: cells with x > t[c]; of more than k, the k highest margins
    x - t[c] (ties: first in (c, i, j) order), in (c, i, j) order; scores stay the logits."""
    above = [(c, i, j, float(x[b, c, i, j])) for c, i, j in (x[b] > torch.tensor(t).view(-1, 1, 1)).nonzero().tolist()]
    kept = sorted(range(len(above)), key=lambda n: (-(above[n][3] - t[above[n][0]]), n))[:k]
    return [above[n] for n in sorted(kept)]


@pytest.mark.parametrize("k", [3, 40, 10**6])
def test_per_channel_thresholds_keep_the_cells_above_their_channels_and_the_highest_margins(k):
    torch.manual_seed(k % 97)
    x = torch.randn(3, 4, 9, 9) * 2
    t = [-1.0, 0.0, 0.5, 2.0]
    x[0, 3, 1, 1] = 2.0  # equal to its channel's threshold: not above
    x[1, 0] = float("-inf")  # a masked channel
    rows = cells_above({"h": x, "g": x[:, :2]}, {"h": t}, 3, max_cells=k)  # "g" is not in the mapping: 0
    for b in range(3):
        assert rows[b]["h"] == per_channel_cells(x, b, t, k)
        assert rows[b]["g"] == top_cells(x[:, :2], b, 0.0, k)
    assert (3, 1, 1, 2.0) not in rows[0]["h"]


def test_equal_per_channel_thresholds_are_the_one_threshold():
    torch.manual_seed(3)
    x = torch.randn(2, 3, 6, 6)
    assert cells_above({"h": x}, {"h": [0.5] * 3}, 2, max_cells=7) == cells_above({"h": x}, 0.5, 2, max_cells=7)


def test_per_channel_thresholds_of_the_wrong_length_are_refused():
    with pytest.raises(ValueError, match="3 channel"):
        cells_above({"h": torch.ones(1, 3, 2, 2)}, {"h": [0.0, 1.0]}, 1)


def test_max_cells_below_one_is_refused():
    with pytest.raises(ValueError, match="max_cells"):
        cells_above({"h": torch.ones(1, 1, 2, 2)}, 0.0, 1, max_cells=0)


def test_no_index_tensor_grows_with_the_cells_above(monkeypatch):
    """Every cell above 0: no `nonzero` result holds more indices than the cells kept."""
    sizes: list[int] = []
    real = torch.Tensor.nonzero

    def counting(self, *args, **kwargs):
        out = real(self, *args, **kwargs)
        sizes.append(out.shape[0])
        return out

    monkeypatch.setattr(torch.Tensor, "nonzero", counting)
    monkeypatch.setattr(predict, "_CHUNK", 512)  # several chunks per window
    x = torch.rand(4, 8, 64, 64) + 0.01  # 32,768 cells above per window, 131,072 in all
    rows = cells_above({"h": x}, 0.0, 4, max_cells=100)
    assert [len(r["h"]) for r in rows] == [100] * 4
    # the candidates of a crowded window: at most 8 cells in each of 2 x _OVERSHOOT x 100 words
    assert sizes and max(sizes) <= 8 * 2 * predict._OVERSHOOT * 100 < 32768
    sizes.clear()
    calm = torch.full((4, 8, 24, 24), -1.0)
    calm[:, 0, 0, :10] = 1.0  # 10 cells above per window, within the cap: listed for the whole batch at once
    assert [len(r["h"]) for r in cells_above({"h": calm}, 0.0, 4, max_cells=100)] == [10] * 4
    assert sizes and max(sizes) <= 4 * 10


def test_a_batch_with_few_cells_above_is_listed_without_sampling_a_cut(monkeypatch):
    """A trained model's batch (few cells above in all) costs one compare and one listing: no sampled cut, whose
    strided pass over a long window's cells cost as much as the listing; a crowded batch still samples."""
    sampled: list[int] = []
    real = predict._cuts
    monkeypatch.setattr(predict, "_cuts", lambda *a: sampled.append(1) or real(*a))
    calm = torch.full((6, 10, 128, 128), -1.0)  # 163,840 cells a window: a sample would be drawn
    calm[:, 3, 5, 9:40] = 0.5
    calm[2, 7, 0, 0] = 2.0
    rows = cells_above({"h": calm}, 0.0, 6, max_cells=100)
    assert [len(r["h"]) for r in rows] == [31, 31, 32, 31, 31, 31]
    assert rows[2]["h"][:2] == [(3, 5, 9, 0.5), (3, 5, 10, 0.5)] and rows[2]["h"][-1] == (7, 0, 0, 2.0)
    assert not sampled
    crowded = calm.clone()
    crowded[4] = 1.0
    rows = cells_above({"h": crowded}, 0.0, 6, max_cells=100)
    assert [len(r["h"]) for r in rows] == [31, 31, 32, 31, 100, 31] and sampled


@pytest.mark.parametrize("case", ["random", "ties", "sample holds the peaks", "nan in the sample", "few above"])
def test_the_sampled_cut_keeps_the_cells_the_search_over_every_cell_keeps(monkeypatch, case):
    """Crowded windows: the cut from a strided sample (or the full search, when it misjudges) keeps the rule's cells."""
    searched: list[int] = []
    full = predict._strongest_by_chunks
    monkeypatch.setattr(predict, "_strongest_by_chunks", lambda *a: searched.append(1) or full(*a))
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, 20, 128, 128, generator=g) + 1.0  # 327,680 cells a window, most above 0: sampled every 5th
    step = x[0].numel() // predict._SAMPLE
    if case == "ties":
        x = (x * 2).round() / 2
    elif case == "sample holds the peaks":  # window 1's sampled cells are its highest: the cut lets too few through
        x[1].view(-1)[::step] += 10.0
    elif case == "nan in the sample":
        x[0].view(-1)[step * 7] = float("nan")
    elif case == "few above":  # window 0 has 300 cells above 0, none of them sampled
        x[0] = -1.0
        x[0].view(-1)[1 : 1 + step * 300 : step] = 2.0
    k = 500
    rows = cells_above({"h": x}, 0.0, 2, max_cells=k)
    for b in range(2):
        assert rows[b]["h"] == top_cells(x, b, 0.0, k)
        kept = torch.tensor([c * 128 * 128 + i * 128 + j for c, i, j, _ in rows[b]["h"]])
        assert torch.equal(kept, plain_top(x[b], k))
    assert bool(searched) == (case == "sample holds the peaks")  # a NaN is never above: it only lowers the cut


def plain_top(x, k):
    """The rule written out: sort the cells above 0 by logit descending, then flat index ascending; keep k."""
    flat = x.reshape(-1)
    cells = [(-float(flat[i]), i) for i in (flat > 0).nonzero().squeeze(1).tolist()]
    return torch.tensor(sorted(i for _, i in sorted(cells)[:k]))


@pytest.mark.parametrize("layout", ["one crowded among calm", "all crowded", "all calm", "crowded, odd size"])
def test_every_path_gives_the_reference_cells(layout):
    """Few words set (listed at once, crowded windows then searched alone) or many (windows counted one by one)."""
    torch.manual_seed(3)
    length = 7 if layout == "crowded, odd size" else 8  # 3×7×7 cells a window: not whole 8-cell words
    x = torch.randn(5, 3, length, length) - 3.0  # a few cells above 0 per window
    if layout in ("one crowded among calm", "crowded, odd size"):
        x[2, 1] += 6.0  # most of one channel of window 2
    elif layout == "all crowded":
        x += 6.0
    k = 20
    rows = cells_above({"h": x}, 0.0, 5, max_cells=k)
    for b in range(5):
        assert rows[b]["h"] == top_cells(x, b, 0.0, k)
    crowded = [b for b in range(5) if len(plain_cells(x, b, 0.0)) > k]
    assert crowded == {"one crowded among calm": [2], "all crowded": [0, 1, 2, 3, 4], "all calm": [],
                       "crowded, odd size": [2]}[layout]


# ---------------------------------------------------------------- tasks on an untrained model


def test_ner_on_an_untrained_model_is_capped_at_the_strongest_cells():
    task = NerTask(Schema(task="ner", entity_types=["a", "b", "c"]))
    logits = untrained(task, 2, 20)
    rows = cells_above(logits, 0.0, 2, max_cells=30)
    for b in range(2):
        assert rows[b]["entities"] == top_cells(logits["entities"], b, 0.0, 30)
        decoded = task.decode(window(20), rows[b])
        content = [(c, i, j) for c, i, j, _ in rows[b]["entities"] if 0 < i <= j < 19]
        assert len(decoded) == len(content) <= 30


@pytest.fixture
def relation_task() -> RelationTask:
    return RelationTask(Schema(task="relation", predicates=["p0", "p1", "p2"]))


def spy(monkeypatch, module, name: str) -> list:
    """Wrap module.name, recording every result it returns."""
    results: list = []
    real = getattr(module, name)

    def recorded(*args, **kwargs):
        out = real(*args, **kwargs)
        results.append(out)
        return out

    monkeypatch.setattr(module, name, recorded)
    return results


def test_relation_on_an_untrained_model_stops_at_the_caps(monkeypatch, relation_task):
    searches = spy(monkeypatch, relation, "five_tuple_search")
    length = 48
    logits = untrained(relation_task, 2, length)
    rows = cells_above(logits, 0.0, 2)  # entities 2×48×48 = 4,608 cells and links 3×48×48: capped at 4,096
    assert all(len(r[h]) == predict.MAX_CELLS for r in rows for h in ("entities", "heads", "tails"))
    for row in rows:
        decoded = relation_task.decode(window(length), row)
        search = searches[-1]
        assert len(search.tuples) <= MAX_TUPLES and search.work <= MAX_WORK
        assert 0 < len(decoded) <= len(search.tuples)
    small = RelationTask(relation_task.schema, max_tuples=10, max_work=10**9)
    assert len(small.decode(window(length), rows[0])) <= 10 and len(searches[-1].tuples) == 10


def test_relation_work_is_bounded_when_no_probe_finds_a_tuple(relation_task):
    """Every subject and link above 0 but no tail link matches: the output cap never applies, the budget does."""
    n = 40
    entities = [(c, i, j, 1.0) for c in (0, 1) for i in range(1, n) for j in range(i, n)]
    heads = [(ch, i, j, 1.0) for ch in range(3) for i in range(1, n) for j in range(1, n)]
    tails = [(ch, i, 0, 1.0) for ch in range(3) for i in range(1, n)]  # object end 0: no object ends there
    search = relation.five_tuple_search(entities, heads, tails, limit=MAX_TUPLES, budget=5_000)
    assert search.tuples == {} and 5_000 - 2 < search.work <= 5_000  # a probe here costs 2: its row has one end
    full = relation.five_tuple_search(entities, heads, tails, limit=MAX_TUPLES, budget=10**9)
    subject_ends = (n - 1) * n // 2  # subjects (s_h, s_t), 1 <= s_h <= s_t < n
    assert full.tuples == {} and full.work == len(heads) + 2 * 3 * (n - 1) * subject_ends  # 187,083 units
    assert full.work > 9 * MAX_WORK  # what the default budget saves


def test_event_on_an_untrained_model_stops_at_the_caps(monkeypatch):
    searches = spy(monkeypatch, event_assembly, "clique_search")
    roles = [TRIGGER_ROLE, "r1", "r2"]
    task = EventTask(Schema(task="event", event_roles=[(f"e{k}", r) for k in range(6) for r in roles]))
    length = 40
    logits = untrained(task, 2, length, every=False)
    rows = cells_above(logits, 0.0, 2)
    for row in rows:
        searches.clear()
        decoded = task.decode(window(length), row)
        assert 0 < len(decoded) <= MAX_EVENTS
        assert sum(len(s.cliques) for s in searches) <= MAX_EVENTS
        assert sum(s.frames for s in searches) <= MAX_FRAMES
    small = EventTask(task.schema, max_events=25, max_frames=10**9)
    searches.clear()
    assert len(small.decode(window(length), rows[0])) == 25
    assert sum(len(s.cliques) for s in searches) == 25
    tight = EventTask(task.schema, max_events=10**9, max_frames=50)
    searches.clear()
    tight.decode(window(length), rows[0])
    assert 0 < sum(s.frames for s in searches) <= 50
