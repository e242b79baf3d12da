"""What the CLI commands do, as plain functions: train, evaluate, predict, check.

This is where a task meets the shared layers: it reads data, builds the encoder and the task's
heads, hands windows and callbacks to the task-agnostic `training.fit`, and scores predictions.
"""

from __future__ import annotations

import json
import platform
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch

from gplinker import distributed as dist
from gplinker.config import Config, to_dict
from gplinker.data.batching import collate, train_batches
from gplinker.data.encoding import SPECIAL, WindowEncoder
from gplinker.data.examples import Example
from gplinker.data.formats import LineError, ReadReport
from gplinker.data.reading import parse_input, read_examples, resolve_format
from gplinker.data.schema import Schema, schema_from_examples
from gplinker.errors import ConfigError, DataError
from gplinker.metrics import PRF, Scores, strict_prf
from gplinker.modeling.model import GPLinkerModel
from gplinker.predict import Predictor, chunks
from gplinker.tasks import build_task
from gplinker.devices import seed_everything
from gplinker.training import FitResult, fit, list_checkpoints


# --- train -------------------------------------------------------------------------------------


def load_schema(cfg: Config, train: list[Example], fmt: str) -> Schema:
    """The label schema: from `data.schema` when given, else the labels of the training data."""
    if cfg.data.schema:
        from gplinker.data.schema import load_duee_schema, load_duie_schema

        loaders = {"relation": load_duie_schema, "event": load_duee_schema}
        if cfg.task not in loaders:
            raise ConfigError("data.schema is used by the relation and event tasks; NER takes its types from the data")
        return loaders[cfg.task](cfg.data.schema)
    return schema_from_examples(cfg.task, train, relation_format="duie1" if fmt == "duie1" else "duie2")


def build_model(cfg: Config, task, train_texts: list[str]):
    """Encoder + tokenizer (scratch or pretrained) under the task's heads."""
    from gplinker.modeling.encoders import pretrained_encoder, scratch_encoder, scratch_tokenizer

    if cfg.model.encoder == "scratch":
        tokenizer = scratch_tokenizer(train_texts, cfg.model.scratch.min_char_count)
        encoder = scratch_encoder(cfg.model.scratch, len(tokenizer))
    else:
        encoder, tokenizer = pretrained_encoder(cfg.model.encoder, cfg.model.trust_remote_code)
    max_pos = getattr(encoder.config, "max_position_embeddings", None)
    if max_pos is not None and cfg.data.max_length > max_pos:
        raise ConfigError(f"data.max_length {cfg.data.max_length} exceeds the encoder's {max_pos} positions")
    return GPLinkerModel(encoder, task.heads(), cfg.model.head, cfg.model.head_size), tokenizer


def model_section(cfg: Config, schema: Schema, fmt: str) -> dict:
    """The `gplinker` section of a saved model's config.json: everything predict/eval need."""
    return {
        "task": cfg.task, "schema": schema.to_dict(), "format": fmt,
        "max_length": cfg.data.max_length, "stride": cfg.data.stride, "threshold": cfg.model.threshold,
        "char_level": cfg.data.char_level,
        "train_config": to_dict(cfg), "gplinker_version": package_version(),
    }


@dataclass
class TrainReport:
    fit: FitResult
    train_report: ReadReport
    dev_report: ReadReport | None
    windows: int
    unplaced: int  # gold items of the training data that no window can express


