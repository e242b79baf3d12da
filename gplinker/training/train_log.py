"""The training log: train_log.jsonl (one JSON object a line) and TensorBoard scalars, from the loop's Step records.

A "train" line (step, loss, lr, windows_per_s) is written every `log_every` steps and after the
last step, its loss the mean over the steps since the previous line; an "eval" line (the
evaluation's history entry) after every evaluation. Only rank 0 keeps a TrainLog.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from gplinker.atomic_files import atomic_text, write_failed
from gplinker.training.loop import Step

LOG_FILE = "train_log.jsonl"


class TrainLog:
    def __init__(self, out: Path, log_every: int, total_steps: int):
        self.path = Path(out) / LOG_FILE
        self.log_every, self.total_steps = log_every, total_steps
        self.writer = tensorboard_writer(Path(out) / "tensorboard")
        # since the last train line: losses of the steps done, windows run (skipped steps included), start time
        self.losses: list[float] = []
        self.windows = 0
        self.since = time.perf_counter()

    def add(self, step: Step) -> dict[str, Any] | None:
        """Log `step`; returns the fields of the train line it wrote, if it wrote one."""
        self.windows += step.windows
        if step.overflow is not None:
            self.write({"event": "overflow", "step": step.step + 1, "loss_scale": step.overflow})
        if step.skipped:
            return None
        self.losses.append(step.loss)
        line = None
        if step.step % self.log_every == 0 or step.step == self.total_steps:
            rate = self.windows / max(step.time - self.since, 1e-9)
            line = {"step": step.step, "loss": sum(self.losses) / len(self.losses), "lr": step.lr,
                    "windows_per_s": rate}
            self.write({"event": "train", **line})
            self.scalars("train", {k: line[k] for k in ("loss", "lr", "windows_per_s")}, step.step)
            self.losses, self.windows, self.since = [], 0, step.time
        if step.evaluation is not None:
            self.write({"event": "eval", **step.evaluation.entry})
            self.scalars("dev", step.evaluation.metrics, step.step)
        return line

    def write(self, entry: dict[str, Any]) -> None:
        try:
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
        except OSError as exc:
            raise write_failed(self.path, exc) from None

    def scalars(self, prefix: str, values: dict[str, float], step: int) -> None:
        if self.writer is not None:
            for k, v in values.items():
                self.writer.add_scalar(f"{prefix}/{k}", v, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def tensorboard_writer(path: Path) -> Any:
    """A SummaryWriter into `path`, or None when tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(path))


def truncate_log(path: Path, step: int) -> int:
    """Keep the lines of a training log up to `step` (a resumed run's checkpoint), atomically; returns lines dropped.

    Without it the steps a killed run did after its last checkpoint would be logged twice. A line
    that is not JSON (a crash cut it short) is dropped too.
    """
    if not path.is_file():
        return 0
    kept, dropped = [], 0
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                entry_step = json.loads(line).get("step", 0)
            except (ValueError, AttributeError):
                dropped += 1
                continue
            if isinstance(entry_step, int) and entry_step <= step:
                kept.append(line if line.endswith("\n") else line + "\n")
            else:
                dropped += 1
    if dropped:
        with atomic_text(path) as out:
            out.writelines(kept)
    return dropped
