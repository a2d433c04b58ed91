"""Bulk operations: ``bulkOperationRunQuery`` runs a query over a whole shop and leaves JSONL.

The inner query is validated against the version's schema and Shopify's bulk rules (at least
one connection, at most 5, nested at most 2 deep); connections in it need no ``first``. The
operation goes CREATED -> RUNNING -> COMPLETED, a step every ``delay_s`` (``--bulk-delay-ms``),
so a client's polling meets each status; the query runs in a worker thread, so that the API
keeps answering while a large shop is written out. Its result is written to a temporary file
(anonymous: it goes with the process, however it stops), one object per line, nested
connections flattened: each child is a line of its own with ``__parentId``, the id of the
object it belongs to, after that object's line (``id`` is added to a parent's selection when
the query does not ask for it, so that a child can name it). ``url`` serves the file,
streamed. A query with no results completes with ``url`` null, as Shopify's does.

Concurrency: Shopify's bulk operations guide allows one bulk query at a time per app and shop
up to API version 2025-10, and five from 2026-01 (its changelog); the schema's description
defers to that guide. A query over the limit answers userError OPERATION_IN_PROGRESS (counted
per shop: the sandbox's apps share a shop's bulk operations). A query reaching a field the
token's scopes do not grant fails when it runs: FAILED, errorCode ACCESS_DENIED.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from typing import IO, Any

import orjson
from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    InlineFragmentNode,
    NameNode,
    OperationDefinitionNode,
    SelectionSetNode,
    execute_sync,
    get_named_type,
    parse,
    validate,
)

from connectors.shopify.sandbox import generate as g
from connectors.shopify.sandbox.cost import is_connection
from connectors.shopify.sandbox.resolvers import Context, type_resolver

log = logging.getLogger("tajo.sandbox.shopify")

MAX_CONNECTIONS = 5
MAX_DEPTH = 2


def concurrent_limit(version: str) -> int:
    return 1 if version <= "2025-10" else 5


def _user_error(message: str, code: str) -> dict[str, Any]:
    return {"__typename": "BulkOperationUserError", "field": ["query"], "message": message,
            "code": code}


class BulkOperations:
    """One shop's bulk operations and their result files."""

    def __init__(self, delay_s: float = 0.2) -> None:
        self.delay_s = delay_s
        self.operations: dict[str, dict[str, Any]] = {}
        #: Result files by name: anonymous temporary files (gone with the process, however it
        #: stops), read back by position (``read``).
        self.files: dict[str, IO[bytes]] = {}
        self.next_id = 1

    def current(self, kind: str = "QUERY") -> dict[str, Any] | None:
        mine = [op for op in self.operations.values() if op["type"] == kind]
        return mine[-1] if mine else None

    def run(self, ctx: Context, info: Any, query: str) -> dict[str, Any]:
        """``bulkOperationRunQuery``: its payload (the operation or userErrors)."""
        try:
            document = parse(query)
        except GraphQLError as exc:
            return {"bulkOperation": None,
                    "userErrors": [_user_error(f"Invalid bulk query: {exc.message}", "INVALID")]}
        errors = [e.message for e in validate(info.schema, document)] or \
            _rule_errors(info.schema, document)
        if errors:
            return {"bulkOperation": None, "userErrors": [
                _user_error(f"Invalid bulk query: {errors[0]}", "INVALID")]}
        running = [op for op in self.operations.values()
                   if op["type"] == "QUERY" and op["status"] in ("CREATED", "RUNNING")]
        if len(running) >= concurrent_limit(ctx.version):
            return {"bulkOperation": None, "userErrors": [_user_error(
                "A bulk query operation for this app and shop is already in progress: "
                f"{running[0]['id']}.", "OPERATION_IN_PROGRESS")]}
        number = self.next_id
        self.next_id += 1
        operation: dict[str, Any] = {
            "__typename": "BulkOperation", "id": g.gid("BulkOperation", number),
            "status": "CREATED", "type": "QUERY", "query": query, "errorCode": None,
            "createdAt": g.iso(time.time()), "completedAt": None, "objectCount": "0",
            "rootObjectCount": "0", "fileSize": None, "url": None, "partialDataUrl": None}
        self.operations[operation["id"]] = operation
        bulk_ctx = Context(ctx.shop, ctx.scopes, ctx.version, app=ctx.app, bulk=True,
                           base_url=ctx.base_url, scope_data=ctx.scope_data, client=ctx.client)
        loop = asyncio.get_running_loop()
        loop.call_later(self.delay_s, self._start, operation, bulk_ctx, info, document)
        return {"bulkOperation": operation, "userErrors": []}

    def _start(self, operation: dict[str, Any], ctx: Context, info: Any, document: Any) -> None:
        """Run the query in a worker thread (a large shop's keeps the API answering)."""
        if operation["status"] != "CREATED":
            return  # canceled meanwhile
        operation["status"] = "RUNNING"
        running = asyncio.get_running_loop().run_in_executor(None, self._write, operation, ctx,
                                                             info, document)
        running.add_done_callback(lambda done: self._finish(done, operation, ctx))

    def _finish(self, done: asyncio.Future[tuple[str | None, str | None]],
                operation: dict[str, Any], ctx: Context) -> None:
        error = done.exception()
        if error is not None:  # a bug of the sandbox's, shown as Shopify shows its own
            log.error("bulk operation %s failed", operation["id"], exc_info=error)
            self._fail(operation, ctx, "INTERNAL_SERVER_ERROR")
            return
        code, url = done.result()
        if code is not None:
            self._fail(operation, ctx, code)
            return
        asyncio.get_running_loop().call_later(self.delay_s, self._complete, operation, url,
                                              ctx)

    def _fail(self, operation: dict[str, Any], ctx: Context, code: str) -> None:
        if operation["status"] != "RUNNING":
            return
        operation.update(errorCode=code, status="FAILED", completedAt=g.iso(time.time()))
        ctx.app.bulk_finished(operation)

    def _write(self, operation: dict[str, Any], ctx: Context, info: Any, document: Any
               ) -> tuple[str | None, str | None]:
        """The result file; returns (an error code or None, the file's url or None)."""
        document = _with_parent_ids(info.schema, document)
        result = execute_sync(info.schema, document, context_value=ctx,
                         field_resolver=ctx.app.resolver(ctx.version),
                         type_resolver=type_resolver)
        if result.errors:
            denied = any((e.extensions or {}).get("code") == "ACCESS_DENIED"
                         for e in result.errors)
            return ("ACCESS_DENIED" if denied else "INTERNAL_SERVER_ERROR"), None
        name = f"{operation['id'].rsplit('/', 1)[1]}.jsonl"
        out = tempfile.TemporaryFile()  # noqa: SIM115 (kept open: it is served later)
        objects = roots = 0
        for line in flatten(info.schema, document, result.data or {}):
            out.write(orjson.dumps(line) + b"\n")
            objects += 1
            roots += "__parentId" not in line
        out.flush()
        self.files[f"{ctx.shop.name}/{name}"] = out
        operation.update(objectCount=str(objects), rootObjectCount=str(roots),
                         fileSize=str(out.tell()) if objects else None)
        return None, f"{ctx.base_url}/_sandbox/bulk/{ctx.shop.name}/{name}" if objects else None

    def read(self, name: str, chunk: int = 1 << 16) -> Iterator[bytes] | None:
        """A result file's bytes, in chunks (None: no such file). Positional reads, so that
        two downloads of one file do not move each other's place."""
        file = self.files.get(name)
        if file is None:
            return None

        def chunks() -> Iterator[bytes]:
            offset = 0
            while block := os.pread(file.fileno(), chunk, offset):
                offset += len(block)
                yield block
        return chunks()

    def _complete(self, operation: dict[str, Any], url: str | None, ctx: Context) -> None:
        if operation["status"] != "RUNNING":
            return
        operation.update(status="COMPLETED", url=url, completedAt=g.iso(time.time()))
        ctx.app.bulk_finished(operation)

    def cancel(self, operation_id: str) -> dict[str, Any]:
        operation = self.operations.get(operation_id)
        if operation is None:
            return {"bulkOperation": None, "userErrors": [
                {"__typename": "UserError", "field": ["id"],
                 "message": "Bulk operation does not exist"}]}
        if operation["status"] not in ("CREATED", "RUNNING"):
            return {"bulkOperation": operation, "userErrors": [
                {"__typename": "UserError", "field": None, "message":
                 f"A bulk operation cannot be canceled when it is {operation['status'].lower()}"}]}
        operation["status"] = "CANCELING"
        asyncio.get_running_loop().call_later(
            self.delay_s, lambda: operation.update(status="CANCELED",
                                                   completedAt=g.iso(time.time())))
        return {"bulkOperation": operation, "userErrors": []}


