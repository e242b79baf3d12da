"""Multilabel categorical cross-entropy (ZLPR): dense, sparse and soft-label forms.

Su Jianlin, kexue.fm/archives/7359: with scores s, positives P and negatives N,
    L = log(1 + sum_{i in P} e^{-s_i}) + log(1 + sum_{j in N} e^{s_j}),
so every positive is pushed above 0 and every negative below 0 (threshold 0 at decoding).
All losses compute in at least float32 and use large finite fills, never +-inf.
The sparse loss has a hand-written backward (_SparseZLPR, _PointerZLPR) that walks rows in
blocks (block_plan: cache-sized on the CPU, one block per step on an accelerator) and keeps no
copy of the logits; see scripts/bench_heads.py for what it buys.
An index listed k times among the positives counts k times in P (in the loss and its gradient).
pointer_loss takes a head's PairScores (gplinker.modeling.pointer): given an EGP's parts, its
backward goes straight into them (_PointerZLPR); without parts it is the plain sparse loss.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from gplinker.modeling.block_plan import plan_for

if TYPE_CHECKING:
    from gplinker.modeling.pointer import EgpParts, PairScores

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


def _exp_(x: Tensor) -> Tensor:
    """In-place exp of x with arguments raised to log(tiny) + 1: no result is subnormal or 0.

    exp of arguments under ~ -87.3 (float32) takes a slow path on x86 (measured 30-75x slower with
    AVX512), and masked cells (-1e12) are up to half of all span cells. Raising them changes each
    term by at most e * tiny (3.2e-38 in float32) in sums that are >= 1: far below rounding.
    """
    return x.clamp_(min=math.log(torch.finfo(x.dtype).tiny) + 1).exp_()


def _zlpr_rows(s: Tensor, y_true: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(index, valid, A_N, A_P) for logits s (R, n) and positives y_true (R, k), -1 = pad; no autograd.

    A_N = log(1 + sum_{j in N} e^{s_j}) and A_P = log(1 + sum_{i in P} e^{-s_i}), so the loss is A_N + A_P;
    P is the list y_true (an index listed twice counts twice in A_P), N the cells not listed.
    """
    rows, n = s.shape
    work = torch.promote_types(s.dtype, torch.float32)
    valid = y_true >= 0  # (R, k)
    index = y_true.clamp(min=0).long()
    s_pos = torch.gather(s, -1, index).to(work)  # (R, k)
    lse_pos = _logsumexp_with_zero(torch.where(valid, -s_pos, -_BIG))  # (R,)
    # A_N exactly: copy a block of rows into [s, 0, sink], knock the positives out with -_BIG
    # (padding goes to the sink column), then logsumexp in place: no full-size copy of s.
    sink = torch.where(valid, index, n + 1)  # (R, k)
    lse_neg = s.new_empty(rows, dtype=work)
    step = max(1, plan_for(s.device).cells // (n + 2))
    buf = s.new_empty(min(rows, step), n + 2, dtype=work)
    for r0 in range(0, rows, step):
        r1 = min(rows, r0 + step)
        b = buf[: r1 - r0]
        b[:, :n].copy_(s[r0:r1])
        b[:, n], b[:, n + 1] = 0.0, -_BIG
        b.scatter_(-1, sink[r0:r1], -_BIG)
        top = b.amax(dim=-1, keepdim=True)  # >= 0 thanks to the zero column
        lse_neg[r0:r1] = _exp_(b.sub_(top)).sum(dim=-1).log_() + top.squeeze(-1)
    return index, valid, lse_neg, lse_pos


class _RowGrads:
    """Writes d loss / d s for rows of s, given the per-row upstream gradient g (R,).

        d/ds_j = g e^{s_j - A_N}  (j in N),      d/ds_i = -g e^{-s_i - A_P}  per listing of i in P,
    the first as sign(g) e^{s_j - A_N + log|g|}, so that no product is subnormal.

    With host checks (block_plan, the CPU) the positives are packed into one flat list with per-row
    offsets, read back once; without (accelerators) they stay in their padded (R, k) rows and go in
    with a scatter, so nothing is read back.
    """

    def __init__(self, s: Tensor, index: Tensor, valid: Tensor, lse_neg: Tensor, lse_pos: Tensor, g: Tensor):
        rows, self.n, self.s, self.dtype = s.shape[0], s.shape[1], s, lse_neg.dtype  # dtype: >= float32
        self.host_checks = plan_for(s.device).host_checks
        g = g.to(lse_neg.dtype).expand(rows)  # (R,)
        self.shift = g.abs().log() - lse_neg  # (R,)
        self.sign = None if self.host_checks and bool((g > 0).all()) else g.sign()
        s_pos = torch.gather(s, -1, index).to(lse_pos.dtype)  # (R, k)
        values = -(-s_pos - lse_pos[:, None]).exp() * g[:, None]  # (R, k)
        if self.host_checks:
            self.cells = (index + torch.arange(rows, device=s.device)[:, None] * self.n)[valid]  # row-major
            self.values = values[valid]
            self.start = [0, *valid.sum(dim=1).cumsum(0).tolist()]  # row r's positives: [start[r], start[r+1])
        else:
            self.index, self.valid, self.values = index, valid, values.masked_fill(~valid, 0)

    def write(self, out: Tensor, r0: int, r1: int) -> Tensor:
        """Fill out (r1 - r0, n) with the gradient of rows r0..r1."""
        _exp_(torch.add(self.s[r0:r1], self.shift[r0:r1, None], out=out))
        if self.sign is not None:
            out.mul_(self.sign[r0:r1, None])
        if self.host_checks:
            lo, hi = self.start[r0], self.start[r1]
            cells, flat = self.cells[lo:hi] - r0 * self.n, out.view(-1)
            flat.index_fill_(0, cells, 0)  # a positive has no negative term
            flat.index_put_((cells,), self.values[lo:hi].to(out.dtype), accumulate=True)  # one term per listing
            return out
        index, valid = self.index[r0:r1], self.valid[r0:r1]  # (r, k); a pad's index is 0 (clamped)
        # a positive has no negative term: multiply it by 0, a pad's cell by 1 (a product of factors, so a
        # pad sharing its cell with a positive still leaves 0); then add one term per listing (pads add 0)
        out.scatter_reduce_(1, index, (~valid).to(out.dtype), reduce="prod")
        out.scatter_add_(1, index, self.values[r0:r1].to(out.dtype))
        return out


def _save_rows_and_loss(ctx: Any, s: Tensor, y_true: Tensor) -> Tensor:
    """Per-row loss A_P + A_N of s (R, n); saves on ctx what _saved_row_grads needs."""
    index, valid, lse_neg, lse_pos = _zlpr_rows(s, y_true)
    ctx.save_for_backward(s, index, valid, lse_neg, lse_pos)
    return lse_pos + lse_neg


def _saved_row_grads(ctx: Any, grad_loss: Tensor) -> _RowGrads:
    """The gradient writer of a forward that ran _save_rows_and_loss."""
    s, index, valid, lse_neg, lse_pos = ctx.saved_tensors
    return _RowGrads(s, index, valid, lse_neg, lse_pos, grad_loss)


class _SparseZLPR(torch.autograd.Function):
    """Sparse ZLPR per row of s (R, n); the backward writes d loss / d s block by block (see _RowGrads).

    Autograd through the plain formula would keep a full copy of s for the logsumexp and build
    several full-size gradients (gather, scatter, cat); this keeps s itself (the caller holds it
    anyway) and two numbers per row.
    """

    @staticmethod
    def forward(ctx: Any, s: Tensor, y_true: Tensor) -> Tensor:
        return _save_rows_and_loss(ctx, s, y_true)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_loss: Tensor) -> tuple[Tensor, None]:
        writer = _saved_row_grads(ctx, grad_loss)
        s = writer.s
        rows, n = s.shape
        grad = s.new_empty(s.shape)  # (R, n), contiguous: the only full-size tensor of the backward
        step = max(1, plan_for(s.device).cells // n)
        buf = None if grad.dtype == writer.dtype else s.new_empty(min(rows, step), n, dtype=writer.dtype)
        for r0 in range(0, rows, step):
            r1 = min(rows, r0 + step)
            if buf is None:
                writer.write(grad[r0:r1], r0, r1)
            else:
                grad[r0:r1].copy_(writer.write(buf[: r1 - r0], r0, r1))
        return grad, None


class _PointerZLPR(torch.autograd.Function):
    """Sparse ZLPR of EGP logits, back-propagated straight into the head's (qk, start, end).

    Each (batch, head) block of d loss / d logits is written into a cache-sized buffer and reduced
    at once (EgpParts.backward_by_blocks): the full (B, H, L, L) gradient is never built.
    """

    @staticmethod
    def forward(ctx: Any, qk: Tensor, start: Tensor, end: Tensor, s: Tensor, y_true: Tensor,  # noqa: ARG004
                parts: EgpParts) -> Tensor:
        ctx.parts = parts  # qk, start, end: only graph edges
        return _save_rows_and_loss(ctx, s, y_true)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_loss: Tensor) -> tuple[Tensor | None, ...]:
        writer = _saved_row_grads(ctx, grad_loss)
        heads = ctx.parts.start.shape[1]

        def fill(block: Tensor, bs: slice, hs: slice) -> None:
            r0, r1 = bs.start * heads + hs.start, (bs.stop - 1) * heads + hs.stop  # rows b * H + h
            writer.write(block.view(r1 - r0, -1), r0, r1)

        return (*ctx.parts.backward_by_blocks(fill, writer.dtype), None, None, None)


