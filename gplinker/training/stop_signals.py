"""Stopping a training cleanly: the first SIGTERM or SIGINT (Ctrl-C) asks for a checkpoint, the second stops at once.

`StopSignals` installs the handlers for the duration of `fit`. The first signal only sets a flag;
the loop checks it after each optimizer step (a point where the loop's state is whole, as at every
checkpoint), writes checkpoint-<step>/ and raises `Interrupted`, so `--resume` continues from that
step. A second signal restores the default action and re-sends itself: the process ends at once.
Under torchrun every rank learns of a signal any rank got (one all-reduce per step), so all stop
at the same step.
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType, TracebackType
from typing import Any

import torch

from gplinker import distributed as dist

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignals:
    def __init__(self) -> None:
        self.signum: int | None = None  # the first signal received
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():  # only the main thread may set handlers
            for signum in SIGNALS:
                self.previous[signum] = signal.signal(signum, self.handle)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous.clear()

    def handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.signum is not None:  # the second signal: the default action, now
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        self.signum = signum

    def requested(self, device: torch.device) -> bool:
        """Whether this rank, or under torchrun any rank, received a signal."""
        mine = 1.0 if self.signum is not None else 0.0
        return dist.mean_scalar(mine, device) > 0 if dist.active() else mine > 0

    def name(self) -> str:
        return signal.Signals(self.signum or signal.SIGTERM).name
