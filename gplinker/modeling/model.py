"""GPLinkerModel: a transformers encoder under one pointer head per task head; save/load as an HF-style dir."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from gplinker.atomic_files import swapped_out
from gplinker.errors import ConfigError, GPLinkerError
from gplinker.head_spec import HeadSpec
from gplinker.manifest import verify
from gplinker.model_format import check_model_format
from gplinker.modeling.light import is_light, light_encoder_from_config
from gplinker.modeling.losses import pointer_loss
from gplinker.modeling.pointer import EfficientGlobalPointer, GlobalPointer

WEIGHTS = "model.safetensors"
CONFIG = "config.json"


@dataclass
class PointerOutput:
    """What the model returns: the summed loss (when labels were given) and plain logits per head."""

    loss: torch.Tensor | None
    logits: dict[str, torch.Tensor]  # head name -> (B, C, L, L)


class GPLinkerModel(nn.Module):
    """encoder → last hidden states (B, L, D) → one (E)GP head per HeadSpec → logits (B, C, L, L)."""

    def __init__(self, encoder: Any, heads: list[HeadSpec], head_type: str = "egp", head_size: int = 64):
        super().__init__()
        if head_type not in ("egp", "gp"):
            raise ConfigError(f"model.head must be egp or gp, got '{head_type}'")
        pointer = EfficientGlobalPointer if head_type == "egp" else GlobalPointer
        self.encoder: Any = encoder  # a transformers PreTrainedModel or a LightEncoder: returns .last_hidden_state
        self.head_specs = list(heads)
        self.head_type, self.head_size = head_type, head_size
        hidden = encoder.config.hidden_size
        self.heads = nn.ModuleDict({
            h.name: pointer(hidden, h.channels, head_size, rope=h.rope, tril_mask=h.tril_mask, max_span=h.max_span)
            for h in heads
        })

    def limit_spans(self, max_span: dict[str, int | None]) -> None:
        """Mask spans of more than max_span[head] tokens in those span heads (loss and decoding); None: any length."""
        self.head_specs = [replace(h, max_span=max_span[h.name]) if h.span_head and h.name in max_span else h
                           for h in self.head_specs]
        for spec in self.head_specs:
            head = self.heads[spec.name]
            assert isinstance(head, (EfficientGlobalPointer, GlobalPointer))
            head.max_span = spec.max_span

    @property
    def model_type(self) -> str:
        """The encoder's transformers model type (bert, roformer, ...), which picks its tokenizer class."""
        return str(self.encoder.config.model_type)

    def forward(self, input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor | None = None,
                labels: dict[str, Tensor] | None = None) -> PointerOutput:
        """Logits of every head for a batch (B, L); with `labels` (head -> (B, C, K) cells) also the loss."""
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        hidden = self.encoder(**kwargs).last_hidden_state  # (B, L, D)
        scores = {name: head(hidden, attention_mask) for name, head in self.heads.items()}  # PairScores each
        loss: Tensor | None = None
        if labels is not None:
            for name in self.heads:  # summed over heads in head order, as sum() would
                head_loss = pointer_loss(scores[name], labels[name])
                loss = head_loss if loss is None else loss + head_loss
        return PointerOutput(loss=loss, logits={name: s.logits for name, s in scores.items()})

    # --- persistence ------------------------------------------------------------------------

    def save(self, directory: str | Path, gplinker_config: dict[str, Any]) -> None:
        """Write config.json (encoder config + `gplinker` section) and model.safetensors."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        config = self.encoder.config.to_dict()
        config["gplinker"] = {
            **gplinker_config,
            "heads": [asdict(h) for h in self.head_specs],
            "head_type": self.head_type,
            "head_size": self.head_size,
        }
        (directory / CONFIG).write_text(json.dumps(config, ensure_ascii=False, indent=2), encoding="utf-8")
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        save_file(state, str(directory / WEIGHTS), metadata={"format": "pt"})

    @classmethod
    def load(cls, directory: str | Path, trust_remote_code: bool = False) -> tuple[GPLinkerModel, dict[str, Any]]:
        """Rebuild the model from a dir written by `save`; returns (model, gplinker config section)."""
        directory = resolve_model_dir(directory)
        config_path = directory / CONFIG
        if not config_path.is_file() or not (directory / WEIGHTS).is_file():
            raise ConfigError(f"{directory} is not a gplinker model dir (needs {CONFIG} and {WEIGHTS})")
        warn_unverified(directory, verify(directory))  # CorruptFile before any byte is trusted
        try:
            raw = json.loads(config_path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise GPLinkerError(f"{config_path}: corrupt or incomplete (not JSON: {exc})") from None
        if "gplinker" not in raw:
            raise ConfigError(f"{config_path} has no 'gplinker' section: not a gplinker model dir")
        section: dict[str, Any] = raw["gplinker"]
        check_model_format(section, str(config_path))
        encoder = light_encoder_from_config(raw) if is_light(raw.get("model_type")) else \
            transformers_encoder(directory, trust_remote_code)
        heads = [HeadSpec(**h) for h in section["heads"]]
        model = cls(encoder, heads, section["head_type"], section["head_size"])
        model.load_state_dict(read_weights(directory / WEIGHTS), strict=True)
        return model, section


def resolve_model_dir(directory: str | Path) -> Path:
    """`directory`, or, when a run was killed while replacing it, the previous copy it left (with a warning)."""
    directory = Path(directory)
    previous = swapped_out(directory)
    if previous is None:
        return directory
    import warnings

    warnings.warn(f"{directory} is missing: a run was killed while replacing it; loading the previous copy "
                  f"{previous} (the next `gplinker train --resume` there puts it back)", UserWarning, stacklevel=3)
    return previous


def read_weights(path: Path, device: str = "cpu") -> dict[str, Tensor]:
    """The tensors of a safetensors file; a truncated or malformed one is a GPLinkerError naming it."""
    try:
        return load_file(str(path), device=device)
    except Exception as exc:  # safetensors raises its own SafetensorError (header too large, invalid length, ...)
        if type(exc).__name__ != "SafetensorError" and not isinstance(exc, OSError):
            raise
        raise GPLinkerError(f"{path}: corrupt or incomplete (cannot read it as safetensors: {exc})") from None


def warn_unverified(directory: Path, status: str) -> None:
    """A warning for a dir without manifest.json (written before gplinker checked them): its bytes are trusted as is."""
    if status == "unverified":
        import warnings

        warnings.warn(f"{directory}: no manifest.json (written by a gplinker that wrote none), so its "
                      "files are unverified", UserWarning, stacklevel=3)


def transformers_encoder(directory: Path, trust_remote_code: bool) -> Any:
    """An AutoModel with random weights of the encoder config saved in `directory`."""
    from transformers import AutoConfig, AutoModel

    try:
        encoder_config = AutoConfig.from_pretrained(str(directory), trust_remote_code=trust_remote_code)
    except (OSError, ValueError, KeyError) as exc:
        hint = "" if trust_remote_code else " (a model dir that ships its own code needs --trust-remote-code)"
        raise ConfigError(f"cannot read the encoder config in {directory}: "
                          f"{str(exc).strip().splitlines()[0]}{hint}") from None
    return AutoModel.from_config(  # type: ignore[no-untyped-call]
        encoder_config, trust_remote_code=trust_remote_code, **pooling_kwargs(encoder_config))


def pooling_kwargs(encoder_config: Any) -> dict[str, Any]:
    """Drop the unused pooler where the architecture allows it (BERT-family models)."""
    return {"add_pooling_layer": False} if encoder_config.model_type in POOLED else {}


POOLED = {"bert", "roberta", "xlm-roberta", "ernie", "nezha"}
