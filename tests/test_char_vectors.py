"""The word2vec/GloVe text reader (model.light.embeddings): vectors, coverage, and file:line errors for bad files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gplinker.config import LightConfig
from gplinker.data.char_vectors import read_vectors
from gplinker.errors import ConfigError, DataError
from gplinker.modeling.encoders import scratch_tokenizer
from gplinker.modeling.light import light_encoder


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_a_file_with_a_header_gives_the_wanted_vectors(tmp_path):
    f = write(tmp_path / "v.txt", "3 2\n北 0.5 -1\n京 2 3e-1\nzz 1 1\n")
    v = read_vectors(f, wanted={"北", "京", "上"})
    assert v.dim == 2 and v.tokens_in_file == 3
    assert v.vectors == {"北": [0.5, -1.0], "京": [2.0, 0.3]}


def test_a_glove_file_without_header_and_a_repeated_token_keeps_the_first(tmp_path):
    f = write(tmp_path / "v.txt", "a 1 2 3 \nb 4 5 6\na 7 8 9\n\n")  # trailing space, blank line
    v = read_vectors(f)
    assert v.dim == 3 and v.vectors == {"a": [1.0, 2.0, 3.0], "b": [4.0, 5.0, 6.0]} and v.tokens_in_file == 3


@pytest.mark.parametrize("text,line,message", [
    ("2 3\na 1 2 3\nb 1 2\n", 3, "has 2 values, but the header says 3"),
    ("a 1 2\nb 1 2 3\n", 2, "has 3 values, but the first vector line says 2"),
    ("a 1 2\nb 1 x2\n", 2, "column 3: 'x2' is not a number"),
    ("a 1 nan\n", 1, "column 3: 'nan' is not a finite number"),
    ("a\n", 1, "token 'a' has no values"),
])
def test_a_bad_line_is_reported_with_file_and_line(tmp_path, text, line, message):
    f = write(tmp_path / "bad.txt", text)
    with pytest.raises(DataError) as info:
        read_vectors(f)
    assert str(info.value).startswith(f"{f}:{line}: ") and message in str(info.value)


@pytest.mark.parametrize("text", ["", "\n\n", "5 3\n"])
def test_a_file_without_vectors_is_an_error(tmp_path, text):
    f = write(tmp_path / "empty.txt", text)
    with pytest.raises(DataError, match="no vectors in the file"):
        read_vectors(f)


def test_a_file_that_is_not_utf8_or_missing_is_an_error(tmp_path):
    f = tmp_path / "latin.txt"
    f.write_bytes(b"a 1 2\n" + "é 1 2\n".encode("latin-1"))
    with pytest.raises(DataError, match=rf"{f}:2: not UTF-8"):
        read_vectors(f)
    with pytest.raises(DataError, match="embeddings file not found"):
        read_vectors(tmp_path / "nope.txt")


def test_light_encoder_copies_the_vectors_and_reports_coverage(tmp_path):
    tokenizer = scratch_tokenizer(["北京ab"])  # characters 北 京 a b, each as c and ##c
    f = write(tmp_path / "v.txt", "北 1 2 3 4\nb -1 0 1 2\nq 9 9 9 9\n")
    cfg = LightConfig(embedding_dim=4, hidden_size=8, dilations=[1], embeddings=str(f))
    encoder, coverage = light_encoder("dgcnn", cfg, tokenizer)
    assert coverage is not None and (coverage.found, coverage.total) == (2, 4)
    assert "vectors for 2 of 4 characters (50.0 %)" in coverage.summary()
    weight, vocab = encoder.embeddings.weight, tokenizer.get_vocab()
    for token, vector in (("北", [1, 2, 3, 4]), ("##北", [1, 2, 3, 4]), ("b", [-1, 0, 1, 2]), ("##b", [-1, 0, 1, 2])):
        assert weight[vocab[token]].tolist() == vector
    assert not torch.equal(weight[vocab["京"]], torch.zeros(4)) and weight[tokenizer.pad_token_id].abs().sum() == 0
    assert encoder.config.embeddings == {"file": str(f), "found": 2, "characters": 4}


def test_vectors_of_another_size_than_embedding_dim_are_a_config_error(tmp_path):
    f = write(tmp_path / "v.txt", "北 1 2 3\n")
    cfg = LightConfig(embedding_dim=4, hidden_size=8, dilations=[1], embeddings=str(f))
    with pytest.raises(ConfigError, match=rf"{f}:1: the file holds 3-dimensional vectors.*embedding_dim=3"):
        light_encoder("dgcnn", cfg, scratch_tokenizer(["北京"]))
