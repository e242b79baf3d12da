"""`gplinker check`: validate a data file, run the oracle round trip, and report lengths (spaCy's `debug data`)."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gplinker.config import CHAR_VOCAB_ENCODERS, LIGHT_ENCODERS, Config
from gplinker.data.encoding import SPECIAL, WindowEncoder, auto_max_length, special_tokens_around, token_counts
from gplinker.data.formats import ReadReport
from gplinker.data.reading import PLAIN_OBJECTS, read_examples, resolve_format
from gplinker.data.schema import (
    Schema,
    SchemaGaps,
    load_duee_schema,
    load_duie_schema,
    schema_from_examples,
    schema_gaps,
)
from gplinker.errors import ConfigError
from gplinker.metrics import PRF, strict_prf
from gplinker.tasks import build_task
from gplinker.tasks.oracle import oracle_predictions


@dataclass
class CheckReport:
    """What `check` found: the reader's report, the oracle's scores and the lengths of texts and windows."""

    format: str
    report: ReadReport
    oracle: PRF
    oracle_per_label: dict[str, PRF]
    chars: list[int]
    tokens: list[int]
    windows: int
    long_texts: int  # texts needing more than one window
    lost: list[tuple[str, dict[str, Any]]]  # (source:line, item record) of gold items the oracle loses, first 20
    gaps: SchemaGaps = field(default_factory=SchemaGaps)  # gold items whose labels the schema lacks (among the lost)
    task: str = "ner"


def load_check_inputs(task: str, tokenizer: str | None, schema: Path | None) -> tuple[Any, Schema | None]:
    """The tokenizer (a name or dir; None = a character vocabulary made from the data) and schema `check` uses."""
    tok = None
    if tokenizer:
        from gplinker.modeling.encoders import load_tokenizer

        config = Path(tokenizer, "config.json")  # model_type picks the tokenizer class (load_tokenizer)
        model_type = json.loads(config.read_text(encoding="utf-8")).get("model_type", "bert") if config.is_file() \
            else "bert"
        tok = load_tokenizer(tokenizer, model_type)
    loaded = None
    if schema:
        loaded = (load_duie_schema if task == "relation" else load_duee_schema)(schema)
    return tok, loaded


def check_data(path: str, task_name: str, fmt: str = "auto", tokenizer: Any = None, max_length: int = 128,
               stride: int = 32, skip_invalid: bool = True, schema: Schema | None = None,
               char_level: bool = False, decode: str = "nested", require_trigger: bool = True,
               min_arguments: int = 2) -> CheckReport:
    """Validate a data file and run the oracle round trip gold → targets → decode → merge (`decode`: nested | flat)."""
    from gplinker.modeling.encoders import scratch_tokenizer

    fmt = resolve_format(path, fmt, task_name)
    examples, report = read_examples(path, fmt, task_name, skip_invalid)
    style = "duie1" if fmt in PLAIN_OBJECTS else "duie2"
    schema = schema or schema_from_examples(task_name, examples, relation_format=style)
    task = build_task(task_name, schema, decode, require_trigger, min_arguments)
    gaps = schema_gaps(schema, examples)
    tokenizer = tokenizer or scratch_tokenizer(e.text for e in examples)
    encoder = WindowEncoder(tokenizer, max_length, stride, char_level)
    windows = encoder.encode([e.text for e in examples])
    predictions = oracle_predictions(task, examples, windows)
    gold = [task.gold(e) for e in examples]
    prf, per_label = strict_prf(gold, [list(p) for p in predictions], label_of=task.label_of)
    n_windows = [0] * len(examples)
    token_spans: list[set[tuple[int, int]]] = [set() for _ in examples]  # windows overlap: count each token once
    for w in windows:
        n_windows[w.example_index] += 1
        token_spans[w.example_index].update(s for s in w.char_spans if s != SPECIAL)
    tokens = [len(s) for s in token_spans]
    lost: list[tuple[str, dict[str, Any]]] = []
    for e, g, p in zip(examples, gold, predictions):
        for item in sorted(set(g) - set(p), key=repr):
            if len(lost) < 20:
                lost.append((f"{e.source}:{e.line}", task.item_record(e.text, item)))
    return CheckReport(fmt, report, prf, per_label, [len(e.text) for e in examples], tokens, len(windows),
                       sum(1 for n in n_windows if n > 1), lost, gaps, task_name)


def length_stats(values: list[int]) -> dict[str, float]:
    """min, mean, 95th percentile and max of a list of lengths (zeros when empty)."""
    if not values:
        return {"min": 0, "mean": 0, "p95": 0, "max": 0}
    ordered = sorted(values)
    return {"min": ordered[0], "mean": round(statistics.fmean(ordered), 1),
            "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], "max": ordered[-1]}


@dataclass
class CheckSettings:
    """What `check` windows a file with: from a training config (`--config`), as a training run would."""

    task: str
    format: str
    tokenizer: Any
    schema: Schema | None
    max_length: int
    stride: int
    char_level: bool
    note: str  # how max_length was chosen, for the report
    decode: str = "nested"  # model.decode: a flat oracle loses the nested gold spans
    require_trigger: bool = True  # model.event: an oracle that needs triggers loses the events without one
    min_arguments: int = 2


def settings_from_config(cfg: Config) -> CheckSettings:
    """The task, format, schema, tokenizer and windows a `gplinker train` run of `cfg` would use.

    The scratch vocabulary is made from data.train (with model.scratch.min_char_count), and
    `data.max_length: auto` is resolved from data.train's texts, both as in training.
    """
    from gplinker.data.encoding import char_counts
    from gplinker.modeling.encoders import load_tokenizer, scratch_tokenizer

    if not cfg.data.train and (cfg.model.encoder in CHAR_VOCAB_ENCODERS or cfg.data.max_length == "auto"):
        raise ConfigError("the config sets no data.train, which check needs for the scratch vocabulary "
                          "and for data.max_length auto")
    train_texts: list[str] = []
    if cfg.data.train:
        examples, _ = read_examples(cfg.data.train, cfg.data.format, cfg.task, skip_invalid=True)
        train_texts = [e.text for e in examples]
    if cfg.model.encoder == "scratch":
        tokenizer = scratch_tokenizer(char_counts(train_texts), cfg.model.scratch.min_char_count)
        limit: int | None = cfg.model.scratch.max_position
    elif cfg.model.encoder in LIGHT_ENCODERS:  # no position limit
        tokenizer, limit = scratch_tokenizer(char_counts(train_texts), cfg.model.light.min_char_count), None
    else:
        from transformers import AutoConfig

        encoder_config = AutoConfig.from_pretrained(cfg.model.encoder, trust_remote_code=cfg.model.trust_remote_code)
        tokenizer = load_tokenizer(cfg.model.encoder, encoder_config.model_type, cfg.model.trust_remote_code)
        limit = getattr(encoder_config, "max_position_embeddings", None)
    schema = None
    if cfg.data.schema:
        schema = (load_duie_schema if cfg.task == "relation" else load_duee_schema)(cfg.data.schema)
    if isinstance(cfg.data.max_length, int):
        max_length, note = cfg.data.max_length, f"data.max_length {cfg.data.max_length}"
    else:
        prefix, suffix = special_tokens_around(tokenizer)
        counts = token_counts(tokenizer, train_texts, cfg.data.char_level)
        max_length = auto_max_length(counts, len(prefix) + len(suffix), limit)
        note = (f"data.max_length auto → {max_length} (99.9 % of the {len(counts)} training texts in one window, "
                f"longest {max(counts, default=0)} tokens)")
    return CheckSettings(cfg.task, cfg.data.format, tokenizer, schema, max_length, cfg.data.stride,
                         cfg.data.char_level, note, cfg.model.decode, cfg.model.event.require_trigger,
                         cfg.model.event.min_arguments)
