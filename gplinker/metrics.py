"""Scores on plain data: strict P/R/F1 and the official CLUENER, DuIE 2.0 and DuEE 1.0 scorers.

Every function takes, per sentence, the text and the gold and predicted labels in CHARACTER
offsets (`gplinker.data.examples`). Nothing here knows about tokens, tensors or files.

Strict scores compare per-sentence SETS of items (duplicates collapse) and sum the counts over
sentences (micro average):

    P = tp / n_pred,  R = tp / n_gold,  F1 = 2PR / (P + R) = 2 tp / (n_pred + n_gold)

with each ratio taken as 0.0 when its denominator is 0. The official scorers follow the
published evaluation code or task description; each docstring says which and how we differ.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, TypeVar

from gplinker.data.examples import TRIGGER_ROLE, Event, Relation, Span

H = TypeVar("H", bound=Hashable)


@dataclass
class PRF:
    """Counts behind a precision / recall / F1 triple; `tp` is a float for soft (char-level) scores."""

    tp: int | float = 0
    n_pred: int | float = 0
    n_gold: int | float = 0

    @property
    def precision(self) -> float:
        """tp / n_pred (0.0 without predictions)."""
        return self.tp / self.n_pred if self.n_pred else 0.0

    @property
    def recall(self) -> float:
        """tp / n_gold (0.0 without gold items)."""
        return self.tp / self.n_gold if self.n_gold else 0.0

    @property
    def f1(self) -> float:
        """The harmonic mean of precision and recall (0.0 without a true positive)."""
        # 2PR / (P + R) == 2 tp / (n_pred + n_gold) whenever tp > 0; both are 0 otherwise.
        return 2 * self.tp / (self.n_pred + self.n_gold) if self.tp else 0.0

    def __add__(self, other: PRF) -> PRF:
        return PRF(self.tp + other.tp, self.n_pred + other.n_pred, self.n_gold + other.n_gold)

    def as_dict(self) -> dict[str, float]:
        """The three ratios and the three counts, for JSON."""
        return {
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "tp": self.tp,
            "n_pred": self.n_pred,
            "n_gold": self.n_gold,
        }


@dataclass
class Scores:
    """What a task's evaluation returns: the headline number, flat metrics, per-label counts, text reports."""

    main: float
    metrics: dict[str, float]
    per_label: dict[str, PRF]
    reports: dict[str, str] = field(default_factory=dict)  # "per_label" table; "seqeval" for NER

    def as_dict(self) -> dict[str, Any]:
        """main, metrics and per-label counts as plain dicts, for JSON (the text reports are left out)."""
        return {
            "main": self.main,
            "metrics": dict(self.metrics),
            "per_label": {label: prf.as_dict() for label, prf in self.per_label.items()},
        }


# --- strict set-based scores -----------------------------------------------------------------


def strict_prf(
    gold: Sequence[Iterable[H]], pred: Sequence[Iterable[H]], label_of: Callable[[H], str]
) -> tuple[PRF, dict[str, PRF]]:
    """Micro P/R/F1 over per-example sets of hashable items, plus one PRF per `label_of(item)`."""
    _check_same_length(gold=gold, pred=pred)
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # label -> [tp, n_pred, n_gold]
    for gold_items, pred_items in zip(gold, pred):
        g, p = set(gold_items), set(pred_items)
        for item in p:
            counts[label_of(item)][1] += 1
        for item in g:
            counts[label_of(item)][2] += 1
        for item in g & p:
            counts[label_of(item)][0] += 1
    per_label = {label: PRF(*counts[label]) for label in sorted(counts)}
    total = sum(per_label.values(), PRF())
    return total, per_label


def format_table(per_label: Mapping[str, PRF], total: PRF | None = None) -> str:
    """A plain-text per-label P/R/F1 table (the CLI renders its own rich version)."""
    rows = [(label, prf) for label, prf in per_label.items()]
    if total is not None:
        rows.append(("(micro)", total))
    width = max([len(label) for label, _ in rows] + [5])
    lines = [f"{'label':<{width}}  {'P':>7} {'R':>7} {'F1':>7} {'tp':>8} {'pred':>6} {'gold':>6}"]
    for label, prf in rows:
        tp = f"{prf.tp:.2f}" if isinstance(prf.tp, float) else str(prf.tp)
        lines.append(
            f"{label:<{width}}  {prf.precision:7.4f} {prf.recall:7.4f} {prf.f1:7.4f} "
            f"{tp:>8} {prf.n_pred:>6} {prf.n_gold:>6}"
        )
    return "\n".join(lines)


