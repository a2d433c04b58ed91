"""Declared mappings from a platform's API records to a shared model (e.g. the commerce model).

A plugin ships a mapping file next to its spec: for each *kind* of the model (``customer``,
``order``...), the API stream it comes from and, for each model field, where its value is. The
file is data; only what data cannot say is a named Python function of the plugin. The engine
here knows no platform: it reads the file, checks it against the model's JSON Schemas when it
is loaded (a bad path names the file and the key), and maps one record at a time.

A mapping file::

    {"model": "commerce/v1", "platform": "shop", "account": "shop_id",
     "context": {"store": {"get": "/store"}},
     "tables": {"status": {"values": {"1": "pending"}, "default": "unknown"}},
     "kinds": {"order": {"stream": "orders", "tombstone": {"when": "removed"},
                         "fields": {"id": "id", "status": {"path": "state.code",
                                                           "table": "status"}}}}}

A field's value is an *expression* (``framework.declarative.mapping_expressions`` lists its forms: a
path, a table lookup, a template, a list mapped item by item, a sum, a plugin function).

A *context* is what several records share and the API gives apart (the store's address, the
names behind group ids): ``{"get": path, "records_path": p, "paged": true, "index": "id"}`` is
fetched through the source's own client the first time a record needs it, and kept for
``CONTEXT_TTL_S`` per account. ``tombstone.when`` names the field that marks a deleted record:
its model record is the keys, ``deleted: true``, ``updated_at`` and the tombstone's own fields.

Values are made the model's types (ids as text, numeric text as numbers, dates as ISO 8601 UTC)
after mapping, so that a mapping file need not say it.
"""

from __future__ import annotations

import collections.abc
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from framework.declarative.mapping_expressions import (
    Compiler,
    Expr,
    Function,
    MappingError,
    Scope,
    build,
    check_targets,
    coerce,
    compile_path,
    is_empty,
    table_key,
    truthy,
)

__all__ = ["CONTEXT_TTL_S", "Function", "Mapping", "MappingError", "Scope"]

log = logging.getLogger("tajo.mapping")

#: How long a context (the store's address, group names) is kept before it is fetched again:
#: a long-running forwarder sees a renamed group within this long.
CONTEXT_TTL_S = 600.0
#: Records per request when a paged context is fetched (the most the APIs we know allow).
CONTEXT_PAGE = 250
#: Model fields every record has, set by the engine rather than by the mapping file.
KEYS = ("platform", "account", "id", "deleted")

@dataclass
class Kind:
    """One kind of the model as a platform maps it."""

    name: str
    stream: str
    schema: dict[str, Any]
    fields: dict[str, Expr]
    tombstone_when: Callable[[Any], Any] | None = None
    tombstone_fields: dict[str, Expr] = field(default_factory=dict)


