"""Reading a stream declared with a GraphQL request (``framework.declarative.graphql``).

:class:`GraphQLApi` sends queries to one account's endpoint under its cost bucket
(``framework.engine.cost``): it waits before a query the bucket cannot hold, retries a
throttled answer once the restore has refilled what the query asks, and turns any other
GraphQL ``errors`` into a one-line error that fails the stream (not the read).

:func:`read_graphql` reads a stream's Relay connection page by page (``first``/``after``),
completes each node's nested connections that have more than their first page, and yields
:class:`framework.engine.reader.Page` events like the HTTP reader does, so the coordinator
(``framework.engine.source``) writes them and checkpoints the same way.

Exact under live changes: the query sorts by the cursor field (the spec's ``sortKey``), the
filter bounds the read below by the saved cursor (``>=``, so the boundary is read again and
nothing at it is lost) and above by the read's start. A record changed during the read gets a
newer cursor: Relay cursors name a position in the sort order, not an offset, so the change
moves the record later (read in its new version) or past the upper bound (read by the next
run, which starts at the cursor saved, below the bound), and no other record moves. The upper
bound is what makes the read end under a stream of changes.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from framework.declarative.formats import CURSOR_FORMATS, format_utc
from framework.declarative.graphql import GraphQLClient, GraphQLRequest, query_text
from framework.declarative.paginators import dig
from framework.declarative.spec import Stream
from framework.engine.cost import CostBucket, read_cost
from framework.engine.http import HttpClient, _snippet
from framework.engine.reader import Hook, Page, Unit, _prepare, _serialize, horizon
from framework.errors import ConnectorError

log = logging.getLogger("tajo.graphql")

_UNKNOWN_FIELD = re.compile(r"Cannot query field ['\"](\w+)['\"] on type ['\"](\w+)['\"]")


class GraphQLApi:
    """One account's GraphQL endpoint: queries paced by the account's cost bucket."""

    def __init__(self, client: HttpClient, spec: GraphQLClient) -> None:
        self.client = client
        self.spec = spec
        self.url = client.base_url + spec.endpoint
        # The client's own report of waits (logs, and the RATE_LIMITED statuses of a read).
        self.bucket = CostBucket(on_wait=client.on_wait or _log_wait)
        #: The requested cost each query text last had: what the bucket must hold before it
        #: runs again (unknown the first time: it is sent, and its answer says).
        self.estimates: dict[str, float] = {}
        self.throttled = 0  # throttled answers, in all
        #: Held by the stream whose bulk operation runs (``framework.engine.bulk``).
        self.bulk_lock = threading.Lock()

    def run(self, query: str, variables: dict[str, Any], *, what: str,
            idempotent: bool = True) -> dict[str, Any]:
        """The ``data`` of a query's answer.

        Raises:
            ConnectorError: GraphQL errors (one line: the first error, what it means),
                throttled too many times in a row, or an HTTP failure.
        """
        in_a_row = 0
        while True:
            # A query not sent before is taken to cost as much as the dearest one sent: its
            # first answer says what it asks.
            cost = self.estimates.get(query, max(self.estimates.values(), default=0.0))
            self.bucket.take(cost)
            try:
                status, answer = self.client.send(
                    "POST", self.spec.endpoint, json={"query": query, "variables": variables},
                    idempotent=idempotent)
            except BaseException:
                self.bucket.settle(cost, None)
                raise
            reading = read_cost(answer, self.spec.cost)
            self.bucket.settle(cost, reading)
            if reading is not None and reading.requested is not None:
                self.estimates[query] = reading.requested
            if status >= 400:
                raise self.client.client_error("POST", self.url, status, answer)
            errors = answer.get("errors") if isinstance(answer, dict) else None
            if errors and self._throttled(errors):
                in_a_row += 1
                self.throttled += 1
                if in_a_row > self.spec.max_throttled:
                    raise ConnectorError(f"POST {self.url} ({what}) was throttled {in_a_row} "
                                         "times in a row; another app may be using the points, "
                                         "try again later", "transient_error")
                if reading is None or reading.available is None:  # no model: back off
                    self.bucket.wait(random.uniform(0.5, 1.0) * min(30, 2 ** in_a_row),
                                      "throttled; retrying")
                continue  # take() waits until the restore has refilled the requested cost
            if errors:
                raise graphql_error(self.url, what, errors)
            data = answer.get("data") if isinstance(answer, dict) else None
            if not isinstance(data, dict):
                raise ConnectorError(f"POST {self.url} ({what}) answered without data: "
                                     f"{_snippet(str(answer), 200)}", "system_error")
            return data

    def _throttled(self, errors: Any) -> bool:
        return isinstance(errors, list) and any(
            isinstance(e, dict) and dig(e, "extensions.code") == self.spec.throttled_code
            for e in errors)


def graphql_error(url: str, what: str, errors: Any) -> ConnectorError:
    """The one-line error of a GraphQL answer's ``errors``: the first, what it means, and how
    many more. An unknown field is a config error (the API version in the URL lacks it)."""
    items = errors if isinstance(errors, list) else [errors]
    first = items[0] if items else {}
    message = str(first.get("message") if isinstance(first, dict) else first)
    more = f" (and {len(items) - 1} more)" if len(items) > 1 else ""
    unknown = _UNKNOWN_FIELD.search(message)
    if unknown:
        field, typename = unknown.groups()
        return ConnectorError(
            f"the API at {url} has no field {field!r} on {typename} ({what}): its version "
            f"may be older or newer than the query's; check the API version in the config: "
            f"{_snippet(message, 200)}{more}", "config_error")
    code = dig(first, "extensions.code") if isinstance(first, dict) else None
    kind = f" {code}" if code else ""
    return ConnectorError(f"the API at {url} refused {what} with GraphQL error{kind}: "
                          f"{_snippet(message, 200)}{more}", "system_error")


def _log_wait(seconds: float, reason: str) -> None:
    if seconds >= 1:
        log.info("waiting %.1fs: %s", seconds, reason)


_APIS: weakref.WeakKeyDictionary[HttpClient, GraphQLApi] = weakref.WeakKeyDictionary()
_APIS_LOCK = threading.Lock()


def api_for(client: HttpClient, spec: GraphQLClient | None) -> GraphQLApi:
    """The one :class:`GraphQLApi` (and cost bucket) of an account's client: every stream of
    the account draws on one bucket, as the API counts it."""
    with _APIS_LOCK:
        api = _APIS.get(client)
        if api is None:
            api = _APIS[client] = GraphQLApi(client, spec or GraphQLClient())
        return api


def nodes_of(connection: Any, where: str) -> tuple[list[dict[str, Any]], bool, str | None]:
    """A Relay connection's nodes (``nodes`` or ``edges { node }``), whether it has a next
    page, and its end cursor. An object that is no connection (neither ``nodes`` nor
    ``edges``: e.g. the account's own details) is one record, on the only page."""
    if not isinstance(connection, dict):
        raise ConnectorError(f"{where}: the answer has no connection there (got "
                             f"{type(connection).__name__})", "system_error")
    if "nodes" not in connection and "edges" not in connection:
        return [connection], False, None
    if "nodes" in connection:
        nodes = connection["nodes"] or []
    else:
        nodes = [e["node"] for e in connection.get("edges") or []
                 if isinstance(e, dict) and isinstance(e.get("node"), dict)]
    info = connection.get("pageInfo") or {}
    return list(nodes), bool(info.get("hasNextPage")), info.get("endCursor")


def cursor_filter(unit: Unit, request: GraphQLRequest, lower: str | None,
                  upper: str | None) -> dict[str, Any]:
    """The filter variable (``incremental.param``): its static value, then the bounds."""
    incremental = unit.stream.incremental
    if request.filter is None or incremental is None:
        return {}
    name, spec = incremental.param, request.filter
    write = CURSOR_FORMATS[incremental.format]
    parts = [request.variables.get(name)]
    if lower:
        parts.append(spec.lower.replace("{value}", write(lower)))
    if upper and spec.upper:
        parts.append(spec.upper.replace("{value}", write(upper)))
    text = spec.join.join(str(p) for p in parts if p)
    return {name: text} if text else {}


class Reader:
    """What one unit's GraphQL read needs: its API, request and query texts."""

    def __init__(self, unit: Unit, spec_path: Path, client_spec: GraphQLClient | None,
                 hooks: dict[str, Hook]) -> None:
        assert unit.stream.request is not None
        self.unit = unit
        self.request: GraphQLRequest = unit.stream.request
        self.spec_path = spec_path
        self.client_spec = client_spec or GraphQLClient()
        self.hooks = hooks
        self.api = api_for(unit.client, client_spec)
        self.page_size = min(self.request.page_size, unit.settings.page_size)

    def text(self, name: str) -> str:
        return query_text(self.spec_path, name)

    def upper(self) -> str:
        """The read's upper bound: now, by the server's clock when an answer has told it."""
        return format_utc(horizon(self.unit.client))

    def complete(self, nodes: list[dict[str, Any]]) -> None:
        """Each node's declared nested connections as plain lists, every page of them."""
        for nested in self.request.nested:
            query = self.text(nested.query)
            for node in nodes:
                value = node.get(nested.field)
                if not isinstance(value, dict):
                    continue
                items, more, after = nodes_of(value, f"{self.unit.stream.name}: "
                                                     f"{nested.field}")
                while more:
                    if "id" not in node:
                        raise ConnectorError(f"stream {self.unit.stream.name!r}: a node has "
                                             f"more {nested.field} but no id to page them by; "
                                             "select id in its query", "system_error")
                    data = self.api.run(query, {"id": node["id"], "first": nested.page_size,
                                                "after": after},
                                        what=f"{nested.query} for {node['id']}")
                    page, more, after = nodes_of(dig(data, nested.connection),
                                                 f"{nested.query}: {nested.connection}")
                    items.extend(page)
                node[nested.field] = items

    def page(self, nodes: list[dict[str, Any]], cursor: str | None, done: bool,
             marks: dict[str, Any] | None = None) -> Page:
        """The page event of ``nodes`` (prepared, filtered, serialized)."""
        unit = self.unit
        for record in nodes:
            _prepare(unit, record)
        if unit.keep is not None:
            nodes = [r for r in nodes if unit.keep(r)]
        lines, counts = _serialize(unit, nodes, self.hooks)
        return Page(unit, 0, lines, counts, cursor, done, marks=marks)

    def high(self, nodes: list[dict[str, Any]]) -> str | None:
        incremental = self.unit.stream.incremental
        if incremental is None:
            return None
        return max((v for r in nodes if (v := r.get(incremental.cursor_field))), default=None)

    def paged(self, stopped: Callable[[], bool]) -> Iterator[Page]:
        """The stream's connection, page after page, from the slice's lower bound."""
        request, unit = self.request, self.unit
        query = self.text(request.query)
        lower = unit.slices[0].lower
        variables = {**request.variables, request.first_variable: self.page_size,
                     **cursor_filter(unit, request, lower, self.upper())}
        after: str | None = None
        while not stopped():
            data = self.api.run(query, {**variables, request.after_variable: after},
                                what=f"{request.query} (stream {unit.stream.name!r})")
            nodes, more, following = nodes_of(dig(data, request.connection),
                                              f"{request.query}: {request.connection}")
            if more and (not following or following == after):
                raise ConnectorError(f"pagination loop in stream {unit.stream.name!r}: "
                                     f"pageInfo.endCursor {following!r} repeats",
                                     "system_error", unit.stream.name)
            self.complete(nodes)
            yield self.page(nodes, self.high(nodes), not more)
            if not more:
                return
            after = following


def check_stream(client: HttpClient, spec_path: Path, client_spec: GraphQLClient | None,
                 stream: Stream) -> None:
    """Run a GraphQL stream's page query for one record: what ``check`` asks of it (the
    API knows every field, the credentials may read it).

    Raises:
        ConnectorError: what the API said, in one line.
    """
    request = stream.request
    assert request is not None
    api = api_for(client, client_spec)
    api.run(query_text(spec_path, request.query),
            {**request.variables, request.first_variable: 1},
            what=f"{request.query} (stream {stream.name!r})")


def fetch_by_ids(unit: Unit, ids: list[str], *, spec_path: Path,
                 client_spec: GraphQLClient | None) -> tuple[list[dict[str, Any]],
                                                            dict[str, str]]:
    """The records of spooled ids (``request.by_ids``), whole (nested connections paged),
    and the API's id of each spooled id."""
    request = unit.stream.request
    assert request is not None and request.by_ids is not None
    by_ids = request.by_ids
    named = {i: by_ids.id_template.replace("{id}", i) for i in ids}
    reader = Reader(unit, spec_path, client_spec, {})
    data = reader.api.run(reader.text(by_ids.query), {"ids": list(named.values())},
                          what=f"{by_ids.query} (stream {unit.stream.name!r})")
    found = dig(data, by_ids.path)
    nodes = [n for n in found if isinstance(n, dict)] if isinstance(found, list) else []
    reader.complete(nodes)
    return nodes, named


def read_graphql(unit: Unit, spec_path: Path, client_spec: GraphQLClient | None,
                 hooks: dict[str, Hook], stopped: Callable[[], bool]) -> Iterator[Page]:
    """Read a GraphQL stream's unit: as a bulk operation on a backfill the spec sends to
    bulk (``framework.engine.bulk``), else page by page."""
    from framework.engine.bulk import read_bulk, wanted  # bulk builds on this module

    reader = Reader(unit, spec_path, client_spec, hooks)
    if wanted(reader):
        yield from read_bulk(reader, stopped)
    else:
        yield from reader.paged(stopped)
