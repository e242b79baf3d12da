"""`gplinker train`: read the data, build the encoder and the task's heads, and hand both to the loop.

This is where a task meets the shared layers: the loop (`training.fit`) sees only a model, batches
made from index lists, a save function and an evaluate function; the task sees only examples and
windows. The training data lives in memory-mapped Arrow files (commands/training_data.py); the
dev set, small by nature, is read into memory.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rich.console import Console
from torch import nn

from gplinker import distributed as dist
from gplinker.commands.training_data import TrainingData
from gplinker.commands.warm_start import warm_start
from gplinker.config import CHAR_VOCAB_ENCODERS, LIGHT_ENCODERS, Config, to_dict
from gplinker.console import make_progress, say
from gplinker.data.batching import train_batches
from gplinker.data.corpus import Corpus
from gplinker.data.examples import Example
from gplinker.data.formats import ReadReport
from gplinker.data.reading import PLAIN_OBJECTS, read_examples, resolve_format
from gplinker.data.schema import (
    Schema,
    SchemaGaps,
    load_duee_schema,
    load_duie_schema,
    schema_from_examples,
)
from gplinker.data.span_limits import limits_from_training
from gplinker.data.window_table import WindowTable
from gplinker.devices import seed_everything
from gplinker.errors import ConfigError, GPLinkerError
from gplinker.locks import LOCK_FILE, hold_lock
from gplinker.model_format import MODEL_FORMAT
from gplinker.modeling.model import GPLinkerModel
from gplinker.predict import Predictor
from gplinker.run_info import package_version, write_run_info
from gplinker.tasks import build_task
from gplinker.tasks.base import Task
from gplinker.training import FitResult, fit, list_checkpoints, newest_usable
from gplinker.training.checkpoints import schedule_changes
from gplinker.training.loop import Indices


@dataclass
class TrainReport:
    """What a training run did: the loop's result, what the readers saw, and the training windows."""

    fit: FitResult
    train_report: ReadReport
    dev_report: ReadReport | None
    windows: int
    unplaced: int  # gold items of the training data that no window can express (schema gaps included)
    schema_gaps: SchemaGaps  # of those, the items whose labels the schema lacks, by label


def load_schema(cfg: Config, corpus: Corpus, fmt: str) -> Schema:
    """The label schema: from `data.schema` when given, else the labels of the training corpus."""
    if cfg.data.schema:
        loaders = {"relation": load_duie_schema, "event": load_duee_schema}
        if cfg.task not in loaders:
            raise ConfigError("data.schema is used by the relation and event tasks; NER takes its types from the data")
        return loaders[cfg.task](cfg.data.schema)
    style = "duie1" if fmt in PLAIN_OBJECTS else "duie2"  # the records' object style
    return schema_from_examples(cfg.task, corpus.examples(), relation_format=style)


def build_model(cfg: Config, task: Task, char_counts: Mapping[str, int],
                console: Console | None = None) -> tuple[GPLinkerModel, Any]:
    """Encoder + tokenizer under the heads: scratch or light (a vocabulary from the training texts' character
    counts) or pretrained. A light encoder's embeddings-file coverage is reported on `console`."""
    from gplinker.modeling.encoders import pretrained_encoder, scratch_encoder, scratch_tokenizer
    from gplinker.modeling.light import light_encoder

    if cfg.model.encoder == "scratch":
        tokenizer = scratch_tokenizer(char_counts, cfg.model.scratch.min_char_count)
        encoder = scratch_encoder(cfg.model.scratch, len(tokenizer))
    elif cfg.model.encoder in LIGHT_ENCODERS:
        tokenizer = scratch_tokenizer(char_counts, cfg.model.light.min_char_count)
        encoder, coverage = light_encoder(cfg.model.encoder, cfg.model.light, tokenizer)
        if coverage is not None:
            say(console, coverage.summary())
    else:
        encoder, tokenizer = pretrained_encoder(cfg.model.encoder, cfg.model.trust_remote_code)
    check_positions(cfg, encoder)
    return GPLinkerModel(encoder, task.heads(), cfg.model.head, cfg.model.head_size), tokenizer


def check_positions(cfg: Config, encoder: Any) -> None:
    """ConfigError when data.max_length is more than the encoder's positions."""
    max_pos = position_limit(encoder)
    if max_pos is not None and isinstance(cfg.data.max_length, int) and cfg.data.max_length > max_pos:
        raise ConfigError(f"data.max_length {cfg.data.max_length} exceeds the encoder's {max_pos} positions")


def position_limit(encoder: Any) -> int | None:
    """The encoder's position limit (max_position_embeddings), when it has one."""
    value = getattr(encoder.config, "max_position_embeddings", None)
    return int(value) if value is not None else None