def train(cfg: Config, resume: bool = False, overwrite: bool = False, console=None) -> TrainReport:
    """Run a whole training as the config says; writes best/, last/ and checkpoints to train.output_dir."""
    if not cfg.data.train:
        raise ConfigError("data.train is not set (set it in the config or with --set data.train=FILE)")
    dist.setup(cfg.train.device)
    console = console if dist.is_main() else None  # under torchrun only rank 0 talks
    out = Path(cfg.train.output_dir)
    checkpoints = list_checkpoints(out)
    if checkpoints and not resume and not overwrite:
        raise ConfigError(f"{out} already holds checkpoints: pass --resume to continue or --overwrite to start over")
    if overwrite and not resume and dist.is_main():
        import shutil

        for d in checkpoints + [out / "best", out / "last"]:
            shutil.rmtree(d, ignore_errors=True)
    dist.barrier()
    fmt = resolve_format(cfg.data.train, cfg.data.format, cfg.task)
    train_examples, train_report = read_examples(cfg.data.train, fmt, cfg.task, cfg.data.skip_invalid)
    dev_examples, dev_report = [], None
    if cfg.data.dev:
        dev_examples, dev_report = read_examples(cfg.data.dev, cfg.data.format, cfg.task, cfg.data.skip_invalid)
    for report in (train_report, dev_report):
        if report is not None and report.skipped:
            say(console, f"[yellow]{report.path}: skipped {len(report.skipped)} invalid line(s): "
                         f"{dict(report.skip_reasons())}[/]")

    seed_everything(cfg.train.seed)
    resume_from = checkpoints[-1] if resume and checkpoints else None
    if resume and resume_from is None:
        say(console, f"[yellow]--resume: no checkpoint in {out}; starting from scratch[/]")
    if resume_from is not None:
        from gplinker.modeling.encoders import load_tokenizer

        model, section = GPLinkerModel.load(resume_from, cfg.model.trust_remote_code)
        schema = Schema.from_dict(section["schema"])
        task = build_task(cfg.task, schema)
        tokenizer = load_tokenizer(str(resume_from), model.encoder.config.model_type, cfg.model.trust_remote_code)
    else:
        schema = load_schema(cfg, train_examples, fmt)
        task = build_task(cfg.task, schema)
        model, tokenizer = build_model(cfg, task, [e.text for e in train_examples])
    section = model_section(cfg, schema, fmt)

    windows, unplaced = encode_training_data(cfg, fmt, task, tokenizer, train_examples, console)
    if unplaced:
        say(console, f"[yellow]{unplaced} gold item(s) of the training data cannot be expressed in token "
                     f"positions (see `gplinker check`)[/]")
    lengths = [len(w) for w in windows]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    channels = {h.name: h.channels for h in task.heads()}

    def make_batch(indices: list[int]) -> dict:
        return collate([windows[k] for k in indices], pad_id, channels)

    def batch_order(epoch: int) -> list[list[int]]:
        return train_batches(lengths, cfg.train.batch_size, cfg.train.seed, epoch)

    def save_model(m, directory: Path) -> None:
        m.save(directory, section)
        tokenizer.save_pretrained(str(directory))

    evaluate = None
    if dev_examples:
        def evaluate(m) -> tuple[float, dict]:
            predictor = Predictor(m, tokenizer, task, cfg.data.max_length, cfg.data.stride, cfg.model.threshold,
                                  cfg.train.eval_batch_size, next(m.parameters()).device, cfg.train.amp,
                                  cfg.data.char_level)
            mine = predictor.predict(dist.shard(dev_examples))  # each rank predicts its share ...
            predictions = dist.unshard(dist.gather_objects(mine))  # ... and every rank scores them all once
            scores = task.score(dev_examples, predictions)
            return scores.main, scores.metrics

    if dist.is_main():
        out.mkdir(parents=True, exist_ok=True)
        write_run_info(out, cfg)
    say(console, f"task {cfg.task}: {len(train_examples)} training examples → {len(windows)} windows; "
                 f"{len(dev_examples)} dev examples; {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters")
    result = fit(model, lengths, make_batch, batch_order, cfg.train, save_model, evaluate, resume_from, console)
    return TrainReport(result, train_report, dev_report, len(windows), unplaced)


def encode_training_data(cfg: Config, fmt: str, task, tokenizer, examples: list[Example], console=None):
    """(windows with targets, unplaced gold count); read from the encoding cache when its key matches (data/cache.py)."""
    from gplinker.data.cache import cache_dir, encoding_key, load_or_encode

    def encode() -> tuple[list, dict]:
        encoder = WindowEncoder(tokenizer, cfg.data.max_length, cfg.data.stride, cfg.data.char_level)
        windows = encoder.encode([e.text for e in examples])
        for w in windows:
            w.targets = task.targets(examples[w.example_index], w)
        return windows, {"unplaced": count_unplaced(task, examples, windows, tokenizer)}

    key = encoding_key(cfg.data.train, tokenizer, task, fmt=fmt, max_length=cfg.data.max_length,
                       stride=cfg.data.stride, char_level=cfg.data.char_level, skip_invalid=cfg.data.skip_invalid)
    windows, stats, hit = load_or_encode(cache_dir(cfg.train.output_dir), key, encode)
    if hit:
        say(console, f"training windows read from the encoding cache ({len(windows)} windows, key {key[:12]})")
    return windows, stats["unplaced"]


