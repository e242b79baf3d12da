"""The encoding cache: exact round trip, hit on a re-run, miss on any change of file, settings or tokenizer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from gplinker.commands.train import train
from gplinker.config import load_config
from gplinker.data import cache
from gplinker.data.cache import encoding_key, load_or_encode, read_windows, tokenizer_digest, write_windows
from gplinker.data.encoding import WindowEncoder
from gplinker.data.reading import read_examples
from gplinker.data.schema import Schema
from gplinker.modeling.encoders import load_tokenizer, scratch_tokenizer
from gplinker.tasks.ner import NerTask
from tests.conftest import NER_SENTENCES, spans_record, tiny_overrides, write_jsonl

TASK = NerTask(Schema(task="ner", entity_types=["loc", "org", "person"]))
SETTINGS = {"fmt": "spans", "max_length": 16, "stride": 4, "char_level": False, "skip_invalid": False}


@pytest.fixture
def data(tmp_path) -> Path:
    rows = [spans_record(t, e) for t, e in NER_SENTENCES]
    rows.append(spans_record("".join(t for t, _ in NER_SENTENCES), []))  # long: several 16-token windows
    return write_jsonl(tmp_path / "train.jsonl", rows)


@pytest.fixture(scope="module")
def tokenizer():
    return scratch_tokenizer(t for t, _ in NER_SENTENCES)


def encode(path: Path, tokenizer, max_length: int = 16, stride: int = 4):
    """Windows with NER targets, the way training builds them."""
    examples, _ = read_examples(path, "spans", "ner")
    windows = WindowEncoder(tokenizer, max_length, stride).encode([e.text for e in examples])
    for w in windows:
        w.targets = TASK.targets(examples[w.example_index], w)
    return windows


def as_plain(windows) -> list[tuple]:
    return [(w.example_index, w.window_index, w.input_ids, w.char_spans, w.targets) for w in windows]


def counting(windows):
    calls = []

    def build():
        calls.append(1)
        return windows, {"unplaced": 2}

    return build, calls


def test_write_then_read_gives_the_same_windows_and_targets(tmp_path, data, tokenizer):
    windows = encode(data, tokenizer)
    assert len({w.example_index for w in windows}) < len(windows)  # the long text has several windows
    assert any(w.targets["entities"] for w in windows) and any(not w.targets["entities"] for w in windows)
    windows[0].targets = None  # a window without targets stays without
    write_windows(tmp_path / "c.safetensors", windows, {"unplaced": 3, "note": "北京"})
    back, stats = read_windows(tmp_path / "c.safetensors")
    assert as_plain(back) == as_plain(windows)
    assert stats == {"unplaced": 3, "note": "北京"}
    assert all(isinstance(s, tuple) for w in back for s in w.char_spans)


def test_rerun_hits_and_does_not_encode_again(tmp_path, data, tokenizer):
    windows = encode(data, tokenizer)
    key = encoding_key(data, tokenizer, TASK, **SETTINGS)
    build, calls = counting(windows)
    first = load_or_encode(tmp_path / "cache", key, build)
    second = load_or_encode(tmp_path / "cache", encoding_key(data, tokenizer, TASK, **SETTINGS), build)
    assert calls == [1] and first[2] is False and second[2] is True
    assert as_plain(second[0]) == as_plain(windows) and second[1] == {"unplaced": 2}


def test_changed_file_never_reuses_the_stale_entry(tmp_path, data, tokenizer):
    key = encoding_key(data, tokenizer, TASK, **SETTINGS)
    load_or_encode(tmp_path / "cache", key, counting(encode(data, tokenizer))[0])
    original = data.read_bytes()
    data.write_bytes(original.replace("张伟".encode(), "张玮".encode()))  # same size, one character changed
    changed = encoding_key(data, tokenizer, TASK, **SETTINGS)
    assert changed != key
    fresh = encode(data, tokenizer)
    stale, _ = read_windows(tmp_path / "cache" / f"{key}.safetensors")
    assert as_plain(fresh) != as_plain(stale)  # reusing the old entry would give wrong ids
    build, calls = counting(fresh)
    windows, _, hit = load_or_encode(tmp_path / "cache", changed, build)
    assert calls == [1] and not hit and as_plain(windows) == as_plain(fresh)
    data.write_bytes(original)  # the content decides, not the file's name or time
    assert encoding_key(data, tokenizer, TASK, **SETTINGS) == key


def test_settings_schema_and_tokenizer_are_part_of_the_key(tmp_path, data, tokenizer):
    key = encoding_key(data, tokenizer, TASK, **SETTINGS)
    for change in ({"max_length": 32}, {"stride": 2}, {"char_level": True}, {"fmt": "cluener"},
                   {"skip_invalid": True}):
        assert encoding_key(data, tokenizer, TASK, **{**SETTINGS, **change}) != key, change
    other_task = NerTask(Schema(task="ner", entity_types=["loc", "org", "person", "time"]))
    assert encoding_key(data, tokenizer, other_task, **SETTINGS) != key
    other_tokenizer = scratch_tokenizer([t for t, _ in NER_SENTENCES] + ["新字"])  # one more character each
    assert tokenizer_digest(other_tokenizer) != tokenizer_digest(tokenizer)
    assert encoding_key(data, other_tokenizer, TASK, **SETTINGS) != key


def test_tokenizer_digest_survives_save_and_load_and_calls(tmp_path, tokenizer):
    digest = tokenizer_digest(tokenizer)
    tokenizer.save_pretrained(str(tmp_path / "tok"))
    tokenizer(["张伟在北京"], truncation=True, max_length=3, padding="max_length")  # per-call state
    assert tokenizer_digest(load_tokenizer(str(tmp_path / "tok"), "bert")) == digest
    assert tokenizer_digest(tokenizer) == digest


def test_unreadable_entry_is_a_miss_and_is_rewritten(tmp_path, data, tokenizer):
    key = encoding_key(data, tokenizer, TASK, **SETTINGS)
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / f"{key}.safetensors").write_bytes(b"not a safetensors file")
    build, calls = counting(encode(data, tokenizer))
    assert load_or_encode(tmp_path / "cache", key, build)[2] is False
    assert load_or_encode(tmp_path / "cache", key, build)[2] is True and calls == [1]


def test_directory_keeps_the_newest_entries(tmp_path, data, tokenizer, monkeypatch):
    monkeypatch.setattr(cache, "KEEP", 2)
    windows = encode(data, tokenizer)
    for k in range(4):
        load_or_encode(tmp_path / "cache", f"key{k}", counting(windows)[0])
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["key2.safetensors", "key3.safetensors"]


def test_cache_dir_default_env_and_off(tmp_path, monkeypatch):
    monkeypatch.delenv(cache.ENV, raising=False)
    assert cache.cache_dir(tmp_path / "run") == tmp_path / "run" / "cache"
    monkeypatch.setenv(cache.ENV, str(tmp_path / "shared"))
    assert cache.cache_dir(tmp_path / "run") == tmp_path / "shared"
    monkeypatch.setenv(cache.ENV, "off")
    assert cache.cache_dir(tmp_path / "run") is None


def test_training_reuses_the_cache_until_the_file_changes(tmp_path, data, monkeypatch):
    monkeypatch.delenv(cache.ENV, raising=False)
    out = tmp_path / "run"
    cfg = load_config(None, tiny_overrides(data, None, out, "train.max_steps=1"))

    def run() -> str:
        console = Console(record=True, width=200)
        report = train(cfg, overwrite=True, console=console)
        assert report.windows > len(NER_SENTENCES)
        return console.export_text()

    assert "encoding cache" not in run()
    assert len(list((out / "cache").glob("*.safetensors"))) == 1
    assert "read from the encoding cache" in run()
    rows = [json.loads(line) for line in data.read_text(encoding="utf-8").splitlines()]
    write_jsonl(data, rows[1:])  # one example fewer
    assert "encoding cache" not in run()
    assert len(list((out / "cache").glob("*.safetensors"))) == 2
