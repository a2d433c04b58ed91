"""The expressions of a mapping file (``framework.declarative.mapping``), compiled to functions.

A field's value is an *expression*, in one of these forms:

- ``"a.b[0].c"``: the value at a path of the record (``None`` where it stops); ``"a[].b"``
  collects ``b`` of every item of ``a``; ``"a[f].b"`` is ``b`` of the first item of ``a``
  whose ``f`` is true; ``"@store.url"`` reads a *context* (``framework.declarative.mapping``).
- ``{"path": p, "none_if": [0], "table": t, "pick": f, "default": v}``: the path's value
  (``None`` when it is one of ``none_if``, the platform's ways of saying none), looked up in a
  table (``tables``, whose ``default`` stands for every other value; or a context indexed by
  id when ``t`` starts with ``@``), ``pick`` a field of what was found, ``default`` when nothing
  was.
- ``{"const": v}``; ``{"first": [e, ...]}`` (the first that is not empty);
  ``{"concat": [e, ...]}`` (lists joined).
- ``{"template": "{@store.url}{page.path}"}``: text made of paths; ``None`` when one of
  them is empty; where a value ending in ``/`` meets a part starting with ``/``, one goes.
- ``{"each": e, "fields": {...}}``: every item of the list ``e`` mapped with its own fields;
  ``{"object": e, "fields": {...}}``: the object ``e`` mapped so (``None`` when it is none).
- ``{"sum": f, "over": e, "skip": {g: v}}``: the sum of ``f`` over the items of ``e``,
  leaving out items whose ``g`` is ``v``.
- ``{"function": name}``: the plugin's function ``name(item, scope)`` (what data cannot say).

Values are made the model's types (ids as text, numeric text as numbers, dates as ISO 8601 UTC)
after mapping, so that a mapping file need not say it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from framework.declarative.formats import iso_utc

OPERATORS = {
    "path": {"table", "pick", "default", "none_if"},
    "const": set(),
    "first": set(),
    "concat": set(),
    "template": set(),
    "each": {"fields"},
    "object": {"fields"},
    "sum": {"over", "skip"},
    "function": set(),
}


class MappingError(Exception):
    """A mapping file is wrong; the message names the file and the key."""


@dataclass
class Scope:
    """What an expression sees besides its item: the whole record, the contexts, the API."""

    record: dict[str, Any]
    context: Callable[[str], Any]
    fetch: Callable[..., Any] | None = None


#: A compiled expression: (the item it is evaluated on, the scope) -> value.
Expr = Callable[[Any, Scope], Any]
#: A plugin function for what data cannot say: (item, scope) -> value.
Function = Callable[[Any, Scope], Any]

_STEP = re.compile(r"([^.\[\]]+)|\[(\w*)\]")
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")


def is_empty(value: Any) -> bool:
    return value is None or value == "" or value == []


def compile_path(path: str) -> Callable[[Any], Any]:
    """A getter for ``a.b[0].c`` (``[]``: every item of a list, flattened)."""
    steps: list[tuple[str, Any]] = []
    for name, index in _STEP.findall(path):
        if name:
            steps.append(("key", name))
        elif index == "":
            steps.append(("all", None))
        elif index.isdigit():
            steps.append(("index", int(index)))
        else:
            steps.append(("match", index))

    def walk(node: Any, start: int) -> Any:
        for position in range(start, len(steps)):
            kind, arg = steps[position]
            if node is None:
                return None
            if kind == "key":
                node = node.get(arg) if isinstance(node, dict) else None
            elif kind == "index":
                node = node[arg] if isinstance(node, list) and len(node) > arg else None
            elif kind == "match":  # the first item whose field ``arg`` is true
                node = next((item for item in node if isinstance(item, dict)
                             and truthy(item.get(arg))), None) if isinstance(node, list) else None
            else:
                if not isinstance(node, list):
                    return None
                found = [walk(item, position + 1) for item in node]
                return [v for part in found if part is not None
                        for v in (part if isinstance(part, list) else [part])]
        return node

    return lambda node: walk(node, 0)


def truthy(value: Any) -> bool:
    return bool(value) and value not in ("0", "false")


def table_key(value: Any) -> str:
    """A value as a table's (JSON object's) key: ``true``, ``3``, ``cart/created``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class Compiler:
    """Turns one mapping file's expressions into functions, checking them as it goes."""

    def __init__(self, path: Path, raw: dict[str, Any], functions: Mapping[str, Function]) -> None:
        self.path = path
        self.tables = raw.get("tables") or {}
        self.contexts = set((raw.get("context") or {}).keys())
        self.functions = functions

    def fail(self, where: str, message: str) -> MappingError:
        return MappingError(f"{self.path}: at {where}: {message}")

    def expr(self, spec: Any, where: str) -> Expr:
        if isinstance(spec, str):
            return self._path(spec, where)
        if not isinstance(spec, dict):
            raise self.fail(where, "an expression is a path (text) or an object with one of "
                            + ", ".join(OPERATORS))
        ops = [k for k in spec if k in OPERATORS]
        if len(ops) != 1:
            raise self.fail(where, f"give exactly one of {', '.join(OPERATORS)} (found "
                            f"{', '.join(ops) or 'none'})")
        op = ops[0]
        unknown = set(spec) - {op} - OPERATORS[op]
        if unknown:
            raise self.fail(where, f"unknown key {sorted(unknown)[0]!r} for {op}; valid: "
                            + (", ".join(sorted(OPERATORS[op])) or "none"))
        method = self._path_op if op == "path" else getattr(self, f"_{op}")
        result: Expr = method(spec, f"{where}.{op}")
        return result

    def _path(self, text: Any, where: str) -> Expr:
        if not isinstance(text, str) or not text:
            raise self.fail(where, "a path is non-empty text")
        if text.startswith("@"):
            name, _, rest = text[1:].partition(".")
            if name not in self.contexts:
                raise self.fail(where, f"no context {name!r}; valid: "
                                + (", ".join(sorted(self.contexts)) or "(none declared)"))
            getter = compile_path(rest) if rest else (lambda node: node)
            return lambda item, scope: getter(scope.context(name))
        getter = compile_path(text)
        return lambda item, scope: getter(item)

    def _const(self, spec: dict[str, Any], where: str) -> Expr:
        value = spec["const"]
        return lambda item, scope: value

    def _lookup(self, name: Any, where: str) -> Callable[[Scope], dict[str, Any]]:
        if isinstance(name, str) and name.startswith("@"):
            context = name[1:]
            if context not in self.contexts:
                raise self.fail(where, f"no context {context!r}")
            return lambda scope: scope.context(context) or {}
        table = self.tables.get(name) if isinstance(name, str) else None
        if not isinstance(table, dict) or not isinstance(table.get("values"), dict):
            raise self.fail(where, f"no table {name!r} (a table is {{values: {{...}}, "
                            f"default: ...}}); valid: {', '.join(sorted(self.tables))}")
        values, default = table["values"], table.get("default")
        return lambda scope: _Defaulted(values, default)

    def _path_op(self, spec: dict[str, Any], where: str) -> Expr:
        read = self._path(spec["path"], where)
        nones = spec.get("none_if") or []
        if not isinstance(nones, list):
            raise self.fail(where, "none_if is a list of the values that mean none")

        def get(item: Any, scope: Scope) -> Any:
            value = read(item, scope)
            return None if nones and _means_none(value, nones) else value
        default = spec.get("default")
        pick = compile_path(spec["pick"]) if "pick" in spec else None
        if "table" not in spec:
            if pick is not None:
                raise self.fail(where, "pick needs a table")
            return lambda item, scope: _or(get(item, scope), default)
        table = self._lookup(spec["table"], where + ".table")

        def looked_up(item: Any, scope: Scope) -> Any:
            value = get(item, scope)
            values = table(scope)
            # A table's default stands for every other value, none included.
            found = (values.get(table_key(value)) if value is not None else
                     getattr(values, "default", None))
            if pick is not None:
                found = pick(found)
            return _or(found, default)
        return looked_up

    def _first(self, spec: dict[str, Any], where: str) -> Expr:
        parts = self._list(spec["first"], where)
        return lambda item, scope: next(
            (v for part in parts if not is_empty(v := part(item, scope))), None)

    def _concat(self, spec: dict[str, Any], where: str) -> Expr:
        parts = self._list(spec["concat"], where)

        def joined(item: Any, scope: Scope) -> list[Any]:
            out: list[Any] = []
            for part in parts:
                value = part(item, scope)
                out.extend(value if isinstance(value, list) else [] if value is None else [value])
            return out
        return joined

    def _list(self, specs: Any, where: str) -> list[Expr]:
        if not isinstance(specs, list) or not specs:
            raise self.fail(where, "give a non-empty list of expressions")
        return [self.expr(s, f"{where}[{i}]") for i, s in enumerate(specs)]

    def _template(self, spec: dict[str, Any], where: str) -> Expr:
        text = spec["template"]
        if not isinstance(text, str):
            raise self.fail(where, "a template is text with {path} placeholders")
        pieces: list[str | Expr] = []
        last = 0
        for match in _PLACEHOLDER.finditer(text):
            pieces += [text[last:match.start()], self._path(match.group(1), where)]
            last = match.end()
        pieces.append(text[last:])

        def render(item: Any, scope: Scope) -> str | None:
            out = ""
            for piece in pieces:
                value = piece if isinstance(piece, str) else piece(item, scope)
                if not isinstance(piece, str) and is_empty(value):
                    return None
                part = str(value)
                out += part[1:] if out.endswith("/") and part.startswith("/") else part
            return out
        return render

    def _each(self, spec: dict[str, Any], where: str) -> Expr:
        items = self.expr(spec["each"], where)
        fields = self.fields(spec.get("fields"), where.removesuffix(".each") + ".fields")

        def mapped(item: Any, scope: Scope) -> list[dict[str, Any]]:
            found = items(item, scope)
            if not isinstance(found, list):
                return []
            return [build(fields, element, scope) for element in found
                    if isinstance(element, dict)]
        return mapped

    def _object(self, spec: dict[str, Any], where: str) -> Expr:
        found = self.expr(spec["object"], where)
        fields = self.fields(spec.get("fields"), where.removesuffix(".object") + ".fields")

        def mapped(item: Any, scope: Scope) -> dict[str, Any] | None:
            value = found(item, scope)
            return build(fields, value, scope) if isinstance(value, dict) else None
        return mapped

    def _sum(self, spec: dict[str, Any], where: str) -> Expr:
        if "over" not in spec:
            raise self.fail(where, "sum needs over (the list whose items are added up)")
        value = compile_path(spec["sum"])
        items = self.expr(spec["over"], where.removesuffix(".sum") + ".over")
        skip = spec.get("skip") or {}
        if not isinstance(skip, dict):
            raise self.fail(where, "skip is {field: value}")
        skips = [(compile_path(k), v) for k, v in skip.items()]

        def total(item: Any, scope: Scope) -> float | int | None:
            found = items(item, scope)
            if not isinstance(found, list):
                return None
            kept = [e for e in found if isinstance(e, dict)
                    and not any(get(e) == v for get, v in skips)]
            numbers = [_number(value(e)) for e in kept]
            added = sum(numbers)
            return int(added) if all(n.is_integer() for n in numbers) else added
        return total

    def _function(self, spec: dict[str, Any], where: str) -> Expr:
        name = spec["function"]
        if name not in self.functions:
            raise self.fail(where, f"the plugin has no mapping function {name!r}; valid: "
                            + (", ".join(sorted(self.functions)) or "(none)"))
        return self.functions[name]

    def fields(self, spec: Any, where: str) -> dict[str, Expr]:
        if not isinstance(spec, dict) or not spec:
            raise self.fail(where, "fields is {model field: expression}")
        return {target: self.expr(value, f"{where}.{target}") for target, value in spec.items()}


