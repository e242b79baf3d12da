"""Light encoders (issue 15): training windows/s against the scratch BERT at the same batch, and the configs' scores.

Speed: one training step (forward, sparse ZLPR loss, backward, AdamW) of GPLinkerModel with the
NER heads of CLUENER (10 types) on the same batch of CLUENER-sized windows (B 32, L 52, 3 spans
each), for the scratch BERT of configs/cluener.yaml, the bilstm of configs/cluener-light.yaml
(model.light) and the dgcnn and bilstm at hidden 128 (and the configured encoder at each `--widths`). Steps
alternate between the models, so load changes on the machine hit all of them; medians after warm-up steps.
Goal: light / scratch >= 3x windows/s. Each row also counts the floating-point operations of one forward and
backward (torch.utils.flop_counter, with the LSTM layers' formula below), which is what the step time follows.

Scores: `gplinker train` of configs/<task>-light.yaml (cluener, duie, duee), as configured, with
the wall time of the whole run (data reading and evaluations included) and the dev scores of
the best evaluation. Goals (2 CPU cores): CLUENER span F1 >= 72 and official score >= 70 in
<= 20 min; DuIE 2.0 subset triple F1 >= 0.40 in <= 20 min; DuEE official F1 >= 25 in <= 15 min.

    python scripts/bench_light.py --speed                   # windows/s table, a few minutes
    python scripts/bench_light.py --speed --set model.light.hidden_size=256   # another width as the configured one
    python scripts/bench_light.py --speed --widths 192,256      # and rows at those widths
    python scripts/bench_light.py --train cluener           # one config's run and its scores
    python scripts/bench_light.py --train cluener --set model.encoder=bilstm
    python scripts/bench_light.py --smoke                   # tiny shapes and synthetic data: checks the script runs
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

import torch
from bench_machine import add_huge_pages_flag, machine, setup_like_cli  # scripts/ is on sys.path when a script runs
from torch.utils.flop_counter import FlopCounterMode

from gplinker.config import LightConfig, ScratchConfig, load_config
from gplinker.data.batching import collate
from gplinker.data.encoding import SPECIAL, Window
from gplinker.data.schema import Schema
from gplinker.modeling.encoders import scratch_encoder
from gplinker.modeling.light import LightEncoder, light_architecture
from gplinker.modeling.model import GPLinkerModel
from gplinker.tasks.ner import NerTask

CONFIGS = Path(__file__).resolve().parents[1] / "gplinker" / "configs"
VOCAB = 3500  # about the CLUENER character vocabulary (min_char_count 2)
# task -> (metric key, goal, minutes, what)
GOALS = {
    "cluener": [("span_f1", 0.72, 20, "CLUENER dev span F1"), ("cluener_f1", 0.70, 20, "CLUENER official score")],
    "duie": [("triple_f1", 0.40, 20, "DuIE 2.0 subset dev triple F1")],
    "duee": [("duee_f1", 0.25, 15, "DuEE official F1 on full dev")],
}


def ner_windows(batch: int, length: int, vocab: int, seed: int = 0) -> list[Window]:
    """Full-length windows of random characters with 3 random spans each (10 types)."""
    rng = random.Random(seed)
    windows = []
    for b in range(batch):
        ids = [2] + [rng.randrange(5, vocab) for _ in range(length - 2)] + [3]
        spans = [SPECIAL] + [(k, k + 1) for k in range(length - 2)] + [SPECIAL]
        cells = set()
        for _ in range(3):
            start = rng.randrange(1, length - 6)
            cells.add((rng.randrange(10), start, start + rng.randrange(4)))
        windows.append(Window(example_index=b, input_ids=ids, char_spans=spans, targets={"entities": sorted(cells)}))
    return windows


def encoders(smoke: bool, overrides: list[str], widths: list[int]) -> dict[str, object]:
    """The scratch BERT, the encoder of configs/cluener-light.yaml (with --set overrides), both light encoders
    at hidden 128 (the dgcnn's size in that config's header) and the configured one at each of `widths`, with the
    config's other sizes (tiny ones with --smoke)."""
    scratch_cfg = load_config(CONFIGS / "cluener.yaml").model.scratch
    configured = load_config(CONFIGS / "cluener-light.yaml", overrides).model
    light = configured.light
    if smoke:
        scratch_cfg = ScratchConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, max_position=64)
        light = LightConfig(embedding_dim=16, hidden_size=48, dilations=[1, 2], layers=1)
    narrow = 32 if smoke else 128
    vocab = 200 if smoke else VOCAB
    out: dict[str, object] = {"scratch BERT (configs/cluener.yaml)": scratch_encoder(scratch_cfg, vocab)}
    shipped = "configs/cluener-light.yaml" + "".join(f" --set {o}" for o in overrides)
    for name, hidden, label in ((configured.encoder, light.hidden_size, shipped),
                                ("bilstm", narrow, f"hidden {narrow}"), ("dgcnn", narrow, f"hidden {narrow}"),
                                *((configured.encoder, w, f"hidden {w}") for w in widths)):
        arch = light_architecture(name, dataclasses.replace(light, hidden_size=hidden), vocab)
        out[f"{name} ({label})"] = LightEncoder(arch)
    return out


