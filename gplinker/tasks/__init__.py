"""Tasks by name."""

from gplinker.data.schema import Schema
from gplinker.tasks.base import Task


def build_task(name: str, schema: Schema) -> Task:
    """The task object for `name` (ner | relation | event) over `schema`."""
    if name == "ner":
        from gplinker.tasks.ner import NerTask

        return NerTask(schema)
    if name == "relation":
        from gplinker.tasks.relation import RelationTask

        return RelationTask(schema)
    if name == "event":
        from gplinker.tasks.event import EventTask

        return EventTask(schema)
    raise ValueError(f"unknown task '{name}'")
