"""Hostile configs and input files (issue 19): each ends as a clean error naming what is wrong, never a
traceback, a hang or a MemoryError."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest
from typer.testing import CliRunner

from gplinker.cli import app
from gplinker.config import load_config
from gplinker.data.formats import iter_json_lines
from gplinker.errors import ConfigError, DataError

runner = CliRunner()


def says(output: str, text: str) -> bool:
    return "".join(text.split()) in "".join(output.split())


def test_an_anchor_bomb_under_a_known_key_is_refused_with_a_short_quote(tmp_path):
    levels = ['    a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    levels += [f"    a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]  # 9**10 items
    config = tmp_path / "bomb.yaml"
    config.write_text("task: ner\ntrain:\n  lr:\n" + "\n".join(levels) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"config key 'train.lr' must be float, got \{'a0'") as info:
        load_config(config)
    assert len(str(info.value)) < 400


def test_deeply_nested_yaml_is_a_config_error(tmp_path):
    config = tmp_path / "deep.yaml"
    config.write_text("task: " + "[" * 20000 + "]" * 20000 + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="deep.yaml: not a config: its YAML is nested too deeply"):
        load_config(config)


def test_deeply_nested_json_lines_are_line_errors(tmp_path, tiny_model_dir):
    deep = "[" * 100000 + "]" * 100000
    data = tmp_path / "deep.jsonl"
    data.write_text('{"text": "张伟"}\n' + deep + "\n", encoding="utf-8")
    (_, first), (_, second) = list(iter_json_lines(data))
    assert first == {"text": "张伟"}
    assert isinstance(second, DataError) and str(second) == f"{data}:2: malformed JSON: nested too deeply"
    result = runner.invoke(app, ["predict", str(tiny_model_dir), str(data)])
    assert result.exit_code == 0, result.output
    records = [json.loads(x) for x in result.stdout.splitlines() if x.startswith("{")]
    assert records[1] == {"error": f"{data}:2: malformed JSON: nested too deeply", "line": 2}


def test_a_line_past_the_cap_is_an_error_naming_it(tmp_path, monkeypatch):
    monkeypatch.setenv("GPLINKER_MAX_LINE_BYTES", "100")
    data = tmp_path / "long.jsonl"
    data.write_text('{"text": "a"}\n' + json.dumps({"text": "x" * 200}) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"long.jsonl:2: line longer than 100 bytes .* set GPLINKER_MAX_LINE_BYTES"):
        list(iter_json_lines(data))
    exact = tmp_path / "exact.jsonl"
    exact.write_text(json.dumps({"text": "x" * 87}) + "\n", encoding="utf-8")  # 99 bytes + newline: fits
    assert [obj for _, obj in iter_json_lines(exact)] == [{"text": "x" * 87}]


@pytest.mark.parametrize("stdin", [False, True])
def test_predict_on_dev_zero_stops_at_the_line_cap(tiny_model_dir, stdin):
    env = {**os.environ, "GPLINKER_MAX_LINE_BYTES": "100000"}
    args = [sys.executable, "-m", "gplinker", "predict", str(tiny_model_dir), "-" if stdin else "/dev/zero"]
    with open("/dev/zero", "rb") as zero:
        proc = subprocess.run(args, stdin=zero if stdin else subprocess.DEVNULL, capture_output=True, text=True,
                              env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    where = "<stdin>" if stdin else "/dev/zero"
    assert says(proc.stderr, f"{where}:1: line longer than 100000 bytes")
    assert "Traceback" not in proc.stderr and "MemoryError" not in proc.stderr


def test_predict_reads_a_fifo_and_refuses_a_directory(tiny_model_dir, tmp_path):
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)

    def feed():
        with open(fifo, "w", encoding="utf-8") as fh:
            fh.write('{"text": "张伟在北京"}\n{"text": "李娜"}\n')

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    result = runner.invoke(app, ["predict", str(tiny_model_dir), str(fifo), "-o", str(tmp_path / "out.jsonl")])
    writer.join(timeout=60)
    assert result.exit_code == 0, result.output
    assert [json.loads(x)["text"] for x in (tmp_path / "out.jsonl").read_text().splitlines()] == ["张伟在北京", "李娜"]
    result = runner.invoke(app, ["predict", str(tiny_model_dir), str(tmp_path)])
    assert result.exit_code == 2
    assert says(result.output, f"input {tmp_path} is a directory")


def test_eval_on_a_fifo_says_what_it_is_without_opening_it(tiny_model_dir, tmp_path):
    fifo = tmp_path / "dev.fifo"
    os.mkfifo(fifo)  # nobody writes: opening it would block forever
    result = runner.invoke(app, ["eval", str(tiny_model_dir), str(fifo)])  # returning at all: it never opened it
    assert result.exit_code == 2, result.output
    assert says(result.output, f"{fifo}: is not a regular file")
