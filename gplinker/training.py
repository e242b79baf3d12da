"""The training loop. It knows models, batches and scores; it knows nothing about tasks.

Reads top to bottom: device and seed, optimizer and schedule, (resume), then the loop with
AMP, gradient accumulation and clipping, evaluation every N steps, best/ and resumable
checkpoints, early stopping. A checkpoint is a plain dict of states; every write is atomic.
"""

from __future__ import annotations

import json
import logging
import math
import os
import pickle
import random
import shutil
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file

from gplinker import distributed as dist
from gplinker.config import TrainConfig
from gplinker.devices import amp_context, pick_device, seed_everything, to_device
from gplinker.errors import GPLinkerError

log = logging.getLogger("gplinker")

STATE_FILE = "trainer_state.pt"
CHECKPOINT_PREFIX = "checkpoint-"
MAX_BAD_STEPS = 10  # consecutive non-finite losses before training stops

Evaluate = Callable[[torch.nn.Module], tuple[float, dict]]  # model -> (main score, all scores)
SaveModel = Callable[[torch.nn.Module, Path], None]  # model -> model dir
MakeBatch = Callable[[list[int]], dict]  # dataset indices -> collated batch


@dataclass
class LoopState:
    step: int = 0  # optimizer steps done
    epoch: int = 0
    batch_in_epoch: int = 0  # micro-batches of `epoch` already consumed
    best_score: float = float("-inf")
    best_step: int = -1
    evals_since_best: int = 0
    bad_steps: int = 0
    history: list = field(default_factory=list)  # one dict per evaluation


@dataclass
class FitResult:
    best_score: float
    best_step: int
    steps: int
    history: list


def param_groups(model: torch.nn.Module, cfg: TrainConfig) -> list[dict]:
    """AdamW groups: encoder vs heads learning rates; no weight decay on biases and LayerNorm weights."""
    groups: dict[tuple[float, float], list] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        lr = cfg.head_lr if cfg.head_lr > 0 and not name.startswith("encoder.") else cfg.lr
        decay = 0.0 if p.ndim < 2 or "LayerNorm" in name or "layer_norm" in name else cfg.weight_decay
        groups.setdefault((lr, decay), []).append(p)
    return [{"params": ps, "lr": lr, "weight_decay": wd} for (lr, wd), ps in groups.items()]


