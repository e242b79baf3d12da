"""GlobalPointer heads: RoPE, EfficientGlobalPointer and GlobalPointer.

Both heads score every span (i, j) of a sequence with a start-end bilinear form:
    s_h(i, j) = q_{h,i}^T k_{h,j} / sqrt(d)              (GlobalPointer, kexue.fm/archives/8373)
with q, k rotated by RoPE so the score sees the relative distance j - i. The efficient variant
(kexue.fm/archives/8877, bert4keras layers.EfficientGlobalPointer) shares one q/k projection across
heads and gives each head two cheap linear terms instead:
    s_h(i, j) = q_i^T k_j / sqrt(d) + w_{h,start}^T x_i / 2 + w_{h,end}^T x_j / 2,   x = [q; k].
Padding rows/columns and, optionally, the lower triangle i > j are masked with a large finite
negative (never -inf, so fp16/bf16 stay finite and the loss never sees inf - inf).

Interface: both heads return a PairScores, the logits (B, H, L, L) plus, for the EGP, the parts they
are the sum of (EgpParts; egp_logits is that sum). losses.pointer_loss takes the PairScores.

Speed and memory (scripts/bench_heads.py): the EGP logits are written in blocks by one autograd
Function (_PairScores) that keeps only the small parts qk (B, L, L), start/end (B, H, L) and the
mask; given those parts, losses.pointer_loss back-propagates into them block by block, so no
(B, H, L, L) tensor other than the logits themselves is ever built. The block size, and whether a
fast path may be checked by reading values back, come from block_plan.plan_for(device).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from gplinker.modeling.block_plan import plan_for

FillBlock = Callable[[Tensor, slice, slice], object]  # (block, batch slice, head slice) -> writes d loss/d logits


def mask_value(dtype: torch.dtype) -> float:
    """Large finite negative used for masked logits: max(-1e12, finfo(dtype).min), AMP safe."""
    return max(-1e12, torch.finfo(dtype).min)


def sinusoidal_rope(seq_len: int, dim: int, device: torch.device, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """RoPE cos and sin tables, each (L, dim), pairs interleaved as in RoFormer/bert4keras."""
    # theta[m, k] = m * 10000^(-2k/dim); each pair (2k, 2k+1) shares theta[m, k].
    work = torch.promote_types(dtype, torch.float32)  # angles in >= float32, then cast
    inv_freq = 10000.0 ** (-torch.arange(0, dim // 2, device=device, dtype=work) * 2 / dim)
    pos = torch.arange(seq_len, device=device, dtype=work)
    theta = (pos[:, None] * inv_freq[None, :]).repeat_interleave(2, dim=-1)  # (L, dim)
    return theta.cos().to(dtype), theta.sin().to(dtype)


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate each pair (x_2k, x_2k+1) of x (..., L, dim) by its position's angle; cos/sin broadcast."""
    rotated = torch.stack([-x[..., 1::2], x[..., ::2]], dim=-1).flatten(-2)  # (-x1, x0, -x3, x2, ...)
    return x * cos + rotated * sin


def _dropped_cells(mask: Tensor, tril_mask: bool, max_span: int | None = None) -> Tensor:
    """Bool (B, L, L): True where cell (i, j) is masked.

    Masked: i or j is padding; with tril_mask, i > j; with max_span, spans of more than max_span
    tokens (j - i + 1 > max_span), which the training data never held, so the heads never learned
    them as negatives (model.max_span_length).
    """
    keep = mask.bool()  # (B, L)
    drop = ~(keep[:, :, None] & keep[:, None, :])  # (B, L, L), by broadcasting: no ones_like/tril tensors
    if tril_mask or max_span is not None:
        pos = torch.arange(mask.shape[-1], device=mask.device)
        gap = pos[None, :] - pos[:, None]  # (L, L): j - i
        if tril_mask:
            drop |= gap < 0
        if max_span is not None:
            drop |= gap >= max_span
    return drop


def _mask_logits_(logits: Tensor, mask: Tensor, tril_mask: bool, max_span: int | None = None) -> Tensor:
    """Fill the masked cells (see _dropped_cells) of fresh logits (B, H, L, L) in place."""
    return logits.masked_fill_(_dropped_cells(mask, tril_mask, max_span)[:, None], mask_value(logits.dtype))


