"""`gplinker tune` on a model dir: dev score before and after, the channels moved, and where the time goes.

Runs `commands.tune.tune_dir` without writing (the dir is left as it is) and prints the wall time of
the forward pass over the dev windows (`Predictor.window_cells`) apart from the search (decoding and
scoring only), the number of dev scorings, the dev score before and after, and the held-out score
of the tuned thresholds on a second labelled file when one is given (tuning is fitted to dev: only a
held-out file says whether it generalises).

    python scripts/bench_tune.py runs/cluener/best ../shared/data/cluener/dev.json
    python scripts/bench_tune.py MODEL_DIR DEV.json --held-out TEST.json
"""

from __future__ import annotations

import argparse
import os
import time

from gplinker.commands.tune import GRID, per_channel, search_thresholds
from gplinker.data.reading import read_examples
from gplinker.predict import Predictor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir")
    parser.add_argument("dev")
    parser.add_argument("--held-out", help="a second labelled file, scored with and without the tuned thresholds")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    predictor = Predictor.from_pretrained(args.model_dir, device="cpu", batch_size=args.batch_size)
    task = predictor.task
    examples, _ = read_examples(args.dev, "auto", task.name)
    start = per_channel(predictor.threshold, task)
    t0 = time.perf_counter()
    windows = predictor.encoder.encode([e.text for e in examples])
    cells = predictor.window_cells(windows, min([*GRID, *(v for vs in start.values() for v in vs)]))
    t1 = time.perf_counter()
    result = search_thresholds(task, windows, cells, examples, start)
    t2 = time.perf_counter()
    print(f"{args.model_dir} on {args.dev}: {len(examples)} examples, {len(windows)} windows, "
          f"{sum(len(c) for c in result.labels.values())} channels; load average {os.getloadavg()[0]:.1f}")
    print(f"forward over dev {t1 - t0:.1f} s; search {t2 - t1:.1f} s ({result.trials} trials)")
    print(f"dev score {100 * result.before:.2f} before, {100 * result.after:.2f} after")
    for head, label, old, new in result.changed():
        print(f"  {head}:{label} {old:g} -> {new:g}")
    if args.held_out:
        held, _ = read_examples(args.held_out, "auto", task.name)
        plain = task.score(held, predictor.predict(held)).main
        predictor.threshold = result.thresholds
        tuned = task.score(held, predictor.predict(held)).main
        print(f"held-out {args.held_out}: {100 * plain:.2f} untuned, {100 * tuned:.2f} tuned")


if __name__ == "__main__":
    main()
