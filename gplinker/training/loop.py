"""The optimisation loop: `train_steps` runs optimizer steps and yields one `Step` record after each.

The loop does what decides the weights: AMP, gradient accumulation over micro-batches, DDP
gradient sync on the last micro-batch only, the GradScaler, clipping, the LR schedule, skipping
non-finite losses, evaluation when due and early stopping. It writes no file, logs nothing and
draws nothing; checkpoints, the training log and the progress bar consume its records.

Also here: `LoopState` (the loop's position and best-score bookkeeping, which a checkpoint saves),
`Optimisation` (optimizer, schedule and scaler) and the helpers that build them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch.nn.parallel import DistributedDataParallel

from gplinker import distributed as dist
from gplinker.config import TrainConfig
from gplinker.devices import amp_context, to_device
from gplinker.errors import GPLinkerError

MAX_BAD_STEPS = 10  # consecutive non-finite losses before training stops
MAX_OVERFLOW_STEPS = 40  # consecutive fp16 overflows (each halves the loss scale: 2^16 -> 2^-24) before it stops

Evaluate = Callable[[torch.nn.Module], tuple[float, dict[str, Any]]]  # model -> (main score, all scores)
Indices = Sequence[int] | npt.NDArray[np.int64]  # window indices of one micro-batch
MakeBatch = Callable[[Indices], dict[str, Any]]  # dataset indices -> collated batch
BatchOrder = Callable[[int], Sequence[Indices]]  # epoch -> that epoch's micro-batches as index lists


@dataclass
class LoopState:
    """Where the loop is and what it has seen; saved in every checkpoint, so a resume continues here."""

    step: int = 0  # optimizer steps done
    epoch: int = 0
    batch_in_epoch: int = 0  # micro-batches of `epoch` already consumed
    best_score: float = float("-inf")
    best_step: int = -1
    evals_since_best: int = 0
    bad_steps: int = 0  # non-finite losses in a row
    overflows: int = 0  # fp16 gradient overflows in a row (GradScaler skips)
    total_steps: int = 0  # steps the LR schedule was built for (0: a checkpoint written before it was saved)
    history: list[dict[str, Any]] = field(default_factory=list)  # one dict per evaluation


@dataclass(frozen=True)
class Evaluation:
    """One evaluation's outcome, after the loop has updated the best score with it."""

    score: float  # the main score (NaN without an evaluate function)
    metrics: dict[str, float]  # every numeric score
    entry: dict[str, Any]  # what LoopState.history holds for it: step, epoch, score and the metrics
    improved: bool  # a new best (always true without an evaluate function: best/ follows the latest weights)
    best_score: float
    best_step: int


@dataclass(frozen=True)
class Step:
    """What one optimizer step did. A skipped step changed no weight: its loss was not finite, or (`overflow`,
    fp16) the GradScaler found inf/nan gradients at loss scale `overflow` and lowered the scale."""

    step: int  # optimizer steps done after it (a skipped step is not counted)
    epoch: int  # the epoch its micro-batches came from
    loss: float  # mean loss of its micro-batches, averaged over ranks
    lr: float  # learning rate of the first parameter group after the step
    windows: int  # training windows in its micro-batches, over all ranks
    time: float  # time.perf_counter() when the update was done, before any evaluation
    skipped: bool = False
    overflow: float | None = None  # with skipped: the loss scale whose gradients overflowed (not a bad loss)
    evaluation: Evaluation | None = None  # set when the model was evaluated after this step


@dataclass
class Optimisation:
    """What an optimizer step updates besides the weights; a checkpoint saves all three."""

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler


