"""Predict's memory follows its work, and a pipe gets a line out per line in (issue 19).

Chunks of input are bounded by characters as well as lines, so 1,000 long lines are not held at
once; from stdin a partial chunk is predicted after a short wait without input."""

from __future__ import annotations

import json
import select
import subprocess
import sys
import threading
import time

import pytest

from gplinker.commands.predict import predict_lines
from gplinker.predict import Predictor, chunks


def test_chunks_close_at_the_size_or_the_budget_and_a_heavy_item_goes_alone():
    items = ["a" * n for n in (3, 3, 3, 10, 1, 1, 1, 1, 1)]
    got = list(chunks(items, 4, weight=len, budget=7))
    assert [[len(x) for x in c] for c in got] == [[3, 3], [3], [10], [1, 1, 1, 1], [1]]
    assert sum(got, []) == items
    assert [len(c) for c in chunks(range(10), 4)] == [4, 4, 2]  # no budget: by count alone


def test_a_ramp_starts_with_small_chunks_and_doubles_to_the_full_ones():
    assert [len(c) for c in chunks(range(100), 32, ramp=8)] == [4, 8, 16, 32, 32, 8]
    items = ["a" * 10] * 40  # the budget ramps too: 80 / 8 = 10 characters, then 20, 40, 80
    got = [sum(map(len, c)) for c in chunks(items, 1000, weight=len, budget=80, ramp=8)]
    assert got == [10, 20, 40, 80, 80, 80, 80, 10] and sum(got) == 400
    assert [len(c) for c in chunks(range(10), 4, ramp=1)] == [4, 4, 2]  # no ramp: full chunks from the start
    small = list(chunks(range(40), 32, weight=lambda _: 1, budget=10, ramp=16))  # budget / ramp < 1: one item first
    assert max(map(len, small)) <= 10 and len(small[0]) == 1 and sum(small, []) == list(range(40))


def test_idle_chunks_yield_a_partial_chunk_while_the_producer_waits():
    first_seen = threading.Event()
    waited_out = []

    def slow():
        yield 1
        yield 2
        waited_out.append(not first_seen.wait(timeout=60))  # True only if the consumer never saw [1, 2]
        yield 3

    got = []
    for chunk in chunks(slow(), 100, idle=0.05):
        got.append(chunk)
        first_seen.set()
    assert got == [[1, 2], [3]]
    assert waited_out == [False]


def test_idle_chunks_raise_the_producers_error():
    def broken():
        yield 1
        raise ValueError("bad source")

    with pytest.raises(ValueError, match="bad source"):
        list(chunks(broken(), 100, idle=0.05))


def test_predict_lines_bounds_each_chunk_by_characters(tiny_model_dir, monkeypatch):
    import gplinker.commands.predict as predict_command

    monkeypatch.setattr(predict_command, "FIRST_CHUNK", 1)  # full chunks from the first (the ramp: below)
    predictor = Predictor.from_pretrained(tiny_model_dir, device="cpu")
    seen = []
    real = predictor.predict

    def recording(examples, progress=None):
        seen.append([len(e.text) for e in examples])
        return real(examples, progress)

    predictor.predict = recording
    lines = [json.dumps({"text": "张伟在北京大学读书。" * n}, ensure_ascii=False) for n in (10, 10, 10, 50, 1)]
    out = []
    summary = predict_lines(predictor, lines, out.append, chunk_size=1024, chunk_chars=250)
    assert summary.lines == 5 and len(out) == 5
    assert seen == [[100, 100], [100], [500], [10]]
    assert [json.loads(x)["text"] for x in out] == [json.loads(x)["text"] for x in lines]


def test_predict_lines_starts_with_a_small_chunk_so_the_first_lines_come_out_soon(tiny_model_dir):
    predictor = Predictor.from_pretrained(tiny_model_dir, device="cpu")
    seen = []
    real = predictor.predict

    def recording(examples, progress=None):
        seen.append(len(examples))
        return real(examples, progress)

    predictor.predict = recording
    lines = [json.dumps({"text": f"张伟在北京{k}"}, ensure_ascii=False) for k in range(100)]
    out = []
    predict_lines(predictor, lines, out.append, chunk_size=64)
    assert seen == [4, 8, 16, 32, 40]  # 64 / FIRST_CHUNK (16), doubling up to 64
    assert [json.loads(x)["text"] for x in out] == [json.loads(x)["text"] for x in lines]


def test_predict_from_a_pipe_answers_each_line_before_the_next_arrives(tiny_model_dir):
    proc = subprocess.Popen([sys.executable, "-m", "gplinker", "predict", str(tiny_model_dir), "-"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        for text in ("张伟在北京", "李娜去了上海", "王芳在南京"):
            proc.stdin.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
            proc.stdin.flush()
            ready, _, _ = select.select([proc.stdout], [], [], 120)
            assert ready, f"no output for {text!r} while stdin stays open"
            assert json.loads(proc.stdout.readline())["text"] == text
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_read_ahead_thread_holds_a_bounded_number_of_lines():
    from gplinker.predict import READ_AHEAD, _read_ahead

    produced = [0]

    def source():
        for k in range(100):
            produced[0] += 1
            yield k

    ahead = []
    for consumed, _ in enumerate(_read_ahead(source(), idle=30), start=1):  # no pause of 30 s: no _IDLE
        time.sleep(0.002)  # a slow consumer: the reader runs as far ahead as it may
        ahead.append(produced[0] - consumed)
    assert len(ahead) == 100
    assert max(ahead) <= READ_AHEAD + 2  # the queue, one item in the reader's hand, one blocked in put
