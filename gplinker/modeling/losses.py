"""Multilabel categorical cross-entropy (ZLPR): dense, sparse and soft-label forms.

Su Jianlin, kexue.fm/archives/7359: with scores s, positives P and negatives N,
    L = log(1 + sum_{i in P} e^{-s_i}) + log(1 + sum_{j in N} e^{s_j}),
so every positive is pushed above 0 and every negative below 0 (threshold 0 at decoding).
All losses compute in at least float32 and use large finite fills, never +-inf.
"""

from __future__ import annotations

import torch
from torch import Tensor

_BIG = 1e12  # fill for cells excluded from a logsumexp: exp(-_BIG) == 0 in float32/64


def _float(x: Tensor) -> Tensor:
    """Cast half/bf16 up to float32; keep float32/float64 as they are."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _logsumexp_with_zero(x: Tensor) -> Tensor:
    """log(1 + sum_i e^{x_i}) over the last dim, i.e. logsumexp([x, 0])."""
    zero = x.new_zeros(x.shape[:-1] + (1,))  # not zeros_like(x[..., :1]): x may be empty (k = 0)
    return torch.logsumexp(torch.cat([x, zero], dim=-1), dim=-1)


def multilabel_categorical_crossentropy(y_true: Tensor, y_pred: Tensor) -> Tensor:
    """Dense ZLPR loss (...) from multi-hot y_true (..., n) and logits y_pred (..., n)."""
    s, pos = _float(y_pred), y_true.bool()
    neg_loss = _logsumexp_with_zero(s.masked_fill(pos, -_BIG))
    pos_loss = _logsumexp_with_zero((-s).masked_fill(~pos, -_BIG))
    return neg_loss + pos_loss


def sparse_multilabel_categorical_crossentropy(y_pred: Tensor, y_true: Tensor) -> Tensor:
    """ZLPR loss (...) from logits y_pred (..., n) and unique positive indices y_true (..., k), -1 = pad."""
    # Sparse form of kexue.fm/archives/8888 (no dense labels). Its negative term
    #   log(1 + sum_N e^s) = A + log(1 - e^{logsumexp(s_P) - A}),  A = log(1 + sum_all e^s),
    # cancels in float32 once a positive dominates (the eps clip then gives loss ~4 and a gradient
    # pushing that positive DOWN). Instead we knock the positives out of one copy of [s, 0] with a
    # scatter: same memory as the trick's concat, exact. Padding scatters into a -_BIG sink column.
    s = _float(y_pred)
    n, valid = s.shape[-1], y_true >= 0  # valid: (..., k)
    s_pos = torch.gather(s, -1, y_true.clamp(min=0).long())  # (..., k)
    pos_loss = _logsumexp_with_zero(torch.where(valid, -s_pos, -_BIG))
    zero_sink = s.new_tensor([0.0, -_BIG]).expand(s.shape[:-1] + (2,))
    s_neg = torch.cat([s, zero_sink], dim=-1)  # (..., n + 2), fresh copy
    s_neg.scatter_(-1, torch.where(valid, y_true, n + 1).long(), -_BIG)
    neg_loss = torch.logsumexp(s_neg, dim=-1)
    return pos_loss + neg_loss


def soft_multilabel_categorical_crossentropy(y_true: Tensor, y_pred: Tensor) -> Tensor:
    """ZLPR loss (...) for soft labels y_true in [0, 1] (..., n) and logits y_pred (..., n)."""
    # kexue.fm/archives/9064: L = log(1 + sum_i (1 - t_i) e^{s_i}) + log(1 + sum_i t_i e^{-s_i});
    # the weights enter as log t (a weight of 0 becomes -_BIG, so it adds exactly nothing).
    s, t = _float(y_pred), _float(y_true)
    tiny = torch.finfo(t.dtype).tiny

    def log_weight(w: Tensor) -> Tensor:
        return torch.where(w > 0, torch.log(w.clamp(min=tiny)), -_BIG)

    neg_loss = _logsumexp_with_zero(s + log_weight(1 - t))
    pos_loss = _logsumexp_with_zero(-s + log_weight(t))
    return neg_loss + pos_loss


def pointer_loss(logits: Tensor, positives: Tensor) -> Tensor:
    """Sparse ZLPR over span logits (B, H, L, L) and flat cells i*L+j (B, H, K): sum heads, mean batch."""
    b, h, l, _ = logits.shape
    loss = sparse_multilabel_categorical_crossentropy(logits.reshape(b, h, l * l), positives)  # (B, H)
    return loss.sum(dim=1).mean()
