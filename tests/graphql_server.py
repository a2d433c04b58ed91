"""A tiny GraphQL API for the engine's tests: a made-up schema (customers, orders with their
lines) executed by graphql-core behind a real HTTP server (starlette on uvicorn, on loopback).

It has what the engine must cope with in a GraphQL API, none of it a real platform's: Relay
connections with keyset cursors, a search filter on ``updated_at``, a leaky bucket of query
cost (requested before the query, the unused part refunded, ``THROTTLED`` answers when it is
short), validation errors for unknown fields, and bulk operations with a JSON lines result.
"""

from __future__ import annotations

import base64
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import uvicorn
from graphql import (
    FieldNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    VariableNode,
    build_schema,
    execute,
    parse,
    validate,
)
from graphql.language import IntValueNode
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from framework.declarative.formats import format_utc
from framework.net import listen

SDL = """
interface Node { id: ID! }
type PageInfo { hasNextPage: Boolean! endCursor: String }
type Customer implements Node { id: ID! email: String updatedAt: String! }
type LineItem implements Node { id: ID! sku: String quantity: Int }
type Order implements Node {
  id: ID! name: String updatedAt: String!
  lineItems(first: Int, after: String): LineItemConnection!
}
type CustomerConnection { nodes: [Customer!]! pageInfo: PageInfo! }
type OrderEdge { node: Order! cursor: String! }
type OrderConnection { edges: [OrderEdge!]! pageInfo: PageInfo! }
type LineItemConnection { nodes: [LineItem!]! pageInfo: PageInfo! }
type Count { count: Int! }
type Store { id: ID! name: String! updatedAt: String! }
type BulkOperation implements Node { id: ID! status: String! url: String errorCode: String }
type UserError { message: String! }
type BulkRunPayload { operation: BulkOperation userErrors: [UserError!]! }
type Query {
  customers(first: Int, after: String, query: String, sortKey: String): CustomerConnection!
  orders(first: Int, after: String, query: String): OrderConnection!
  customersCount(query: String): Count!
  store: Store!
  node(id: ID!): Node
  nodes(ids: [ID!]!): [Node]!
}
type Mutation { bulkRun(query: String!): BulkRunPayload! }
"""

SCHEMA = build_schema(SDL)
_BOUND = re.compile(r"updated_at:(>=|<=)'([^']+)'")


def _cursor(record: dict[str, Any]) -> str:
    return base64.b64encode(orjson.dumps([record["updatedAt"], record["id"]])).decode()


def _connection(records: list[dict[str, Any]], first: int | None, after: str | None,
                query: str | None, edges: bool = False) -> dict[str, Any]:
    """A keyset-paged connection of ``records`` sorted by (updatedAt, id), as Relay cursors
    page: ``after`` names a position in the order, not an offset."""
    rows = sorted(records, key=lambda r: (r["updatedAt"], r["id"]))
    for op, value in _BOUND.findall(query or ""):
        rows = [r for r in rows if (r["updatedAt"] >= value if op == ">=" else
                                    r["updatedAt"] <= value)]
    if after:
        key = tuple(orjson.loads(base64.b64decode(after)))
        rows = [r for r in rows if (r["updatedAt"], r["id"]) > key]
    page = rows if first is None else rows[:first]
    more = first is not None and len(rows) > first
    info = {"hasNextPage": more, "endCursor": _cursor(page[-1]) if page else None}
    if edges:
        return {"edges": [{"node": r, "cursor": _cursor(r)} for r in page], "pageInfo": info}
    return {"nodes": page, "pageInfo": info}


def requested_cost(selections: Any, variables: dict[str, Any]) -> int:
    """What a query asks of the bucket: an object 1, a connection 2 + first x its node."""
    total = 0
    for node in selections:
        if isinstance(node, InlineFragmentNode):
            total += requested_cost(node.selection_set.selections, variables)
            continue
        if not isinstance(node, FieldNode) or node.selection_set is None:
            continue
        first = next((a.value for a in node.arguments or () if a.name.value == "first"), None)
        if isinstance(first, VariableNode):
            first = variables.get(first.name.value)
        elif isinstance(first, IntValueNode):
            first = int(first.value)
        if first is None:
            total += 1 + requested_cost(node.selection_set.selections, variables)
            continue
        inner = 0
        for sub in node.selection_set.selections or ():
            if isinstance(sub, FieldNode) and sub.name.value == "nodes" and sub.selection_set:
                inner = 1 + requested_cost(sub.selection_set.selections, variables)
            elif isinstance(sub, FieldNode) and sub.name.value == "edges" and sub.selection_set:
                inner = requested_cost(sub.selection_set.selections, variables)
        total += 2 + first * inner
    return total


