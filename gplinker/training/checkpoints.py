"""A run's directories on disk: best/, resumable checkpoint-<step>/, last/ and history.json.

`Checkpoints` consumes the loop's Step records and writes them. A checkpoint is a model dir
plus trainer_state.pt, a plain dict of states (LoopState, optimizer, scheduler, scaler and the
RNG state of every rank); `restore_checkpoint` loads one back. Every directory is written under
a temp name and renamed into place, so a crash leaves the previous version whole.
"""

from __future__ import annotations

import logging
import os
import pickle
import random
import shutil
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, cast

import torch
from safetensors import safe_open

from gplinker import distributed as dist
from gplinker.atomic_files import fsync_dir, is_write_error, swapped_out, write_failed, write_json
from gplinker.errors import GPLinkerError
from gplinker.manifest import verify, write_manifest
from gplinker.training.loop import LoopState, Optimisation, Step

log = logging.getLogger("gplinker")

STATE_FILE = "trainer_state.pt"
CHECKPOINT_PREFIX = "checkpoint-"

SaveModel = Callable[[torch.nn.Module, Path], None]  # model -> model dir


class Checkpoints:
    """Writes best/ (with metrics.json) when an evaluation improves, checkpoint-<step>/ after every evaluation,
    and last/ with history.json at the end.

    `model`, `state` and `opt` are the objects the loop updates in place. Every rank calls `add`
    (a checkpoint gathers every rank's RNG state); rank 0 alone writes.
    """

    def __init__(self, out: Path, model: torch.nn.Module, state: LoopState, opt: Optimisation,
                 save_model: SaveModel, keep: int):
        self.out, self.model, self.state, self.opt = Path(out), model, state, opt
        self.save_model, self.keep = save_model, keep

    def add(self, step: Step) -> None:
        evaluation = step.evaluation
        if evaluation is None:
            return
        if evaluation.improved and dist.is_main():

            def write_best(d: Path) -> None:
                self.save_model(self.model, d)
                write_json(d / "metrics.json", evaluation.entry)

            atomic_dir(self.out / "best", write_best)
        save_checkpoint(self.out, self.state, self.model, self.opt.optimizer, self.opt.scheduler, self.opt.scaler,
                        self.save_model, self.keep)

    def save_now(self) -> Path:
        """checkpoint-<step>/ of the current step (unless an evaluation just wrote it): a signal stopped the run."""
        path = self.out / f"{CHECKPOINT_PREFIX}{self.state.step}"
        if (path / STATE_FILE).is_file():
            return path
        return save_checkpoint(self.out, self.state, self.model, self.opt.optimizer, self.opt.scheduler,
                               self.opt.scaler, self.save_model, self.keep)

    def finish(self) -> None:
        if dist.is_main():
            atomic_dir(self.out / "last", lambda d: self.save_model(self.model, d))
            write_json(self.out / "history.json", self.state.history)


def prepare_output_dir(out: Path) -> list[str]:
    """Create `out`, finish or undo the dir swaps and writes a crash interrupted; returns what was put back.

    A swap cut between its two renames (atomic_dir) left `.NAME.old-PID` and no NAME: the old copy
    goes back in place. Old copies beside a NAME, and temp dirs and files, are removed.
    """
    out.mkdir(parents=True, exist_ok=True)
    restored = []
    for old in sorted(out.glob(".*.old-*")):
        target = out / old.name[1:].rsplit(".old-", 1)[0]
        if old.is_dir() and swapped_out(target) == old:
            os.replace(old, target)
            restored.append(f"{target}: put back the previous copy (a run was killed while replacing it)")
        else:
            shutil.rmtree(old, ignore_errors=True)
    for stale in out.glob(".*.tmp-*"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)
    return restored


def save_checkpoint(out: Path, state: LoopState, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler: torch.optim.lr_scheduler.LRScheduler, scaler: torch.amp.GradScaler,
                    save_model: SaveModel, keep: int) -> Path:
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


def newest_usable(checkpoints: list[Path]) -> tuple[Path | None, list[tuple[Path, str]]]:
    """The newest checkpoint whose files verify, and each newer one skipped with why ("DIR/FILE: corrupt ...").

    A checkpoint with a manifest is checked against it (every file's size and sha256); one written
    before manifests existed has its trainer state read and its weights' header parsed instead.
    """
    skipped: list[tuple[Path, str]] = []
    for path in reversed(checkpoints):
        try:
            if verify(path) == "unverified":
                read_state(path / STATE_FILE)
                with safe_open(str(path / "model.safetensors"), framework="pt"):
                    pass
            return path, skipped
        except GPLinkerError as exc:
            skipped.append((path, str(exc)))
        except Exception as exc:  # SafetensorError from a header that does not parse
            skipped.append((path, f"{path / 'model.safetensors'}: corrupt or incomplete ({str(exc)[:200]})"))
    return None, skipped