def _fields(selection_set: Any) -> Iterator[FieldNode]:
    for node in selection_set.selections if selection_set else ():
        if isinstance(node, FieldNode):
            yield node
        elif isinstance(node, InlineFragmentNode):
            yield from _fields(node.selection_set)


def _connection_nodes(named: Any, field: FieldNode) -> Iterator[tuple[Any, FieldNode]]:
    """The node selections of a connection field (``nodes`` or ``edges { node }``)."""
    node_type = get_named_type(named.fields["nodes"].type)
    for child in _fields(field.selection_set):
        if child.name.value == "nodes":
            yield node_type, child
        elif child.name.value == "edges":
            yield from ((node_type, inner) for inner in _fields(child.selection_set)
                        if inner.name.value == "node")


def _rule_errors(schema: Any, document: Any) -> list[str]:
    """Shopify's bulk rules: connections, how many, how deep."""
    counted: list[int] = []

    def walk(parent: Any, selection_set: Any, depth: int) -> None:
        for field in _fields(selection_set):
            definition = getattr(parent, "fields", {}).get(field.name.value)
            if definition is None:
                continue
            named = get_named_type(definition.type)
            if is_connection(named):
                counted.append(depth + 1)
                for node_type, node in _connection_nodes(named, field):
                    walk(node_type, node.selection_set, depth + 1)
            elif field.selection_set:
                walk(named, field.selection_set, depth)

    for definition in document.definitions:
        walk(schema.query_type, definition.selection_set, 0)
    if not counted:
        return ["Bulk queries must contain at least one connection."]
    if len(counted) > MAX_CONNECTIONS:
        return [f"Bulk queries cannot contain more than {MAX_CONNECTIONS} connections."]
    if max(counted) > MAX_DEPTH + 1:
        return [f"Bulk queries cannot contain connections nested more than {MAX_DEPTH} "
                "levels deep."]
    return []


