"""Where a run came from: the package version, the git commit and the versions around it."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any


def package_version() -> str:
    """The installed gplinker version ("0+unknown" when running from an uninstalled tree)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gplinker")
    except PackageNotFoundError:
        return "0+unknown"


def git_commit() -> str | None:
    """The commit of the source tree gplinker runs from, if it is a git checkout."""
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                              cwd=Path(__file__).resolve().parent).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def write_run_info(out: Path, config: dict[str, Any]) -> None:
    """run_info.json: the resolved config, package versions, git commit and command line."""
    import torch
    import transformers

    info = {
        "config": config,
        "versions": {"gplinker": package_version(), "python": platform.python_version(),
                     "torch": torch.__version__, "transformers": transformers.__version__},
        "git_commit": git_commit(),
        "command": sys.argv,
    }
    (out / "run_info.json").write_text(json.dumps(info, ensure_ascii=False, indent=2), encoding="utf-8")
