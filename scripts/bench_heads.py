"""Benchmark the pointer heads plus the sparse ZLPR loss (forward + backward): gplinker vs bert4torch.

Compared code: gplinker.modeling.pointer.EfficientGlobalPointer + losses.pointer_loss (given the
head's PairScores, so the loss back-propagates into the EGP parts) against the bert4torch package
from PyPI, imported as is: bert4torch.layers.EfficientGlobalPointer and
bert4torch.losses.SparseMultilabelCategoricalCrossentropy(mask_zero=True), reduced like
pointer_loss (sum over heads, mean over batch), as bert4torch's own GPLinker example does.

Shapes: duie (B 16, L 128, hidden 768; EGP heads of 2 entity channels with RoPE and tril mask, plus
48 head and 48 tail channels without either) and cluener (B 32, L 64, hidden 768, 10 types);
head_size 64. Lengths vary within the batch; each sample has 1-4 gold triples / entities.
Token 0 ([CLS]) is masked on both sides: bert4torch's mask_zero reserves cell 0 as the padding
index of its sparse labels, so cell (0, 0) must not count as a negative for the losses to agree.

Method.
1. Parity, in this process: our weights are copied into bert4torch's modules (their p_dense takes
   q then k as halves where ours interleaves them; their q_dense pairs are (start, end) where ours
   are (end, start)), then logits on unmasked cells, the loss and d loss / d hidden must agree
   within 1e-5 (float32). bert4torch fills padding with -inf and ours with -1e12, so masked cells
   are compared only as "masked".
2. Time and memory: every (implementation, shape) runs in a FRESH subprocess, in --rounds rounds
   whose order alternates, each running --warmup steps then --repeats measured steps. Reported:
   median step time over all measured steps, and the median peak memory of a step.
   Peak memory on CPU = peak RSS increase of one step over the RSS just before it: the worker runs
   with MALLOC_MMAP_THRESHOLD_=65536, so every tensor above 64 KiB is its own mmap that is returned
   to the OS when freed (glibc's adaptive threshold would otherwise keep freed blocks resident), then
   before each step it calls malloc_trim(0), reads VmRSS, and resets the kernel's high-water mark
   with `echo 5 > /proc/self/clear_refs`; after the step VmHWM - VmRSS(before) is the peak. The
   kernel updates the high-water mark before every unmap, so short-lived temporaries count.
   An extra row times gplinker under torch.autocast(bf16) (no parity check: bf16 is not 1e-5).
   The forward computes every head's logits first and then the losses, as GPLinkerModel does.
   With --device cuda everything runs on the GPU: times are taken after torch.cuda.synchronize(), and
   peak memory is torch.cuda.max_memory_allocated() during the step minus the memory allocated before.

Environment. bert4torch needs torchvision, and PyPI's torchvision does not import beside torch
2.13.0, so the comparison runs in its own venv (scripts/bench_env.sh makes it):

    python -m venv /tmp/venv-bench
    /tmp/venv-bench/bin/pip install torch==2.14.1 torchvision==0.29.1
    /tmp/venv-bench/bin/pip install bert4torch requests tokenizers httpx regex
    /tmp/venv-bench/bin/python scripts/bench_heads.py            # parity, then the table

This script puts the repo root on sys.path itself, so gplinker need not be installed in the venv
(its heads and loss need only torch). Without bert4torch it says so and times gplinker alone:

    python scripts/bench_heads.py --smoke     # tiny shapes, 1 round of 2 steps: CI keeps it alive
    python scripts/bench_heads.py --device cuda   # on a GPU (scripts/gpu_check.sh runs it)
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import gc
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from gplinker.modeling.losses import pointer_loss  # noqa: E402
from gplinker.modeling.pointer import EfficientGlobalPointer, PairScores  # noqa: E402

IMPLS = ("gplinker", "bert4torch", "gplinker-bf16")  # the last: bf16 autocast, timed only


@dataclass(frozen=True)
class Shape:
    """One benchmark shape: batch, padded length, hidden size and the EGP heads (channels, rope, tril)."""

    name: str
    batch: int
    length: int
    hidden: int
    head_size: int
    heads: tuple[tuple[int, bool, bool], ...]
    task: str  # "relation": entity head + head/tail heads per predicate; "ner": one head per type


SHAPES = {
    "duie": Shape("duie", 16, 128, 768, 64, ((2, True, True), (48, False, False), (48, False, False)), "relation"),
    "cluener": Shape("cluener", 32, 64, 768, 64, ((10, True, True),), "ner"),
}
SMOKE_SHAPES = {
    "duie-smoke": Shape(
        "duie-smoke", 2, 12, 16, 8, ((2, True, True), (3, False, False), (3, False, False)), "relation"
    ),
    "cluener-smoke": Shape("cluener-smoke", 2, 10, 16, 8, ((4, True, True),), "ner"),
}


# --- inputs ---------------------------------------------------------------------------------------


def random_span(rng: random.Random, length: int) -> tuple[int, int]:
    """A span (start, end) inclusive of 1-4 tokens inside the real tokens 1 .. length - 1."""
    start = rng.randint(1, length - 1)
    return start, min(length - 1, start + rng.randint(0, 3))


def gold_cells(shape: Shape, lengths: list[int], seed: int) -> list[set[tuple[int, int, int]]]:
    """Per head, the gold cells (b, channel, i * L + j): a few triples / entities per sample."""
    rng, n = random.Random(seed), shape.length
    cells: list[set[tuple[int, int, int]]] = [set() for _ in shape.heads]
    for b, length in enumerate(lengths):
        for _ in range(rng.randint(1, 4)):
            if shape.task == "relation":  # (subject, predicate, object) as GPLinker labels it
                (si, sj), (oi, oj), p = (
                    random_span(rng, length), random_span(rng, length), rng.randrange(shape.heads[1][0])
                )
                cells[0] |= {(b, 0, si * n + sj), (b, 1, oi * n + oj)}
                cells[1].add((b, p, si * n + oi))
                cells[2].add((b, p, sj * n + oj))
            else:
                i, j = random_span(rng, length)
                cells[0].add((b, rng.randrange(shape.heads[0][0]), i * n + j))
    return cells


def positives_tensor(cells: set[tuple[int, int, int]], batch: int, channels: int, pad: int) -> Tensor:
    """(B, C, K) flat gold cells, padded with `pad` (gplinker -1, bert4torch 0 under mask_zero)."""
    per_row: dict[tuple[int, int], list[int]] = {}
    for b, c, cell in sorted(cells):
        per_row.setdefault((b, c), []).append(cell)
    k = max([1] + [len(v) for v in per_row.values()])
    out = torch.full((batch, channels, k), pad, dtype=torch.long)
    for (b, c), row in per_row.items():
        out[b, c, : len(row)] = torch.tensor(row)
    return out


def make_inputs(shape: Shape, seed: int, device: torch.device = torch.device("cpu"),
                ) -> tuple[Tensor, Tensor, list[set[tuple[int, int, int]]]]:
    """Hidden states (B, L, D), mask (B, L) long with token 0 and padding off, gold cells per head."""
    rng = random.Random(seed)
    lengths = [shape.length] + [rng.randint(max(4, shape.length // 4), shape.length) for _ in range(shape.batch - 1)]
    mask = (torch.arange(shape.length)[None, :] < torch.tensor(lengths)[:, None]).long()  # (B, L)
    mask[:, 0] = 0  # [CLS]: see the module docstring
    hidden = torch.randn(shape.batch, shape.length, shape.hidden, generator=torch.Generator().manual_seed(seed))
    return hidden.to(device), mask.to(device), gold_cells(shape, lengths, seed)


# --- the two implementations ----------------------------------------------------------------------


def gplinker_heads(shape: Shape, seed: int) -> nn.ModuleList:
    """gplinker's EGP heads for the shape, seeded."""
    torch.manual_seed(seed)
    return nn.ModuleList(
        EfficientGlobalPointer(shape.hidden, c, shape.head_size, rope=rope, tril_mask=tril)
        for c, rope, tril in shape.heads
    )


