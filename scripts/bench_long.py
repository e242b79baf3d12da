"""Documents with a model trained on sentences: span F1 on the sentences vs on documents joined from them.

What is measured, and how:
  data   --docs (the default): a synthetic CLUENER-like set written by scripts/make_long_data.py (person,
         organization (北京大学 nests 北京), location, book 《…》; sentences of 20-40 characters), 2,000 train
         and 600 dev sentences, seeded. --task relation / --task event: the same kind of sentences with triples
         (DuIE 2.0 format: 毕业院校, 作者, 出版社, ...) or events (DuEE 1.0 format: 人生-毕业, 交往-会见, ...), every
         triple and event inside one sentence, and their schemas. --cluener: CLUENER2020 train/dev read in place
         from ../shared/data/cluener (research licence: nothing of it is written into the repo).
  train  one model per variant on the training sentences (gplinker.commands.train.train, scratch encoder,
         data.max_length 128, data.stride 32, best checkpoint by span F1 on the dev sentences). Budget: synthetic
         --epochs 4 (dev span F1 0.996 after 3 epochs in a trial), scratch BERT 128 x 2 layers, batch 16, lr 1e-3;
         CLUENER --cluener-epochs 1 of batch 32 (336 steps), same encoder sizes, char_level: about 3.5-5 min per
         variant at load 5 on 2 cores (the setup prints its budget). Packing makes fewer windows (CLUENER: 3,833
         for 10,748 sentences), so c runs as many optimizer steps as a and b, not as many epochs:
           a  before       model.max_span_length=none, data.pack=false; predicted with windows of data.max_length
                           (Predictor.from_pretrained(max_length=128), i.e. `gplinker predict --max-length 128`)
           b  auto limits  the defaults (model.max_span_length auto); predicted as `gplinker predict` predicts
                           (Predictor.from_pretrained: windows at most the longest training window, a
                           document cut at sentence ends)
           c  auto + pack  b with data.pack=true, train.max_steps = the steps of a and b
           d  pack half    b with data.pack=0.5 (about half of the windows are packs, the others one sentence
                           each), train.max_steps = the steps of a and b
  docs   the dev sentences, in order, cut into groups of about --doc-chars characters and joined with no separator
         (--separator newline: one sentence per line), every gold span shifted into its document: each dev sentence
         is in exactly one document, so the sentence and document scores cover the same gold spans and the same
         characters. The synthetic sentences end in 。; CLUENER's texts seldom do (they are fragments), so joined
         with nothing, a span at a text's first or last character meets the next text with no mark between them:
         NER prints the recall of such edge spans and of the others, on sentences and on documents.
  score  strict micro P/R/F1 (gplinker.metrics.strict_prf) of the task's items on the sentences and on the
         documents, and their ratio: entity spans (the main score of `gplinker eval` for NER), triples with every
         slot, whole events (type and every argument, trigger included). NER: predicted document spans longer
         (characters) than the longest training span of their label, and longer (tokens) than the limit the model
         dir records (config.json gplinker.limits.heads.entities: the label's decoding limit, else the head's
         max_span). Relations and events: predicted document triples / events whose spans lie in two or more of
         the joined sentences (no gold one does: each is an error made possible by the joining).
  time   Predictor.predict over all the sentences and over all the documents (the same characters), alternating,
         median of --repeats runs each after a warm-up: a wall-clock ratio measured side by side (the goal), and
         the same ratio of process CPU time, steadier on a shared machine.
Goals: document F1 / sentence F1 >= 0.97; no predicted document span longer than any training span of its label with
auto limits (b, c); no triple or event across sentences; decode time per document character <= 1.2x that per
sentence character.

    python scripts/bench_long.py                # --docs: synthetic set, variants a b c (about 10-25 min on 2 cores)
    python scripts/bench_long.py --task relation   # the same with triples (--task event: events)
    python scripts/bench_long.py --cluener      # CLUENER2020, variants a b c, --cluener-epochs each (slow)
    python scripts/bench_long.py --cluener --separator newline   # CLUENER's texts one per line of a document
    python scripts/bench_long.py --keep runs/long --reuse --repeats 9   # measure again, without training
    python scripts/bench_long.py --smoke        # 200 sentences, 1 epoch, 5 documents, variants a b: about a minute
"""