def egp_logits(qk: Tensor, start: Tensor, end: Tensor, drop: Tensor) -> Tensor:
    """EGP span logits (B, H, L, L) from their parts, in plain broadcast ops (torch.export/ONNX trace them):

        logits[b, h, i, j] = qk[b, i, j] + (start[b, h, i] + end[b, h, j]),   mask_value where drop[b, i, j].

    qk (B, L, L), start and end (B, H, L), drop (B, L, L) bool. This is the EGP sum; _PairScores computes
    the same values, bit for bit, block by block.
    """
    logits = qk[:, None] + (start[..., None] + end[:, :, None])  # (B, H, L, L)
    return logits.masked_fill_(drop[:, None], mask_value(logits.dtype))


@dataclass(frozen=True, eq=False)
class EgpParts:
    """What EGP logits are made of: they equal egp_logits(qk, start, end, drop)."""

    qk: Tensor  # (B, L, L)
    start: Tensor  # (B, H, L)
    end: Tensor  # (B, H, L)
    drop: Tensor  # (B, L, L) bool, True = masked cell

    def backward_by_blocks(self, fill_block: FillBlock, dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor]:
        """Grads w.r.t. (qk, start, end); fill_block(block, bs, hs) writes d loss / d logits[bs, hs] into block.

        With host checks (CPU) masked cells are zeroed by a multiply, and again exactly when that gave
        inf * 0 = nan somewhere; without (accelerators) they are zeroed exactly at once.
        """
        plan = plan_for(self.drop.device)
        grads = _reduce_blocks(fill_block, self.drop, self.start.shape, dtype, exact=not plan.host_checks,
                               cells=plan.cells)
        if plan.host_checks and not all(g.isfinite().all() for g in grads):  # inf * 0 = nan at a masked cell
            grads = _reduce_blocks(fill_block, self.drop, self.start.shape, dtype, exact=True, cells=plan.cells)
        grad_qk, grad_start, grad_end = grads
        return grad_qk.to(self.qk.dtype), grad_start.to(self.start.dtype), grad_end.to(self.end.dtype)


@dataclass(frozen=True, eq=False)
class PairScores:
    """A pointer head's output: span logits (B, H, L, L) and, for an EfficientGlobalPointer, their parts.

    Contract: with parts, logits equal egp_logits(parts.qk, parts.start, parts.end, parts.drop), and
    losses.pointer_loss reads the loss off logits but sends its gradient straight into the parts,
    never through logits. So the logits of a PairScores are not to be modified in place (the loss
    would see the change, its gradient would not). A caller who transforms the logits builds
    PairScores(new_logits, None) and gets exactly the plain loss over new_logits, with its gradient
    through new_logits. GlobalPointer's parts are None.
    """

    logits: Tensor  # (B, H, L, L)
    parts: EgpParts | None