def lstm_layer_flops(input_shape: list[int], w_ih: list[int], w_hh: list[int], *_args: object,
                     **_kwargs: object) -> int:
    """One LSTM layer over T x B steps: the input and recurrent products of its 4 gates, 2 T B 4H (I + H)
    (w_ih is (4H, I), w_hh (4H, H)); nn.LSTM runs as one aten op on the CPU, which the counter has no formula for."""
    return 2 * input_shape[0] * input_shape[1] * w_ih[0] * (w_ih[1] + w_hh[1])


def lstm_layer_backward_flops(input_shape: list[int], w_ih: list[int], w_hh: list[int], *_args: object,
                              **_kwargs: object) -> int:
    """Its backward: the gradients of the inputs and of the weights, each a product as large as the forward."""
    return 2 * lstm_layer_flops(input_shape, w_ih, w_hh)


def step_gflops(model: torch.nn.Module, batch: dict) -> float:
    """Floating-point operations (10^9) of one forward and backward of `model` on `batch`; the gradients are cleared."""
    aten = torch.ops.aten
    mapping = {aten.mkldnn_rnn_layer: lstm_layer_flops, aten.mkldnn_rnn_layer_backward: lstm_layer_backward_flops}
    with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        out = model(batch["input_ids"], batch["attention_mask"], labels=batch["labels"])
        assert out.loss is not None
        out.loss.backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / 1e9