from __future__ import annotations

import argparse
import bisect
import gc
import json
import statistics
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench_machine import add_huge_pages_flag, machine, setup_like_cli  # scripts/ is on sys.path when a script runs
from make_long_data import (
    event_sentences,
    group_by_chars,
    relation_sentences,
    sentences,
    write_event_schema,
    write_jsonl,
    write_relation_schema,
)

REPO = Path(__file__).resolve().parents[1]
CLUENER = REPO.parent / "shared" / "data" / "cluener"
RATIO_GOAL, TIME_GOAL = 0.97, 1.2


@dataclass(frozen=True)
class Variant:
    key: str
    name: str
    sets: tuple[str, ...]
    force_window: bool  # predict with windows of data.max_length, not those the model dir asks for
    same_steps: bool = False  # as many optimizer steps as the unpacked variants (packing makes fewer windows)


VARIANTS = {
    "a": Variant("a", "before", ("model.max_span_length=none", "data.pack=false"), True),
    "b": Variant("b", "auto limits", (), False),
    "c": Variant("c", "auto + pack", ("data.pack=true",), False, same_steps=True),
    "d": Variant("d", "pack half", ("data.pack=0.5",), False, same_steps=True),
}


@dataclass
class Setup:
    """One data set and the training budget its variants share."""

    name: str
    train: Path
    dev: Path
    fmt: str
    sets: list[str]  # encoder sizes and optimisation, the same for every variant
    budget: str  # the budget in words, printed
    task: str = "ner"
    schema: Path | None = None  # relation / event schema file
    steps: int = 0  # optimizer steps of an unpacked variant (a packed one runs as many); 0: its epochs


@dataclass
class Result:
    variant: Variant
    note: str = ""  # why the variant was skipped, or what to know about it
    numbers: dict[str, Any] = field(default_factory=dict)


def read(path: Path, fmt: str, task: str) -> list:
    from gplinker.data.reading import read_examples

    examples, _ = read_examples(path, fmt, task)
    return examples


SEPARATORS = {"none": "", "newline": "\n"}


def documents_of(examples: Sequence, chars: int, separator: str = "") -> tuple[list, list[list[int]]]:
    """The examples cut into consecutive groups of about `chars` characters, each joined by `separator`,
    and the start character of every sentence in its document."""
    from gplinker.data.examples import joined

    groups = group_by_chars(examples, lambda e: len(e.text), chars)
    starts = [[sum(len(e.text) + len(separator) for e in group[:k]) for k in range(len(group))] for group in groups]
    return [joined(list(group), separator=separator) for group in groups], starts


def edge_recall(sents: Sequence, sent_predictions: Sequence, starts: Sequence[list[int]],
                doc_predictions: Sequence) -> dict[str, tuple[int, int, int]]:
    """NER gold spans at a sentence's edge (starting at its first or ending at its last character) and inside it:
    (gold, found predicting the sentence, found predicting its document) for each group. Joined with no separator,
    an edge is a boundary the document's text no longer marks."""
    counts = {"edge": [0, 0, 0], "inside": [0, 0, 0]}
    k = 0
    for firsts, doc_prediction in zip(starts, doc_predictions):
        in_doc = {(s.start, s.end, s.label) for s in doc_prediction}
        for first in firsts:
            sentence, found = sents[k], {(s.start, s.end, s.label) for s in sent_predictions[k]}
            for g in sentence.spans:
                row = counts["edge" if g.start == 0 or g.end == len(sentence.text) else "inside"]
                row[0] += 1
                row[1] += (g.start, g.end, g.label) in found
                row[2] += (g.start + first, g.end + first, g.label) in in_doc
            k += 1
    return {key: (a, b, c) for key, (a, b, c) in counts.items()}


def item_spans(item: Any) -> list:
    """The character spans of a predicted item: an entity span, a triple's subject and objects, an event's arguments."""
    if hasattr(item, "subject"):
        return [item.subject, *(o for _, o in item.objects)]
    if hasattr(item, "arguments"):
        return list(item.arguments)
    return [item]


