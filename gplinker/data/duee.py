"""DuEE 1.0 line parser: events with character offsets, the trigger read as one more role.

An event may have no trigger (`"trigger": null` or no `trigger` key, and then no
`trigger_start_index` or a null one): it is its arguments alone (model.event.require_trigger false
learns and decodes such events; with the default, `gplinker check` counts them as lost).

Offsets are given, so every trigger and argument is checked against the text: a mismatch is a
`LineError` naming the event, the argument, its offset and what the text reads there. Non-empty
`alias` lists are kept in `meta["aliases"]` as (event index, span, aliases).
"""

from __future__ import annotations

from typing import Any

from gplinker.data.examples import TRIGGER_ROLE, Event, Example, Span
from gplinker.data.formats import LineError, check_span, example_id, require, require_text


def _mention_span(text: str, mention: str, start: object, role: str) -> Span:
    """Check `text[start:start+len(mention)] == mention` and return the span labelled `role`."""
    if not mention:
        raise LineError(f"empty mention for role {role!r}")
    end = start + len(mention) if isinstance(start, int) and not isinstance(start, bool) else None
    return check_span(text, start, end, role, mention)


def _parse_event(text: str, event: dict[str, Any]) -> tuple[Event, list[tuple[Span, tuple[str, ...]]]]:
    """One event_list entry -> Event (trigger included as role 触发词) and its non-empty aliases."""
    event_type = require(event, "event_type", str)
    arguments: set[Span] = set()
    if event.get("trigger") is not None:
        trigger = require(event, "trigger", str)
        arguments.add(_mention_span(text, trigger, require(event, "trigger_start_index", int), TRIGGER_ROLE))
    elif event.get("trigger_start_index") is not None:
        raise LineError(f"trigger_start_index {event['trigger_start_index']!r} without a trigger (an event without "
                        "a trigger has \"trigger\": null and no index)")
    aliases: list[tuple[Span, tuple[str, ...]]] = []
    for j, argument in enumerate(require(event, "arguments", list)):
        if not isinstance(argument, dict):
            raise LineError(f"arguments[{j}] must be an object, got {type(argument).__name__}")
        try:
            role = require(argument, "role", str)
            mention = require(argument, "argument", str)
            span = _mention_span(text, mention, require(argument, "argument_start_index", int), role)
            alias = argument.get("alias") or []
            if not isinstance(alias, list) or not all(isinstance(a, str) for a in alias):
                raise LineError("field 'alias' must be a list of strings")
        except LineError as exc:
            raise LineError(f"arguments[{j}]: {exc}") from None
        arguments.add(span)
        if alias:
            aliases.append((span, tuple(alias)))
    if not arguments:
        raise LineError("an event without a trigger needs at least one argument")
    return Event(event_type, frozenset(arguments)), aliases


def parse_duee(obj: dict[str, Any], path: str = "") -> Example:  # noqa: ARG001 -- LineParser signature
    """DuEE 1.0: {"text", "id", "event_list"?: [{event_type, trigger, trigger_start_index, arguments}]} (trigger may be
    null)."""
    text = require_text(obj)
    event_list = obj.get("event_list")
    if event_list is None:
        return Example(text=text, id=example_id(obj))
    if not isinstance(event_list, list):
        raise LineError(f"field 'event_list' must be a list, got {type(event_list).__name__}")
    events: list[Event] = []
    aliases: list[tuple[int, Span, tuple[str, ...]]] = []  # (event index, span, aliases)
    for k, event in enumerate(event_list):
        if not isinstance(event, dict):
            raise LineError(f"event_list[{k}] must be an object, got {type(event).__name__}")
        try:
            parsed, event_aliases = _parse_event(text, event)
        except LineError as exc:
            raise LineError(f"event_list[{k}] ({event.get('event_type')!r}): {exc}") from None
        events.append(parsed)
        aliases.extend((k, span, alias) for span, alias in event_aliases)
    meta = {"aliases": aliases} if aliases else {}
    return Example(text=text, events=tuple(events), id=example_id(obj), meta=meta)
