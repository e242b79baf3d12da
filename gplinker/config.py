"""Run configuration: nested dataclasses loaded from YAML, with typed `--set a.b=value` overrides.

Every field carries its help text in `metadata["help"]`; unknown keys are errors that name the key.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml

from gplinker.errors import ConfigError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


T = TypeVar("T")


def opt(default: T, help: str, **kwargs: Any) -> T:
    """A dataclass field with a help string."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help}, **kwargs)
    return field(default=default, metadata={"help": help}, **kwargs)


@dataclass
class DataConfig:
    """`data:` input files, their format and how texts are cut into windows."""

    train: str | None = opt(None, "training JSONL file")
    dev: str | None = opt(None, "dev JSONL file, evaluated during training (best checkpoint by its main score)")
    format: str = opt("auto", "input format: cluener | spans | duie2 | duie1 | duee | casrel | tplinker | auto (guess "
                      "from the first line)")
    schema: str | None = opt(None, "label schema file (duie_schema.json, all_50_schemas, duee_event_schema.json); "
                             "default: labels found in the training data")
    max_length: int | str = opt(128, "tokens per window, special tokens included; longer texts use sliding "
                                "windows; auto = the smallest window holding 99.9 % of the training texts whole, "
                                "capped at the encoder's position limit")
    stride: int = opt(32, "tokens shared by consecutive windows of a long text")
    char_level: bool = opt(False, "tokenize every character on its own: token boundaries are character boundaries "
                           "even with WordPiece vocabularies (e.g. 'ac米兰' is not cut inside 'ac'); "
                           "the convention of the CLUENER baselines")
    pack: bool | float = opt(False, "pack consecutive training examples into one window (up to max_length), each "
                             "label kept, cells across examples negative: the model sees long contexts and "
                             "long-range negatives; a number in (0, 1): about that share of the windows are packs, "
                             "the others hold one example each")
    num_proc: int = opt(0, "worker processes that read and encode the training data (datasets' num_proc); "
                        "0 = one per CPU core, at most 8")
    skip_invalid: bool = opt(False, "skip and count bad data lines instead of stopping at the first one")


@dataclass
class ScratchConfig:
    """`model.scratch:` sizes of the small BERT trained from scratch."""

    hidden_size: int = opt(128, "hidden size of the scratch BERT")
    num_layers: int = opt(2, "transformer layers of the scratch BERT")
    num_heads: int = opt(4, "attention heads of the scratch BERT")
    intermediate_size: int = opt(256, "feed-forward size of the scratch BERT")
    max_position: int = opt(512, "position embeddings of the scratch BERT (>= data.max_length)")
    dropout: float = opt(0.1, "dropout of the scratch BERT")
    min_char_count: int = opt(1, "characters seen fewer times in the training data map to [UNK]")


@dataclass
class EventConfig:
    """`model.event:` which maximal cliques of linked arguments are events (event task only)."""

    require_trigger: bool = opt(True, "an event needs a trigger (the reference decoder); false: a clique of at least "
                                "min_arguments arguments is an event without one too, and gold events without a "
                                "trigger are learned")
    min_arguments: int = opt(2, "with require_trigger false: the fewest arguments (trigger not counted) of an event "
                             "without a trigger (>= 1)")


@dataclass
class LightConfig:
    """`model.light:` the light encoders (model.encoder dgcnn | bilstm): character embeddings, then CNN or LSTM."""

    embedding_dim: int = opt(128, "size of the character embeddings (= the vectors' size when model.light.embeddings "
                             "is set)")
    hidden_size: int = opt(256, "size D of the hidden states the heads see (bilstm: D / 2 per direction, so even)")
    dropout: float = opt(0.1, "dropout on the embeddings, on the DGCNN gates and between the LSTM layers")
    min_char_count: int = opt(1, "characters seen fewer times in the training data map to [UNK]")
    dilations: list[int] = opt([1, 2, 5, 1, 2, 5, 1, 1], "dgcnn: dilation of each gated convolution (kernel 3), "
                               "one block per entry, as in the LIC2019 DGCNN")
    layers: int = opt(2, "bilstm: bidirectional LSTM layers")
    bigram_buckets: int = opt(0, "rows of a hashed character-bigram embedding table (embedding_dim wide, concatenated "
                              "with the character embedding); 0: characters only")
    embeddings: str | None = opt(None, "word2vec/GloVe text file of character vectors (optional 'N D' header): "
                                 "initialises the characters it holds; the others get a random init")