def across_sentences(predictions: Sequence, starts: Sequence[list[int]]) -> int:
    """Predicted document items whose spans lie in two or more of its sentences (no gold item does)."""
    return sum(len({bisect.bisect_right(first, s.start) for s in item_spans(item)}) > 1
               for prediction, first in zip(predictions, starts) for item in prediction)


def task_gold(task: str, example: Any) -> Sequence:
    return {"ner": example.spans, "relation": example.relations, "event": example.events}[task]


def longest_per_label(examples: Sequence) -> dict[str, int]:
    out: dict[str, int] = {}
    for e in examples:
        for s in e.spans:
            out[s.label] = max(out.get(s.label, 0), s.end - s.start)
    return out


def train_variant(setup: Setup, variant: Variant, out: Path, reuse: bool) -> tuple[dict[str, Any] | None, str]:
    """Train one variant into `out`; (numbers, note), numbers None when the config refuses a knob.

    With `reuse`, a variant whose `out/best` exists is not trained again (its history gives steps and dev F1).
    """
    if reuse and (out / "best" / "config.json").is_file() and (out / "history.json").is_file():
        history = json.loads((out / "history.json").read_text(encoding="utf-8"))
        return {"train_s": None, "steps": max(h["step"] for h in history), "windows": None,
                "best_dev": max(h["score"] for h in history)}, ""
    from gplinker.commands.train import train
    from gplinker.config import load_config
    from gplinker.errors import ConfigError

    schema = [f"data.schema={setup.schema}"] if setup.schema else []
    sets = [f"data.train={setup.train}", f"data.dev={setup.dev}", f"data.format={setup.fmt}", f"task={setup.task}",
            *schema, "data.max_length=128", "data.stride=32", "model.encoder=scratch", f"train.output_dir={out}",
            *setup.sets, *variant.sets]
    if variant.same_steps and setup.steps:
        sets.append(f"train.max_steps={setup.steps}")
    try:
        cfg = load_config(None, sets)
    except ConfigError as exc:
        return None, f"skipped: this gplinker has no {' '.join(variant.sets)} ({exc})"
    gc.collect()
    start = time.perf_counter()
    report = train(cfg, overwrite=True)
    seconds = time.perf_counter() - start
    return {"train_s": seconds, "steps": report.fit.steps, "windows": report.windows,
            "best_dev": report.fit.best_score}, ""


def predictor_for(model_dir: Path, variant: Variant) -> tuple[Any, str]:
    """The Predictor of a variant as `gplinker predict` builds it; (a) with windows of data.max_length.

    (a) passes max_length explicitly, as `gplinker predict --max-length 128` does: the Predictor
    otherwise caps windows at the longest training window (gplinker.limits.max_window).
    """
    from gplinker.predict import Predictor

    if not variant.force_window:
        return Predictor.from_pretrained(model_dir, device="cpu", batch_size=64), ""
    section = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))["gplinker"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            forced = Predictor.from_pretrained(model_dir, device="cpu", batch_size=64, max_length=section["max_length"])
        except TypeError:
            return None, ("skipped: Predictor.from_pretrained takes no max_length: this gplinker has no knob to "
                          "predict with windows longer than the longest training window")
    if window_of(forced) != section["max_length"]:
        return None, (f"skipped: Predictor.from_pretrained(max_length={section['max_length']}) made windows of "
                      f"{window_of(forced)} tokens")
    said = "; ".join(str(w.message) for w in caught)
    return forced, f"windows of data.max_length forced, with the warning: {said}" if said else ""


def window_of(predictor: Any) -> int:
    return int(predictor.encoder.max_length)


def strict(task: Any, examples: Sequence, predictions: Sequence) -> Any:
    """Strict micro P/R/F1 of the task's items: entity spans, triples (every slot), whole events."""
    from gplinker.metrics import strict_prf

    total, _ = strict_prf([task.gold(e) for e in examples], [list(p) for p in predictions], label_of=task.label_of)
    return total


def token_starts(predictor: Any, text: str) -> list[int]:
    """Start character of every token of `text`, tokenized as the Predictor tokenizes it (one window, no cut)."""
    from gplinker.data.encoding import SPECIAL, WindowEncoder

    encoder = WindowEncoder(predictor.tokenizer, len(text) + 16, 0, predictor.encoder.char_level)
    (window,) = encoder.encode([text])
    return sorted(s for s, _ in window.char_spans if (s, _) != SPECIAL)


def span_limits(model_dir: Path, types: Sequence[str]) -> dict[str, int | None]:
    """Per label, the longest span in tokens the model dir says it decodes (None: any length)."""
    section = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))["gplinker"]
    head = section.get("limits", {}).get("heads", {}).get("entities", {})
    channels = head.get("channels") or [None] * len(types)
    return {t: c if c is not None else head.get("max_span") for t, c in zip(types, channels)}