def sparse_multilabel_categorical_crossentropy(y_pred: Tensor, y_true: Tensor) -> Tensor:
    """ZLPR loss (...) from logits y_pred (..., n) and positive indices y_true (..., k), -1 = pad."""
    # Sparse form of kexue.fm/archives/8888 (no dense labels). Its negative term
    #   log(1 + sum_N e^s) = A + log(1 - e^{logsumexp(s_P) - A}),  A = log(1 + sum_all e^s),
    # cancels in float32 once a positive dominates (the eps clip then gives loss ~4 and a gradient
    # pushing that positive DOWN). _zlpr_rows instead knocks the positives out of [s, 0]: exact.
    s = y_pred.reshape(-1, y_pred.shape[-1])  # (R, n)
    loss: Tensor = _SparseZLPR.apply(s, y_true.reshape(s.shape[0], y_true.shape[-1]))  # type: ignore[no-untyped-call]
    return loss.view(y_pred.shape[:-1])


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


def pointer_loss(scores: PairScores, positives: Tensor) -> Tensor:
    """Sparse ZLPR over a head's span logits (B, H, L, L) and flat cells i*L+j (B, H, K): sum heads, mean batch.

    scores.parts present (an EfficientGlobalPointer's): the loss of scores.logits, back-propagated
    straight into the parts; absent: the plain sparse loss over scores.logits. See pointer.PairScores.
    """
    logits, parts = scores.logits, scores.parts
    b, h, l, _ = logits.shape
    if parts is None:
        loss = sparse_multilabel_categorical_crossentropy(logits.reshape(b, h, l * l), positives)  # (B, H)
    else:  # same loss, leaner backward
        s, y_true = logits.detach().view(b * h, l * l), positives.reshape(b * h, positives.shape[-1])
        rows: Tensor = _PointerZLPR.apply(parts.qk, parts.start, parts.end, s, y_true, parts)  # type: ignore[no-untyped-call]
        loss = rows.view(b, h)
    return loss.sum(dim=1).mean()