def bert4torch_heads(ours: nn.ModuleList) -> nn.ModuleList:
    """bert4torch EGP heads carrying exactly our weights, mapped to their layout."""
    from bert4torch.layers import EfficientGlobalPointer as TheirEGP

    theirs = nn.ModuleList()
    for egp in ours:
        d, h = egp.head_size, egp.heads
        head = TheirEGP(egp.p_dense.in_features, h, d, RoPE=egp.rope, tril_mask=egp.tril_mask)
        # ours: p_dense rows interleave (q_0, k_0, q_1, ...); theirs: q = rows [0, d), k = rows [d, 2d)
        halves = torch.cat([torch.arange(0, 2 * d, 2), torch.arange(1, 2 * d, 2)])
        # ours: q_dense channel 2h scores the end j, 2h+1 the start i; theirs: 2h start, 2h+1 end
        swap = torch.arange(2 * h).view(h, 2).flip(1).flatten()
        with torch.no_grad():
            head.p_dense.weight.copy_(egp.p_dense.weight[halves])
            head.p_dense.bias.copy_(egp.p_dense.bias[halves])
            head.q_dense.weight.copy_(egp.q_dense.weight[swap][:, halves])  # input columns follow p_dense rows
            head.q_dense.bias.copy_(egp.q_dense.bias[swap])
        theirs.append(head)
    return theirs