def param_groups(model: torch.nn.Module, cfg: TrainConfig) -> list[dict[str, Any]]:
    """AdamW groups: encoder vs heads learning rates; no weight decay on biases and LayerNorm weights."""
    groups: dict[tuple[float, float], list[torch.nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        lr = cfg.head_lr if cfg.head_lr > 0 and not name.startswith("encoder.") else cfg.lr
        decay = 0.0 if p.ndim < 2 or "LayerNorm" in name or "layer_norm" in name else cfg.weight_decay
        groups.setdefault((lr, decay), []).append(p)
    return [{"params": ps, "lr": lr, "weight_decay": wd} for (lr, wd), ps in groups.items()]


def count_steps(cfg: TrainConfig, micro_per_epoch: int) -> int:
    """Optimizer steps of the run: max_steps when set, else epochs × ceil(micro-batches / grad_accum)."""
    if micro_per_epoch == 0:
        raise GPLinkerError("no training windows: the training data is empty")
    return cfg.max_steps if cfg.max_steps > 0 else cfg.epochs * math.ceil(micro_per_epoch / cfg.grad_accum)


def build_optimisation(model: torch.nn.Module, cfg: TrainConfig, device: torch.device,
                       total_steps: int) -> Optimisation:
    """AdamW over `param_groups`, linear warmup then linear decay to 0, a GradScaler that only fp16 enables."""
    from transformers import get_linear_schedule_with_warmup

    optimizer = torch.optim.AdamW(param_groups(model, cfg), lr=cfg.lr)
    warmup = int(cfg.warmup_ratio * total_steps)
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup, total_steps)  # type: ignore[no-untyped-call]
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.amp == "fp16")
    return Optimisation(optimizer, scheduler, scaler)