class Mapping:
    """A platform's mapping file, loaded, checked against the model and ready to map.

    Args:
        path: the mapping file.
        functions: the plugin's functions that ``{"function": name}`` expressions call.
        schemas: the folder of the model's schemas (default: ``specs/schemas/<model>``).
    """

    def __init__(self, path: str | Path, *,
                 functions: collections.abc.Mapping[str, Function] | None = None,
                 schemas: str | Path | None = None) -> None:
        self.path = Path(path)
        try:
            raw = orjson.loads(self.path.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise MappingError(f"{self.path}: cannot read the mapping file: {exc}") from None
        for key in ("model", "platform", "account", "kinds"):
            if key not in raw:
                raise MappingError(f"{self.path}: at $: missing {key!r}")
        unknown = set(raw) - {"model", "platform", "account", "context", "tables", "kinds",
                              "description"}
        if unknown:
            raise MappingError(f"{self.path}: at $.{sorted(unknown)[0]}: unknown key")
        self.model: str = raw["model"]
        self.platform: str = raw["platform"]
        self.contexts: dict[str, dict[str, Any]] = raw.get("context") or {}
        compiler = Compiler(self.path, raw, functions or {})
        self._account = compiler.expr(raw["account"], "$.account")
        folder = Path(schemas) if schemas else _schemas_folder(self.model)
        self.kinds = {name: self._kind(compiler, name, spec, folder)
                      for name, spec in raw["kinds"].items()}
        self._cache: dict[tuple[str, str], tuple[float, Any]] = {}
        self._lock = threading.Lock()
        self.skipped = 0  # records that could not be keyed (logged, left out)

    def _kind(self, compiler: Compiler, name: str, spec: dict[str, Any], folder: Path
              ) -> Kind:
        where = f"$.kinds.{name}"
        schema_file = folder / f"{name}.json"
        try:
            schema = orjson.loads(schema_file.read_bytes())
        except OSError:
            known = sorted(p.stem for p in folder.glob("*.json"))
            raise MappingError(f"{self.path}: at {where}: the model {self.model} has no kind "
                               f"{name!r}; valid: {', '.join(known)}") from None
        if not isinstance(spec.get("stream"), str):
            raise compiler.fail(where + ".stream", "name the API stream this kind maps from")
        fields = spec.get("fields") or {}
        if "id" not in fields:
            raise compiler.fail(where + ".fields", "map the record's id")
        taken = set(fields) & set(KEYS[:2] + KEYS[3:])
        if taken:
            raise compiler.fail(f"{where}.fields.{sorted(taken)[0]}", "set by the engine "
                                "(platform, account and deleted come from the file's top level "
                                "and tombstone)")
        check_targets(fields, schema, where + ".fields", compiler.fail)
        kind = Kind(name, spec["stream"], schema, compiler.fields(fields, where + ".fields"))
        tombstone = spec.get("tombstone")
        if tombstone is not None:
            if not isinstance(tombstone, dict) or "when" not in tombstone:
                raise compiler.fail(where + ".tombstone", "give when (the field that marks a "
                                    "deleted record) and optionally fields")
            kind.tombstone_when = compile_path(tombstone["when"])
            extra = tombstone.get("fields") or {}
            check_targets(extra, schema, where + ".tombstone.fields", compiler.fail)
            kind.tombstone_fields = {t: compiler.expr(v, f"{where}.tombstone.fields.{t}")
                                     for t, v in extra.items()}
        return kind

    # --- mapping --------------------------------------------------------------------------

    def map(self, kind: str, record: dict[str, Any], *, fetch: Callable[..., Any] | None = None,
            context: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """The model record of an API ``record`` of ``kind``; None when it has no account or
        id (logged and counted: one such record never stops the others).

        Contexts come from ``context`` when given (tests), else are fetched with ``fetch``.
        """
        spec = self.kinds[kind]
        account_value = self._account(record, _NO_SCOPE)
        account = None if is_empty(account_value) else str(account_value)

        def lookup(name: str) -> Any:
            if context is not None:
                return context.get(name)
            return self.context(account or "", name, fetch)

        scope = Scope(record=record, context=lookup, fetch=fetch)
        identity = spec.fields["id"](record, scope)
        if account is None or is_empty(identity):
            self.skipped += 1
            log.warning("a %s record of %s has no %s; left out of the %s model",
                        spec.stream, self.platform, "account" if account is None else "id",
                        kind)
            return None
        out: dict[str, Any] = {"platform": self.platform, "account": account, "id": identity}
        if spec.tombstone_when is not None and truthy(spec.tombstone_when(record)):
            out["deleted"] = True
            if "updated_at" in spec.fields:
                out["updated_at"] = spec.fields["updated_at"](record, scope)
            out.update(build(spec.tombstone_fields, record, scope))
        else:
            out["deleted"] = False
            out.update(build(spec.fields, record, scope))
        return coerce(out, spec.schema)

    def hook(self, kind: str) -> Callable[[dict[str, Any], Callable[..., Any]],
                                          list[dict[str, Any]]]:
        """The engine's child-stream hook for ``kind``: (API record, fetch) -> [model record]."""
        if kind not in self.kinds:
            raise MappingError(f"{self.path}: no kind {kind!r}; valid: {', '.join(self.kinds)}")

        def mapped(record: dict[str, Any], fetch: Callable[..., Any]) -> list[dict[str, Any]]:
            out = self.map(kind, record, fetch=fetch)
            return [out] if out is not None else []
        return mapped

    def hooks(self, prefix: str) -> dict[str, Any]:
        """Every kind's hook, named ``<prefix>.<kind>`` (how a spec's model streams name it)."""
        return {f"{prefix}.{name}": self.hook(name) for name in self.kinds}

    # --- contexts -------------------------------------------------------------------------

    def context(self, account: str, name: str, fetch: Callable[..., Any] | None) -> Any:
        """A context of ``account``, fetched when not kept (or kept too long)."""
        key = (account, name)
        with self._lock:
            kept = self._cache.get(key)
        if kept is not None and time.monotonic() - kept[0] < CONTEXT_TTL_S:
            return kept[1]
        if fetch is None:
            return None
        value = _fetch_context(self.contexts[name], fetch)
        with self._lock:
            self._cache[key] = (time.monotonic(), value)
        return value


_NO_SCOPE = Scope(record={}, context=lambda name: None)


def _fetch_context(spec: dict[str, Any], fetch: Callable[..., Any]) -> Any:
    """One context: an object (``get``), or a list indexed by ``index`` (read page by page
    when ``paged``)."""
    records_path = spec.get("records_path")
    extra = {"scope": spec["scope"]} if spec.get("scope") else {}
    if not spec.get("index"):
        body = fetch(spec["get"], None, **extra)
        return compile_path(records_path)(body) if records_path else body
    rows: list[Any] = []
    page = 1
    while True:
        params = {"page": page, "limit": CONTEXT_PAGE} if spec.get("paged") else None
        body = fetch(spec["get"], params, **extra)
        found = compile_path(records_path)(body) if records_path else body
        found = found if isinstance(found, list) else []
        rows.extend(found)
        if not spec.get("paged") or len(found) < CONTEXT_PAGE:
            break
        page += 1
    index = compile_path(spec["index"])
    return {table_key(index(row)): row for row in rows
            if isinstance(row, dict) and index(row) is not None}


def _schemas_folder(model: str) -> Path:
    from framework.protocol.catalog import data_path  # the catalog module reads files, as this does

    return data_path(f"specs/schemas/{model}")
