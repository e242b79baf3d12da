"""Events as complete subgraphs: maximal-clique search over linked arguments.

GPLinker (Su Jianlin, https://kexue.fm/archives/8926) decodes an event as a complete subgraph:
every decoded argument is a node, two arguments are linked when both their head-pair and their
tail-pair scores pass the threshold, and each event is a maximal clique of that graph within one
event type. Pure Python; the link scores are read by the caller (tasks/event.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

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


def maximal_cliques(n: int, edges: Iterable[tuple[int, int]], containing: Iterable[int] | None = None) -> list[tuple[int, ...]]:
    """All maximal cliques of the undirected graph on nodes 0..n-1, as increasing tuples, sorted.

    Isolated nodes are cliques of size 1; an empty graph (n = 0) has no cliques. Order: cliques
    compared as increasing tuples of their nodes, e.g. (0, 1, 2) < (0, 3) < (1, 4). With
    `containing`, only the maximal cliques holding at least one of those nodes (the search never
    enters the others).
    """
    cliques = _clique_tuples(_adjacency(n, edges), containing)
    return sorted(tuple(sorted(r)) for r in cliques)


def _clique_tuples(adj: list[int], containing: Iterable[int] | None = None) -> list[tuple[int, ...]]:
    """Maximal cliques as node tuples, in search order (deterministic, unsorted); see maximal_cliques."""
    # Bron–Kerbosch with Tomita pivoting (Tomita, Tanaka & Takahashi 2006):
    #   BK(R, P, X): if P ∪ X = ∅ report R; else pick u ∈ P ∪ X maximising |P ∩ N(u)|, and for
    #   each v ∈ P \ N(u): BK(R ∪ {v}, P ∩ N(v), X ∩ N(v)); P ← P \ {v}; X ← X ∪ {v}.
    # P, X and N(·) are int bitsets (bit v = node v), R a tuple of nodes. An explicit stack
    # replaces recursion: each frame is a child call with the P and X current when it was made.
    # A child with P ∩ N(v) = ∅ is settled on the spot (a clique if X ∩ N(v) = ∅ too, else not
    # maximal). Bits are walked inline (lowest set bit first); a generator costs ~12% on dense graphs.
    # Two exits from the pivot scan, both plain Tomita: a u ∈ X with P ⊆ N(u) ends the frame (every
    # clique below would extend by u), and a u ∈ P with |P ∩ N(u)| = |P| - 1 is already the best
    # pivot P can give. On G(40, 0.9) they halve the search time (scripts/bench_cliques.py).
    # With `containing` = t_1 < t_2 < ..., the top level is unrolled over those nodes only:
    # BK({t_k}, N(t_k) \ {t_1..t_k-1}, N(t_k) ∩ {t_1..t_k-1}) reports each maximal clique that
    # holds some t exactly once, at its lowest t (the same split as the top-level loop above).
    # Sorting the cliques costs about as much as finding them, so it is left to callers that need it.
    n = len(adj)
    found: list[tuple[int, ...]] = []
    stack = []  # (R, P, X), every frame with P ≠ ∅, so a pivot always exists
    containing = None if containing is None else sorted(set(containing))
    if containing is None or containing == list(range(n)):  # every node: the pivoted top level prunes more
        stack = [((), (1 << n) - 1, 0)] if n else []
    else:
        done = 0
        for t in containing:
            if not 0 <= t < n:
                raise ValueError(f"node {t} is outside 0..{n - 1}")
            p, x = adj[t] & ~done, adj[t] & done
            if p:
                stack.append(((t,), p, x))
            elif not x:
                found.append((t,))
            done |= 1 << t
    while stack:
        r, p, x = stack.pop()
        size, best, rest = p.bit_count(), -1, x
        while rest:  # pivot candidates in X first: one adjacent to all of P means no maximal clique below
            low = rest & -rest
            u = low.bit_length() - 1
            common = (p & adj[u]).bit_count()
            if common > best:
                best, pivot = common, u
                if common == size:
                    break
            rest ^= low
        if best == size:
            continue
        rest = p
        while rest:  # then in P, where |P ∩ N(u)| <= |P| - 1: stop at the first that reaches it
            low = rest & -rest
            u = low.bit_length() - 1
            common = (p & adj[u]).bit_count()
            if common > best:
                best, pivot = common, u
                if common == size - 1:
                    break
            rest ^= low
        rest = p & ~adj[pivot]
        while rest:
            low = rest & -rest
            v = low.bit_length() - 1
            p_v, x_v = p & adj[v], x & adj[v]
            if p_v:
                stack.append((r + (v,), p_v, x_v))
            elif not x_v:
                found.append(r + (v,))
            p ^= low
            x |= low
            rest ^= low
    return found


def _link_test(linked: Callable[[int, int], bool] | set[tuple[int, int]]) -> Callable[[int, int], bool]:
    """Turn a set of linked index pairs (either order) or a predicate into a predicate on (i, j)."""
    if callable(linked):
        return linked
    pairs = {(min(i, j), max(i, j)) for i, j in linked}
    return lambda i, j: (i, j) in pairs


def drop_strict_subsets(events: Sequence[Event]) -> list[Event]:
    """The distinct events that are not a strict subset of another event of the same type; order kept.

    Supersets of an event are looked for only among the events holding every one of its arguments
    (the intersection of per-argument index sets, smallest first), not among all pairs.
    """
    events = list(dict.fromkeys(events))
    holders: dict[tuple[str, Span], set[int]] = defaultdict(set)
    for k, event in enumerate(events):
        for span in event.arguments:
            holders[(event.type, span)].add(k)
    kept = []
    for k, event in enumerate(events):
        sets = sorted((holders[(event.type, span)] for span in event.arguments), key=len)
        candidates = set.intersection(*sets) if sets else set()
        if not any(len(events[o].arguments) > len(event.arguments) for o in candidates):
            kept.append(event)
    return kept



class TypeCliques(NamedTuple):
    """The cliques of one event type's graph: node a of that graph is item members[a] of the arguments."""

    event_type: str
    members: list[int]
    cliques: list[tuple[int, ...]]  # node tuples, unsorted


