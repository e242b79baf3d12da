"""Light encoders that learn without pretraining: DGCNN and BiLSTM over character embeddings.

Both take (input_ids, attention_mask) (B, L) and return `.last_hidden_state` (B, L, D), as a
transformers encoder does, so every head, loss, window and the model dir work unchanged. Padding
never reaches a real position: a text alone and the same text in a right-padded batch get the
same hidden states.

- `dgcnn`: the dilated gated CNN of Su Jianlin's LIC2019 extractor ("基于DGCNN和概率图的轻量级信息抽取模型",
  kexue.fm/archives/6671). Each block is a residual gated dilated convolution
  y = x·(1−σ(g)) + h·σ(g), with (h, g) = conv1d_dilated(x), kernel 3, "same" padding; x is zero
  at padded positions before every convolution, which is what the convolution's own zero
  padding gives a text alone.
- `bilstm`: bidirectional LSTM layers. The backward direction runs a forward LSTM over each
  sequence reversed within its length (padding stays at the end), then reverses back: the
  result equals `pack_padded_sequence` + a bidirectional `nn.LSTM` (tests/test_light.py), and
  unlike packed sequences it traces for ONNX export (at one fixed length: see
  `exports_dynamic_length`).

With `bigram_buckets` B > 0, each position also gets a character-bigram embedding, concatenated
with its character embedding (the char + bichar input of Zhang & Yang 2018, "Chinese NER Using
Lattice LSTM", section 3.1). The bigram of position t is (c_t, c_{t+1}), with c_{t+1} the pad id
past the text's end, and its row is the hash (c_t · V + c_{t+1}) mod B, V the vocabulary size:
computed from the ids inside the model, so windows, batches, the model dir and the ONNX graph see
only input_ids, and nothing but the number of buckets is saved.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from gplinker.config import LightConfig
from gplinker.data.char_vectors import read_vectors
from gplinker.errors import ConfigError

MODEL_TYPES = {"dgcnn": "gplinker-dgcnn", "bilstm": "gplinker-bilstm"}  # encoder name -> config.json model_type
KERNEL_SIZE = 3


@dataclass
class LightArchitecture:
    """What config.json records of a light encoder: enough to rebuild it before loading its weights."""

    model_type: str
    vocab_size: int
    embedding_dim: int
    hidden_size: int
    dropout: float
    dilations: list[int] = field(default_factory=list)  # dgcnn
    layers: int = 0  # bilstm
    pad_token_id: int = 0
    bigram_buckets: int = 0  # rows of the hashed character-bigram table; 0: no bigrams
    embeddings: dict[str, Any] | None = None  # the vectors file and its coverage, when one was used

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class HiddenStates:
    """An encoder output with the one field GPLinkerModel reads."""

    last_hidden_state: Tensor  # (B, L, D)


@dataclass
class Coverage:
    """How many vocabulary characters (special tokens aside) got a vector from the embeddings file."""

    path: str
    found: int
    total: int

    def summary(self) -> str:
        share = 100 * self.found / self.total if self.total else 0.0
        return f"{self.path}: vectors for {self.found} of {self.total} characters ({share:.1f} %); the rest random"


class GatedDilatedConv(nn.Module):
    """y = x·(1−σ(g)) + h·σ(g), (h, g) = conv1d(x) with `dilation` (kernel 3, same length); zero where padded."""

    def __init__(self, dim: int, dilation: int, dropout: float):
        super().__init__()
        self.conv = nn.Conv1d(dim, 2 * dim, KERNEL_SIZE, dilation=dilation, padding=dilation * (KERNEL_SIZE // 2))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """x (B, L, D), mask (B, L, 1) float -> (B, L, D)."""
        x = x * mask
        h, g = self.conv(x.transpose(1, 2)).transpose(1, 2).chunk(2, dim=-1)  # (B, L, D) each
        gate = torch.sigmoid(self.dropout(g))  # dropout on the gate's logits, as in the LIC2019 model
        y: Tensor = (x * (1 - gate) + h * gate) * mask
        return y


class Dgcnn(nn.Module):
    """A stack of GatedDilatedConv blocks, one per dilation."""

    def __init__(self, dim: int, dilations: list[int], dropout: float):
        super().__init__()
        self.blocks = nn.ModuleList(GatedDilatedConv(dim, d, dropout) for d in dilations)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """x (B, L, D), mask (B, L) -> (B, L, D)."""
        m = mask.unsqueeze(-1).to(x.dtype)  # (B, L, 1)
        for block in self.blocks:
            x = block(x, m)
        return x


def reverse_within_lengths(x: Tensor, lengths: Tensor) -> Tensor:
    """Each row's first lengths[b] positions in reverse order, the positions after them in place. x (B, L, D)."""
    t = torch.arange(x.size(1), device=x.device).unsqueeze(0)  # (1, L)
    n = lengths.unsqueeze(1)  # (B, 1)
    index = torch.where(t < n, n - 1 - t, t)  # (B, L)
    return x.gather(1, index.unsqueeze(-1).expand(-1, -1, x.size(2)))  # (B, L, D)