def fit(
    model: torch.nn.Module,
    lengths: Sequence[int],
    make_batch: MakeBatch,
    batch_order: Callable[[int], list[list[int]]],
    cfg: TrainConfig,
    save_model: SaveModel,
    evaluate: Evaluate | None = None,
    resume_from: Path | None = None,
    console=None,
) -> FitResult:
    """Train `model`; `batch_order(epoch)` gives that epoch's micro-batches as index lists.

    Under torchrun each micro-batch of `batch_order` is a GLOBAL batch: rank r trains on its
    items r, r + N, ... and DDP averages the gradients, so N processes with the same seed and
    global batch follow the single-process run (exactly, without dropout).
    """
    from transformers import get_linear_schedule_with_warmup

    out = Path(cfg.output_dir)
    device = dist.setup(cfg.device) or pick_device(cfg.device)
    main_rank = dist.is_main()
    if main_rank:
        out.mkdir(parents=True, exist_ok=True)
        for stale in out.glob(".*.tmp-*"):  # a write interrupted by a crash
            shutil.rmtree(stale, ignore_errors=True)
    model.to(device)
    seed_everything(cfg.seed + dist.rank())  # dropout streams differ per rank; weights come from rank 0
    trained = model
    if dist.active():
        from torch.nn.parallel import DistributedDataParallel

        trained = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    console = console if main_rank else None

    micro_per_epoch = len(batch_order(0))
    if micro_per_epoch == 0:
        raise GPLinkerError("no training windows: the training data is empty")
    steps_per_epoch = math.ceil(micro_per_epoch / cfg.grad_accum)
    total_steps = cfg.max_steps if cfg.max_steps > 0 else cfg.epochs * steps_per_epoch
    optimizer = torch.optim.AdamW(param_groups(model, cfg), lr=cfg.lr)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total_steps), total_steps)
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.amp == "fp16")
    autocast = lambda: amp_context(cfg.amp, device)  # noqa: E731
    state = LoopState()
    if resume_from is not None:
        state = restore_checkpoint(resume_from, model, optimizer, scheduler, scaler, device)
        say(console, f"resumed from {resume_from} at step {state.step}")
    writer = tensorboard_writer(out / "tensorboard") if main_rank else None

    def evaluate_and_checkpoint() -> bool:
        """Evaluate, keep best/, write a resumable checkpoint; True when patience ran out."""
        scores: dict = {}
        if evaluate is not None:
            model.eval()
            main, scores = evaluate(model)
            model.train()
            improved = main > state.best_score
        else:
            main, improved = float("nan"), True
        entry = {"step": state.step, "epoch": state.epoch, "score": main, **flat_numbers(scores)}
        state.history.append(entry)
        if improved:
            state.best_score, state.best_step, state.evals_since_best = main, state.step, 0
            if main_rank:
                atomic_dir(out / "best", lambda d: (save_model(model, d), write_json(d / "metrics.json", entry)))
        else:
            state.evals_since_best += 1
        if main_rank:
            log_line(out, {"event": "eval", **entry})
        if writer is not None:
            for k, v in flat_numbers(scores).items():
                writer.add_scalar(f"dev/{k}", v, state.step)
        say(console, f"step {state.step}: dev score {main:.4f} (best {state.best_score:.4f} at step {state.best_step})")
        save_checkpoint(out, state, model, optimizer, scheduler, scaler, save_model, cfg.keep_checkpoints)
        return cfg.patience > 0 and state.evals_since_best >= cfg.patience

    model.train()
    progress = make_progress(console)
    task_id = progress.add_task("train", total=total_steps, completed=state.step, info="")
    running, t0, seen = [], time.perf_counter(), 0
    stop = state.step >= total_steps
    with progress:
        while not stop:
            epoch, batches = state.epoch, batch_order(state.epoch)
            while state.epoch == epoch and not stop:
                group = batches[state.batch_in_epoch : state.batch_in_epoch + cfg.grad_accum]
                state.batch_in_epoch += len(group)
                at_epoch_end = state.batch_in_epoch >= len(batches)
                if at_epoch_end:  # the position a checkpoint records is the next micro-batch to run
                    state.epoch, state.batch_in_epoch = epoch + 1, 0
                loss_sum = 0.0
                for k, indices in enumerate(group):
                    mine = dist.shard(indices) or indices[:1]  # a rank with no item still joins the all-reduce
                    weight = 1.0 if dist.shard(indices) else 0.0
                    batch = to_device(make_batch(mine), device)
                    sync = k == len(group) - 1 or not dist.active()
                    with (nullcontext() if sync else trained.no_sync()), autocast():
                        loss = trained(**batch).loss
                    loss_sum += loss.item()
                    scaler.scale(loss * weight / len(group)).backward()
                    seen += len(indices)
                loss_sum = dist.mean_scalar(loss_sum, device)  # NaN on any rank → every rank skips
                if not math.isfinite(loss_sum):
                    optimizer.zero_grad(set_to_none=True)
                    state.bad_steps += 1
                    log.warning("step %d: loss is %s; step skipped", state.step + 1, loss_sum)
                    say(console, f"[yellow]warning: non-finite loss at step {state.step + 1}; step skipped[/]")
                    if state.bad_steps >= MAX_BAD_STEPS:
                        raise GPLinkerError(
                            f"{MAX_BAD_STEPS} non-finite losses in a row at step {state.step + 1}; lower train.lr, "
                            "use train.amp=bf16 instead of fp16, or check the data"
                        )
                    continue
                state.bad_steps = 0
                if cfg.max_grad_norm > 0:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                state.step += 1
                running.append(loss_sum / len(group))
                if main_rank and (state.step % cfg.log_every == 0 or state.step == total_steps):
                    rate = seen / max(time.perf_counter() - t0, 1e-9)
                    entry = {"step": state.step, "loss": sum(running) / len(running),
                             "lr": scheduler.get_last_lr()[0], "windows_per_s": rate}
                    log_line(out, {"event": "train", **entry})
                    if writer is not None:
                        for k in ("loss", "lr", "windows_per_s"):
                            writer.add_scalar(f"train/{k}", entry[k], state.step)
                    progress.update(task_id, info=f"loss {entry['loss']:.4f} lr {entry['lr']:.2e} {rate:.0f} win/s")
                    running, t0, seen = [], time.perf_counter(), 0
                progress.update(task_id, completed=state.step)
                due = state.step % cfg.eval_every == 0 if cfg.eval_every > 0 else at_epoch_end
                if due or state.step >= total_steps:
                    stop = evaluate_and_checkpoint() or state.step >= total_steps
    if main_rank:
        atomic_dir(out / "last", lambda d: save_model(model, d))
        write_json(out / "history.json", state.history)
    if writer is not None:
        writer.close()
    dist.barrier()
    return FitResult(state.best_score, state.best_step, state.step, state.history)


