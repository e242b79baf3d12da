"""The CLI's small promises: --version, flags shown as flags, file-level errors, config-relative paths,
and transformers' load report only with --verbose."""

from __future__ import annotations

import os
import subprocess
import sys

from typer.testing import CliRunner

from gplinker.cli import app
from gplinker.config import load_config
from gplinker.run_info import package_version
from tests.conftest import NER_SENTENCES, REPO, set_args, spans_record, tiny_overrides, write_jsonl

runner = CliRunner()


def flat(output: str) -> str:
    return " ".join(output.split())


def test_version_prints_the_installed_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"gplinker {package_version()}"


def test_boolean_options_are_shown_as_flags_without_a_type():
    for command, flags in [("train", ["--resume", "--overwrite", "--skip-invalid"]),
                           ("eval", ["--skip-invalid", "--trust-remote-code"]),
                           ("check", ["--char-level", "--strict"])]:
        help_text = runner.invoke(app, [command, "--help"], terminal_width=200).output
        assert "<bool>" not in help_text, command
        for flag in flags + ["--help"]:
            (line,) = [x for x in help_text.splitlines() if x.strip().startswith(flag + " ")]
            assert line.split()[1] != "<bool>"
    assert "--set KEY=VALUE" in runner.invoke(app, ["train", "--help"]).output


def test_a_missing_input_file_is_reported_without_a_line_number(tmp_path):
    missing = tmp_path / "nope.jsonl"
    result = runner.invoke(app, ["check", str(missing), "--task", "ner"])
    assert result.exit_code == 2
    assert flat(result.output) == f"error: {missing}: no such file"


def test_config_data_paths_are_relative_to_the_config_file_only(tmp_path, monkeypatch):
    # train.jsonl exists in the working dir but not next to the config: the config's path must not find it
    rows = [spans_record(t, e) for t, e in NER_SENTENCES]
    write_jsonl(tmp_path / "train.jsonl", rows)
    (tmp_path / "sub").mkdir()
    config = write_jsonl(tmp_path / "sub" / "c.yaml", ["task: ner", "data:", "  train: train.jsonl",
                                                       "  dev: hf:org/name:validation"])
    monkeypatch.chdir(tmp_path)
    cfg = load_config("sub/c.yaml")
    assert cfg.data.train == str(tmp_path / "sub" / "train.jsonl")
    assert cfg.data.dev == "hf:org/name:validation"  # a hub name, not a path
    result = runner.invoke(app, ["train", str(config), "--set", "data.dev=null",
                                 "--set", f"train.output_dir={tmp_path / 'o'}"])
    assert result.exit_code == 2
    assert flat(result.output) == f"error: {tmp_path / 'sub' / 'train.jsonl'}: no such file"


def masked_lm_dir(tmp_path):
    """A tiny BERT saved with its MLM head: loading it as an encoder leaves the head's weights unused."""
    from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast

    chars = sorted({c for t, _ in NER_SENTENCES for c in t})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars
    d = tmp_path / "mlm"
    d.mkdir()
    (d / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertForMaskedLM(BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=64, max_position_embeddings=64)).save_pretrained(d)
    BertTokenizerFast.from_pretrained(str(d)).save_pretrained(d)
    return d


def test_transformers_load_report_shows_only_with_verbose(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", [spans_record(t, e) for t, e in NER_SENTENCES])
    config = write_jsonl(tmp_path / "c.yaml", ["task: ner"])
    encoder = masked_lm_dir(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("TRANSFORMERS_VERBOSITY", "HF_HUB_DISABLE_PROGRESS_BARS")}
    env["PYTHONPATH"] = str(REPO)
    outputs = {}
    for flags in ([], ["--verbose"]):
        sets = tiny_overrides(train, None, tmp_path / f"run{len(flags)}", "train.max_steps=1",
                              f"model.encoder={encoder}")
        proc = subprocess.run([sys.executable, "-m", "gplinker", *flags, "train", str(config), *set_args(sets)],
                              capture_output=True, text=True, env=env, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        outputs[bool(flags)] = proc.stdout + proc.stderr
    assert "UNEXPECTED" not in outputs[False] and "LOAD REPORT" not in outputs[False]
    assert "UNEXPECTED" in outputs[True] and "cls.predictions" in outputs[True]