def model_section(cfg: Config, schema: Schema, fmt: str) -> dict[str, Any]:
    """The `gplinker` section of a saved model's config.json: everything predict/eval need (docs/formats.md)."""
    return {
        "format_version": MODEL_FORMAT,
        "task": cfg.task, "schema": schema.to_dict(), "format": fmt,
        "max_length": cfg.data.max_length, "stride": cfg.data.stride, "threshold": cfg.model.threshold,
        "char_level": cfg.data.char_level, "decode": cfg.model.decode,
        **({"event": {"require_trigger": cfg.model.event.require_trigger,
                      "min_arguments": cfg.model.event.min_arguments}} if cfg.task == "event" else {}),
        "train_config": to_dict(cfg), "gplinker_version": package_version(),
    }


def no_checkpoint_message(out: Path) -> str:
    """Why --resume cannot start, and what to pass instead (as the HF Trainer, no silent fresh start)."""
    if not out.is_dir():
        return f"--resume: no checkpoint found in {out} (the dir does not exist); drop --resume to start a new run"
    # the encoding cache is reusable by any run, so it is not a reason for --overwrite
    earlier = sorted(p.name for p in out.iterdir() if p.name != "cache" and not p.name.startswith("."))
    advice = f"drop --resume and add --overwrite to start a new run there (it holds {', '.join(earlier[:5])}" \
             f"{', ...' if len(earlier) > 5 else ''})" if earlier else "drop --resume to start a new run"
    return f"--resume: no checkpoint found in {out}; {advice}"


def pick_checkpoint(out: Path, checkpoints: list[Path], console: Console | None) -> Path:
    """The newest checkpoint that verifies; says which newer ones were skipped and why; none: a GPLinkerError."""
    path, skipped = newest_usable(checkpoints)
    for skipped_path, reason in skipped:
        say(console, f"[yellow]--resume: skipped {skipped_path}: {reason}[/]")
    if path is None:
        raise GPLinkerError(f"--resume: no checkpoint in {out} verifies ({'; '.join(r for _, r in skipped)}); start "
                            "a new run with --overwrite")
    return path


def train(cfg: Config, resume: bool = False, overwrite: bool = False, console: Console | None = None,
          init_from: str | Path | None = None) -> TrainReport:
    """Run a whole training as the config says; writes best/, last/ and checkpoints to train.output_dir.

    `init_from`: a model dir whose encoder, tokenizer and matching head channels the run starts from
    (commands/warm_start.py).
    """
    if not cfg.data.train:
        raise ConfigError("data.train is not set (set it in the config or with --set data.train=FILE)")
    if init_from is not None and resume:
        raise ConfigError("--init-from starts a new run from a model dir, --resume continues a run: pass one of them")
    dist.setup(cfg.train.device)
    console = console if dist.is_main() else None  # under torchrun only rank 0 talks
    out = Path(cfg.train.output_dir)
    checkpoints = list_checkpoints(out)
    if checkpoints and not resume and not overwrite:
        raise ConfigError(f"{out} already holds checkpoints: pass --resume to continue or --overwrite to start over")
    if resume and not checkpoints:
        raise ConfigError(no_checkpoint_message(out))
    if dist.is_main():  # rank 0 writes, so rank 0 holds the lock
        out.mkdir(parents=True, exist_ok=True)
    with hold_lock(out / LOCK_FILE, f"a training into {out}") if dist.is_main() else nullcontext() as stale:
        if stale:
            say(console, f"[yellow]{out}: the run of process {stale} ended without releasing its lock (killed?); "
                         "taking it over[/]")
        return train_locked(cfg, out, resume, overwrite, console, init_from)