def wrap_for_ddp(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The model in DistributedDataParallel under torchrun (rank 0's weights go to every rank), else itself."""
    if not dist.active():
        return model
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def train_steps(model: torch.nn.Module, make_batch: MakeBatch, batch_order: BatchOrder, cfg: TrainConfig,
                opt: Optimisation, device: torch.device, *, state: LoopState, total_steps: int,
                evaluate: Evaluate | None = None) -> Iterator[Step]:
    """Run optimizer steps from `state` until `total_steps` or until patience runs out; yield a Step after each.

    `model` is on `device`, wrapped by `wrap_for_ddp` under torchrun; `state` (fresh or restored
    from a checkpoint) is advanced in place. While a Step is being consumed the loop waits, so the
    state, weights and `opt` a consumer saves are exactly those a resume needs to continue.

    Under torchrun every micro-batch of `batch_order` is a GLOBAL batch: rank r trains on its items
    r, r + N, ... and DDP averages the gradients, so N processes with the same seed and global
    batch follow the single-process run (exactly, without dropout).

    An evaluation runs every `cfg.eval_every` steps (at each epoch's end when 0) and after the last
    step. A non-finite loss skips the update; MAX_BAD_STEPS of them in a row raise GPLinkerError.
    """
    raw = model.module if isinstance(model, DistributedDataParallel) else model
    if state.step >= total_steps:
        return
    raw.train()
    for epoch, group, ends_epoch in micro_batch_groups(state, batch_order, cfg.grad_accum):
        loss_sum = accumulate_gradients(model, make_batch, group, opt.scaler, cfg.amp, device)
        loss_sum = dist.mean_scalar(loss_sum, device)  # NaN on any rank → every rank skips
        loss, windows = loss_sum / len(group), sum(len(indices) for indices in group)
        if not math.isfinite(loss_sum):
            opt.optimizer.zero_grad(set_to_none=True)
            state.bad_steps += 1
            yield Step(state.step, epoch, loss, current_lr(opt), windows, time=time.perf_counter(), skipped=True)
            if state.bad_steps >= MAX_BAD_STEPS:
                raise GPLinkerError(
                    f"{MAX_BAD_STEPS} non-finite losses in a row at step {state.step + 1}; lower train.lr, "
                    "use train.amp=bf16 instead of fp16, or check the data"
                )
            continue
        state.bad_steps = 0
        overflowed_at = apply_update(raw, opt, cfg.max_grad_norm)
        if overflowed_at is not None:  # fp16 scale calibration: normal at the start, never a bad loss
            state.overflows += 1
            yield Step(state.step, epoch, loss, current_lr(opt), windows, time=time.perf_counter(), skipped=True,
                       overflow=overflowed_at)
            if state.overflows >= MAX_OVERFLOW_STEPS:
                raise GPLinkerError(
                    f"the fp16 gradients overflowed at every loss scale {MAX_OVERFLOW_STEPS} steps in a row (down to "
                    f"{opt.scaler.get_scale():.3g}) at step {state.step + 1}; use train.amp=bf16 or off, or lower "
                    "train.lr")
            continue
        state.overflows = 0
        state.step += 1
        finished = time.perf_counter()
        last = state.step >= total_steps
        due = state.step % cfg.eval_every == 0 if cfg.eval_every > 0 else ends_epoch
        evaluation = run_evaluation(raw, evaluate, state) if due or last else None
        yield Step(state.step, epoch, loss, current_lr(opt), windows, time=finished, evaluation=evaluation)
        if last or (evaluation is not None and cfg.patience > 0 and state.evals_since_best >= cfg.patience):
            return


def micro_batch_groups(state: LoopState, batch_order: BatchOrder,
                       size: int) -> Iterator[tuple[int, list[Indices], bool]]:
    """(epoch, the next `size` micro-batches, whether they end the epoch), without end.

    The state's position moves past a group before the group is handed out, so a checkpoint taken
    after its step names the next micro-batch to run. When a group ends an epoch, the position is
    already the next epoch's start, and the next group comes from `batch_order(epoch + 1)` — the
    order a run resumed from that checkpoint asks for too.
    """
    while True:
        epoch, batches = state.epoch, batch_order(state.epoch)
        while state.epoch == epoch:
            group = list(batches[state.batch_in_epoch : state.batch_in_epoch + size])
            state.batch_in_epoch += len(group)
            ends_epoch = state.batch_in_epoch >= len(batches)
            if ends_epoch:
                state.epoch, state.batch_in_epoch = epoch + 1, 0
            yield epoch, group, ends_epoch


def accumulate_gradients(model: torch.nn.Module, make_batch: MakeBatch, group: list[Indices],
                         scaler: torch.amp.GradScaler, amp: str, device: torch.device) -> float:
    """Forward and backward over one step's micro-batches; returns the sum of their losses on this rank.

    Each loss is divided by the number of micro-batches, so k accumulated micro-batches of a mean
    loss give the gradient of one k times larger batch. Under DDP the gradients are all-reduced
    only in the backward of the last micro-batch.
    """
    ddp = model if isinstance(model, DistributedDataParallel) else None
    loss_sum = 0.0
    for k, indices in enumerate(group):
        mine = dist.shard(indices)
        weight = 1.0 if len(mine) else 0.0  # a rank with no item still joins the all-reduce, with zero gradient
        batch = to_device(make_batch(mine if len(mine) else indices[:1]), device)
        sync: AbstractContextManager[Any] = ddp.no_sync() if ddp is not None and k < len(group) - 1 else nullcontext()
        with sync, amp_context(amp, device):
            loss = model(**batch).loss
        loss_sum += loss.item()
        scaler.scale(loss * weight / len(group)).backward()
    return loss_sum


def apply_update(model: torch.nn.Module, opt: Optimisation, max_grad_norm: float) -> float | None:
    """Clip (when max_grad_norm > 0), step the optimizer through the scaler, advance the schedule, clear grads.

    Returns None, or the loss scale at which the GradScaler (fp16) found inf/nan gradients: it then
    skipped the optimizer step and halved the scale, and the schedule does not advance either.
    """
    if max_grad_norm > 0:
        opt.scaler.unscale_(opt.optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    scale = opt.scaler.get_scale() if opt.scaler.is_enabled() else None
    opt.scaler.step(opt.optimizer)
    opt.scaler.update()
    overflowed = scale is not None and opt.scaler.get_scale() < scale  # update() lowers the scale only then
    if not overflowed:
        opt.scheduler.step()
    opt.optimizer.zero_grad(set_to_none=True)
    return scale if overflowed else None


def current_lr(opt: Optimisation) -> float:
    """The learning rate of the first parameter group."""
    return float(opt.scheduler.get_last_lr()[0])


def run_evaluation(model: torch.nn.Module, evaluate: Evaluate | None, state: LoopState) -> Evaluation:
    """Score `model` (in eval mode), record it in state.history and update the best score and patience count."""
    scores: dict[str, Any] = {}
    started = time.perf_counter()
    if evaluate is not None:
        model.eval()
        score, scores = evaluate(model)
        model.train()
        improved = score > state.best_score
    else:
        score, improved = float("nan"), True
    metrics = flat_numbers(scores)
    seconds = round(time.perf_counter() - started, 3)  # wall time of the evaluation, logged with its scores
    # no dev set: the score is NaN for the comparisons above and null in the JSON files (NaN is not JSON)
    entry = {"step": state.step, "epoch": state.epoch, "score": score if evaluate is not None else None, **metrics,
             "seconds": seconds}
    state.history.append(entry)
    if improved:
        state.best_score, state.best_step, state.evals_since_best = score, state.step, 0
    else:
        state.evals_since_best += 1
    return Evaluation(score, metrics, entry, improved, state.best_score, state.best_step)


def flat_numbers(scores: dict[str, Any]) -> dict[str, float]:
    """The int and float values of `scores` (not bools), as floats."""
    return {k: float(v) for k, v in scores.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
