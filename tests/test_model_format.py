"""The model dir records its format version; a newer or unknown one is refused, an old dir still loads."""

from __future__ import annotations

import json
import shutil

import pytest

from gplinker.errors import ConfigError
from gplinker.model_format import MODEL_FORMAT, check_model_format
from gplinker.predict import Predictor
from tests.test_pipeline import build_model_dir


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return build_model_dir(tmp_path_factory.mktemp("format") / "model")


def with_version(model_dir, tmp_path, version):
    """A copy of model_dir whose `gplinker` section says `version` (None: the key is removed)."""
    copy = tmp_path / "copy"
    shutil.copytree(model_dir, copy)
    config = json.loads((copy / "config.json").read_text(encoding="utf-8"))
    if version is None:
        config["gplinker"].pop("format_version", None)
    else:
        config["gplinker"]["format_version"] = version
    (copy / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return copy


def test_a_trained_model_dir_records_the_format_version(tmp_path):
    from gplinker.commands.train import train
    from gplinker.config import load_config
    from tests.conftest import NER_SENTENCES, spans_record, tiny_overrides, write_jsonl

    data = write_jsonl(tmp_path / "train.jsonl", [spans_record(t, e) for t, e in NER_SENTENCES])
    train(load_config(None, tiny_overrides(data, None, tmp_path / "run", "train.max_steps=1")))
    section = json.loads((tmp_path / "run" / "last" / "config.json").read_text(encoding="utf-8"))["gplinker"]
    assert section["format_version"] == MODEL_FORMAT == 1


def test_newer_format_is_refused_naming_both_versions(model_dir, tmp_path):
    newer = with_version(model_dir, tmp_path, MODEL_FORMAT + 1)
    with pytest.raises(ConfigError, match=rf"model format {MODEL_FORMAT + 1}, newer than the {MODEL_FORMAT}"):
        Predictor.from_pretrained(newer, device="cpu")


@pytest.mark.parametrize("version", [0, "1", 1.5, True])
def test_unknown_format_is_refused(model_dir, tmp_path, version):
    with pytest.raises(ConfigError, match="unknown model format_version"):
        Predictor.from_pretrained(with_version(model_dir, tmp_path, version), device="cpu")


def test_a_dir_without_the_field_reads_as_version_1(model_dir, tmp_path):
    old = with_version(model_dir, tmp_path, None)
    texts = ["张伟在北京大学读书。"]
    from gplinker.data.examples import Example

    examples = [Example(text=t) for t in texts]
    assert Predictor.from_pretrained(old, device="cpu").predict(examples) == \
        Predictor.from_pretrained(model_dir, device="cpu").predict(examples)
    check_model_format({}, "x")  # no exception