def build(impl: str, shape: Shape, seed: int, device: torch.device = torch.device("cpu")):
    """(heads, loss function of (head outputs list, targets list), targets, hidden, mask) for one implementation."""
    hidden, mask, cells = make_inputs(shape, seed, device)
    ours = gplinker_heads(shape, seed)
    if impl.startswith("gplinker"):
        targets = [positives_tensor(c, shape.batch, ch, -1).to(device) for c, (ch, _, _) in zip(cells, shape.heads)]
        return ours.to(device), gplinker_loss, targets, hidden, mask
    targets = [positives_tensor(c, shape.batch, ch, 0).to(device) for c, (ch, _, _) in zip(cells, shape.heads)]
    return bert4torch_heads(ours).to(device), bert4torch_loss_fn(), targets, hidden, mask


def gplinker_loss(scores: list[PairScores], targets: list[Tensor]) -> Tensor:
    """gplinker: pointer_loss per head's PairScores, summed over heads (as GPLinkerModel does)."""
    return sum(pointer_loss(x, t) for x, t in zip(scores, targets))


def bert4torch_loss_fn():
    """bert4torch: their sparse loss per (B, C) row on flat cells, summed over channels, mean over batch."""
    from bert4torch.losses import SparseMultilabelCategoricalCrossentropy

    sparse = SparseMultilabelCategoricalCrossentropy(mask_zero=True)

    def loss(logits: list[Tensor], targets: list[Tensor]) -> Tensor:
        return sum(sparse(x.flatten(2), t).sum(dim=1).mean() for x, t in zip(logits, targets))

    return loss


def step(heads: nn.ModuleList, loss_fn, targets: list[Tensor], hidden: Tensor, mask: Tensor, bf16: bool = False):
    """One forward + loss + backward from fresh gradients; returns (loss, head outputs) to be dropped by the caller."""
    hidden.grad = None
    for p in heads.parameters():
        p.grad = None
    with torch.autocast(hidden.device.type, dtype=torch.bfloat16, enabled=bf16):
        outputs = [head(hidden, mask) for head in heads]  # every head first, as GPLinkerModel computes them
        loss = loss_fn(outputs, targets)
    loss.backward()
    return loss, outputs


def logits_of(output: PairScores | Tensor) -> Tensor:
    """The logits (B, C, L, L) of a head's output: gplinker's heads return PairScores, bert4torch's a tensor."""
    return output.logits if isinstance(output, PairScores) else output


# --- parity ---------------------------------------------------------------------------------------


def check_parity(shape: Shape, seed: int, device: torch.device = torch.device("cpu")) -> str:
    """Assert both implementations agree on unmasked logits, loss and d loss / d hidden (float32)."""
    results = {}
    for impl in IMPLS[:2]:
        heads, loss_fn, targets, hidden, mask = build(impl, shape, seed, device)
        hidden.requires_grad_(True)
        loss, outputs = step(heads, loss_fn, targets, hidden, mask)
        results[impl] = (loss.detach(), [logits_of(x).detach() for x in outputs], hidden.grad)
    (loss_a, logits_a, grad_a), (loss_b, logits_b, grad_b) = results["gplinker"], results["bert4torch"]
    _, mask, _ = make_inputs(shape, seed, device)
    worst = 0.0
    for (_, _, tril), a, b in zip(shape.heads, logits_a, logits_b):
        valid = mask.bool()[:, None, :, None] & mask.bool()[:, None, None, :]  # (B, 1, L, L)
        if tril:
            valid = valid & torch.ones(shape.length, shape.length, dtype=torch.bool, device=device).triu()
        valid = valid.expand_as(a)
        torch.testing.assert_close(a[valid], b[valid], rtol=1e-5, atol=1e-5)
        assert (a[~valid] <= -1e11).all() and (b[~valid] <= -1e11).all(), "masked cells must be masked on both sides"
        worst = max(worst, (a[valid] - b[valid]).abs().max().item())
    torch.testing.assert_close(loss_a, loss_b, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad_a, grad_b, rtol=1e-5, atol=1e-5)
    return (
        f"parity {shape.name}: loss {loss_a.item():.6f} vs {loss_b.item():.6f}; max |logit diff| {worst:.2e}; "
        f"max |d hidden diff| {(grad_a - grad_b).abs().max().item():.2e}"
    )


