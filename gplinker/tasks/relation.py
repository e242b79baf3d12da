"""Relation extraction (GPLinker): subject/object entity head + head-head and tail-tail link heads.

Source: Su Jianlin, "GPLinker: 基于GlobalPointer的实体关系联合抽取" (kexue.fm/archives/8888).
Channels are "predicate@slot" (`Schema.relation_channels`); a DuIE 2.0 complex object is one
five-tuple per slot. Target cells of a triple (s_h..s_t) --p--> (o_h..o_t), as token positions:

    entities[0, s_h, s_t]   entities[1, o_h, o_t]   heads[p@slot, s_h, o_h]   tails[p@slot, s_t, o_t]

The entity head uses RoPE and masks i > j; the link heads do neither (the subject may follow the
object). Decoding keeps the five-tuple (s_h, s_t, p@slot, o_h, o_t) when all four cells score above
the threshold; its score is the smallest of the four logits.

Slot merge (one Relation per subject, predicate and "@value" object): for each (subject, predicate),
every "@value" object found becomes one relation. Each other slot is filled from the objects found
for that slot with the same subject and predicate (its candidates), by distance
gap(a, b) = max(a.start - b.end, b.start - a.end, 0) between character spans:
- at least as many candidates as "@value" objects: values and candidates are paired in text order,
  each value with a distinct candidate, choosing the order-preserving pairing of least total gap
  (parallel lists such as "在《A》中饰演X，在《B》中饰演Y" pair A-X and B-Y, where the nearest
  candidate of X could be B);
- fewer candidates: each value takes its nearest candidate (ties: smaller start, then end), so a
  candidate may serve several values (one date for two awards).
A relation with no candidate for a slot leaves the slot out; slot objects found without any
"@value" object for their subject and predicate are dropped. The merged score is the smallest of
its five-tuples' scores. On the DuIE 2.0 subsets this rule rebuilds all but 10 of the 12,595
located gold SPOs from their own five-tuples (4 train, 6 dev); the rest need links the five-tuples
do not carry (a slot shared by some values of a group but absent from others).

Types: the model predicts none, so decoded triples take the schema's (`Schema.subject_type`,
`Schema.object_type`). `gold()` presents gold triples with the same schema types (those with a
predicate or slot the schema lacks keep theirs and can never be decoded), so the oracle and the
offset-level score measure offsets, predicate and slots, not the data's type labels (DuIE 1.0
types 成立日期 subjects as 机构 or 企业; the schema can give only one).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from operator import itemgetter
from typing import Any, NamedTuple

from gplinker.data.encoding import SPECIAL, Window
from gplinker.data.examples import Example, Relation, Span
from gplinker.data.schema import VALUE_SLOT, Schema
from gplinker.head_spec import HeadSpec
from gplinker.metrics import PRF, Scores, relation_scores, strict_prf, triple_text
from gplinker.probability import probability
from gplinker.tasks.base import Cells, Prediction, ScoredCells, merge_max

SUBJECT, OBJECT = 0, 1  # channels of the entity head
# Bounds on the five-tuple search of one window (five_tuple_search), both far above what a trained
# model needs and both reached by an untrained one (about half its logits above 0), which would
# otherwise build millions of tuples and run for minutes. A perfect model (gold cells,
# `scripts/bench_decode.py --gold-stats`, DuIE 2.0 and 1.0 subsets, train + dev, L 128) needs at
# most 18 tuples and 59 units of work in a window.
MAX_TUPLES = 200  # tuples mapping to characters, strongest head links first: 10x the gold maximum
MAX_WORK = 20_000  # links visited + (link, subject end) probes and their set sizes: ~10 ms of Python

Pos = tuple[int, int]  # (start, end): token positions or character offsets
Cell = tuple[int, int, int, float]  # (channel, i, j, logit)
FiveTuple = tuple[Pos, str, str, Pos]  # (subject chars, predicate, slot, object chars)


class RelationTask:
    name = "relation"
    ENTITIES, HEADS, TAILS = "entities", "heads", "tails"

    def __init__(self, schema: Schema, max_tuples: int = MAX_TUPLES, max_work: int = MAX_WORK):
        self.schema = schema
        self.channels = [(p, s) for p in schema.predicates for s in schema.slots(p)]
        self.channel_index = {pair: k for k, pair in enumerate(self.channels)}
        self.max_tuples, self.max_work = max_tuples, max_work

    def heads(self) -> list[HeadSpec]:
        n = len(self.channels)
        return [
            HeadSpec(self.ENTITIES, 2, rope=True, tril_mask=True),
            HeadSpec(self.HEADS, n, rope=False, tril_mask=False, span_head=False),
            HeadSpec(self.TAILS, n, rope=False, tril_mask=False, span_head=False),
        ]

    def channel_labels(self) -> dict[str, list[str]]:
        """subject and object for the entity head; "predicate@slot" for each channel of the link heads."""
        links = [f"{p}@{s}" for p, s in self.channels]
        return {self.ENTITIES: ["subject", "object"], self.HEADS: links, self.TAILS: list(links)}

    def label_of(self, relation: Relation) -> str:
        """Per-label tables group relations by predicate."""
        return relation.predicate

    def gold(self, example: Example) -> list[Relation]:
        return sorted({self.with_schema_types(r) for r in example.relations})

    def with_schema_types(self, relation: Relation) -> Relation:
        """The relation with the schema's subject and slot types (unchanged if the schema lacks its channels)."""
        p = relation.predicate
        if any((p, slot) not in self.channel_index for slot, _ in relation.objects):
            return relation
        subject = Span(relation.subject.start, relation.subject.end, self.schema.subject_type(p))
        objects = tuple((slot, Span(o.start, o.end, self.schema.object_type(p, slot))) for slot, o in relation.objects)
        return Relation(subject, p, objects)

    def targets(self, example: Example, window: Window) -> Cells:
        entities, heads, tails = set(), set(), set()
        for relation in example.relations:
            placed = self.place(relation, window)
            if placed is None:
                continue
            (sh, st), links = placed
            entities.add((SUBJECT, sh, st))
            for ch, (oh, ot) in links:
                entities.add((OBJECT, oh, ot))
                heads.add((ch, sh, oh))
                tails.add((ch, st, ot))
        return {self.ENTITIES: sorted(entities), self.HEADS: sorted(heads), self.TAILS: sorted(tails)}

    def place(self, relation: Relation, window: Window) -> tuple[Pos, list[tuple[int, Pos]]] | None:
        """(subject positions, [(channel, object positions)]), or None unless every span and slot fits the window."""
        subject = window.token_span(relation.subject.start, relation.subject.end)
        if subject is None:
            return None
        links: list[tuple[int, Pos]] = []
        for slot, span in relation.objects:
            ch = self.channel_index.get((relation.predicate, slot))
            pos = window.token_span(span.start, span.end)
            if ch is None or pos is None:
                return None
            links.append((ch, pos))
        return subject, links

    def decode(self, window: Window, cells: ScoredCells) -> Prediction:
        """Relations of one window, from at most `max_tuples` five-tuples (five_tuple_search's bounds).

        The search also stops at `max_work` units of work. Cells on special tokens never count
        toward either: they are dropped before it, an entity cell must map to characters, a link
        cell must join two content tokens. (An untrained model's strongest cells may all touch
        [CLS]/[SEP]; their tuples would fill the cap and then map to no characters.)
        """
        content = {p for p, span in enumerate(window.char_spans) if span != SPECIAL}
        entities = [cell for cell in cells.get(self.ENTITIES, ()) if window.char_span(cell[1], cell[2]) is not None]
        heads, tails = ([cell for cell in cells.get(head, ()) if cell[1] in content and cell[2] in content]
                        for head in (self.HEADS, self.TAILS))
        tuples = five_tuples(entities, heads, tails, self.max_tuples, self.max_work)
        found: dict[FiveTuple, float] = {}
        for (sh, st, ch, oh, ot), score in tuples.items():
            subject, obj = window.char_span(sh, st), window.char_span(oh, ot)
            if subject is None or obj is None:
                continue
            key = (subject, *self.channels[ch], obj)
            found[key] = max(score, found.get(key, float("-inf")))
        return {self.with_schema_types(r): score for r, score in merge_slots(found).items()}

    def merge(self, windows: Sequence[Prediction]) -> Prediction:
        return merge_max(windows)

    def score(self, examples: Sequence[Example], predictions: Sequence[Prediction]) -> Scores:
        return relation_scores([e.text for e in examples], [self.gold(e) for e in examples],
                               [sorted(p) for p in predictions])

    def score_counts(self, example: Example, prediction: Prediction) -> PRF:
        """Strict triple counts on strings of one example (relation_scores' main)."""
        text = example.text
        return strict_prf([[triple_text(text, r) for r in self.gold(example)]],
                          [[triple_text(text, r) for r in prediction]], label_of=itemgetter(1))[0]

    def item_record(self, text: str, relation: Relation) -> dict[str, Any]:
        """One SPO in the DuIE submission style of the schema, plus character offsets."""
        spo: dict[str, Any] = {"subject": relation.subject.text_in(text), "subject_type": relation.subject.label,
               "predicate": relation.predicate}
        objects = dict(relation.objects)
        if self.schema.relation_format == "duie1" and set(objects) == {VALUE_SLOT}:
            o = objects[VALUE_SLOT]
            spo.update(object=o.text_in(text), object_type=o.label, object_start=o.start, object_end=o.end)
        else:
            spo.update(object={slot: o.text_in(text) for slot, o in objects.items()},
                       object_type={slot: o.label for slot, o in objects.items()},
                       object_start={slot: o.start for slot, o in objects.items()},
                       object_end={slot: o.end for slot, o in objects.items()})
        spo.update(subject_start=relation.subject.start, subject_end=relation.subject.end)
        return spo

    def record(self, example: Example, prediction: Prediction) -> dict[str, Any]:
        spo_list = [{**self.item_record(example.text, r), "score": probability(score)}
                    for r, score in sorted(prediction.items(), key=lambda kv: kv[0])]
        out: dict[str, Any] = {"id": example.json_id()} if example.id is not None else {}
        return {**out, "text": example.text, "spo_list": spo_list}


