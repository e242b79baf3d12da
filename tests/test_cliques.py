"""Maximal cliques (Bron–Kerbosch with pivoting) and event assembly from linked arguments."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gplinker.data.examples import TRIGGER_ROLE, Event, Span
from gplinker.tasks.cliques import adjacency, clique_search, clique_tuples, maximal_cliques
from gplinker.tasks.event_assembly import event_cliques, scored_events


def assemble(arguments, linked, trigger_role=TRIGGER_ROLE):
    """The events scored_events builds, in a fixed order: by type, then by sorted arguments."""
    events = scored_events(arguments, [0.0] * len(arguments), linked, trigger_role)
    return sorted(events, key=lambda e: (e.type, sorted(e.arguments)))


def cliques_as_set(n, edges):
    return set(maximal_cliques(n, edges))


def fs(*nodes):
    return tuple(nodes)


# ---------------------------------------------------------------- hand-made graphs


def test_triangle_with_pendant():
    edges = [(0, 1), (1, 2), (0, 2), (2, 3)]
    assert cliques_as_set(4, edges) == {fs(0, 1, 2), fs(2, 3)}


def test_two_triangles_sharing_an_edge():
    edges = [(0, 1), (0, 2), (1, 2), (1, 3), (2, 3)]
    assert cliques_as_set(4, edges) == {fs(0, 1, 2), fs(1, 2, 3)}


def test_four_cycle_gives_its_edges_in_lexicographic_order():
    edges = [(0, 1), (1, 2), (2, 3), (3, 0)]
    assert maximal_cliques(4, edges) == [fs(0, 1), fs(0, 3), fs(1, 2), fs(2, 3)]


def test_empty_graph_has_no_cliques():
    assert maximal_cliques(0, []) == []


def test_isolated_nodes_are_singleton_cliques():
    assert maximal_cliques(3, []) == [fs(0), fs(1), fs(2)]


def test_disconnected_components():
    edges = [(0, 1), (1, 2), (0, 2), (3, 4)]
    assert maximal_cliques(6, edges) == [fs(0, 1, 2), fs(3, 4), fs(5)]


def test_complete_graph_k5_is_one_clique():
    edges = list(itertools.combinations(range(5), 2))
    assert maximal_cliques(5, edges) == [fs(0, 1, 2, 3, 4)]


def test_self_loops_duplicates_and_edge_direction_are_ignored():
    edges = [(0, 1), (1, 0), (0, 1), (1, 1), (2, 2), (1, 2)]
    assert maximal_cliques(3, edges) == [fs(0, 1), fs(1, 2)]


def test_lexicographic_order_puts_longer_prefix_match_first():
    # cliques {0,1,2}, {0,3} and {1,4}: compared as increasing tuples (0,1,2) < (0,3) < (1,4)
    edges = [(0, 1), (0, 2), (1, 2), (0, 3), (1, 4)]
    assert maximal_cliques(5, edges) == [fs(0, 1, 2), fs(0, 3), fs(1, 4)]


@pytest.mark.parametrize("n, edges", [(-1, []), (3, [(0, 3)]), (3, [(-1, 0)])])
def test_bad_input_raises(n, edges):
    with pytest.raises(ValueError):
        maximal_cliques(n, edges)


def test_containing_a_node_outside_the_graph_raises():
    with pytest.raises(ValueError, match="node 3 is outside 0..2"):
        maximal_cliques(3, [(0, 1)], containing=[0, 3])


# ---------------------------------------------------------------- dense graphs


def test_complete_graph_k40_is_one_clique_of_40_nodes():
    edges = itertools.combinations(range(40), 2)  # a one-shot iterable is accepted
    cliques = maximal_cliques(40, edges)
    assert cliques == [tuple(range(40))]


def test_k40_minus_three_disjoint_edges_has_eight_cliques():
    # Removing disjoint edges {a_k, b_k} from K_n: a maximal clique keeps every other node and
    # exactly one end of each removed edge, so there are 2^k of them.
    removed = [(0, 1), (10, 20), (38, 39)]
    edges = [e for e in itertools.combinations(range(40), 2) if e not in removed]
    others = frozenset(range(40)) - {v for e in removed for v in e}
    expected = {others | set(choice) for choice in itertools.product(*removed)}
    cliques = maximal_cliques(40, edges)
    assert len(cliques) == 8
    assert set(map(frozenset, cliques)) == expected


def test_dense_random_graph_matches_definition():
    # G(40, 0.9): every reported set is a clique, no node outside it extends it, no repeats.
    rng = random.Random(7)
    edges = [e for e in itertools.combinations(range(40), 2) if rng.random() < 0.9]
    edge_set = set(edges)

    def adjacent(u, v):
        return (min(u, v), max(u, v)) in edge_set

    cliques = maximal_cliques(40, edges)
    assert len(set(cliques)) == len(cliques) > 1
    for c in cliques[::50]:
        assert all(adjacent(u, v) for u, v in itertools.combinations(c, 2))
        assert not any(all(adjacent(w, u) for u in c) for w in range(40) if w not in c)


# ---------------------------------------------------------------- brute-force reference


def brute_force_maximal_cliques(n, edges):
    """Every subset of nodes that is a clique and is not contained in a larger clique."""
    adjacent = {(u, v) for u, v in edges} | {(v, u) for u, v in edges}
    cliques = [
        frozenset(subset)
        for size in range(1, n + 1)
        for subset in itertools.combinations(range(n), size)
        if all((u, v) in adjacent for u, v in itertools.combinations(subset, 2))
    ]
    return {c for c in cliques if not any(c < d for d in cliques)}


@st.composite
def graphs(draw, max_nodes=12):
    n = draw(st.integers(0, max_nodes))
    pairs = list(itertools.combinations(range(n), 2))
    density = draw(st.sampled_from([0.1, 0.3, 0.5, 0.7, 0.9]))
    rng = random.Random(draw(st.integers(0, 2**32)))
    edges = [p for p in pairs if rng.random() < density]
    return n, edges


@settings(max_examples=150, deadline=None)
@given(graphs())
def test_matches_brute_force_on_small_graphs(graph):
    n, edges = graph
    cliques = maximal_cliques(n, edges)
    assert set(map(frozenset, cliques)) == brute_force_maximal_cliques(n, edges)
    assert len(set(cliques)) == len(cliques)
    assert cliques == sorted(cliques) and all(list(c) == sorted(c) for c in cliques)


@settings(max_examples=150, deadline=None)
@given(graphs(), st.sets(st.integers(0, 11)))
def test_containing_keeps_exactly_the_cliques_holding_one_of_the_nodes(graph, nodes):
    n, edges = graph
    nodes = {v for v in nodes if v < n}
    expected = {c for c in brute_force_maximal_cliques(n, edges) if c & nodes}
    cliques = maximal_cliques(n, edges, containing=nodes)
    assert set(map(frozenset, cliques)) == expected and len(set(cliques)) == len(cliques)


@settings(max_examples=60, deadline=None)
@given(graphs(), st.randoms(use_true_random=False))
def test_output_does_not_depend_on_edge_order_or_direction(graph, rnd):
    n, edges = graph
    shuffled = [(v, u) if rnd.random() < 0.5 else (u, v) for u, v in edges]
    rnd.shuffle(shuffled)
    assert maximal_cliques(n, shuffled) == maximal_cliques(n, edges)


# ---------------------------------------------------------------- bounds on the search


def moon_moser(parts: int) -> list[int]:
    """Adjacency of the complete multipartite graph with `parts` parts of 3 nodes: 3^parts maximal cliques."""
    return adjacency(3 * parts, ((u, v) for u, v in itertools.combinations(range(3 * parts), 2) if u // 3 != v // 3))


def test_limit_and_budget_stop_the_search_inside_its_loop():
    adj = moon_moser(4)  # 81 cliques of 4 nodes
    full = clique_search(adj)
    assert len(full.cliques) == 81 and full.complete and full.frames > 0
    for limit in (1, 10, 80):
        capped = clique_search(adj, limit=limit)
        assert capped.cliques == full.cliques[:limit] and not capped.complete and capped.frames <= full.frames
    assert clique_search(adj, limit=81).cliques == full.cliques
    for budget in (0, 1, 5, 20):
        cut = clique_search(adj, budget=budget)
        assert cut.frames <= budget and cut.cliques == full.cliques[: len(cut.cliques)] and not cut.complete
    assert clique_tuples(adj, limit=5) == full.cliques[:5]


def test_a_bound_on_a_big_graph_returns_after_a_bounded_search():
    adj = moon_moser(12)  # 531,441 maximal cliques: the full search is out of reach here
    capped = clique_search(adj, [0, 5], limit=100)
    assert len(capped.cliques) == 100 and capped.frames < 2_000
    assert all(0 in c for c in capped.cliques)  # the cliques of the lowest node come first
    cut = clique_search(adj, budget=1_000)
    assert cut.frames == 1_000 and not cut.complete


@settings(max_examples=100, deadline=None)
@given(graphs(), st.sets(st.integers(0, 11)), st.integers(0, 20), st.integers(0, 40))
def test_a_bounded_search_gives_the_first_cliques_of_the_full_search(graph, nodes, limit, budget):
    n, edges = graph
    adj = adjacency(n, edges)
    containing = sorted(v for v in nodes if v < n)
    full = clique_search(adj, containing)
    assert full.complete
    assert clique_tuples(adj, containing, limit=limit) == full.cliques[:limit]
    cut = clique_search(adj, containing, budget=budget)
    assert cut.frames <= budget and cut.cliques == full.cliques[: len(cut.cliques)]
    if containing != list(range(n)):  # (every node: the one pivoted search from the top instead)
        lowest = [min(set(c) & set(containing)) for c in full.cliques]
        assert lowest == sorted(lowest)  # the cliques of the lowest node first, then the next


def test_event_cliques_bounds_hold_across_event_types():
    t, a = Span(0, 1, TRIGGER_ROLE), Span(1, 2, "r")
    arguments = [("A", t), ("A", a), ("B", t), ("B", a), ("C", t)]
    linked = {(0, 1), (2, 3)}
    groups = event_cliques(arguments, linked)
    assert [len(g.cliques) for g in groups] == [1, 1, 1]
    assert [len(g.cliques) for g in event_cliques(arguments, linked, limit=2)] == [1, 1, 0]
    assert [len(g.cliques) for g in event_cliques(arguments, linked, budget=1)] == [1, 0, 0]
    assert sum(g.frames for g in event_cliques(arguments, linked, budget=1)) == 1
    assert len(scored_events(arguments, [0.0] * 5, linked, limit=1)) == 1


# ---------------------------------------------------------------- scored_events

LAYOFF = "组织关系-裁员"


def span(text, mention, role, nth=0):
    """Character span of the nth occurrence of `mention` in `text`."""
    start = -1
    for _ in range(nth + 1):
        start = text.index(mention, start + 1)
    return Span(start, start + len(mention), role)


def all_pairs(indices):
    return {(min(a, b), max(a, b)) for a, b in itertools.combinations(indices, 2)}


def test_two_events_of_one_type_share_a_time_argument():
    text = "周一甲公司裁员百人，乙公司裁员五十人。"
    time = span(text, "周一", "时间")
    first = [
        span(text, "甲公司", "裁员方"), span(text, "裁员", TRIGGER_ROLE, 0), span(text, "百人", "裁员人数")
    ]
    second = [
        span(text, "乙公司", "裁员方"), span(text, "裁员", TRIGGER_ROLE, 1), span(text, "五十人", "裁员人数")
    ]
    arguments = [(LAYOFF, s) for s in [time, *first, *second]]  # indices: 0 | 1 2 3 | 4 5 6
    linked = all_pairs([0, 1, 2, 3]) | all_pairs([0, 4, 5, 6])

    events = assemble(arguments, linked)

    assert events == [
        Event(LAYOFF, frozenset([time, *first])),
        Event(LAYOFF, frozenset([time, *second])),
    ]
    assert [e.trigger for e in events] == [Span(5, 7, TRIGGER_ROLE), Span(13, 15, TRIGGER_ROLE)]


def test_events_of_different_types_never_merge_even_if_linked():
    text = "地震导致房屋倒塌。"
    quake, collapse = "灾害/意外-地震", "灾害/意外-坍/垮塌"
    arguments = [
        (quake, span(text, "地震", TRIGGER_ROLE)),
        (collapse, span(text, "倒塌", TRIGGER_ROLE)),
        (collapse, span(text, "房屋", "坍塌主体")),
    ]
    calls = []

    def everything_linked(i, j):
        calls.append((i, j))
        return True

    events = assemble(arguments, everything_linked)

    assert events == [  # sorted by type: "地" (U+5730) < "坍" (U+574D)
        Event(quake, frozenset([arguments[0][1]])),
        Event(collapse, frozenset([arguments[1][1], arguments[2][1]])),
    ]
    assert calls == [(1, 2)]  # only same-type pairs are asked, smaller index first
    # the same result from a link set that also joins the two types
    assert assemble(arguments, {(0, 1), (0, 2), (1, 2)}) == events


def test_event_without_trigger_is_dropped():
    text = "昨日丙公司收购丁公司，戊公司在场。"
    buy = "财经/交易-收购"
    arguments = [
        (buy, span(text, "收购", TRIGGER_ROLE)),
        (buy, span(text, "丙公司", "收购方")),
        (buy, span(text, "昨日", "时间")),
        (buy, span(text, "戊公司", "被收购方")),
    ]
    # clique {0, 1} has the trigger; clique {2, 3} has none; nothing else is linked
    events = assemble(arguments, {(0, 1), (2, 3)})
    assert events == [Event(buy, frozenset([arguments[0][1], arguments[1][1]]))]


def test_lone_trigger_is_an_event_and_lone_argument_is_not():
    text = "庚公司宣布破产。"
    bankrupt = "财经/交易-破产"
    trigger, company = span(text, "破产", TRIGGER_ROLE), span(text, "庚公司", "破产公司")
    events = assemble([(bankrupt, trigger), (bankrupt, company)], set())
    assert events == [Event(bankrupt, frozenset([trigger]))]


def test_subset_event_is_dropped():
    # The same argument decoded twice (e.g. by two overlapping windows) with different links:
    # cliques {0, 1} and {0, 2, 3} become span sets {trigger, company} ⊂ {trigger, company, number}.
    text = "辛公司裁员三十人。"
    trigger, company = span(text, "裁员", TRIGGER_ROLE), span(text, "辛公司", "裁员方")
    number = span(text, "三十人", "裁员人数")
    arguments = [(LAYOFF, trigger), (LAYOFF, company), (LAYOFF, company), (LAYOFF, number)]
    events = assemble(arguments, {(0, 1), (0, 2), (0, 3), (2, 3)})
    assert events == [Event(LAYOFF, frozenset([trigger, company, number]))]


def test_duplicate_events_are_kept_once():
    text = "壬公司裁员。"
    trigger, company = span(text, "裁员", TRIGGER_ROLE), span(text, "壬公司", "裁员方")
    # the trigger appears twice and the two copies are not linked: cliques {0, 1} and {1, 2}
    arguments = [(LAYOFF, trigger), (LAYOFF, company), (LAYOFF, trigger)]
    events = assemble(arguments, {(0, 1), (1, 2)})
    assert events == [Event(LAYOFF, frozenset([trigger, company]))]


def test_custom_trigger_role():
    a, b = Span(0, 1, "核心"), Span(2, 3, "对象")
    arguments = [("类型", a), ("类型", b)]
    assert assemble(arguments, set(), trigger_role="核心") == [Event("类型", frozenset([a]))]
    assert assemble(arguments, {(0, 1)}, trigger_role="核心") == [Event("类型", frozenset([a, b]))]
    assert assemble(arguments, {(0, 1)}) == []  # default role 触发词 is absent


def reference_events(arguments, linked, trigger_role=TRIGGER_ROLE):
    """The spec written as brute force: all maximal same-type linked index sets, then the filters."""
    pairs = {(min(i, j), max(i, j)) for i, j in linked}
    types = sorted({t for t, _ in arguments})
    candidates = set()
    for event_type in types:
        members = [i for i, (t, _) in enumerate(arguments) if t == event_type]
        edges = [
            (a, b)
            for a, b in itertools.combinations(range(len(members)), 2)
            if (members[a], members[b]) in pairs
        ]
        for clique in brute_force_maximal_cliques(len(members), edges):
            spans = frozenset(arguments[members[k]][1] for k in clique)
            if any(s.label == trigger_role for s in spans):
                candidates.add(Event(event_type, spans))
    return {
        e for e in candidates if not any(o.type == e.type and e.arguments < o.arguments for o in candidates)
    }


@st.composite
def decoded_arguments(draw):
    types = ["甲", "乙"]
    pool = [Span(s, s + 1, role) for s in range(4) for role in (TRIGGER_ROLE, "时间", "地点")]
    items = draw(st.lists(st.tuples(st.sampled_from(types), st.sampled_from(pool)), max_size=9))
    pairs = list(itertools.combinations(range(len(items)), 2))
    linked = draw(st.sets(st.sampled_from(pairs))) if pairs else set()
    return items, linked


@settings(max_examples=150, deadline=None)
@given(decoded_arguments())
def test_scored_events_matches_brute_force_reference(case):
    arguments, linked = case  # items may repeat, so dropping duplicates and subsets is exercised
    events = assemble(arguments, linked)
    assert set(events) == reference_events(arguments, linked)
    assert len(set(events)) == len(events)
    assert assemble(arguments, lambda i, j: (i, j) in linked) == events


def test_event_score_is_its_lowest_argument_score_and_repeats_keep_the_best():
    text = "癸公司裁员二十人。"
    trigger, company = span(text, "裁员", TRIGGER_ROLE), span(text, "癸公司", "裁员方")
    number = span(text, "二十人", "裁员人数")
    arguments = [(LAYOFF, trigger), (LAYOFF, company), (LAYOFF, number)]
    events = scored_events(arguments, [3.0, 1.5, 2.0], all_pairs([0, 1, 2]))
    assert events == {Event(LAYOFF, frozenset([trigger, company, number])): 1.5}
    # the trigger decoded twice (two windows), each copy linked to everything: one event, best copy's score
    repeated = [*arguments, (LAYOFF, trigger)]
    events = scored_events(repeated, [3.0, 1.5, 2.0, 0.5], all_pairs([0, 1, 2]) | all_pairs([1, 2, 3]))
    assert events == {Event(LAYOFF, frozenset([trigger, company, number])): 1.5}