def overlong(predictor: Any, docs: Sequence, predictions: Sequence, longest: dict[str, int],
             limits: dict[str, int | None]) -> tuple[int, int, int]:
    """(spans longer than their label's longest training span, spans over the recorded limit, longest span)."""
    over_train = over_limit = longest_pred = 0
    for doc, prediction in zip(docs, predictions):
        starts = token_starts(predictor, doc.text) if any(v is not None for v in limits.values()) else []
        for s in prediction:
            chars = s.end - s.start
            longest_pred = max(longest_pred, chars)
            over_train += chars > longest.get(s.label, 0)
            limit = limits.get(s.label)
            if limit is not None:
                over_limit += bisect.bisect_left(starts, s.end) - bisect.bisect_left(starts, s.start) > limit
    return over_train, over_limit, longest_pred


def decode_times(predictor: Any, sents: Sequence, docs: Sequence, repeats: int) -> dict[str, float]:
    """Median wall and CPU seconds of predict(sentences) and predict(documents), runs alternating which goes first."""
    times: dict[str, list[float]] = {"sent_s": [], "doc_s": [], "sent_cpu": [], "doc_cpu": []}
    for r in range(repeats):
        for key in ("sent", "doc") if r % 2 == 0 else ("doc", "sent"):
            gc.collect()
            start, cpu = time.perf_counter(), time.process_time()
            predictor.predict(sents if key == "sent" else docs)
            times[f"{key}_s"].append(time.perf_counter() - start)
            times[f"{key}_cpu"].append(time.process_time() - cpu)
    return {k: statistics.median(v) for k, v in times.items()}