class FiveTupleSearch(NamedTuple):
    """What `five_tuple_search` found, and the work it spent (units in its docstring)."""

    tuples: dict[tuple[int, int, int, int, int], float]  # (s_h, s_t, channel, o_h, o_t) -> min of four logits
    work: int


def five_tuples(entities: Iterable[Cell], heads: Iterable[Cell], tails: Iterable[Cell],
                limit: int = MAX_TUPLES, budget: int = MAX_WORK) -> dict[tuple[int, int, int, int, int], float]:
    """(s_h, s_t, channel, o_h, o_t) -> min of its four logits, for tuples whose four cells are all present.

    At most `limit` tuples, from the strongest head links; see five_tuple_search.
    """
    return five_tuple_search(entities, heads, tails, limit, budget).tuples


def five_tuple_search(entities: Iterable[Cell], heads: Iterable[Cell], tails: Iterable[Cell],
                      limit: int = MAX_TUPLES, budget: int = MAX_WORK) -> FiveTupleSearch:
    """The five-tuples of five_tuples, with the work spent finding them.

    Walks the head links, not the subject × object pairs: each link (ch, s_h, o_h) looks up the
    subjects starting at s_h and, for each subject end s_t (highest subject logit first),
    intersects the ends of the objects starting at o_h with the tail links (ch, s_t, ·). Links are
    visited from the highest logit down (ties: lowest (ch, s_h, o_h) first), so the tuples kept
    are those of the strongest links.

    Two bounds, both checked inside the loops: at most `limit` tuples, and at most `budget` units
    of work, where a link visited costs 1 and a probe of one (link, subject end) pair costs 1 plus
    the size of the smaller set it intersects. The output cap alone does not bound the work:
    probes whose intersection comes out empty add no tuple. Besides this, the cost is building
    the lookups and sorting the links, linear in the cells (a cell list is at most
    predict.MAX_CELLS long).
    """
    subjects: dict[int, list[tuple[int, float]]] = defaultdict(list)  # start -> [(end, logit)]
    objects: dict[int, dict[int, float]] = defaultdict(dict)  # start -> {end: logit}
    for c, i, j, score in entities:
        if c == SUBJECT:
            subjects[i].append((j, score))
        else:
            objects[i][j] = score
    for ends in subjects.values():
        ends.sort(key=itemgetter(1), reverse=True)  # highest logit first; ties keep the input order
    tail_rows: dict[tuple[int, int], dict[int, float]] = defaultdict(dict)  # (channel, s_t) -> {o_t: logit}
    for c, i, j, score in tails:
        tail_rows[c, i][j] = score
    out: dict[tuple[int, int, int, int, int], float] = {}
    work = 0
    for ch, sh, oh, head_score in sorted(heads, key=lambda cell: (-cell[3], cell[:3])):
        if len(out) >= limit or work >= budget:
            break
        work += 1
        object_ends = objects.get(oh)
        if not object_ends:
            continue
        for st, s_score in subjects.get(sh, ()):
            row = tail_rows.get((ch, st))
            cost = 1 if row is None else 1 + min(len(row), len(object_ends))
            if work + cost > budget:
                return FiveTupleSearch(out, work)
            work += cost
            if row is None:
                continue
            for ot in object_ends.keys() & row.keys():
                out[sh, st, ch, oh, ot] = min(s_score, object_ends[ot], head_score, row[ot])
                if len(out) >= limit:
                    return FiveTupleSearch(out, work)
    return FiveTupleSearch(out, work)


