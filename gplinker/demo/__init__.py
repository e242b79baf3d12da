"""`gplinker demo`: train on bundled synthetic data, evaluate, predict, print the results. Offline."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
CONFIG = HERE.parent / "configs" / "demo.yaml"  # the same file as the repository's configs/demo.yaml


def run_demo(output_dir: Path, console: Console) -> dict[str, Any]:
    """Run the whole demo; returns the dev scores (main F1 in [0, 1]) and the wall time."""
    from gplinker.commands.evaluate import evaluate_dir
    from gplinker.commands.predict import predict_lines
    from gplinker.commands.tables import print_scores
    from gplinker.commands.train import train
    from gplinker.config import load_config
    from gplinker.predict import Predictor

    t0 = time.perf_counter()
    cfg = load_config(CONFIG, [f"train.output_dir={output_dir}"])
    console.print(f"[bold]gplinker demo[/]: {cfg.task} on {HERE / 'train.jsonl'}, scratch encoder, CPU")
    train(cfg, overwrite=True, console=console)
    best = Path(cfg.train.output_dir) / "best"
    result = evaluate_dir(best, HERE / "dev.jsonl")
    print_scores(result.scores, "demo dev set")
    predictor = Predictor.from_pretrained(best)
    lines = (HERE / "predict.jsonl").read_text(encoding="utf-8").splitlines()
    records: list[dict[str, Any]] = []
    predict_lines(predictor, lines, lambda s: records.append(json.loads(s)))
    out_path = Path(cfg.train.output_dir) / "predictions.jsonl"
    out_path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    table = Table(title=f"predictions on {HERE / 'predict.jsonl'} (all in {out_path})")
    table.add_column("text")
    table.add_column("entities")
    for r in records[:6]:
        ents = "  ".join(f"{e['text']}/{e['type']}[{e['start']}:{e['end']}]" for e in r["entities"])
        table.add_row(r["text"][:60] + ("…" if len(r["text"]) > 60 else ""), ents)
    Console().print(table)
    wall = time.perf_counter() - t0
    Console().print(f"demo finished in {wall:.0f} s: dev span F1 {100 * result.scores.main:.2f}; "
                    f"model dir {best}")
    return {"f1": result.scores.main, "metrics": result.scores.metrics, "seconds": wall}
