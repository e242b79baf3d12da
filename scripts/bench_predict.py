"""Predict throughput (length-bucketed batches vs fixed padding, PyTorch vs onnxruntime) and peak RSS vs input size.

Data: a mixed-length JSONL generated here from synthetic templates: short sentences (10-60
characters) plus 2% long texts of 2,000-5,000 characters (tens of windows each).
Model: a scratch NER model (10 entity types) trained for a few steps on synthetic sentences; the
point is speed and memory, not quality.

1. Throughput through `predict_lines` (the code behind `gplinker predict`):
   - bucketed: Predictor as shipped: windows sorted by length, each batch padded to its own longest
   - fixed padding: the baseline: windows in input order, every batch padded to max_length
   - bucketed, onnxruntime: the same model exported with `gplinker export` (CPU speed ratio vs PyTorch)
   Runs alternate between variants; medians. Goal (issue 6): bucketed >= 2x fixed padding.
   Beside them, the encoder's forward alone over the bucketed predictor's own batches (collated
   beforehand): bucketed predict windows/s / encoder-alone windows/s is what decoding and batching
   cost on top of the encoder (issue 17's GPU goal: >= 0.85 with --device cuda).
2. Peak RSS of a fresh process streaming 1k, 10k and 100k lines of the same mix (0.5% long texts)
   through predict_lines with a tiny model (one subprocess per size). Goal: flat within ±10%.

Like `gplinker`, the script sets THP_MEM_ALLOC_ENABLE=1 (large CPU tensors on transparent huge
pages) unless the variable is set or --no-huge-pages is given.

    python scripts/bench_predict.py            # full run (several minutes on 2 cores)
    python scripts/bench_predict.py --smoke    # tiny sizes, seconds
    python scripts/bench_predict.py --device cuda --no-onnx --rss-sizes none   # on a GPU
    # BERT-base sizes:
    python scripts/bench_predict.py --hidden 768 --layers 12 --attention-heads 12 --lines 300 --repeats 1 \\
        --rss-sizes none
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from bench_machine import (  # scripts/ is on sys.path when a script runs
    add_device_flag,
    add_huge_pages_flag,
    machine,
    setup_like_cli,
    synchronize,
)

SURNAMES = "张王李赵刘陈杨黄周吴徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂"
PLACES = ["北京", "上海", "广州", "深圳", "杭州", "南京", "成都", "武汉", "西安", "重庆", "天津", "苏州"]
ORG_SUFFIX = ["大学", "银行", "医院", "公司", "研究所", "博物馆"]
VERBS = ["在{place}{org}工作", "去了{place}", "毕业于{place}{org}", "和{person}在{place}见面", "加入了{place}{org}",
         "说{place}很美", "昨天从{place}回来", "在{place}参加了会议"]
FILLER = "今年的天气比往年更好，很多人选择外出旅行，也有人留在家里读书和休息"


def sentence(rng: random.Random) -> tuple[str, list[dict]]:
    """One synthetic sentence with its entities (spans format)."""
    person = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.randint(1, 2)))
    other = rng.choice(SURNAMES) + rng.choice(GIVEN)
    place, org = rng.choice(PLACES), rng.choice(ORG_SUFFIX)
    text, entities = person, [(0, len(person), "person")]
    verb = rng.choice(VERBS)
    pieces = verb.replace("{", "|{").replace("}", "}|").split("|")
    for piece in pieces:
        start = len(text)
        if piece == "{place}":
            text += place
            entities.append((start, len(text), "location"))
        elif piece == "{org}":
            text += org
            entities[-1:] = [entities[-1], (entities[-1][0], len(text), "organization")]
        elif piece == "{person}":
            text += other
            entities.append((start, len(text), "person"))
        else:
            text += piece
    text += rng.choice(["。", "，" + FILLER[: rng.randint(2, 30)] + "。"])
    return text, [{"start": a, "end": b, "type": t, "text": text[a:b]} for a, b, t in entities]


def mixed_lines(rng: random.Random, n: int, long_share: float, long_chars: tuple[int, int]):
    """JSONL lines: short sentences, and with probability long_share a text of long_chars characters."""
    for k in range(n):
        if rng.random() < long_share:
            target, parts = rng.randint(*long_chars), []
            while sum(map(len, parts)) < target:
                parts.append(sentence(rng)[0])
            text = "".join(parts)[:target]
        else:
            text = sentence(rng)[0]
        yield json.dumps({"id": k, "text": text}, ensure_ascii=False)


def train_model(work: Path, sizes: dict, steps: int, max_length: int) -> Path:
    """Train a scratch NER model for `steps` steps on synthetic sentences; returns its model dir."""
    from gplinker.commands.train import train
    from gplinker.config import load_config

    rng = random.Random(1)
    rows = [dict(zip(("text", "entities"), sentence(rng))) for _ in range(400)]
    work.mkdir(parents=True, exist_ok=True)
    data = work / "train.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    sets = [f"data.train={data}", "data.format=spans", f"data.max_length={max_length}", "data.stride=16",
            f"train.output_dir={work / 'run'}", f"train.max_steps={steps}", "train.batch_size=16",
            "train.lr=2e-3", "train.warmup_ratio=0.0", "train.log_every=1000", f"model.head_size={sizes['head']}",
            f"model.scratch.hidden_size={sizes['hidden']}", f"model.scratch.num_layers={sizes['layers']}",
            f"model.scratch.num_heads={sizes['heads']}", f"model.scratch.intermediate_size={4 * sizes['hidden']}",
            f"model.scratch.max_position={max_length}"]
    train(load_config(None, sets), overwrite=True)
    return work / "run" / "last"


def fixed_padding_predictor(base):
    """The baseline: the same Predictor, but batches in input order, each padded to max_length."""
    from gplinker.data.batching import collate
    from gplinker.predict import Predictor, cells_above

    class FixedPadding(Predictor):
        @torch.inference_mode()
        def decode_windows(self, windows, progress=None):  # noqa: ARG002 -- no progress in the baseline
            out = []
            for a in range(0, len(windows), self.batch_size):
                batch = windows[a : a + self.batch_size]
                inputs = collate(batch, self.pad_id)
                pad = self.encoder.max_length - inputs["input_ids"].shape[1]
                inputs = {"input_ids": F.pad(inputs["input_ids"], (0, pad), value=self.pad_id),
                          "attention_mask": F.pad(inputs["attention_mask"], (0, pad))}  # (B, max_length)
                cells = cells_above(self.logits(inputs), self.threshold, len(batch))
                out.extend(self.task.decode(w, self.within_limits(c)) for w, c in zip(batch, cells))
            return out

    return FixedPadding(model=base.model, tokenizer=base.tokenizer, task=base.task,
                        max_length=base.encoder.max_length, stride=base.encoder.stride, threshold=base.threshold,
                        batch_size=base.batch_size, device=base.device, amp=base.amp,
                        char_level=base.encoder.char_level, runtime=base.runtime, span_limits=base.span_limits)


def run_lines(predictor, lines: list[str]) -> tuple[float, list[dict]]:
    """(seconds, records) of predict_lines over `lines`."""
    from gplinker.commands.predict import predict_lines

    records: list[dict] = []
    synchronize(predictor.device)
    start = time.perf_counter()
    predict_lines(predictor, lines, lambda s: records.append(s))
    synchronize(predictor.device)
    seconds = time.perf_counter() - start
    return seconds, [json.loads(r) for r in records]


def encoder_alone(predictor, lines: list[str]) -> Callable[[], float]:
    """A timer of the predictor's encoder forward alone over the batches predict would run for `lines`.

    The batches are collated and on the device before the clock starts; each call returns seconds.
    """
    from gplinker.data.batching import collate, inference_batches
    from gplinker.devices import inference_autocast

    windows = predictor.encoder.encode([json.loads(x)["text"] for x in lines])
    batches = []
    for indices in inference_batches([len(w) for w in windows], predictor.batch_size, predictor.cut_cost()):
        inputs = collate([windows[k] for k in indices], predictor.pad_id)
        batches.append({k: v.to(predictor.device) for k, v in inputs.items()})
    encoder = predictor.model.encoder.eval()

    @torch.inference_mode()
    def run() -> float:
        synchronize(predictor.device)
        start = time.perf_counter()
        for inputs in batches:
            with inference_autocast(predictor.amp, predictor.device):
                encoder(**inputs)
        synchronize(predictor.device)
        return time.perf_counter() - start

    return run


def items(records: list[dict]) -> list[set]:
    return [{(e["start"], e["end"], e["type"]) for e in r.get("entities", ())} for r in records]


def rss_child(model_dir: str, input_path: str, n: int) -> None:
    """Subprocess body: stream the first n lines of input_path through predict_lines; print peak RSS as JSON."""
    from gplinker.commands.predict import predict_lines
    from gplinker.data.reading import read_text_lines
    from gplinker.predict import Predictor

    predictor = Predictor.from_pretrained(model_dir, device="cpu")
    loaded = status_mb("VmRSS")
    start = time.perf_counter()
    with open(os.devnull, "w", encoding="utf-8") as sink:
        summary = predict_lines(predictor, itertools.islice(read_text_lines(input_path), n),
                                lambda s: sink.write(s + "\n"))
    seconds = time.perf_counter() - start
    # VmHWM, not getrusage's ru_maxrss: that one survives exec, so a child forked from a big parent
    # would report the parent's size
    print(json.dumps({"lines": summary.lines, "seconds": seconds, "peak_mb": status_mb("VmHWM"), "loaded_mb": loaded}))


def status_mb(field: str) -> float:
    """A memory field of /proc/self/status (VmRSS, VmHWM, ...) in MB."""
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=2000, help="lines of the throughput file")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-length", type=int, default=256, help="tokens per window of the throughput model")
    parser.add_argument("--rss-sizes", default="1000,10000,100000", help="input lines per RSS run, or 'none'")
    parser.add_argument("--no-onnx", action="store_true", help="skip the onnxruntime row")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks the script runs")
    parser.add_argument("--hidden", type=int, default=128, help="hidden size of the throughput model (768: BERT-base)")
    parser.add_argument("--layers", type=int, default=2, help="layers of the throughput model (12: BERT-base)")
    parser.add_argument("--attention-heads", type=int, default=4,
                        help="attention heads of the throughput model (12: BERT-base)")
    add_device_flag(parser)
    add_huge_pages_flag(parser)
    parser.add_argument("--rss-child", nargs=3, metavar=("MODEL_DIR", "INPUT", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        rss_child(args.rss_child[0], args.rss_child[1], int(args.rss_child[2]))
        return

    setup_like_cli(args)  # children inherit the environment
    big = dict(hidden=args.hidden, layers=args.layers, heads=args.attention_heads, head=64)
    tiny = dict(hidden=32, layers=1, heads=2, head=16)
    max_length, steps, long_chars = args.max_length, 30, (2000, 5000)
    if args.smoke:
        big, max_length, steps, long_chars = tiny, 64, 12, (300, 600)
        args.lines, args.repeats, args.rss_sizes, args.no_onnx = 60, 1, "50", True
    sizes = [] if args.rss_sizes == "none" else [int(x) for x in args.rss_sizes.split(",")]

    from gplinker.predict import Predictor

    with tempfile.TemporaryDirectory(prefix="bench_predict_") as tmp:
        work = Path(tmp)
        model_dir = train_model(work / "big", big, steps, max_length)
        tiny_dir = model_dir if args.smoke or not sizes else train_model(work / "tiny", tiny, 10, 64)
        rss_file = work / "rss.jsonl"
        with open(rss_file, "w", encoding="utf-8") as fh:
            for line in mixed_lines(random.Random(7), max(sizes, default=0), 0.005, long_chars):
                fh.write(line + "\n")

        lines = list(mixed_lines(random.Random(3), args.lines, 0.02, long_chars))
        bucketed = Predictor.from_pretrained(model_dir, device=args.device, runtime="torch")
        variants = {
            "bucketed (PyTorch)": bucketed,
            "fixed padding to max_length (PyTorch)": fixed_padding_predictor(bucketed),
        }
        if not args.no_onnx:
            from gplinker.export import export_onnx

            export_onnx(model_dir, work / "onnx")
            variants["bucketed (onnxruntime)"] = Predictor.from_pretrained(work / "onnx", runtime="onnx")
        windows = len(bucketed.encoder.encode([json.loads(x)["text"] for x in lines]))
        times: dict[str, list[float]] = {name: [] for name in variants}
        outputs = {}
        run_lines(bucketed, lines[:50])  # warm-up
        encoder_run, encoder_times = encoder_alone(bucketed, lines), []
        encoder_run()  # warm-up
        for _ in range(args.repeats):
            for name, predictor in variants.items():
                seconds, outputs[name] = run_lines(predictor, lines)
                times[name].append(seconds)
            encoder_times.append(encoder_run())
        results = []  # after the timed runs and one at a time, so that nothing competes for the cores
        for n in sizes:
            child = subprocess.run([sys.executable, __file__, "--rss-child", str(tiny_dir), str(rss_file), str(n)],
                                   stdout=subprocess.PIPE, text=True, check=True)
            results.append(json.loads(child.stdout.strip().splitlines()[-1]))

    chars = sum(len(json.loads(x)["text"]) for x in lines)
    n_long = sum(len(json.loads(x)["text"]) >= long_chars[0] for x in lines)
    print(f"# bench_predict: {machine()}")
    print(f"# throughput on {args.device}: {len(lines)} lines ({n_long} long, {chars} characters, {windows} windows), "
          "scratch NER model "
          f"hidden {big['hidden']} x {big['layers']} layers, max_length {max_length}, batch 64; "
          f"median of {args.repeats}")
    print("| variant | median s | lines/s | windows/s | speed-up vs fixed padding | items | same items as bucketed |")
    print("|---|---:|---:|---:|---:|---:|---|")
    fixed = statistics.median(times["fixed padding to max_length (PyTorch)"])
    reference = items(outputs["bucketed (PyTorch)"])
    for name, ts in times.items():
        m = statistics.median(ts)
        same = "yes" if items(outputs[name]) == reference else "NO"
        found = sum(map(len, items(outputs[name])))
        print(f"| {name} | {m:.2f} | {len(lines) / m:.0f} | {windows / m:.0f} | {fixed / m:.2f}x | {found} | {same} |")
    print()
    print(f"# peak RSS: fresh process per size, tiny model (hidden {tiny['hidden']}, max_length 64), "
          f"0.5% long texts, predict_lines chunks of 1024 lines")
    print("| input lines | seconds | RSS after load MB | peak RSS MB | peak - after load MB | peak vs smallest |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['lines']} | {r['seconds']:.1f} | {r['loaded_mb']:.0f} | {r['peak_mb']:.0f} | "
              f"{r['peak_mb'] - r['loaded_mb']:.0f} | {100 * (r['peak_mb'] / results[0]['peak_mb'] - 1):+.1f}% |")
    ratio = fixed / statistics.median(times["bucketed (PyTorch)"])
    spread = max(r["peak_mb"] for r in results) / results[0]["peak_mb"] - 1 if results else float("nan")
    flat = "not measured (--rss-sizes none)" if not results else \
        f"{'met' if abs(spread) <= 0.10 else 'NOT met'} ({100 * spread:+.1f}%)"
    alone = statistics.median(encoder_times)
    share = alone / statistics.median(times["bucketed (PyTorch)"])
    print(f"encoder forward alone over the same batches ({bucketed.device}): {alone:.2f} s, {windows / alone:.0f} "
          f"windows/s; bucketed predict / encoder alone (windows/s): {share:.2f} (GPU goal >= 0.85: "
          f"{'met' if share >= 0.85 else 'NOT met'})")
    print(f"goals: bucketed >= 2x fixed padding: {'met' if ratio >= 2 else 'NOT met'} ({ratio:.2f}x); "
          f"peak RSS flat within 10%: {flat}")
    if "bucketed (onnxruntime)" in times:
        ort = statistics.median(times["bucketed (onnxruntime)"]) / statistics.median(times["bucketed (PyTorch)"])
        print(f"onnxruntime / PyTorch time (CPU, bucketed): {ort:.2f} ({1 / ort:.2f}x the PyTorch speed)")


if __name__ == "__main__":
    main()
