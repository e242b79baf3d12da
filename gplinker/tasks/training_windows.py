"""Training windows of a corpus for a task: the `Dataset.map` that turns parsed records into window rows.

Each kept record (data/corpus.py) is tokenized and cut into windows (`encoding.WindowEncoder`);
each window gets the task's targets, flattened into its t_<head> columns (data/window_table.py),
and the record's first window carries how many of its gold items the oracle round trip loses
(`oracle.oracle_predictions`), so that training can say so without keeping examples around.
With data.pack, consecutive records of a map batch are first joined into packs that fill a window
(with a share s < 1, about that share of the windows are packs and the others hold one record each).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.progress import Progress

from gplinker.data.corpus import Corpus
from gplinker.data.encoding import WindowEncoder, token_counts
from gplinker.data.examples import Example, example_from_json, joined
from gplinker.data.mapping import map_in_chunks
from gplinker.data.window_table import TARGET_PREFIX, WindowTable, window_features
from gplinker.tasks.base import Task
from gplinker.tasks.oracle import oracle_predictions


def pack_drawn(key: int, share: float) -> bool:
    """Whether the window that starts with corpus row `key` is a pack, for data.pack = share: a deterministic
    draw (the same rows give the same windows in every process and run, so the encoding cache holds), uniform
    over keys: the splitmix64 finaliser of the key (Steele, Lea and Flood 2014) read as a fraction of 2**64.
    (A low-discrepancy k·φ mod 1 would not do: which rows start windows depends on the draws before.)"""
    if share >= 1.0:
        return True
    mask = (1 << 64) - 1
    z = (key + 0x9E3779B97F4A7C15) & mask
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    return (z ^ (z >> 31)) < share * 2.0**64


def packed(examples: list[Example], rows: list[int], encoder: WindowEncoder, share: float = 1.0,
           keys: list[int] | None = None) -> tuple[list[Example], list[int]]:
    """Consecutive examples joined greedily while their tokens fit one window (data.pack); each pack's first row.

    A pack is `examples.joined` (texts joined by a newline, which makes no token); an example longer
    than a window stays alone and slides as usual. Gold labels stay inside their own example, so a
    cell pairing two examples is a negative: the heads see long contexts and long-range negatives.
    share < 1: a window is a pack only when `pack_drawn(keys[k], share)` holds for its first example
    k (keys: the examples' corpus rows, default `rows`), else it holds example k alone; the model
    then sees both sentences alone, starting a window, and sentences in the middle of others.
    """
    counts = token_counts(encoder.tokenizer, [e.text for e in examples], encoder.char_level)
    keys = rows if keys is None else keys
    packs: list[list[int]] = []
    used = encoder.budget + 1  # start a new pack on the first example
    filling = True
    for k, n in enumerate(counts):
        if used + n > encoder.budget or not filling:
            packs.append([])
            used = 0
            filling = pack_drawn(keys[k], share)
        packs[-1].append(k)
        used += n
    return [joined([examples[k] for k in pack]) for pack in packs], [rows[pack[0]] for pack in packs]


def window_batch(batch: dict[str, list[Any]], indices: list[int], *, encoder: WindowEncoder, task: Task,
                 skipped_lines: frozenset[int], heads: list[str], pack: bool | float = False) -> dict[str, list[Any]]:
    """The window map: rows (module docstring of data/window_table.py) for a batch of corpus rows."""
    kept = [k for k, (line, error) in enumerate(zip(batch["line"], batch["error"]))
            if not error and line not in skipped_lines]
    examples = [example_from_json(batch["text"][k], batch["labels"][k]) for k in kept]
    if pack and examples:
        examples, kept = packed(examples, kept, encoder, float(pack), keys=[indices[k] for k in kept])
    windows = encoder.encode([e.text for e in examples])
    for w in windows:
        w.targets = task.targets(examples[w.example_index], w)
    oracle = oracle_predictions(task, examples, windows)
    lost = [len(set(task.gold(e)) - set(p)) for e, p in zip(examples, oracle)]
    out: dict[str, list[Any]] = {"example": [], "window": [], "input_ids": [], "length": [], "unplaced": [],
                                 **{TARGET_PREFIX + h: [] for h in heads}}
    for w in windows:
        out["example"].append(indices[kept[w.example_index]])
        out["window"].append(w.window_index)
        out["input_ids"].append(w.input_ids)
        out["length"].append(len(w.input_ids))
        out["unplaced"].append(lost[w.example_index] if w.window_index == 0 else 0)
        targets = w.targets or {}
        for h in heads:
            out[TARGET_PREFIX + h].append([x for cell in targets.get(h, ()) for x in cell])
    return out


def encode_windows(corpus: Corpus, encoder: WindowEncoder, task: Task, *, directory: Path, num_proc: int,
                   progress: Progress | None = None, pack: bool | float = False) -> WindowTable:
    """Every kept record of `corpus` as training windows with targets (packed with `pack`), under `directory`."""
    heads = [h.name for h in task.heads()]
    dataset, files = map_in_chunks(
        corpus.dataset.select_columns(["line", "error", "text", "labels"]), window_batch, directory=directory,
        name="windows", fn_kwargs={"encoder": encoder, "task": task, "skipped_lines": corpus.skipped_lines,
                                   "heads": heads, "pack": pack},
        num_proc=num_proc, progress=progress, description="encoding", features=window_features(heads))
    return WindowTable(dataset, heads, files)