def speed(args: argparse.Namespace) -> None:
    """Median training-step time of each encoder on the same batch, steps interleaved."""
    torch.manual_seed(0)
    task = NerTask(Schema(task="ner", entity_types=[f"t{k}" for k in range(10)]))
    batch = collate(ner_windows(args.batch, args.length, 200 if args.smoke else VOCAB), 0, {"entities": 10})
    models = {}
    widths = [int(w) for w in args.widths.split(",") if w] if args.widths else []
    for name, encoder in encoders(args.smoke, args.set, widths).items():
        model = GPLinkerModel(encoder, task.heads(), "egp", 16 if args.smoke else 64).train()
        models[name] = (model, torch.optim.AdamW(model.parameters(), lr=1e-3))
    gflops = {name: step_gflops(model, batch) for name, (model, _) in models.items()}
    times: dict[str, list[float]] = {name: [] for name in models}  # wall seconds per step
    cpu: dict[str, list[float]] = {name: [] for name in models}  # CPU seconds of this process per step
    for step in range(args.warmup + args.steps):
        for name, (model, opt) in models.items():
            t0, c0 = time.perf_counter(), time.process_time()
            out = model(batch["input_ids"], batch["attention_mask"], labels=batch["labels"])
            assert out.loss is not None
            out.loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            if step >= args.warmup:
                times[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
    base = statistics.median(next(iter(times.values())))
    base_cpu = statistics.median(next(iter(cpu.values())))
    print(f"\ntraining step, B {args.batch}, L {args.length}, NER heads of 10 types, median of {args.steps} steps "
          f"(interleaved; load avg {' '.join(f'{x:.1f}' for x in os.getloadavg())})\n")
    base_gflops = next(iter(gflops.values()))
    print("| encoder | parameters M | step median s | windows/s | vs scratch BERT | CPU s | vs scratch (CPU) | "
          "GFLOP (fwd+bwd) | vs scratch (GFLOP) | goal | met |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, values in times.items():
        median = statistics.median(values)
        params = sum(p.numel() for p in models[name][0].parameters()) / 1e6
        light = not name.startswith("scratch")
        ratio, cpu_median = base / median, statistics.median(cpu[name])
        print(f"| {name} | {params:.2f} | {median:.3f} | {args.batch / median:.1f} | {ratio:.2f}x | {cpu_median:.3f} | "
              f"{base_cpu / cpu_median:.2f}x | {gflops[name]:.2f} | {base_gflops / gflops[name]:.2f}x | "
              f"{'>= 3x' if light else '—'} | "
              f"{('yes' if ratio >= 3 else 'no') if light else '—'} |")


def train_scores(args: argparse.Namespace) -> None:
    """Train configs/<task>-light.yaml (or the smoke data) and print its wall time and best dev scores."""
    from gplinker.commands.train import train

    with tempfile.TemporaryDirectory() as tmp:
        overrides = list(args.set)
        if args.smoke:
            config = smoke_data(Path(tmp))
            task_goals = GOALS["cluener"]
        else:
            config = CONFIGS / f"{args.train}-light.yaml"
            task_goals = GOALS[args.train]
        out = args.keep or str(Path(tmp) / "run")
        cfg = load_config(config, [f"train.output_dir={out}", *overrides])
        t0 = time.perf_counter()
        report = train(cfg, overwrite=True)
        minutes = (time.perf_counter() - t0) / 60
    evaluations = [h for h in report.fit.history if h.get("score") is not None]
    best = max(evaluations, key=lambda h: h["score"]) if evaluations else {"step": 0}
    print(f"\n`gplinker train {config.name if not args.smoke else 'smoke.yaml'}` "
          f"{' '.join('--set ' + o for o in overrides)}: encoder {cfg.model.encoder}, {report.fit.steps} steps, "
          f"{minutes:.1f} min wall, best dev evaluation at step {best['step']} "
          f"(load avg {' '.join(f'{x:.1f}' for x in os.getloadavg())})\n")
    print("| figure | value | minutes | goal | met |")
    print("|---|---|---|---|---|")
    for key, goal, limit, what in task_goals:
        value = best.get(key)
        shown = f"{100 * value:.2f}" if value is not None else "—"
        met = value is not None and value >= goal and minutes <= limit
        print(f"| {what} | {shown} | {minutes:.1f} | >= {100 * goal:g} in <= {limit} min | {'yes' if met else 'no'} |")
    curve = ", ".join(f"step {h['step']}: {100 * h['score']:.2f}" for h in evaluations)
    print(f"\ndev main score by evaluation: {curve}")


def smoke_data(tmp: Path) -> Path:
    """A tiny synthetic NER set (written here) and a config training a tiny dgcnn on it."""
    import json

    rng = random.Random(0)
    rows = []
    for _ in range(24):
        name = "".join(rng.choice("张王李赵") for _ in range(2))
        place = rng.choice(["北京", "上海", "杭州"])
        text = f"{name}去了{place}。"
        rows.append({"text": text, "entities": [{"start": 0, "end": 2, "type": "person"},
                                                  {"start": 4, "end": 6, "type": "loc"}]})
    data = tmp / "smoke.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    config = tmp / "smoke.yaml"
    config.write_text(f"task: ner\ndata: {{train: {data}, dev: {data}, max_length: 16, stride: 4}}\n"
                      "model: {encoder: dgcnn, head_size: 8, light: {embedding_dim: 16, hidden_size: 16, "
                      "dilations: [1, 2]}}\ntrain: {max_steps: 4, batch_size: 8, lr: 1.0e-2, eval_every: 2}\n",
                      encoding="utf-8")
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed", action="store_true", help="the windows/s table")
    parser.add_argument("--train", choices=sorted(GOALS), help="train configs/<task>-light.yaml and print its scores")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override: of the run with --train, of the configured encoder with --speed")
    parser.add_argument("--keep", help="train.output_dir for --train (default: a temporary dir, removed)")
    parser.add_argument("--widths", default="", help="comma-separated hidden sizes: more rows of the configured "
                        "encoder with --speed")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--length", type=int, default=52)
    parser.add_argument("--steps", type=int, default=9, help="timed steps of each encoder (median reported)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes and synthetic data: checks the script runs")
    add_huge_pages_flag(parser)
    args = parser.parse_args()
    setup_like_cli(args)
    if args.smoke:
        args.speed, args.batch, args.length, args.steps, args.warmup = True, 4, 16, 2, 1
    print(f"# bench_light: {machine()}")
    if args.speed:
        speed(args)
    if args.train or args.smoke:
        train_scores(args)


if __name__ == "__main__":
    main()