def actual_cost(value: Any) -> int:
    """What an answer took: each object 1, each connection 2 + its nodes."""
    if isinstance(value, list):
        return sum(actual_cost(v) for v in value)
    if not isinstance(value, dict):
        return 0
    if "pageInfo" in value:
        nodes = value.get("nodes") or [e["node"] for e in value.get("edges") or []]
        return 2 + sum(actual_cost(n) for n in nodes)
    return 1 + sum(actual_cost(v) for k, v in value.items() if k != "pageInfo")


@dataclass
class Bucket:
    """The server's leaky bucket of points."""

    maximum: float
    rate: float
    available: float
    at: float = field(default_factory=time.monotonic)

    def level(self) -> float:
        now = time.monotonic()
        self.available = min(self.maximum, self.available + self.rate * (now - self.at))
        self.at = now
        return self.available

    def status(self) -> dict[str, Any]:
        return {"maximumAvailable": self.maximum, "currentlyAvailable": int(self.available),
                "restoreRate": self.rate}


@dataclass
class Operation:
    id: str
    query: str
    status: str = "RUNNING"
    ready_at: float = 0.0
    path: Path | None = None
    error: str | None = None


class Server:
    """The API, its data and its counters. ``after_answer`` runs after each paged answer
    (tests change records during a read there)."""

    def __init__(self, folder: Path, *, maximum: float = 1000, rate: float = 10_000,
                 available: float | None = None) -> None:
        self.folder = folder
        self.lock = threading.Lock()
        self.bucket = Bucket(maximum, rate, maximum if available is None else available)
        self.customers: dict[str, dict[str, Any]] = {}
        self.orders: dict[str, dict[str, Any]] = {}
        self.operations: dict[str, Operation] = {}
        self.bulk_seconds = 0.2
        self.one_bulk_at_a_time = True  # as older API versions allow
        self.requests: list[tuple[str, dict[str, Any]]] = []  # (query, variables)
        self.throttled = 0
        self.points = 0.0
        self.after_answer: Callable[[Server, dict[str, Any]], None] | None = None
        self.url = ""

    # --- data ----------------------------------------------------------------------------

    def add_customer(self, number: int, updated: str) -> None:
        cid = f"gid://test/Customer/{number}"
        self.customers[cid] = {"__typename": "Customer", "id": cid, "updatedAt": updated,
                               "email": f"c{number}@example.com"}

    def touch(self, cid: str, email: str) -> None:
        """Change a customer now (its updatedAt becomes the server's second)."""
        with self.lock:
            self.customers[cid] = {**self.customers[cid], "email": email,
                                   "updatedAt": format_utc(time.time())}

    def add_order(self, number: int, updated: str, lines: int) -> None:
        oid = f"gid://test/Order/{number}"
        items = [{"__typename": "LineItem", "id": f"gid://test/LineItem/{number}-{i}",
                  "sku": f"S{number}-{i}", "quantity": i + 1} for i in range(lines)]
        self.orders[oid] = {
            "__typename": "Order", "id": oid, "name": f"#{number}", "updatedAt": updated,
            "lineItems": lambda info, first=None, after=None, _i=items: _connection(
                [{**x, "updatedAt": x["id"]} for x in _i], first, after, None)}

    # --- resolvers -----------------------------------------------------------------------

    def root(self) -> dict[str, Any]:
        return {
            "customers": lambda info, first=None, after=None, query=None, sortKey=None:
                _connection(list(self.customers.values()), first, after, query),
            "orders": lambda info, first=None, after=None, query=None:
                _connection(list(self.orders.values()), first, after, query, edges=True),
            "customersCount": lambda info, query=None: {"count": len(
                _connection(list(self.customers.values()), None, None, query)["nodes"])},
            "node": lambda info, id: self._node(id),
            "nodes": lambda info, ids: [self._node(i) for i in ids],
            "store": lambda info: {"id": "Store/1", "name": "The store",
                                   "updatedAt": "2024-05-01T00:00:00Z"},
            "bulkRun": lambda info, query: self._bulk_run(query),
        }

    def _node(self, node_id: str) -> Any:
        if node_id in self.operations:
            op = self.operations[node_id]
            if op.status == "RUNNING" and time.monotonic() >= op.ready_at:
                self._finish(op)
            url = f"{self.url}/bulk/{op.id.rsplit('/', 1)[1]}" if op.path else None
            return {"__typename": "BulkOperation", "id": op.id, "status": op.status,
                    "url": url, "errorCode": op.error}
        return self.orders.get(node_id) or self.customers.get(node_id)

    def _bulk_run(self, query: str) -> dict[str, Any]:
        errors = validate(SCHEMA, parse(query))
        if errors:
            return {"operation": None, "userErrors": [{"message": errors[0].message}]}
        if self.one_bulk_at_a_time and any(op.status == "RUNNING"
                                           for op in self.operations.values()):
            return {"operation": None, "userErrors": [
                {"message": "A bulk operation for this app and account is already running"}]}
        op = Operation(f"gid://test/BulkOperation/{len(self.operations) + 1}", query,
                       ready_at=time.monotonic() + self.bulk_seconds)
        self.operations[op.id] = op
        return {"operation": {"id": op.id, "status": op.status}, "userErrors": []}

    def _finish(self, op: Operation) -> None:
        """Run a bulk query: one line per node, nested nodes with ``__parentId``."""
        result = execute(SCHEMA, parse(op.query), self.root())
        assert not result.errors, result.errors
        op.path = self.folder / f"bulk-{op.id.rsplit('/', 1)[1]}.jsonl"
        with op.path.open("wb") as out:
            for connection in (result.data or {}).values():
                for node in _nodes(connection):
                    _flatten(node, None, out)
        op.status = "COMPLETED"

    # --- HTTP ----------------------------------------------------------------------------

    async def graphql(self, request: Request) -> Response:
        body = orjson.loads(await request.body())
        query, variables = body["query"], body.get("variables") or {}
        with self.lock:
            self.requests.append((query, variables))
            document = parse(query)
            errors = validate(SCHEMA, document)
            if errors:
                return _json({"errors": [{"message": e.message} for e in errors]})
            operation = next(d for d in document.definitions
                             if isinstance(d, OperationDefinitionNode))
            requested = (10 if operation.operation.value == "mutation" else
                         requested_cost(operation.selection_set.selections, variables))
            if self.bucket.level() < requested:
                self.throttled += 1
                return _json({"errors": [{"message": "Throttled",
                                          "extensions": {"code": "THROTTLED"}}],
                              "extensions": {"cost": {"requestedQueryCost": requested,
                                                      "actualQueryCost": None,
                                                      "throttleStatus": self.bucket.status()}}})
            self.bucket.available -= requested
            result = execute(SCHEMA, document, self.root(), variable_values=variables)
            data = result.data
            actual = requested if operation.operation.value == "mutation" else actual_cost(data)
            self.bucket.available += requested - actual
            self.points += actual
            answer: dict[str, Any] = {"data": data, "extensions": {"cost": {
                "requestedQueryCost": requested, "actualQueryCost": actual,
                "throttleStatus": self.bucket.status()}}}
            if result.errors:
                answer["errors"] = [{"message": e.message} for e in result.errors]
        if self.after_answer is not None:
            self.after_answer(self, variables)
        return _json(answer)

    async def bulk_file(self, request: Request) -> Response:
        op = self.operations.get(f"gid://test/BulkOperation/{request.path_params['n']}")
        if op is None or op.path is None or not op.path.exists():
            return Response(status_code=404)
        return FileResponse(op.path, media_type="application/jsonl")

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/graphql", self.graphql, methods=["POST"]),
                                 Route("/bulk/{n}", self.bulk_file)])