LIGHT_ENCODERS = ("dgcnn", "bilstm")
CHAR_VOCAB_ENCODERS = ("scratch", *LIGHT_ENCODERS)  # encoders whose vocabulary is made from the training data


@dataclass
class ModelConfig:
    """`model:` the encoder and the pointer heads."""

    encoder: str = opt("scratch", "transformers model name or local dir (AutoModel + fast tokenizer), "
                       "or 'scratch' for a small BERT with a character vocabulary built from the training data, "
                       "or 'dgcnn' / 'bilstm' for a light encoder over the same vocabulary (model.light)")
    head: str = opt("egp", "pointer head: egp (Efficient GlobalPointer) | gp (standard GlobalPointer)")
    head_size: int = opt(64, "inner size of each pointer head")
    threshold: float = opt(0.0, "decoding threshold on the logits (0 = probability 0.5)")
    max_span_length: int | str = opt("auto", "longest span in tokens the span heads score: auto = 1.25 x the "
                                     "longest training span, per head and (for labels with >= 100 training spans) "
                                     "per label; N = N tokens for every span head; none = any length")
    decode: str = opt("nested", "NER decoding: nested (every span above the threshold) | flat (among overlapping "
                      "spans only the highest-scoring, greedily; recorded with the model, so eval/predict use it)")
    trust_remote_code: bool = opt(False, "allow a model dir from elsewhere to run its own code (off by default)")
    scratch: ScratchConfig = field(default_factory=ScratchConfig, metadata={"help": "sizes of the scratch encoder"})
    event: EventConfig = field(default_factory=EventConfig, metadata={"help": "event decoding: triggers"})
    light: LightConfig = field(default_factory=LightConfig, metadata={"help": "the light encoders dgcnn and bilstm"})


@dataclass
class TrainConfig:
    """`train:` optimisation, evaluation, checkpoints and device."""

    output_dir: str = opt("runs/gplinker", "where checkpoints, best/ and last/ model dirs and logs are written")
    epochs: int = opt(3, "passes over the training data (ignored when max_steps > 0)")
    max_steps: int = opt(0, "optimizer steps to run; 0 = use epochs")
    batch_size: int = opt(16, "windows per micro-batch, summed over all processes under torchrun "
                          "(so a run's batches do not depend on the number of processes)")
    eval_batch_size: int = opt(64, "windows per forward pass in eval/predict")
    grad_accum: int = opt(1, "micro-batches accumulated per optimizer step")
    lr: float = opt(2e-5, "peak learning rate of the encoder")
    head_lr: float = opt(0.0, "learning rate of the pointer heads; 0 = same as lr")
    weight_decay: float = opt(0.01, "AdamW weight decay (not applied to biases and LayerNorm)")
    warmup_ratio: float = opt(0.1, "share of steps with linear warmup, then linear decay to 0")
    max_grad_norm: float = opt(1.0, "gradient clipping norm; 0 = off")
    seed: int = opt(42, "seed for data order, dropout and initialisation")
    amp: str = opt("off", "mixed precision: off | bf16 | fp16 (fp16 needs CUDA)")
    eval_every: int = opt(0, "evaluate (and checkpoint) every N optimizer steps; 0 = once per epoch")
    patience: int = opt(0, "stop after N evaluations without improvement; 0 = never")
    keep_checkpoints: int = opt(2, "newest resumable checkpoints kept")
    log_every: int = opt(10, "optimizer steps between log lines")
    device: str = opt("auto", "auto | cpu | cuda | cuda:N")


@dataclass
class Config:
    """A whole run: the task and its data, model and train sections."""

    task: str = opt("ner", "ner | relation | event")
    data: DataConfig = field(default_factory=DataConfig, metadata={"help": "data files and windowing"})
    model: ModelConfig = field(default_factory=ModelConfig, metadata={"help": "encoder and heads"})
    train: TrainConfig = field(default_factory=TrainConfig, metadata={"help": "optimisation and checkpoints"})


