"""Training: `fit` wires the optimisation loop to the consumers of its Step records.

It knows models, batches and scores; it knows nothing about tasks. The parts:
  loop.py         `train_steps`, the generator that runs optimizer steps and yields a `Step` after each
  checkpoints.py  best/, checkpoint-<step>/, last/ and history.json; `restore_checkpoint` for a resume
  train_log.py    train_log.jsonl and TensorBoard
  progress.py     the progress bar and console messages
  stop_signals.py the first SIGTERM/SIGINT saves a checkpoint and stops; the second stops at once
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import Progress

from gplinker import distributed as dist
from gplinker.config import TrainConfig
from gplinker.console import say
from gplinker.devices import pick_device, seed_everything
from gplinker.errors import Interrupted
from gplinker.training.checkpoints import (
    CHECKPOINT_PREFIX,
    STATE_FILE,
    Checkpoints,
    SaveModel,
    check_schedule,
    list_checkpoints,
    newest_usable,
    prepare_output_dir,
    restore_checkpoint,
    save_checkpoint,
)
from gplinker.training.loop import (
    MAX_BAD_STEPS,
    BatchOrder,
    Evaluate,
    Evaluation,
    LoopState,
    MakeBatch,
    Optimisation,
    Step,
    build_optimisation,
    count_steps,
    param_groups,
    train_steps,
    wrap_for_ddp,
)
from gplinker.training.progress import ProgressReport
from gplinker.training.stop_signals import StopSignals
from gplinker.training.train_log import LOG_FILE, TrainLog, truncate_log

__all__ = [
    "CHECKPOINT_PREFIX", "MAX_BAD_STEPS", "STATE_FILE", "BatchOrder", "Evaluate", "Evaluation", "FitResult",
    "LoopState", "MakeBatch", "Optimisation", "SaveModel", "Step", "fit", "list_checkpoints", "newest_usable",
    "param_groups", "restore_checkpoint", "save_checkpoint", "train_steps",
]


@dataclass
class FitResult:
    best_score: float
    best_step: int
    steps: int
    history: list[dict[str, Any]]


def fit(model: torch.nn.Module, make_batch: MakeBatch, batch_order: BatchOrder, cfg: TrainConfig, *,
        save_model: SaveModel, evaluate: Evaluate | None = None, resume_from: Path | None = None,
        console: Console | None = None, progress: Progress | None = None) -> FitResult:
    """Train `model`; `batch_order(epoch)` gives that epoch's micro-batches as index lists for `make_batch`.

    Writes into cfg.output_dir (rank 0 alone under torchrun): best/, checkpoint-<step>/, last/,
    history.json, train_log.jsonl and tensorboard/. `evaluate(model)` gives (main score, scores);
    without it every evaluation counts as the best. `resume_from` is a checkpoint dir to continue. `progress`
    is a running display for the training bar (see ProgressReport); without it fit draws its own.
    """
    out = Path(cfg.output_dir)
    device = dist.setup(cfg.device) or pick_device(cfg.device)
    main_rank = dist.is_main()
    if main_rank:
        for message in prepare_output_dir(out):
            say(console, f"[yellow]{message}[/]")
    model.to(device)
    seed_everything(cfg.seed + dist.rank())  # dropout streams differ per rank; weights come from rank 0
    trained = wrap_for_ddp(model, device)
    console = console if main_rank else None

    total_steps = count_steps(cfg, len(batch_order(0)))
    opt = build_optimisation(model, cfg, device, total_steps)
    state = LoopState(total_steps=total_steps)
    if resume_from is not None:
        state = restore_checkpoint(resume_from, model, opt.optimizer, opt.scheduler, opt.scaler, device)
        check_schedule(resume_from, state, total_steps)
        state.total_steps = total_steps
        say(console, f"resumed from {resume_from} at step {state.step}")

    checkpoints = Checkpoints(out, model, state, opt, save_model, cfg.keep_checkpoints)
    if main_rank and resume_from is not None:
        truncate_log(out / LOG_FILE, state.step)  # the steps after the checkpoint run again: log them once
    train_log = TrainLog(out, cfg.log_every, total_steps) if main_rank else None
    with StopSignals() as stop, ProgressReport(console, total_steps, done=state.step, progress=progress) as report:
        steps = train_steps(trained, make_batch, batch_order, cfg, opt, device, state=state,
                            total_steps=total_steps, evaluate=evaluate)
        stopped = False
        for step in steps:
            line = train_log.add(step) if train_log is not None else None
            report.add(step, line)
            checkpoints.add(step)
            if stop.requested(device):
                stopped = True
                break
    if stopped:
        say(console, f"[yellow]{stop.name()}: saving a checkpoint at step {state.step} (send it again to stop at "
                     "once)[/]")
        path = checkpoints.save_now()
        if train_log is not None:
            train_log.close()
        raise Interrupted(f"stopped by {stop.name()} at step {state.step}: saved {path}; continue with --resume",
                          stop.signum or signal.SIGTERM)
    checkpoints.finish()
    if train_log is not None:
        train_log.close()
    dist.barrier()
    return FitResult(state.best_score, state.best_step, state.step, state.history)