# Settings a checkpoint's optimizer and LR schedule were built from. A resume restores the saved
# optimizer (its lr, initial_lr and weight_decay per group) and the scheduler's step count, but the
# schedule's shape is rebuilt from the config: a changed value would be silently ignored (lr,
# head_lr, weight_decay) or would bend the schedule mid-run (the step count, warmup). So it is refused.
SCHEDULE_KEYS = ("max_steps", "epochs", "batch_size", "grad_accum", "lr", "head_lr", "weight_decay", "warmup_ratio")


def schedule_changes(saved: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """The schedule settings (SCHEDULE_KEYS) that differ between a checkpoint's train config and this run's,
    as "train.KEY SAVED → NOW"; epochs only counts while max_steps is 0 (else it sets no step count)."""
    changed = []
    for key in SCHEDULE_KEYS:
        if key not in saved or saved[key] == now[key]:
            continue
        if key == "epochs" and saved.get("max_steps", 0) > 0 and now["max_steps"] > 0:
            continue
        changed.append(f"train.{key} {saved[key]} → {now[key]}")
    return changed


def check_schedule(path: Path, state: LoopState, total_steps: int) -> None:
    """GPLinkerError when this run's step count differs from the one the checkpoint's schedule was built for."""
    if state.total_steps and state.total_steps != total_steps:
        raise GPLinkerError(f"{path}: its LR schedule runs {state.total_steps} steps, this run would run "
                            f"{total_steps} (the training data changed, or a setting that counts steps): a resumed "
                            "run keeps its schedule; resume with the same data and settings, or start a new run")


def restore_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                       scheduler: torch.optim.lr_scheduler.LRScheduler, scaler: torch.amp.GradScaler,
                       device: torch.device) -> LoopState:
    """Load model weights and every training state saved by save_checkpoint (verify_checkpoint first)."""
    from gplinker.modeling.model import read_weights

    model.load_state_dict(read_weights(path / "model.safetensors", device=str(device)), strict=True)
    saved = read_state(path / STATE_FILE, device)
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    scaler.load_state_dict(saved["scaler"])
    rngs = saved["rng"]
    if len(rngs) != dist.world_size():
        log.warning("checkpoint was written by %d process(es), resuming with %d: RNG streams restart", len(rngs),
                    dist.world_size())
    set_rng_state(rngs[dist.rank() % len(rngs)])
    return LoopState(**saved["state"])


def read_state(path: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """trainer_state.pt as plain values and tensors; code inside, a truncated or empty file is a GPLinkerError."""
    try:
        saved = torch.load(path, map_location=device, weights_only=True)  # never unpickle code
    except pickle.UnpicklingError as exc:
        raise GPLinkerError(f"{path}: refused to load, it holds more than tensors and plain values "
                            f"({str(exc).strip().splitlines()[0]})") from None
    except (EOFError, RuntimeError, OSError) as exc:  # RuntimeError: "PytorchStreamReader failed reading ..."
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "the file ends early"
        raise GPLinkerError(f"{path}: corrupt or incomplete (cannot read it: {reason[:200]})") from None
    if not isinstance(saved, dict) or not {"state", "optimizer", "scheduler", "scaler", "rng"} <= saved.keys():
        raise GPLinkerError(f"{path}: corrupt or incomplete (not a gplinker trainer state)")
    return saved


def rng_state() -> dict[str, Any]:
    """Python's, torch's (CPU and CUDA) and numpy's generator states, as lists and tensors (weights_only-safe)."""
    state: dict[str, Any] = {"python": list_tree(random.getstate()), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    try:
        import numpy as np

        name, keys, pos, has_gauss, gauss = cast(tuple[Any, ...], np.random.get_state())
        state["numpy"] = [name, torch.from_numpy(keys.astype("int64")), pos, has_gauss, gauss]
    except ImportError:
        pass
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(tuple_tree(state["python"]))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    if "numpy" in state:
        import numpy as np

        name, keys, pos, has_gauss, gauss = state["numpy"]
        np.random.set_state((name, keys.numpy().astype("uint32"), pos, has_gauss, gauss))


def list_tree(x: Any) -> Any:
    return [list_tree(v) for v in x] if isinstance(x, tuple) else x


def tuple_tree(x: Any) -> Any:
    return tuple(tuple_tree(v) for v in x) if isinstance(x, list) else x


def atomic_dir(target: Path, write: Callable[[Path], object]) -> Path:
    """Write a directory under a temp name with its manifest.json, fsync its files, then rename it into place.

    A failed write (a full disk) removes the temp dir and raises a GPLinkerError naming `target`;
    the previous version of `target` is untouched.
    """
    target = Path(target)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        write(tmp)
        write_manifest(tmp)  # last: a dir whose manifest verifies is whole
        for f in tmp.iterdir():
            if f.is_file():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
    except Exception as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if not is_write_error(exc):  # a full disk, however torch or safetensors word it
            raise
        raise write_failed(target, exc) from None
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    fsync_dir(target.parent)  # make the rename itself durable
    shutil.rmtree(old, ignore_errors=True)
    return target
