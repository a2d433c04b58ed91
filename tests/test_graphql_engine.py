"""GraphQL as a request kind of the declarative engine, against a tiny GraphQL API
(``tests/graphql_server.py``: a made-up schema run by graphql-core on a real HTTP server):
Relay paging, nested connections, the incremental cursor under live changes, cost pacing,
throttled answers, GraphQL errors, and bulk operations (streamed, resumed after a kill)."""

from __future__ import annotations

import json
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from graphql_server import Running, Server

from framework.declarative.spec import SpecError
from framework.engine.bulk import BULK_KEY, reassemble
from framework.engine.source import HttpSource
from framework.errors import ConnectorError

CUSTOMER = {"type": "object", "properties": {
    "id": {"type": "string"}, "email": {"type": ["null", "string"]},
    "updatedAt": {"type": "string", "format": "date-time"}}}
ORDER = {"type": "object", "properties": {
    "id": {"type": "string"}, "name": {"type": "string"},
    "updatedAt": {"type": "string", "format": "date-time"},
    "lineItems": {"type": "array", "items": {"type": "object"}}}}

QUERIES = {
    "customers.graphql": """
query Customers($first: Int!, $after: String, $query: String) {
  customers(first: $first, after: $after, query: $query, sortKey: "UPDATED_AT") {
    nodes { id email updatedAt }
    pageInfo { hasNextPage endCursor }
  }
}""",
    "orders.graphql": """
query Orders($first: Int!, $after: String, $query: String) {
  orders(first: $first, after: $after, query: $query) {
    edges { node { id name updatedAt
      lineItems(first: 3) { nodes { id sku quantity } pageInfo { hasNextPage endCursor } } } }
    pageInfo { hasNextPage endCursor }
  }
}""",
    "order_lines.graphql": """
query Lines($id: ID!, $first: Int!, $after: String) {
  node(id: $id) { ... on Order {
    lineItems(first: $first, after: $after) { nodes { id sku quantity }
                                              pageInfo { hasNextPage endCursor } } } }
}""",
    "customers_count.graphql": "query($query: String) { customersCount(query: $query) { count } }",
    "customers_bulk.graphql": '{ customers(query: "{filter}") { nodes { id email updatedAt } } }',
    "orders_bulk.graphql": """{ orders { edges { node { id name updatedAt
      lineItems { nodes { __typename id sku quantity } } } } } }""",
    "bulk_start.graphql": """mutation($query: String!) {
  bulkRun(query: $query) { operation { id status } userErrors { message } } }""",
    "bulk_poll.graphql": """query($id: ID!) {
  node(id: $id) { ... on BulkOperation { id status url errorCode } } }""",
    "customers_by_id.graphql": """query($ids: [ID!]!) {
  nodes(ids: $ids) { ... on Customer { id email updatedAt } } }""",
    "store.graphql": "query { store { id name updatedAt } }",
    "bad.graphql": """query($first: Int!, $after: String) {
  customers(first: $first, after: $after) { nodes { id emailx } pageInfo { hasNextPage } } }""",
}

FILTER = {"lower": "updated_at:>='{value}'", "upper": "updated_at:<='{value}'"}
INCREMENTAL = {"cursor_field": "updatedAt", "param": "query", "format": "iso8601"}


def spec(streams: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": "gqltest", "kind": "source",
        "connectionSpecification": {"type": "object", "properties": {
            "api_url": {"type": "string"}, "token": {"type": "string", "airbyte_secret": True},
            "page_size": {"type": "integer"}, "start_date": {"type": "string"},
            "concurrency": {"type": "integer"}, "spool_path": {"type": "string"},
            "read_mode": {"type": "string"}}},
        "client": {"base_url": "{api_url}",
                   "auth": {"type": "header", "header": "X-Token", "config_field": "token"},
                   "graphql": {"endpoint": "/graphql", "bulk": {
                       "start": "queries/bulk_start.graphql",
                       "operation": "bulkRun.operation", "user_errors": "bulkRun.userErrors",
                       "poll": "queries/bulk_poll.graphql", "poll_path": "node",
                       "poll_every_s": 0.05}}},
        "streams": streams,
    }


def customers(**request: Any) -> dict[str, Any]:
    return {"name": "customers", "primary_key": ["id"], "schema": "customer.json",
            "incremental": INCREMENTAL,
            "request": {"kind": "graphql", "query": "queries/customers.graphql",
                        "connection": "customers", "filter": FILTER, **request}}