def event_cliques(
    arguments: Sequence[tuple[str, Span]],
    linked: Callable[[int, int], bool] | set[tuple[int, int]],
    trigger_role: str = TRIGGER_ROLE,
) -> list[TypeCliques]:
    """Per event type, every maximal clique of linked same-type items that holds a trigger.

    The clique search starts from the triggers only (see _clique_tuples), so cliques without one
    cost nothing. Order: deterministic but unsorted. `linked` as in assemble_events. When
    `arguments` repeats an item, two cliques may give the same or nested span sets; assemble_events
    removes those.
    """
    is_linked = _link_test(linked)
    by_type: dict[str, list[int]] = {}
    for index, (event_type, _) in enumerate(arguments):
        by_type.setdefault(event_type, []).append(index)
    out = []
    for event_type, members in by_type.items():
        adj = _adjacency(len(members), (
            (a, b)
            for a in range(len(members))
            for b in range(a + 1, len(members))
            if is_linked(members[a], members[b])
        ))
        triggers = [a for a, k in enumerate(members) if arguments[k][1].label == trigger_role]
        out.append(TypeCliques(event_type, members, _clique_tuples(adj, triggers)))
    return out


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
    cliques = [  # (event type, argument indices)
        (group.event_type, [group.members[a] for a in clique])
        for group in event_cliques(arguments, linked, trigger_role)
        for clique in group.cliques
    ]
    if len(set(arguments)) == len(arguments):  # the events are distinct and never nested
        rank = {k: r for r, k in enumerate(sorted(range(len(arguments)), key=lambda k: arguments[k][1]))}
        cliques.sort(key=lambda tc: (tc[0], sorted(rank[k] for k in tc[1])))  # ints: ~10x faster than Spans
        return [Event(t, frozenset(arguments[k][1] for k in clique)) for t, clique in cliques]
    events = [Event(t, frozenset(arguments[k][1] for k in clique)) for t, clique in cliques]
    events = drop_strict_subsets(events)
    return sorted(events, key=lambda e: (e.type, sorted(e.arguments)))
