"""GlobalPointer heads: RoPE, EfficientGlobalPointer and GlobalPointer.

Both heads score every span (i, j) of a sequence with a start-end bilinear form:
    s_h(i, j) = q_{h,i}^T k_{h,j} / sqrt(d)              (GlobalPointer, kexue.fm/archives/8373)
with q, k rotated by RoPE so the score sees the relative distance j - i. The efficient variant
(kexue.fm/archives/8877, bert4keras layers.EfficientGlobalPointer) shares one q/k projection across
heads and gives each head two cheap linear terms instead:
    s_h(i, j) = q_i^T k_j / sqrt(d) + w_{h,start}^T x_i / 2 + w_{h,end}^T x_j / 2,   x = [q; k].
Padding rows/columns and, optionally, the lower triangle i > j are masked with a large finite
negative (never -inf, so fp16/bf16 stay finite and the loss never sees inf - inf).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def mask_value(dtype: torch.dtype) -> float:
    """Large finite negative used for masked logits: max(-1e12, finfo(dtype).min), AMP safe."""
    return max(-1e12, torch.finfo(dtype).min)


def sinusoidal_rope(seq_len: int, dim: int, device, dtype) -> tuple[Tensor, Tensor]:
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


def _mask_logits_(logits: Tensor, mask: Tensor, tril_mask: bool) -> Tensor:
    """Fill padded rows/columns and (optionally) cells i > j of fresh logits (B, H, L, L) in place."""
    pad = ~mask.bool()  # (B, L)
    value = mask_value(logits.dtype)
    logits.masked_fill_(pad[:, None, :, None], value)  # rows i: (B, 1, L, 1)
    logits.masked_fill_(pad[:, None, None, :], value)  # columns j: (B, 1, 1, L)
    if tril_mask:
        pos = torch.arange(logits.shape[-1], device=logits.device)
        logits.masked_fill_(pos[:, None] > pos[None, :], value)  # (L, L)
    return logits


class EfficientGlobalPointer(nn.Module):
    """Efficient GlobalPointer (Su, kexue.fm/archives/8877): shared q/k, per-head start/end biases."""

    def __init__(self, hidden_size: int, heads: int, head_size: int = 64, rope: bool = True, tril_mask: bool = True):
        super().__init__()
        self.heads, self.head_size, self.rope, self.tril_mask = heads, head_size, rope, tril_mask
        self.p_dense = nn.Linear(hidden_size, 2 * head_size)
        self.q_dense = nn.Linear(2 * head_size, 2 * heads)

    def forward(self, hidden: Tensor, mask: Tensor) -> Tensor:
        """Span logits (B, heads, L, L) for hidden (B, L, D) and mask (B, L), 1 = real token."""
        x = self.p_dense(hidden)  # (B, L, 2d)
        qw, kw = x[..., ::2], x[..., 1::2]  # (B, L, d) each
        if self.rope:
            cos, sin = sinusoidal_rope(x.shape[1], self.head_size, x.device, x.dtype)
            qw, kw = apply_rope(qw, cos, sin), apply_rope(kw, cos, sin)
        logits = torch.einsum("bmd,bnd->bmn", qw, kw) / self.head_size**0.5  # (B, L, L)
        bias = self.q_dense(x).transpose(1, 2) / 2  # (B, 2H, L)
        # even channels score the end j, odd channels the start i
        logits = logits[:, None] + bias[:, ::2, None] + bias[:, 1::2, :, None]  # (B, H, L, L)
        return _mask_logits_(logits, mask, self.tril_mask)


class GlobalPointer(nn.Module):
    """Standard GlobalPointer (Su, kexue.fm/archives/8373): one q/k projection per head."""

    def __init__(self, hidden_size: int, heads: int, head_size: int = 64, rope: bool = True, tril_mask: bool = True):
        super().__init__()
        self.heads, self.head_size, self.rope, self.tril_mask = heads, head_size, rope, tril_mask
        self.dense = nn.Linear(hidden_size, heads * 2 * head_size)

    def forward(self, hidden: Tensor, mask: Tensor) -> Tensor:
        """Span logits (B, heads, L, L) for hidden (B, L, D) and mask (B, L), 1 = real token."""
        b, l, _ = hidden.shape
        x = self.dense(hidden).view(b, l, self.heads, 2 * self.head_size)  # (B, L, H, 2d)
        qw, kw = x[..., : self.head_size], x[..., self.head_size :]  # (B, L, H, d) each
        if self.rope:
            cos, sin = sinusoidal_rope(l, self.head_size, x.device, x.dtype)
            cos, sin = cos[:, None], sin[:, None]  # (L, 1, d): broadcast over heads
            qw, kw = apply_rope(qw, cos, sin), apply_rope(kw, cos, sin)
        # scale q (L*d values) rather than the (B, H, L, L) logits
        logits = torch.einsum("bmhd,bnhd->bhmn", qw / self.head_size**0.5, kw)  # (B, H, L, L)
        return _mask_logits_(logits, mask, self.tril_mask)