def _blocks(b: int, h: int, l: int, cells: int) -> list[tuple[slice, slice]]:
    """(batch slice, head slice) blocks of about `cells` cells covering a (b, h, l, l) tensor, in order.

    An empty tensor (no batch row, no head channel or no position) has no blocks.
    """
    if b * h * l == 0:
        return []
    if h * l * l <= cells:
        step = cells // (h * l * l)
        return [(slice(b0, min(b, b0 + step)), slice(0, h)) for b0 in range(0, b, step)]
    step = max(1, cells // (l * l))
    return [(slice(b0, b0 + 1), slice(h0, min(h, h0 + step))) for b0 in range(b) for h0 in range(0, h, step)]


def _reduce_blocks(fill_block: FillBlock, drop: Tensor, shape: torch.Size, dtype: torch.dtype,
                   exact: bool, cells: int) -> tuple[Tensor, Tensor, Tensor]:
    """Sum each filled block, with masked cells zeroed, over heads (-> qk), ends j (-> start), starts i (-> end)."""
    b, h, l = shape
    grad_qk = drop.new_zeros(b, l, l, dtype=dtype)
    grad_start, grad_end = drop.new_empty(b, h, l, dtype=dtype), drop.new_empty(b, h, l, dtype=dtype)
    keep = (~drop).to(dtype)[:, None]  # (B, 1, L, L)
    blocks = _blocks(b, h, l, cells)
    if not blocks:  # an empty tensor: nothing to reduce
        return grad_qk, grad_start.zero_(), grad_end.zero_()
    bs0, hs0 = blocks[0]  # the first block is the largest
    buf = drop.new_empty((bs0.stop - bs0.start) * (hs0.stop - hs0.start) * l * l, dtype=dtype)  # reused
    for bs, hs in blocks:
        block = buf[: (bs.stop - bs.start) * (hs.stop - hs.start) * l * l].view(-1, hs.stop - hs.start, l, l)
        fill_block(block, bs, hs)  # (b, h, L, L)
        if exact:
            block.masked_fill_(drop[bs, None], 0)  # masked cells pass no gradient
        else:
            block.mul_(keep[bs])  # same, vectorised (masked_fill_ runs ~7x slower on CPU)
        grad_qk[bs] += block.sum(dim=1)
        torch.sum(block, dim=3, out=grad_start[bs, hs])
        torch.sum(block, dim=2, out=grad_end[bs, hs])
    return grad_qk, grad_start, grad_end


class _PairScores(torch.autograd.Function):
    """egp_logits(qk, start, end, drop), computed block by block (block_plan) as

        logits = where(drop, value, qk) + keep * (start_i + end_j),   keep = 1 - drop,  value = mask_value,

    i.e. two vectorised passes, exact as long as start and end are finite (else the masked cells are
    filled again: after a check on the CPU, always on an accelerator). The backward masks and reduces
    the incoming gradient block by block, so no masked full-size copy (B, H, L, L) is built.
    """

    @staticmethod
    def forward(ctx: Any, qk: Tensor, start: Tensor, end: Tensor, drop: Tensor) -> Tensor:
        b, h, l = start.shape
        dtype = torch.promote_types(qk.dtype, torch.promote_types(start.dtype, end.dtype))
        value = mask_value(dtype)
        base = torch.where(drop, value, qk.to(dtype))[:, None]  # (B, 1, L, L)
        keep = (~drop).to(dtype)[:, None]  # (B, 1, L, L)
        row = start.to(dtype).contiguous()[..., None]  # (B, H, L, 1): contiguous, or the adds crawl
        col = end.to(dtype).contiguous()[:, :, None]  # (B, H, 1, L)
        out = qk.new_empty(b, h, l, l, dtype=dtype)
        plan = plan_for(qk.device)
        for bs, hs in _blocks(b, h, l, plan.cells):
            block = torch.add(row[bs, hs], col[bs, hs], out=out[bs, hs])  # (b, h, L, L)
            torch.addcmul(base[bs], block, keep[bs], out=block)
        if not plan.host_checks or not (row.isfinite().all() and col.isfinite().all()):
            out.masked_fill_(drop[:, None], value)
        ctx.parts = EgpParts(qk, start, end, drop)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, Tensor, Tensor, None]:
        grads = ctx.parts.backward_by_blocks(lambda block, bs, hs: block.copy_(grad[bs, hs]), grad.dtype)
        return (*grads, None)