def run_setup(setup: Setup, variants: Sequence[Variant], doc_chars: int, repeats: int, work: Path,
              reuse: bool = False, separator: str = "none") -> list[Result]:
    train_examples, sents = read(setup.train, setup.fmt, setup.task), read(setup.dev, setup.fmt, setup.task)
    docs, starts = documents_of(sents, doc_chars, SEPARATORS[separator])
    ner = setup.task == "ner"
    longest = longest_per_label(train_examples)
    lengths = [len(d.text) for d in docs]
    content = sum(len(e.text) for e in sents)
    assert sum(lengths) == content + len(SEPARATORS[separator]) * (len(sents) - len(docs))  # the same characters
    longest_text = max(len(e.text) for e in train_examples)
    items = {"ner": "gold spans", "relation": "gold triples", "event": "gold events"}[setup.task]
    print(f"## {setup.name}: {len(train_examples)} training sentences (longest {longest_text} characters), "
          f"{len(sents)} dev sentences ({sum(len(task_gold(setup.task, e)) for e in sents)} {items}) → {len(docs)} "
          f"documents of {min(lengths)}-{max(lengths)} characters, "
          f"{'joined with no separator' if separator == 'none' else 'one sentence per line (joined by newlines)'}")
    if ner:
        print(f"longest training span per label (characters): {dict(sorted(longest.items()))}")
    print(f"budget: {setup.budget}")
    results = []
    for variant in variants:
        result = Result(variant)
        results.append(result)
        numbers, result.note = train_variant(setup, variant, work / f"{setup.name}-{variant.key}", reuse)
        if numbers is None:
            continue
        model_dir = work / f"{setup.name}-{variant.key}" / "best"
        predictor, result.note = predictor_for(model_dir, variant)
        if predictor is None:
            continue
        section = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))["gplinker"]
        max_window = section.get("limits", {}).get("max_window")
        sent_predictions = predictor.predict(sents)
        sent_prf = strict(predictor.task, sents, sent_predictions)
        doc_predictions = predictor.predict(docs)  # also the warm-up of the timing
        doc_prf = strict(predictor.task, docs, doc_predictions)
        limits = span_limits(model_dir, predictor.task.types) if ner else {}
        over_train, over_limit, longest_pred = (overlong(predictor, docs, doc_predictions, longest, limits) if ner
                                                 else (None, None, None))
        crossing = None if ner else across_sentences(doc_predictions, starts)
        windows = (len(predictor.encoder.encode([e.text for e in sents])),
                   len(predictor.encoder.encode([d.text for d in docs])))
        numbers.update(sent_f1=sent_prf.f1, doc_f1=doc_prf.f1, doc_p=doc_prf.precision, doc_r=doc_prf.recall,
                       doc_pred=doc_prf.n_pred, doc_gold=doc_prf.n_gold, over_train=over_train,
                       over_limit=over_limit if ner and any(v is not None for v in limits.values()) else None,
                       longest_pred=longest_pred, crossing=crossing, window=window_of(predictor), max_window=max_window,
                       stride=predictor.encoder.stride, limits=limits, chars=content, predict_windows=windows,
                       edges=edge_recall(sents, sent_predictions, starts, doc_predictions) if ner else None,
                       **decode_times(predictor, sents, docs, repeats))
        if max_window and not variant.force_window and window_of(predictor) > max_window:
            result.note = (f"predicted with windows of {window_of(predictor)} tokens, longer than the longest "
                           f"training window ({max_window}): the Predictor does not cap them yet")
        result.numbers = numbers
        trained = (f"trained {numbers['steps']} steps in {numbers['train_s']:.0f} s ({numbers['windows']} windows)"
                   if numbers["train_s"] is not None else f"reused {model_dir} ({numbers['steps']} steps)")
        print(f"- {variant.key} ({variant.name}): {trained}, best dev F1 {numbers['best_dev']:.4f}; "
              f"decoding limits (tokens) {limits}", flush=True)
    return results


def pct(x: float) -> str:
    return f"{100 * x:.2f}"


