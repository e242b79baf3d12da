"""The Arrow training data: corpus and windows equal the in-memory path; the cache hits, misses and prunes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from rich.console import Console

from gplinker.commands.train import train
from gplinker.commands.training_data import TrainingData
from gplinker.config import load_config
from gplinker.data import cache, mapping
from gplinker.data.batching import collate
from gplinker.data.corpus import parse_source
from gplinker.data.encoding import WindowEncoder
from gplinker.data.reading import read_examples
from gplinker.data.schema import Schema
from gplinker.errors import DataError
from gplinker.modeling.encoders import load_tokenizer, scratch_tokenizer
from gplinker.tasks.ner import NerTask
from gplinker.tasks.oracle import unplaced_count
from tests.conftest import NER_SENTENCES, spans_record, tiny_overrides, write_jsonl

TASK = NerTask(Schema(task="ner", entity_types=["loc", "org", "person"]))
CHANNELS = {h.name: h.channels for h in TASK.heads()}


@pytest.fixture
def data(tmp_path) -> Path:
    rows = [spans_record(t, e) for t, e in NER_SENTENCES]
    rows.append(spans_record("".join(t for t, _ in NER_SENTENCES), []))  # long: several 16-token windows
    rows.append({"text": "张伟", "entities": [{"start": 0, "end": 3, "type": "person"}]})  # offsets past the text
    return write_jsonl(tmp_path / "train.jsonl", rows)


@pytest.fixture(scope="module")
def tokenizer():
    return scratch_tokenizer(t for t, _ in NER_SENTENCES)


def prepared(tmp_path: Path, data: Path, tokenizer, *, num_proc: int = 1, max_length: int = 16, stride: int = 4,
             task=TASK, fmt: str = "spans"):
    """(corpus, window table, corpus hit, windows hit) as `gplinker train` prepares them."""
    stages = TrainingData(tmp_path / "run", num_proc, None)
    corpus, key, corpus_hit = stages.corpus(str(data), fmt, skip_invalid=True)
    windows, windows_hit = stages.windows(corpus, key, tokenizer, task, max_length=max_length, stride=stride,
                                          char_level=False)
    return corpus, windows, corpus_hit, windows_hit


def in_memory(data: Path, tokenizer, max_length: int = 16, stride: int = 4):
    """The windows with targets the in-memory path builds from the same file."""
    examples, report = read_examples(data, "spans", "ner", skip_invalid=True)
    windows = WindowEncoder(tokenizer, max_length, stride).encode([e.text for e in examples])
    for w in windows:
        w.targets = TASK.targets(examples[w.example_index], w)
    return examples, report, windows


def assert_same_batches(table, windows, pad_id: int) -> None:
    assert len(table) == len(windows)
    for indices in ([0], list(range(len(windows))), [len(windows) - 1, 0, 2]):
        got = table.batch(indices, pad_id, CHANNELS)
        want = collate([windows[k] for k in indices], pad_id, CHANNELS)
        assert torch.equal(got["input_ids"], want["input_ids"])
        assert torch.equal(got["attention_mask"], want["attention_mask"])
        assert torch.equal(got["labels"]["entities"], want["labels"]["entities"]), indices


def test_arrow_windows_batch_exactly_like_the_in_memory_windows(tmp_path, data, tokenizer):
    corpus, table, _, _ = prepared(tmp_path, data, tokenizer)
    examples, report, windows = in_memory(data, tokenizer)
    assert (corpus.report.lines, corpus.report.examples) == (report.lines, report.examples) == (10, 9)
    assert [str(e) for e in corpus.report.skipped] == [str(e) for e in report.skipped]
    assert len({w.example_index for w in windows}) < len(windows)  # the long text has several windows
    assert_same_batches(table, windows, tokenizer.pad_token_id)
    assert table.lengths.tolist() == [len(w) for w in windows]
    assert table.unplaced() == unplaced_count(TASK, examples, windows)
    assert [(e.text, e.spans, e.line) for e in corpus.examples()] == [(e.text, e.spans, e.line) for e in examples]


def test_worker_processes_give_the_same_windows(tmp_path, tokenizer, monkeypatch):
    monkeypatch.setattr(mapping, "MAP_BATCH", 1_000)  # a worker per 1,000 rows at least
    rows = [spans_record(t, e) for t, e in NER_SENTENCES] * 300  # 2,400 lines: enough rows for two workers
    data = write_jsonl(tmp_path / "big.jsonl", rows)
    _, one, _, _ = prepared(tmp_path / "a", data, tokenizer, num_proc=1)
    _, two, _, _ = prepared(tmp_path / "b", data, tokenizer, num_proc=2)
    assert len(two.files) > len(one.files)  # the map really ran in two processes
    assert one.dataset.to_dict() == two.dataset.to_dict()


def test_first_bad_line_raises_as_the_reader_does_and_skips_are_counted(tmp_path, data, tokenizer):
    stages = TrainingData(tmp_path / "run", 1, None)
    with pytest.raises(DataError) as parsed:
        stages.corpus(str(data), "spans", skip_invalid=False)
    with pytest.raises(DataError) as read:
        read_examples(data, "spans", "ner")
    assert str(parsed.value) == str(read.value) and ":10: " in str(parsed.value)
    # skip_invalid is applied to a cached corpus again: a rerun that skips reuses the entry and counts the line
    corpus, _, hit = stages.corpus(str(data), "spans", skip_invalid=True)
    assert not hit and [e.line for e in corpus.report.skipped] == [10]
    again, _, hit = stages.corpus(str(data), "spans", skip_invalid=True)
    assert hit and [e.line for e in again.report.skipped] == [10]
    with pytest.raises(DataError, match=":10: "):
        stages.corpus(str(data), "spans", skip_invalid=False)


def test_duplicate_ids_are_bad_lines_in_line_order(tmp_path, tokenizer):
    rows = [{**spans_record(t, e), "id": k % 3} for k, (t, e) in enumerate(NER_SENTENCES)]
    data = write_jsonl(tmp_path / "ids.jsonl", rows)
    stages = TrainingData(tmp_path / "run", 1, None)
    with pytest.raises(DataError, match=r":4: duplicate id '0' \(first on line 1\)"):
        stages.corpus(str(data), "spans", skip_invalid=False)
    corpus, _, _ = stages.corpus(str(data), "spans", skip_invalid=True)
    _, report = read_examples(data, "spans", "ner", skip_invalid=True)
    assert [str(e) for e in corpus.report.skipped] == [str(e) for e in report.skipped]
    assert sorted(corpus.skipped_lines) == [4, 5, 6, 7, 8]


def test_rerun_hits_both_stages_and_does_not_parse_again(tmp_path, data, tokenizer, monkeypatch):
    _, first, corpus_hit, windows_hit = prepared(tmp_path, data, tokenizer)
    assert not corpus_hit and not windows_hit
    import gplinker.commands.training_data as stages

    def fail(*args, **kwargs):
        raise AssertionError("a cache hit must not encode again")

    monkeypatch.setattr(stages, "parse_source", fail)
    monkeypatch.setattr(stages, "encode_windows", fail)
    _, second, corpus_hit, windows_hit = prepared(tmp_path, data, tokenizer)
    assert corpus_hit and windows_hit
    assert second.dataset.to_dict() == first.dataset.to_dict()


def test_changed_file_never_reuses_the_stale_entry(tmp_path, data, tokenizer):
    _, before, _, _ = prepared(tmp_path, data, tokenizer)
    original = data.read_bytes()
    data.write_bytes(original.replace("张伟".encode(), "张玮".encode()))  # same size, one character changed
    _, after, corpus_hit, windows_hit = prepared(tmp_path, data, tokenizer)
    assert not corpus_hit and not windows_hit
    assert after.dataset["input_ids"] != before.dataset["input_ids"]
    data.write_bytes(original)  # the content decides, not the file's name or time
    assert prepared(tmp_path, data, tokenizer)[2]


def test_settings_schema_format_and_tokenizer_are_part_of_the_keys(tokenizer):
    corpus = cache.corpus_key("fp", "spans")
    assert cache.corpus_key("fp2", "spans") != corpus and cache.corpus_key("fp", "cluener") != corpus
    settings = {"max_length": 16, "stride": 4, "char_level": False}
    key = cache.windows_key(corpus, tokenizer, TASK, **settings)
    for change in ({"max_length": 32}, {"stride": 2}, {"char_level": True}):
        assert cache.windows_key(corpus, tokenizer, TASK, **{**settings, **change}) != key, change
    assert cache.windows_key(cache.corpus_key("fp2", "spans"), tokenizer, TASK, **settings) != key
    other_task = NerTask(Schema(task="ner", entity_types=["loc", "org", "person", "time"]))
    assert cache.windows_key(corpus, tokenizer, other_task, **settings) != key
    other_tokenizer = scratch_tokenizer([t for t, _ in NER_SENTENCES] + ["新字"])
    assert cache.tokenizer_digest(other_tokenizer) != cache.tokenizer_digest(tokenizer)
    assert cache.windows_key(corpus, other_tokenizer, TASK, **settings) != key


def test_tokenizer_digest_survives_save_and_load_and_calls(tmp_path, tokenizer):
    digest = cache.tokenizer_digest(tokenizer)
    tokenizer.save_pretrained(str(tmp_path / "tok"))
    tokenizer(["张伟在北京"], truncation=True, max_length=3, padding="max_length")  # per-call state
    assert cache.tokenizer_digest(load_tokenizer(str(tmp_path / "tok"), "bert")) == digest
    assert cache.tokenizer_digest(tokenizer) == digest


def test_incomplete_entry_is_a_miss_and_is_rebuilt(tmp_path, data, tokenizer):
    prepared(tmp_path, data, tokenizer)
    root = tmp_path / "run" / "cache"
    (windows_dir,) = root.glob("windows-*")
    (windows_dir / "meta.json").unlink()  # a crash before the entry was complete
    assert not prepared(tmp_path, data, tokenizer)[3]
    assert (windows_dir / "meta.json").is_file()


def test_directory_keeps_the_newest_entries_and_no_pickle(tmp_path, data, tokenizer, monkeypatch):
    monkeypatch.setattr(cache, "KEEP", 2)
    for length in (16, 20, 24, 28):
        prepared(tmp_path, data, tokenizer, max_length=length)
    root = tmp_path / "run" / "cache"
    kept = sorted(p for p in root.glob("windows-*"))
    assert len(kept) == 2
    assert {json.loads((p / "meta.json").read_text())["max_length"] for p in kept} == {24, 28}
    files = [p for p in root.rglob("*") if p.is_file()]
    assert files and all(p.suffix in (".arrow", ".json") for p in files)


def test_cache_dir_default_env_and_off(tmp_path, monkeypatch, data, tokenizer):
    monkeypatch.delenv(cache.ENV, raising=False)
    assert cache.cache_dir(tmp_path / "run") == tmp_path / "run" / "cache"
    monkeypatch.setenv(cache.ENV, str(tmp_path / "shared"))
    assert cache.cache_dir(tmp_path / "run") == tmp_path / "shared"
    monkeypatch.setenv(cache.ENV, "off")
    assert cache.cache_dir(tmp_path / "run") is None
    _, table, _, _ = prepared(tmp_path, data, tokenizer)
    _, again, _, hit = prepared(tmp_path, data, tokenizer)
    assert not hit and not (tmp_path / "run" / "cache").exists()
    assert len(table) == len(again)
    assert all(p.name.startswith(".encoded-") for p in (tmp_path / "run").iterdir())


def test_parse_map_reads_a_bom_crlf_and_blank_lines_like_the_reader(tmp_path):
    path = tmp_path / "odd.jsonl"
    lines = [json.dumps(spans_record(*NER_SENTENCES[0]), ensure_ascii=False), "", "  \t",
             json.dumps(spans_record(*NER_SENTENCES[1]), ensure_ascii=False), "{not json", "[1]"]
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode("utf-8") + b"\r\n\xff\xfe\n")
    corpus = parse_source(str(path), "spans", directory=tmp_path, num_proc=1, skip_invalid=True)
    examples, report = read_examples(path, "spans", "ner", skip_invalid=True)
    assert [e.line for e in corpus.examples()] == [e.line for e in examples] == [1, 4]
    assert [str(e) for e in corpus.report.skipped] == [str(e) for e in report.skipped]
    assert [e.line for e in report.skipped] == [5, 6, 7]


def test_training_reuses_the_cache_until_the_file_changes(tmp_path, data, monkeypatch):
    monkeypatch.delenv(cache.ENV, raising=False)
    out = tmp_path / "run"
    cfg = load_config(None, tiny_overrides(data, None, out, "train.max_steps=1", "data.skip_invalid=true"))

    def run() -> str:
        console = Console(record=True, width=200)
        report = train(cfg, overwrite=True, console=console)
        assert report.windows > len(NER_SENTENCES)
        return console.export_text()

    assert "encoding cache" not in run()
    assert len(list((out / "cache").glob("windows-*"))) == 1
    assert "read from the encoding cache" in run()
    rows = [json.loads(line) for line in data.read_text(encoding="utf-8").splitlines()]
    write_jsonl(data, rows[1:])  # one example fewer
    assert "encoding cache" not in run()
    assert len(list((out / "cache").glob("windows-*"))) == 2


def test_auto_max_length_of_training_equals_the_rule_check_uses(tmp_path, tokenizer):
    from gplinker.data.encoding import auto_max_length, token_counts

    rows = [spans_record(t, []) for t in ("张伟", "李娜去了", "王芳")]  # texts far shorter than 8 tokens
    data = write_jsonl(tmp_path / "short.jsonl", rows)
    stages = TrainingData(tmp_path / "run", 1, None)
    corpus, key, _ = stages.corpus(str(data), "spans", skip_invalid=False)
    got, _ = stages.max_length(corpus, key, tokenizer, False, 512)
    counts = token_counts(tokenizer, [r["text"] for r in rows])
    assert got == auto_max_length(counts, 2, 512) == 8
    cached, _ = stages.max_length(corpus, key, tokenizer, False, 512)  # from lengths-<key>.json
    assert cached == got