def _metrics(prefix: str, prf: PRF) -> dict[str, float]:
    return {f"{prefix}_precision": prf.precision, f"{prefix}_recall": prf.recall, f"{prefix}_f1": prf.f1}


def _check_same_length(**sequences: Sequence[object]) -> None:
    lengths = {name: len(seq) for name, seq in sequences.items()}
    if len(set(lengths.values())) > 1:
        got = ", ".join(f"{n} {name}" for name, n in lengths.items())
        raise ValueError(f"need one entry per sentence in each argument, got {got}")


# --- NER ------------------------------------------------------------------------------------


def ner_scores(texts: Sequence[str], gold: Sequence[Sequence[Span]], pred: Sequence[Sequence[Span]]) -> Scores:
    """Strict span F1 (main), the official CLUENER score and, for flat gold, seqeval on char BIO tags."""
    _check_same_length(texts=texts, gold=gold, pred=pred)
    total, per_label = strict_prf(gold, pred, label_of=lambda span: span.label)
    cluener, _ = cluener_official(texts, gold, pred)
    metrics = {**_metrics("span", total), "cluener_f1": cluener}
    reports = {"per_label": format_table(per_label, total)}
    if not any(has_overlap(spans) for spans in gold):
        precision, recall, f1, report = seqeval_scores(texts, gold, pred)
        metrics.update(seqeval_precision=precision, seqeval_recall=recall, seqeval_f1=f1)
        reports["seqeval"] = report
    return Scores(main=total.f1, metrics=metrics, per_label=per_label, reports=reports)


def cluener_official(
    texts: Sequence[str],
    gold: Sequence[Sequence[Span]],
    pred: Sequence[Sequence[Span]],
    labels: Sequence[str] | None = None,
) -> tuple[float, dict[str, float]]:
    """The CLUENER2020 official score: macro average over labels of per-label surface-string F1.

    Source: CLUEbenchmark/CLUENER2020 `score.py` (`get_f1_score_label`, `get_f1_score`). For each
    label and each sentence it takes the SET of surface strings of that label (the keys of
    `label[type]`, i.e. `text[start:end]`, compared exactly, case-sensitive) in the prediction
    and in the gold line; a predicted string in the gold set is a TP, otherwise a FP; a gold string
    not predicted is a FN. TP/FP/FN are summed over sentences, F1 is computed per label, and the
    score is the plain (macro) mean of the per-label F1. Two mentions of one string in a sentence
    count once; offsets are ignored, so a right string at the wrong place still counts.

    Differences: the official script averages over its fixed list of the 10 CLUENER types; we
    average over `labels` if given, else over the labels present in the gold data (the same 10 on
    CLUENER dev). Predicted labels outside that list are ignored, as in the official script. A
    label with no TP gets F1 0.0 where the official script divides by zero.
    """
    _check_same_length(texts=texts, gold=gold, pred=pred)
    if labels is None:
        labels = sorted({span.label for spans in gold for span in spans})
    counts = {label: PRF() for label in labels}
    for text, gold_spans, pred_spans in zip(texts, gold, pred):
        gold_strings, pred_strings = _surfaces(text, gold_spans), _surfaces(text, pred_spans)
        for label in labels:
            g, p = gold_strings.get(label, set()), pred_strings.get(label, set())
            counts[label] += PRF(len(g & p), len(p), len(g))
    per_label = {label: prf.f1 for label, prf in counts.items()}
    score = sum(per_label.values()) / len(per_label) if per_label else 0.0
    return score, per_label


def _surfaces(text: str, spans: Iterable[Span]) -> dict[str, set[str]]:
    by_label: dict[str, set[str]] = defaultdict(set)
    for span in spans:
        by_label[span.label].add(span.text_in(text))
    return by_label


def has_overlap(spans: Iterable[Span]) -> bool:
    """True if two distinct spans share a character (nested, crossing, or same offsets, two labels)."""
    ordered = sorted(set(spans))
    reach = -1
    for span in ordered:
        if span.start < reach:
            return True
        reach = max(reach, span.end)
    return False


def bio_tags(length: int, spans: Iterable[Span]) -> list[str]:
    """Char-level IOB2 tags; where spans overlap, the earliest (then longest) span wins, the rest are dropped."""
    tags = ["O"] * length
    for span in sorted(set(spans), key=lambda s: (s.start, s.start - s.end, s.label)):
        if span.end > length or any(tag != "O" for tag in tags[span.start : span.end]):
            continue
        tags[span.start] = f"B-{span.label}"
        for i in range(span.start + 1, span.end):
            tags[i] = f"I-{span.label}"
    return tags