class _Defaulted(dict[str, Any]):
    """A table's values with its default for a key it lacks."""

    def __init__(self, values: dict[str, Any], default: Any) -> None:
        super().__init__(values)
        self.default = default

    def get(self, key: str, fallback: Any = None) -> Any:
        return super().get(key, self.default)


def _means_none(value: Any, nones: list[Any]) -> bool:
    """Whether ``value`` is one of the platform's ways of saying none (``0`` for no customer);
    numeric text compares as its number (``"0.0000"`` is ``0``)."""
    if value in nones and not isinstance(value, bool):
        return True
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return False
        return any(number == n for n in nones if isinstance(n, int | float)
                   and not isinstance(n, bool))
    return False


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


def _number(value: Any) -> float:
    if isinstance(value, bool):
        return 0.0
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def build(fields: dict[str, Expr], item: Any, scope: Scope) -> dict[str, Any]:
    """An object of ``fields`` (dotted targets make nested objects) evaluated on ``item``."""
    out: dict[str, Any] = {}
    for target, expr in fields.items():
        node = out
        *parents, last = target.split(".")
        for name in parents:
            node = node.setdefault(name, {})
        node[last] = expr(item, scope)
    return out


def check_targets(fields: dict[str, Any], schema: dict[str, Any], where: str,
                   fail: Callable[[str, str], MappingError]) -> None:
    """Every target of ``fields`` is a property of the model ``schema`` (nested ones too)."""
    for target, spec in fields.items():
        node = schema
        for name in target.split("."):
            props = node.get("properties") or {}
            if name not in props:
                raise fail(f"{where}.{target}", f"{name!r} is not a field of the model; "
                           f"valid: {', '.join(sorted(props))}")
            node = props[name]
        if isinstance(spec, dict) and ("each" in spec or "object" in spec):
            items = (node.get("items") or {}) if "each" in spec else node
            check_targets(spec.get("fields") or {}, items, f"{where}.{target}.fields", fail)