# --- worker: one (implementation, shape) in a fresh process -----------------------------------------


def status_kib(field: str) -> int:
    """A 'kB' field of /proc/self/status (VmRSS, VmHWM)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where that is not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def worker(impl: str, shape: Shape, warmup: int, repeats: int, seed: int, threads: int,
           device: torch.device = torch.device("cpu")) -> dict:
    """Time `repeats` steps after `warmup`; peak memory increase per step in bytes (RSS on the CPU, allocated
    memory on CUDA; None if unmeasurable)."""
    if threads:
        torch.set_num_threads(threads)
    cuda = device.type == "cuda"
    heads, loss_fn, targets, hidden, mask = build(impl, shape, seed, device)
    hidden.requires_grad_(True)
    bf16 = impl.endswith("bf16")
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except OSError:
        trim = lambda _: None  # noqa: E731
    for _ in range(warmup):
        out = step(heads, loss_fn, targets, hidden, mask, bf16)
        del out
    times, peaks = [], []
    for _ in range(repeats):
        hidden.grad = None
        for p in heads.parameters():
            p.grad = None
        gc.collect()
        if cuda:
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            before, can_reset = torch.cuda.memory_allocated(device), True
        else:
            trim(0)
            before = status_kib("VmRSS") * 1024
            can_reset = reset_peak_rss()
        start = time.perf_counter()
        loss, outputs = step(heads, loss_fn, targets, hidden, mask, bf16)
        if cuda:
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
        peak = torch.cuda.max_memory_allocated(device) if cuda else status_kib("VmHWM") * 1024
        peaks.append(peak - before if can_reset else None)
        assert torch.isfinite(loss).item() and torch.isfinite(hidden.grad).all().item()
        del loss, outputs
    return {"impl": impl, "shape": shape.name, "times": times, "peaks": peaks, "threads": torch.get_num_threads()}


def run_worker(impl: str, shape: str, args) -> dict:
    """Run one worker in a fresh interpreter and return its JSON result."""
    cmd = [
        sys.executable, str(Path(__file__).resolve()), "--worker", impl, "--shapes", shape,
        "--warmup", str(args.warmup), "--repeats", str(args.repeats), "--seed", str(args.seed),
        "--threads", str(args.threads), "--device", args.device,
    ]
    if args.smoke:
        cmd.append("--smoke")
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"worker {impl}/{shape} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- report ---------------------------------------------------------------------------------------


def bert4torch_status() -> str | None:
    """None if bert4torch's EGP and sparse loss import here, else why not."""
    try:
        import bert4torch.layers  # noqa: F401
        import bert4torch.losses  # noqa: F401
    except Exception as err:  # any import failure (missing torchvision, deps, ...) means: skip it
        return f"{type(err).__name__}: {err}".splitlines()[0]
    return None


def gpu_name(device: torch.device) -> str:
    """The device, with the GPU's name on CUDA."""
    return f"{device} ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else str(device)


