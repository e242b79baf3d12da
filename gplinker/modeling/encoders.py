"""Encoders and their tokenizers: a pretrained transformers model, or a small BERT built from scratch."""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from gplinker.config import ScratchConfig
from gplinker.data.encoding import char_counts
from gplinker.errors import ConfigError
from gplinker.modeling.light import is_light

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def char_vocab(counts: Mapping[str, int], normalize: Callable[[str], str], min_count: int = 1) -> list[str]:
    """Vocabulary of the single characters of a text's character counts, after the tokenizer's normalizer.

    Each character is normalized on its own; the BERT normalizer (control characters, CJK spacing,
    lower case, accent stripping) acts character by character, so the counts equal those of the
    normalized texts. Each character c appears as `c` and `##c`, so WordPiece splits any word into
    characters and every character keeps its own offsets.
    """
    normalized: Counter[str] = Counter()
    for ch, n in counts.items():
        for c in normalize(ch):
            if not c.isspace():
                normalized[c] += n
    chars = sorted(ch for ch, n in normalized.items() if n >= min_count)
    return SPECIAL_TOKENS + chars + ["##" + ch for ch in chars]


def scratch_tokenizer(texts: Iterable[str] | Mapping[str, int], min_count: int = 1) -> Any:
    """A BERT WordPiece tokenizer over the characters of `texts` (or of character counts, see char_counts)."""
    from transformers import BertTokenizerFast  # type: ignore[attr-defined]

    counts = texts if isinstance(texts, Mapping) else char_counts(texts)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "vocab.txt").write_text("\n".join(SPECIAL_TOKENS) + "\n", encoding="utf-8")
        base = BertTokenizerFast.from_pretrained(tmp)
        normalize = base.backend_tokenizer.normalizer.normalize_str
        vocab = char_vocab(counts, normalize, min_count)
        (Path(tmp) / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
        return BertTokenizerFast.from_pretrained(tmp)


def scratch_encoder(cfg: ScratchConfig, vocab_size: int) -> Any:
    """A randomly initialised BERT of the sizes in `cfg`."""
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=cfg.hidden_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        intermediate_size=cfg.intermediate_size,
        max_position_embeddings=cfg.max_position,
        hidden_dropout_prob=cfg.dropout,
        attention_probs_dropout_prob=cfg.dropout,
    )
    return BertModel(config, add_pooling_layer=False)


def pretrained_encoder(name: str, trust_remote_code: bool = False) -> tuple[Any, Any]:
    """AutoModel + fast tokenizer from a hub name or local dir (e.g. one made with save_pretrained)."""
    from transformers import AutoConfig, AutoModel

    from gplinker.modeling.model import pooling_kwargs

    try:
        config = AutoConfig.from_pretrained(name, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot load encoder '{name}': {first_line(exc)}") from None
    try:
        encoder = AutoModel.from_pretrained(name, trust_remote_code=trust_remote_code, **pooling_kwargs(config))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot load encoder weights of '{name}': {first_line(exc)}") from None
    tokenizer = load_tokenizer(name, config.model_type, trust_remote_code)
    check_vocab_fits(tokenizer, encoder, name)
    return encoder, tokenizer


def check_vocab_fits(tokenizer: Any, encoder: Any, name: str) -> None:
    """Every token id the tokenizer can emit must have an embedding row.

    A tokenizer larger than the embedding matrix trains until the first text with a token id past
    the last row, then fails inside torch.embedding with an IndexError; this says so at load time.
    """
    rows = encoder.get_input_embeddings().num_embeddings
    if len(tokenizer) > rows:
        raise ConfigError(f"'{name}': the tokenizer has {len(tokenizer)} tokens but the encoder's embedding has "
                          f"only {rows} rows (vocab_size {rows}); use the tokenizer that belongs to this encoder, "
                          f"or resize the embedding (model.resize_token_embeddings({len(tokenizer)})) and save it")


def check_saved_tokenizer(tokenizer: Any, encoder: Any, section: dict[str, Any], where: str) -> None:
    """Refuse a model dir's tokenizer that lost entries since it was saved (a deleted tokenizer.json loads as a few
    special tokens, and every character becomes [UNK]).

    The `gplinker` section records `tokenizer_size` (len(tokenizer) when saved); dirs without it are
    held to half the embedding rows, far below any real vocabulary's size.
    """
    check_vocab_fits(tokenizer, encoder, where)
    saved = section.get("tokenizer_size")
    rows = encoder.get_input_embeddings().num_embeddings
    if isinstance(saved, int) and len(tokenizer) != saved:
        raise ConfigError(f"{where}: its tokenizer loads with {len(tokenizer)} tokens, but it had {saved} when the "
                          "model was saved: a tokenizer file is missing or was replaced (see manifest.json)")
    if saved is None and len(tokenizer) < rows // 2:
        raise ConfigError(f"{where}: its tokenizer loads with {len(tokenizer)} tokens, far fewer than the model's "
                          f"{rows} embedding rows: a tokenizer file is missing or was replaced")


def load_tokenizer(name: str, model_type: str, trust_remote_code: bool = False) -> Any:
    """The fast tokenizer for `name`; char-level RoFormer uses the BERT tokenizer (its own has wrong offsets)."""
    from transformers import AutoTokenizer, BertTokenizerFast  # type: ignore[attr-defined]

    bare_vocab = Path(name, "vocab.txt").is_file() and not Path(name, "tokenizer_config.json").is_file()
    try:
        # a bare vocab.txt dir is a BERT WordPiece vocabulary; the light encoders use the scratch one
        if model_type == "roformer" or bare_vocab or is_light(model_type):
            tokenizer = BertTokenizerFast.from_pretrained(name)
        else:
            tokenizer = AutoTokenizer.from_pretrained(name, use_fast=True, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot load the tokenizer of '{name}': {first_line(exc)}") from None
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError(f"'{name}' has no fast tokenizer; gplinker needs offset_mapping")
    return tokenizer


def first_line(exc: Exception) -> str:
    """The first line of an exception's message, or its type's name when it has none."""
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
