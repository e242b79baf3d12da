"""Maximal cliques of an undirected graph: Bron–Kerbosch with Tomita pivoting, on int bitsets.

The search behind event decoding (tasks/event_assembly.py), kept free of events so that it can be
checked against brute force on its own. Pure Python.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple


def adjacency(n: int, edges: Iterable[tuple[int, int]]) -> list[int]:
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


def maximal_cliques(n: int, edges: Iterable[tuple[int, int]],
                    containing: Iterable[int] | None = None) -> list[tuple[int, ...]]:
    """All maximal cliques of the undirected graph on nodes 0..n-1, as increasing tuples, sorted.

    Isolated nodes are cliques of size 1; an empty graph (n = 0) has no cliques. Order: cliques
    compared as increasing tuples of their nodes, e.g. (0, 1, 2) < (0, 3) < (1, 4). With
    `containing`, only the maximal cliques holding at least one of those nodes (the search never
    enters the others).
    """
    cliques = clique_tuples(adjacency(n, edges), containing)
    return sorted(tuple(sorted(r)) for r in cliques)


class CliqueSearch(NamedTuple):
    """What `clique_search` found, and the frames it searched."""

    cliques: list[tuple[int, ...]]  # node tuples, in search order
    frames: int  # BK(R, P, X) calls searched (popped from the stack), each O(n) bit operations
    complete: bool  # False when `limit` or `budget` stopped the search


def clique_tuples(adj: list[int], containing: Iterable[int] | None = None,
                  limit: int | None = None, budget: int | None = None) -> list[tuple[int, ...]]:
    """Maximal cliques as node tuples, in search order (deterministic, unsorted); see maximal_cliques.

    With `limit`, at most that many cliques; with `budget`, at most that many frames searched
    (clique_search): the first ones in search order.
    """
    return clique_search(adj, containing, limit, budget).cliques


def clique_search(adj: list[int], containing: Iterable[int] | None = None,
                  limit: int | None = None, budget: int | None = None) -> CliqueSearch:
    """The cliques of clique_tuples, with the frames searched; stops at `limit` cliques or `budget` frames.

    Search order: with `containing` (unless it is every node), the cliques of its lowest node
    first, then those of the next, so a caller that numbers its nodes strongest first keeps the
    strongest nodes' cliques when a bound stops the search.

    Both bounds are checked inside the loop, not between searches: the number of maximal cliques
    is exponential in the worst case (3^(n/3), Moon & Moser 1965), and so is the number of frames,
    which the output cap alone does not bound (a frame may report nothing).
    """
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
    # holds some t exactly once, at its lowest t (the same split as the top-level loop above);
    # the t_k are searched one after the other, each to the end before the next.
    # Sorting the cliques costs about as much as finding them, so it is left to callers that need it.
    n = len(adj)
    most = -1 if limit is None else limit  # -1: no bound (len(found) never equals it)
    frames_left = -1 if budget is None else budget
    found: list[tuple[int, ...]] = []
    roots: list[tuple[tuple[int, ...], int, int]] = []  # (R, P, X), every frame with P ≠ ∅, so a pivot always exists
    containing = None if containing is None else sorted(set(containing))
    if containing is None or containing == list(range(n)):  # every node: the pivoted top level prunes more
        roots = [((), (1 << n) - 1, 0)] if n else []
    else:
        done = 0
        for t in containing:
            if not 0 <= t < n:
                raise ValueError(f"node {t} is outside 0..{n - 1}")
            p, x = adj[t] & ~done, adj[t] & done
            if p or not x:  # P = X = ∅: {t} is a clique of its own, settled when its turn comes
                roots.append(((t,), p, x))
            done |= 1 << t
    frames = 0
    for root in roots:
        if not root[1]:
            if len(found) == most:
                return CliqueSearch(found, frames, False)
            found.append(root[0])
            continue
        stack = [root]
        while stack:
            if len(found) == most or frames == frames_left:
                return CliqueSearch(found, frames, False)
            frames += 1
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
                    if len(found) == most:
                        return CliqueSearch(found, frames, False)
                    found.append(r + (v,))
                p ^= low
                x |= low
                rest ^= low
    return CliqueSearch(found, frames, True)
