"""GPLinkerModel: a transformers encoder under one pointer head per task head; save/load as an HF-style dir."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from gplinker.errors import ConfigError
from gplinker.head_spec import HeadSpec
from gplinker.modeling.losses import pointer_loss
from gplinker.modeling.pointer import EfficientGlobalPointer, GlobalPointer

WEIGHTS = "model.safetensors"
CONFIG = "config.json"


@dataclass
class PointerOutput:
    loss: torch.Tensor | None
    logits: dict[str, torch.Tensor]  # head name -> (B, C, L, L)


class GPLinkerModel(nn.Module):
    """encoder → last hidden states (B, L, D) → one (E)GP head per HeadSpec → logits (B, C, L, L)."""

    def __init__(self, encoder: nn.Module, heads: list[HeadSpec], head_type: str = "egp", head_size: int = 64):
        super().__init__()
        pointer = {"egp": EfficientGlobalPointer, "gp": GlobalPointer}[head_type]
        self.encoder = encoder
        self.head_specs = list(heads)
        self.head_type, self.head_size = head_type, head_size
        hidden = encoder.config.hidden_size
        self.heads = nn.ModuleDict({
            h.name: pointer(hidden, h.channels, head_size, rope=h.rope, tril_mask=h.tril_mask) for h in heads
        })

    def forward(self, input_ids, attention_mask, token_type_ids=None, labels: dict | None = None) -> PointerOutput:
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        hidden = self.encoder(**kwargs).last_hidden_state  # (B, L, D)
        logits = {name: head(hidden, attention_mask) for name, head in self.heads.items()}  # (B, C, L, L) each
        loss = None
        if labels is not None:
            loss = sum(pointer_loss(logits[name], labels[name]) for name in self.heads)
        return PointerOutput(loss=loss, logits=logits)

    # --- persistence ------------------------------------------------------------------------

    def save(self, directory: str | Path, gplinker_config: dict) -> None:
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
    def load(cls, directory: str | Path, trust_remote_code: bool = False) -> tuple["GPLinkerModel", dict]:
        """Rebuild the model from a dir written by `save`; returns (model, gplinker config section)."""
        from transformers import AutoConfig, AutoModel

        directory = Path(directory)
        config_path = directory / CONFIG
        if not config_path.is_file() or not (directory / WEIGHTS).is_file():
            raise ConfigError(f"{directory} is not a gplinker model dir (needs {CONFIG} and {WEIGHTS})")
        raw = json.loads(config_path.read_text(encoding="utf-8"))
        if "gplinker" not in raw:
            raise ConfigError(f"{config_path} has no 'gplinker' section: not a gplinker model dir")
        section = raw["gplinker"]
        try:
            encoder_config = AutoConfig.from_pretrained(str(directory), trust_remote_code=trust_remote_code)
        except (OSError, ValueError, KeyError) as exc:
            hint = "" if trust_remote_code else " (a model dir that ships its own code needs --trust-remote-code)"
            raise ConfigError(f"cannot read the encoder config in {directory}: "
                              f"{str(exc).strip().splitlines()[0]}{hint}") from None
        encoder = AutoModel.from_config(encoder_config, trust_remote_code=trust_remote_code,
                                        **pooling_kwargs(encoder_config))
        heads = [HeadSpec(**h) for h in section["heads"]]
        model = cls(encoder, heads, section["head_type"], section["head_size"])
        model.load_state_dict(load_file(str(directory / WEIGHTS)), strict=True)
        return model, section


def pooling_kwargs(encoder_config) -> dict:
    """Drop the unused pooler where the architecture allows it (BERT-family models)."""
    return {"add_pooling_layer": False} if encoder_config.model_type in POOLED else {}


POOLED = {"bert", "roberta", "xlm-roberta", "ernie", "nezha"}