def coerce(value: Any, schema: dict[str, Any]) -> Any:
    """``value`` made the type ``schema`` says, where the change is lossless: ids and codes
    as text, numeric text as numbers, dates as ISO 8601 UTC, a missing list empty; anything
    else stays as it is (a validator then says what is wrong)."""
    kinds = schema.get("type")
    kinds = {kinds} if isinstance(kinds, str) else set(kinds or ())
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        return {k: coerce(v, props[k]) if k in props else v for k, v in value.items()}
    if isinstance(value, list):
        items = schema.get("items") or {}
        return [coerce(v, items) for v in value]
    if value is None:
        return [] if kinds == {"array"} else None  # a list the record lacks is empty
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and "string" in kinds and not kinds & {"number",
                                                                             "integer"}:
        return str(int(value)) if float(value).is_integer() else str(value)
    if isinstance(value, str):
        if schema.get("format") == "date-time" and value:
            try:
                return iso_utc(value)
            except (ValueError, TypeError, IndexError):
                return value
        if "string" not in kinds and kinds & {"number", "integer"}:
            try:
                number = float(value)
            except ValueError:
                return None if not value.strip() else value
            return int(number) if "number" not in kinds and number.is_integer() else number
    if isinstance(value, float) and "integer" in kinds and "number" not in kinds \
            and value.is_integer():
        return int(value)
    return value