def count_unplaced(task, examples: list[Example], windows, tokenizer=None) -> int:
    """Gold items that decode(targets) does not give back (the oracle's misses on training data)."""
    oracle = oracle_predictions(task, examples, windows)
    return sum(len(set(task.gold(e)) - set(p)) for e, p in zip(examples, oracle))


def oracle_predictions(task, examples: list[Example], windows) -> list[dict]:
    """Decode each window's own targets as if the model were perfect, then merge windows."""
    grouped: list[list[dict]] = [[] for _ in examples]
    for w in windows:
        targets = w.targets if w.targets is not None else task.targets(examples[w.example_index], w)
        cells = {head: [(c, i, j, 1.0) for c, i, j in cs] for head, cs in targets.items()}
        grouped[w.example_index].append(task.decode(w, cells))
    return [task.merge(e, g) for e, g in zip(examples, grouped)]


def write_run_info(out: Path, cfg: Config) -> None:
    """Resolved config, package versions and git commit, for reproducibility."""
    import transformers

    info = {
        "config": to_dict(cfg),
        "versions": {"gplinker": package_version(), "python": platform.python_version(),
                     "torch": torch.__version__, "transformers": transformers.__version__},
        "git_commit": git_commit(),
        "command": sys.argv,
    }
    (out / "run_info.json").write_text(json.dumps(info, ensure_ascii=False, indent=2), encoding="utf-8")


def git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                              cwd=Path(__file__).resolve().parent).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gplinker")
    except PackageNotFoundError:
        return "0+unknown"


# --- eval --------------------------------------------------------------------------------------


@dataclass
class EvalResult:
    scores: Scores
    report: ReadReport
    examples: list[Example]
    predictions: list[dict]


def evaluate_dir(model_dir: str | Path, data: str | Path, fmt: str | None = None, skip_invalid: bool = False,
                 device: str = "auto", batch_size: int = 64, trust_remote_code: bool = False) -> EvalResult:
    """Predict on a labelled file with a saved model and score it."""
    predictor = Predictor.from_pretrained(model_dir, device=device, batch_size=batch_size,
                                          trust_remote_code=trust_remote_code)
    section = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))["gplinker"]
    task_name = section["task"]
    fmt = fmt or "auto"
    examples, report = read_examples(data, fmt, task_name, skip_invalid)
    predictions = predictor.predict(examples)
    return EvalResult(predictor.task.score(examples, predictions), report, examples, predictions)


def write_errors(path: Path, task, examples: list[Example], predictions: list[dict]) -> int:
    """One JSON line per example with a false positive or a miss; returns how many lines were written."""
    n = 0
    with open(path, "w", encoding="utf-8") as fh:
        for e, p in zip(examples, predictions):
            gold, pred = set(task.gold(e)), set(p)
            fp, fn = pred - gold, gold - pred
            if fp or fn:
                n += 1
                fh.write(json.dumps({
                    "source": f"{e.source}:{e.line}", "text": e.text,
                    "false_positives": [task.item_record(e.text, x) for x in sorted(fp, key=repr)],
                    "misses": [task.item_record(e.text, x) for x in sorted(fn, key=repr)],
                }, ensure_ascii=False) + "\n")
    return n


# --- predict -----------------------------------------------------------------------------------


@dataclass
class PredictSummary:
    lines: int = 0
    errors: int = 0
    first_errors: list = None  # (line, message), at most 10


def predict_lines(predictor: Predictor, lines: Iterable[str], write: Callable[[str], None],
                  chunk_size: int = 1024, source: str = "<stdin>") -> PredictSummary:
    """Exactly one output line per input line, same order; a bad (or blank) line gets an `error` field.

    Lines are read and written in chunks, so memory stays flat however long the input. Under
    torchrun every rank reads the same input, predicts its share of each chunk, and rank 0
    writes the gathered predictions in input order.
    """
    summary = PredictSummary(first_errors=[])
    for chunk in chunks(enumerate(lines, start=1), chunk_size):
        parsed = [parse_line(line, lineno, source) for lineno, line in chunk]
        valid = [p for p in parsed if isinstance(p, Example)]
        mine = predictor.predict(dist.shard(valid))
        predictions = iter(dist.unshard(dist.gather_objects(mine)))
        for item in parsed:
            summary.lines += 1
            if isinstance(item, Example):
                record = predictor.task.record(item, next(predictions))
            else:
                record = item
                summary.errors += 1
                if len(summary.first_errors) < 10:
                    summary.first_errors.append(item["error"])
            if dist.is_main():
                write(json.dumps(record, ensure_ascii=False))
    return summary