def train_locked(cfg: Config, out: Path, resume: bool, overwrite: bool, console: Console | None,
                 init_from: str | Path | None = None) -> TrainReport:
    """`train` while this process holds the output_dir's lock."""
    assert cfg.data.train, "train checked data.train"
    checkpoints = list_checkpoints(out)  # again, under the lock: another run may have written some meanwhile
    if checkpoints and not resume and not overwrite:
        raise ConfigError(f"{out} already holds checkpoints: pass --resume to continue or --overwrite to start over")
    if overwrite and not resume and dist.is_main():
        for d in checkpoints + [out / "best", out / "last"]:
            shutil.rmtree(d, ignore_errors=True)
    dist.barrier()
    fmt = resolve_format(cfg.data.train, cfg.data.format, cfg.task)
    data = TrainingData(cfg.train.output_dir, cfg.data.num_proc, console)
    corpus, corpus_key, _ = data.corpus(cfg.data.train, fmt, cfg.data.skip_invalid)
    dev_examples: list[Example] = []
    dev_report = None
    if cfg.data.dev:
        dev_examples, dev_report = read_examples(cfg.data.dev, cfg.data.format, cfg.task, cfg.data.skip_invalid)
    for report in (corpus.report, dev_report):
        if report is not None and report.skipped:
            say(console, f"[yellow]{report.path}: skipped {len(report.skipped)} invalid line(s): "
                         f"{dict(report.skip_reasons())}[/]")
    if corpus.report.examples == 0:
        raise GPLinkerError(f"{cfg.data.train}: no training examples (the training data is empty)")
    if not corpus.has_gold(cfg.task):
        raise GPLinkerError(f"no gold items of task {cfg.task} found in {cfg.data.train} (read as format '{fmt}'; "
                            "is this the right format/task?)")

    seed_everything(cfg.train.seed)
    resume_from = pick_checkpoint(out, checkpoints, console) if resume else None
    if resume_from is not None:
        from gplinker.modeling.encoders import check_saved_tokenizer, load_tokenizer

        model, saved = GPLinkerModel.load(resume_from, cfg.model.trust_remote_code)
        changed = schedule_changes(saved.get("train_config", {}).get("train", {}), to_dict(cfg)["train"])
        if changed:
            raise ConfigError(f"--resume: {resume_from} was trained with another LR schedule: {'; '.join(changed)}. "
                              "A resumed run keeps the schedule it started with: set these back, or start a new "
                              "run (--overwrite, or another train.output_dir)")
        schema = Schema.from_dict(saved["schema"])
        task = build_task(cfg.task, schema, cfg.model.decode, cfg.model.event.require_trigger,
                          cfg.model.event.min_arguments)
        tokenizer = load_tokenizer(str(resume_from), model.model_type, cfg.model.trust_remote_code)
        check_saved_tokenizer(tokenizer, model.encoder, saved, str(resume_from))
        max_length = int(saved["max_length"])  # a resumed run keeps the windows it started with
    else:
        schema = load_schema(cfg, corpus, fmt)
        task = build_task(cfg.task, schema, cfg.model.decode, cfg.model.event.require_trigger,
                          cfg.model.event.min_arguments)
        if init_from is not None:
            model, tokenizer, warm = warm_start(cfg, task, init_from)
            check_positions(cfg, model.encoder)
            say(console, warm.summary())
        else:
            model, tokenizer = build_model(cfg, task, corpus.char_counts() if cfg.model.encoder in CHAR_VOCAB_ENCODERS
                                           else {}, console)
        max_length = resolve_max_length(cfg, data, corpus, corpus_key, tokenizer, position_limit(model.encoder),
                                        console)
    cfg = replace(cfg, data=replace(cfg.data, max_length=max_length))
    section = model_section(cfg, schema, fmt)
    section["tokenizer_size"] = len(tokenizer)  # a tokenizer that loads smaller later is refused

    windows, _ = data.windows(corpus, corpus_key, tokenizer, task, max_length=max_length, stride=cfg.data.stride,
                              char_level=cfg.data.char_level, pack=cfg.data.pack)
    if resume_from is None:
        section["limits"] = span_limits(cfg, model, windows, console)
    else:
        section["limits"] = saved.get("limits", {})
    # a schema from the training data has every label; a schema file or a resumed run's may lack some
    gaps = data.schema_gaps(corpus, corpus_key, schema) if cfg.data.schema or resume_from is not None else SchemaGaps()
    if gaps.items:
        say(console, f"[yellow]{gaps.items} gold item(s) of the training data have labels the schema lacks, so "
                     f"they can never be predicted as labelled: {gaps.summary()}[/]")
    unplaced = windows.unplaced()
    if unplaced - gaps.items > 0:
        say(console, f"[yellow]{unplaced - gaps.items} gold item(s) of the training data cannot be expressed in "
                     f"token positions (see `gplinker check`)[/]")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    channels = {h.name: h.channels for h in task.heads()}

    max_spans = {h.name: h.max_span for h in model.head_specs if h.span_head}

    def make_batch(indices: Indices) -> dict[str, Any]:
        return dict(windows.batch(indices, pad_id, channels, max_spans))

    def batch_order(epoch: int) -> list[Any]:
        return train_batches(windows.lengths, cfg.train.batch_size, cfg.train.seed, epoch)

    def save_model(m: nn.Module, directory: Path) -> None:
        assert isinstance(m, GPLinkerModel)  # the loop hands back the model it was given
        m.save(directory, section)
        tokenizer.save_pretrained(str(directory))

    evaluate = None
    width = model.encoder.config.hidden_size  # of the dev predictor's batch cut (predict.batch_cost)
    if dev_examples:
        def evaluate(m: nn.Module) -> tuple[float, dict[str, Any]]:
            predictor = Predictor(model=m, tokenizer=tokenizer, task=task, max_length=max_length,
                                  stride=cfg.data.stride, threshold=cfg.model.threshold,
                                  batch_size=cfg.train.eval_batch_size, device=next(m.parameters()).device,
                                  amp=cfg.train.amp, char_level=cfg.data.char_level,
                                  encoder_width=width)
            task_id = progress.add_task("evaluating", total=None, unit="windows", info="") if progress else None

            def advance(done: int, total: int) -> None:
                if progress is not None and task_id is not None:
                    progress.update(task_id, completed=done, total=total)

            mine = predictor.predict(dist.shard(dev_examples), advance)  # each rank predicts its share ...
            if progress is not None and task_id is not None:
                progress.remove_task(task_id)
            predictions = dist.unshard(dist.gather_objects(mine))  # ... and every rank scores them all once
            scores = task.score(dev_examples, predictions)
            return scores.main, scores.metrics

    if dist.is_main():
        out.mkdir(parents=True, exist_ok=True)
        write_run_info(out, to_dict(cfg))
    parameters = sum(p.numel() for p in model.parameters())
    say(console, f"task {cfg.task}: {corpus.report.examples} training examples → {len(windows)} windows; "
                 f"{len(dev_examples)} dev examples; {parameters / 1e6:.2f}M parameters")
    with make_progress(console, "steps", info=True) as progress:  # training and evaluation bars, one display
        result = fit(model=model, make_batch=make_batch, batch_order=batch_order, cfg=cfg.train,
                     save_model=save_model, evaluate=evaluate, resume_from=resume_from, console=console,
                     progress=progress if console is not None else None)
    return TrainReport(result, corpus.report, dev_report, len(windows), unplaced, gaps)


