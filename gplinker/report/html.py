"""`gplinker eval --report report.html`: one self-contained HTML file (no external file, no network).

It holds the headline metrics, the per-label table, the type confusion of wrong-typed items, the
training curves of the run the model came from (train_log.jsonl beside best/ and last/), and the
first `max_errors` examples with an error, drawn by the page's own script (`serve/static/render.js`,
inlined) with false positives and misses marked differently.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gplinker.report.confusion import type_confusion
from gplinker.report.curves import curves_svg, find_train_log, read_train_log
from gplinker.report.marked_records import marked_record

if TYPE_CHECKING:
    from gplinker.commands.evaluate import EvalResult

STATIC = Path(__file__).resolve().parents[1] / "serve" / "static"
REPORT_CSS = """
.curves { display: flex; flex-wrap: wrap; gap: 1rem; }
svg.curve .frame { fill: none; stroke: #ccc; } svg.curve .series { fill: none; stroke: #369; stroke-width: 1.5; }
svg.curve circle { fill: #369; } svg.curve .tick { font-size: 10px; fill: #555; }
svg.curve .curve-title { font-size: 12px; font-weight: bold; }
.key mark { margin-right: 0.6rem; }
"""


def write_report(path: Path, result: EvalResult, model_dir: Path, data: str | Path, max_errors: int = 50) -> int:
    """Write the report; returns how many examples with errors it draws."""
    page, drawn = render_report(result, model_dir, data, max_errors)
    path.write_text(page, encoding="utf-8")
    return drawn


def render_report(result: EvalResult, model_dir: Path, data: str | Path, max_errors: int = 50) -> tuple[str, int]:
    """The report's HTML and the number of examples with errors drawn in it."""
    task = result.task
    errors = [marked_record(task, e, p) for e, p in zip(result.examples, result.predictions)
              if set(task.gold(e)) != set(p)]
    shown = errors[:max_errors]
    log = find_train_log(Path(model_dir))
    if log is not None:
        charts = curves_svg(*read_train_log(log))
        curves = (f'<p>from {escape(str(log))}</p><div class="curves">{"".join(charts)}</div>' if charts
                  else f"<p>{escape(str(log))} holds no training or evaluation line yet.</p>")
    else:
        curves = "<p>No train_log.jsonl in the model dir or beside it: this model dir did not come from a run.</p>"
    records = json.dumps(shown, ensure_ascii=False).replace("<", "\\u003c")  # no "</script>" or "<!--" inside
    body = f"""
<header><h1>gplinker eval report</h1></header>
<p>model <code>{escape(str(model_dir))}</code> ({escape(task.name)}), data <code>{escape(str(data))}</code>:
{len(result.examples)} examples, {len(errors)} with an error.</p>
<h2>Scores</h2>{metrics_table(result.scores.metrics)}
<h2>Per label</h2>{per_label_table(result)}
<h2>Type confusion</h2>{confusion_table(result)}
<h2>Training curves</h2>{curves}
<h2>Errors</h2>
<p class="key">{len(shown)} of {len(errors)} examples with an error.
<mark class="span" style="--c: #ddd">correct</mark> <mark class="span fp" style="--c: #ddd">false positive</mark>
<mark class="span miss" style="--c: #ddd">miss</mark></p>
<noscript>The errors are drawn by a script: enable JavaScript to see them.</noscript>
<main id="errors"></main>
<script type="application/json" id="error-records">{records}</script>"""
    script = (STATIC / "render.js").read_text(encoding="utf-8")
    css = (STATIC / "style.css").read_text(encoding="utf-8")
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>gplinker eval: {escape(str(model_dir))}</title>
<style>{css}{REPORT_CSS}</style></head>
<body>{body}
<script>{script}
GPL.show(document.getElementById("errors"), JSON.parse(document.getElementById("error-records").textContent));
document.body.dataset.done = "report";
</script></body></html>
"""
    return page, len(shown)


def table(header: list[str], rows: list[list[Any]]) -> str:
    """An HTML table; numbers right-aligned."""
    def cell(tag: str, value: Any) -> str:
        numeric = isinstance(value, (int, float))
        return f'<{tag}{" class=num" if numeric else ""}>{escape(str(value))}</{tag}>'

    head = "".join(cell("th", h) for h in header)
    body = "".join("<tr>" + "".join(cell("td", v) for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def metrics_table(metrics: dict[str, float]) -> str:
    """Flat metrics: ratios as percentages, counts as they are."""
    rows = [[k, round(100 * v, 2) if isinstance(v, float) and v <= 1.0 else v] for k, v in metrics.items()]
    return table(["metric", "value (% for scores)"], rows)


def per_label_table(result: EvalResult) -> str:
    """Precision, recall, F1 (%) and counts per label."""
    rows = [[label, round(100 * p.precision, 2), round(100 * p.recall, 2), round(100 * p.f1, 2), p.n_gold, p.n_pred]
            for label, p in sorted(result.scores.per_label.items())]
    return table(["label", "precision", "recall", "f1", "gold", "pred"], rows)


def confusion_table(result: EvalResult) -> str:
    """Gold label, predicted label and count of the items found in the right place with the wrong label."""
    counts = type_confusion(result.task, result.examples, result.predictions)
    if not counts:
        return "<p>No item was found in a gold item's place with another label.</p>"
    rows = [[gold, pred, n] for (gold, pred), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    return table(["gold label", "predicted label", "items"], rows)