def load_average() -> str:
    """1/5/15-minute load averages, from /proc/loadavg."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def table(results: list[dict], shapes: list[str], impls: list[str]) -> list[str]:
    """Rows: shape, implementation, median ms, spread of per-process medians, peak MiB, ratios."""
    rows = [
        "| shape | implementation | fwd+bwd ms (median) | per-process medians ms | peak MiB (median) | "
        "speed-up vs bert4torch | memory vs bert4torch |",
        "|---|---|---|---|---|---|---|",
    ]
    for shape in shapes:
        stats = {}
        for impl in impls:
            mine = [r for r in results if r["impl"] == impl and r["shape"] == shape]
            times = [t for r in mine for t in r["times"]]
            peaks = [p for r in mine for p in r["peaks"] if p is not None]
            per_proc = [statistics.median(r["times"]) * 1e3 for r in mine]
            stats[impl] = (
                statistics.median(times) * 1e3,
                f"{min(per_proc):.1f}-{max(per_proc):.1f}",
                statistics.median(peaks) / 2**20 if peaks else float("nan"),
            )
        for impl in impls:
            ms, spread, mib = stats[impl]
            speed = mem = "-"
            if impl != "bert4torch" and "bert4torch" in stats:
                speed = f"{stats['bert4torch'][0] / ms:.2f}x"
                mem = f"{mib / stats['bert4torch'][2]:.2f}x"
            rows.append(f"| {shape} | {impl} | {ms:.1f} | {spread} | {mib:.1f} | {speed} | {mem} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny shapes, 1 round of 1 warmup + 2 steps, no bf16 (CI)")
    parser.add_argument("--shapes", default=None, help="comma-separated shape names (default: all of the mode)")
    parser.add_argument("--rounds", type=int, default=3, help="fresh processes per (implementation, shape)")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured steps per process")
    parser.add_argument("--repeats", type=int, default=10, help="measured steps per process")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads per worker (0: torch's default); 1 by default because on a shared "
                             "2-core machine 2 OpenMP threads mostly measure scheduler stalls")
    parser.add_argument("--gplinker-only", action="store_true", help="do not run bert4torch even if importable")
    parser.add_argument("--no-bf16", action="store_true", help="skip the gplinker bf16-autocast row")
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda, ...)")
    parser.add_argument("--worker", choices=IMPLS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.smoke:  # two fresh workers: most of the time is their `import torch`
        args.rounds, args.warmup, args.repeats, args.no_bf16 = 1, 1, 2, True
    catalogue = SMOKE_SHAPES if args.smoke else SHAPES
    shapes = args.shapes.split(",") if args.shapes else list(catalogue)

    if args.worker:
        print(json.dumps(worker(args.worker, catalogue[shapes[0]], args.warmup, args.repeats, args.seed, args.threads,
                                device)))
        return

    impls = ["gplinker"]
    why_not = "skipped (--gplinker-only)" if args.gplinker_only else bert4torch_status()
    if why_not is None:
        impls.append("bert4torch")
    if not args.no_bf16:
        impls.append("gplinker-bf16")
    if why_not is None:
        for name in shapes:
            print(check_parity(catalogue[name], args.seed, device), flush=True)
    else:
        print(f"bert4torch not importable ({why_not}): timing gplinker alone. See scripts/bench_env.sh.", flush=True)

    load_before = load_average()
    results = []
    for r in range(args.rounds):
        order = impls if r % 2 == 0 else impls[::-1]  # alternate so drifting load hits both sides alike
        for name in shapes:
            for impl in order:
                results.append(run_worker(impl, name, args))
                print(f"  round {r + 1}/{args.rounds} {name} {impl}: "
                      f"{statistics.median(results[-1]['times']) * 1e3:.1f} ms", file=sys.stderr, flush=True)

    print(f"\n# bench_heads: {datetime.datetime.now().isoformat(timespec='minutes')} | "
          f"{platform.processor() or platform.machine()} {os.cpu_count()} cpus | python {platform.python_version()} | "
          f"torch {torch.__version__} | device {gpu_name(device)} | threads {results[0]['threads']} | "
          f"load avg before {load_before}, after {load_average()}")
    peak = ("torch.cuda.max_memory_allocated - allocated before the step" if device.type == "cuda"
            else "VmHWM - VmRSS before the step")
    print(f"# {args.rounds} fresh processes x ({args.warmup} warmup + {args.repeats} measured steps) "
          f"per (implementation, shape); peak = {peak}")
    print("\n".join(table(results, shapes, impls)))
    print(goal_line(results, shapes) if "bert4torch" in impls else "goal: needs bert4torch (scripts/bench_env.sh)")


def goal_line(results: list[dict], shapes: list[str]) -> str:
    """Whether float32 gplinker is >= 2x faster and <= 0.5x peak memory than bert4torch on every shape."""
    verdicts = []
    for shape in shapes:
        def med(impl: str, key: str, shape: str = shape) -> float:
            return statistics.median(x for r in results if r["impl"] == impl and r["shape"] == shape for x in r[key])
        speed = med("bert4torch", "times") / med("gplinker", "times")
        memory = med("gplinker", "peaks") / max(med("bert4torch", "peaks"), 1)
        met = speed >= 2 and memory <= 0.5
        verdicts.append(f"{shape} {'met' if met else 'NOT met'} ({speed:.2f}x faster, {memory:.2f}x memory)")
    return "goal >= 2x faster and <= 0.5x peak memory vs bert4torch: " + "; ".join(verdicts)

if __name__ == "__main__":
    main()
