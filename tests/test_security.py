"""Loading never runs code from a model dir unless asked; weights come only from safetensors; YAML is safe."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from gplinker.cli import app
from gplinker.config import load_config
from gplinker.errors import ConfigError, GPLinkerError


def evil_dir(tmp_path):
    d = tmp_path / "evil"
    d.mkdir()
    marker = tmp_path / "PWNED"
    (d / "config.json").write_text(json.dumps({
        "model_type": "evil", "auto_map": {"AutoConfig": "configuration_evil.EvilConfig"},
        "gplinker": {"task": "ner"}}), encoding="utf-8")
    (d / "configuration_evil.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\nfrom transformers import PretrainedConfig\n"
        "class EvilConfig(PretrainedConfig):\n    model_type = 'evil'\n", encoding="utf-8")
    (d / "model.safetensors").write_bytes(b"")
    return d, marker


def test_model_dir_with_custom_code_is_refused_without_the_flag(tmp_path):
    from gplinker.predict import Predictor

    d, marker = evil_dir(tmp_path)
    with pytest.raises(ConfigError, match="--trust-remote-code"):
        Predictor.from_pretrained(d, device="cpu")
    result = CliRunner().invoke(app, ["predict", str(d), "-"], input='{"text": "x"}\n')
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert not marker.exists(), "code from the model dir ran"


def test_yaml_tags_cannot_build_python_objects(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("task: !!python/object/apply:os.system ['echo hi']\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)


def test_resume_refuses_a_training_state_that_would_run_code(tmp_path, monkeypatch):
    import torch
    from safetensors.torch import save_file

    from gplinker.training import STATE_FILE, restore_checkpoint

    class Boom:
        def __reduce__(self):
            return (exec, ("open('PWNED', 'w')",))

    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    ckpt = tmp_path / "checkpoint-1"
    ckpt.mkdir()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(ckpt / "model.safetensors"))
    torch.save({"state": Boom()}, ckpt / STATE_FILE)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(GPLinkerError, match="refused to load"):
        restore_checkpoint(ckpt, model, optimizer, None, None, torch.device("cpu"))
    assert not (tmp_path / "PWNED").exists()
