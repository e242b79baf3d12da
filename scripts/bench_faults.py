"""Fault injection (issue 19): corrupted and truncated files, locks, signals, a full disk, hostile configs and
inputs, each run through the `gplinker` CLI in a subprocess, plus a streaming benchmark for predict.

1. The matrix: one row per case, its outcome classified from the exit status and the output:
   - clean error: exit 2 and the expected message, no traceback;
   - recovered: exit 0 (or 128 + signal after a saved checkpoint) and the expected recovery message;
   - no data lost: the files the case protects are byte-identical afterwards;
   - SILENT (exit 0, nothing said) or TRACEBACK: failures.
   Goal: every row a clean error or a recovery; none silent, none a traceback.
   Model: a scratch NER model trained here for a few steps on synthetic sentences.
2. Streaming (`--stream`, instead of the matrix): `gplinker predict -` fed 1,100 lines of 20k
   characters, then 300k short lines, then one line of 5 MB: peak RSS of the predict process (VmHWM,
   polled), seconds to the first output line; and 13 lines sent one a second through a pipe: the worst delay from a
   line in to its line out after the first (which waits for the process to start). Goals: peak
   RSS <= 1.5 GB for each, first line within 5 s, per-line delay <= 1 s. Model: the same scratch
   NER model with 128-token windows; `--runtime onnx` predicts with it exported to ONNX, which starts
   without importing transformers' modeling code (about half of the start-up before the first line).

    python scripts/bench_faults.py             # the matrix (a few minutes on 2 cores)
    python scripts/bench_faults.py --stream    # the streaming benchmark (minutes)
    python scripts/bench_faults.py --stream --runtime onnx
    python scripts/bench_faults.py --smoke     # three cases, seconds
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from bench_machine import machine  # scripts/ is on sys.path when a script runs

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
ENV.pop("GPLINKER_CACHE_DIR", None)
NAMES = "张王李赵刘陈杨黄周吴"
PLACES = ["北京", "上海", "广州", "深圳", "杭州", "南京"]
TINY = ["model.scratch.hidden_size=32", "model.scratch.num_layers=1", "model.scratch.num_heads=2",
        "model.scratch.intermediate_size=64", "model.scratch.max_position=64", "model.head_size=16",
        "data.max_length=32", "data.stride=8", "train.batch_size=4", "train.lr=3e-3", "train.log_every=1",
        "train.warmup_ratio=0.0", "train.device=cpu"]


def sentence(rng: random.Random) -> dict:
    person = rng.choice(NAMES) + rng.choice("伟芳娜敏静")
    place = rng.choice(PLACES)
    text = f"{person}去了{place}。"
    return {"text": text, "entities": [{"start": 0, "end": len(person), "type": "person", "text": person},
                                       {"start": len(person) + 2, "end": len(person) + 4, "type": "location",
                                        "text": place}]}


def gplinker(*args: str, env: dict | None = None, stdin=None, limit_bytes: int = 0,
             timeout: float = 600) -> subprocess.CompletedProcess:
    """Run `gplinker ARGS` (optionally under a file-size limit) and return the finished process."""
    if limit_bytes:
        code = (f"import resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, ({limit_bytes}, {limit_bytes})); "
                "from gplinker.cli import app; sys.argv[0] = 'gplinker'; app()")
        command = [sys.executable, "-c", code, *args]
    else:
        command = [sys.executable, "-m", "gplinker", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env or ENV, stdin=stdin, timeout=timeout)


def flat(text: str) -> str:
    return "".join(text.split())


def outcome(proc: subprocess.CompletedProcess, expect: str, ok_code: int = 2, recovered: bool = False) -> str:
    """Classify a finished command: clean error / recovered / SILENT / TRACEBACK / WRONG (another message)."""
    output = proc.stdout + proc.stderr
    if "Traceback" in output:
        return f"TRACEBACK ({output.strip().splitlines()[-1][:80]})"
    if proc.returncode != ok_code:
        return f"WRONG: exit {proc.returncode} ({output.strip().splitlines()[-1][:80] if output.strip() else ''})"
    if flat(expect) not in flat(output):
        return "SILENT" if proc.returncode == 0 else f"WRONG: {output.strip().splitlines()[-1][:80]}"
    return f"recovered: {expect}" if recovered else f"clean error: {expect}"


class Lab:
    """A work dir with a trained run (best/, last/, checkpoint-2/, checkpoint-4/) to copy for each case."""

    def __init__(self, work: Path, *extra: str, sentences: int = 24, steps: int = 4):
        self.work = work
        rng = random.Random(0)
        self.train = work / "train.jsonl"
        self.train.write_text("".join(json.dumps(sentence(rng), ensure_ascii=False) + "\n" for _ in range(sentences)),
                              encoding="utf-8")
        self.config = work / "c.yaml"
        self.config.write_text("task: ner\n", encoding="utf-8")
        self.input = work / "in.jsonl"
        self.input.write_text("".join(json.dumps({"text": sentence(rng)["text"]}, ensure_ascii=False) + "\n"
                                      for _ in range(40)), encoding="utf-8")
        self.run = work / "run"
        proc = gplinker(*self.train_args(self.run, f"train.max_steps={steps}", f"train.eval_every={steps // 2}",
                                         *extra))
        assert proc.returncode == 0, proc.stderr[-2000:]

    def train_args(self, out: Path, *extra: str) -> list[str]:
        sets = [*TINY, f"data.train={self.train}", f"data.dev={self.train}", f"train.output_dir={out}", *extra]
        return ["train", str(self.config), *[a for s in sets for a in ("--set", s)]]

    def copy(self, name: str) -> Path:
        target = self.work / name
        shutil.rmtree(target, ignore_errors=True)
        return Path(shutil.copytree(self.run, target))


def flip(path: Path, offset: int = -100) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def case_flipped_weights(lab: Lab) -> str:
    run = lab.copy("flip")
    flip(run / "best" / "model.safetensors")
    return outcome(gplinker("predict", str(run / "best"), str(lab.input)), "model.safetensors: corrupt or incomplete")


def case_flipped_state_resume(lab: Lab) -> str:
    run = lab.copy("flip-state")
    flip(run / "checkpoint-4" / "trainer_state.pt", 200)
    proc = gplinker(*lab.train_args(run, "train.max_steps=4", "train.eval_every=2"), "--resume")
    return outcome(proc, f"resumed from {run / 'checkpoint-2'}", ok_code=0, recovered=True)


def case_deleted_tokenizer(lab: Lab) -> str:
    run = lab.copy("tok")
    (run / "best" / "tokenizer.json").unlink()
    return outcome(gplinker("eval", str(run / "best"), str(lab.train)), "tokenizer.json: corrupt or incomplete")


def case_deleted_tokenizer_no_manifest(lab: Lab) -> str:
    run = lab.copy("tok-old")
    (run / "best" / "tokenizer.json").unlink()
    (run / "best" / "manifest.json").unlink()
    return outcome(gplinker("predict", str(run / "best"), str(lab.input)), "when the model was saved")


def case_truncated_weights_no_manifest(lab: Lab) -> str:
    run = lab.copy("trunc")
    weights = run / "best" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    (run / "best" / "manifest.json").unlink()
    return outcome(gplinker("predict", str(run / "best"), str(lab.input)), "corrupt or incomplete (cannot read it")


def case_empty_state_no_manifest(lab: Lab) -> str:
    run = lab.copy("empty-state")
    for name in ("checkpoint-2", "checkpoint-4"):
        (run / name / "manifest.json").unlink()
        (run / name / "trainer_state.pt").write_bytes(b"")
    proc = gplinker(*lab.train_args(run, "train.max_steps=4", "train.eval_every=2"), "--resume")
    return outcome(proc, "--resume: no checkpoint in")


def case_huge_header(lab: Lab) -> str:
    run = lab.copy("header")
    (run / "best" / "model.safetensors").write_bytes(struct.pack("<Q", 2**62) + b"{}")
    (run / "best" / "manifest.json").unlink()
    return outcome(gplinker("predict", str(run / "best"), str(lab.input)), "header too large")


def case_two_trains(lab: Lab) -> str:
    out = lab.work / "race"
    shutil.rmtree(out, ignore_errors=True)
    args = lab.train_args(out, "train.max_steps=30", "train.eval_every=1000")
    first = subprocess.Popen([sys.executable, "-m", "gplinker", *args], env=ENV, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    while not (out / ".gplinker.lock").exists() and first.poll() is None:
        time.sleep(0.01)
    second = gplinker(*args)
    first.wait()
    return outcome(second, "is already running (process")


def case_predict_into_its_input(lab: Lab) -> str:
    before = lab.input.read_bytes()
    result = outcome(gplinker("predict", str(lab.run / "best"), str(lab.input), "-o", str(lab.input)),
                     "is the input file")
    return result if lab.input.read_bytes() == before else "DATA LOST: the input changed"


def case_two_predicts(lab: Lab) -> str:
    out = lab.work / "two.jsonl"
    big = lab.work / "big.jsonl"
    big.write_text(lab.input.read_text(encoding="utf-8") * 200, encoding="utf-8")
    first = subprocess.Popen([sys.executable, "-m", "gplinker", "predict", str(lab.run / "best"), str(big), "-o",
                              str(out)], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not (lab.work / ".two.jsonl.lock").exists() and first.poll() is None:
        time.sleep(0.01)
    second = gplinker("predict", str(lab.run / "best"), str(lab.input), "-o", str(out))
    first.wait()
    lines = len(out.read_text(encoding="utf-8").splitlines()) if out.exists() else 0
    result = outcome(second, "is already running (process")
    return result if lines == 8000 else f"DATA LOST: {lines} lines in the first predict's output"


def case_sigterm(lab: Lab) -> str:
    out = lab.work / "sigterm"
    shutil.rmtree(out, ignore_errors=True)
    proc = subprocess.Popen([sys.executable, "-m", "gplinker", *lab.train_args(out, "train.max_steps=200",
                                                                               "train.eval_every=1000")],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = out / "train_log.jsonl"
    while not (log.is_file() and len(log.read_text().splitlines()) >= 3) and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate()
    done = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    return outcome(done, "stopped by SIGTERM at step", ok_code=128 + signal.SIGTERM, recovered=True)


def case_killed_swap(lab: Lab) -> str:
    run = lab.copy("swap")
    os.replace(run / "best", run / ".best.old-999999")  # SIGKILL between atomic_dir's two renames
    first = outcome(gplinker("predict", str(run / "best"), str(lab.input)), "loading the previous copy",
                    ok_code=0, recovered=True)
    proc = gplinker(*lab.train_args(run, "train.max_steps=4", "train.eval_every=2"), "--resume")
    second = outcome(proc, "put back the previous copy", ok_code=0, recovered=True)
    return first if first.startswith("recovered") and second.startswith("recovered") else f"{first}; {second}"


def case_resume_log(lab: Lab) -> str:
    run = lab.copy("log")
    shutil.rmtree(run / "checkpoint-4")
    proc = gplinker(*lab.train_args(run, "train.max_steps=4", "train.eval_every=2"), "--resume")
    steps = [json.loads(x)["step"] for x in (run / "train_log.jsonl").read_text().splitlines()
             if json.loads(x)["event"] == "train"]
    if proc.returncode != 0:
        return outcome(proc, "", ok_code=0)
    return "no data lost: each step logged once" if steps == [1, 2, 3, 4] else f"DUPLICATED: steps {steps}"


def case_disk_full_train(lab: Lab) -> str:
    out = lab.work / "full"
    shutil.rmtree(out, ignore_errors=True)
    proc = gplinker(*lab.train_args(out, "train.max_steps=2"), limit_bytes=30_000)
    return outcome(proc, "could not write it: the disk is full or a file size limit was reached")


def case_disk_full_predict(lab: Lab) -> str:
    out = lab.work / "full.jsonl"
    big = lab.work / "big2.jsonl"
    big.write_text(lab.input.read_text(encoding="utf-8") * 20, encoding="utf-8")
    result = outcome(gplinker("predict", str(lab.run / "best"), str(big), "-o", str(out), limit_bytes=3_000),
                     "line(s) had been predicted")
    return result if not out.exists() else "PARTIAL output left at the target"


def case_cache_unwritable(lab: Lab) -> str:
    blocker = lab.work / "not-a-dir"
    blocker.write_text("", encoding="utf-8")
    out = lab.work / "nocache"
    shutil.rmtree(out, ignore_errors=True)
    proc = gplinker(*lab.train_args(out, "train.max_steps=2"), env={**ENV, "GPLINKER_CACHE_DIR": str(blocker / "c")})
    return outcome(proc, "running without the encoding cache", ok_code=0, recovered=True)


def case_anchor_bomb(lab: Lab) -> str:
    levels = ['    a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    levels += [f"    a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    config = lab.work / "bomb.yaml"
    config.write_text("task: ner\ntrain:\n  lr:\n" + "\n".join(levels) + "\n", encoding="utf-8")
    return outcome(gplinker("train", str(config)), "config key 'train.lr' must be float")


def case_deep_yaml(lab: Lab) -> str:
    config = lab.work / "deep.yaml"
    config.write_text("task: " + "[" * 20000 + "]" * 20000 + "\n", encoding="utf-8")
    return outcome(gplinker("train", str(config)), "nested too deeply")


def case_eval_fifo(lab: Lab) -> str:
    fifo = lab.work / "dev.fifo"
    if not fifo.exists():
        os.mkfifo(fifo)
    return outcome(gplinker("eval", str(lab.run / "best"), str(fifo), timeout=120), "is not a regular file")


def case_dev_zero(lab: Lab) -> str:
    with open("/dev/zero", "rb") as zero:
        proc = gplinker("predict", str(lab.run / "best"), "-", stdin=zero)
    return outcome(proc, "<stdin>:1: line longer than")


def case_deep_json(lab: Lab) -> str:
    data = lab.work / "deep.jsonl"
    data.write_text("[" * 100000 + "]" * 100000 + "\n", encoding="utf-8")
    proc = gplinker("predict", str(lab.run / "best"), str(data))
    return outcome(proc, "nested too deeply", ok_code=0, recovered=True).replace("recovered", "clean error (line)")


CASES: list[tuple[str, Callable[[Lab], str]]] = [
    ("flipped byte in best/model.safetensors → predict", case_flipped_weights),
    ("flipped byte in checkpoint-4/trainer_state.pt → train --resume", case_flipped_state_resume),
    ("deleted tokenizer.json → eval", case_deleted_tokenizer),
    ("deleted tokenizer.json, no manifest → predict", case_deleted_tokenizer_no_manifest),
    ("truncated model.safetensors, no manifest → predict", case_truncated_weights_no_manifest),
    ("zero-byte trainer_state.pt, no manifest → train --resume", case_empty_state_no_manifest),
    ("safetensors header claiming 2^62 bytes → predict", case_huge_header),
    ("two trains into one output_dir", case_two_trains),
    ("predict -o INPUT", case_predict_into_its_input),
    ("two predicts into one -o", case_two_predicts),
    ("SIGTERM during training", case_sigterm),
    ("SIGKILL between the two renames of best/", case_killed_swap),
    ("train --resume from checkpoint-2 of a 4-step run: train_log.jsonl", case_resume_log),
    ("disk full (RLIMIT_FSIZE 30 kB) during train", case_disk_full_train),
    ("disk full (RLIMIT_FSIZE 3 kB) during predict -o", case_disk_full_predict),
    ("cache dir cannot be created", case_cache_unwritable),
    ("YAML anchor bomb under train.lr", case_anchor_bomb),
    ("YAML nested 20k deep", case_deep_yaml),
    ("eval on a FIFO nobody writes", case_eval_fifo),
    ("predict - < /dev/zero", case_dev_zero),
    ("JSON line nested 100k deep → predict", case_deep_json),
]
SMOKE = {"predict -o INPUT", "YAML nested 20k deep", "flipped byte in best/model.safetensors → predict"}


# --- streaming ------------------------------------------------------------------------------------

def peak_and_first_line(command: list[str], input_path: Path) -> tuple[float, float, int, int]:
    """(peak RSS MB of the process, seconds to its first output line, output lines, output bytes) of a predict run."""
    start = time.perf_counter()
    with open(input_path, "rb") as stdin:
        proc = subprocess.Popen(command, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=ENV)
    first: list[float] = []
    lines = [0, 0]

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if not first:
                first.append(time.perf_counter() - start)
            lines[0] += 1
            lines[1] += len(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    peak = 0.0
    while proc.poll() is None:
        try:
            for line in open(f"/proc/{proc.pid}/status"):
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) / 1024)
        except OSError:
            pass
        time.sleep(0.05)
    reader.join()
    return peak, first[0] if first else float("nan"), lines[0], lines[1]


PEAK_SCRIPT = """
import json, sys
import gplinker.predict as P
from gplinker.data.examples import Example
if len(sys.argv) > 3:
    P.LONG_TEXT_CHARS = int(sys.argv[3])
