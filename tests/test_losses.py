"""ZLPR losses against the formula written out with python sums of exp."""

import math

import pytest
import torch

from gplinker.modeling.block_plan import ACCELERATOR_PLAN, CPU_PLAN, BlockPlan, forced
from gplinker.modeling.losses import (
    multilabel_categorical_crossentropy,
    pointer_loss,
    soft_multilabel_categorical_crossentropy,
    sparse_multilabel_categorical_crossentropy,
)
from gplinker.modeling.pointer import EfficientGlobalPointer, GlobalPointer, PairScores


@pytest.fixture(params=["cpu", "accelerator"], autouse=True)
def plan(request):
    """Every test runs under both block plans: the CPU's, and the accelerator's (large blocks, no read-backs)."""
    chosen = CPU_PLAN if request.param == "cpu" else ACCELERATOR_PLAN
    with forced(chosen):
        yield chosen


def zlpr_reference(scores: list[float], positives: set[int]) -> float:
    """log(1 + sum_{i in P} e^{-s_i}) + log(1 + sum_{j not in P} e^{s_j}), term by term."""
    pos = sum(math.exp(-s) for i, s in enumerate(scores) if i in positives)
    neg = sum(math.exp(s) for i, s in enumerate(scores) if i not in positives)
    return math.log(1 + pos) + math.log(1 + neg)


def soft_reference(scores: list[float], targets: list[float]) -> float:
    """log(1 + sum_i (1 - t_i) e^{s_i}) + log(1 + sum_i t_i e^{-s_i}), term by term."""
    neg = sum((1 - t) * math.exp(s) for s, t in zip(scores, targets))
    pos = sum(t * math.exp(-s) for s, t in zip(scores, targets))
    return math.log(1 + neg) + math.log(1 + pos)


def random_targets(rows: int, n: int, k: int, seed: int):
    """Multi-hot (rows, n) and the same positives as indices (rows, k) with -1 padding at random slots.

    Row 0 has no positives (all padding), row 1 has k positives (no padding), others 0..k positives.
    """
    g = torch.Generator().manual_seed(seed)
    dense = torch.zeros(rows, n)
    sparse = torch.full((rows, k), -1, dtype=torch.long)
    for r in range(rows):
        count = 0 if r == 0 else k if r == 1 else int(torch.randint(0, k + 1, (1,), generator=g))
        chosen = torch.randperm(n, generator=g)[:count]
        slots = torch.randperm(k, generator=g)[:count]
        dense[r, chosen] = 1
        sparse[r, slots] = chosen
    return dense, sparse


def test_dense_loss_matches_formula():
    g = torch.Generator().manual_seed(0)
    y_pred = 3 * torch.randn(6, 10, generator=g, dtype=torch.float64)
    y_true, _ = random_targets(6, 10, 4, seed=0)
    loss = multilabel_categorical_crossentropy(y_true, y_pred)
    assert loss.shape == (6,)
    for r in range(6):
        positives = {i for i in range(10) if y_true[r, i] == 1}
        assert loss[r].item() == pytest.approx(zlpr_reference(y_pred[r].tolist(), positives), rel=1e-12)


