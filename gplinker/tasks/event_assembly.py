"""Events from decoded arguments: maximal cliques of linked same-type arguments that hold a trigger.

Or, with `triggerless_min` = n (model.event.require_trigger false, min_arguments n), also the
maximal cliques without a trigger that hold at least n arguments.

GPLinker (Su Jianlin, https://kexue.fm/archives/8926) decodes an event as a complete subgraph:
every decoded argument is a node, two arguments are linked when both their head-pair and their
tail-pair scores pass the threshold, and each event is a maximal clique of that graph within one
event type. The search is tasks/cliques.py; the link scores are read by the caller (tasks/event.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import NamedTuple

from gplinker.data.examples import TRIGGER_ROLE, Event, Span
from gplinker.tasks.cliques import adjacency, clique_search

Linked = Callable[[int, int], bool] | set[tuple[int, int]]


def _link_test(linked: Linked) -> Callable[[int, int], bool]:
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
    for event in events:
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
    frames: int = 0  # Bron–Kerbosch frames searched for them (cliques.clique_search)


def event_cliques(
    arguments: Sequence[tuple[str, Span]],
    linked: Linked,
    trigger_role: str = TRIGGER_ROLE,
    limit: int | None = None,
    budget: int | None = None,
    triggerless_min: int | None = None,
) -> list[TypeCliques]:
    """Per event type, every maximal clique of linked same-type items that holds a trigger (and, when
    `triggerless_min` is a number, every one without a trigger of at least that many items).

    The clique search starts from the triggers only (see cliques.clique_search), so cliques without
    one cost nothing, and a type without a trigger is not even linked. Order: deterministic but
    unsorted. `linked` as in scored_events. When `arguments` repeats an item, two cliques may give
    the same or nested span sets; scored_events removes those.

    `limit` (cliques) and `budget` (search frames) bound the whole call, all types together: types
    are searched in order of first appearance in `arguments`, and in each type the triggers in
    their order there (unless every item of the type is a trigger: cliques.clique_search), so with
    arguments listed strongest first a bound keeps the cliques of the strongest triggers. A type
    reached after a bound is spent gets no cliques. Triggerless cliques need the search from every
    node of a type (its items in order), triggers or not.
    """
    is_linked = _link_test(linked)
    by_type: dict[str, list[int]] = {}
    for index, (event_type, _) in enumerate(arguments):
        by_type.setdefault(event_type, []).append(index)
    out = []
    found = frames = 0
    for event_type, members in by_type.items():
        triggers = [a for a, k in enumerate(members) if arguments[k][1].label == trigger_role]
        spent = (limit is not None and found >= limit) or (budget is not None and frames >= budget)
        if (not triggers and triggerless_min is None) or spent:
            out.append(TypeCliques(event_type, members, []))
            continue
        adj = adjacency(len(members), (
            (a, b)
            for a in range(len(members))
            for b in range(a + 1, len(members))
            if is_linked(members[a], members[b])
        ))
        search = clique_search(adj, triggers if triggerless_min is None else None,
                               None if limit is None else limit - found, None if budget is None else budget - frames)
        cliques = search.cliques
        if triggerless_min is not None:  # plain search: keep cliques with a trigger, or with enough arguments
            trigger_set = set(triggers)
            cliques = [c for c in cliques if trigger_set.intersection(c) or len(c) >= triggerless_min]
        found, frames = found + len(cliques), frames + search.frames
        out.append(TypeCliques(event_type, members, cliques, search.frames))
    return out


def scored_events(
    arguments: Sequence[tuple[str, Span]],
    scores: Sequence[float],
    linked: Linked,
    trigger_role: str = TRIGGER_ROLE,
    limit: int | None = None,
    budget: int | None = None,
    triggerless_min: int | None = None,
) -> dict[Event, float]:
    """Events from decoded (event type, argument) items, each scored by its lowest argument score.

    `linked` is a set of linked index pairs into `arguments` (either order) or a predicate called
    as linked(i, j) with i < j, only for two items of the same event type. Events without a
    `trigger_role` argument are never built, unless `triggerless_min` is a number (event_cliques). When
    `arguments` repeats a (type, span) item (one argument decoded in two overlapping windows), equal
    events keep their best score and events whose arguments are a strict subset of another's of the
    same type are dropped; with distinct items the cliques are already distinct and never nested.
    `limit` and `budget` bound the clique search (event_cliques), so at most `limit` events come back.
    """
    events: dict[Event, float] = {}
    for group in event_cliques(arguments, linked, trigger_role, limit, budget, triggerless_min):
        for clique in group.cliques:
            members = [group.members[a] for a in clique]
            event = Event(group.event_type, frozenset(arguments[k][1] for k in members))
            score = min(scores[k] for k in members)
            if score > events.get(event, float("-inf")):
                events[event] = score
    if len(set(arguments)) == len(arguments):
        return events
    return {event: events[event] for event in drop_strict_subsets(list(events))}