def _nodes(connection: Any) -> list[dict[str, Any]]:
    if "nodes" in connection:
        return list(connection["nodes"])
    return [e["node"] for e in connection["edges"]]


def _is_connection(value: Any) -> bool:
    return isinstance(value, dict) and ("nodes" in value or "edges" in value)


def _flatten(node: dict[str, Any], parent: str | None, out: Any) -> None:
    own = {k: v for k, v in node.items() if not _is_connection(v)}
    if parent is not None:
        own["__parentId"] = parent
    out.write(orjson.dumps(own) + b"\n")
    for value in node.values():
        if _is_connection(value):
            for child in _nodes(value):
                _flatten(child, node["id"], out)


def _json(body: Any) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


class Running:
    """The server on a loopback port, in a thread, until :meth:`stop`."""

    def __init__(self, server: Server) -> None:
        self.server = server
        sock = listen("127.0.0.1", 0, {})
        port = sock.getsockname()[1]
        server.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(server.app(), log_level="warning", access_log=False,
                                lifespan="off")
        self.uvicorn = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.uvicorn.run, kwargs={"sockets": [sock]},
                                       daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.uvicorn.started and time.monotonic() < deadline:
            time.sleep(0.01)

    def stop(self) -> None:
        self.uvicorn.should_exit = True
        self.thread.join(5)
