"""A full gplinker training step against an encoder-only step: how close the heads and loss stay to the floor.

Full step: GPLinkerModel (BERT encoder + relation heads: entity head of 2 channels, head/tail link
heads of 48 predicates each) on a collated batch with sparse targets (3 triples per window), ZLPR
loss, backward, AdamW step. Encoder-only step: the same encoder, loss = mean(last_hidden_state²),
backward, AdamW step over the encoder's parameters. Same batch, dropout on in both. Steps of the two
kinds alternate, so load changes on the machine hit both; medians after warm-up steps.
Goal (issue 6): full / encoder-only <= 1.10 with a BERT-base-sized encoder (random weights), L 128.

    python scripts/bench_train.py                 # BERT-base sizes, B 8, L 128, median of 7 steps
    python scripts/bench_train.py --smoke         # tiny shapes, a few seconds
    python scripts/bench_train.py --device cuda --amp bf16 --batch 32   # the GPU figure of issue 17
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import torch
from bench_machine import (  # scripts/ is on sys.path when a script runs
    add_device_flag,
    add_huge_pages_flag,
    machine,
    setup_like_cli,
    synchronize,
)

from gplinker.data.batching import collate
from gplinker.data.encoding import SPECIAL, Window
from gplinker.data.schema import Schema
from gplinker.modeling.model import GPLinkerModel
from gplinker.tasks.relation import RelationTask

BASE = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072, vocab_size=21128)
TINY = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, vocab_size=500)


def relation_windows(batch: int, length: int, channels: int, vocab: int, seed: int = 0) -> list[Window]:
    """Full-length windows with 3 random triples each, as task.targets would place them."""
    rng = random.Random(seed)
    windows = []
    for b in range(batch):
        ids = [2] + [rng.randrange(5, vocab) for _ in range(length - 2)] + [3]
        spans = [SPECIAL] + [(k, k + 1) for k in range(length - 2)] + [SPECIAL]
        entities, heads, tails = set(), set(), set()
        for _ in range(3):
            sh = rng.randrange(1, length - 8)
            st = sh + rng.randrange(4)
            oh = rng.randrange(1, length - 8)
            ot = oh + rng.randrange(4)
            ch = rng.randrange(channels)
            entities |= {(0, sh, st), (1, oh, ot)}
            heads.add((ch, sh, oh))
            tails.add((ch, st, ot))
        targets = {"entities": sorted(entities), "heads": sorted(heads), "tails": sorted(tails)}
        windows.append(Window(example_index=b, input_ids=ids, char_spans=spans, targets=targets))
    return windows


def timed(fn, device: torch.device) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process, all threads) of one call, its device work included."""
    synchronize(device)
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    synchronize(device)
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--predicates", type=int, default=48)
    parser.add_argument("--steps", type=int, default=7, help="timed steps of each kind (median reported)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--smoke", action="store_true", help="tiny encoder and shapes, 2 steps: checks the script runs")
    parser.add_argument("--amp", choices=["off", "bf16", "fp16"], default="off", help="autocast of both steps")
    add_device_flag(parser)
    add_huge_pages_flag(parser)
    args = parser.parse_args()
    setup_like_cli(args)
    device = torch.device(args.device)
    sizes = BASE
    if args.smoke:
        sizes, args.batch, args.length, args.predicates, args.steps, args.warmup = TINY, 2, 16, 4, 2, 1

    from transformers import BertConfig, BertModel

    from gplinker.devices import amp_context, to_device

    torch.manual_seed(0)
    config = BertConfig(**sizes, max_position_embeddings=512)
    task = RelationTask(Schema(task="relation", predicates=[f"p{k}" for k in range(args.predicates)]))
    model = GPLinkerModel(BertModel(config, add_pooling_layer=False), task.heads(), "egp", 64).to(device).train()
    windows = relation_windows(args.batch, args.length, args.predicates, sizes["vocab_size"])
    channels = {h.name: h.channels for h in task.heads()}
    full_opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    encoder_opt = torch.optim.AdamW(model.encoder.parameters(), lr=1e-5)
    scaler = torch.amp.GradScaler(device.type, enabled=args.amp == "fp16")

    def full_step() -> None:
        batch = to_device(collate(windows, 0, channels), device)  # sparse targets built per batch, as in training
        with amp_context(args.amp, device):
            loss = model(**batch).loss
        scaler.scale(loss).backward()
        scaler.step(full_opt)
        scaler.update()
        full_opt.zero_grad(set_to_none=True)

    def encoder_step() -> None:
        batch = to_device(collate(windows, 0), device)
        with amp_context(args.amp, device):
            hidden = model.encoder(**batch).last_hidden_state  # (B, L, D)
            loss = hidden.float().pow(2).mean()
        scaler.scale(loss).backward()
        scaler.step(encoder_opt)
        scaler.update()
        encoder_opt.zero_grad(set_to_none=True)

    for _ in range(args.warmup):
        full_step()
        encoder_step()
    full, encoder = [], []  # (wall, cpu) per step; the two kinds alternate
    for _ in range(args.steps):
        full.append(timed(full_step, device))
        encoder.append(timed(encoder_step, device))

    params = sum(p.numel() for p in model.encoder.parameters()) / 1e6
    head_params = sum(p.numel() for p in model.heads.parameters()) / 1e6
    print(f"# bench_train: {machine()}")
    print(f"# encoder {sizes['num_hidden_layers']} layers, hidden {sizes['hidden_size']} "
          f"({params:.1f}M params, random); heads {head_params:.2f}M params; B {args.batch}, L {args.length}, "
          f"{args.predicates} predicates; device {device}, amp {args.amp}; "
          f"median of {args.steps} steps after {args.warmup} warm-up")
    print("| step | wall median s | wall min s | wall max s | CPU median s | ratio (wall) | ratio (CPU) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    stats = {}
    for label, runs in (("encoder-only (mean h², backward, AdamW)", encoder),
                        ("gplinker relation step (heads, sparse ZLPR, backward, AdamW)", full)):
        wall, cpu = [w for w, _ in runs], [c for _, c in runs]
        stats[label] = (statistics.median(wall), statistics.median(cpu))
        base = stats["encoder-only (mean h², backward, AdamW)"]
        print(f"| {label} | {stats[label][0]:.3f} | {min(wall):.3f} | {max(wall):.3f} | {stats[label][1]:.3f} | "
              f"{stats[label][0] / base[0]:.3f} | {stats[label][1] / base[1]:.3f} |")
    paired = statistics.median(f[0] / e[0] for f, e in zip(full, encoder))  # neighbours in time share the load
    print(f"median of paired wall ratios (each full step / the encoder-only step right after it): {paired:.3f}")
    print(f"goal <= 1.10: {'met' if paired <= 1.10 else 'NOT met'} ({paired:.3f}, paired wall ratio)")


if __name__ == "__main__":
    main()