def test_sparse_loss_matches_formula():
    g = torch.Generator().manual_seed(1)
    y_pred = 3 * torch.randn(8, 12, generator=g)
    _, y_true = random_targets(8, 12, 5, seed=1)
    loss = sparse_multilabel_categorical_crossentropy(y_pred, y_true)
    assert loss.shape == (8,) and loss.dtype == torch.float32
    for r in range(8):
        positives = {i for i in y_true[r].tolist() if i >= 0}
        assert loss[r].item() == pytest.approx(zlpr_reference(y_pred[r].tolist(), positives), rel=1e-5, abs=1e-5)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sparse_loss_equals_dense_loss(seed, dtype):
    g = torch.Generator().manual_seed(seed)
    y_pred = 4 * torch.randn(2, 9, 30, generator=g, dtype=dtype)  # extra leading dims
    dense, sparse = random_targets(18, 30, 6, seed=seed)
    dense, sparse = dense.view(2, 9, 30), sparse.view(2, 9, 6)
    expected = multilabel_categorical_crossentropy(dense, y_pred)
    got = sparse_multilabel_categorical_crossentropy(y_pred, sparse)
    assert got.shape == (2, 9)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_sparse_loss_equals_dense_loss_when_positives_dominate_in_float32():
    # a trained head: positives far above 0, negatives far below; the loss must go to 0, not plateau
    y_pred = torch.tensor([[20.0, -20.0, -20.0, 25.0, -30.0], [18.0, 3.0, -20.0, -20.0, -20.0]], requires_grad=True)
    dense = torch.tensor([[1, 0, 0, 1, 0], [1, 0, 0, 0, 0]])
    sparse = torch.tensor([[3, 0], [0, -1]])
    got = sparse_multilabel_categorical_crossentropy(y_pred, sparse)
    expected = multilabel_categorical_crossentropy(dense, y_pred)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)
    (grad_sparse,) = torch.autograd.grad(got.sum(), y_pred)
    (grad_dense,) = torch.autograd.grad(expected.sum(), y_pred)
    torch.testing.assert_close(grad_sparse, grad_dense, atol=1e-7, rtol=1e-5)
    assert grad_sparse[0, 0].item() <= 0  # gradient descent keeps raising a positive


def test_sparse_loss_gradient_equals_dense_loss_gradient():
    g = torch.Generator().manual_seed(2)
    dense, sparse = random_targets(10, 20, 5, seed=2)
    y_pred = (3 * torch.randn(10, 20, generator=g, dtype=torch.float64)).requires_grad_(True)
    (grad_dense,) = torch.autograd.grad(multilabel_categorical_crossentropy(dense, y_pred).sum(), y_pred)
    (grad_sparse,) = torch.autograd.grad(sparse_multilabel_categorical_crossentropy(y_pred, sparse).sum(), y_pred)
    torch.testing.assert_close(grad_sparse, grad_dense, atol=1e-9, rtol=1e-7)


def test_sparse_loss_gradcheck_float64():
    g = torch.Generator().manual_seed(3)
    _, sparse = random_targets(5, 8, 3, seed=3)
    y_pred = torch.randn(5, 8, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda s: sparse_multilabel_categorical_crossentropy(s, sparse), (y_pred,))


def test_soft_loss_gradcheck_float64():
    g = torch.Generator().manual_seed(4)
    y_true = torch.rand(5, 8, generator=g, dtype=torch.float64)
    y_true[0, :3] = 0.0  # exact 0 and 1 weights too
    y_true[1, :3] = 1.0
    y_pred = torch.randn(5, 8, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda s: soft_multilabel_categorical_crossentropy(y_true, s), (y_pred,))


def test_rows_without_positives_give_finite_loss_and_gradient():
    g = torch.Generator().manual_seed(5)
    y_pred = (5 * torch.randn(3, 7, generator=g)).requires_grad_(True)
    for y_true in (torch.full((3, 4), -1), torch.empty(3, 0, dtype=torch.long)):
        loss = sparse_multilabel_categorical_crossentropy(y_pred, y_true)
        (grad,) = torch.autograd.grad(loss.sum(), y_pred)
        assert torch.isfinite(loss).all() and torch.isfinite(grad).all()
        for r in range(3):  # only the negative term log(1 + sum e^s) is left
            assert loss[r].item() == pytest.approx(zlpr_reference(y_pred[r].tolist(), set()), rel=1e-5)