ORDERS = {"name": "orders", "primary_key": ["id"], "schema": "order.json",
          "request": {"kind": "graphql", "query": "queries/orders.graphql",
                      "connection": "orders", "page_size": 4,
                      "nested": [{"field": "lineItems", "query": "queries/order_lines.graphql",
                                  "connection": "node.lineItems", "page_size": 2}]}}


def make_source(folder: Path, streams: list[dict[str, Any]], hooks: dict[str, Any] | None = None,
                **extra: Any) -> HttpSource:
    (folder / "queries").mkdir(exist_ok=True)
    for name, text in QUERIES.items():
        (folder / "queries" / name).write_text(text)
    (folder / "customer.json").write_text(json.dumps(CUSTOMER))
    (folder / "order.json").write_text(json.dumps(ORDER))
    (folder / "spec.json").write_text(json.dumps({**spec(streams), **extra}))
    return HttpSource(folder / "spec.json", hooks=hooks)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Server]:
    server = Server(tmp_path)
    running = Running(server)
    try:
        yield server
    finally:
        running.stop()


def read(source: HttpSource, server: Server, state: dict[str, Any] | None = None,
         **config: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Messages of a read, and the last state of each stream."""
    out = b"".join(source.read({"api_url": server.url, "token": "t", **config},
                               source.configured_catalog(), state or {}))
    messages = [json.loads(line) for line in out.splitlines()]
    return messages, last_states(messages)


def last_states(messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {m["state"]["stream"]["stream_descriptor"]["name"]:
            m["state"]["stream"]["stream_state"] for m in messages if m["type"] == "STATE"}


def records(messages: list[dict[str, Any]], stream: str) -> list[dict[str, Any]]:
    return [m["record"]["data"] for m in messages
            if m["type"] == "RECORD" and m["record"]["stream"] == stream]


def seed_customers(server: Server, count: int, start: int = 1_700_000_000) -> None:
    from framework.declarative.formats import format_utc
    for n in range(count):
        server.add_customer(n, format_utc(start + n // 3))  # three to a second


# --- paging, nested connections, the cursor -------------------------------------------------

def test_a_connection_is_read_page_by_page_with_its_cursor(tmp_path: Path, api: Server) -> None:
    seed_customers(api, 23)
    source = make_source(tmp_path, [customers()])
    messages, states = read(source, api, page_size=5)
    got = records(messages, "customers")
    assert sorted(r["id"] for r in got) == sorted(api.customers)
    assert len(got) == 23  # five pages, none twice
    pages = [v for q, v in api.requests if "customers(" in q]
    assert [v["after"] is None for v in pages] == [True, False, False, False, False]
    assert all(v["first"] == 5 for v in pages)
    newest = max(c["updatedAt"] for c in api.customers.values())
    assert states["customers"] == {"accounts": {"": {"updatedAt": newest}}}
    # the next run starts at (>=) the saved cursor, below the read's start
    read(source, api, states, page_size=5)
    assert api.requests[-1][1]["query"].startswith(f"updated_at:>='{newest}' AND updated_at:<=")


def test_a_single_object_is_read_as_one_record(tmp_path: Path, api: Server) -> None:
    """``connection`` may point at one object (no ``nodes`` nor ``edges``, e.g. the store's
    own details): it is the stream's one record, on one page."""
    store = {"name": "store", "primary_key": ["id"], "schema": "customer.json",
             "request": {"kind": "graphql", "query": "queries/store.graphql",
                         "connection": "store"}}
    source = make_source(tmp_path, [store])
    messages, _ = read(source, api)
    got = records(messages, "store")
    assert [(r["id"], r["name"]) for r in got] == [("Store/1", "The store")]
    assert len([q for q, _ in api.requests if "store" in q]) == 1


def test_nested_connections_are_paged_by_node_and_merged(tmp_path: Path, api: Server) -> None:
    for n, lines in enumerate([1, 3, 4, 9, 0, 5]):
        api.add_order(n, f"2024-01-0{n + 1}T00:00:00Z", lines)
    source = make_source(tmp_path, [ORDERS])
    messages, _ = read(source, api)
    got = {r["id"]: r for r in records(messages, "orders")}
    assert len(got) == 6
    for n, lines in enumerate([1, 3, 4, 9, 0, 5]):
        items = got[f"gid://test/Order/{n}"]["lineItems"]
        assert [i["sku"] for i in items] == [f"S{n}-{i}" for i in range(lines)]
    follow = [v for q, v in api.requests if "node(id:" in q]
    # 4 lines: one more page of 2 after the first 3; 9: three more; 5: one more
    assert sorted(v["id"].rsplit("/", 1)[1] for v in follow) == ["2", "3", "3", "3", "5"]


def test_a_record_changed_during_the_read_is_not_lost(tmp_path: Path, api: Server) -> None:
    """Changes land on records already read and not yet read while the read runs; after this
    read and the next (incremental) one, the newest version of every record has been read."""
    seed_customers(api, 40)
    ids = sorted(api.customers, key=lambda c: api.customers[c]["updatedAt"])
    changed: list[str] = []

    def change(server: Server, variables: dict[str, Any]) -> None:
        if variables.get("after") is None or changed:
            return
        time.sleep(1.1)  # the changes come a second or more after the read started,
        for cid in (ids[0], ids[2], ids[-1], ids[-2]):  # behind it and ahead of it
            server.touch(cid, f"changed-{len(changed)}@example.com")
            changed.append(cid)
        time.sleep(1.1)  # and a second or more before it ends

    api.after_answer = change
    source = make_source(tmp_path, [customers()])
    first, states = read(source, api, page_size=5)
    api.after_answer = None
    assert len(changed) == 4
    second, _ = read(source, api, states, page_size=5)
    seen = {(r["id"], r["email"]) for r in records(first, "customers") + records(second,
                                                                                "customers")}
    newest = {(c["id"], c["email"]) for c in api.customers.values()}
    assert newest <= seen
    # the first read's upper bound (its start) left the changed records to the second
    assert not any(r["email"].startswith("changed") for r in records(first, "customers"))
    assert sorted(r["id"] for r in records(second, "customers")
                  if r["email"].startswith("changed")) == sorted(changed)


def test_a_graphql_error_fails_its_stream_with_one_line(tmp_path: Path, api: Server) -> None:
    seed_customers(api, 3)
    api.add_order(1, "2024-01-01T00:00:00Z", 1)
    bad = {"name": "customers", "primary_key": ["id"], "schema": "customer.json",
           "request": {"kind": "graphql", "query": "queries/bad.graphql",
                       "connection": "customers"}}
    source = make_source(tmp_path, [bad, ORDERS])
    out: list[bytes] = []
    with pytest.raises(ConnectorError) as caught:
        for line in source.read({"api_url": api.url, "token": "t"},
                                source.configured_catalog(), {}):
            out.append(line)
    message = caught.value.message
    assert message.startswith(f"the API at {api.url}/graphql has no field 'emailx' on Customer")
    assert "check the API version" in message and "\n" not in message
    assert caught.value.failure_type == "config_error"
    messages = [json.loads(line) for line in b"".join(out).splitlines()]
    assert len(records(messages, "orders")) == 1  # the other stream was read


def test_check_runs_each_graphql_query_for_one_record(tmp_path: Path, api: Server) -> None:
    seed_customers(api, 3)
    bad = {"name": "customers", "primary_key": ["id"], "schema": "customer.json",
           "request": {"kind": "graphql", "query": "queries/bad.graphql",
                       "connection": "customers"}}
    config = {"api_url": api.url, "token": "t"}
    assert make_source(tmp_path, [ORDERS]).check(config).status == "SUCCEEDED"
    assert api.requests[-1][1] == {"first": 1}
    status = make_source(tmp_path, [ORDERS, bad]).check(config)
    assert status.status == "FAILED"
    assert "has no field 'emailx' on Customer" in (status.message or "")


# --- cost ----------------------------------------------------------------------------------

def test_a_read_is_paced_by_points_within_ten_percent_of_the_floor(tmp_path: Path) -> None:
    """The bucket holds 100 points and restores 400/s; 60 pages of 10 customers ask 12 points
    each: the read takes (points - 100) / 400 s at best, and is never throttled."""
    server = Server(tmp_path, maximum=100, rate=400)
    seed_customers(server, 600)
    running = Running(server)
    try:
        source = make_source(tmp_path, [customers(page_size=10)])
        started = time.monotonic()
        messages, _ = read(source, server)
        elapsed = time.monotonic() - started
    finally:
        running.stop()
    assert len(records(messages, "customers")) == 600
    assert server.throttled == 0
    floor = server.points / 400
    assert elapsed <= 1.10 * floor, (elapsed, floor)
    assert elapsed >= (server.points - 100) / 400 * 0.95  # the bucket did bind
    assert any(m["type"] == "TRACE" and "RATE_LIMITED" in json.dumps(m) for m in messages)


def test_streams_read_at_once_share_the_accounts_bucket(tmp_path: Path) -> None:
    server = Server(tmp_path, maximum=100, rate=400)
    seed_customers(server, 200)
    for n in range(60):
        server.add_order(n, f"2024-01-01T00:{n:02d}:00Z", 4 if n % 5 else 7)
    running = Running(server)
    try:
        source = make_source(tmp_path, [customers(page_size=10), ORDERS])
        started = time.monotonic()
        messages, _ = read(source, server, concurrency=2)
        elapsed = time.monotonic() - started
    finally:
        running.stop()
    assert len(records(messages, "customers")) == 200 and len(records(messages, "orders")) == 60
    assert server.throttled == 0
    assert elapsed <= 1.10 * server.points / 400, (elapsed, server.points / 400)


def test_a_throttled_answer_waits_for_the_restore_and_is_retried(tmp_path: Path) -> None:
    server = Server(tmp_path, maximum=200, rate=100)
    seed_customers(server, 8)
    running = Running(server)
    try:
        source = make_source(tmp_path, [customers(page_size=50)])
        started = server.bucket.at = time.monotonic()
        server.bucket.available = 0  # another app used the points up
        messages, _ = read(source, server)
        elapsed = time.monotonic() - started
    finally:
        running.stop()
    assert len(records(messages, "customers")) == 8
    assert server.throttled == 1  # the client knew nothing of the bucket before
    assert elapsed >= 52 / 100 * 0.95  # waited for 52 points at 100/s, computed
    assert elapsed < 52 / 100 * 1.5


# --- bulk operations -----------------------------------------------------------------------

def bulk_customers(**bulk: Any) -> dict[str, Any]:
    return customers(bulk={"query": "queries/customers_bulk.graphql", **bulk})


def test_a_backfill_is_a_bulk_operation_and_later_runs_page(tmp_path: Path, api: Server) -> None:
    seed_customers(api, 30)
    source = make_source(tmp_path, [bulk_customers()])
    messages, states = read(source, api, page_size=7, start_date="2023-11-14T22:13:25Z")
    assert sum("bulkRun" in q for q, _ in api.requests) == 1
    got = records(messages, "customers")
    expected = [c for c in api.customers.values() if c["updatedAt"] >= "2023-11-14T22:13:25Z"]
    assert sorted(r["id"] for r in got) == sorted(c["id"] for c in expected) and len(got) < 30
    saved = states["customers"]["accounts"][""]
    assert BULK_KEY not in saved and saved["updatedAt"] >= max(c["updatedAt"] for c in expected)
    first_record = next(i for i, m in enumerate(messages) if m["type"] == "RECORD")
    assert any(BULK_KEY in m["state"]["stream"]["stream_state"]["accounts"][""]
               for m in messages[:first_record] if m["type"] == "STATE")  # said before the wait
    before = len(api.requests)
    read(source, api, states, page_size=7)
    assert not any("bulkRun" in q for q, _ in api.requests[before:])


def test_bulk_children_are_joined_to_their_parents(tmp_path: Path, api: Server) -> None:
    for n, lines in enumerate([2, 0, 5]):
        api.add_order(n, f"2024-01-0{n + 1}T00:00:00Z", lines)
    orders = {**ORDERS, "request": {**ORDERS["request"], "bulk": {
        "query": "queries/orders_bulk.graphql", "children": {"LineItem": "lineItems"}}}}
    source = make_source(tmp_path, [orders])
    messages, _ = read(source, api)
    got = {r["id"]: r for r in records(messages, "orders")}
    assert [len(got[f"gid://test/Order/{n}"]["lineItems"]) for n in range(3)] == [2, 0, 5]
    assert got["gid://test/Order/2"]["lineItems"][4] == {
        "id": "gid://test/LineItem/2-4", "sku": "S2-4", "quantity": 5}
    assert not any("orders(first" in q.replace(" ", "") for q, _ in api.requests)


def test_bulk_only_above_the_declared_count(tmp_path: Path, api: Server) -> None:
    seed_customers(api, 12)
    count = {"query": "queries/customers_count.graphql", "path": "customersCount.count"}
    source = make_source(tmp_path, [bulk_customers(count=count, min_records=13)])
    messages, _ = read(source, api)
    assert len(records(messages, "customers")) == 12
    assert not any("bulkRun" in q for q, _ in api.requests)
    source = make_source(tmp_path, [bulk_customers(count=count, min_records=12)])
    read(source, api)
    assert sum("bulkRun" in q for q, _ in api.requests) == 1


def test_a_killed_bulk_read_goes_on_with_its_operation(tmp_path: Path, api: Server) -> None:
    seed_customers(api, 10)
    api.bulk_seconds = 0.6
    source = make_source(tmp_path, [bulk_customers()])
    config = {"api_url": api.url, "token": "t"}
    lines = source.read(config, source.configured_catalog(), {})
    killed: list[dict[str, Any]] = []
    for line in lines:  # stop as soon as the operation is in the state (a kill)
        killed.append(json.loads(line))
        if killed[-1]["type"] == "STATE" and BULK_KEY in json.dumps(killed[-1]):
            break
    lines.close()
    state = last_states(killed)
    operation = state["customers"]["accounts"][""][BULK_KEY]
    assert api.operations[operation["id"]].status == "RUNNING"
    messages, after = read(source, api, state)
    assert sum("bulkRun" in q for q, _ in api.requests) == 1  # the same operation
    assert len(records(messages, "customers")) == 10
    assert BULK_KEY not in after["customers"]["accounts"][""]
    assert after["customers"]["accounts"][""]["updatedAt"] == operation["upper"]


def test_bulk_operations_of_one_account_run_one_at_a_time(tmp_path: Path,
                                                          api: Server) -> None:
    seed_customers(api, 6)
    for n in range(3):
        api.add_order(n, f"2024-01-0{n + 1}T00:00:00Z", 2)
    orders = {**ORDERS, "request": {**ORDERS["request"], "bulk": {
        "query": "queries/orders_bulk.graphql", "children": {"LineItem": "lineItems"}}}}
    source = make_source(tmp_path, [bulk_customers(), orders])
    messages, _ = read(source, api, concurrency=2)  # both streams at once
    assert len(records(messages, "customers")) == 6 and len(records(messages, "orders")) == 3
    assert sum("bulkRun" in q for q, _ in api.requests) == 2


def test_a_whole_child_read_alone_pages_from_its_own_cursor(tmp_path: Path, api: Server) -> None:
    seed_customers(api, 6)
    child = {"name": "emails", "primary_key": ["id"], "schema": "customer.json",
             "parent": {"stream": "customers", "hook": "emails", "whole": True,
                        "cursor_field": "email"}}
    source = make_source(tmp_path, [bulk_customers(), child], hooks={
        "emails": lambda record, fetch: [{"id": record["id"], "email": record["updatedAt"]}]})
    catalog = source.configured_catalog()
    catalog.streams = [c for c in catalog.streams if c.stream.name == "emails"]
    state = {"emails": {"accounts": {"": {"email": "2023-11-14T22:13:21Z"}}}}
    out = b"".join(source.read({"api_url": api.url, "token": "t"}, catalog, state))
    messages = [json.loads(line) for line in out.splitlines()]
    assert not any("bulkRun" in q for q, _ in api.requests)  # an incremental run: paged
    assert len(records(messages, "emails")) == 6 - 3


def test_a_failed_bulk_operation_is_started_over(tmp_path: Path, api: Server) -> None:
    seed_customers(api, 4)
    source = make_source(tmp_path, [bulk_customers()])
    messages, _ = read(source, api)
    first = next(iter(api.operations.values()))
    first.status, first.error = "FAILED", "INTERNAL_SERVER_ERROR"
    state = {"customers": {"accounts": {"": {BULK_KEY: {"id": first.id,
                                                        "upper": "2030-01-01T00:00:00Z"}}}}}
    messages, after = read(source, api, state)
    assert len(api.operations) == 2 and len(records(messages, "customers")) == 4
    assert BULK_KEY not in after["customers"]["accounts"][""]


def test_a_bulk_result_is_streamed_in_flat_memory(tmp_path: Path, api: Server) -> None:
    """200,000 lines (40,000 orders of four lines each), about 12 MB: read line by line,
    one order held at a time."""
    path = tmp_path / "big.jsonl"
    with path.open("wb") as out:
        for n in range(40_000):
            out.write(orjson.dumps({"id": f"o{n}", "name": f"#{n}", "note": "x" * 30}) + b"\n")
            for i in range(4):
                out.write(orjson.dumps({"__typename": "LineItem", "id": f"l{n}-{i}",
                                        "sku": f"SKU-{n}-{i}", "__parentId": f"o{n}"}) + b"\n")
    from graphql_server import Operation

    from framework.engine.bulk import download
    api.operations["gid://test/BulkOperation/9"] = Operation(
        "gid://test/BulkOperation/9", "", status="COMPLETED", path=path)
    tracemalloc.start()
    try:
        count = lines = 0
        for record in reassemble(download(f"{api.url}/bulk/9", (5, 30)), "__parentId",
                                 {"LineItem": "lineItems"}):
            count += 1
            lines += 1 + len(record["lineItems"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (count, lines) == (40_000, 200_000)
    assert path.stat().st_size > 10_000_000
    assert peak < 2_000_000, peak  # well under the file's size


def test_out_of_order_bulk_lines_are_a_clear_error() -> None:
    lines = [b'{"id": "a"}', b'{"id": "b"}', b'{"id": "x", "__typename": "T", "__parentId": "a"}']
    with pytest.raises(ConnectorError, match=r"line 3 names parent 'a', which is not the "
                                             r"record being read"):
        list(reassemble(lines, "__parentId", {"T": "things"}))


# --- records webhooks named ----------------------------------------------------------------

WEBHOOKS = {"platform": "Test", "path": "/hooks", "producer_field": "shop", "producer": "x",
            "secret_header": "X-Secret", "max_per_scope": 1, "max_total": 10,
            "scopes": {"customers/update": {"resource": "customer", "id": "id",
                                            "oauth_scope": "read"}},
            "payload": {"required": {"id": "integer"}, "dedupe": ["event"]}}


def test_ids_webhooks_named_are_fetched_with_the_by_ids_query(tmp_path: Path,
                                                              api: Server) -> None:
    from framework.webhooks.spool import Spool

    seed_customers(api, 5)
    stream = customers(by_ids={"query": "queries/customers_by_id.graphql",
                               "id_template": "gid://test/Customer/{id}"})
    source = make_source(tmp_path, [{**stream, "live": {"resource": "customer", "key": "id"}}],
                         webhooks=WEBHOOKS)
    spool = Spool(tmp_path / "spool.db")
    for n in ("1", "3", "77"):
        spool.append("", "customers/update", "customer", n, {"id": int(n)})
    spool.close()
    messages, states = read(source, api, spool_path=str(tmp_path / "spool.db"),
                            read_mode="webhooks")
    got = {r["id"]: r for r in records(messages, "customers")}
    assert sorted(got) == ["gid://test/Customer/1", "gid://test/Customer/3",
                           "gid://test/Customer/77"]
    assert got["gid://test/Customer/1"]["email"] == "c1@example.com"
    assert got["gid://test/Customer/1"]["webhook_scope"] == "customers/update"
    assert got["gid://test/Customer/77"]["is_deleted"] is True  # gone: a tombstone
    assert [v for q, v in api.requests if "nodes(ids" in q] == [
        {"ids": ["gid://test/Customer/1", "gid://test/Customer/3", "gid://test/Customer/77"]}]
    assert states["customers"]["accounts"][""]["spool_offset"] == 3


def test_a_graphql_live_stream_needs_its_by_ids_query(tmp_path: Path) -> None:
    stream = {**customers(), "live": {"resource": "customer", "key": "id"}}
    with pytest.raises(SpecError, match=r"request\.by_ids: a GraphQL stream read from "
                                        r"webhooks needs"):
        make_source(tmp_path, [stream], webhooks=WEBHOOKS)


# --- the spec ------------------------------------------------------------------------------

def test_a_missing_query_file_is_named_when_the_spec_loads(tmp_path: Path) -> None:
    stream = customers(query="queries/nope.graphql")
    with pytest.raises(SpecError, match=r"at \$\.streams\[0\]\.request: query file "
                                        r"'queries/nope.graphql' not found"):
        make_source(tmp_path, [stream])


def test_a_filter_needs_an_incremental_cursor(tmp_path: Path) -> None:
    stream = {k: v for k, v in customers().items() if k != "incremental"}
    with pytest.raises(SpecError, match=r"request\.filter: the filter takes the cursor"):
        make_source(tmp_path, [stream])


def test_a_query_may_come_from_an_installed_package(tmp_path: Path) -> None:
    from framework.declarative.graphql import query_path
    found = query_path(tmp_path / "spec.json", "framework.engine:graphql.py")
    assert found.is_file() and found.name == "graphql.py"
    with pytest.raises(ValueError, match="no package 'nowhere_pkg'"):
        query_path(tmp_path / "spec.json", "nowhere_pkg:q.graphql")
