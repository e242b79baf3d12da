"""English relation benchmarks: the NYT / WebNLG files of CasRel and of TPLinker, in character offsets.

- `casrel`: `{"text", "triple_list": [[subject, predicate, object], ...]}` (CasRel, Wei et al.
  2020, github.com/weizhepei/CasRel: NYT* and WebNLG*, whose entities are the last word of each
  mention). No offsets: each string is located in the text, whole words first (the characters
  around it are not letters or digits), then anywhere; of all (subject, object) occurrence pairs
  the rule of data/duie.py picks one (non-overlapping first, then nearest, then leftmost), so a
  mention repeated in a text gives one triple, deterministically.
- `tplinker`: `{"text", "id"?, "relation_list": [{"subject", "object", "predicate", "subj_char_span",
  "obj_char_span", "subj_tok_span"?, "obj_tok_span"?}], "entity_list"?: [{"text", "type",
  "char_span"}]}` (TPLinker, Wang et al. 2020, github.com/131250208/TPlinker-joint-extraction:
  NYT, NYT*, WebNLG, WebNLG*). The character spans are the truth (checked against the text and
  the mention); the token spans belong to TPLinker's own tokenizer and are ignored, as this
  package's tokenizer gives its own offsets (`offset_mapping`).

Entities have no type in CasRel's files and "DEFAULT" in TPLinker's; a type from `entity_list`
(same character span) is kept, else the type is `entity`. A file is a JSON array (as published)
or JSON lines (data/sources.py reads both). Scoring: the strict triple F1 on strings (main) is
the whole-span convention of NYT / WebNLG; `last_word_f1` (metrics.relation_scores) compares the
last word of each entity, the convention of NYT* / WebNLG*.
"""

from __future__ import annotations

from typing import Any

from gplinker.data.duie import EMPTY_MENTION, OBJECT_NOT_IN_TEXT, SUBJECT_NOT_IN_TEXT, VALUE_SLOT, nearest_pair
from gplinker.data.examples import Example, Relation, Span
from gplinker.data.formats import LineError, check_span, example_id, require, require_text

ENTITY = "entity"  # the type of an entity the file gives none


def word_occurrences(text: str, mention: str) -> list[int]:
    """Starts of `mention` in `text` as whole words (no letter or digit just before or after); if there is none,
    every start of it as a substring, overlapping ones included."""
    starts, i = [], text.find(mention)
    while i != -1 and mention:
        starts.append(i)
        i = text.find(mention, i + 1)
    end = len(mention)
    whole = [s for s in starts if (s == 0 or not text[s - 1].isalnum())
             and (s + end == len(text) or not text[s + end].isalnum())]
    return whole or starts


def parse_casrel(obj: dict[str, Any], path: str = "") -> Example:  # noqa: ARG001 -- LineParser signature
    """CasRel NYT / WebNLG: {"text", "triple_list": [[subject, predicate, object], ...]}, strings located."""
    text = require_text(obj)
    triples = obj.get("triple_list")
    if triples is None:
        return Example(text=text, id=example_id(obj))
    if not isinstance(triples, list):
        raise LineError(f"field 'triple_list' must be a list, got {type(triples).__name__}")
    relations: list[Relation] = []
    unlocated: list[tuple[str, dict[str, Any]]] = []
    for k, triple in enumerate(triples):
        if not (isinstance(triple, list) and len(triple) == 3 and all(isinstance(x, str) for x in triple)):
            raise LineError(f"triple_list[{k}] must be [subject, predicate, object] (three strings), got "
                            f"{str(triple)[:80]}")
        subject, predicate, obj_text = triple
        record = {"subject": subject, "predicate": predicate, "object": obj_text}
        if not subject or not obj_text or not predicate:
            unlocated.append((EMPTY_MENTION, record))
            continue
        subjects, objects = word_occurrences(text, subject), word_occurrences(text, obj_text)
        if not subjects or not objects:
            unlocated.append((SUBJECT_NOT_IN_TEXT if not subjects else OBJECT_NOT_IN_TEXT, record))
            continue
        s, o = nearest_pair(subjects, len(subject), objects, len(obj_text))
        relations.append(Relation(Span(s, s + len(subject), ENTITY), predicate,
                                  ((VALUE_SLOT, Span(o, o + len(obj_text), ENTITY)),)))
    meta: dict[str, Any] = {"located": len(relations), "unlocated": unlocated, "ignoring_case": 0,
                            "duplicates": len(relations) - len(set(relations))}
    return Example(text=text, relations=tuple(sorted(set(relations))), id=example_id(obj), meta=meta)


def _char_span(text: str, item: dict[str, Any], key: str, mention: str, what: str) -> tuple[int, int]:
    span = item.get(key)
    if span is None:
        raise LineError(f"no '{key}': the {what}'s character span is needed (TPLinker's preprocessed files carry "
                        "it; token spans alone belong to TPLinker's tokenizer)")
    if not (isinstance(span, list) and len(span) == 2):
        raise LineError(f"'{key}' must be [start, end], got {str(span)[:60]}")
    checked = check_span(text, span[0], span[1], what, mention)
    return checked.start, checked.end


def parse_tplinker(obj: dict[str, Any], path: str = "") -> Example:  # noqa: ARG001 -- LineParser signature
    """TPLinker: {"text", "relation_list": [{subject, object, predicate, subj_char_span, obj_char_span}], ...}."""
    text = require_text(obj)
    relation_list = obj.get("relation_list")
    if relation_list is None:
        return Example(text=text, id=example_id(obj))
    if not isinstance(relation_list, list):
        raise LineError(f"field 'relation_list' must be a list, got {type(relation_list).__name__}")
    types: dict[tuple[int, int], str] = {}
    for k, entity in enumerate(obj.get("entity_list") or []):
        try:
            if not isinstance(entity, dict):
                raise LineError(f"must be an object, got {type(entity).__name__}")
            kind = require(entity, "type", str)
            types[_char_span(text, entity, "char_span", require(entity, "text", str), "entity")] = \
                ENTITY if kind == "DEFAULT" else kind
        except LineError as exc:
            raise LineError(f"entity_list[{k}]: {exc}") from None
    relations: list[Relation] = []
    for k, rel in enumerate(relation_list):
        try:
            if not isinstance(rel, dict):
                raise LineError(f"must be an object, got {type(rel).__name__}")
            predicate = require(rel, "predicate", str)
            s = _char_span(text, rel, "subj_char_span", require(rel, "subject", str), "subject")
            o = _char_span(text, rel, "obj_char_span", require(rel, "object", str), "object")
        except LineError as exc:
            raise LineError(f"relation_list[{k}]: {exc}") from None
        relations.append(Relation(Span(*s, types.get(s, ENTITY)), predicate,
                                  ((VALUE_SLOT, Span(*o, types.get(o, ENTITY))),)))
    meta = {"located": len(relations), "duplicates": len(relations) - len(set(relations))}
    return Example(text=text, relations=tuple(sorted(set(relations))), id=example_id(obj), meta=meta)
