"""The wheel carries what an installed gplinker needs: the configs and the demo's data and config."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from gplinker.config import load_config
from gplinker.demo import CONFIG as DEMO_CONFIG
from tests.conftest import REPO, SHARED_DATA

PACKAGED_CONFIGS = REPO / "gplinker" / "configs"


def test_repository_configs_dir_is_the_packaged_one():
    assert (REPO / "configs").resolve() == PACKAGED_CONFIGS
    names = sorted(p.name for p in PACKAGED_CONFIGS.glob("*.yaml"))
    shipped = {"demo.yaml", "cluener.yaml", "duie.yaml", "duie1.yaml", "duee.yaml", "nyt.yaml", "webnlg.yaml"}
    assert shipped <= set(names)


def test_repository_configs_still_find_the_shared_data():
    cfg = load_config(REPO / "configs" / "duie.yaml")
    assert cfg.data.train == str(SHARED_DATA.resolve() / "duie2-subset" / "train.json")
    assert cfg.data.schema == str(SHARED_DATA.resolve() / "duie2-subset" / "duie_schema.json")


def test_demo_config_reads_the_packaged_demo_data():
    assert DEMO_CONFIG == PACKAGED_CONFIGS / "demo.yaml"
    for cfg in (load_config(DEMO_CONFIG), load_config(REPO / "configs" / "demo.yaml")):
        for path in (cfg.data.train, cfg.data.dev):
            assert path is not None and Path(path).is_file()
            assert Path(path).parent == REPO / "gplinker" / "demo"


@pytest.mark.skipif(importlib.util.find_spec("build") is None, reason="needs the dev extra's `build`")
def test_wheel_ships_the_configs_and_the_demo_data(tmp_path):
    # build from a copy, so the build leaves no build/ or egg-info in the working tree
    source = tmp_path / "src"
    shutil.copytree(REPO / "gplinker", source / "gplinker", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path / "dist"),
                    str(source)], check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("gplinker-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"gplinker/configs/{p.name}" for p in PACKAGED_CONFIGS.glob("*.yaml")}
    expected |= {f"gplinker/demo/{name}" for name in ("train.jsonl", "dev.jsonl", "predict.jsonl", "__init__.py")}
    assert expected <= names, sorted(expected - names)
