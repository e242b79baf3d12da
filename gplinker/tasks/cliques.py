"""Events as complete subgraphs: maximal-clique search over linked arguments.

GPLinker (Su Jianlin, https://kexue.fm/archives/8926) decodes an event as a complete subgraph:
every decoded argument is a node, two arguments are linked when both their head-pair and their
tail-pair scores pass the threshold, and each event is a maximal clique of that graph within one
event type. Pure Python; the link scores are read by the caller (tasks/event.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from gplinker.data.examples import TRIGGER_ROLE, Event, Span


def _adjacency(n: int, edges: Iterable[tuple[int, int]]) -> list[int]:
    """Neighbour bitsets of an undirected graph on 0..n-1; self-loops and repeats are ignored."""
    if n < 0:
        raise ValueError(f"number of nodes must be >= 0, got {n}")
    adj = [0] * n
    for u, v in edges:
        if not (0 <= u < n and 0 <= v < n):
            raise ValueError(f"edge ({u}, {v}) has a node outside 0..{n - 1}")
        if u != v:
            adj[u] |= 1 << v
            adj[v] |= 1 << u
    return adj


def maximal_cliques(n: int, edges: Iterable[tuple[int, int]]) -> list[frozenset[int]]:
    """All maximal cliques of the undirected graph on nodes 0..n-1, in lexicographic order.

    Isolated nodes are cliques of size 1; an empty graph (n = 0) has no cliques. Order: cliques
    compared as increasing tuples of their nodes, e.g. {0, 1, 2} < {0, 3} < {1, 4}.
    """
    # Bron–Kerbosch with Tomita pivoting (Tomita, Tanaka & Takahashi 2006):
    #   BK(R, P, X): if P ∪ X = ∅ report R; else pick u ∈ P ∪ X maximising |P ∩ N(u)|, and for
    #   each v ∈ P \ N(u): BK(R ∪ {v}, P ∩ N(v), X ∩ N(v)); P ← P \ {v}; X ← X ∪ {v}.
    # P, X and N(·) are int bitsets (bit v = node v), R a tuple of nodes. An explicit stack
    # replaces recursion: each frame is a child call with the P and X current when it was made.
    # A child with P ∩ N(v) = ∅ is settled on the spot (a clique if X ∩ N(v) = ∅ too, else not
    # maximal). Bits are walked inline (lowest set bit first); a generator costs ~12% on dense graphs.
    # Sort key: R as a bitset with node v at bit n-1-v. Maximal cliques never contain one another,
    # so for two of them the lowest node in exactly one decides both the lexicographic order and
    # which key is larger: descending keys = lexicographic order, compared as plain ints.
    adj = _adjacency(n, edges)  # every frame has P ≠ ∅, so a pivot always exists
    key_bit = [1 << (n - 1 - v) for v in range(n)]
    found: list[tuple[int, tuple[int, ...]]] = []  # (sort key, R)
    stack = [((), 0, (1 << n) - 1, 0)] if n else []  # (R, sort key of R, P, X)
    while stack:
        r, key, p, x = stack.pop()
        best, rest = -1, p | x
        while rest:
            low = rest & -rest
            u = low.bit_length() - 1
            common = (p & adj[u]).bit_count()
            if common > best:
                best, pivot = common, u
            rest ^= low
        rest = p & ~adj[pivot]
        while rest:
            low = rest & -rest
            v = low.bit_length() - 1
            p_v, x_v = p & adj[v], x & adj[v]
            if p_v:
                stack.append((r + (v,), key | key_bit[v], p_v, x_v))
            elif not x_v:
                found.append((key | key_bit[v], r + (v,)))
            p ^= low
            x |= low
            rest ^= low
    found.sort(reverse=True)
    return [frozenset(r) for _, r in found]


def _link_test(linked: Callable[[int, int], bool] | set[tuple[int, int]]) -> Callable[[int, int], bool]:
    """Turn a set of linked index pairs (either order) or a predicate into a predicate on (i, j)."""
    if callable(linked):
        return linked
    pairs = {(min(i, j), max(i, j)) for i, j in linked}
    return lambda i, j: (i, j) in pairs


def _drop_strict_subsets(events: list[Event]) -> list[Event]:
    """Keep the events whose argument set is not a strict subset of another event's of the same type."""
    return [
        e
        for e in events
        if not any(o.type == e.type and e.arguments < o.arguments for o in events)
    ]


def assemble_events(
    arguments: Sequence[tuple[str, Span]],
    linked: Callable[[int, int], bool] | set[tuple[int, int]],
    trigger_role: str = TRIGGER_ROLE,
) -> list[Event]:
    """Group decoded (event type, argument) items into events: maximal cliques of linked same-type items.

    `linked` is a set of linked index pairs into `arguments` (given as (min, max); either order is
    accepted) or a predicate called as linked(i, j) with i < j, and only for two items of the same
    event type. Events without a `trigger_role` argument, duplicates, and events whose arguments are
    a strict subset of another event's of the same type are dropped. The last two can only happen
    when `arguments` repeats a (type, span) item, e.g. one argument decoded in two overlapping
    windows. Order: by event type, then by the sorted tuple of argument spans.
    """
    is_linked = _link_test(linked)
    by_type: dict[str, list[int]] = {}
    for index, (event_type, _) in enumerate(arguments):
        by_type.setdefault(event_type, []).append(index)

    events: set[Event] = set()
    for event_type, members in by_type.items():
        edges = [
            (a, b)
            for a in range(len(members))
            for b in range(a + 1, len(members))
            if is_linked(members[a], members[b])
        ]
        for clique in maximal_cliques(len(members), edges):
            spans = frozenset(arguments[members[k]][1] for k in clique)
            if any(s.label == trigger_role for s in spans):
                events.add(Event(event_type, spans))
    # Distinct items make each type's cliques distinct, non-nested span sets: the quadratic
    # subset check is needed only when an item repeats.
    repeated = len(set(arguments)) < len(arguments)
    kept = _drop_strict_subsets(list(events)) if repeated else list(events)
    return sorted(kept, key=lambda e: (e.type, sorted(e.arguments)))