def seqeval_scores(
    texts: Sequence[str], gold: Sequence[Sequence[Span]], pred: Sequence[Sequence[Span]]
) -> tuple[float, float, float, str]:
    """seqeval micro P/R/F1 and its classification report on char-level IOB2 tags of the spans."""
    from seqeval.metrics import classification_report, f1_score, precision_score, recall_score

    _check_same_length(texts=texts, gold=gold, pred=pred)
    y_true = [bio_tags(len(text), spans) for text, spans in zip(texts, gold)]
    y_pred = [bio_tags(len(text), spans) for text, spans in zip(texts, pred)]
    precision = float(precision_score(y_true, y_pred, zero_division=0))
    recall = float(recall_score(y_true, y_pred, zero_division=0))
    f1 = float(f1_score(y_true, y_pred, zero_division=0))
    has_entities = any(tag != "O" for tags in y_true + y_pred for tag in tags)
    # seqeval's report raises on input without any entity; there is nothing to report then.
    report = classification_report(y_true, y_pred, digits=4, zero_division=0) if has_entities else ""
    return precision, recall, f1, report


# --- relations ------------------------------------------------------------------------------

Triple = tuple[str, str, frozenset[tuple[str, str]]]  # (subject text, predicate, frozenset of (slot, object text))


def triple_text(text: str, relation: Relation) -> Triple:
    """The relation as strings: (subject text, predicate, frozenset of (slot, object text))."""
    objects = frozenset((slot, span.text_in(text)) for slot, span in relation.objects)
    return relation.subject.text_in(text), relation.predicate, objects


def last_word_triple(triple: Triple) -> Triple:
    """A string triple with each entity cut to its last whitespace-separated word (the NYT* / WebNLG* convention,
    whose files annotate only that word: CasRel, Wei et al. 2020); text without spaces is unchanged."""
    def last(mention: str) -> str:
        words = mention.split()
        return words[-1] if words else mention

    subject, predicate, objects = triple
    return last(subject), predicate, frozenset((slot, last(o)) for slot, o in objects)


def relation_scores(
    texts: Sequence[str], gold: Sequence[Sequence[Relation]], pred: Sequence[Sequence[Relation]]
) -> Scores:
    """Strict triple F1 on strings (main: the whole-span convention of NYT / WebNLG), the same on the last word
    of each entity (`last_word_*`: NYT* / WebNLG*), strict offset-level F1, and the official DuIE 2.0 score."""
    _check_same_length(texts=texts, gold=gold, pred=pred)
    gold_triples = [[triple_text(t, r) for r in rels] for t, rels in zip(texts, gold)]
    pred_triples = [[triple_text(t, r) for r in rels] for t, rels in zip(texts, pred)]
    total, per_label = strict_prf(gold_triples, pred_triples, label_of=lambda triple: triple[1])
    # Offset level: the Relation itself, so offsets, predicate and entity types must all match.
    offsets, _ = strict_prf(gold, pred, label_of=lambda relation: relation.predicate)
    last_word, _ = strict_prf([[last_word_triple(t) for t in ts] for ts in gold_triples],
                              [[last_word_triple(t) for t in ts] for ts in pred_triples], label_of=itemgetter(1))
    duie = duie2_official(texts, gold, pred)
    metrics = {**_metrics("triple", total), **_metrics("last_word", last_word), **_metrics("offset", offsets),
               **_metrics("duie", duie)}
    reports = {"per_label": format_table(per_label, total)}
    return Scores(main=total.f1, metrics=metrics, per_label=per_label, reports=reports)


def duie_normalize(mention: str) -> str:
    """DuIE official normalisation: lowercase, then drop one enclosing pair of 《 》 book-title marks."""
    mention = mention.lower()
    if mention.startswith("《") and mention.endswith("》"):
        mention = mention[1:-1]
    return mention


