"""Dates and numbers as APIs write them, turned into one form: ISO 8601 UTC and JSON numbers.

Records are normalized by their JSON Schema: a property with ``format: date-time`` becomes
``YYYY-MM-DDTHH:MM:SSZ`` (UTC), a ``number``/``integer`` property that arrives as a string becomes
a number. The plan is compiled once per stream, so the per-record cost is a few dict lookups.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any


def parse_datetime(value: str) -> datetime:
    """Parse ISO 8601 (with or without offset; naive means UTC) or RFC 2822 into aware UTC."""
    text = value.strip()
    parsed = datetime.fromisoformat(text) if text[:1].isdigit() else parsedate_to_datetime(text)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def iso_utc(value: str) -> str:
    """Any date-time string as ``YYYY-MM-DDTHH:MM:SSZ`` (sub-seconds dropped)."""
    if len(value) == 25 and value.endswith("+00:00") and value[10] == "T":
        return value[:19] + "Z"
    if len(value) == 20 and value[19] == "Z" and value[10] == "T":
        return value
    return parse_datetime(value).strftime("%Y-%m-%dT%H:%M:%SZ")


# How a cursor value (ISO 8601 UTC) is written into a request parameter, by name.
CURSOR_FORMATS: dict[str, Callable[[str], str]] = {
    "iso8601": lambda v: parse_datetime(v).strftime("%Y-%m-%dT%H:%M:%SZ"),
    "iso8601_offset": lambda v: parse_datetime(v).strftime("%Y-%m-%dT%H:%M:%S+00:00"),
    "rfc2822": lambda v: parse_datetime(v).strftime("%a, %d %b %Y %H:%M:%S +0000"),
    "unix": lambda v: str(int(parse_datetime(v).timestamp())),
    "date": lambda v: parse_datetime(v).strftime("%Y-%m-%d"),
}


def _to_datetime(value: Any) -> Any:
    if isinstance(value, str):
        if not value:
            return None
        try:
            return iso_utc(value)
        except (ValueError, TypeError, IndexError):
            return value  # left as it came; the schema still allows a string
    return value


def _to_number(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return float(value) if value.strip() else None
        except ValueError:
            return value
    return value


def _to_integer(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return int(value) if value.strip() else None
        except ValueError:
            return value
    return value


Plan = dict[str, Any]


def _types(prop: dict[str, Any]) -> set[str]:
    kind = prop.get("type", [])
    return {kind} if isinstance(kind, str) else set(kind)


def compile_plan(schema: dict[str, Any]) -> Plan:
    """What to convert in a record of ``schema``: ``{field: op}``, op a function or a sub-plan."""
    plan: Plan = {}
    for name, prop in (schema.get("properties") or {}).items():
        types = _types(prop)
        if prop.get("format") == "date-time":
            plan[name] = _to_datetime
        elif "number" in types and "string" not in types:
            plan[name] = _to_number
        elif "integer" in types and "string" not in types:
            plan[name] = _to_integer
        elif "object" in types:
            sub = compile_plan(prop)
            if sub:
                plan[name] = ("object", sub)
        elif "array" in types and isinstance(prop.get("items"), dict):
            sub = compile_plan(prop["items"])
            if sub:
                plan[name] = ("array", sub)
    return plan


def apply_plan(record: dict[str, Any], plan: Plan) -> dict[str, Any]:
    """Normalize ``record`` in place following ``plan``; returns it."""
    for name, op in plan.items():
        value = record.get(name)
        if value is None:
            continue
        if callable(op):
            record[name] = op(value)
        elif op[0] == "object":
            if isinstance(value, dict):
                apply_plan(value, op[1])
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    apply_plan(item, op[1])
    return record