def span_limits(cfg: Config, model: GPLinkerModel, windows: WindowTable, console: Console | None) -> dict[str, Any]:
    """Apply model.max_span_length to the span heads; returns the `limits` section saved with the model.

    limits: the longest training window, and per span head the longest training span and the number
    of spans of each channel, plus the decoding limit of each channel (data/span_limits.py).
    """
    setting = cfg.model.max_span_length
    limits: dict[str, Any] = {"max_window": int(windows.lengths.max()) if len(windows) else 0, "heads": {}}
    mask: dict[str, int | None] = {}
    cut = 0
    for spec in model.head_specs:
        if not spec.span_head:
            continue
        longest, counts = windows.span_tokens(spec.name, spec.channels)
        learned = limits_from_training(longest, counts)
        if setting == "auto":
            mask[spec.name], channels = learned.max_span, learned.channels
        else:
            mask[spec.name], channels = (None if setting == "none" else int(setting)), [None] * spec.channels
        limits["heads"][spec.name] = {"longest": longest, "count": counts, "max_span": mask[spec.name],
                                      "channels": channels}
        limit = mask[spec.name]
        if limit is not None and max(longest, default=0) > limit:
            cut += sum(1 for n in longest if n > limit)
    model.limit_spans(mask)
    shown = ", ".join(f"{name} {n if n is not None else 'any'}" for name, n in mask.items())
    say(console, f"span heads score spans of at most: {shown} tokens (model.max_span_length {setting})")
    if cut:
        say(console, f"[yellow]{cut} label(s) have gold spans longer than model.max_span_length {setting}: those "
                     "spans are left out of training and can never be predicted[/]")
    return limits


def resolve_max_length(cfg: Config, data: TrainingData, corpus: Corpus, corpus_key: str, tokenizer: Any,
                       limit: int | None, console: Console | None) -> int:
    """data.max_length as a number: the configured one, or (auto) the one the training texts need."""
    if isinstance(cfg.data.max_length, int):
        return cfg.data.max_length
    if cfg.model.encoder == "scratch":
        limit = cfg.model.scratch.max_position if limit is None else min(limit, cfg.model.scratch.max_position)
    length, summary = data.max_length(corpus, corpus_key, tokenizer, cfg.data.char_level, limit)
    capped = " (capped at the encoder's position limit)" if limit is not None and length == limit else ""
    say(console, f"data.max_length auto → {length}: 99.9 % of the {summary['texts']} training texts fit in one "
                 f"window (longest {summary['max']} tokens){capped}")
    if cfg.data.stride >= length - 4:
        raise ConfigError(f"data.stride {cfg.data.stride} must be below data.max_length - 4 = {length - 4} "
                          "(max_length auto came out that short); lower data.stride")
    return length