def test_padding_entries_contribute_nothing():
    y_pred = torch.tensor([[2.0, -1.0, 0.5, -3.0]])
    one = sparse_multilabel_categorical_crossentropy(y_pred, torch.tensor([[2]]))
    padded = sparse_multilabel_categorical_crossentropy(y_pred, torch.tensor([[-1, 2, -1, -1]]))
    torch.testing.assert_close(padded, one)
    assert one.item() == pytest.approx(zlpr_reference([2.0, -1.0, 0.5, -3.0], {2}), rel=1e-6)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_logits_are_computed_in_float32(dtype):
    g = torch.Generator().manual_seed(6)
    y_pred = (3 * torch.randn(4, 16, generator=g)).to(dtype)
    dense, sparse = random_targets(4, 16, 3, seed=6)
    for loss in (
        sparse_multilabel_categorical_crossentropy(y_pred, sparse),
        multilabel_categorical_crossentropy(dense, y_pred),
        soft_multilabel_categorical_crossentropy(dense.to(dtype), y_pred),
    ):
        assert loss.dtype == torch.float32
        torch.testing.assert_close(loss, multilabel_categorical_crossentropy(dense, y_pred.float()))


def test_soft_loss_matches_formula():
    g = torch.Generator().manual_seed(7)
    y_pred = 3 * torch.randn(6, 9, generator=g, dtype=torch.float64)
    y_true = torch.rand(6, 9, generator=g, dtype=torch.float64)
    y_true[0, 0], y_true[0, 1] = 0.0, 1.0
    y_pred[1, :2], y_true[1, :2] = torch.tensor([300.0, -300.0]), torch.tensor([1.0, 0.0])  # 0 weight on e^300
    loss = soft_multilabel_categorical_crossentropy(y_true, y_pred)
    for r in range(6):
        assert loss[r].item() == pytest.approx(soft_reference(y_pred[r].tolist(), y_true[r].tolist()), rel=1e-12)


def test_soft_loss_equals_dense_loss_for_hard_labels():
    g = torch.Generator().manual_seed(8)
    y_pred = 4 * torch.randn(3, 5, 20, generator=g)
    dense, _ = random_targets(15, 20, 6, seed=8)
    dense = dense.view(3, 5, 20)
    y_pred[0, 0, :2], dense[0, 0, :2] = torch.tensor([100.0, -100.0]), torch.tensor([1.0, 0.0])  # weights 0 exact
    torch.testing.assert_close(
        soft_multilabel_categorical_crossentropy(dense, y_pred), multilabel_categorical_crossentropy(dense, y_pred)
    )


def test_pointer_loss_sums_heads_and_averages_batch():
    b, h, n = 3, 2, 4
    g = torch.Generator().manual_seed(9)
    logits = 2 * torch.randn(b, h, n, n, generator=g)
    cells = {  # (batch, head) -> gold (start, end) cells
        (0, 0): [(0, 1), (2, 3)],
        (0, 1): [(3, 3)],
        (1, 0): [],
        (1, 1): [(1, 2), (0, 0), (1, 3)],
        (2, 0): [(2, 2)],
        (2, 1): [],
    }
    positives = torch.full((b, h, 3), -1, dtype=torch.long)
    for (bi, hi), spans in cells.items():
        for slot, (i, j) in enumerate(spans):
            positives[bi, hi, slot] = i * n + j
    expected = 0.0
    for bi in range(b):
        for hi in range(h):
            scores = [logits[bi, hi, i, j].item() for i in range(n) for j in range(n)]
            expected += zlpr_reference(scores, {i * n + j for i, j in cells[bi, hi]})
    loss = pointer_loss(PairScores(logits, None), positives)
    assert loss.shape == ()
    assert loss.item() == pytest.approx(expected / b, rel=1e-5)


