"""A destination's first look at a record: does it have the shape its stream's schema declares?

Compiled once per stream, checked for every record: the primary key is there, and each
top-level field that is present has a declared JSON type (dates parse). Not a full JSON Schema
validation (the cost of one per record would be most of a write); nested values are the
destination's to judge. A record that fails is the destination's to dead-letter: one bad
record never stops a run.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from framework.protocol import messages as p

_TYPES: dict[str, tuple[type, ...]] = {
    "integer": (int,), "number": (int, float), "string": (str,), "boolean": (bool,),
    "object": (dict,), "array": (list,), "null": (type(None),),
}


_JSON_NAMES: dict[type, str] = {int: "integer", float: "number", str: "a string", bool: "boolean",
                                dict: "an object", list: "an array", type(None): "null"}


def _allowed(prop: dict[str, Any]) -> tuple[type, ...] | None:
    kind = prop.get("type")
    kinds = [kind] if isinstance(kind, str) else kind if isinstance(kind, list) else None
    if not kinds or any(k not in _TYPES for k in kinds):
        return None  # no type, or one we do not check
    return tuple(t for k in kinds for t in _TYPES[k])


class RecordCheck:
    """The checks of one stream's records."""

    def __init__(self, schema: dict[str, Any], primary_key: list[list[str]]) -> None:
        properties = schema.get("properties") or {}
        self.key = [path[0] for path in primary_key if path]
        self.types = {name: allowed for name, prop in properties.items()
                      if isinstance(prop, dict) and (allowed := _allowed(prop))}
        self.dates = {name for name, prop in properties.items()
                      if isinstance(prop, dict) and prop.get("format") == "date-time"}

    def problem(self, record: dict[str, Any]) -> str | None:
        """What is wrong with ``record`` (one line), or None."""
        for name in self.key:
            if record.get(name) is None:
                return f"the primary key {name!r} is missing"
        types = self.types
        for name, value in record.items():
            allowed = types.get(name)
            if allowed is None:
                continue
            if value.__class__ not in allowed and not (
                    isinstance(value, allowed) and not isinstance(value, bool)):
                expected = " or ".join(sorted({_JSON_NAMES[t] for t in allowed}))
                shown = "" if value is None else f" {_short(value)}"
                return (f"{name} is {_JSON_NAMES.get(type(value), type(value).__name__)}"
                        f"{shown}, the schema says {expected}")
            if name in self.dates and value.__class__ is str and value:
                try:
                    datetime.fromisoformat(value)
                except ValueError:
                    return f"{name} {_short(value)} is not an ISO 8601 date-time"
        return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def checks_of(catalog: p.ConfiguredAirbyteCatalog) -> dict[str, RecordCheck]:
    """A :class:`RecordCheck` per stream of a configured catalog."""
    out = {}
    for configured in catalog.streams:
        stream = configured.stream
        key = configured.primary_key or stream.source_defined_primary_key or []
        out[stream.name] = RecordCheck(stream.json_schema or {}, key)
    return out
