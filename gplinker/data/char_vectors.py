"""Word vectors from a word2vec / GloVe text file: `token v1 v2 ... vD` per line, optionally after an `N D` header.

The format of word2vec's `-binary 0` output and of GloVe's files (GloVe has no header line). Every
line is checked for its number of values; the values of the tokens asked for are parsed and must be
finite numbers. Errors name `file:line`.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from gplinker.errors import DataError


@dataclass
class Vectors:
    """The vectors of the wanted tokens found in a file, and how many tokens the file holds."""

    path: str
    dim: int
    vectors: dict[str, list[float]] = field(default_factory=dict)
    tokens_in_file: int = 0


def read_vectors(path: str | Path, wanted: Collection[str] | None = None) -> Vectors:
    """Read the vectors of the `wanted` tokens (None: all) from a word2vec/GloVe text file.

    The first line is a header when it is two integers `N D`; the file then has D values per line.
    Without a header the first vector line sets D. A token that appears twice keeps its first vector.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(str(path), 0, "embeddings file not found (model.light.embeddings)")
    wanted_set = None if wanted is None else set(wanted)
    result = Vectors(path=str(path), dim=0)
    declared: int | None = None
    with path.open("rb") as f:
        for line_no, raw in enumerate(f, 1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(str(path), line_no, f"not UTF-8 text (byte {exc.start})") from None
            parts = text.rstrip("\r\n").rstrip().split(" ") if text.strip() else []
            if not parts:
                continue
            if line_no == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                declared, result.dim = int(parts[0]), int(parts[1])
                if result.dim < 1:
                    raise DataError(str(path), 1, f"the header says vectors of {result.dim} values")
                continue
            token, values = parts[0], parts[1:]
            if result.dim == 0:
                result.dim = len(values)
                if result.dim == 0:
                    raise DataError(str(path), line_no, f"token {token!r} has no values")
            if len(values) != result.dim:
                where = "the header" if declared is not None else "the first vector line"
                raise DataError(str(path), line_no, f"token {token!r} has {len(values)} values, but {where} "
                                                    f"says {result.dim}")
            result.tokens_in_file += 1
            if (wanted_set is None or token in wanted_set) and token not in result.vectors:
                result.vectors[token] = parse_values(values, str(path), line_no)
    if result.tokens_in_file == 0:
        raise DataError(str(path), 0, "no vectors in the file (empty, or a header only)")
    return result


def parse_values(values: list[str], path: str, line_no: int) -> list[float]:
    """The values of one vector line as floats; a non-number or non-finite value is an error naming its column."""
    numbers = []
    for k, value in enumerate(values, 2):
        try:
            x = float(value)
        except ValueError:
            raise DataError(path, line_no, f"column {k}: {value[:20]!r} is not a number") from None
        if not math.isfinite(x):
            raise DataError(path, line_no, f"column {k}: {value!r} is not a finite number")
        numbers.append(x)
    return numbers