def duie2_official(
    texts: Sequence[str], gold: Sequence[Sequence[Relation]], pred: Sequence[Sequence[Relation]]
) -> PRF:
    """The DuIE 2.0 official triple score (LIC2020 `re_official_evaluation.py`).

    Source: PaddlePaddle/PaddleNLP examples/information_extraction/DuIE/re_official_evaluation.py
    (`_parse_structured_ovalue`, `del_duplicate`, `is_spo_in_list`, `_is_equal_o`, `calc_pr`):
    - subject and every object value are lowercased and lose one enclosing 《 》 pair;
      the predicate is compared as is; subject and object TYPES are not compared;
    - objects are compared as dicts: the same slot keys on both sides (both ways) and equal
      values in every slot, so a complex object counts only when every slot, "@value" included,
      matches; "@value" is an ordinary key with no special treatment;
    - gold and predicted triples are deduplicated per sentence before counting;
      P = correct deduplicated predictions / deduplicated predictions,
      R = gold triples found among the predictions / deduplicated gold triples;
    - an optional alias file (word TAB alias...) lets a value also match its listed aliases. The
      file is not part of the released data and the script defaults to none, so values match
      exactly; we do the same and take no alias file.
    Differences: the script keys sentences by their text (repeated texts collapse, predictions for
    texts missing from the gold file are ignored) and rounds to 4 decimals; we pair sentences by
    position and do not round. Gold triples the reader could not locate in the text are absent
    from `gold` here, whereas the official gold file keeps them.
    """
    _check_same_length(texts=texts, gold=gold, pred=pred)
    total = PRF()
    for text, gold_relations, pred_relations in zip(texts, gold, pred):
        g = {_duie_key(text, r) for r in gold_relations}
        p = {_duie_key(text, r) for r in pred_relations}
        total += PRF(len(g & p), len(p), len(g))
    return total


def _duie_key(text: str, relation: Relation) -> Triple:
    subject, predicate, objects = triple_text(text, relation)
    return duie_normalize(subject), predicate, frozenset((slot, duie_normalize(o)) for slot, o in objects)


# --- events ---------------------------------------------------------------------------------

EventKey = tuple[str, frozenset[tuple[str, str, int]]]  # (event type, {(role, text, start)})


def event_scores(texts: Sequence[str], gold: Sequence[Sequence[Event]], pred: Sequence[Sequence[Event]]) -> Scores:
    """Official DuEE argument F1 (main), strict event / argument / trigger F1, per event type."""
    _check_same_length(texts=texts, gold=gold, pred=pred)

    def events_of(events_per_text: Sequence[Sequence[Event]]) -> list[set[EventKey]]:
        return [{_event_key(t, e) for e in events} for t, events in zip(texts, events_per_text)]

    def arguments_of(events_per_text: Sequence[Sequence[Event]]) -> list[set[tuple[str, str, str, int]]]:
        return [_strict_arguments(t, events) for t, events in zip(texts, events_per_text)]

    def triggers_of(events_per_text: Sequence[Sequence[Event]]) -> list[set[tuple[str, str, int]]]:
        return [_triggers(t, events) for t, events in zip(texts, events_per_text)]

    by_type = itemgetter(0)  # every item starts with the event type
    event_total, _ = strict_prf(events_of(gold), events_of(pred), label_of=by_type)
    argument_total, per_label = strict_prf(arguments_of(gold), arguments_of(pred), label_of=by_type)
    trigger_total, _ = strict_prf(triggers_of(gold), triggers_of(pred), label_of=by_type)
    duee = duee_official(texts, gold, pred)
    metrics = {
        **_metrics("duee", duee),
        **_metrics("event", event_total),
        **_metrics("argument", argument_total),
        **_metrics("trigger", trigger_total),
    }
    reports = {"per_label": format_table(per_label, argument_total)}
    return Scores(main=duee.f1, metrics=metrics, per_label=per_label, reports=reports)


def _event_key(text: str, event: Event) -> EventKey:
    # Strict event: (type, {(role, text, start)}) with the trigger as one of the roles, as in
    # GPLinker's DuEE evaluation. Every predicted event counts in the denominator; GPLinker's
    # script skips predicted events without a trigger, which its decoder never emits (ours does
    # with model.event.require_trigger false, and they count like any other).
    return event.type, frozenset((a.label, a.text_in(text), a.start) for a in event.arguments)


def _strict_arguments(text: str, events: Iterable[Event]) -> set[tuple[str, str, str, int]]:
    # Strict argument: (event type, role, text, start), trigger excluded, as in GPLinker's DuEE evaluation.
    return {
        (event.type, a.label, a.text_in(text), a.start)
        for event in events
        for a in event.arguments
        if a.label != TRIGGER_ROLE
    }


def _triggers(text: str, events: Iterable[Event]) -> set[tuple[str, str, int]]:
    return {(e.type, a.text_in(text), a.start) for e in events for a in e.arguments if a.label == TRIGGER_ROLE}