TASKS = ("ner", "relation", "event")
DECODINGS = ("nested", "flat")

D = TypeVar("D", bound="DataclassInstance")


def from_dict(cls: type[D], values: dict[str, Any], where: str = "") -> D:
    """Build dataclass `cls` from a nested dict, rejecting unknown keys and wrong types."""
    if not isinstance(values, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {type(values).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        dotted = f"{where}.{key}" if where else key
        if key not in known:
            raise ConfigError(f"unknown config key '{dotted}' (known: {', '.join(sorted(known))})")
        hint = hints[key]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):  # a nested section
            kwargs[key] = from_dict(hint, value or {}, dotted)
        else:
            kwargs[key] = coerce(value, hint, dotted)
    return cls(**kwargs)


def coerce(value: Any, hint: Any, where: str) -> Any:
    """Check `value` against a simple type hint (str, int, float, bool, X | None), converting int→float."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) is list:
        if not isinstance(value, list):
            raise ConfigError(f"config key '{where}' must be a list, e.g. [1, 2, 5], got {value!r}")
        return [coerce(v, args[0], f"{where}[{k}]") for k, v in enumerate(value)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        choices = [a for a in args if a is not type(None)]
        hint = next((a for a in choices if isinstance(value, a) and (a is bool) == isinstance(value, bool)), None)
        if hint is None:  # no choice holds the value: an int may still be a float, else the first choice says why
            number = isinstance(value, int) and not isinstance(value, bool)
            hint = float if number and float in choices else choices[0]
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):
        try:
            return float(value)  # YAML 1.1 reads 1e-3 (no dot) as a string
        except ValueError:
            pass
    if hint is bool and not isinstance(value, bool) or hint is not bool and isinstance(value, bool):
        raise ConfigError(f"config key '{where}' must be {hint.__name__}, got {shown(value)}")
    if not isinstance(value, hint):
        raise ConfigError(f"config key '{where}' must be {hint.__name__}, got {shown(value)}")
    return value


def shown(value: Any) -> str:
    """A value as an error message quotes it: repr, cut short, nested levels and long lists elided.

    reprlib stops at its limits instead of building the whole repr, so a YAML anchor bomb (a few
    lines that expand to billions of list items) costs microseconds here, not gigabytes.
    """
    import reprlib

    r = reprlib.Repr()
    r.maxlevel, r.maxlist, r.maxdict, r.maxtuple, r.maxset = 2, 4, 4, 4, 4
    r.maxstring, r.maxother, r.maxlong = 80, 80, 40
    return r.repr(value)


def to_dict(config: Config) -> dict[str, Any]:
    """The config as nested plain dicts (saved with the model and in the run info)."""
    return dataclasses.asdict(config)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse `a.b=value`; the value is read as YAML, so 3 → int, 1e-3 → float, true → bool, null → None."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' must look like key.sub=value")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    if isinstance(value, dict):
        value = raw  # mappings are not config values here: keep the text
    return key.strip().split("."), value


def apply_overrides(values: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `--set` overrides to the raw nested dict; keys are checked later by from_dict."""
    for text in overrides:
        path, value = parse_override(text)
        node = values
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override '{text}': '{part}' is not a section")
        node[path[-1]] = value
    return values


def load_config(path: str | Path | None, overrides: Iterable[str] = ()) -> Config:
    """Load a YAML config (or defaults when path is None), apply overrides, validate."""
    values: dict[str, Any] = {}
    if path is not None:
        path = Path(path).resolve()  # a symlinked config resolves its data paths next to its target
        if not path.is_file():
            raise ConfigError(f"config file {path} not found")
        try:
            values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {str(exc)[:500]}") from None
        except RecursionError:
            raise ConfigError(f"{path}: not a config: its YAML is nested too deeply") from None
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: a config is a YAML mapping of sections, got {shown(values)}")
        values = _resolve_paths(values, path.parent)
    config = from_dict(Config, apply_overrides(values, list(overrides)))
    validate(config)
    return config


def _resolve_paths(values: dict[str, Any], base: Path) -> dict[str, Any]:
    """Data paths in a config file are relative to the file, like spaCy's; absolute ones and hf: names stay.

    Only relative to the file, whether or not the path exists there: a missing file is then
    reported under the path that was tried, never silently looked up in the working dir.
    (`--set data.train=...` values are not config-file paths: they stay relative to the working dir.)
    """
    data = values.get("data")
    if isinstance(data, dict):
        for key in ("train", "dev", "schema"):
            value = data.get(key)
            is_hub_name = isinstance(value, str) and value.startswith("hf:")  # data/sources.py reads those
            if isinstance(value, str) and value and not is_hub_name and not Path(value).is_absolute():
                data[key] = str((base / value).resolve())
    return values


def validate(config: Config) -> None:
    """Cross-field checks with messages that say how to fix the value."""
    if config.task not in TASKS:
        raise ConfigError(f"task must be one of {', '.join(TASKS)}, got '{config.task}'")
    if config.model.head not in ("egp", "gp"):
        raise ConfigError(f"model.head must be egp or gp, got '{config.model.head}'")
    if config.model.decode not in DECODINGS:
        raise ConfigError(f"model.decode must be nested or flat, got '{config.model.decode}'")
    if config.model.decode == "flat" and config.task != "ner":
        raise ConfigError(f"model.decode flat is for the ner task; the {config.task} task decodes overlapping "
                          "entities by design (a subject inside its object's title, an argument inside another)")
    if config.train.amp not in ("off", "bf16", "fp16"):
        raise ConfigError(f"train.amp must be off, bf16 or fp16, got '{config.train.amp}'")
    max_length = config.data.max_length
    if isinstance(max_length, str) and max_length != "auto":
        raise ConfigError(f"data.max_length must be a number of tokens or auto, got '{max_length}'")
    if isinstance(max_length, int) and max_length < 8:
        raise ConfigError(f"data.max_length must be at least 8, got {max_length}")
    if isinstance(max_length, int) and not 0 <= config.data.stride < max_length - 4:
        raise ConfigError(f"data.stride must be in [0, max_length - 4), got {config.data.stride}")
    pack = config.data.pack
    if not isinstance(pack, bool) and not 0 < pack <= 1:
        raise ConfigError(f"data.pack must be true, false or a share of packed windows in (0, 1], got {shown(pack)}")
    span = config.model.max_span_length
    if isinstance(span, str) and span not in ("auto", "none") or isinstance(span, int) and span < 1:
        raise ConfigError(f"model.max_span_length must be auto, none or a number of tokens >= 1, got {shown(span)}")
    if config.data.num_proc < 0:
        raise ConfigError(f"data.num_proc must be 0 (one per core) or more, got {config.data.num_proc}")
    for name in ("batch_size", "eval_batch_size", "grad_accum", "keep_checkpoints"):
        if getattr(config.train, name) < 1:
            raise ConfigError(f"train.{name} must be at least 1")
    if config.model.encoder == "scratch" and isinstance(max_length, int) \
            and config.model.scratch.max_position < max_length:
        raise ConfigError("model.scratch.max_position must be >= data.max_length")
    validate_light(config.model)


def validate_light(model: ModelConfig) -> None:
    """model.light: sizes the light encoders can be built with."""
    light = model.light
    if model.encoder not in LIGHT_ENCODERS:
        return
    for name in ("embedding_dim", "hidden_size", "layers", "min_char_count"):
        if getattr(light, name) < 1:
            raise ConfigError(f"model.light.{name} must be at least 1, got {getattr(light, name)}")
    if light.bigram_buckets < 0:
        raise ConfigError(f"model.light.bigram_buckets must be 0 (off) or a number of rows, got {light.bigram_buckets}")
    if not 0 <= light.dropout < 1:
        raise ConfigError(f"model.light.dropout must be in [0, 1), got {light.dropout}")
    if model.encoder == "bilstm" and light.hidden_size % 2:
        raise ConfigError(f"model.light.hidden_size must be even for bilstm (D / 2 per direction), "
                          f"got {light.hidden_size}")
    if model.encoder == "dgcnn" and (not light.dilations or min(light.dilations) < 1):
        raise ConfigError(f"model.light.dilations must list one dilation >= 1 per block, got {light.dilations}")
