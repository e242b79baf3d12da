"""`gplinker predict`: JSON lines in, exactly one JSON line out per line in, in order."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gplinker import distributed as dist
from gplinker.data.examples import Example
from gplinker.data.reading import parse_input_line
from gplinker.errors import DataError, GPLinkerError
from gplinker.locks import hold_lock, lock_file_for
from gplinker.predict import CHUNK_CHARS, FIRST_CHUNK, Predictor, chunks
from gplinker.submission import NEEDS_ID, RECORDS, check_format, submission_line
from gplinker.tasks.base import Prediction


@dataclass
class PredictSummary:
    """Lines read, lines that carried an error, and the first ten error messages."""

    lines: int = 0
    errors: int = 0
    first_errors: list[str] = field(default_factory=list)


def predict_lines(predictor: Predictor, lines: Iterable[str], write: Callable[[str], None],
                  chunk_size: int = 1024, source: str = "<stdin>", fmt: str = RECORDS,
                  chunk_chars: int = CHUNK_CHARS, idle: float | None = None,
                  flush: Callable[[], None] | None = None) -> PredictSummary:
    """Exactly one output line per input line, same order; a bad (or blank) line gets an `error` field.

    Lines are read and written in chunks of at most `chunk_size` lines and `chunk_chars` characters
    (a longer line goes alone), so memory stays flat however long the input and its lines; the first
    chunk is 1/FIRST_CHUNK of that, doubling after each, so the first lines come out soon. With
    `idle` (a pipe on stdin), a partial chunk is predicted after that many seconds without a new
    line, and `flush` is called after every chunk, so output follows input line by line. Under
    torchrun every rank reads the same input, predicts its share of each chunk, and rank 0
    writes the gathered predictions in input order. `fmt` is records (the task's record, with
    scores and offsets) or a leaderboard form (gplinker/submission.py); a submission has no place
    for an error, so there a bad line (or, for CLUENER and DuEE, a line without an id) stops with
    a DataError naming it, before that chunk is written.
    """
    check_format(fmt, predictor.task.name)
    summary = PredictSummary()
    for chunk in chunks(enumerate(lines, start=1), chunk_size, weight=lambda item: len(item[1]), budget=chunk_chars,
                        idle=None if dist.active() else idle, ramp=FIRST_CHUNK):  # ranks must cut the same chunks
        parsed = [parse_input_line(line, lineno, source) for lineno, line in chunk]
        if fmt != RECORDS:
            check_submission_input(parsed, [lineno for lineno, _ in chunk], source, fmt)
        valid = [p for p in parsed if isinstance(p, Example)]
        mine = predictor.predict(dist.shard(valid))
        predictions = iter(dist.unshard(dist.gather_objects(mine)))
        for item in parsed:
            summary.lines += 1
            if isinstance(item, Example):
                record = output_record(predictor, item, next(predictions), fmt)
            else:
                record = item
                summary.errors += 1
                if len(summary.first_errors) < 10:
                    summary.first_errors.append(item["error"])
            if dist.is_main():
                write(json.dumps(record, ensure_ascii=False))
        if flush is not None and dist.is_main():
            flush()
    return summary


@contextmanager
def output_lock(input: str, output: Path | None) -> Iterator[None]:
    """Hold the lock of predict's output file (none for stdout); refuse an output that is the input file itself."""
    if output is None:
        yield
        return
    if input != "-" and os.path.exists(input) and (Path(input).resolve() == output.resolve() or (
            output.exists() and os.path.samefile(input, output))):
        raise GPLinkerError(f"{output}: is the input file {input}; writing there would replace what is being read: "
                            "give another -o")
    with hold_lock(lock_file_for(output), f"a predict into {output}"):
        yield


def check_model_format(model_dir: str | Path, fmt: str) -> None:
    """check_format against the task of a model dir, read from its config.json before any model is loaded.

    A dir whose config.json cannot be read is left to Predictor.from_pretrained, which says why.
    """
    try:
        task = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))["gplinker"]["task"]
    except (OSError, ValueError, KeyError, TypeError):
        return
    check_format(fmt, str(task))


def output_record(predictor: Predictor, example: Example, prediction: Prediction, fmt: str) -> dict[str, Any]:
    """The output object of one predicted line: the task's record, or its submission line in form `fmt`."""
    if fmt == RECORDS:
        return predictor.task.record(example, prediction)
    plain_strings = predictor.task.schema.relation_format == "duie1"
    return submission_line(fmt, example.json_id(), example.text, prediction, plain_strings)


def check_submission_input(parsed: list[Example | dict[str, Any]], linenos: list[int], source: str, fmt: str) -> None:
    """DataError at the first line a submission cannot hold: a bad line, or no id where the leaderboard needs one."""
    for item, lineno in zip(parsed, linenos):
        if not isinstance(item, Example):
            message = item["error"].removeprefix(f"{source}:{lineno}: ")
            raise DataError(source, lineno, f"{message}: a submission needs a prediction "
                                            "for every line (fix the line, or use --format records, which marks it)")
        if fmt in NEEDS_ID and item.id is None:
            raise DataError(source, lineno, f"no 'id': the {NEEDS_ID[fmt]} leaderboard matches predictions to "
                                            "inputs by id")