# --- checkpoints -----------------------------------------------------------------------------


def save_checkpoint(out: Path, state: LoopState, model, optimizer, scheduler, scaler, save_model: SaveModel,
                    keep: int) -> Path:
    """Write checkpoint-<step>/ (model dir + trainer_state.pt) atomically; keep the newest `keep`.

    Rank 0 writes; the RNG states of every rank are gathered so that each resumes its own stream.
    """
    rngs = dist.gather_objects(rng_state())
    path = out / f"{CHECKPOINT_PREFIX}{state.step}"
    if dist.is_main():

        def write(d: Path) -> None:
            save_model(model, d)
            torch.save({
                "state": asdict(state),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "rng": rngs,
            }, d / STATE_FILE)

        atomic_dir(path, write)
        for old in list_checkpoints(out)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    dist.barrier()
    return path


def list_checkpoints(out: Path) -> list[Path]:
    """Complete checkpoints in step order (a temp dir from an interrupted write is not one)."""
    found = []
    for d in Path(out).glob(f"{CHECKPOINT_PREFIX}*"):
        suffix = d.name[len(CHECKPOINT_PREFIX):]
        if suffix.isdigit() and (d / STATE_FILE).is_file():
            found.append((int(suffix), d))
    return [d for _, d in sorted(found)]


def restore_checkpoint(path: Path, model, optimizer, scheduler, scaler, device) -> LoopState:
    """Load model weights and every training state saved by save_checkpoint."""
    model.load_state_dict(load_file(str(path / "model.safetensors"), device=str(device)), strict=True)
    try:
        saved = torch.load(path / STATE_FILE, map_location=device, weights_only=True)  # never unpickle code
    except pickle.UnpicklingError as exc:
        raise GPLinkerError(f"{path / STATE_FILE}: refused to load, it holds more than tensors and plain values "
                            f"({str(exc).strip().splitlines()[0]})") from None
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    scaler.load_state_dict(saved["scaler"])
    rngs = saved["rng"]
    if len(rngs) != dist.world_size():
        log.warning("checkpoint was written by %d process(es), resuming with %d: RNG streams restart", len(rngs),
                    dist.world_size())
    set_rng_state(rngs[dist.rank() % len(rngs)])
    return LoopState(**saved["state"])


def rng_state() -> dict:
    state = {"python": list_tree(random.getstate()), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    try:
        import numpy as np

        name, keys, pos, has_gauss, gauss = np.random.get_state()
        state["numpy"] = [name, torch.from_numpy(keys.astype("int64")), pos, has_gauss, gauss]
    except ImportError:
        pass
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(tuple_tree(state["python"]))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    if "numpy" in state:
        import numpy as np

        name, keys, pos, has_gauss, gauss = state["numpy"]
        np.random.set_state((name, keys.numpy().astype("uint32"), pos, has_gauss, gauss))


def list_tree(x):
    return [list_tree(v) for v in x] if isinstance(x, tuple) else x


def tuple_tree(x):
    return tuple(tuple_tree(v) for v in x) if isinstance(x, list) else x


def atomic_dir(target: Path, write: Callable[[Path], object]) -> Path:
    """Write a directory under a temp name, fsync its files, then rename it into place."""
    target = Path(target)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    write(tmp)
    for f in tmp.iterdir():
        if f.is_file():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    fsync_dir(target.parent)  # make the rename itself durable
    shutil.rmtree(old, ignore_errors=True)
    return target


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- small I/O ---------------------------------------------------------------------------------


def flat_numbers(scores: dict) -> dict:
    return {k: float(v) for k, v in scores.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def write_json(path: Path, value) -> None:
    tmp = Path(path).with_suffix(".tmp")
    tmp.write_text(json.dumps(value, ensure_ascii=False, indent=2), encoding="utf-8")
    os.replace(tmp, path)


def log_line(out: Path, entry: dict) -> None:
    with open(out / "train_log.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry, ensure_ascii=False) + "\n")


def tensorboard_writer(path: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(path))


def say(console, message: str) -> None:
    if console is not None:
        console.print(message)


def make_progress(console):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
        console=console, disable=console is None, transient=False,
    )
