"""Data encoding cache: first encoding of a training file vs a cached re-run (gplinker/data/cache.py).

Runs what `gplinker train` runs (commands.train.encode_training_data) on DuIE 2.0 train with the
settings of configs/duie.yaml (relation task, the 48-predicate schema, max_length 128, stride 48,
scratch character tokenizer with min count 2):
  - first encoding: cache key (sha256 of the file, tokenizer and settings), tokenize, windows,
    targets, the oracle count of unplaceable gold items, and writing the cache entry
  - cached re-run: the same call with the entry present: key, then read the entry back
Reading and validating the JSONL (done on every run, cached or not) is shown for context.
Goal (issue 6): cached re-run >= 20x faster than the first encoding.
The data lives in ../shared/data/duie2-subset (not shipped); without it the script says so and exits 0.

    python scripts/bench_cache.py             # DuIE 2.0 train subset, medians of 3 first / 5 cached runs
    python scripts/bench_cache.py --smoke     # a small synthetic DuIE file, seconds
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from bench_machine import machine  # scripts/ is on sys.path when a script runs

REPO = Path(__file__).resolve().parents[1]
DUIE = REPO.parent / "shared" / "data" / "duie2-subset"


def synthetic_duie(path: Path, n: int) -> Path:
    """A small DuIE 2.0 file written here: book/author and company/founder triples."""
    people, books, firms = (
        "张伟 李娜 王芳 赵磊 陈静 刘洋".split(), "春风 远山 星河 长夜".split(), "青禾 白石 蓝海".split()
    )
    rows = []
    for k in range(n):
        person, book, firm = people[k % len(people)], books[k % len(books)], firms[k % len(firms)]
        text = f"《{book}》的作者是{person}，{person}后来创办了{firm}公司。" * (1 + k % 3)
        rows.append({"text": text, "spo_list": [
            {"subject": book, "subject_type": "图书作品", "predicate": "作者", "object": {"@value": person},
             "object_type": {"@value": "人物"}},
            {"subject": f"{firm}公司", "subject_type": "企业", "predicate": "创始人", "object": {"@value": person},
             "object_type": {"@value": "人物"}},
        ]})
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DUIE / "train.json")
    parser.add_argument("--schema", type=Path, default=DUIE / "duie_schema.json")
    parser.add_argument("--first-runs", type=int, default=3)
    parser.add_argument("--cached-runs", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="a small synthetic file: checks the script runs")
    args = parser.parse_args()

    from gplinker.commands.train import encode_training_data
    from gplinker.config import load_config
    from gplinker.data.reading import read_examples
    from gplinker.data.schema import load_duie_schema, schema_from_examples
    from gplinker.modeling.encoders import scratch_tokenizer
    from gplinker.tasks import build_task

    with tempfile.TemporaryDirectory(prefix="bench_cache_") as tmp:
        tmp = Path(tmp)
        if args.smoke:
            args.data, args.schema = synthetic_duie(tmp / "train.json", 40), None
            args.first_runs, args.cached_runs = 1, 2
        elif not args.data.is_file():
            print(f"bench_cache: {args.data} not found (the DuIE 2.0 subset is not shipped); nothing to measure")
            return
        os.environ.pop("GPLINKER_CACHE_DIR", None)
        cfg = load_config(None, ["task=relation", f"data.train={args.data}", "data.format=duie2",
                                 "data.max_length=128", "data.stride=48", f"train.output_dir={tmp / 'run'}"])
        read_s, (examples, _) = timed(lambda: read_examples(args.data, "duie2", "relation"))
        schema = load_duie_schema(args.schema) if args.schema else schema_from_examples("relation", examples)
        task = build_task("relation", schema)
        tokenizer = scratch_tokenizer((e.text for e in examples), min_count=1 if args.smoke else 2)

        def encode():
            return encode_training_data(cfg, "duie2", task, tokenizer, examples)

        first, cached = [], []
        windows = again = None
        for _ in range(args.first_runs):
            shutil.rmtree(tmp / "run", ignore_errors=True)
            windows = None  # freeing the previous run's ~10^6 objects is not part of the next run
            gc.collect()
            seconds, (windows, unplaced) = timed(encode)
            first.append(seconds)
        for _ in range(args.cached_runs):
            again = None
            gc.collect()
            seconds, (again, unplaced_again) = timed(encode)
            cached.append(seconds)
        same = unplaced == unplaced_again and [(w.input_ids, w.char_spans, w.targets) for w in windows] == [
            (w.input_ids, w.char_spans, w.targets) for w in again]
        entry = next((tmp / "run" / "cache").glob("*.safetensors"))
        size_mb = entry.stat().st_size / 2**20

    f, c = statistics.median(first), statistics.median(cached)
    print(f"# bench_cache: {machine()}")
    print(f"# {args.data} ({len(examples)} examples, {len(windows)} windows, {unplaced} unplaceable gold items); "
          f"relation task, max_length 128, stride 48; cache entry {size_mb:.1f} MB; "
          f"medians of {len(first)} first / {len(cached)} cached runs")
    print("| stage | median s | speed-up |")
    print("|---|---:|---:|")
    print(f"| read + validate JSONL (every run, not cached) | {read_s:.3f} | |")
    print(f"| first encoding (key, tokenize, windows, targets, oracle count, write) | {f:.3f} | 1.0x |")
    print(f"| cached re-run (key, read entry) | {c:.3f} | {f / c:.1f}x |")
    print(f"cached windows identical to the first encoding: {'yes' if same else 'NO'}")
    print(f"goal >= 20x: {'met' if f / c >= 20 else 'NOT met'} ({f / c:.1f}x)")


if __name__ == "__main__":
    main()