def merge_slots(found: dict[FiveTuple, float]) -> dict[Relation, float]:
    """Relations (types "") from character five-tuples; slot rule in the module docstring."""
    groups: dict[tuple[tuple[int, int], str], dict[str, dict[tuple[int, int], float]]] = defaultdict(
        lambda: defaultdict(dict))  # (subject, predicate) -> slot -> object chars -> score
    for (subject, predicate, slot, obj), score in found.items():
        groups[subject, predicate][slot][obj] = score
    out: dict[Relation, float] = {}
    for (subject, predicate), slots in groups.items():
        values = slots.get(VALUE_SLOT, {})
        relations = {v: ({VALUE_SLOT: v}, score) for v, score in values.items()}
        for slot, candidates in slots.items():
            if slot == VALUE_SLOT or not values:
                continue
            for v, c in fill_slot(list(values), list(candidates)).items():
                objects, score = relations[v]
                relations[v] = ({**objects, slot: c}, min(score, candidates[c]))
        for objects, score in relations.values():
            spans = tuple(sorted((slot, Span(a, b, "")) for slot, (a, b) in objects.items()))
            out[Relation(Span(*subject, ""), predicate, spans)] = score
    return out


def gap(a: tuple[int, int], b: tuple[int, int]) -> int:
    """Characters between two spans [start, end); 0 when they touch or overlap."""
    return max(a[0] - b[1], b[0] - a[1], 0)


