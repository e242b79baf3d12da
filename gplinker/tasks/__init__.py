"""Tasks by name."""

from gplinker.data.schema import Schema
from gplinker.errors import ConfigError
from gplinker.tasks.base import Task


def build_task(name: str, schema: Schema, decode: str = "nested") -> Task:
    """The task object for `name` (ner | relation | event) over `schema`; decode "flat" is for ner alone."""
    if decode not in ("nested", "flat") or decode == "flat" and name != "ner":
        raise ConfigError(f"decode '{decode}' is not a decoding of the {name} task (ner: nested | flat; "
                          "relation, event: nested)")
    if name == "ner":
        from gplinker.tasks.ner import NerTask

        return NerTask(schema, flat=decode == "flat")
    if name == "relation":
        from gplinker.tasks.relation import RelationTask

        return RelationTask(schema)
    if name == "event":
        from gplinker.tasks.event import EventTask

        return EventTask(schema)
    raise ValueError(f"unknown task '{name}'")
