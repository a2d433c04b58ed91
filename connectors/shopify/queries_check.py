"""What the Shopify source's queries need of an API version and of an app's access scopes,
worked out from Shopify's own schema (``connectors.shopify.schema``), not written by hand.

- :func:`version_errors`: every query validated against the configured ``api_version``; the
  source refuses to start with a version that lacks a field it asks for, naming the stream,
  the field and the versions that have it.
- :func:`needed_scopes`: the access scopes each query needs, from the schema's
  ``offline_scopes`` data for every type and field the query touches (any one scope of a
  list grants it, and a ``write_`` scope grants its ``read_``).
- :func:`record_schema`: the JSON Schema of a query's records (a node, with its nested
  connections as lists of their nodes), which ``specs/schemas/shopify/*.json`` hold and a test
  keeps in step with the queries.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from connectors.shopify import schema

QUERIES = Path(__file__).with_name("queries")

#: Shopify's scalars as JSON (Decimal, Money and the 64-bit integers come as text).
SCALARS: dict[str, list[str]] = {
    "Int": ["integer"], "Float": ["number"], "Boolean": ["boolean"],
    "UnsignedInt64": ["string", "integer"], "JSON": [],
}


def names() -> list[str]:
    """Every query file's name (``queries/<name>.graphql``)."""
    return sorted(path.stem for path in QUERIES.glob("*.graphql"))


@functools.lru_cache(maxsize=32)
def query(name: str) -> str:
    """The text of query file ``name``."""
    return (QUERIES / f"{name}.graphql").read_text(encoding="utf-8")


def version_errors(version: str, which: Iterable[str] | None = None,
                   text_of: Any = None) -> list[str]:
    """One line per problem the schema of ``version`` finds in the queries ``which`` (None:
    every one); ``text_of`` reads a query's text (default: :func:`query`)."""
    text_of = text_of or query
    return [f"{name}: {message}" for name in (which or names())
            for message in schema.validate(version, text_of(name))]


def versions_with(which: Iterable[str], text_of: Any = None) -> list[str]:
    """The pinned versions whose schema takes every query of ``which``."""
    which = list(which)
    return [v for v in schema.VERSIONS if not version_errors(v, which, text_of)]


def _walk(version: str, text: str) -> list[tuple[str, str, Any]]:
    """(parent type, field name, field definition) of every field the query selects."""
    from graphql import TypeInfo, TypeInfoVisitor, Visitor, parse, visit

    found: list[tuple[str, str, Any]] = []
    info = TypeInfo(schema.load(version))

    class Fields(Visitor):
        def enter_field(self, node: Any, *_: Any) -> None:
            parent, definition = info.get_parent_type(), info.get_field_def()
            if parent is not None and definition is not None:
                found.append((parent.name, node.name.value, definition))

    visit(parse(text), TypeInfoVisitor(info, Fields()))
    return found


def needed_scopes(version: str, text: str) -> list[tuple[str, ...]]:
    """The scopes a query needs: each entry a tuple of scopes any one of which grants it
    (the schema's ``offline_scopes`` of every field and of every type a field returns)."""
    from graphql import get_named_type

    scopes = schema.scopes(version)
    needed: dict[frozenset[str], tuple[str, ...]] = {}
    for parent, name, definition in _walk(version, text):
        for key in ((parent, name), (get_named_type(definition.type).name, None)):
            alternatives = scopes.get(key)
            if alternatives:  # in Shopify's order: its first is the type's own scope
                needed.setdefault(frozenset(alternatives), tuple(alternatives))
    # A need that another need's every scope satisfies says nothing more (read_products or
    # read_files, beside read_products alone).
    return sorted(need for key, need in needed.items() if not any(other < key for other in needed))


def granted(scope: str, handles: set[str]) -> bool:
    """Whether the access scopes ``handles`` grant ``scope`` (``write_x`` grants ``read_x``)."""
    return scope in handles or (scope.startswith("read_")
                                and "write_" + scope.removeprefix("read_") in handles)


def describe(need: tuple[str, ...]) -> str:
    """A need as ``a`` or ``a or b``."""
    return " or ".join(need)


