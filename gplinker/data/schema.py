"""Label sets (entity types, predicates and their object slots, event roles), saved with the model.

Relation channels: every predicate has object slots, "@value" first (DuIE 1.0 and simple DuIE 2.0
predicates have only "@value"; complex DuIE 2.0 predicates add slots such as "inWork"). One
channel is named "predicate@slot" for each (predicate, slot), for both DuIE versions, e.g.
"作者@@value" and "配音@inWork"; `split_channel` reverses it (predicates may not contain "@").

Relation types: the model predicts no entity types (its entity head has just subject and object),
so decoded triples take them from the schema: `subject_types[predicate]` and
`object_types[predicate][slot]`. A schema file that lists a predicate twice with different types
(DuIE 1.0 成立日期: 机构 and 企业) keeps the first; `schema_from_examples` takes the most frequent
type (ties: the smallest name). `relation_format` says how `gplinker predict` writes objects:
"duie2" (dicts of slots) or "duie1" (plain strings). Schemas saved before these fields existed
read back with empty type maps (types "") and "duie2".

Label order: schema files keep their order of first appearance; `schema_from_examples` sorts.
Event roles list the trigger role (触发词) first within each event type.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from gplinker.data.examples import TRIGGER_ROLE, Example
from gplinker.data.formats import iter_json_lines
from gplinker.errors import DataError

TASKS = ("ner", "relation", "event")
VALUE_SLOT = "@value"
RELATION_FORMATS = ("duie2", "duie1")

T = TypeVar("T")


@dataclass
class Schema:
    """The label set of one task; `to_dict`/`from_dict` give the plain JSON saved with a model."""

    task: str  # "ner" | "relation" | "event"
    entity_types: list[str] = field(default_factory=list)  # ner: types; relation: subject/object types
    predicates: list[str] = field(default_factory=list)  # relation: predicate names
    event_roles: list[tuple[str, str]] = field(default_factory=list)  # event: (event type, role)
    object_slots: dict[str, list[str]] = field(default_factory=dict)  # relation: predicate -> slots
    subject_types: dict[str, str] = field(default_factory=dict)  # relation: predicate -> subject type
    object_types: dict[str, dict[str, str]] = field(default_factory=dict)  # relation: predicate -> slot -> type
    relation_format: str = "duie2"  # relation: output style, "duie2" (object dicts) | "duie1" (strings)

    def slots(self, predicate: str) -> list[str]:
        """The object slots of `predicate`, "@value" first."""
        return self.object_slots.get(predicate, [VALUE_SLOT])

    def subject_type(self, predicate: str) -> str:
        """The subject type decoded triples of `predicate` get ("" when the schema has none)."""
        return self.subject_types.get(predicate, "")

    def object_type(self, predicate: str, slot: str) -> str:
        """The type of object slot `slot` of `predicate` ("" when the schema has none)."""
        return self.object_types.get(predicate, {}).get(slot, "")

    def relation_channels(self) -> list[str]:
        """One "predicate@slot" name per (predicate, object slot), in predicate order."""
        return [f"{p}@{s}" for p in self.predicates for s in self.slots(p)]

    def event_types(self) -> list[str]:
        """Event types in order of first appearance in `event_roles`."""
        return list(dict.fromkeys(t for t, _ in self.event_roles))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (tuples become lists)."""
        d = asdict(self)
        d["event_roles"] = [list(pair) for pair in self.event_roles]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, source: str = "<schema>") -> Schema:
        """Inverse of `to_dict`; unknown keys or bad values raise DataError naming them."""
        if not isinstance(d, dict):
            raise DataError(source, 0, f"schema must be a JSON object, got {type(d).__name__}")
        known = {"task", "entity_types", "predicates", "event_roles", "object_slots", "subject_types",
                 "object_types", "relation_format"}
        unknown = set(d) - known
        if unknown:
            raise DataError(source, 0, f"unknown schema key(s) {sorted(unknown)}")
        if d.get("task") not in TASKS:
            raise DataError(source, 0, f"schema 'task' must be one of {list(TASKS)}, got {d.get('task')!r}")
        pairs = d.get("event_roles", [])
        if not all(isinstance(p, (list, tuple)) and len(p) == 2 for p in pairs):
            raise DataError(source, 0, "schema 'event_roles' must be a list of [event_type, role] pairs")
        relation_format = d.get("relation_format", "duie2")
        if relation_format not in RELATION_FORMATS:
            raise DataError(source, 0, f"schema 'relation_format' must be one of {list(RELATION_FORMATS)}, "
                                       f"got {relation_format!r}")
        return cls(
            task=d["task"],
            entity_types=list(d.get("entity_types", [])),
            predicates=list(d.get("predicates", [])),
            event_roles=[(str(t), str(r)) for t, r in pairs],
            object_slots={p: list(s) for p, s in d.get("object_slots", {}).items()},
            subject_types={str(p): str(t) for p, t in d.get("subject_types", {}).items()},
            object_types={str(p): {str(s): str(t) for s, t in slots.items()}
                          for p, slots in d.get("object_types", {}).items()},
            relation_format=relation_format,
        )


