"""Decoding time as a share of forward time, for NER, relations and events, at the eval batch size.

Forward: GPLinkerModel (BERT-base-sized encoder with random weights + the task's heads) on B full
windows of L tokens, under inference_mode. Decoding: what Predictor does after the forward:
`cells_above` (the cells above the threshold in every head) and `task.decode` of every window. The decoded
logits are "trained-ish": live cells ~ N(-8, 2²) (a trained model is confident about negatives),
masked cells as the heads mask them, and a few positives per window placed as the task's targets
place gold items, plus 2 stray positive cells per head and window:
  - NER (10 types, CLUENER): 4 entities per window
  - relations (48 predicates, DuIE 2.0): 3 triples per window (entity, head-link, tail-link cells)
  - events (65 types × 4 roles, DuEE-like): 2 events of 4 arguments, all their head/tail links
Goal (issue 6): decode <= 5% of forward.

Also the event clique search on a dense worst case: one window with 40 arguments of one event type
(the event task's cap per type), every pair linked (K40) and a random 90% of pairs linked
(G(40, 0.9), the density where maximal cliques peak), timed through EventTask.decode. Goal < 50 ms.
Its events are capped at event.MAX_EVENTS.

Between the two, the same decoding on "untrained" logits, N(0, 1) in every live cell (about half
of them above the threshold), timed once: it must stay bounded (predict.MAX_CELLS,
relation.MAX_TUPLES / MAX_WORK, event.MAX_EVENTS / MAX_FRAMES), not run for minutes.

`--gold-stats` prints instead what a perfect model decodes: per window, the gold cells of the
../shared data sets (their configs' max_length and stride, bert-base-chinese vocabulary) and the
work their decoding takes, with no cap applied. The decoding caps are set far above these.

    python scripts/bench_decode.py              # B 64, L 128, BERT-base sizes
    python scripts/bench_decode.py --smoke      # tiny shapes, seconds
    python scripts/bench_decode.py --gold-stats # needs ../shared/data and ../shared/vocab
"""

from __future__ import annotations

import argparse
import itertools
import random
import resource
import statistics
import time
from pathlib import Path

import torch
from bench_machine import add_huge_pages_flag, machine, setup_like_cli  # scripts/ is on sys.path when a script runs

from gplinker.data.encoding import SPECIAL, Window
from gplinker.data.examples import TRIGGER_ROLE
from gplinker.data.schema import Schema
from gplinker.modeling.model import GPLinkerModel
from gplinker.predict import cells_above
from gplinker.tasks.event import EventTask
from gplinker.tasks.event_assembly import event_cliques
from gplinker.tasks.ner import NerTask
from gplinker.tasks.relation import RelationTask, five_tuple_search

BASE = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072, vocab_size=21128)
TINY = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, vocab_size=500)
MASK = -1e12
SHARED = Path(__file__).resolve().parents[2] / "shared"


def tasks(scale: float = 1.0) -> dict:
    """NER / relation / event tasks with label sets of the real data sets' sizes (scaled down for --smoke)."""
    n = lambda k: max(2, int(k * scale))  # noqa: E731
    roles = [TRIGGER_ROLE, "时间", "地点", "参与者"]
    return {
        "ner": NerTask(Schema(task="ner", entity_types=[f"t{k}" for k in range(n(10))])),
        "relation": RelationTask(Schema(task="relation", predicates=[f"p{k}" for k in range(n(48))])),
        "event": EventTask(Schema(task="event", event_roles=[(f"e{k}", r) for k in range(n(65)) for r in roles])),
    }


def full_window(b: int, length: int) -> Window:
    """A window of `length` positions: [CLS], one character per token, [SEP]."""
    spans = [SPECIAL] + [(k, k + 1) for k in range(length - 2)] + [SPECIAL]
    return Window(example_index=b, input_ids=[0] * length, char_spans=spans)


def gold_cells(name: str, task, length: int, rng: random.Random) -> dict[str, set]:
    """Positive cells of one window, placed as the task's targets place gold items."""
    span = lambda: (lambda i: (i, i + rng.randrange(4)))(rng.randrange(1, length - 5))  # noqa: E731
    cells: dict[str, set] = {h.name: set() for h in task.heads()}
    if name == "ner":
        for _ in range(4):
            cells["entities"].add((rng.randrange(len(task.types)), *span()))
    elif name == "relation":
        for _ in range(3):
            (sh, st), (oh, ot), ch = span(), span(), rng.randrange(len(task.channels))
            cells["entities"] |= {(0, sh, st), (1, oh, ot)}
            cells["heads"].add((ch, sh, oh))
            cells["tails"].add((ch, st, ot))
    else:
        for _ in range(2):
            event_type = rng.choice(task.schema.event_types())
            labels = [c for c, (t, _) in enumerate(task.labels) if t == event_type]
            placed = [(c, *span()) for c in labels]
            cells["arguments"] |= set(placed)
            for (_, h1, t1), (_, h2, t2) in itertools.combinations(placed, 2):
                cells["head_links"].add((0, min(h1, h2), max(h1, h2)))
                cells["tail_links"].add((0, min(t1, t2), max(t1, t2)))
    return cells


