"""Training curves as inline SVG: loss and learning rate per logged step, dev score per evaluation (train_log.jsonl)."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any

WIDTH, HEIGHT, PAD, LEFT = 320, 170, 34, 52  # LEFT: room for the y tick labels


def find_train_log(model_dir: Path) -> Path | None:
    """train_log.jsonl of the run a model dir came from: best/ and last/ sit inside train.output_dir, beside it."""
    for candidate in (model_dir / "train_log.jsonl", model_dir.parent / "train_log.jsonl"):
        if candidate.is_file():
            return candidate
    return None


def read_train_log(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The "train" lines and the "eval" lines of a training log (lines that do not parse are skipped)."""
    train: list[dict[str, Any]] = []
    evals: list[dict[str, Any]] = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict):
            (evals if entry.get("event") == "eval" else train if entry.get("event") == "train" else []).append(entry)
    return train, evals


def curves_svg(train: list[dict[str, Any]], evals: list[dict[str, Any]]) -> list[str]:
    """One SVG chart each for loss, dev score and learning rate, against the step."""
    charts = [("training loss", points(train, "loss")), ("dev score", points(evals, "score")),
              ("learning rate", points(train, "lr"))]
    return [line_chart(title, series) for title, series in charts if series]


def points(entries: list[dict[str, Any]], key: str) -> list[tuple[float, float]]:
    """(step, value) of every entry with a numeric `key`."""
    return [(float(e["step"]), float(e[key])) for e in entries
            if isinstance(e.get(key), (int, float)) and isinstance(e.get("step"), (int, float))]


def line_chart(title: str, series: list[tuple[float, float]]) -> str:
    """A small SVG line chart with its title, the step range on x and the value range on y."""
    xs, ys = [x for x, _ in series], [y for _, y in series]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    span_x, span_y = (x1 - x0) or 1.0, (y1 - y0) or 1.0

    def at(x: float, y: float) -> str:
        return (f"{LEFT + (x - x0) / span_x * (WIDTH - LEFT - PAD):.1f},"
                f"{HEIGHT - PAD - (y - y0) / span_y * (HEIGHT - 2 * PAD):.1f}")

    line = " ".join(at(x, y) for x, y in series)
    dots = "".join(f'<circle cx="{at(x, y).split(",")[0]}" cy="{at(x, y).split(",")[1]}" r="2"/>' for x, y in series)
    return (f'<svg class="curve" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img">'
            f'<title>{escape(title)}</title>'
            f'<text x="{WIDTH / 2}" y="14" text-anchor="middle" class="curve-title">{escape(title)}</text>'
            f'<rect x="{LEFT}" y="{PAD}" width="{WIDTH - LEFT - PAD}" height="{HEIGHT - 2 * PAD}" class="frame"/>'
            f'<polyline points="{line}" class="series"/>{dots}'
            f'<text x="{LEFT - 3}" y="{PAD + 4}" text-anchor="end" class="tick">{y1:.3g}</text>'
            f'<text x="{LEFT - 3}" y="{HEIGHT - PAD}" text-anchor="end" class="tick">{y0:.3g}</text>'
            f'<text x="{LEFT}" y="{HEIGHT - PAD + 14}" class="tick">step {x0:g}</text>'
            f'<text x="{WIDTH - PAD}" y="{HEIGHT - PAD + 14}" text-anchor="end" class="tick">{x1:g}</text></svg>')
