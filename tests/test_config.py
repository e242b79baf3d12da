"""Config: YAML + typed --set overrides; unknown keys and wrong types are errors naming the key."""

from __future__ import annotations

import pytest

from gplinker.config import load_config
from gplinker.errors import ConfigError


def test_overrides_are_typed_and_nested(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("task: ner\ntrain:\n  lr: 1e-3\n  epochs: 2\n", encoding="utf-8")
    cfg = load_config(path, ["train.epochs=5", "model.scratch.hidden_size=64", "train.amp=bf16", "data.dev=null"])
    assert (cfg.train.lr, cfg.train.epochs, cfg.model.scratch.hidden_size, cfg.train.amp) == (1e-3, 5, 64, "bf16")
    assert cfg.data.dev is None


@pytest.mark.parametrize("override, message", [
    ("train.lrr=1", "unknown config key 'train.lrr'"),
    ("nope=1", "unknown config key 'nope'"),
    ("train.epochs=1.5", "'train.epochs' must be int"),
    ("train.lr=fast", "'train.lr' must be float"),
    ("data.skip_invalid=3", "'data.skip_invalid' must be bool"),
    ("task=parse", "task must be one of"),
    ("model.head=crf", "model.head must be egp or gp"),
    ("data.stride=200", "data.stride must be in"),
    ("train.lr", "must look like key.sub=value"),
])
def test_bad_values_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load_config(None, [override])


def test_data_paths_are_relative_to_the_config_file(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "train.jsonl").write_text("", encoding="utf-8")
    path = tmp_path / "sub" / "c.yaml"
    path.write_text("data:\n  train: train.jsonl\n", encoding="utf-8")
    assert load_config(path).data.train == str(tmp_path / "sub" / "train.jsonl")


def test_shipped_configs_load():
    from tests.conftest import REPO

    for path in sorted((REPO / "configs").glob("*.yaml")):
        cfg = load_config(path)
        assert cfg.task in ("ner", "relation", "event"), path