def _copy(node: FieldNode, selection_set: SelectionSetNode) -> FieldNode:
    return FieldNode(alias=node.alias, name=node.name, arguments=node.arguments,
                     directives=node.directives, selection_set=selection_set)


def _with_parent_ids(schema: Any, document: Any) -> Any:
    """The query with ``id`` selected on every object holding a nested connection."""
    definitions = []
    for definition in document.definitions:
        fields = {key: getattr(definition, key) for key in definition.keys}
        if isinstance(definition, OperationDefinitionNode):
            fields["selection_set"] = _fix(schema.query_type, definition.selection_set)
        definitions.append(type(definition)(**fields))
    return DocumentNode(definitions=tuple(definitions))


def _fix(parent: Any, selection_set: Any) -> SelectionSetNode:
    selections, holds_connection = [], False
    for node in selection_set.selections:
        definition = getattr(parent, "fields", {}).get(node.name.value) \
            if isinstance(node, FieldNode) else None
        if definition is not None and node.selection_set:
            named = get_named_type(definition.type)
            if is_connection(named):
                holds_connection = True
                node = _copy(node, _fix_connection(named, node.selection_set))
            else:
                node = _copy(node, _fix(named, node.selection_set))
        selections.append(node)
    selected = {n.name.value for n in selections if isinstance(n, FieldNode) and not n.alias}
    if holds_connection and "id" not in selected and "id" in getattr(parent, "fields", {}):
        selections.append(FieldNode(name=NameNode(value="id"), arguments=(), directives=()))
    return SelectionSetNode(selections=tuple(selections))


def _fix_connection(named: Any, selection_set: Any) -> SelectionSetNode:
    node_type = get_named_type(named.fields["nodes"].type)
    out = []
    for child in selection_set.selections:
        if isinstance(child, FieldNode) and child.name.value == "nodes":
            child = _copy(child, _fix(node_type, child.selection_set))
        elif isinstance(child, FieldNode) and child.name.value == "edges":
            child = _copy(child, SelectionSetNode(selections=tuple(
                _copy(e, _fix(node_type, e.selection_set))
                if isinstance(e, FieldNode) and e.name.value == "node" else e
                for e in (child.selection_set.selections if child.selection_set else ()))))
        out.append(child)
    return SelectionSetNode(selections=tuple(out))


def flatten(schema: Any, document: Any, data: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The JSONL lines of a bulk result: each node of a connection a line, after it the lines
    of its nested connections' nodes, each with ``__parentId``."""
    yield from _lines(schema.query_type, document.definitions[0].selection_set, data)


def _lines(parent: Any, selection_set: Any, obj: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Takes the connections out of ``obj`` and yields their nodes' lines."""
    found: list[tuple[Any, FieldNode, list[Any]]] = []
    for field in _fields(selection_set):
        definition = getattr(parent, "fields", {}).get(field.name.value)
        if definition is None or key_of(field) not in obj:
            continue
        named = get_named_type(definition.type)
        if not is_connection(named):
            continue
        value = obj.pop(key_of(field)) or {}
        for child in _fields(field.selection_set):
            if child.name.value == "nodes":
                found.append((named, child, value.get(key_of(child)) or []))
            elif child.name.value == "edges":
                for node in _fields(child.selection_set):
                    if node.name.value == "node":
                        found.append((named, node, [e.get(key_of(node)) for e in
                                                    value.get(key_of(child)) or []]))
    for named, node, items in found:
        node_type = get_named_type(named.fields["nodes"].type)
        for item in items:
            if item is None:
                continue
            children = list(_lines(node_type, node.selection_set, item))
            yield item
            for line in children:
                line.setdefault("__parentId", item.get("id"))
                yield line


def key_of(node: FieldNode) -> str:
    return node.alias.value if node.alias else node.name.value
