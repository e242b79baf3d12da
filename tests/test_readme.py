"""README.md stays true: its config table names every config key, and the commands it shows exist."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import typing

import pytest

from gplinker.cli import app
from gplinker.config import Config
from tests.conftest import REPO


def config_keys(cls, prefix: str = "") -> list[str]:
    """Dotted names of every leaf field of a config dataclass."""
    hints = typing.get_type_hints(cls)
    keys = []
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            keys += config_keys(hints[f.name], f"{prefix}{f.name}.")
        else:
            keys.append(prefix + f.name)
    return keys


def test_readme_config_table_names_every_key():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    rows = [line for line in readme.splitlines() if line.startswith("| `")]
    named = set(re.findall(r"`([a-z_]+(?:\.[a-z_*]+)*)`", "\n".join(row.split(" | ")[0] for row in rows)))
    keys = config_keys(Config)
    assert len(keys) > 30
    missing = [k for k in keys if k not in named and not any(n.endswith(".*") and k.startswith(n[:-1]) for n in named)]
    assert not missing, f"README.md's config table lacks {missing}"


def test_readme_gplinker_commands_are_real_commands():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = "\n".join(re.findall(r"```bash\n(.*?)```", readme, flags=re.S))
    used = set(re.findall(r"(?:^|[\s|&])(?<!ruff check )gplinker ([a-z]+)", blocks, flags=re.M))  # not the lint paths
    commands = {c.name or c.callback.__name__ for c in app.registered_commands}
    assert {"train", "eval", "predict", "export", "demo"} <= used
    assert used <= commands, used - commands


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    command = next(line for line in re.findall(r"```bash\n(.*?)```", readme, flags=re.S)[1].splitlines()
                   if "pytest" in line)
    assert "ruff check" in command and "mypy" in command
    assert command in (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()


@pytest.mark.parametrize("failing", ["ruff", "mypy", "python", "nothing"])
def test_ci_fails_when_any_step_of_the_readme_command_fails(tmp_path, failing):
    """.ci/run with stand-ins for its tools: when a step fails, CI exits non-zero and the wheel check never runs."""
    repo = tmp_path / "repo"
    (repo / ".ci").mkdir(parents=True)
    shutil.copy(REPO / ".ci" / "run", repo / ".ci" / "run")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("pip", "ruff", "mypy", "python", "apt-get"):
        script = bin_dir / tool
        script.write_text(f"#!/bin/sh\necho {tool} >> {tmp_path / 'ran'}\nexit {int(tool == failing)}\n")
        script.chmod(0o755)
    check = repo / ".ci" / "wheel_check"
    check.write_text(f"#!/bin/sh\necho wheel_check >> {tmp_path / 'ran'}\n")
    check.chmod(0o755)
    result = subprocess.run(["bash", str(repo / ".ci" / "run")], env={"PATH": f"{bin_dir}:/usr/bin:/bin"},
                            capture_output=True, text=True, timeout=60)
    ran = (tmp_path / "ran").read_text().split()
    if failing == "nothing":
        assert result.returncode == 0 and ran[-1] == "wheel_check", result.stderr
    else:
        assert result.returncode != 0 and failing in ran and "wheel_check" not in ran


def test_readme_and_demo_help_state_the_same_demo_time():
    from typer.testing import CliRunner

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    stated = re.findall(r"about (\d+) s on 2 idle CPU cores", readme)
    help_text = " ".join(CliRunner().invoke(app, ["demo", "--help"]).output.split())
    config = (REPO / "configs" / "demo.yaml").read_text(encoding="utf-8")
    assert stated and re.findall(r"About (\d+) s on 2 idle CPU cores", help_text) == stated[:1]
    assert set(stated) == set(re.findall(r"about (\d+) s on 2 idle CPU cores", config))
