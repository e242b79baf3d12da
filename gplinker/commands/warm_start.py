"""`gplinker train --init-from MODEL_DIR`: start from a trained model, with the new config's labels.

The encoder (weights and tokenizer) comes from the model dir. Each head channel is matched by its
label (`Task.channel_labels`: entity type; subject/object and "predicate@slot"; "event type::role"),
never by index, so a reordered or grown schema lines up: a channel whose label the old model has
takes that channel's weights (`copy_channels_from` of the pointer heads, with the head's shared
projection), a new label starts from a fresh init, and the old labels the new schema lacks are
reported as dropped. Label lists are sorted or in schema file order (`schema_from_examples`), never
set order. The config's encoder settings must be the model dir's: the weights could not load
otherwise, and a silent mismatch would train another model than the config says.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gplinker.config import Config
from gplinker.data.schema import Schema
from gplinker.errors import ConfigError
from gplinker.modeling.light import MODEL_TYPES
from gplinker.modeling.model import GPLinkerModel
from gplinker.tasks import build_task
from gplinker.tasks.base import Task

# Config keys that shape the encoder or its heads: the model dir's training config must agree.
ENCODER_KEYS = ("model.encoder", "model.head", "model.head_size", "data.char_level")
SCRATCH_KEYS = ("hidden_size", "num_layers", "num_heads", "intermediate_size", "max_position", "dropout")
LIGHT_KEYS = ("embedding_dim", "hidden_size", "dropout", "dilations", "layers", "bigram_buckets")  # dgcnn, bilstm


@dataclass
class WarmStart:
    """Per head, the labels whose channels kept their weights, the new ones, and those the new schema dropped."""

    source: Path
    kept: dict[str, list[str]] = field(default_factory=dict)
    new: dict[str, list[str]] = field(default_factory=dict)
    dropped: dict[str, list[str]] = field(default_factory=dict)

    def summary(self) -> str:
        """One line: counts and the new and dropped labels (first ten of each)."""
        def labels(groups: dict[str, list[str]]) -> str:
            names = [f"{head}:{label}" for head, found in groups.items() for label in found]
            return ", ".join(names[:10]) + (", ..." if len(names) > 10 else "") if names else "none"

        count = sum(len(v) for v in self.kept.values())
        return (f"--init-from {self.source}: {count} channel(s) kept their weights; new (fresh init): "
                f"{labels(self.new)}; dropped: {labels(self.dropped)}")


def encoder_mismatches(cfg: Config, saved: dict[str, Any]) -> list[str]:
    """'key: config X, model dir Y' for each encoder setting where the config and the saved training config differ."""
    trained = saved.get("train_config") or {}
    now = {"model.encoder": cfg.model.encoder, "model.head": cfg.model.head, "model.head_size": cfg.model.head_size,
           "data.char_level": cfg.data.char_level}
    then = {"model.encoder": trained.get("model", {}).get("encoder"), "model.head": saved.get("head_type"),
            "model.head_size": saved.get("head_size"), "data.char_level": saved.get("char_level", False)}
    if cfg.model.encoder == "scratch":
        for key in SCRATCH_KEYS:
            now[f"model.scratch.{key}"] = getattr(cfg.model.scratch, key)
            then[f"model.scratch.{key}"] = trained.get("model", {}).get("scratch", {}).get(key)
    if cfg.model.encoder in MODEL_TYPES:
        for key in LIGHT_KEYS:  # each shapes the saved architecture, so the config's value would be ignored
            now[f"model.light.{key}"] = getattr(cfg.model.light, key)
            then[f"model.light.{key}"] = trained.get("model", {}).get("light", {}).get(key)
    return [f"{key}: config {now[key]!r}, model dir {then[key]!r}" for key in now
            if then[key] is not None and now[key] != then[key]]


def warm_start(cfg: Config, task: Task, model_dir: str | Path) -> tuple[GPLinkerModel, Any, WarmStart]:
    """The new task's model on the model dir's encoder, channels matched by label; its tokenizer; what matched."""
    from gplinker.modeling.encoders import load_tokenizer

    source = Path(model_dir)
    old, saved = GPLinkerModel.load(source, cfg.model.trust_remote_code)
    if saved["task"] != cfg.task:
        raise ConfigError(f"--init-from {source}: a {saved['task']} model, but the config trains task {cfg.task}")
    mismatched = encoder_mismatches(cfg, saved)
    if mismatched:
        raise ConfigError(f"--init-from {source}: the config's encoder settings differ from the model dir's: "
                          f"{'; '.join(mismatched)}. The encoder and its vocabulary come from the model dir: set "
                          "these as it has them (or drop --init-from to train a new encoder)")
    tokenizer = load_tokenizer(str(source), old.model_type, cfg.model.trust_remote_code)
    old_labels = build_task(saved["task"], Schema.from_dict(saved["schema"])).channel_labels()
    model = GPLinkerModel(old.encoder, task.heads(), cfg.model.head, cfg.model.head_size)
    report = WarmStart(source)
    for head, labels in task.channel_labels().items():
        before = {label: c for c, label in enumerate(old_labels.get(head, []))}
        if len(set(labels)) != len(labels) or len(before) != len(old_labels.get(head, [])):
            raise ConfigError(f"--init-from {source}: head '{head}' has two channels with one label, so channels "
                              "cannot be matched by label")
        pairs = [(c, before[label]) for c, label in enumerate(labels) if label in before]
        if head in old_labels:
            model.heads[head].copy_channels_from(old.heads[head], pairs)  # type: ignore[operator]
        report.kept[head] = [labels[c] for c, _ in pairs]
        report.new[head] = [label for label in labels if label not in before]
        report.dropped[head] = [label for label in old_labels.get(head, []) if label not in set(labels)]
    for head, labels in old_labels.items():
        if head not in report.kept:
            report.dropped[head] = list(labels)
    return model, tokenizer, report
