"""The per-label score table that `eval` and the demo print."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from gplinker.metrics import Scores


def print_scores(scores: Scores, title: str, out: Console | None = None) -> None:
    """Headline metrics and a per-label P/R/F1 table (percentages)."""
    out = out or Console()
    table = Table(title=title, show_lines=False)
    for col in ("label", "precision", "recall", "f1", "gold", "pred"):
        table.add_column(col, justify="left" if col == "label" else "right")
    for label, prf in sorted(scores.per_label.items()):
        table.add_row(label, f"{100 * prf.precision:.2f}", f"{100 * prf.recall:.2f}", f"{100 * prf.f1:.2f}",
                      f"{prf.n_gold:g}", f"{prf.n_pred:g}")
    out.print(table)
    for key, value in scores.metrics.items():
        if isinstance(value, float):
            out.print(f"{key:>24}: {100 * value:.2f}" if value <= 1.0 else f"{key:>24}: {value:.4f}")