def char_f1(predicted: str, gold: str) -> float:
    """Bag-of-characters F1: common = |Counter(predicted) & Counter(gold)|, P = common/|pred|, R = common/|gold|."""
    common = sum((Counter(predicted) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def duee_official(
    texts: Sequence[str],
    gold: Sequence[Sequence[Event]],
    pred: Sequence[Sequence[Event]],
    aliases: Sequence[Mapping[Span, Iterable[str]]] | None = None,
) -> PRF:
    """The DuEE 1.0 official argument score (char-level F1), returned as a PRF with a float `tp`.

    Source: the task's published evaluation method (LIC2020 DuEE task page, reproduced in
    PaddlePaddle/PaddleNLP examples/information_extraction/DuEE/README.md, "评测方法"); we found no
    public copy of the scoring script itself. Per sentence, every argument is (event type, role, text),
    case-insensitive; the trigger is not an argument (the submission format lists it apart), so
    role 触发词 is excluded. A predicted argument scores
        event type correct * role correct * char-level F1(predicted text, gold text),
    taking the best gold argument of the same event type and role in the same sentence, and the
    best of a gold argument's expressions when it has aliases
    ("如论元有多个表述，则取多个匹配F1中的最高值").
    Char-level F1 counts common characters as a multiset (see `char_f1`). Then
        P = sum of scores / #predicted arguments,  R = sum of scores / #gold arguments.
    Conventions we chose where the description is silent, following the public re-implementation
    DuEETextMetric (its reader deduplicates (event type, role, argument) per sentence):
    - predicted and gold arguments are SETS of (event type, role, lowercased text) per sentence,
      so a duplicate prediction (e.g. the same argument in two predicted events of one type)
      counts once, and argument offsets are ignored;
    - matching is not one-to-one: two predictions may both take credit from one gold argument
      (e.g. 王某 and 嫌犯王某 against gold 嫌犯王某), so on a tiny sample R, and F1, can exceed 1.
    `aliases[i]` maps a gold argument span of sentence i to its alternative surface strings
    (the readers keep DuEE `alias` lists in `Example.meta["aliases"]`; on DuEE dev all are empty).
    """
    _check_same_length(texts=texts, gold=gold, pred=pred)
    if aliases is not None:
        _check_same_length(texts=texts, aliases=aliases)
    total = PRF(0.0, 0, 0)
    for i, (text, gold_events, pred_events) in enumerate(zip(texts, gold, pred)):
        alias_of = aliases[i] if aliases is not None else {}
        expressions: dict[tuple[str, str], set[str]] = defaultdict(set)  # (type, role) -> gold texts
        gold_arguments: set[tuple[str, str, str]] = set()  # (event type, role, lowercased text)
        for event in gold_events:
            for a in event.arguments:
                if a.label == TRIGGER_ROLE:
                    continue
                mention = a.text_in(text).lower()
                gold_arguments.add((event.type, a.label, mention))
                expressions[event.type, a.label].add(mention)
                expressions[event.type, a.label].update(x.lower() for x in alias_of.get(a, ()))
        predicted = {
            (event.type, a.label, a.text_in(text).lower())
            for event in pred_events
            for a in event.arguments
            if a.label != TRIGGER_ROLE
        }
        score = math.fsum(  # exact: the set's iteration order (it varies with insertion history) cannot change it
            max((char_f1(mention, g) for g in expressions.get((etype, role), ())), default=0.0)
            for etype, role, mention in predicted
        )
        total += PRF(score, len(predicted), len(gold_arguments))
    return total


def duee_submission_scores(texts: Sequence[str], gold: Sequence[Sequence[Event]],
                           pred: Sequence[Sequence[Event]]) -> Scores:
    """The official DuEE score (main) and per event type, for predictions without offsets or triggers.

    A DuEE submission lists argument strings only, so of `event_scores` just the official score,
    which compares strings, can be computed; per event type it is `duee_official` on that type's events.
    """
    duee = duee_official(texts, gold, pred)
    types = sorted({e.type for events in [*gold, *pred] for e in events})
    per_label = {t: duee_official(texts, [[e for e in g if e.type == t] for g in gold],
                                  [[e for e in p if e.type == t] for p in pred]) for t in types}
    reports = {"per_label": format_table(per_label, duee)}
    return Scores(main=duee.f1, metrics=_metrics("duee", duee), per_label=per_label, reports=reports)
