"""Fit `inference_batches`' cost model to measured forward times, for scratch models of several sizes.

The model (gplinker/data/batching.py): a forward of n windows padded to L tokens costs
a + b·n·(L + L²/q) seconds; in token units, overhead = a/b and quadratic tokens = q. For each size,
the script times the Predictor's forward and thresholding (`Predictor.logits` + `cells_above`, what a
batch of `window_cells` costs) on a grid of (n, L), median of --repeats runs each, fits a and b by least
squares on relative error for each q of a log grid, and prints the best q, a/b, and the fit's worst
relative error, beside what BatchCost.for_cpu (the formula chosen from these fits) gives for that size and
thread count; the goal is that the formula's overhead is within 2x of each fit (the batch cut changes little
within that: the cost of a cut is flat near its optimum).

    python scripts/fit_batch_cost.py                            # 64x1, 256x4, 512x6, 768x12; 1 and 2 threads
    python scripts/fit_batch_cost.py --sizes 768x12 --threads 1
    python scripts/fit_batch_cost.py --smoke                    # seconds: checks the script runs
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from bench_machine import add_huge_pages_flag, machine, setup_like_cli  # scripts/ is on sys.path when a script runs
from bench_predict import train_model


def forward_seconds(predictor, n: int, length: int, repeats: int) -> float:
    """Median seconds of one forward + thresholding of n windows of `length` tokens."""
    from gplinker.predict import cells_above

    ids = torch.randint(5, len(predictor.tokenizer), (n, length))  # past the special tokens
    inputs = {"input_ids": ids.to(predictor.device), "attention_mask": torch.ones_like(ids).to(predictor.device)}
    times = []
    with torch.inference_mode():
        cells_above(predictor.logits(inputs), predictor.threshold, n)  # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            cells_above(predictor.logits(inputs), predictor.threshold, n)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def fit(points: list[tuple[int, int, float]]) -> tuple[float, float, float, float]:
    """(a, b, q, worst relative error) of t = a + b·n·(L + L²/q), a >= 0: for each q of a log grid, least
    squares on t's relative error (closed form); the q whose fit has the least squared error."""
    best: tuple[float, float, float, float, float] | None = None  # a, b, q, worst, squared error
    for q in [2 ** (k / 4) for k in range(20, 57)]:  # 32 .. 16384
        rows = [(1 / t, n * (length + length**2 / q) / t) for n, length, t in points]  # (1/t, x/t)·(a, b) ≈ 1
        s11, s12, s22 = sum(u * u for u, _ in rows), sum(u * v for u, v in rows), sum(v * v for _, v in rows)
        r1, r2 = sum(u for u, _ in rows), sum(v for _, v in rows)
        det = s11 * s22 - s12 * s12
        a, b = (r1 * s22 - r2 * s12) / det, (s11 * r2 - s12 * r1) / det
        if a < 0:  # no fixed cost measurable: the fit through 0
            a, b = 0.0, r2 / s22
        errors = [(a + b * n * (length + length**2 / q) - t) / t for n, length, t in points]
        squared = sum(e * e for e in errors)
        if best is None or squared < best[4]:
            best = (a, b, q, max(abs(e) for e in errors), squared)
    assert best is not None
    return best[:4]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="64x1,256x4,512x6,768x12", help="HIDDENxLAYERS, comma separated")
    parser.add_argument("--threads", default="1,2", help="torch CPU threads, comma separated")
    parser.add_argument("--batch", default="1,2,4,8,16,32", help="windows per forward, comma separated")
    parser.add_argument("--lengths", default="16,32,64,128,256", help="tokens per window, comma separated")
    parser.add_argument("--max-tokens", type=int, default=2048, help="skip grid points of more n·L tokens")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="one small size, a small grid: checks the script runs")
    add_huge_pages_flag(parser)
    args = parser.parse_args()
    if args.smoke:
        args.sizes, args.threads, args.batch, args.lengths, args.repeats = "32x1", "1", "1,8", "16,64", 1
    setup_like_cli(args)
    from gplinker.data.batching import BatchCost
    from gplinker.predict import Predictor

    print(f"# fit_batch_cost: {machine()}")
    print("| size | threads | overhead a/b (tokens) | q (tokens) | worst fit error | a (ms) | "
          "BatchCost.for_cpu overhead, q | for_cpu / fit overhead | goal | met |")
    print("|---|---:|---:|---:|---:|---:|---|---:|---|---|")
    for size in args.sizes.split(","):
        hidden, layers = (int(x) for x in size.split("x"))
        sizes = {"hidden": hidden, "layers": layers, "heads": max(1, hidden // 64), "head": 64}
        with tempfile.TemporaryDirectory() as work:
            model_dir = train_model(Path(work), sizes, steps=1, max_length=max(int(x) for x in args.lengths.split(",")))
            predictor = Predictor.from_pretrained(model_dir, device="cpu")
            for threads in (int(x) for x in args.threads.split(",")):
                torch.set_num_threads(threads)
                points = [(n, length, forward_seconds(predictor, n, length, args.repeats))
                          for n in (int(x) for x in args.batch.split(","))
                          for length in (int(x) for x in args.lengths.split(",")) if n * length <= args.max_tokens]
                a, b, q, worst = fit(points)
                model = BatchCost.for_cpu(hidden, threads)
                ratio = model.overhead / (a / b) if a > 0 else float("inf")
                print(f"| {hidden} x {layers} | {threads} | {a / b:.0f} | {q:.0f} | {100 * worst:.0f} % | "
                      f"{1000 * a:.2f} | {model.overhead:.0f}, {model.quadratic_tokens:.0f} | {ratio:.2f} | "
                      f"0.5-2 | {'yes' if 0.5 <= ratio <= 2 else 'no'} |", flush=True)

if __name__ == "__main__":
    main()