class BiLstm(nn.Module):
    """`layers` bidirectional LSTM layers, D / 2 per direction, padding-invariant (see the module docstring)."""

    def __init__(self, dim: int, layers: int, dropout: float):
        super().__init__()
        half = dim // 2
        self.forward_lstms = nn.ModuleList(nn.LSTM(dim if k == 0 else 2 * half, half, batch_first=True)
                                           for k in range(layers))
        self.backward_lstms = nn.ModuleList(nn.LSTM(dim if k == 0 else 2 * half, half, batch_first=True)
                                            for k in range(layers))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """x (B, L, D), mask (B, L) with the real positions first -> (B, L, D)."""
        lengths = mask.sum(dim=1)  # (B,)
        for k, (fwd, bwd) in enumerate(zip(self.forward_lstms, self.backward_lstms)):
            if k:
                x = self.dropout(x)
            ahead = fwd(x)[0]  # (B, L, D/2): position t sees 0..t, never the padding after the text
            behind = reverse_within_lengths(bwd(reverse_within_lengths(x, lengths))[0], lengths)  # sees t..n-1
            x = torch.cat([ahead, behind], dim=-1)  # (B, L, D)
        return x


class LightEncoder(nn.Module):
    """Character embeddings (+ a linear map to D when their size differs) under a DGCNN or BiLSTM body."""

    def __init__(self, config: LightArchitecture):
        super().__init__()
        self.config = config
        self.embeddings = nn.Embedding(config.vocab_size, config.embedding_dim, padding_idx=config.pad_token_id)
        nn.init.normal_(self.embeddings.weight, std=0.1)
        with torch.no_grad():
            self.embeddings.weight[config.pad_token_id].zero_()
        self.bigrams = nn.Embedding(config.bigram_buckets, config.embedding_dim) if config.bigram_buckets else None
        if self.bigrams is not None:
            nn.init.normal_(self.bigrams.weight, std=0.1)
        width = config.embedding_dim * (2 if self.bigrams is not None else 1)
        self.project = (nn.Identity() if width == config.hidden_size else nn.Linear(width, config.hidden_size))
        self.dropout = nn.Dropout(config.dropout)
        self.body: nn.Module
        if config.model_type == MODEL_TYPES["dgcnn"]:
            self.body = Dgcnn(config.hidden_size, config.dilations, config.dropout)
        elif config.model_type == MODEL_TYPES["bilstm"]:
            self.body = BiLstm(config.hidden_size, config.layers, config.dropout)
        else:
            raise ConfigError(f"unknown light encoder type '{config.model_type}'")
        # torch.export fixes nn.LSTM's time axis to the traced length (pytorch/pytorch#115092), so a bilstm
        # graph is exported at one length and the ONNX runtime pads to it (the encoder is padding-invariant)
        self.exports_dynamic_length = config.model_type != MODEL_TYPES["bilstm"]

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings

    def forward(self, input_ids: Tensor, attention_mask: Tensor,
                token_type_ids: Tensor | None = None) -> HiddenStates:  # noqa: ARG002 (the transformers signature)
        """(B, L) ids and mask -> hidden states (B, L, D); token_type_ids are accepted and unused."""
        x = self.embeddings(input_ids)  # (B, L, E)
        if self.bigrams is not None:
            rows = bigram_rows(input_ids, attention_mask, self.config.vocab_size, self.config.bigram_buckets,
                               self.config.pad_token_id)
            x = torch.cat([x, self.bigrams(rows)], dim=-1)  # (B, L, 2E)
        x = self.project(self.dropout(x))  # (B, L, D)
        return HiddenStates(self.body(x, attention_mask))