def test_pointer_loss_ignores_masked_cells_of_a_head():
    torch.manual_seed(0)
    egp = EfficientGlobalPointer(8, 2, 4)
    hidden = torch.randn(2, 4, 8)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    positives = torch.tensor([[[1, -1], [0 * 4 + 3, 2 * 4 + 2]], [[-1, -1], [0 * 4 + 1, -1]]])
    scores = egp(hidden, mask)
    logits = scores.logits
    loss = pointer_loss(scores, positives)
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(p.grad).all() for p in egp.parameters())
    expected = 0.0
    for b in range(2):
        live = [(i, j) for i in range(4) for j in range(4) if i <= j and mask[b, i] and mask[b, j]]
        for h in range(2):
            scores = [logits[b, h, i, j].item() for i, j in live]
            gold = {live.index((p // 4, p % 4)) for p in positives[b, h].tolist() if p >= 0}
            expected += zlpr_reference(scores, gold)
    assert loss.item() == pytest.approx(expected / 2, rel=1e-5)


# --- the blockwise implementation: fused EGP path, block sizes, upstream gradients of any sign ------


def egp_batch(seed: int, tril_mask: bool = True):
    """A small EGP, hidden (3, 6, 8) with padding, and 0-3 unique unmasked positives per (sample, head)."""
    torch.manual_seed(seed)
    egp = EfficientGlobalPointer(8, 4, 4, tril_mask=tril_mask)
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(3, 6, 8, generator=g, requires_grad=True)
    lengths = [6, 4, 2]
    mask = torch.tensor([[1] * n + [0] * (6 - n) for n in lengths])
    positives = torch.full((3, 4, 3), -1, dtype=torch.long)
    for b, n in enumerate(lengths):
        live = torch.tensor([i * 6 + j for i in range(n) for j in range(n) if i <= j or not tril_mask])
        for h in range(4):
            count = int(torch.randint(0, 4, (1,), generator=g))
            positives[b, h, :count] = live[torch.randperm(len(live), generator=g)[:count]]
    return egp, hidden, mask, positives


@pytest.mark.parametrize("tril_mask", [True, False])
def test_pointer_loss_with_parts_equals_the_plain_path(tril_mask):
    egp, hidden, mask, positives = egp_batch(10, tril_mask)
    scores = egp(hidden, mask)
    fast = pointer_loss(scores, positives)
    grads = torch.autograd.grad(fast, [hidden, *egp.parameters()])
    plain = pointer_loss(PairScores(egp(hidden, mask).logits, None), positives)
    expected = torch.autograd.grad(plain, [hidden, *egp.parameters()])
    torch.testing.assert_close(fast, plain)
    for got, want in zip(grads, expected):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)


def test_pointer_loss_with_parts_sends_no_gradient_through_the_logits():
    # the fast path back-propagates into the parts: d loss / d logits (B, H, L, L) is never built
    egp, hidden, mask, positives = egp_batch(10)
    for parts_given in (True, False):
        scores = egp(hidden, mask)
        scores.logits.retain_grad()
        pointer_loss(scores if parts_given else PairScores(scores.logits, None), positives).backward()
        assert (scores.logits.grad is None) == parts_given
        assert hidden.grad is not None and hidden.grad.abs().max() > 0
        hidden.grad = None


def test_an_op_between_head_and_loss_gives_the_exact_same_loss():
    egp, hidden, mask, positives = egp_batch(17)
    scores = egp(hidden, mask)
    assert scores.parts is not None
    fast = pointer_loss(scores, positives)
    assert torch.equal(pointer_loss(PairScores(scores.logits * 1, None), positives), fast)
    assert torch.equal(pointer_loss(PairScores(scores.logits, None), positives), fast)


def test_transformed_logits_as_plain_scores_give_the_loss_of_the_new_logits():
    egp, hidden, mask, positives = egp_batch(11)
    logits = egp(hidden, mask).logits.clone()
    logits[0, 0, 0, :] = 3.0  # cells (0, j) of sample 0, head 0
    loss = pointer_loss(PairScores(logits, None), positives)
    expected = 0.0
    for b in range(3):
        for h in range(4):
            expected += zlpr_reference(logits[b, h].flatten().tolist(), {p for p in positives[b, h].tolist() if p >= 0})
    assert loss.item() == pytest.approx(expected / 3, rel=1e-5)


@pytest.mark.parametrize("chunk", [1, 5, 64])
def test_small_blocks_give_the_same_loss_and_gradients(plan, chunk):
    egp, hidden, mask, positives = egp_batch(12)
    big = pointer_loss(egp(hidden, mask), positives)
    big_grad = torch.autograd.grad(big, hidden)
    y_pred = 3 * torch.randn(2, 5, 30, generator=torch.Generator().manual_seed(12))
    _, sparse = random_targets(10, 30, 4, seed=12)
    sparse = sparse.view(2, 5, 4)
    rows, rows_grad = zlpr_with_grad(y_pred, sparse)
    with forced(BlockPlan(chunk, plan.host_checks)):
        small = pointer_loss(egp(hidden, mask), positives)
        small_grad = torch.autograd.grad(small, hidden)
        small_rows, small_rows_grad = zlpr_with_grad(y_pred, sparse)
    torch.testing.assert_close(small, big)
    torch.testing.assert_close(small_grad, big_grad, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(small_rows, rows)
    torch.testing.assert_close(small_rows_grad, rows_grad)


def zlpr_with_grad(y_pred: torch.Tensor, sparse: torch.Tensor, weights: torch.Tensor | None = None):
    """Sparse loss rows and d (sum of weights * rows) / d y_pred."""
    y_pred = y_pred.detach().requires_grad_(True)
    loss = sparse_multilabel_categorical_crossentropy(y_pred, sparse)
    (grad,) = torch.autograd.grad(loss, y_pred, torch.ones_like(loss) if weights is None else weights)
    return loss.detach(), grad


def test_negative_and_zero_upstream_gradients_match_dense_loss():
    g = torch.Generator().manual_seed(13)
    dense, sparse = random_targets(6, 20, 4, seed=13)
    y_pred = 3 * torch.randn(6, 20, generator=g, dtype=torch.float64)
    weights = torch.tensor([1.0, -2.0, 0.0, 0.5, -0.1, 3.0], dtype=torch.float64)
    _, got = zlpr_with_grad(y_pred, sparse, weights)
    y = y_pred.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(multilabel_categorical_crossentropy(dense, y), y, weights)
    torch.testing.assert_close(got, expected, atol=1e-12, rtol=1e-9)
    assert (got[2] == 0).all()  # weight 0: exactly no gradient


def test_bf16_logits_get_bf16_gradient_close_to_float32():
    g = torch.Generator().manual_seed(14)
    _, sparse = random_targets(4, 64, 3, seed=14)
    y_pred = 2 * torch.randn(4, 64, generator=g)
    _, grad32 = zlpr_with_grad(y_pred, sparse)
    _, grad16 = zlpr_with_grad(y_pred.bfloat16(), sparse)
    assert grad16.dtype == torch.bfloat16
    torch.testing.assert_close(grad16.float(), grad32, atol=2e-3, rtol=1e-2)


def test_pointer_loss_plus_another_use_of_the_logits_sums_both_gradients():
    egp, hidden, mask, positives = egp_batch(15)
    weights = torch.randn(3, 4, 6, 6, generator=torch.Generator().manual_seed(15))
    scores = egp(hidden, mask)
    live = scores.logits > -1e11
    total = pointer_loss(scores, positives) + (scores.logits * weights)[live].sum()  # fast path + plain use
    (grad,) = torch.autograd.grad(total, hidden)
    logits = egp(hidden, mask).logits * 1  # plain path for both terms
    expected_total = pointer_loss(PairScores(logits, None), positives) + (logits * weights)[live].sum()
    (expected,) = torch.autograd.grad(expected_total, hidden)
    torch.testing.assert_close(grad, expected, atol=1e-6, rtol=1e-5)


def test_pointer_loss_in_inference_mode_equals_the_training_value():
    egp, hidden, mask, positives = egp_batch(16)
    expected = pointer_loss(egp(hidden, mask), positives)
    with torch.inference_mode():
        scores = egp(hidden, mask)
        got = pointer_loss(scores, positives)
        plain = pointer_loss(PairScores(scores.logits, None), positives)
    torch.testing.assert_close(got, expected.detach())
    torch.testing.assert_close(plain, expected.detach())


# --- positives listed more than once: counted once per listing, in the loss and in its gradient ------


def zlpr_plain(s: torch.Tensor, y_true: torch.Tensor) -> torch.Tensor:
    """Per row of s (..., n): log(1 + sum over listed positives of e^{-s}) + log(1 + sum over the other cells of e^{s}).

    Written out with indexing and logsumexp, so autograd gives the gradient; y_true (..., k), -1 = pad.
    """
    rows, ys = s.reshape(-1, s.shape[-1]), y_true.reshape(-1, y_true.shape[-1])
    zero = s.new_zeros(1)
    out = []
    for row, y in zip(rows, ys):
        listed = [i for i in y.tolist() if i >= 0]  # duplicates kept
        other = torch.ones(row.shape[0], dtype=torch.bool)
        other[listed] = False
        pos = torch.logsumexp(torch.cat([-row[listed], zero]), dim=0)
        neg = torch.logsumexp(torch.cat([row[other], zero]), dim=0)
        out.append(pos + neg)
    return torch.stack(out).view(s.shape[:-1])


def duplicated_positives(rows: int, n: int, seed: int) -> torch.Tensor:
    """(rows, 6) positive indices with -1 padding: every row but the last lists some index 2 or 3 times."""
    g = torch.Generator().manual_seed(seed)
    out = torch.full((rows, 6), -1, dtype=torch.long)
    for r in range(rows - 1):
        a, b = torch.randperm(n, generator=g)[:2].tolist()
        out[r, :5] = torch.tensor([a, b, a, -1, a] if r % 2 else [b, a, b, a, -1])
    out[-1, 2] = int(torch.randint(n, (1,), generator=g))  # listed once
    return out


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sparse_loss_counts_a_duplicated_positive_once_per_listing(dtype):
    g = torch.Generator().manual_seed(18)
    s = (3 * torch.randn(2, 3, 11, generator=g, dtype=dtype)).requires_grad_(True)
    y_true = duplicated_positives(6, 11, seed=18).view(2, 3, 6)
    got = sparse_multilabel_categorical_crossentropy(s, y_true)
    (grad,) = torch.autograd.grad(got.sum(), s)
    want = zlpr_plain(s, y_true)
    (want_grad,) = torch.autograd.grad(want.sum(), s)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(grad, want_grad)


def head_batch(head_cls, dtype: torch.dtype, seed: int):
    """A small head in dtype, hidden (2, 5, 8) with padding, and unmasked positives listed up to 3 times."""
    torch.manual_seed(seed)
    head = head_cls(8, 3, 4).to(dtype)
    hidden = torch.randn(2, 5, 8, generator=torch.Generator().manual_seed(seed), dtype=dtype, requires_grad=True)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    positives = torch.tensor([
        [[0 * 5 + 2, 1 * 5 + 3, 0 * 5 + 2, -1], [4 * 5 + 4, 4 * 5 + 4, 4 * 5 + 4, 0], [-1, -1, -1, -1]],
        [[1 * 5 + 1, -1, 1 * 5 + 1, 0 * 5 + 2], [2 * 5 + 2, -1, -1, -1], [0 * 5 + 1, 0 * 5 + 1, -1, 1 * 5 + 2]],
    ])
    return head, hidden, mask, positives


@pytest.mark.parametrize("head_cls", [EfficientGlobalPointer, GlobalPointer])  # fast path and plain path
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_pointer_loss_counts_a_duplicated_positive_once_per_listing(head_cls, dtype):
    head, hidden, mask, positives = head_batch(head_cls, dtype, seed=19)
    params = [hidden, *head.parameters()]
    scores = head(hidden, mask)
    assert (scores.parts is None) == (head_cls is GlobalPointer)
    got = pointer_loss(scores, positives)
    grads = torch.autograd.grad(got, params)
    logits = head(hidden, mask).logits
    want = zlpr_plain(logits.flatten(2), positives).sum(dim=1).mean()
    want_grads = torch.autograd.grad(want, params)
    torch.testing.assert_close(got, want)
    for g, w in zip(grads, want_grads):
        torch.testing.assert_close(g, w)
