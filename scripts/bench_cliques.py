"""Time the clique search of event decoding on dense worst cases.

Graphs on n nodes (default 40, the event task's cap of arguments per type and window):
the complete graph K_n, K_n minus a few disjoint edges, K_n minus random edges, and random graphs
G(n, p) with p = 0.5 and 0.9 (where the number of maximal cliques peaks). Columns:
- maximal_cliques: every maximal clique, sorted (the library function)
- event_cliques, 1 trigger: what EventTask.decode runs, node 0 the trigger and the others
  arguments of one event type: only cliques holding the trigger are searched
- event_cliques, all triggers: every node a trigger, so every clique is searched (the worst case)
- scored_events: event_cliques (1 trigger) plus scored Event objects, as EventTask.decode builds them
Goal (issue 6): event clique search < 50 ms on a dense worst case with 40 arguments.

    python scripts/bench_cliques.py                # n = 40, median of 7 runs
    python scripts/bench_cliques.py --n 64 --repeats 1
    python scripts/bench_cliques.py --smoke        # n = 12, one run: checks the script runs
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import time

from bench_machine import machine  # scripts/ is on sys.path when a script runs

from gplinker.data.examples import TRIGGER_ROLE, Span
from gplinker.tasks.cliques import maximal_cliques
from gplinker.tasks.event_assembly import event_cliques, scored_events


def complete_minus(n: int, removed: set[tuple[int, int]]) -> list[tuple[int, int]]:
    """Edges of K_n without `removed` (pairs given as (min, max))."""
    return [e for e in itertools.combinations(range(n), 2) if e not in removed]


def random_graph(n: int, p: float, seed: int) -> list[tuple[int, int]]:
    """G(n, p): each of the n(n-1)/2 edges kept with probability p."""
    rng = random.Random(seed)
    return [e for e in itertools.combinations(range(n), 2) if rng.random() < p]


def graphs(n: int) -> list[tuple[str, list[tuple[int, int]]]]:
    rng = random.Random(0)
    pairs = list(itertools.combinations(range(n), 2))
    return [
        (f"K{n}", complete_minus(n, set())),
        (f"K{n} - 3 disjoint edges", complete_minus(n, {(0, 1), (2, 3), (4, 5)})),
        (f"K{n} - 10 random edges", complete_minus(n, set(rng.sample(pairs, 10)))),
        (f"G({n}, 0.9) seed 1", random_graph(n, 0.9, 1)),
        (f"G({n}, 0.9) seed 2", random_graph(n, 0.9, 2)),
        (f"G({n}, 0.5) seed 1", random_graph(n, 0.5, 1)),
    ]


def median_seconds(fn, repeats: int) -> tuple[float, object]:
    """Median wall time of `repeats` calls of fn(), and the last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40, help="nodes (arguments of one event type)")
    parser.add_argument("--repeats", type=int, default=7, help="runs per graph; the median is reported")
    parser.add_argument("--smoke", action="store_true", help="n = 12, one run per graph")
    args = parser.parse_args()
    if args.smoke:
        args.n, args.repeats = 12, 1

    arguments = [("类型", Span(k, k + 1, TRIGGER_ROLE if k == 0 else "角色")) for k in range(args.n)]
    triggers = [("类型", Span(k, k + 1, TRIGGER_ROLE)) for k in range(args.n)]
    print(f"# bench_cliques: {machine()}")
    print(f"# n = {args.n} nodes, median of {args.repeats} runs, ms")
    print("| graph | edges | maximal cliques | events (1 trigger) | maximal_cliques | event_cliques, 1 trigger "
          "| event_cliques, all triggers | scored_events |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    worst = 0.0
    for name, edges in graphs(args.n):
        linked = set(edges)
        t_all, cliques = median_seconds(lambda edges=edges: maximal_cliques(args.n, edges), args.repeats)
        t_one, _ = median_seconds(lambda linked=linked: event_cliques(arguments, linked), args.repeats)
        t_every, every = median_seconds(lambda linked=linked: event_cliques(triggers, linked), args.repeats)
        scores = [0.0] * len(arguments)
        t_events, events = median_seconds(
            lambda scores=scores, linked=linked: scored_events(arguments, scores, linked), args.repeats
        )
        assert sum(len(group.cliques) for group in every) == len(cliques)
        worst = max(worst, t_every)
        print(f"| {name} | {len(edges)} | {len(cliques)} | {len(events)} | {1000 * t_all:.2f} | {1000 * t_one:.2f} "
              f"| {1000 * t_every:.2f} | {1000 * t_events:.2f} |")
    print(f"goal: event clique search < 50 ms on every graph, even with every node a trigger: "
          f"{'met' if worst < 0.05 else 'NOT met'} (slowest {1000 * worst:.1f} ms)")

if __name__ == "__main__":
    main()
