"""Console output: `say` for optional messages, `make_progress` for the progress bars every stage shows."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


def say(console: Console | None, message: str) -> None:
    """Print `message` when there is a console (None: quiet, e.g. on ranks other than 0)."""
    if console is not None:
        console.print(message)


class RateColumn(ProgressColumn):
    """Items per second of a progress task, e.g. "1,234 lines/s" (blank until there is a rate)."""

    def __init__(self, unit: str):
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        unit = task.fields.get("unit", self.unit)  # a task may name its own unit
        return Text("" if speed is None else f"{speed:,.0f} {unit}/s", style="progress.data.speed")


def make_progress(console: Console | None, unit: str, *, transient: bool = False, info: bool = False) -> Progress:
    """The progress display every stage uses: description, bar, done/total, rate, elapsed, ETA (and an info field)."""
    columns: list[ProgressColumn] = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     RateColumn(unit), TimeElapsedColumn(), TimeRemainingColumn()]
    if info:
        columns.append(TextColumn("{task.fields[info]}"))
    return Progress(*columns, console=console, disable=console is None, transient=transient)
