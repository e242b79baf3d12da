"""Optional console output: every layer that talks to the user prints through `say`."""

from __future__ import annotations

from rich.console import Console


def say(console: Console | None, message: str) -> None:
    """Print `message` when there is a console (None: quiet, e.g. on ranks other than 0)."""
    if console is not None:
        console.print(message)