class EfficientGlobalPointer(nn.Module):
    """Efficient GlobalPointer (Su, kexue.fm/archives/8877): shared q/k, per-head start/end biases."""

    def __init__(self, hidden_size: int, heads: int, head_size: int = 64, rope: bool = True, tril_mask: bool = True,
                 max_span: int | None = None):
        super().__init__()
        self.heads, self.head_size, self.rope, self.tril_mask = heads, head_size, rope, tril_mask
        self.max_span = max_span  # spans of more tokens are masked (None: any length)
        self.p_dense = nn.Linear(hidden_size, 2 * head_size)
        self.q_dense = nn.Linear(2 * head_size, 2 * heads)

    def parts(self, hidden: Tensor, mask: Tensor) -> EgpParts:
        """The parts of the logits for hidden (B, L, D) and mask (B, L): forward's logits are egp_logits of them."""
        x = self.p_dense(hidden)  # (B, L, 2d)
        qw, kw = x[..., ::2], x[..., 1::2]  # (B, L, d) each
        if self.rope:
            cos, sin = sinusoidal_rope(x.shape[1], self.head_size, x.device, x.dtype)
            qw, kw = apply_rope(qw, cos, sin), apply_rope(kw, cos, sin)
        qk = torch.einsum("bmd,bnd->bmn", qw, kw) / self.head_size**0.5  # (B, L, L)
        bias = self.q_dense(x).transpose(1, 2) / 2  # (B, 2H, L)
        # odd channels score the start i, even channels the end j
        return EgpParts(qk, bias[:, 1::2], bias[:, ::2], _dropped_cells(mask, self.tril_mask, self.max_span))

    @torch.no_grad()
    def copy_channels_from(self, other: EfficientGlobalPointer, pairs: list[tuple[int, int]]) -> None:
        """Take `other`'s shared q/k projection and, for each (mine, theirs) channel pair, its start/end biases
        (rows 2c and 2c + 1 of q_dense): channel `mine` then scores as `other`'s channel `theirs` did."""
        self.p_dense.load_state_dict(other.p_dense.state_dict())
        for mine, theirs in pairs:
            self.q_dense.weight[2 * mine : 2 * mine + 2] = other.q_dense.weight[2 * theirs : 2 * theirs + 2]
            self.q_dense.bias[2 * mine : 2 * mine + 2] = other.q_dense.bias[2 * theirs : 2 * theirs + 2]

    def forward(self, hidden: Tensor, mask: Tensor) -> PairScores:
        """Span logits (B, heads, L, L) and their parts, for hidden (B, L, D) and mask (B, L), 1 = real token."""
        parts = self.parts(hidden, mask)
        logits: Tensor = _PairScores.apply(parts.qk, parts.start, parts.end, parts.drop)  # type: ignore[no-untyped-call]
        return PairScores(logits, parts)


class GlobalPointer(nn.Module):
    """Standard GlobalPointer (Su, kexue.fm/archives/8373): one q/k projection per head."""

    def __init__(self, hidden_size: int, heads: int, head_size: int = 64, rope: bool = True, tril_mask: bool = True,
                 max_span: int | None = None):
        super().__init__()
        self.heads, self.head_size, self.rope, self.tril_mask = heads, head_size, rope, tril_mask
        self.max_span = max_span  # spans of more tokens are masked (None: any length)
        self.dense = nn.Linear(hidden_size, heads * 2 * head_size)

    @torch.no_grad()
    def copy_channels_from(self, other: GlobalPointer, pairs: list[tuple[int, int]]) -> None:
        """For each (mine, theirs) channel pair, `other`'s q/k projection of that channel (rows c·2d .. (c+1)·2d)."""
        rows = 2 * self.head_size
        for mine, theirs in pairs:
            self.dense.weight[mine * rows : (mine + 1) * rows] = other.dense.weight[theirs * rows : (theirs + 1) * rows]
            self.dense.bias[mine * rows : (mine + 1) * rows] = other.dense.bias[theirs * rows : (theirs + 1) * rows]

    def forward(self, hidden: Tensor, mask: Tensor) -> PairScores:
        """Span logits (B, heads, L, L) for hidden (B, L, D) and mask (B, L), 1 = real token; no parts."""
        b, l, _ = hidden.shape
        x = self.dense(hidden).view(b, l, self.heads, 2 * self.head_size)  # (B, L, H, 2d)
        qw, kw = x[..., : self.head_size], x[..., self.head_size :]  # (B, L, H, d) each
        if self.rope:
            cos, sin = sinusoidal_rope(l, self.head_size, x.device, x.dtype)
            cos, sin = cos[:, None], sin[:, None]  # (L, 1, d): broadcast over heads
            qw, kw = apply_rope(qw, cos, sin), apply_rope(kw, cos, sin)
        # scale q (L*d values) rather than the (B, H, L, L) logits
        logits = torch.einsum("bmhd,bnhd->bhmn", qw / self.head_size**0.5, kw)  # (B, H, L, L)
        return PairScores(_mask_logits_(logits, mask, self.tril_mask, self.max_span), None)