def report(setup: Setup, results: Sequence[Result]) -> None:
    done = [r for r in results if r.numbers]
    what = {"ner": "span", "relation": "triple", "event": "event"}[setup.task]
    print(f"\n### {setup.name}: sentence vs document {what} F1 (strict, micro)")
    print(f"| variant | sentence F1 | document F1 | document / sentence | document P | document R "
          f"| document {what}s predicted / gold | spans > longest training span of label | spans > recorded limit "
          f"| longest predicted span (chars) | document {what}s across sentences |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in done:
        n = r.numbers
        shown = {k: "–" if n[k] is None else str(n[k])
                 for k in ("over_train", "over_limit", "longest_pred", "crossing")}
        print(f"| {r.variant.key} {r.variant.name} | {pct(n['sent_f1'])} | {pct(n['doc_f1'])} "
              f"| {n['doc_f1'] / max(n['sent_f1'], 1e-9):.3f} | {pct(n['doc_p'])} | {pct(n['doc_r'])} "
              f"| {n['doc_pred']} / {n['doc_gold']} | {shown['over_train']} | {shown['over_limit']} "
              f"| {shown['longest_pred']} | {shown['crossing']} |")
    if any(r.numbers["edges"] for r in done):
        print(f"\n### {setup.name}: recall of gold spans at a sentence's edge (its first or last character) and "
              "inside it, predicting sentences → documents")
        print("| variant | edge spans | edge R: sentences → documents | inside spans "
              "| inside R: sentences → documents |")
        print("|---|---:|---:|---:|---:|")
        for r in done:
            edge, inside = r.numbers["edges"]["edge"], r.numbers["edges"]["inside"]
            print(f"| {r.variant.key} {r.variant.name} | {edge[0]} | {pct(edge[1] / max(edge[0], 1))} → "
                  f"{pct(edge[2] / max(edge[0], 1))} | {inside[0]} | {pct(inside[1] / max(inside[0], 1))} → "
                  f"{pct(inside[2] / max(inside[0], 1))} |")
    print(f"\n### {setup.name}: decode time, documents vs sentences (the same characters; wall clock, side by side)")
    print("| variant | predict window (tokens) | longest training window | windows: sentences / documents "
          "| sentences s | documents s | ms per 1k chars: sentences / documents | documents / sentences (wall) "
          "| documents / sentences (CPU) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in done:
        n = r.numbers
        k = n["chars"] / 1000
        print(f"| {r.variant.key} {r.variant.name} | {n['window']} (stride {n['stride']}) | {n['max_window']} "
              f"| {n['predict_windows'][0]} / {n['predict_windows'][1]} | {n['sent_s']:.3f} | {n['doc_s']:.3f} "
              f"| {1000 * n['sent_s'] / k:.1f} / {1000 * n['doc_s'] / k:.1f} | {n['doc_s'] / n['sent_s']:.2f}x "
              f"| {n['doc_cpu'] / n['sent_cpu']:.2f}x |")
    for r in results:
        if r.note:
            print(f"note {r.variant.key} ({r.variant.name}): {r.note}")
    for r in done:
        n = r.numbers
        ratio, slow = n["doc_f1"] / max(n["sent_f1"], 1e-9), n["doc_s"] / n["sent_s"]
        line = (f"goal {r.variant.key} ({r.variant.name}): document / sentence F1 >= {RATIO_GOAL}: "
                f"{'met' if ratio >= RATIO_GOAL else 'NOT met'} ({ratio:.3f}); decode time per character "
                f"<= {TIME_GOAL}x: {'met' if slow <= TIME_GOAL else 'NOT met'} ({slow:.2f}x)")
        if not r.variant.force_window and n["over_train"] is not None:
            line += (f"; no span longer than its label's longest training span: "
                     f"{'met' if n['over_train'] == 0 else 'NOT met'} ({n['over_train']})")
        if n["crossing"] is not None:
            line += (f"; no {what} across sentences: {'met' if n['crossing'] == 0 else 'NOT met'} "
                     f"({n['crossing']})")
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", action="store_true", help="the synthetic set (default without --cluener)")
    parser.add_argument("--cluener", action="store_true", help="CLUENER2020 from ../shared/data/cluener (slow)")
    parser.add_argument("--task", choices=["ner", "relation", "event"], default="ner",
                        help="synthetic set: entities (CLUENER-like), triples (DuIE 2.0 format) or events (DuEE 1.0)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, variants a b: checks the script runs")
    parser.add_argument("--variants", default="abc",
                        help="which of a (before), b (auto), c (auto + pack), d (auto + data.pack 0.5)")
    parser.add_argument("--train", type=int, default=2000, help="synthetic training sentences")
    parser.add_argument("--dev", type=int, default=600, help="synthetic dev sentences (all go into documents)")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per synthetic variant")
    parser.add_argument("--hidden", type=int, default=128, help="scratch encoder hidden size (synthetic set)")
    parser.add_argument("--layers", type=int, default=2, help="scratch encoder layers (synthetic set)")
    parser.add_argument("--cluener-epochs", type=int, default=1, help="epochs per CLUENER variant")
    parser.add_argument("--cluener-steps", type=int, default=0, help="optimizer steps instead (0: use the epochs)")
    parser.add_argument("--doc-chars", type=int, default=1500, help="characters per document (about)")
    parser.add_argument("--separator", choices=sorted(SEPARATORS), default="none",
                        help="what joins a document's sentences: nothing, or a newline (one sentence per line)")
    parser.add_argument("--repeats", type=int, default=5, help="timed predict runs per side")
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--keep", type=Path, default=None, help="keep data and model dirs here (default: temp)")
    parser.add_argument("--reuse", action="store_true", help="with --keep: measure the model dirs already there")
    add_huge_pages_flag(parser)
    args = parser.parse_args()
    setup_like_cli(args)
    variants = [VARIANTS[k] for k in args.variants]
    if args.smoke:
        args.train, args.dev, args.epochs, args.hidden, args.layers, args.repeats = 200, 100, 1, 64, 1, 1
        variants = [VARIANTS["a"], VARIANTS["b"]]
    run_docs = args.docs or not args.cluener

    print(f"# bench_long: {machine()}")
    with tempfile.TemporaryDirectory(prefix="bench_long_") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        if run_docs:
            make, fmt, schema = {"ner": (sentences, "spans", None),
                                 "relation": (relation_sentences, "duie2", write_relation_schema),
                                 "event": (event_sentences, "duee", write_event_schema)}[args.task]
            train_path = write_jsonl(work / f"{args.task}-train.jsonl", make(args.train, args.seed))
            dev_rows = make(args.dev, args.seed + 1)
            dev_path = write_jsonl(work / f"{args.task}-dev.jsonl", dev_rows)
            schema_path = schema(work / f"{args.task}-schema.jsonl") if schema else None
            doc_chars = args.doc_chars
            if args.smoke:  # 5 documents
                doc_chars = sum(len(r["text"]) for r in dev_rows) // 5
            heads = max(1, args.hidden // 32)
            sets = [f"model.scratch.hidden_size={args.hidden}", f"model.scratch.num_layers={args.layers}",
                    f"model.scratch.num_heads={heads}", f"model.scratch.intermediate_size={2 * args.hidden}",
                    "model.scratch.max_position=128", "model.head_size=32", f"train.epochs={args.epochs}",
                    "train.batch_size=16", "train.lr=1e-3", "train.warmup_ratio=0.1", "train.seed=42",
                    "data.num_proc=1", "train.log_every=1000", "train.keep_checkpoints=1"]
            budget = (f"{args.train} sentences x {args.epochs} epoch(s), batch 16, lr 1e-3; scratch BERT hidden "
                      f"{args.hidden} x {args.layers} layer(s), {heads} heads, FFN {2 * args.hidden}, 128 positions; "
                      f"head_size 32")
            name = "synthetic" if args.task == "ner" else f"synthetic-{args.task}"
            steps = -(-args.train // 16) * args.epochs  # what the unpacked variants run
            setup = Setup(name, train_path, dev_path, fmt, sets, budget + f"; c runs as many steps ({steps})",
                          args.task, schema_path, steps)
            report(setup, run_setup(setup, variants, doc_chars, args.repeats, work, args.reuse, args.separator))
        if args.cluener:
            if not (CLUENER / "train.json").is_file():
                print(f"bench_long: {CLUENER} not found (CLUENER2020 is not shipped); --cluener skipped")
                return
            sets = ["data.char_level=true", "model.scratch.hidden_size=128", "model.scratch.num_layers=2",
                    "model.scratch.num_heads=4", "model.scratch.intermediate_size=256",
                    "model.scratch.max_position=128", "model.scratch.min_char_count=2", "model.head_size=64",
                    f"train.epochs={args.cluener_epochs}", f"train.max_steps={args.cluener_steps}",
                    "train.batch_size=32", "train.lr=1e-3", "train.warmup_ratio=0.06", "train.seed=42",
                    "data.num_proc=2", "train.log_every=1000", "train.keep_checkpoints=1"]
            length = f"{args.cluener_steps} steps" if args.cluener_steps else f"{args.cluener_epochs} epoch(s)"
            budget = (f"{length} x batch 32 per variant, lr 1e-3, char_level; scratch BERT "
                      "hidden 128 x 2 layers, 4 heads, FFN 256, 128 positions, min_char_count 2; head_size 64; "
                      "dev evaluated each epoch")
            with open(CLUENER / "train.json", "rb") as fh:
                lines = sum(1 for line in fh if line.strip())
            steps = args.cluener_steps or -(-lines // 32) * args.cluener_epochs  # what the unpacked variants run
            setup = Setup("cluener", CLUENER / "train.json", CLUENER / "dev.json", "cluener", sets,
                          budget + f"; c runs as many steps ({steps})", steps=steps)
            report(setup, run_setup(setup, variants, args.doc_chars, args.repeats, work, args.reuse, args.separator))


if __name__ == "__main__":
    main()