def bigram_rows(input_ids: Tensor, attention_mask: Tensor, vocab_size: int, buckets: int, pad_id: int) -> Tensor:
    """(B, L) -> (B, L) rows of the bigram table: (c_t · V + c_{t+1}) mod buckets, c_{t+1} = pad_id where
    position t + 1 is padding or past the end (so the ids under the padding never matter)."""
    after = torch.cat([input_ids[:, 1:], torch.full_like(input_ids[:, :1], pad_id)], dim=1)  # (B, L)
    live = torch.cat([attention_mask[:, 1:], torch.zeros_like(attention_mask[:, :1])], dim=1) > 0
    after = torch.where(live, after, torch.full_like(after, pad_id))
    return torch.remainder(input_ids * vocab_size + after, buckets)


def light_architecture(name: str, cfg: LightConfig, vocab_size: int, pad_token_id: int = 0) -> LightArchitecture:
    """The architecture of a new light encoder `name` (dgcnn | bilstm) with cfg's sizes over `vocab_size` ids."""
    if name not in MODEL_TYPES:
        raise ConfigError(f"unknown light encoder '{name}' (known: {', '.join(MODEL_TYPES)})")
    return LightArchitecture(model_type=MODEL_TYPES[name], vocab_size=vocab_size, embedding_dim=cfg.embedding_dim,
                             hidden_size=cfg.hidden_size, dropout=cfg.dropout,
                             dilations=list(cfg.dilations) if name == "dgcnn" else [],
                             layers=cfg.layers if name == "bilstm" else 0, bigram_buckets=cfg.bigram_buckets,
                             pad_token_id=pad_token_id)


def light_encoder(name: str, cfg: LightConfig, tokenizer: Any) -> tuple[LightEncoder, Coverage | None]:
    """A new light encoder `name` (dgcnn | bilstm) over `tokenizer`'s vocabulary; vectors from cfg.embeddings."""
    arch = light_architecture(name, cfg, len(tokenizer),
                              tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)
    encoder = LightEncoder(arch)
    coverage = None
    if cfg.embeddings:
        coverage = load_char_vectors(encoder.embeddings, tokenizer, cfg.embeddings)
        arch.embeddings = {"file": cfg.embeddings, "found": coverage.found, "characters": coverage.total}
    return encoder, coverage


def load_char_vectors(embedding: nn.Embedding, tokenizer: Any, path: str) -> Coverage:
    """Copy the file's vector of each vocabulary character (c and ##c alike) into `embedding`.

    The characters the file lacks get N(0, s²), s the standard deviation of the loaded values, so
    random and pretrained rows start on the same scale.
    """
    special = set(tokenizer.all_special_tokens)
    rows: dict[str, list[int]] = {}
    for token, index in tokenizer.get_vocab().items():
        if token not in special:
            rows.setdefault(token.removeprefix("##") if len(token) > 2 else token, []).append(index)
    vectors = read_vectors(path, wanted=rows)
    if vectors.dim != embedding.embedding_dim:
        raise ConfigError(f"{path}:1: the file holds {vectors.dim}-dimensional vectors but model.light.embedding_dim "
                          f"is {embedding.embedding_dim}; set model.light.embedding_dim={vectors.dim}")
    with torch.no_grad():
        if vectors.vectors:
            found = torch.tensor(list(vectors.vectors.values()), dtype=embedding.weight.dtype)  # (F, E)
            std = float(found.std()) if found.numel() > 1 else 0.1
            nn.init.normal_(embedding.weight, std=std or 0.1)
            for row, (token, _) in zip(found, vectors.vectors.items()):
                embedding.weight[rows[token]] = row
        if embedding.padding_idx is not None:
            embedding.weight[embedding.padding_idx].zero_()
    return Coverage(path=path, found=len(vectors.vectors), total=len(rows))


def light_encoder_from_config(config: dict[str, Any]) -> LightEncoder:
    """The light encoder a saved config.json describes (its weights are loaded by the caller)."""
    known = set(LightArchitecture.__dataclass_fields__)
    return LightEncoder(LightArchitecture(**{k: v for k, v in config.items() if k in known}))


def is_light(model_type: str | None) -> bool:
    """Whether a config.json model_type is one of the light encoders."""
    return model_type in MODEL_TYPES.values()