@dataclass
class SchemaGaps:
    """Gold items whose labels a schema lacks: they can never be predicted as labelled."""

    items: int = 0  # gold items (spans, triples, events) with at least one label the schema lacks
    labels: Counter[str] = field(default_factory=Counter)  # missing label -> gold occurrences

    def summary(self, limit: int = 8) -> str:
        """The most frequent missing labels with their counts, e.g. "作者@@value 12, 配音@inWork 3"."""
        shown = ", ".join(f"{label} {n}" for label, n in self.labels.most_common(limit))
        more = len(self.labels) - limit
        return shown + (f" and {more} more label(s)" if more > 0 else "")


def schema_gaps(schema: Schema, examples: Iterable[Example]) -> SchemaGaps:
    """The gold items of `examples` with a label `schema` lacks, by label.

    Labels as the channels name them: NER entity types; relations "predicate@slot"; events
    "event type/role" (the trigger role included).
    """
    gaps = SchemaGaps()
    types, channels, roles = set(schema.entity_types), set(schema.relation_channels()), set(schema.event_roles)
    for example in examples:
        missing: list[list[str]]
        if schema.task == "ner":
            missing = [[s.label] for s in example.spans if s.label not in types]
        elif schema.task == "relation":
            missing = [[f"{r.predicate}@{slot}" for slot, _ in r.objects if f"{r.predicate}@{slot}" not in channels]
                       for r in example.relations]
        else:
            missing = [[f"{e.type}/{a.label}" for a in sorted(e.arguments) if (e.type, a.label) not in roles]
                       for e in example.events]
        for labels in missing:
            gaps.items += bool(labels)
            gaps.labels.update(labels)
    return gaps


def split_channel(channel: str) -> tuple[str, str]:
    """Inverse of the channel naming: "配音@inWork" -> ("配音", "inWork"); "作者@@value" -> ("作者", "@value")."""
    predicate, _, slot = channel.partition("@")
    return predicate, slot


def _ordered_slots(slots: Iterable[str]) -> list[str]:
    """Slots with "@value" first, the others in the given order, no repeats."""
    return [VALUE_SLOT] + [s for s in dict.fromkeys(slots) if s != VALUE_SLOT]


def _schema_lines(path: str | Path) -> Iterable[tuple[int, dict[str, Any]]]:
    """(line, object) for each schema line; missing file or malformed JSON raise DataError."""
    if not Path(path).is_file():
        raise DataError(str(path), 0, "no such schema file")
    for lineno, obj in iter_json_lines(path):
        if isinstance(obj, DataError):
            raise obj
        yield lineno, obj


def _field(obj: dict[str, Any], key: str, kind: type[T], path: str | Path, lineno: int) -> T:
    """obj[key] if it is a `kind`, else DataError naming the field, the file and the line."""
    value = obj.get(key)
    if not isinstance(value, kind):
        message = f"schema field '{key}' must be {kind.__name__}, got {type(value).__name__}"
        raise DataError(str(path), lineno, message)
    return value


def load_duie_schema(path: str | Path) -> Schema:
    """DuIE schema: 2.0 `duie_schema.json` (object_type is a dict of slots) or 1.0 `all_50_schemas` (a string)."""
    types: dict[str, None] = {}
    slots: dict[str, list[str]] = {}
    subject_types: dict[str, str] = {}
    object_types: dict[str, dict[str, str]] = {}
    plain_strings = True  # every object_type a string: DuIE 1.0
    for lineno, obj in _schema_lines(path):
        if "predicate" not in obj and "event_type" in obj:
            raise DataError(str(path), lineno, "this is an event schema (DuEE: event_type, role_list), but the "
                                               "relation task needs a DuIE schema (subject_type, predicate, "
                                               "object_type): is the task or data.schema wrong?")
        predicate = _field(obj, "predicate", str, path, lineno)
        if "@" in predicate or not predicate:
            raise DataError(str(path), lineno, f"predicate {predicate!r} must be non-empty and contain no '@'")
        subject_type = _field(obj, "subject_type", str, path, lineno)
        types[subject_type] = None
        subject_types.setdefault(predicate, subject_type)
        object_type = obj.get("object_type")
        if isinstance(object_type, str):
            object_type = {VALUE_SLOT: object_type}
        else:
            plain_strings = False
        if not isinstance(object_type, dict) or not all(isinstance(t, str) for t in object_type.values()):
            raise DataError(str(path), lineno, "schema field 'object_type' must be a string or an object of strings")
        if VALUE_SLOT not in object_type:
            raise DataError(str(path), lineno, f"schema field 'object_type' has no '{VALUE_SLOT}' slot")
        types.update(dict.fromkeys(object_type.values()))
        slots[predicate] = _ordered_slots([*slots.get(predicate, []), *object_type])
        for slot, kind in object_type.items():
            object_types.setdefault(predicate, {}).setdefault(slot, kind)
    if not slots:
        raise DataError(str(path), 0, "schema file has no predicates")
    return Schema("relation", entity_types=list(types), predicates=list(slots), object_slots=slots,
                  subject_types=subject_types, object_types=object_types,
                  relation_format="duie1" if plain_strings else "duie2")


