"""Tasks by name."""

from gplinker.data.schema import Schema
from gplinker.errors import ConfigError
from gplinker.tasks.base import Task


def build_task(name: str, schema: Schema, decode: str = "nested", require_trigger: bool = True,
               min_arguments: int = 2) -> Task:
    """The task object for `name` (ner | relation | event) over `schema`; decode "flat" is for ner alone;
    `require_trigger` and `min_arguments` (model.event) for event alone."""
    if decode not in ("nested", "flat") or decode == "flat" and name != "ner":
        raise ConfigError(f"decode '{decode}' is not a decoding of the {name} task (ner: nested | flat; "
                          "relation, event: nested)")
    if isinstance(min_arguments, bool) or not isinstance(min_arguments, int) or min_arguments < 1:
        raise ConfigError(f"model.event.min_arguments must be an integer >= 1, got {min_arguments!r}")
    if name == "ner":
        from gplinker.tasks.ner import NerTask

        return NerTask(schema, flat=decode == "flat")
    if name == "relation":
        from gplinker.tasks.relation import RelationTask

        return RelationTask(schema)
    if name == "event":
        from gplinker.tasks.event import EventTask

        return EventTask(schema, require_trigger=require_trigger, min_arguments=min_arguments)
    raise ValueError(f"unknown task '{name}'")