def missing_scopes(needed: list[tuple[str, ...]], handles: set[str]) -> list[str]:
    """The needs none of whose scopes is granted, each as :func:`describe` says it."""
    return [describe(need) for need in needed
            if not any(granted(scope, handles) for scope in need)]


def _json_type(named: Any) -> dict[str, Any]:
    from graphql import GraphQLEnumType

    if isinstance(named, GraphQLEnumType):
        return {"type": ["null", "string"], "enum": [None, *sorted(named.values)]}
    kinds = SCALARS.get(named.name, ["string"])
    return {"type": ["null", *kinds]} if kinds else {}


def _selection(version: str, named: Any, selection_set: Any) -> dict[str, Any]:
    """The JSON Schema of an object selected by ``selection_set`` on type ``named``."""
    from graphql import GraphQLList, GraphQLNonNull, get_named_type

    properties: dict[str, Any] = {}
    for selection in selection_set.selections:
        name = selection.name.value
        key = selection.alias.value if selection.alias else name
        definition = named.fields[name]
        field_type = definition.type
        inner = get_named_type(field_type)
        if selection.selection_set is None:
            value = _json_type(inner)
        elif inner.name.endswith("Connection") and "nodes" in inner.fields:
            nodes = next(s for s in selection.selection_set.selections
                         if s.name.value == "nodes")
            node_type = get_named_type(inner.fields["nodes"].type)
            value = {"type": "array", "items": _selection(version, node_type,
                                                          nodes.selection_set)}
        else:
            value = _selection(version, inner, selection.selection_set)
        unwrapped = field_type.of_type if isinstance(field_type, GraphQLNonNull) else field_type
        if isinstance(unwrapped, GraphQLList) and value.get("type") != "array":
            value = {"type": ["null", "array"], "items": value}
        if definition.description:
            value = {**value, "description": " ".join(definition.description.split())[:300]}
        properties[key] = value
    return {"type": ["null", "object"], "properties": properties}


def record_schema(version: str, text: str) -> dict[str, Any]:
    """The schema of a query's records: the nodes of its one root connection (or its one
    root object), nested connections as lists of their nodes."""
    from graphql import OperationDefinitionNode, get_named_type, parse

    operation = parse(text).definitions[0]
    assert isinstance(operation, OperationDefinitionNode), "a query file holds one operation"
    root: Any = schema.load(version).query_type
    field: Any = operation.selection_set.selections[0]  # the root field (a FieldNode)
    returned: Any = get_named_type(root.fields[field.name.value].type)
    if returned.name.endswith("Connection"):
        nodes = next(s for s in field.selection_set.selections if s.name.value == "nodes")
        record = _selection(version, get_named_type(returned.fields["nodes"].type),
                            nodes.selection_set)
    else:
        record = _selection(version, returned, field.selection_set)
    return {**record, "type": "object"}


#: Fields the source adds to a record beside the query's (``shop``; a spooled record's topic
#: and a tombstone's mark), kept as they are when the record schemas are made again.
ADDED = ("shop", "webhook_scope", "is_deleted")


def refresh_record_schemas(folder: Path, version: str = schema.DEFAULT_VERSION) -> list[Path]:
    """Make each stream's record schema (``folder/<stream>.json``) the fields its query asks
    for again, keeping its title, description and the fields the source adds (after a query
    changed: ``python -m connectors.shopify.queries_check specs/schemas/shopify``)."""
    import json

    written = []
    for path in sorted(folder.glob("*.json")):
        record = json.loads(path.read_text())
        made = record_schema(version, query(path.stem))["properties"]
        added = {k: v for k, v in record["properties"].items() if k in ADDED}
        shop = {"shop": added.pop("shop")} if "shop" in added else {}
        record["properties"] = {**shop, **made, **added}
        path.write_text(json.dumps(record, indent=2) + "\n")
        written.append(path)
    return written


if __name__ == "__main__":
    import sys

    for done in refresh_record_schemas(Path(sys.argv[1] if len(sys.argv) > 1
                                            else "specs/schemas/shopify")):
        print(done)
