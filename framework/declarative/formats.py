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


#: The one form of a date-time here: ISO 8601 in UTC, to the second.
ISO_UTC = "%Y-%m-%dT%H:%M:%SZ"


def format_utc(when: datetime | float) -> str:
    """A moment (an aware datetime, a naive one taken as UTC, or epoch seconds) as
    ``YYYY-MM-DDTHH:MM:SSZ``."""
    if not isinstance(when, datetime):
        when = datetime.fromtimestamp(when, UTC)
    elif when.tzinfo is not None:
        when = when.astimezone(UTC)
    return when.strftime(ISO_UTC)


_MONTHS = {m: f"{i:02d}" for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}


def iso_utc(value: str) -> str:
    """Any date-time string as ``YYYY-MM-DDTHH:MM:SSZ`` (sub-seconds dropped)."""
    if len(value) == 25 and value.endswith("+00:00") and value[10] == "T":
        return value[:19] + "Z"
    if len(value) == 20 and value[19] == "Z" and value[10] == "T":
        return value
    if len(value) == 31 and value.endswith(" +0000") and value[3] == ",":
        # V2's RFC 2822 in UTC, "Tue, 20 Nov 2012 00:00:00 +0000": the hot case of orders.
        month = _MONTHS.get(value[8:11])
        if month:
            return f"{value[12:16]}-{month}-{value[5:7]}T{value[17:25]}Z"
    return format_utc(parse_datetime(value))


# How a cursor value (ISO 8601 UTC) is written into a request parameter, by name.
CURSOR_FORMATS: dict[str, Callable[[str], str]] = {
    "iso8601": lambda v: format_utc(parse_datetime(v)),
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


def _to_number(value: str) -> Any:
    try:
        return float(value)
    except ValueError:
        return None if not value.strip() else value  # "" is no amount; junk stays as it came


def _to_integer(value: str) -> Any:
    try:
        return int(value)
    except ValueError:
        return None if not value.strip() else value


Plan = Callable[[dict[str, Any]], dict[str, Any]]


def _types(prop: dict[str, Any]) -> set[str]:
    kind = prop.get("type", [])
    return {kind} if isinstance(kind, str) else set(kind)


def _steps(schema: dict[str, Any]) -> dict[str, Any]:
    """What to convert in a record of ``schema``: ``{field: op}``, op a function or a sub-plan."""
    steps: dict[str, Any] = {}
    for name, prop in (schema.get("properties") or {}).items():
        types = _types(prop)
        if prop.get("format") == "date-time":
            steps[name] = _to_datetime
        elif "number" in types and "string" not in types:
            steps[name] = _to_number
        elif "integer" in types and "string" not in types:
            steps[name] = _to_integer
        elif "object" in types:
            sub = _steps(prop)
            if sub:
                steps[name] = ("object", compile_steps(sub))
        elif "array" in types and isinstance(prop.get("items"), dict):
            sub = _steps(prop["items"])
            if sub:
                steps[name] = ("array", compile_steps(sub))
    return steps


def compile_steps(steps: dict[str, Any]) -> Plan:
    """Turn steps into one straight-line function: the per-record cost is a dict lookup and a
    class check per field of the schema (every conversion acts on strings only)."""
    lines = ["def normalize(r):"]
    names: dict[str, Any] = {}
    for index, (field, op) in enumerate(steps.items()):
        key = repr(field)
        lines.append(f"    v = r.get({key})")
        if callable(op):
            names[f"f{index}"] = op
            lines.append(f"    if v.__class__ is str: r[{key}] = f{index}(v)")
        elif op[0] == "object":
            names[f"f{index}"] = op[1]
            lines.append(f"    if v.__class__ is dict: f{index}(v)")
        else:
            names[f"f{index}"] = op[1]
            lines.append(f"    if v.__class__ is list:\n        for x in v:\n"
                         f"            if x.__class__ is dict: f{index}(x)")
    lines.append("    return r")
    exec("\n".join(lines), names)  # built from schema field names, each written with repr()
    return names["normalize"]


def compile_plan(schema: dict[str, Any]) -> Plan:
    """A function normalizing records of ``schema`` in place (compiled once per stream)."""
    return compile_steps(_steps(schema))


def apply_plan(record: dict[str, Any], plan: Plan) -> dict[str, Any]:
    """Normalize ``record`` in place following ``plan``; returns it."""
    return plan(record)