def parse_line(line: str, lineno: int, source: str) -> Example | dict:
    """An input line as an Example, or an error record naming `source:line`."""
    try:
        if not line.strip():
            raise LineError("empty line")
        obj = json.loads(line)
        if not isinstance(obj, dict):
            raise LineError(f"expected a JSON object, got {type(obj).__name__}")
        return parse_input(obj)
    except (json.JSONDecodeError, LineError) as exc:
        message = f"malformed JSON: {exc.msg}" if isinstance(exc, json.JSONDecodeError) else str(exc)
        return {"error": f"{source}:{lineno}: {message}", "line": lineno}


def read_text_lines(path: str) -> Iterable[str]:
    """Lines of a file (or stdin for '-'), decoded leniently: invalid UTF-8 becomes U+FFFD, BOM dropped."""
    if path == "-":
        stream = sys.stdin.buffer
        for k, raw in enumerate(stream):
            yield decode_line(raw, k == 0)
        return
    if not Path(path).is_file():
        raise ConfigError(f"input file {path} not found")
    with open(path, "rb") as fh:
        for k, raw in enumerate(fh):
            yield decode_line(raw, k == 0)


def decode_line(raw: bytes, first: bool) -> str:
    if first and raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    return raw.decode("utf-8", errors="replace").rstrip("\r\n")


# --- check -------------------------------------------------------------------------------------


@dataclass
class CheckReport:
    format: str
    report: ReadReport
    oracle: PRF
    oracle_per_label: dict
    chars: list[int]
    tokens: list[int]
    windows: int
    long_texts: int  # texts needing more than one window
    lost: list  # (source:line, item record) of gold items the oracle cannot give back, first 20


def check_data(path: str, task_name: str, fmt: str = "auto", tokenizer=None, max_length: int = 128,
               stride: int = 32, skip_invalid: bool = True, schema: Schema | None = None,
               char_level: bool = False) -> CheckReport:
    """Validate a data file and run the oracle round trip gold → targets → decode → merge."""
    from gplinker.modeling.encoders import scratch_tokenizer

    fmt = resolve_format(path, fmt, task_name)
    examples, report = read_examples(path, fmt, task_name, skip_invalid)
    schema = schema or schema_from_examples(task_name, examples, relation_format="duie1" if fmt == "duie1" else "duie2")
    task = build_task(task_name, schema)
    tokenizer = tokenizer or scratch_tokenizer(e.text for e in examples)
    encoder = WindowEncoder(tokenizer, max_length, stride, char_level)
    windows = encoder.encode([e.text for e in examples])
    predictions = oracle_predictions(task, examples, windows)
    gold = [task.gold(e) for e in examples]
    prf, per_label = strict_prf(gold, [list(p) for p in predictions], label_of=task_label_of(task))
    n_windows = [0] * len(examples)
    token_spans: list[set] = [set() for _ in examples]  # windows overlap: count each token once
    for w in windows:
        n_windows[w.example_index] += 1
        token_spans[w.example_index].update(s for s in w.char_spans if s != SPECIAL)
    tokens = [len(s) for s in token_spans]
    lost = []
    for e, g, p in zip(examples, gold, predictions):
        for item in sorted(set(g) - set(p), key=repr):
            if len(lost) < 20:
                lost.append((f"{e.source}:{e.line}", task.item_record(e.text, item)))
    return CheckReport(fmt, report, prf, per_label, [len(e.text) for e in examples], tokens, len(windows),
                       sum(1 for n in n_windows if n > 1), lost)


def task_label_of(task) -> Callable:
    return getattr(task, "label_of", lambda item: getattr(item, "label", type(item).__name__))


def length_stats(values: list[int]) -> dict:
    if not values:
        return {"min": 0, "mean": 0, "p95": 0, "max": 0}
    ordered = sorted(values)
    return {"min": ordered[0], "mean": round(statistics.fmean(ordered), 1),
            "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], "max": ordered[-1]}


def say(console, message: str) -> None:
    if console is not None:
        console.print(message)
