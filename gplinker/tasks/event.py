"""Events (GPLinker): one EGP channel per (event type, role), two link heads, maximal-clique decoding.

Source: Su Jianlin, "GPLinker: 基于GlobalPointer的事件联合抽取", https://kexue.fm/archives/8926.
The trigger is one more role of each event type (触发词), so every item is an argument.

Targets, for each gold event and its arguments expressible in the window (head token h, tail t):
    arguments[label(event type, role), h, t]
    head_links[0, min(h1, h2), max(h1, h2)]   and   tail_links[0, min(t1, t2), max(t1, t2)]
for every pair of its arguments. Links are stored at (min, max), never below the diagonal, so the
tril mask of the link heads never hides a positive. RoPE is off for the links (they pair distant
tokens, relative position carries no signal there).

Decoding: the arguments are the cells above the threshold; two arguments of one event type are
linked iff both their head pair and their tail pair are above the threshold; each maximal clique
of that graph that holds a trigger is an event (`event_assembly.scored_events`). An event's score is
the lowest logit among its arguments. With `require_trigger=False` (model.event.require_trigger), a
maximal clique without a trigger is an event too when it holds at least `min_arguments` arguments
(PaddleNLP #8951: events whose text names no trigger); gold events without a trigger are learned
like the others (their arguments and links are targets either way).
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from gplinker.data.encoding import Window
from gplinker.data.examples import TRIGGER_ROLE, Event, Example, Span
from gplinker.data.schema import Schema
from gplinker.head_spec import HeadSpec
from gplinker.metrics import PRF, Scores, duee_official, event_scores
from gplinker.probability import probability
from gplinker.tasks.base import Cells, Prediction, ScoredCells
from gplinker.tasks.event_assembly import drop_strict_subsets, scored_events

# Arguments kept per event type and window, best logits first, before the clique search. An
# untrained or confused model can put thousands of cells above the threshold, and Bron–Kerbosch is
# exponential in the worst case: a random link graph of edge density 0.9 has ~16k maximal cliques
# at 40 nodes (search 15 ms from one trigger, 32 ms from all) but ~730k at 64 nodes (0.6 s; 1.7 s)
# (scripts/bench_cliques.py, 2 CPU cores). 40 is the dense worst case the issue asks for, and
# DuEE dev needs at most 23 (distinct arguments of one type in one sentence).
MAX_ARGUMENTS_PER_TYPE = 40
# Bounds on the clique search of one window, all event types together (event_assembly.event_cliques),
# checked inside the Bron–Kerbosch loop: the cap above bounds each type's graph, not the number of
# types searched (65 in DuEE) nor their cliques (3,310 from one trigger on the G(40, 0.9) of
# scripts/bench_decode.py). A perfect model (gold cells, `scripts/bench_decode.py --gold-stats`,
# DuEE train + dev, L 352) gives at most 12 cliques from 28 frames in a window.
MAX_EVENTS = 1_000  # cliques (events) per window
MAX_FRAMES = 20_000  # Bron–Kerbosch frames per window (~1.7 µs each on 40 nodes): ~35 ms at most


class EventTask:
    name = "event"
    ARGUMENTS, HEAD_LINKS, TAIL_LINKS = "arguments", "head_links", "tail_links"

    def __init__(self, schema: Schema, max_arguments_per_type: int = MAX_ARGUMENTS_PER_TYPE,
                 max_events: int = MAX_EVENTS, max_frames: int = MAX_FRAMES, require_trigger: bool = True,
                 min_arguments: int = 2):
        self.schema = schema
        # None: every event holds a trigger; else the fewest arguments of an event without one
        self.triggerless_min = None if require_trigger else min_arguments
        self.labels = list(schema.event_roles)  # channel c of the argument head <-> (event type, role)
        self.label_index = {label: c for c, label in enumerate(self.labels)}
        self.max_arguments_per_type = max_arguments_per_type
        self.max_events, self.max_frames = max_events, max_frames

    def heads(self) -> list[HeadSpec]:
        return [
            HeadSpec(self.ARGUMENTS, len(self.labels), rope=True, tril_mask=True),
            HeadSpec(self.HEAD_LINKS, 1, rope=False, tril_mask=True, span_head=False),
            HeadSpec(self.TAIL_LINKS, 1, rope=False, tril_mask=True, span_head=False),
        ]

    def channel_labels(self) -> dict[str, list[str]]:
        """"event type/role" for each argument channel; the one channel of each link head is "link"."""
        return {self.ARGUMENTS: [f"{t}::{r}" for t, r in self.labels], self.HEAD_LINKS: ["link"],
                self.TAIL_LINKS: ["link"]}

    def gold(self, example: Example) -> list[Event]:
        return list(example.events)

    def label_of(self, event: Event) -> str:
        """The per-label key of an event in tables: its event type."""
        return event.type

    def targets(self, example: Example, window: Window) -> Cells:
        """Argument cells of every expressible argument; head/tail link cells for each pair within an event."""
        arguments, heads, tails = set(), set(), set()
        for event in example.events:
            placed = []  # (h, t) of this event's arguments expressible in the window
            for span in sorted(event.arguments):
                label = self.label_index.get((event.type, span.label))
                pos = window.token_span(span.start, span.end)
                if label is None or pos is None:
                    continue
                arguments.add((label, *pos))
                placed.append(pos)
            for a, (h1, t1) in enumerate(placed):
                for h2, t2 in placed[a + 1 :]:
                    heads.add((0, min(h1, h2), max(h1, h2)))
                    tails.add((0, min(t1, t2), max(t1, t2)))
        return {self.ARGUMENTS: sorted(arguments), self.HEAD_LINKS: sorted(heads), self.TAIL_LINKS: sorted(tails)}

    def decode(self, window: Window, cells: ScoredCells) -> Prediction:
        """Events (maximal cliques with a trigger, or without one as the module docstring says) of one window,
        each scored by its lowest argument logit.

        At most `max_events`, from at most `max_frames` search frames, those of the strongest
        triggers first (top_arguments' order). Arguments on special tokens never count. Besides the
        search, linking tests at most n(n - 1)/2 pairs per event type with a trigger, n at most
        `max_arguments_per_type`.
        """
        items = self.top_arguments(window, cells.get(self.ARGUMENTS, ()))
        heads = {(i, j) for _, i, j, _ in cells.get(self.HEAD_LINKS, ())}
        tails = {(i, j) for _, i, j, _ in cells.get(self.TAIL_LINKS, ())}
        keys = list(items)
        positions = [items[k][0] for k in keys]

        def linked(a: int, b: int) -> bool:
            (h1, t1), (h2, t2) = positions[a], positions[b]
            return (min(h1, h2), max(h1, h2)) in heads and (min(t1, t2), max(t1, t2)) in tails

        return scored_events(keys, [items[k][1] for k in keys], linked, limit=self.max_events,
                             budget=self.max_frames, triggerless_min=self.triggerless_min)

    def top_arguments(self, window: Window, cells: Iterable[tuple[int, int, int, float]]
                      ) -> dict[tuple[str, Span], tuple[tuple[int, int], float]]:
        """(event type, span) -> ((i, j), logit) for the argument cells, at most `max_arguments_per_type` per type.

        Cells that map to no characters (special tokens) are skipped; when two cells give the same
        character span, the higher logit wins. Order, which the clique search's bounds follow: event
        types by their best trigger logit (types without a trigger last; ties by name), and in each
        type the arguments from the highest logit down.
        """
        per_type: dict[str, dict[Span, tuple[tuple[int, int], float]]] = defaultdict(dict)
        for c, i, j, score in cells:
            chars = window.char_span(i, j)
            if chars is None:
                continue
            event_type, role = self.labels[c]
            span = Span(chars[0], chars[1], role)
            seen = per_type[event_type].get(span)
            if seen is None or score > seen[1]:
                per_type[event_type][span] = ((i, j), score)
        kept = {event_type: heapq.nlargest(self.max_arguments_per_type, spans.items(), key=lambda kv: (kv[1][1], kv[0]))
                for event_type, spans in per_type.items()}

        def strongest_trigger_first(event_type: str) -> tuple[float, str]:
            triggers = [logit for span, (_, logit) in kept[event_type] if span.label == TRIGGER_ROLE]
            return -max(triggers, default=float("-inf")), event_type

        return {(event_type, span): value for event_type in sorted(kept, key=strongest_trigger_first)
                for span, value in kept[event_type]}

    def merge(self, windows: Sequence[Prediction]) -> Prediction:
        """Union of the windows' events (best score), without strict subsets of another event of its type."""
        merged: Prediction = {}
        for prediction in windows:
            for event, score in prediction.items():
                if score > merged.get(event, float("-inf")):
                    merged[event] = score
        if len(windows) <= 1:
            return merged  # one window's cliques are already distinct and never nested
        return {event: merged[event] for event in drop_strict_subsets(list(merged))}

    def score(self, examples: Sequence[Example], predictions: Sequence[Prediction]) -> Scores:
        return event_scores([e.text for e in examples], [e.events for e in examples], [list(p) for p in predictions])

    def score_counts(self, example: Example, prediction: Prediction) -> PRF:
        """The official DuEE argument counts of one example (event_scores' main; char-level, so `tp` is a float)."""
        return duee_official([example.text], [example.events], [list(prediction)])

    def item_record(self, text: str, event: Event) -> dict[str, Any]:
        arguments = sorted(event.arguments, key=lambda s: (s.start, s.end, s.label))
        trigger = event.trigger
        return {
            "event_type": event.type,
            "trigger": None if trigger is None else trigger.text_in(text),
            "arguments": [{"role": a.label, "text": a.text_in(text), "start": a.start, "end": a.end}
                          for a in arguments],
        }

    def record(self, example: Example, prediction: Prediction) -> dict[str, Any]:
        """DuEE 1.0 submission format (readable back by the DuEE reader), plus a score per event."""
        text = example.text
        event_list: list[dict[str, Any]] = []
        for event, score in sorted(prediction.items(), key=lambda kv: _event_order(kv[0])):
            trigger = event.trigger
            arguments = sorted((a for a in event.arguments if a != trigger), key=lambda s: (s.start, s.end, s.label))
            event_list.append({
                "event_type": event.type,
                "trigger": None if trigger is None else trigger.text_in(text),
                "trigger_start_index": None if trigger is None else trigger.start,
                "arguments": [
                    {"role": a.label, "argument": a.text_in(text), "argument_start_index": a.start} for a in arguments
                ],
                "score": probability(score),
            })
        out: dict[str, Any] = {"id": example.json_id()} if example.id is not None else {}
        return {**out, "text": text, "event_list": event_list}


def _event_order(event: Event) -> tuple[int, str, list[Span]]:
    trigger = event.trigger
    start = trigger.start if trigger is not None else -1
    return start, event.type, sorted(event.arguments)
