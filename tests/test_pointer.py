"""GlobalPointer heads and RoPE against plain per-position / per-cell reference formulas."""

import math

import pytest
import torch

from gplinker.modeling import pointer
from gplinker.modeling.block_plan import ACCELERATOR_PLAN, CPU_PLAN, BlockPlan, forced
from gplinker.modeling.pointer import (
    EfficientGlobalPointer,
    GlobalPointer,
    PairScores,
    apply_rope,
    egp_logits,
    mask_value,
    sinusoidal_rope,
)


@pytest.fixture(params=["cpu", "accelerator"], autouse=True)
def plan(request):
    """Every test runs under both block plans: the CPU's, and the accelerator's (large blocks, no read-backs)."""
    chosen = CPU_PLAN if request.param == "cpu" else ACCELERATOR_PLAN
    with forced(chosen):
        yield chosen


B, L, D, HEADS, HEAD_SIZE = 2, 5, 8, 3, 4


def rope_reference(vec: torch.Tensor, m: int) -> torch.Tensor:
    """Rotate each pair (v_2k, v_2k+1) of one vector by m / 10000^(2k/d), written out per pair."""
    d = vec.shape[0]
    out = torch.empty_like(vec)
    for k in range(d // 2):
        theta = m / 10000 ** (2 * k / d)
        a, b = vec[2 * k].item(), vec[2 * k + 1].item()
        out[2 * k] = a * math.cos(theta) - b * math.sin(theta)
        out[2 * k + 1] = a * math.sin(theta) + b * math.cos(theta)
    return out


def is_masked(mask: torch.Tensor, b: int, i: int, j: int, tril_mask: bool) -> bool:
    """A cell is masked when its start or end is padding, or (tril_mask) when it starts after it ends."""
    return not mask[b, i] or not mask[b, j] or (tril_mask and i > j)


def egp_reference(egp: EfficientGlobalPointer, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """s_h(i,j) = q_i.k_j/sqrt(d) + (W x_i)[2h+1]/2 + (W x_j)[2h]/2 with x = p_dense(h), one cell at a time."""
    out = torch.empty(hidden.shape[0], egp.heads, hidden.shape[1], hidden.shape[1])
    for b in range(hidden.shape[0]):
        xs = [egp.p_dense.weight @ hidden[b, t] + egp.p_dense.bias for t in range(hidden.shape[1])]
        qs = [x[0::2] for x in xs]
        ks = [x[1::2] for x in xs]
        if egp.rope:
            qs = [rope_reference(q, t) for t, q in enumerate(qs)]
            ks = [rope_reference(k, t) for t, k in enumerate(ks)]
        biases = [egp.q_dense.weight @ x + egp.q_dense.bias for x in xs]
        for h in range(egp.heads):
            for i in range(hidden.shape[1]):
                for j in range(hidden.shape[1]):
                    if is_masked(mask, b, i, j, egp.tril_mask):
                        out[b, h, i, j] = mask_value(torch.float32)
                    else:
                        score = torch.dot(qs[i], ks[j]) / math.sqrt(egp.head_size)
                        out[b, h, i, j] = score + biases[i][2 * h + 1] / 2 + biases[j][2 * h] / 2
    return out


def gp_reference(gp: GlobalPointer, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """s_h(i,j) = q_{h,i}.k_{h,j}/sqrt(d), head h owning rows [2dh, 2dh+d) (q) and [2dh+d, 2dh+2d) (k)."""
    d = gp.head_size
    out = torch.empty(hidden.shape[0], gp.heads, hidden.shape[1], hidden.shape[1])
    for b in range(hidden.shape[0]):
        for h in range(gp.heads):
            wq, bq = gp.dense.weight[2 * d * h : 2 * d * h + d], gp.dense.bias[2 * d * h : 2 * d * h + d]
            wk, bk = gp.dense.weight[2 * d * h + d : 2 * d * (h + 1)], gp.dense.bias[2 * d * h + d : 2 * d * (h + 1)]
            for i in range(hidden.shape[1]):
                for j in range(hidden.shape[1]):
                    if is_masked(mask, b, i, j, gp.tril_mask):
                        out[b, h, i, j] = mask_value(torch.float32)
                        continue
                    q, k = wq @ hidden[b, i] + bq, wk @ hidden[b, j] + bk
                    if gp.rope:
                        q, k = rope_reference(q, i), rope_reference(k, j)
                    out[b, h, i, j] = torch.dot(q, k) / math.sqrt(d)
    return out


def make_inputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(B, L, D, generator=g)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    return hidden, mask


def test_mask_value_is_large_finite_negative_per_dtype():
    assert mask_value(torch.float32) == -1e12
    assert mask_value(torch.bfloat16) == -1e12
    assert mask_value(torch.float16) == torch.finfo(torch.float16).min == -65504.0
    for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        assert math.isfinite(torch.tensor(mask_value(dtype), dtype=dtype).item())


def test_sinusoidal_rope_matches_explicit_angles():
    cos, sin = sinusoidal_rope(7, 6, "cpu", torch.float32)
    assert cos.shape == sin.shape == (7, 6)
    for m in range(7):
        for k in range(3):
            theta = m * 10000 ** (-2 * k / 6)
            for c in (2 * k, 2 * k + 1):  # pairs share one angle
                assert cos[m, c].item() == pytest.approx(math.cos(theta), abs=1e-6)
                assert sin[m, c].item() == pytest.approx(math.sin(theta), abs=1e-6)


def test_apply_rope_rotates_each_pair_by_its_position_angle():
    x = torch.randn(6, 8, generator=torch.Generator().manual_seed(1))
    cos, sin = sinusoidal_rope(6, 8, "cpu", torch.float32)
    out = apply_rope(x, cos, sin)
    expected = torch.stack([rope_reference(x[m], m) for m in range(6)])
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.norm(dim=-1), x.norm(dim=-1), atol=1e-5, rtol=1e-5)  # rotation


def test_rope_inner_product_depends_only_on_relative_position():
    g = torch.Generator().manual_seed(2)
    q, k = torch.randn(8, generator=g, dtype=torch.float64), torch.randn(8, generator=g, dtype=torch.float64)
    n_pos = 12
    cos, sin = sinusoidal_rope(n_pos, 8, "cpu", torch.float64)
    qs = apply_rope(q.expand(n_pos, 8), cos, sin)  # the same q placed at every position
    ks = apply_rope(k.expand(n_pos, 8), cos, sin)
    scores = qs @ ks.T  # (L, L): q_m . k_n
    for m in range(n_pos):
        for n in range(n_pos):
            # shifting both positions to make the smaller one 0 leaves the score unchanged
            shift = min(m, n)
            assert scores[m, n].item() == pytest.approx(scores[m - shift, n - shift].item(), abs=1e-9)
    assert not torch.allclose(scores[0, 1], scores[0, 2])  # and it does depend on m - n


@pytest.mark.parametrize("rope", [True, False])
@pytest.mark.parametrize("tril_mask", [True, False])
def test_efficient_global_pointer_matches_reference(rope, tril_mask):
    torch.manual_seed(0)
    egp = EfficientGlobalPointer(D, HEADS, HEAD_SIZE, rope=rope, tril_mask=tril_mask)
    hidden, mask = make_inputs()
    with torch.no_grad():
        out = egp(hidden, mask).logits
        parts = egp.parts(hidden, mask)
        plain = egp_logits(parts.qk, parts.start, parts.end, parts.drop)
        expected = egp_reference(egp, hidden, mask)
    assert out.shape == plain.shape == (B, HEADS, L, L)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(plain, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("rope", [True, False])
@pytest.mark.parametrize("tril_mask", [True, False])
def test_global_pointer_matches_reference(rope, tril_mask):
    torch.manual_seed(0)
    gp = GlobalPointer(D, HEADS, HEAD_SIZE, rope=rope, tril_mask=tril_mask)
    hidden, mask = make_inputs()
    with torch.no_grad():
        out = gp(hidden, mask).logits
        expected = gp_reference(gp, hidden, mask)
    assert out.shape == (B, HEADS, L, L)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("head_cls", [EfficientGlobalPointer, GlobalPointer])
@pytest.mark.parametrize("mask_dtype", [torch.bool, torch.long])
def test_masked_cells_equal_mask_value(head_cls, mask_dtype):
    torch.manual_seed(0)
    head = head_cls(D, HEADS, HEAD_SIZE)
    hidden, mask = make_inputs()
    out = head(hidden, mask.to(mask_dtype)).logits
    for b in range(B):
        for i in range(L):
            for j in range(L):
                masked = is_masked(mask, b, i, j, tril_mask=True)
                assert (out[b, :, i, j] == mask_value(torch.float32)).all().item() == masked


@pytest.mark.parametrize("head_cls", [EfficientGlobalPointer, GlobalPointer])
def test_padding_does_not_change_real_logits(head_cls):
    torch.manual_seed(0)
    head = head_cls(D, HEADS, HEAD_SIZE)
    g = torch.Generator().manual_seed(3)
    short = torch.randn(1, 3, D, generator=g)
    padded = torch.cat([short, 100 * torch.randn(1, 4, D, generator=g)], dim=1)  # junk in the padding
    with torch.no_grad():
        alone = head(short, torch.ones(1, 3, dtype=torch.long)).logits
        in_batch = head(padded, torch.tensor([[1, 1, 1, 0, 0, 0, 0]])).logits
    torch.testing.assert_close(in_batch[:, :, :3, :3], alone, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("head_cls", [EfficientGlobalPointer, GlobalPointer])
def test_backward_through_in_place_mask_gives_padding_no_gradient(head_cls):
    torch.manual_seed(0)
    head = head_cls(D, HEADS, HEAD_SIZE)
    hidden, mask = make_inputs()
    hidden.requires_grad_(True)
    out = head(hidden, mask).logits
    out.where(out > mask_value(out.dtype), 0).square().sum().backward()
    assert torch.isfinite(hidden.grad).all()
    assert hidden.grad[1, 3:].abs().max().item() == 0.0  # padded tokens touch only masked cells
    assert hidden.grad[1, :3].abs().max().item() > 0.0


@pytest.mark.parametrize("head_cls", [EfficientGlobalPointer, GlobalPointer])
def test_bf16_autocast_on_cpu_stays_finite(head_cls):
    torch.manual_seed(0)
    head = head_cls(D, HEADS, HEAD_SIZE)
    hidden, mask = make_inputs()
    hidden = hidden * 10
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = head(hidden, mask).logits
    assert torch.isfinite(out).all()
    assert (out[1, :, 4, 4] == torch.tensor(mask_value(out.dtype), dtype=out.dtype)).all()
    out.float().clamp(min=-1e4).sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in head.parameters())


# --- the blockwise implementation (pointer._PairScores) against pointer.egp_logits under autograd ------


def egp_plain(egp: EfficientGlobalPointer, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The EGP logits as pointer.egp_logits of the head's parts: plain broadcast ops, differentiated by autograd."""
    parts = egp.parts(hidden, mask)
    return egp_logits(parts.qk, parts.start, parts.end, parts.drop)


@pytest.mark.parametrize("chunk", [1, 7, 40, 1 << 18])  # one cell per block up to one block for all
@pytest.mark.parametrize("tril_mask", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_efficient_global_pointer_blocks_match_plain_autograd(plan, chunk, tril_mask, dtype):
    with forced(BlockPlan(chunk, plan.host_checks)):
        check_blocks_match_plain_autograd(tril_mask, dtype)


def check_blocks_match_plain_autograd(tril_mask: bool, dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    egp = EfficientGlobalPointer(D, HEADS, HEAD_SIZE, tril_mask=tril_mask).to(dtype)
    hidden, mask = make_inputs(4)
    hidden = hidden.to(dtype).requires_grad_(True)
    weights = torch.randn(B, HEADS, L, L, generator=torch.Generator().manual_seed(5), dtype=dtype)
    out = egp(hidden, mask).logits
    grads = torch.autograd.grad((out * weights).sum(), [hidden, *egp.parameters()])
    expected = egp_plain(egp, hidden, mask)
    expected_grads = torch.autograd.grad((expected * weights).sum(), [hidden, *egp.parameters()])
    assert torch.equal(out, expected)  # the same sums in the same order: bit for bit
    for got, want in zip(grads, expected_grads):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_egp_returns_the_parts_of_its_logits_and_gp_none():
    torch.manual_seed(0)
    egp, gp = EfficientGlobalPointer(D, HEADS, HEAD_SIZE), GlobalPointer(D, HEADS, HEAD_SIZE)
    hidden, mask = make_inputs()
    scores = egp(hidden, mask)
    assert isinstance(scores, PairScores) and scores.parts is not None
    parts = scores.parts
    assert parts.qk.shape == (B, L, L) and parts.start.shape == parts.end.shape == (B, HEADS, L)
    assert parts.drop.dtype == torch.bool and parts.drop.shape == (B, L, L)
    for b in range(B):
        for i in range(L):
            for j in range(L):
                assert parts.drop[b, i, j].item() == is_masked(mask, b, i, j, tril_mask=True)
    assert torch.equal(scores.logits, egp_logits(parts.qk, parts.start, parts.end, parts.drop))
    plain = gp(hidden, mask)
    assert isinstance(plain, PairScores) and plain.parts is None and plain.logits.shape == (B, HEADS, L, L)


def test_egp_logits_masks_non_finite_cells_exactly():
    qk = torch.zeros(1, 2, 2)
    start = torch.tensor([[[1.0, float("inf")]]])  # (1, 1, 2): start of row 1 is inf
    end = torch.tensor([[[2.0, float("-inf")]]])  # end of column 1 is -inf: inf - inf at cell (1, 1)
    drop = torch.tensor([[[False, True], [True, True]]])
    out = egp_logits(qk, start, end, drop)
    assert torch.equal(out, torch.tensor([[[[3.0, -1e12], [-1e12, -1e12]]]]))


def test_non_finite_padding_still_gives_exact_masked_cells():
    torch.manual_seed(0)
    egp = EfficientGlobalPointer(D, HEADS, HEAD_SIZE)
    hidden, mask = make_inputs()
    clean = egp(hidden, mask).logits
    hidden[1, 3:] = float("inf")  # padding of sample 1: its q_dense biases become inf / nan
    out = egp(hidden, mask).logits
    for i in range(L):
        for j in range(L):
            if is_masked(mask, 1, i, j, tril_mask=True):
                assert (out[1, :, i, j] == mask_value(torch.float32)).all()
    torch.testing.assert_close(out, clean)  # real cells never read padding


def test_infinite_gradient_on_masked_cells_passes_nothing():
    torch.manual_seed(0)
    egp = EfficientGlobalPointer(D, HEADS, HEAD_SIZE)
    hidden, mask = make_inputs()
    hidden.requires_grad_(True)
    out = egp(hidden, mask).logits
    weights = torch.ones_like(out)
    weights[1, :, 4, 4] = float("inf")  # d/d out at a masked (padding) cell; inf * 0 would be nan
    out.backward(weights)
    assert torch.isfinite(hidden.grad).all()
    assert hidden.grad[1, 3:].abs().max().item() == 0.0


@pytest.mark.parametrize("head_cls", [EfficientGlobalPointer, GlobalPointer])
def test_inference_mode_gives_the_same_logits(head_cls):
    torch.manual_seed(0)
    head = head_cls(D, HEADS, HEAD_SIZE)
    hidden, mask = make_inputs()
    with torch.no_grad():
        expected = head(hidden, mask)
    with torch.inference_mode():
        out = head(hidden, mask)
    torch.testing.assert_close(out.logits, expected.logits)
    assert (out.parts is None) == (expected.parts is None) == (head_cls is GlobalPointer)


def test_empty_input_has_no_blocks_and_an_egp_without_channels_runs_forward_and_backward():
    cells = CPU_PLAN.cells
    assert pointer._blocks(0, HEADS, L, cells) == [] and pointer._blocks(B, 0, L, cells) == []
    assert pointer._blocks(B, HEADS, 0, cells) == []
    assert pointer._blocks(1, 1, 2, cells) == [(slice(0, 1), slice(0, 1))]
    egp = EfficientGlobalPointer(D, 0, HEAD_SIZE)  # e.g. an NER label set with no entity type
    hidden, mask = make_inputs(4)
    hidden = hidden.requires_grad_(True)
    out = egp(hidden, mask).logits
    assert out.shape == (B, 0, L, L)
    (grad,) = torch.autograd.grad(out.sum() + hidden.sum(), [hidden])
    assert torch.equal(grad, torch.ones_like(hidden))  # no channel: only the direct term reaches hidden
