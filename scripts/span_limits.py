"""How many dev gold spans the span limits of model.max_span_length auto would cut (data/span_limits.py).

For each data set: a scratch character tokenizer from the training texts, training windows and
targets as `gplinker train` builds them (the max_length of the shipped config), each span head's
per-channel longest training span and count, then `limits_from_training` (margins SPAN_MARGIN for
the head, LABEL_MARGIN for per-label limits of labels with >= LABEL_MIN_SPANS spans). Printed: the
dev gold span cells that the head's mask limit and the per-label decoding limits would cut, against all dev span cells.
Rows with data under ../shared/data that is absent are skipped.

    python scripts/span_limits.py
    python scripts/span_limits.py --label-margin 0.25 --min-spans 20     # other constants, for comparison
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from bench_machine import machine  # scripts/ is on sys.path when a script runs

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
SETS = [  # name, task, format, train, dev, schema, max_length
    ("CLUENER", "ner", "cluener", "cluener/train.json", "cluener/dev.json", None, 64),
    ("DuIE 2.0 subset", "relation", "duie2", "duie2-subset/train.json", "duie2-subset/dev.json",
     "duie2-subset/duie_schema.json", 256),
    ("DuEE 1.0 (500-line train)", "event", "duee", "duee/train.json", "duee/dev.json", "duee/duee_event_schema.json",
     512),
]


def span_cells(task, examples, encoder):
    """head -> [(channel, tokens)] of every target cell of the span heads over the examples' windows."""
    windows = encoder.encode([e.text for e in examples])
    spans = {h.name: [] for h in task.heads() if h.span_head}
    for w in windows:
        for head, cells in task.targets(examples[w.example_index], w).items():
            if head in spans:
                spans[head] += [(c, j - i + 1) for c, i, j in cells]
    return spans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--margin", type=float, default=None, help="override SPAN_MARGIN")
    parser.add_argument("--label-margin", type=float, default=None, help="override LABEL_MARGIN")
    parser.add_argument("--min-spans", type=int, default=None, help="override LABEL_MIN_SPANS")
    args = parser.parse_args()

    from gplinker.data import span_limits
    from gplinker.data.encoding import WindowEncoder
    from gplinker.data.reading import read_examples
    from gplinker.data.schema import load_duee_schema, load_duie_schema, schema_from_examples
    from gplinker.modeling.encoders import scratch_tokenizer
    from gplinker.tasks import build_task

    if args.margin is not None:
        span_limits.SPAN_MARGIN = args.margin
    if args.label_margin is not None:
        span_limits.LABEL_MARGIN = args.label_margin
    if args.min_spans is not None:
        span_limits.LABEL_MIN_SPANS = args.min_spans
    print(f"# span_limits: {machine()}")
    print(f"# margin {span_limits.SPAN_MARGIN} (head), {span_limits.LABEL_MARGIN} (label), per-label limits for labels "
          f"with >= {span_limits.LABEL_MIN_SPANS} "
          "training spans; spans counted as target cells of the span heads, in tokens")
    print("| data | head | longest training span | mask limit | dev span cells | cut by the mask | "
          "cut by the per-label limits |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, task_name, fmt, train, dev, schema_file, max_length in SETS:
        if not (DATA / train).is_file():
            print(f"| {name} | - | - | - | - | - | skipped: {DATA / train} absent |")
            continue
        train_examples, _ = read_examples(DATA / train, fmt, task_name, skip_invalid=True)
        dev_examples, _ = read_examples(DATA / dev, fmt, task_name, skip_invalid=True)
        if schema_file:
            load = load_duie_schema if task_name == "relation" else load_duee_schema
            schema = load(DATA / schema_file)
        else:
            schema = schema_from_examples(task_name, train_examples)
        task = build_task(task_name, schema)
        tokenizer = scratch_tokenizer(e.text for e in train_examples)
        encoder = WindowEncoder(tokenizer, max_length, 32, char_level=True)
        heads = {h.name: h.channels for h in task.heads() if h.span_head}
        train_cells, dev_cells = span_cells(task, train_examples, encoder), span_cells(task, dev_examples, encoder)
        for head, channels in heads.items():
            longest, counts = [0] * channels, [0] * channels
            for c, n in train_cells[head]:
                longest[c], counts[c] = max(longest[c], n), counts[c] + 1
            limits = span_limits.limits_from_training(longest, counts)
            by_mask = sum(1 for _, n in dev_cells[head] if limits.max_span is not None and n > limits.max_span)
            by_label = sum(1 for c, n in dev_cells[head]
                           if limits.channels[c] is not None and n > limits.channels[c])
            print(f"| {name} | {head} | {max(longest)} | {limits.max_span} | {len(dev_cells[head])} | {by_mask} | "
                  f"{by_label} |")
    print(f"(per-label decoding limit = ceil({1 + span_limits.LABEL_MARGIN} x the label's longest); "
          f"mask limit = ceil({1 + span_limits.SPAN_MARGIN} x the head's longest), e.g. "
          f"{math.ceil((1 + span_limits.SPAN_MARGIN) * 10)} for 10)")


if __name__ == "__main__":
    main()
