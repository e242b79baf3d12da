"""What a person watching a training run sees: the rich progress bar and the console messages.

`ProgressReport` consumes the loop's Step records: it moves the bar, shows the latest train log
line on it, prints each evaluation's score and warns about skipped steps (on the console and
through the "gplinker" logger). When the console is no terminal (nohup, CI, a file) there is no
bar to look at, so each train log line (every `train.log_every` steps) is printed as a plain
timestamped line instead, and every line carries the time. Scores are shown as percentages, as
in the tables. Without a console (and on every rank but 0) it prints nothing.
"""

from __future__ import annotations

import logging
import math
import time
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import Progress

from gplinker.console import make_progress, say
from gplinker.training.loop import Step

log = logging.getLogger("gplinker")


class ProgressReport:
    """The training bar (steps, rate, ETA, latest loss) on `progress`, or on its own display when none is given.

    A caller that passes its own running `progress` can put other tasks on the same display (the
    evaluation's bar, in `gplinker train`); it starts and stops that display itself.
    """

    def __init__(self, console: Console | None, total_steps: int, done: int = 0, progress: Progress | None = None):
        self.console = console
        self.plain = console is not None and not console.is_terminal  # no live bar: print lines
        self.total_steps = total_steps
        self.owned = progress is None
        self.progress = progress or make_progress(console, "steps", info=True)
        self.task = self.progress.add_task("train", total=total_steps, completed=done, info="")

    def __enter__(self) -> ProgressReport:
        if self.owned:
            self.progress.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self.owned:
            self.progress.__exit__(kind, value, traceback)

    def add(self, step: Step, line: dict[str, Any] | None = None) -> None:
        """Show `step`; `line` is the train log line written for it, if any."""
        if step.overflow is not None:
            log.info("step %d: fp16 gradients overflowed at loss scale %g; step skipped, scale halved (normal while "
                     "the GradScaler calibrates)", step.step + 1, step.overflow)
            return
        if step.skipped:
            log.warning("step %d: loss is %s; step skipped", step.step + 1, step.loss)
            self.say(f"[yellow]warning: non-finite loss at step {step.step + 1}; step skipped[/]")
            return
        if line is not None:
            info = f"loss {line['loss']:.4f} lr {line['lr']:.2e} {line['windows_per_s']:.0f} win/s"
            self.progress.update(self.task, info=info)
            if self.plain:
                self.say(f"step {step.step}/{self.total_steps} {info}")
        self.progress.update(self.task, completed=step.step)
        e = step.evaluation
        if e is not None and not math.isnan(e.score):  # NaN: no dev set, nothing to report
            self.say(f"step {step.step}: dev score {100 * e.score:.2f} "
                     f"(best {100 * e.best_score:.2f} at step {e.best_step})")

    def say(self, message: str) -> None:
        """Print `message`, after the time of day when the console is no terminal."""
        say(self.console, f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}" if self.plain else message)