def fill_slot(values: list[Pos], candidates: list[Pos]) -> dict[Pos, Pos]:
    """value span -> candidate span for one slot (rule in the module docstring)."""
    values, candidates = sorted(values), sorted(candidates)
    if len(candidates) < len(values):
        return {v: min(candidates, key=lambda c: (gap(v, c), c)) for v in values}
    return aligned(values, candidates)


def aligned(values: list[Pos], candidates: list[Pos]) -> dict[Pos, Pos]:
    """Order-preserving pairing of every value with a distinct candidate, least total gap (both sorted).

    cost[i][j] = least total gap pairing the first i values within the first j candidates
               = min(cost[i][j-1], cost[i-1][j-1] + gap(values[i-1], candidates[j-1])).
    Ties keep the earlier candidates.
    """
    n, m = len(values), len(candidates)
    inf = float("inf")
    cost = [[0.0] * (m + 1)] + [[inf] * (m + 1) for _ in range(n)]
    for i in range(1, n + 1):
        for j in range(i, m + 1):
            cost[i][j] = min(cost[i][j - 1], cost[i - 1][j - 1] + gap(values[i - 1], candidates[j - 1]))
    pairs, i, j = {}, n, m
    while i > 0:
        if j > i and cost[i][j - 1] <= cost[i][j]:
            j -= 1  # candidate j-1 unused: an earlier one does as well
        else:
            pairs[values[i - 1]] = candidates[j - 1]
            i, j = i - 1, j - 1
    return pairs
