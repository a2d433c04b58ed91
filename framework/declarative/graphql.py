"""What a spec declares for a GraphQL API: the client's endpoint, cost reader and bulk
operations (``client.graphql``), and a stream's query (``request: {"kind": "graphql", ...}``).

A stream's records are the nodes of one Relay connection (``nodes`` or ``edges { node }``,
paged with ``first``/``after`` and ``pageInfo { hasNextPage endCursor }``). Its incremental
cursor goes into a query variable as a filter made of templates (``{value}`` is the cursor),
with a lower bound (the saved cursor) and an upper bound (the read's start): the engine
(``framework.engine.graphql``) reads sorted by the cursor, so a record changed during the read
moves past the upper bound and is read by the next run, which starts at (``>=``) the cursor
saved.

Query files resolve like record schemas: relative to the spec file's folder, or
``package.module:relative/path`` for a file of an installed package (a plugin's queries live
in its package, its spec may be elsewhere).
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CostPaths(_Strict):
    """Where an answer says what a query cost and how full the API's points bucket is
    (dotted paths; ``path`` from the answer's root, the others from the object there)."""

    path: str = "extensions.cost"
    requested: str = "requestedQueryCost"
    actual: str = "actualQueryCost"
    maximum: str = "throttleStatus.maximumAvailable"
    available: str = "throttleStatus.currentlyAvailable"
    restore_rate: str = "throttleStatus.restoreRate"


class BulkClient(_Strict):
    """How the API runs a bulk operation: a ``start`` mutation taking ``$query: String!``
    whose answer holds the operation ``{id status}`` at ``operation`` (and its refusals at
    ``user_errors``), and a ``poll`` query taking ``$id: ID!`` whose answer holds
    ``{id status url errorCode}`` at ``poll_path``. The result at ``url`` is JSON lines; a
    nested node's line names its parent's id in ``parent_key``."""

    start: str
    operation: str
    user_errors: str | None = None
    poll: str
    poll_path: str
    parent_key: str = "__parentId"
    done: list[str] = Field(default=["COMPLETED"], min_length=1)
    #: Statuses after which the operation is started over (an operation that failed,
    #: was canceled, or whose result expired).
    failed: list[str] = Field(default=["FAILED", "CANCELED", "EXPIRED"], min_length=1)
    poll_every_s: float = Field(default=1.0, gt=0, le=60)
    #: Seconds a bulk operation may take before the read fails (it is resumed next run).
    timeout_s: float = Field(default=6 * 3600, gt=0)


class GraphQLClient(_Strict):
    """The GraphQL API of a client: its ``endpoint`` (a path after ``base_url``), where answers
    carry their cost, the error code of a throttled answer, and its bulk operations."""

    endpoint: str = Field(default="", pattern=r"^(/.*)?$")
    cost: CostPaths | None = CostPaths()
    throttled_code: str = "THROTTLED"
    #: Throttled answers in a row before the stream fails.
    max_throttled: int = Field(default=20, ge=1)
    bulk: BulkClient | None = None


class Filter(_Strict):
    """The incremental filter put in the query variable ``incremental.param``: ``lower``
    with the cursor to start at, ``upper`` with the read's start, joined by ``join`` (and
    after any static value of that variable)."""

    lower: str = Field(pattern=r"\{value\}")
    upper: str | None = Field(default=None, pattern=r"\{value\}")
    join: str = " AND "


class Nested(_Strict):
    """A connection inside each node (e.g. an order's lines): the field holding it, and a
    ``query`` (``$id: ID!``, ``$first: Int!``, ``$after: String``) whose ``connection`` path
    pages the rest when the node's first page says ``hasNextPage``."""

    field: str
    query: str
    connection: str
    page_size: int = Field(default=250, ge=1, le=1000)


class Count(_Strict):
    """A query (taking the filter variable, if any) whose ``path`` holds how many records the
    stream would read."""

    query: str
    path: str


class Bulk(_Strict):
    """Read the stream as a bulk operation on a backfill (a read with no saved cursor) when
    ``count`` says at least ``min_records`` (no count: always on a backfill). ``query`` is
    the text the API runs; ``{filter}`` in it is replaced by the cursor filter. ``children``
    maps the ``__typename`` of a nested line to the parent's list field it joins."""

    query: str
    children: dict[str, str] = Field(default_factory=dict)
    count: Count | None = None
    min_records: int = Field(default=0, ge=0)


class ByIds(_Strict):
    """How the records webhooks named are fetched (a stream's ``live`` reads): a ``query``
    taking ``$ids: [ID!]!`` whose ``path`` in ``data`` lists the nodes (``null`` for an id
    that is gone: written as a tombstone). ``id_template`` makes the API's id of a spooled id
    (e.g. a global id of a number); the record's ``live.key`` field holds it."""

    query: str
    path: str = "nodes"
    id_template: str = Field(default="{id}", pattern=r"\{id\}")


class GraphQLRequest(_Strict):
    """A stream read with a GraphQL query (``request.kind: graphql``)."""

    kind: Literal["graphql"]
    query: str
    #: Dotted path in ``data`` to the connection whose nodes are the records.
    connection: str
    variables: dict[str, Any] = Field(default_factory=dict)
    page_size: int = Field(default=250, ge=1, le=1000)
    first_variable: str = "first"
    after_variable: str = "after"
    filter: Filter | None = None
    #: The query sorts by the cursor field (e.g. ``sortKey: UPDATED_AT``), so the state may
    #: move after each page; ``false``: only once the stream is read to its end.
    sorted_by_cursor: bool = True
    nested: list[Nested] = Field(default_factory=list)
    bulk: Bulk | None = None
    by_ids: ByIds | None = None

    def files(self) -> list[str]:
        """Every query file the request names."""
        found = [self.query, *(n.query for n in self.nested)]
        if self.by_ids is not None:
            found.append(self.by_ids.query)
        if self.bulk is not None:
            found.append(self.bulk.query)
            if self.bulk.count is not None:
                found.append(self.bulk.count.query)
        return found


def query_path(spec: Path, name: str) -> Path:
    """The file a spec names: beside the spec, or ``module:path`` in an installed package."""
    module, colon, rest = name.partition(":")
    if not colon:
        return spec.parent / name
    found = importlib.util.find_spec(module)
    if found is None or not found.submodule_search_locations:
        raise ValueError(f"{name!r}: no package {module!r} (give a path beside the spec, or "
                         "package.module:path of an installed package)")
    return Path(next(iter(found.submodule_search_locations))) / rest


@cache
def _read(path: Path) -> str:
    return path.read_text()


def query_text(spec: Path, name: str) -> str:
    """The text of a query file the spec at ``spec`` names (read once)."""
    return _read(query_path(spec, name))


def check_files(request: GraphQLRequest, client: GraphQLClient | None, spec: Path,
                where: str) -> None:
    """Every query file of a stream's request (and the client's bulk queries when the stream
    uses bulk) exists; the error names the first that does not.

    Raises:
        ValueError: with the JSON path and the file.
    """
    files = list(request.files())
    if request.bulk is not None:
        if client is None or client.bulk is None:
            raise ValueError(f"{where}.request.bulk: the client declares no bulk operations "
                             "(client.graphql.bulk)")
        files += [client.bulk.start, client.bulk.poll]
    for name in files:
        try:
            path = query_path(spec, name)
        except ValueError as exc:
            raise ValueError(f"{where}.request: {exc}") from None
        if not path.is_file():
            raise ValueError(f"{where}.request: query file {name!r} not found ({path})")


def graphql_string(text: str) -> str:
    """``text`` escaped for a GraphQL string literal between double quotes."""
    return text.replace("\\", "\\\\").replace('"', '\\"')