text = json.loads(open(sys.argv[2], encoding="utf-8").readline())["text"]
predictor = P.Predictor.from_pretrained(sys.argv[1], device="cpu")
status = lambda key: int([x for x in open("/proc/self/status") if x.startswith(key)][0].split()[1]) // 1024
loaded = status("VmRSS")
items = len(predictor.predict([Example(text=text)])[0])
print(status("VmHWM"), loaded, items)
"""


def predict_peak(model_dir: Path, input_path: Path, limit: int | None = None) -> tuple[int, int, int]:
    """(peak RSS MB, RSS MB after loading, items) of Predictor.predict on the first line of `input_path` in a fresh
    process, with predict.LONG_TEXT_CHARS = `limit` (None: gplinker's own)."""
    extra = [] if limit is None else [str(limit)]
    out = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(model_dir), str(input_path), *extra],
                         capture_output=True, text=True, env=ENV, check=True)
    peak, loaded, items = (int(x) for x in out.stdout.split())
    return peak, loaded, items


def slow_pipe_delays(model_dir: Path, n: int = 12) -> list[float]:
    """Seconds from each line written (one a second) to its output line, through `gplinker predict -`."""
    proc = subprocess.Popen([sys.executable, "-m", "gplinker", "predict", str(model_dir), "-"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=ENV, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    delays = []
    rng = random.Random(3)
    for _ in range(n):
        sent = time.perf_counter()
        proc.stdin.write(json.dumps({"text": sentence(rng)["text"]}, ensure_ascii=False) + "\n")
        proc.stdin.flush()
        proc.stdout.readline()
        delays.append(time.perf_counter() - sent)
        time.sleep(max(0.0, 1.0 - delays[-1]))
    proc.stdin.close()
    proc.wait()
    return delays


def import_floor(runtime: str, repeats: int = 3) -> float:
    """Median seconds a fresh `python -c` takes to import what predicting with `runtime` needs and nothing of
    gplinker: torch, plus transformers' BertModel for the torch runtime (the scratch encoder's class), plus
    onnxruntime for onnx. No first output line can come sooner than this on the machine."""
    code = ("import torch; from transformers import BertModel" if runtime == "torch"
            else "import torch, onnxruntime; from transformers import PreTrainedTokenizerFast")
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env=ENV)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


HUGE_LINE_BYTES = 5_000_000  # the one-line case of the streaming benchmark: a 5 MB line took 1.6 GB in issue 19


def streaming(lab: Lab, scale: float = 1.0, runtime: str = "torch") -> None:
    """The streaming tables; `scale` shrinks both inputs (peak RSS is per chunk, so it should not move).

    runtime onnx: the model is exported (`gplinker export --onnx`) and every run predicts from the
    export, whose dir has no PyTorch weights (`--runtime auto` picks onnx there, and transformers'
    modeling code is never imported).
    """
    model_dir = lab.run / "best"
    if runtime == "onnx":
        model_dir = lab.work / "onnx"
        subprocess.run([sys.executable, "-m", "gplinker", "export", str(lab.run / "best"), "--onnx", str(model_dir)],
                       check=True, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    n_long, n_short = max(1, int(1100 * scale)), max(1, int(300_000 * scale))
    rng = random.Random(2)
    filler = "".join(sentence(rng)["text"] for _ in range(3000))
    long_input = lab.work / "long.jsonl"
    with open(long_input, "w", encoding="utf-8") as fh:
        for k in range(n_long):
            start = rng.randrange(len(filler) - 20000)
            fh.write(json.dumps({"id": k, "text": filler[start:start + 20000]}, ensure_ascii=False) + "\n")
    short_input = lab.work / "short.jsonl"
    with open(short_input, "w", encoding="utf-8") as fh:
        for k in range(n_short):
            fh.write(json.dumps({"id": k, "text": sentence(rng)["text"]}, ensure_ascii=False) + "\n")
    huge_input = lab.work / "huge.jsonl"  # one line of HUGE_LINE_BYTES (UTF-8), sentences joined
    with open(huge_input, "w", encoding="utf-8") as fh:
        text = filler * (HUGE_LINE_BYTES // len(filler.encode("utf-8")) + 1)
        text = text[: len(text) * HUGE_LINE_BYTES // len(text.encode("utf-8"))]
        fh.write(json.dumps({"id": 0, "text": text}, ensure_ascii=False) + "\n")
    command = [sys.executable, "-m", "gplinker", "predict", str(model_dir), "-"]
    print(f"\nruntime: {runtime}, model dir {model_dir}; the imports alone (import_floor, median of 3 runs): "
          f"{import_floor(runtime):.2f} s")
    print("\n| input | lines out | output MB | peak RSS MB | first line s | goal |")
    print("|---|---|---|---|---|---|")
    for name, path in ((f"{n_long:,} lines of 20k characters", long_input), (f"{n_short:,} short lines", short_input),
                       (f"one line of {len(text):,} characters ({HUGE_LINE_BYTES / 1e6:g} MB)", huge_input)):
        peak, first, lines, size = peak_and_first_line(command, path)
        soon = "" if path == huge_input else f", first line <= 5 s {'met' if first <= 5 else 'NOT met'}"  # one line
        bounded = "met" if peak <= 1536 else "NOT met"
        print(f"| {name} | {lines} | {size / 1e6:.1f} | {peak:.0f} | {first:.1f} | RSS <= 1536 MB {bounded}{soon} |")
    print("\n| the 5 MB line through Predictor.predict | peak RSS MB | after loading MB | items |")
    print("|---|---|---|---|")
    for path_name, limit in (("blocks and window groups (data/long_texts.py)", None),
                             ("whole, as before (LONG_TEXT_CHARS raised past the line)", 1 << 40)):
        peak, loaded, items = predict_peak(model_dir, huge_input, limit)
        print(f"| {path_name} | {peak} | {loaded} | {items} |")
    delays = slow_pipe_delays(model_dir, 13)
    first, rest = delays[0], delays[1:]  # the first line waits for the process to start and load the model
    print("\n| slow pipe (1 line/s) | first line s (start + load) | lines after it | max delay s | median delay s "
          "| goal |")
    print("|---|---|---|---|---|---|")
    median = sorted(rest)[len(rest) // 2]
    print(f"| gplinker predict - | {first:.2f} | {len(rest)} | {max(rest):.2f} | {median:.2f} | <= 1 s "
          f"{'met' if max(rest) <= 1 else 'NOT met'} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="three cases, no streaming benchmark")
    parser.add_argument("--stream", action="store_true", help="run the streaming benchmark instead of the matrix")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="--stream: fraction of the 1,100 long and 300k short lines to feed (a loaded machine)")
    parser.add_argument("--runtime", choices=("torch", "onnx"), default="torch",
                        help="--stream: predict with PyTorch, or with the model exported to ONNX")
    args = parser.parse_args()
    print(f"# bench_faults: {machine()}")
    work = Path(tempfile.mkdtemp(prefix="bench-faults-"))
    try:
        if args.stream and not args.smoke:
            # a model that has learnt something: a 4-step one marks ~60% of a long text's characters as entities,
            # and then the one output line of a 5 MB input (1M entities, 95 MB of JSON) is what fills memory
            streaming(Lab(work, "data.max_length=128", "model.scratch.max_position=128", "train.lr=2e-3",
                          sentences=400, steps=60), args.scale, args.runtime)
            return
        lab = Lab(work)
        print("\n| case | outcome |")
        print("|---|---|")
        bad = 0
        for name, case in CASES:
            if args.smoke and name not in SMOKE:
                continue
            try:
                result = case(lab)
            except Exception as exc:  # the bench's own failure is a row too
                result = f"BENCH ERROR: {type(exc).__name__}: {exc}"[:200]
            bad += not result.startswith(("clean error", "recovered", "no data lost"))
            print(f"| {name} | {result} |", flush=True)
        print(f"\ngoal: every row a clean error or a recovery: {'met' if bad == 0 else f'NOT met ({bad} rows)'}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
