"""torch.compile on CPU: does it pay for gplinker's forward? (issue 6 lever: "behind a flag, if it wins")

Model: GPLinkerModel with a BERT-base-sized encoder (random weights) and the NER heads (10 types),
under inference_mode, as in `gplinker predict`. Eager against torch.compile (default inductor
backend) of the whole model, at a first batch shape and then at a second one, since
length-bucketed batches change L from batch to batch. Reports the compile time (first call at a
shape) and the median of the following calls; eager and compiled calls alternate.

    python scripts/bench_compile.py             # B 16, L 128 then L 96, BERT-base sizes
    python scripts/bench_compile.py --smoke     # tiny encoder, seconds (plus the compile)
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from bench_machine import add_huge_pages_flag, machine, setup_like_cli  # scripts/ is on sys.path when a script runs

from gplinker.data.schema import Schema
from gplinker.modeling.model import GPLinkerModel
from gplinker.tasks.ner import NerTask

BASE = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072, vocab_size=21128)
TINY = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, vocab_size=500)


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lengths", default="128,96", help="batch lengths, one after the other")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="tiny encoder, L 16 then 12, 1 repeat")
    add_huge_pages_flag(parser)
    args = parser.parse_args()
    setup_like_cli(args)
    sizes, lengths = BASE, [int(x) for x in args.lengths.split(",")]
    if args.smoke:
        sizes, args.batch, lengths, args.repeats = TINY, 2, [16, 12], 1

    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    task = NerTask(Schema(task="ner", entity_types=[f"t{k}" for k in range(10)]))
    encoder = BertModel(BertConfig(**sizes, max_position_embeddings=512), add_pooling_layer=False)
    model = GPLinkerModel(encoder, task.heads(), "egp", 64).eval()
    compiled = torch.compile(model)

    print(f"# bench_compile: {machine()}")
    print(f"# encoder {sizes['num_hidden_layers']} layers, hidden {sizes['hidden_size']} (random), "
          f"NER heads (10 types), B {args.batch}, inference_mode; median of {args.repeats} calls after the first")
    print("| L | eager ms | compiled ms | compiled / eager | first compiled call (compile) s | max abs diff |")
    print("|---:|---:|---:|---:|---:|---:|")
    ratios = []
    with torch.inference_mode():
        for length in lengths:
            ids = torch.randint(5, sizes["vocab_size"], (args.batch, length))
            mask = torch.ones_like(ids)
            run_eager = lambda ids=ids, mask=mask: model(input_ids=ids, attention_mask=mask).logits  # noqa: E731
            run_compiled = lambda ids=ids, mask=mask: compiled(input_ids=ids, attention_mask=mask).logits  # noqa: E731
            first = seconds(run_compiled)
            eager_out, compiled_out = run_eager(), run_compiled()
            live = eager_out["entities"] > -1e11
            diff = (eager_out["entities"][live] - compiled_out["entities"][live]).abs().max().item()
            eager, comp = [], []
            for _ in range(args.repeats):
                eager.append(seconds(run_eager))
                comp.append(seconds(run_compiled))
            e, c = statistics.median(eager), statistics.median(comp)
            ratios.append(c / e)
            print(f"| {length} | {1000 * e:.0f} | {1000 * c:.0f} | {c / e:.2f} | {first:.1f} | {diff:.1e} |")
    print(f"goal (a flag only if it wins): compiled / eager {min(ratios):.2f}-{max(ratios):.2f}, "
          f"plus the compile time at every new shape")


if __name__ == "__main__":
    main()
