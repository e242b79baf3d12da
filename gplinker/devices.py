"""Devices, mixed precision and seeds: what the training loop and inference both need, in one place."""

from __future__ import annotations

import random
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch

from gplinker.errors import ConfigError


def pick_device(name: str) -> torch.device:
    """`auto` is CUDA when available, else CPU; asking for CUDA without it is a ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"train.device is '{name}' but CUDA is not available; use cpu or auto")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed Python's, torch's and (when installed) numpy's generators."""
    random.seed(seed)
    torch.manual_seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:
        pass


def amp_context(amp: str, device: torch.device) -> AbstractContextManager[Any]:
    """autocast for bf16/fp16; fp16 needs CUDA (it needs a GradScaler, which is CUDA-only here)."""
    if amp == "off":
        return nullcontext()
    if amp == "fp16" and device.type != "cuda":
        raise ConfigError("train.amp=fp16 needs a CUDA device; use bf16 or off on CPU")
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16 if amp == "bf16" else torch.float16)


def inference_autocast(amp: str, device: torch.device) -> AbstractContextManager[Any]:
    """amp_context for inference: fp16 off CUDA falls back to float32 instead of failing."""
    return amp_context("off" if amp == "fp16" and device.type != "cuda" else amp, device)


def to_device(batch: Any, device: torch.device) -> Any:
    """Tensors of a (nested dict) batch moved to `device`; other values unchanged."""
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch.to(device, non_blocking=True) if isinstance(batch, torch.Tensor) else batch