def trained_ish_logits(name: str, task, batch: int, length: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Logits per head (B, C, L, L): N(-8, 2²), masked like the heads, gold positives at +4, 2 strays per head."""
    g = torch.Generator().manual_seed(seed)
    rng = random.Random(seed)
    out = {}
    golds = [gold_cells(name, task, length, rng) for _ in range(batch)]
    pos = torch.arange(length)
    live = torch.ones(length, dtype=torch.bool)
    live[0] = live[-1] = False  # specials: decodable cells never touch them, the model still scores them
    for head in task.heads():
        x = torch.randn(batch, head.channels, length, length, generator=g) * 2 - 8  # (B, C, L, L)
        if head.tril_mask:
            x.masked_fill_(pos[:, None] > pos[None, :], MASK)
        for b, gold in enumerate(golds):
            for c, i, j in gold[head.name]:
                x[b, c, i, j] = 4.0
            for _ in range(2):
                i, j = sorted(rng.sample(range(1, length - 1), 2))
                x[b, rng.randrange(head.channels), i, j] = 0.5
        out[head.name] = x
    return out


def untrained_logits(task, batch: int, length: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Logits per head (B, C, L, L): N(0, 1) in every live cell, masked like the heads (half the live cells > 0)."""
    g = torch.Generator().manual_seed(seed)
    pos = torch.arange(length)
    out = {}
    for head in task.heads():
        x = torch.randn(batch, head.channels, length, length, generator=g)  # (B, C, L, L)
        if head.tril_mask:
            x.masked_fill_(pos[:, None] > pos[None, :], MASK)
        out[head.name] = x
    return out


def gold_stats() -> None:
    """Per-window maxima of what a perfect model decodes (gold cells, no cap) on the ../shared data sets."""
    from transformers import BertTokenizerFast

    from gplinker.data.encoding import WindowEncoder
    from gplinker.data.reading import read_examples
    from gplinker.data.schema import load_duee_schema, load_duie_schema, schema_from_examples

    data, vocab = SHARED / "data", SHARED / "vocab" / "bert-base-chinese"
    if not data.is_dir() or not vocab.is_dir():
        raise SystemExit(f"--gold-stats needs {data} and {vocab}")
    tokenizer = BertTokenizerFast.from_pretrained(str(vocab))
    # (task, folder, format, schema file, max_length, stride): max_length and stride of configs/*.yaml
    sets = [("ner", "cluener", "cluener", None, 64, 16),
            ("relation", "duie2-subset", "duie2", "duie_schema.json", 128, 48),
            ("relation", "duie1-subset", "duie1", "all_50_schemas", 128, 48),
            ("event", "duee", "duee", "duee_event_schema.json", 352, 64)]
    print("| data (train + dev) | L | windows | cells per head, max | tuples / events, max | work / frames, max |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, folder, fmt, schema_file, length, stride in sets:
        if not (data / folder).is_dir():
            continue
        examples = [e for split in ("train", "dev")
                    for e in read_examples(data / folder / f"{split}.json", fmt, name)[0]]
        if name == "ner":
            schema = schema_from_examples("ner", examples)
            task = NerTask(schema)
        elif name == "relation":
            task = RelationTask(load_duie_schema(data / folder / schema_file))
        else:
            task = EventTask(load_duee_schema(data / folder / schema_file))
        windows = WindowEncoder(tokenizer, length, stride).encode([e.text for e in examples])
        cells_max = found_max = work_max = 0
        for w in windows:
            targets = task.targets(examples[w.example_index], w)
            cells = {h: [(c, i, j, 1.0) for c, i, j in cs] for h, cs in targets.items()}
            cells_max = max(cells_max, *(len(cs) for cs in cells.values()))
            if name == "relation":
                search = five_tuple_search(cells["entities"], cells["heads"], cells["tails"], limit=10**9, budget=10**9)
                found, work = len(search.tuples), search.work
            elif name == "event":
                items = task.top_arguments(w, cells["arguments"])
                heads = {(i, j) for _, i, j, _ in cells["head_links"]}
                tails = {(i, j) for _, i, j, _ in cells["tail_links"]}
                positions = [p for p, _ in items.values()]

                def linked(a: int, b: int, positions=positions, heads=heads, tails=tails) -> bool:
                    (h1, t1), (h2, t2) = positions[a], positions[b]
                    return (min(h1, h2), max(h1, h2)) in heads and (min(t1, t2), max(t1, t2)) in tails

                groups = event_cliques(list(items), linked)
                found, work = sum(len(g.cliques) for g in groups), sum(g.frames for g in groups)
            else:
                found = work = 0
            found_max, work_max = max(found_max, found), max(work_max, work)
        print(f"| {folder} ({task.name}) | {length} | {len(windows)} | {cells_max} | {found_max or '-'} "
              f"| {work_max or '-'} |")


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def dense_event_window(task: EventTask, n: int, density: float, seed: int = 0):
    """One window with n arguments of one event type (the first a trigger); a share `density` of pairs linked."""
    rng = random.Random(seed)
    labels = [c for c, (t, _) in enumerate(task.labels) if t == task.labels[0][0]]  # trigger first
    length = 2 * n + 2
    args = [(labels[0] if k == 0 else rng.choice(labels[1:]), 1 + 2 * k, 2 + 2 * k) for k in range(n)]
    cells = {"arguments": [(c, i, j, 3.0) for c, i, j in args], "head_links": [], "tail_links": []}
    for (_, h1, t1), (_, h2, t2) in itertools.combinations(args, 2):
        if rng.random() < density:
            cells["head_links"].append((0, h1, h2, 2.0))
            cells["tail_links"].append((0, t1, t2, 2.0))
    return full_window(0, length), cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64, help="eval batch size (train.eval_batch_size default)")
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3, help="forward passes timed per task (median)")
    parser.add_argument("--decode-repeats", type=int, default=5)
    parser.add_argument("--arguments", type=int, default=40, help="arguments in the dense event worst case")
    parser.add_argument("--smoke", action="store_true", help="tiny encoder and shapes: checks the script runs")
    parser.add_argument("--gold-stats", action="store_true",
                        help="only the per-window maxima of gold cells on ../shared/data (what the caps allow for)")
    add_huge_pages_flag(parser)
    args = parser.parse_args()
    setup_like_cli(args)
    if args.gold_stats:
        gold_stats()
        return
    sizes, scale = BASE, 1.0
    if args.smoke:
        sizes, scale, args.batch, args.length, args.repeats, args.decode_repeats = TINY, 0.1, 4, 24, 1, 1
        args.arguments = 12

    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    encoder = BertModel(BertConfig(**sizes, max_position_embeddings=512), add_pooling_layer=False).eval()
    ids = torch.randint(5, sizes["vocab_size"], (args.batch, args.length))
    mask = torch.ones_like(ids)
    windows = [full_window(b, args.length) for b in range(args.batch)]
    rows = []
    for name, task in tasks(scale).items():
        model = GPLinkerModel(encoder, task.heads(), "egp", 64).eval()
        with torch.inference_mode():
            forward = median_time(lambda model=model: model(input_ids=ids, attention_mask=mask), args.repeats)
        logits = trained_ish_logits(name, task, args.batch, args.length)

        def decode(logits=logits, task=task) -> list:
            cells = cells_above(logits, 0.0, args.batch)
            return [task.decode(w, c) for w, c in zip(windows, cells)]

        decode_s = median_time(decode, args.decode_repeats)
        found = sum(len(p) for p in decode())
        channels = sum(h.channels for h in task.heads())
        untrained = untrained_logits(task, args.batch, args.length)
        start = time.perf_counter()
        cells = cells_above(untrained, 0.0, args.batch)
        untrained_found = sum(len(task.decode(w, c)) for w, c in zip(windows, cells))
        untrained_s = time.perf_counter() - start
        del untrained, cells
        rows.append((name, channels, forward, decode_s, found, untrained_s, untrained_found))

    event = tasks(scale)["event"]
    cliques = []
    for label, density in ((f"K{args.arguments} (all pairs linked)", 1.0), (f"G({args.arguments}, 0.9)", 0.9)):
        window, cells = dense_event_window(event, args.arguments, density)
        seconds = median_time(
            lambda window=window, cells=cells: event.decode(window, cells), max(3, args.decode_repeats)
        )
        cliques.append((label, seconds, len(event.decode(window, cells))))

    print(f"# bench_decode: {machine()}")
    print(f"# encoder {sizes['num_hidden_layers']} layers, hidden {sizes['hidden_size']} (random); B {args.batch}, "
          f"L {args.length}; forward median of {args.repeats}, decode median of {args.decode_repeats}")
    print("| task | head channels | forward s | decode s | decode / forward | items decoded |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, channels, forward, decode_s, found, *_ in rows:
        print(f"| {name} | {channels} | {forward:.3f} | {decode_s:.4f} | {100 * decode_s / forward:.2f}% | {found} |")
    print()
    print("| untrained model (logits N(0, 1)), once | decode s | decode / forward | items decoded | items per window |")
    print("|---|---:|---:|---:|---:|")
    for name, _, forward, _, _, untrained_s, untrained_found in rows:
        print(f"| {name} | {untrained_s:.2f} | {untrained_s / forward:.2f}× | {untrained_found} "
              f"| {untrained_found / args.batch:.0f} |")
    print()
    print("| event clique search (EventTask.decode, one window) | median ms | events |")
    print("|---|---:|---:|")
    for label, seconds, n in cliques:
        print(f"| {label} | {1000 * seconds:.1f} | {n} |")
    worst_share = max(d / f for _, _, f, d, *_ in rows)
    worst_clique = max(s for _, s, _ in cliques)
    print(f"goals: decode <= 5% of forward: {'met' if worst_share <= 0.05 else 'NOT met'} "
          f"(worst {100 * worst_share:.2f}%); clique search < 50 ms: "
          f"{'met' if worst_clique < 0.05 else 'NOT met'} (worst {1000 * worst_clique:.1f} ms)")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
