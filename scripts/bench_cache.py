"""Data encoding cache: first encoding of a training file vs a cached re-run (gplinker/data/cache.py).

Runs what `gplinker train` runs before its first step (commands/training_data.py) on DuIE 2.0
train with the settings of configs/duie.yaml (relation task, the 48-predicate schema, stride 48,
scratch character tokenizer with min count 2; max_length 128 unless --max-length):
  - first encoding: read and check every line into Arrow (the corpus), build the scratch
    tokenizer from its character counts, window and target every example (the windows), write
    both cache entries
  - cached re-run: the same calls with both entries present: fingerprints and keys, reopen the
    memory-mapped entries, the reader checks, the tokenizer
--repeat N concatenates the file N times first (170,000 lines = the 5,000-line subset x 34).
Goal (issue 6, and issue 13 at 170k lines): cached re-run >= 20x faster than the first encoding.
The data lives in ../shared/data/duie2-subset (not shipped); without it the script says so and exits 0.

    python scripts/bench_cache.py                       # DuIE 2.0 train subset, medians of 3 first / 5 cached runs
    python scripts/bench_cache.py --repeat 34 --first-runs 1 --cached-runs 3 --num-proc 2
    python scripts/bench_cache.py --smoke               # a small synthetic DuIE file, seconds
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
    parser.add_argument("--repeat", type=int, default=1, help="concatenate the file this many times")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--num-proc", type=int, default=1)
    parser.add_argument("--first-runs", type=int, default=3)
    parser.add_argument("--cached-runs", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="a small synthetic file: checks the script runs")
    args = parser.parse_args()

    from gplinker.commands.training_data import TrainingData
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
        if args.repeat > 1:
            source = args.data.read_bytes()
            with open(tmp / "repeated.json", "wb") as fh:
                for _ in range(args.repeat):
                    fh.write(source if source.endswith(b"\n") else source + b"\n")
            args.data = tmp / "repeated.json"
        os.environ.pop("GPLINKER_CACHE_DIR", None)

        def prepare():
            stages = TrainingData(tmp / "run", args.num_proc, None)
            corpus, key, _ = stages.corpus(str(args.data), "duie2", skip_invalid=False)
            schema = load_duie_schema(args.schema) if args.schema else schema_from_examples(
                "relation", corpus.examples())
            task = build_task("relation", schema)
            tokenizer = scratch_tokenizer(corpus.char_counts(), min_count=1 if args.smoke else 2)
            windows, hit = stages.windows(corpus, key, tokenizer, task, max_length=args.max_length, stride=48,
                                          char_level=False)
            return corpus, windows, hit

        first, cached = [], []
        for _ in range(args.first_runs):
            shutil.rmtree(tmp / "run", ignore_errors=True)
            gc.collect()
            seconds, (corpus, windows, hit) = timed(prepare)
            assert not hit
            first.append(seconds)
        for _ in range(args.cached_runs):
            gc.collect()
            seconds, (_, again, hit) = timed(prepare)
            assert hit
            cached.append(seconds)
        same = again.dataset.select_columns(["input_ids"])[:50] == windows.dataset.select_columns(["input_ids"])[:50]
        size_mb = sum(p.stat().st_size for p in (tmp / "run" / "cache").rglob("*") if p.is_file()) / 2**20
        examples, n_windows, unplaced = corpus.report.examples, len(windows), windows.unplaced()

    f, c = statistics.median(first), statistics.median(cached)
    print(f"# bench_cache: {machine()}")
    print(f"# {args.data.name} x {args.repeat} ({examples} examples, {n_windows} windows, {unplaced} unplaceable "
          f"gold items); relation task, max_length {args.max_length}, stride 48, num_proc {args.num_proc}; "
          f"cache entries {size_mb:.1f} MB; medians of {len(first)} first / {len(cached)} cached runs")
    print("| stage | median s | speed-up |")
    print("|---|---:|---:|")
    print(f"| first encoding (read + check into Arrow, tokenizer, windows, targets, oracle count, write) "
          f"| {f:.3f} | 1.0x |")
    print(f"| cached re-run (fingerprints, keys, reopen the entries, reader checks, tokenizer) | {c:.3f} "
          f"| {f / c:.1f}x |")
    print(f"cached windows identical to the first encoding: {'yes' if same else 'NO'}")
    print(f"goal >= 20x: {'met' if f / c >= 20 else 'NOT met'} ({f / c:.1f}x)")


if __name__ == "__main__":
    main()