def load_duee_schema(path: str | Path) -> Schema:
    """DuEE `duee_event_schema.json`: (event_type, role) pairs, the trigger role first in each type."""
    roles: dict[tuple[str, str], None] = {}
    for lineno, obj in _schema_lines(path):
        if "event_type" not in obj and "predicate" in obj:
            raise DataError(str(path), lineno, "this is a relation schema (DuIE: subject_type, predicate, "
                                               "object_type), but the event task needs a DuEE schema (event_type, "
                                               "role_list): is the task or data.schema wrong?")
        event_type = _field(obj, "event_type", str, path, lineno)
        roles[(event_type, TRIGGER_ROLE)] = None
        for entry in _field(obj, "role_list", list, path, lineno):
            if not isinstance(entry, dict) or not isinstance(entry.get("role"), str):
                raise DataError(str(path), lineno, "each 'role_list' entry must be an object with a string 'role'")
            roles[(event_type, entry["role"])] = None
    if not roles:
        raise DataError(str(path), 0, "schema file has no event types")
    return Schema("event", event_roles=list(roles))


def schema_from_examples(task: str, examples: Iterable[Example], relation_format: str = "duie2") -> Schema:
    """Derive the label set from labelled examples; every list sorted (trigger role first per event type).

    Relations: each predicate's subject type and slot types are the most frequent ones in the data
    (ties: the smallest name); `relation_format` ("duie2" | "duie1") is the output style to record.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {list(TASKS)}, got {task!r}")
    examples = list(examples)
    if task == "ner":
        return Schema("ner", entity_types=sorted({s.label for e in examples for s in e.spans}))
    if task == "relation":
        relations = [r for e in examples for r in e.relations]
        types = {r.subject.label for r in relations} | {span.label for r in relations for _, span in r.objects}
        slots: dict[str, set[str]] = {}
        for r in relations:
            slots.setdefault(r.predicate, set()).update(slot for slot, _ in r.objects)
        object_slots = {p: _ordered_slots(sorted(s)) for p, s in sorted(slots.items())}
        subject_counts: dict[str, Counter[str]] = {}
        object_counts: dict[str, dict[str, Counter[str]]] = {}
        for r in relations:
            subject_counts.setdefault(r.predicate, Counter())[r.subject.label] += 1
            for slot, span in r.objects:
                object_counts.setdefault(r.predicate, {}).setdefault(slot, Counter())[span.label] += 1
        subject_types = {p: _most_frequent(c) for p, c in sorted(subject_counts.items())}
        object_types = {p: {slot: _most_frequent(object_counts[p][slot]) for slot in object_slots[p]
                            if slot in object_counts[p]}
                        for p in sorted(object_counts)}
        if relation_format not in RELATION_FORMATS:
            raise ValueError(f"relation_format must be one of {list(RELATION_FORMATS)}, got {relation_format!r}")
        return Schema("relation", entity_types=sorted(types), predicates=sorted(slots), object_slots=object_slots,
                      subject_types=subject_types, object_types=object_types, relation_format=relation_format)
    pairs = {(ev.type, a.label) for e in examples for ev in e.events for a in ev.arguments}
    pairs |= {(ev.type, TRIGGER_ROLE) for e in examples for ev in e.events}
    return Schema("event", event_roles=sorted(pairs, key=lambda p: (p[0], p[1] != TRIGGER_ROLE, p[1])))


def _most_frequent(counts: Counter[str]) -> str:
    """The most frequent key; ties go to the smallest."""
    return min(counts, key=lambda k: (-counts[k], k))
