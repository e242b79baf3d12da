"""The Python API: `Pipeline.from_pretrained(model_dir)(texts)` gives the records `gplinker predict` writes.

    from gplinker import Pipeline
    nlp = Pipeline.from_pretrained("runs/cluener/best")          # or runtime="onnx" on an exported dir
    nlp("张伟在北京大学读书。")                                    # one record (a dict)
    nlp(["张伟在北京大学读书。", "李娜去了上海。"])                  # a list of records, input order
    for record in nlp.stream(open_lines_of_texts): ...          # lazily, memory stays flat

Texts are predicted in chunks of at most `chunk_size` texts and `predict.CHUNK_CHARS` characters;
inside a chunk, windows of long texts are batched by length like every other window (`Predictor`),
and each text's windows are merged back.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch and the model load only when a Pipeline is made: `import gplinker` stays light
    from gplinker.data.examples import Example
    from gplinker.predict import Predictor

TextInput = str | Mapping[str, Any]
Record = dict[str, Any]


class Pipeline:
    """A loaded model: call it on a text or a list of texts to get prediction records."""

    def __init__(self, predictor: Predictor, chunk_size: int = 1024):
        self.predictor = predictor
        self.task = predictor.task
        self.chunk_size = chunk_size

    @classmethod
    def from_pretrained(cls, model_dir: str | Path, runtime: str = "auto", device: str = "auto",
                        batch_size: int = 64, threshold: float | None = None, chunk_size: int = 1024,
                        trust_remote_code: bool = False) -> Pipeline:
        """Load a model dir (`gplinker train`'s best/ or last/, or `gplinker export`'s dir with runtime="onnx")."""
        from gplinker.predict import Predictor

        predictor = Predictor.from_pretrained(model_dir, device=device, batch_size=batch_size, runtime=runtime,
                                              trust_remote_code=trust_remote_code, threshold=threshold)
        return cls(predictor, chunk_size)

    def __call__(self, texts: TextInput | Iterable[TextInput]) -> Record | list[Record]:
        """One record for a text (str or {"text", "id"}); a list of records, in order, for an iterable of them."""
        if isinstance(texts, (str, Mapping)):
            return next(self.stream([texts]))
        return list(self.stream(texts))

    def stream(self, texts: Iterable[TextInput]) -> Iterator[Record]:
        """Records one by one, in input order, predicting a chunk of texts at a time (module docstring)."""
        from gplinker.predict import CHUNK_CHARS, chunks

        for chunk in chunks((as_example(t) for t in texts), self.chunk_size, weight=lambda e: len(e.text),
                            budget=CHUNK_CHARS):
            for example, prediction in zip(chunk, self.predictor.predict(chunk)):
                yield self.task.record(example, prediction)


def as_example(item: object) -> Example:
    """An Example from a str or a {"text", "id"} mapping (as a `gplinker predict` input line)."""
    from gplinker.data.examples import Example
    from gplinker.data.formats import LineError
    from gplinker.data.reading import parse_input

    if isinstance(item, str):
        return Example(text=item)
    if isinstance(item, Mapping):
        try:
            return parse_input(dict(item))
        except LineError as exc:
            raise ValueError(f"{exc}: {dict(item)!r}"[:300]) from None
    raise TypeError(f"expected a str or a mapping with a 'text', got {type(item).__name__}")
