"""`gplinker predict`: JSON lines in, exactly one JSON line out per line in, in order."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from gplinker import distributed as dist
from gplinker.data.examples import Example
from gplinker.data.reading import parse_input_line
from gplinker.predict import Predictor, chunks


@dataclass
class PredictSummary:
    """Lines read, lines that carried an error, and the first ten error messages."""

    lines: int = 0
    errors: int = 0
    first_errors: list[str] = field(default_factory=list)


def predict_lines(predictor: Predictor, lines: Iterable[str], write: Callable[[str], None],
                  chunk_size: int = 1024, source: str = "<stdin>") -> PredictSummary:
    """Exactly one output line per input line, same order; a bad (or blank) line gets an `error` field.

    Lines are read and written in chunks, so memory stays flat however long the input. Under
    torchrun every rank reads the same input, predicts its share of each chunk, and rank 0
    writes the gathered predictions in input order.
    """
    summary = PredictSummary()
    for chunk in chunks(enumerate(lines, start=1), chunk_size):
        parsed = [parse_input_line(line, lineno, source) for lineno, line in chunk]
        valid = [p for p in parsed if isinstance(p, Example)]
        mine = predictor.predict(dist.shard(valid))
        predictions = iter(dist.unshard(dist.gather_objects(mine)))
        for item in parsed:
            summary.lines += 1
            if isinstance(item, Example):
                record = predictor.task.record(item, next(predictions))
            else:
                record = item
                summary.errors += 1
                if len(summary.first_errors) < 10:
                    summary.first_errors.append(item["error"])
            if dist.is_main():
                write(json.dumps(record, ensure_ascii=False))
    return summary
