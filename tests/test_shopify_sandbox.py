"""``runner sandbox shopify`` over real HTTP: Shopify's schema, cost, bucket, scopes, paging,
filters, bulk operations, webhooks and the admin API."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from graphql import parse

from connectors.shopify import schema

ROOT = Path(__file__).resolve().parent.parent
RUNNER = shutil.which("runner") or str(Path(sys.executable).parent / "runner")
CUSTOMERS, ORDERS, PRODUCTS = 300, 500, 30


def start(*args: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """``runner sandbox shopify`` (the plugin's sandbox), ready once it prints its line."""
    process = subprocess.Popen([RUNNER, "sandbox", "shopify", *args, "--port", "0"], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line, "the sandbox did not start"
    return process, json.loads(line)


@pytest.fixture(scope="module")
def box() -> Iterator[dict[str, Any]]:
    process, ready = start("--customers", str(CUSTOMERS), "--orders", str(ORDERS),
                           "--products", str(PRODUCTS), "--seed", "7", "--shops", "2",
                           "--plan", "enterprise",
                           "--webhook-retry-scale", "0.0001", "--bulk-delay-ms", "50")
    try:
        yield ready
    finally:
        process.terminate()
        process.wait(10)


def gql(box: dict[str, Any], query: str, variables: dict[str, Any] | None = None, *,
        version: str = schema.DEFAULT_VERSION, token: str | None = None,
        shop: str | None = None) -> dict[str, Any]:
    answer = requests.post(
        f"{box['url']}/{shop or box['shop']}/admin/api/{version}/graphql.json",
        json={"query": query, "variables": variables or {}},
        headers={"X-Shopify-Access-Token": token or box["access_token"]}, timeout=30)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    assert "cost" in body["extensions"]
    return body


def admin(box: dict[str, Any], path: str, body: dict[str, Any] | None = None,
          token: str | None = None) -> Any:
    headers = {"X-Shopify-Access-Token": token or box["access_token"]}
    if body is None:
        answer = requests.get(f"{box['url']}/_sandbox/{path}", headers=headers, timeout=30)
    else:
        answer = requests.post(f"{box['url']}/_sandbox/{path}", json=body, headers=headers,
                               timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def standard_shop(box: dict[str, Any]) -> dict[str, Any]:
    """The second shop, on the Standard plan (the first is on Enterprise, so that the other
    tests are not throttled), its buckets full."""
    other = {**box, "shop": box["shops"][1]["shop"],
             "access_token": box["shops"][1]["access_token"]}
    admin(other, "plan", {"plan": "standard"})
    return other


def new_token(box: dict[str, Any], app: str, scopes: list[str] | None = None) -> str:
    body: dict[str, Any] = {"app": app}
    if scopes is not None:
        body["scopes"] = scopes
    return str(admin(box, "tokens", body)["access_token"])


def wait_for(check: Callable[[], Any], timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def all_pages(box: dict[str, Any], field: str, selection: str, args: str = "",
              size: int = 50, token: str | None = None) -> list[dict[str, Any]]:
    records, cursor = [], None
    while True:
        body = gql(box, f"query($after: String) {{ {field}(first: {size}, after: $after"
                        f"{args}) {{ pageInfo {{ hasNextPage endCursor }} nodes {{ {selection} "
                        "} } }", {"after": cursor}, token=token)
        assert "errors" not in body, body["errors"]
        page = body["data"][field]
        records.extend(page["nodes"])
        if not page["pageInfo"]["hasNextPage"]:
            return records
        cursor = page["pageInfo"]["endCursor"]


# --- the schema: Shopify's own --------------------------------------------------------------

def test_an_unknown_field_or_a_wrong_argument_fails_as_shopify_fails_it(box: dict[str, Any]
                                                                       ) -> None:
    body = gql(box, "{ customers(first: 2) { nodes { emailx } } }")
    assert "data" not in body
    assert body["errors"][0]["message"] == ("Cannot query field 'emailx' on type 'Customer'. "
                                            "Did you mean 'email'?")
    body = gql(box, "{ customers(frist: 2) { nodes { id } } }")
    assert any("Unknown argument 'frist' on field 'QueryRoot.customers'" in e["message"]
               for e in body["errors"])
    body = gql(box, '{ customers(first: "two") { nodes { id } } }')
    assert "Int cannot represent non-integer value" in body["errors"][0]["message"]
    body = gql(box, "{ customers { nodes { id } } }")  # valid, but Shopify wants a page size
    assert body["errors"][0]["message"] == "you must provide one of first or last"


def test_a_bad_token_or_version_is_refused_as_shopify_refuses_it(box: dict[str, Any]) -> None:
    url = f"{box['url']}/{box['shop']}/admin/api"
    refused = requests.post(f"{url}/{schema.DEFAULT_VERSION}/graphql.json",
                            json={"query": "{ shop { id } }"},
                            headers={"X-Shopify-Access-Token": "shpat_wrong"}, timeout=10)
    assert refused.status_code == 401
    assert refused.json() == {"errors": "[API] Invalid API key or access token (unrecognized "
                                        "login or wrong password)"}
    unknown = requests.post(f"{url}/2019-04/graphql.json", json={"query": "{ shop { id } }"},
                            headers={"X-Shopify-Access-Token": box["access_token"]}, timeout=10)
    assert unknown.status_code == 404
    empty = requests.post(f"{url}/{schema.DEFAULT_VERSION}/graphql.json", json={},
                          headers={"X-Shopify-Access-Token": box["access_token"]}, timeout=10)
    assert empty.status_code == 400
    # Network faults, as the other sandboxes inject them (--faults, or queued here).
    requests.post(f"{box['url']}/_sandbox/fault-profile", json={
        "kind": "503", "path": "/graphql.json", "count": 1}, timeout=10).raise_for_status()
    faulty = requests.post(f"{url}/{schema.DEFAULT_VERSION}/graphql.json",
                           json={"query": "{ shop { id } }"},
                           headers={"X-Shopify-Access-Token": box["access_token"]}, timeout=10)
    assert faulty.status_code == 503
    assert "errors" not in gql(box, "{ shop { id } }")


def test_each_version_answers_with_its_own_schema(box: dict[str, Any]) -> None:
    # WebhookSubscriptionInput.name arrived in 2026-04: 2025-10 rejects it.
    mutation = ('mutation { webhookSubscriptionCreate(topic: SHOP_UPDATE, webhookSubscription:'
                ' {uri: "https://example.com/h", name: "x"}) { userErrors { message } } }')
    old = gql(box, mutation, version="2025-10")
    assert "'WebhookSubscriptionInput' not to include unknown field 'name'" in \
        old["errors"][0]["message"]
    assert "errors" not in gql(box, mutation, version="2026-07")
    for version in schema.VERSIONS:
        assert gql(box, "{ shop { name } }", version=version)["data"]["shop"]["name"]


def test_the_sources_queries_run_without_errors(box: dict[str, Any]) -> None:
    """Every query of the Shopify source (connectors/shopify/queries), run with plausible
    variables, answers data and no error; its bulk queries complete through its own
    bulk_start and bulk_poll; so do a handful written here."""
    own = {"customers": "{ customers(first: 5, sortKey: UPDATED_AT, query: \"updated_at:>="
                        "'2020-01-01T00:00:00Z'\") { nodes { id email defaultEmailAddress { "
                        "emailAddress marketingState } phone numberOfOrders amountSpent { "
                        "amount } tags addresses { city } defaultAddress { city } } } }",
           "scopes": "{ currentAppInstallation { accessScopes { handle } } }",
           "node": '{ node(id: "gid://shopify/Customer/1") { id ... on Customer { email } } }'}
    texts = {p.stem: p.read_text() for p in (ROOT / "connectors/shopify/queries").glob(
        "*.graphql")}
    bulk = {name: texts.pop(name) for name in list(texts) if "bulk" in name}
    # Mutations (webhook subscriptions) change the shop: tests/test_shopify_webhooks.py
    # runs them through `runner webhooks register`.
    texts = {name: text for name, text in texts.items()
             if parse(text).definitions[0].operation.value != "mutation"}
    for name, text in (texts | own).items():
        body = gql(box, text, plausible_variables(name, text))
        assert "errors" not in body, (name, body["errors"])
        assert body["data"], name
    start, poll = bulk.pop("bulk_start", BULK), bulk.pop("bulk_poll", None)
    for name, text in bulk.items():
        inner = text.replace("{filter}", "updated_at:>='2000-01-01T00:00:00Z'")
        started = gql(box, start, {"query": inner, "q": inner})["data"]["bulkOperationRunQuery"]
        assert started["userErrors"] == [], (name, started["userErrors"])
        operation_id = started["bulkOperation"]["id"]
        if poll is not None:
            done = wait_for(lambda i=operation_id: (n := gql(box, poll, {"id": i})["data"][
                "node"])["status"] == "COMPLETED" and n)
        else:
            done = wait_for(lambda: (n := gql(box, POLL)["data"]["currentBulkOperation"])[
                "status"] == "COMPLETED" and n)
        assert int(done["objectCount"]) > 0 and done["url"], name


def plausible_variables(name: str, text: str) -> dict[str, Any]:
    """Values for a query's variables: page sizes, no cursor, ids of records the name says."""
    ids = {"Order": "gid://shopify/Order/1", "Product": "gid://shopify/Product/1",
           "Customer": "gid://shopify/Customer/1",
           "AbandonedCheckout": "gid://shopify/AbandonedCheckout/1",
           "InventoryItem": "gid://shopify/InventoryItem/1"}
    variables: dict[str, Any] = {}
    for definition in parse(text).definitions[0].variable_definitions or ():
        type_, listed = definition.type, False
        while not hasattr(type_, "name"):  # through non-null and list wrappers
            listed |= type(type_).__name__ == "ListTypeNode"
            type_ = type_.type
        kind, key = type_.name.value, definition.variable.name.value
        value = {"Int": 5, "Boolean": False}.get(kind)
        if kind == "ID":
            value = next((v for k, v in ids.items() if k.lower() in name.replace(
                "_", "").lower()), "gid://shopify/Order/1")
        variables[key] = [value] if listed and value is not None else value
    return variables


# --- cost and the bucket --------------------------------------------------------------------

def test_cost_is_charged_requested_then_refunded_to_actual(box: dict[str, Any]) -> None:
    box = standard_shop(box)
    token = new_token(box, "cost")
    body = gql(box, '{ customers(first: 50, query: "id:<=3") { nodes { id '
                    "emailMarketingConsent { marketingState } } } }", token=token)
    cost = body["extensions"]["cost"]
    assert len(body["data"]["customers"]["nodes"]) == 3
    assert cost["requestedQueryCost"] == 2 + 50 * 2  # a customer (1) and its consent (1)
    assert cost["actualQueryCost"] == 2 + 3 * 2  # what was really returned
    status = cost["throttleStatus"]
    assert status["maximumAvailable"] == 2000.0 and status["restoreRate"] == 100.0
    assert 2000 - 8 <= status["currentlyAvailable"] <= 2000
    too_big = gql(box, "{ orders(first: 250) { nodes { id lineItems(first: 10) { nodes { id "
                       "} } } } }", token=token)
    assert too_big["errors"][0]["extensions"]["code"] == "MAX_COST_EXCEEDED"
    assert too_big["extensions"]["cost"]["requestedQueryCost"] == 2 + 250 * (1 + 2 + 10)
    assert "data" not in too_big
    mutation = gql(box, "mutation { webhookSubscriptionDelete(id: \"gid://shopify/"
                        "WebhookSubscription/999\") { userErrors { message } } }", token=token)
    assert mutation["extensions"]["cost"]["requestedQueryCost"] == 10


def test_a_burst_is_throttled_and_the_bucket_restores_at_the_plans_rate(box: dict[str, Any]
                                                                       ) -> None:
    box = standard_shop(box)
    token = new_token(box, "burst")
    query = "{ customers(first: 250) { nodes { id } } }"  # 252 points, all used
    started, served = time.monotonic(), 0
    while True:
        sent_first = time.monotonic()
        first = gql(box, query, token=token)
        got_first = time.monotonic()
        if "errors" in first or served == 40:
            break
        served += 1
    # 7 x 252 = 1,764 of 2,000 go through at once; more only as the bucket restores.
    assert 7 <= served <= (2000 + 100 * (got_first - started)) / 252
    assert first["errors"] == [{"message": "Throttled", "extensions": {
        "code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"}}]
    assert "data" not in first
    assert first["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] < 252
    # The restore between two answers, against the time that passed between them (at least
    # from the first's arrival to the second's sending, at most from the first's sending to
    # the second's arrival).
    time.sleep(1.0)
    sent_second = time.monotonic()
    second = gql(box, "{ shop { id } }", token=token)["extensions"]["cost"]
    got_second = time.monotonic()
    before = first["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"]
    restored = second["throttleStatus"]["currentlyAvailable"] + second["actualQueryCost"] - \
        before
    assert 100 * (sent_second - got_first) - 2 <= restored <= 100 * (got_second - sent_first) + 2
    # Another plan restores faster and holds more.
    admin(box, "plan", {"plan": "plus"})
    status = gql(box, "{ shop { id } }")["extensions"]["cost"]["throttleStatus"]
    assert status["restoreRate"] == 1000.0 and status["maximumAvailable"] == 20000.0


# --- access scopes --------------------------------------------------------------------------

def test_a_scope_the_token_lacks_is_access_denied(box: dict[str, Any]) -> None:
    token = new_token(box, "scopes", ["read_customers"])
    body = gql(box, "{ orders(first: 2) { nodes { id } } }", token=token)
    error = body["errors"][0]
    assert error["extensions"]["code"] == "ACCESS_DENIED"
    assert error["path"] == ["orders"] and body["data"] is None
    assert "`read_orders` access scope" in error["message"]
    assert "errors" not in gql(box, "{ customers(first: 2) { nodes { id } } }", token=token)
    for denied in ('{ node(id: "gid://shopify/Order/1") { id } }',
                   "{ abandonedCheckouts(first: 1) { nodes { id } } }",
                   "{ customers(first: 1) { nodes { lastOrder { id } } } }"):
        codes = [e["extensions"]["code"] for e in gql(box, denied, token=token)["errors"]]
        assert codes == ["ACCESS_DENIED"], denied
    scopes = gql(box, "{ currentAppInstallation { accessScopes { handle } } }", token=token)
    assert scopes["data"]["currentAppInstallation"]["accessScopes"] == [
        {"handle": "read_customers"}]


def test_orders_older_than_60_days_need_read_all_orders(box: dict[str, Any]) -> None:
    recent = new_token(box, "recent", ["read_orders", "read_customers"])
    limit = (datetime.now(UTC) - timedelta(days=60)).strftime("%Y-%m-%dT%H:%M:%SZ")
    seen = all_pages(box, "orders", "id createdAt", size=250, token=recent)
    everything = all_pages(box, "orders", "id createdAt", size=250)
    assert len(everything) == ORDERS
    assert seen and all(o["createdAt"] >= limit for o in seen)
    assert len(seen) == sum(1 for o in everything if o["createdAt"] >= limit) < ORDERS
    old = min(everything, key=lambda o: o["createdAt"])["id"]
    assert gql(box, f'{{ order(id: "{old}") {{ id }} }}', token=recent)["data"]["order"] is None


# --- pages, order and filters ---------------------------------------------------------------

def test_cursors_page_through_every_record_in_sort_key_order(box: dict[str, Any]) -> None:
    listed = all_pages(box, "customers", "id updatedAt", ", sortKey: UPDATED_AT", size=70)
    assert len(listed) == CUSTOMERS == len({c["id"] for c in listed})
    stamps = [(c["updatedAt"], int(c["id"].rsplit("/", 1)[1])) for c in listed]
    assert stamps == sorted(stamps)
    backwards = gql(box, "{ customers(last: 5, sortKey: UPDATED_AT) { nodes { id } "
                         "pageInfo { hasPreviousPage hasNextPage } } }")["data"]["customers"]
    assert [c["id"] for c in backwards["nodes"]] == [c["id"] for c in listed[-5:]]
    assert backwards["pageInfo"] == {"hasPreviousPage": True, "hasNextPage": False}
    reverse = gql(box, "{ customers(first: 5, sortKey: UPDATED_AT, reverse: true) { nodes { id"
                       " } } }")["data"]["customers"]["nodes"]
    assert [c["id"] for c in reverse] == [c["id"] for c in listed[::-1][:5]]
    page = gql(box, "{ products(first: 1) { nodes { variants(first: 1) { nodes { id } pageInfo"
                    " { hasNextPage endCursor } } } } }")["data"]["products"]["nodes"][0]
    if page["variants"]["pageInfo"]["hasNextPage"]:  # a nested connection pages too
        rest = gql(box, "query($c: String) { products(first: 1) { nodes { variants(first: 5, "
                        "after: $c) { nodes { id } } } } }",
                   {"c": page["variants"]["pageInfo"]["endCursor"]})
        following = rest["data"]["products"]["nodes"][0]["variants"]["nodes"]
        assert following and page["variants"]["nodes"][0] not in following


def test_counts_and_array_arguments_keep_shopifys_limits(box: dict[str, Any]) -> None:
    counted = gql(box, "{ ordersCount { count precision } customersCount(query: \"id:<=10\")"
                       " { count precision } }")["data"]
    assert counted["ordersCount"] == {"count": ORDERS, "precision": "EXACT"}
    assert counted["customersCount"] == {"count": 10, "precision": "EXACT"}
    ids = [f"gid://shopify/Customer/{n}" for n in range(1, 252)]
    body = gql(box, "query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": ids})
    assert body["errors"][0]["extensions"]["code"] == "MAX_INPUT_SIZE_EXCEEDED"
    fifty = gql(box, "query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": ids[:50]})
    assert len(fifty["data"]["nodes"]) == 50
    assert fifty["extensions"]["cost"]["requestedQueryCost"] == 50  # an object per id


def test_search_query_filters_on_updated_and_created_at(box: dict[str, Any]) -> None:
    listed = all_pages(box, "customers", "id updatedAt createdAt", size=250)
    middle = sorted(c["updatedAt"] for c in listed)[CUSTOMERS // 2]
    since = all_pages(box, "customers", "id", f', query: "updated_at:>=\'{middle}\'"', size=250)
    before = all_pages(box, "customers", "id", f', query: "updated_at:<{middle}"', size=250)
    assert {c["id"] for c in since} == {c["id"] for c in listed if c["updatedAt"] >= middle}
    assert {c["id"] for c in before} == {c["id"] for c in listed if c["updatedAt"] < middle}
    created = sorted(c["createdAt"] for c in listed)[10]
    window = all_pages(box, "customers", "id", f', query: "created_at:>{created} AND '
                                                f'updated_at:<=\'{middle}\'"', size=250)
    assert {c["id"] for c in window} == {c["id"] for c in listed if c["createdAt"] > created
                                         and c["updatedAt"] <= middle}


# --- the admin API: changes show in queries -------------------------------------------------

def test_admin_changes_show_in_updated_at_queries(box: dict[str, Any]) -> None:
    since = datetime.now(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
    changed = admin(box, "mutate", {"resource": "customers", "ids": [5, 6], "set": {
        "emailMarketingConsent": {"marketingState": "UNSUBSCRIBED"}}})
    made = admin(box, "mutate", {"resource": "customers", "create": 2, "seed": 3})["created"]
    orders = gql(box, '{ orders(first: 2, query: "financial_status:paid") { nodes { id '
                      "legacyResourceId totalPriceSet { shopMoney { amount } } } } }")
    paid, other = orders["data"]["orders"]["nodes"]
    admin(box, "orders/refund", {"id": paid["legacyResourceId"]})
    admin(box, "orders/cancel", {"id": other["legacyResourceId"]})
    fresh = all_pages(box, "customers", "legacyResourceId emailMarketingConsent { "
                                        "marketingState } defaultEmailAddress { marketingState }",
                      f', query: "updated_at:>=\'{since}\'"')
    numbers = {int(c["legacyResourceId"]) for c in fresh}
    assert set(changed["updated"]) | set(made) <= numbers
    five = next(c for c in fresh if c["legacyResourceId"] == "5")
    assert five["emailMarketingConsent"]["marketingState"] == "UNSUBSCRIBED"
    assert five["defaultEmailAddress"]["marketingState"] == "UNSUBSCRIBED"
    now_orders = {o["id"]: o for o in all_pages(
        box, "orders", "id displayFinancialStatus cancelledAt totalRefundedSet { shopMoney { "
                       "amount } } currentTotalPriceSet { shopMoney { amount } }",
        f', query: "updated_at:>=\'{since}\'"')}
    refunded = now_orders[paid["id"]]
    assert refunded["displayFinancialStatus"] == "REFUNDED"
    assert refunded["totalRefundedSet"]["shopMoney"]["amount"] == \
        paid["totalPriceSet"]["shopMoney"]["amount"]
    assert refunded["currentTotalPriceSet"]["shopMoney"]["amount"] == "0.00"
    assert now_orders[other["id"]]["cancelledAt"] >= since
    admin(box, "mutate", {"resource": "variants", "ids": [3], "set": {"price": "12.34"}})
    product = gql(box, '{ productVariant(id: "gid://shopify/ProductVariant/3") { price product'
                       " { updatedAt } } }")["data"]["productVariant"]
    assert product["price"] == "12.34" and product["product"]["updatedAt"] >= since
    level = admin(box, "inventory", {"variant_id": 1, "location_id": 1, "available": 77})
    stock = gql(box, '{ productVariant(id: "gid://shopify/ProductVariant/1") { inventoryItem {'
                     ' inventoryLevel(locationId: "gid://shopify/Location/1") { quantities('
                     'names: ["available"]) { quantity } } } } }')
    assert level["inventoryLevel"].startswith("gid://shopify/InventoryLevel/1?")
    assert stock["data"]["productVariant"]["inventoryItem"]["inventoryLevel"]["quantities"] == \
        [{"quantity": 77}]


# --- bulk operations ------------------------------------------------------------------------

BULK = ('mutation($q: String!) { bulkOperationRunQuery(query: $q) { bulkOperation { id status'
        " } userErrors { field message code } } }")
POLL = "{ currentBulkOperation { id status errorCode objectCount rootObjectCount url } }"


def test_bulk_query_delivers_jsonl_with_parent_ids(box: dict[str, Any]) -> None:
    inner = "{ customers { edges { node { email orders { edges { node { id name } } } } } } }"
    started = gql(box, BULK, {"q": inner})["data"]["bulkOperationRunQuery"]
    assert started["userErrors"] == [] and started["bulkOperation"]["status"] == "CREATED"
    statuses: list[str] = []

    def done() -> Any:
        operation = gql(box, POLL)["data"]["currentBulkOperation"]
        statuses.append(operation["status"])
        return operation if operation["status"] == "COMPLETED" else None

    operation = wait_for(done)
    assert operation["id"] == started["bulkOperation"]["id"] and "RUNNING" in statuses
    lines = [json.loads(line) for line in requests.get(operation["url"], timeout=30).iter_lines()]
    customers = [x for x in lines if "__parentId" not in x]
    orders = [x for x in lines if "__parentId" in x]
    assert len(customers) == int(operation["rootObjectCount"]) >= CUSTOMERS
    assert len(lines) == int(operation["objectCount"])
    seen: set[str] = set()
    for line in lines:  # each child comes after its parent
        if "__parentId" in line:
            assert line["__parentId"] in seen and line["id"].startswith("gid://shopify/Order/")
        else:
            seen.add(line["id"])  # added to the parents' selection, as children need it
    assert orders and all("orders" not in c for c in customers)
    by_node = gql(box, f'{{ node(id: "{operation["id"]}") {{ ... on BulkOperation {{ status '
                       "} } }")
    assert by_node["data"]["node"]["status"] == "COMPLETED"


def test_bulk_rules_and_one_at_a_time_on_older_versions(box: dict[str, Any]) -> None:
    bad = gql(box, BULK, {"q": "{ customers { edges { node { emailx } } } }"})
    errors = bad["data"]["bulkOperationRunQuery"]["userErrors"]
    assert errors[0]["code"] == "INVALID" and "emailx" in errors[0]["message"]
    flat = gql(box, BULK, {"q": "{ shop { name } }"})["data"]["bulkOperationRunQuery"]
    assert "at least one connection" in flat["userErrors"][0]["message"]
    inner = "{ products { edges { node { id } } } }"
    first = gql(box, BULK, {"q": inner}, version="2025-10")["data"]["bulkOperationRunQuery"]
    second = gql(box, BULK, {"q": inner}, version="2025-10")["data"]["bulkOperationRunQuery"]
    assert second["userErrors"][0]["code"] == "OPERATION_IN_PROGRESS"
    cancel = gql(box, 'mutation($id: ID!) { bulkOperationCancel(id: $id) { bulkOperation { '
                      "status } userErrors { message } } }", {"id": first["bulkOperation"]["id"]})
    assert cancel["data"]["bulkOperationCancel"]["bulkOperation"]["status"] == "CANCELING"
    wait_for(lambda: gql(box, POLL)["data"]["currentBulkOperation"]["status"] == "CANCELED")
    listed = gql(box, '{ bulkOperations(first: 10, query: "status:canceled") { nodes { id } } }')
    assert {"id": first["bulkOperation"]["id"]} in listed["data"]["bulkOperations"]["nodes"]
    token = new_token(box, "bulk", ["read_customers"])
    denied = gql(box, BULK, {"q": "{ orders { edges { node { id } } } }"}, token=token)
    operation = denied["data"]["bulkOperationRunQuery"]["bulkOperation"]
    failed = wait_for(lambda: (op := gql(box, POLL)["data"]["currentBulkOperation"])["status"]
                      == "FAILED" and op)
    assert failed["id"] == operation["id"] and failed["errorCode"] == "ACCESS_DENIED"


# --- webhooks -------------------------------------------------------------------------------

class Receiver:
    """A local endpoint recording deliveries; answers 500 to the first ``fail`` of them."""

    def __init__(self, fail: int = 0) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.fail = fail
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append((dict(self.headers.items()), body))
                status = 500 if len(outer.received) <= outer.fail else 200
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def close(self) -> None:
        self.server.shutdown()


CREATE = ('mutation($topic: WebhookSubscriptionTopic!, $uri: String!) { webhookSubscriptionCreate'
          "(topic: $topic, webhookSubscription: {uri: $uri}) { webhookSubscription { id topic uri"
          " } userErrors { field message } } }")


def test_webhooks_are_signed_retried_and_idempotent_to_subscribe(box: dict[str, Any]) -> None:
    receiver = Receiver(fail=1)
    try:
        made = gql(box, CREATE.replace("{uri: $uri}", '{uri: $uri, includeFields: ["id", '
                                                      '"note", "admin_graphql_api_id"]}'),
                   {"topic": "CUSTOMERS_UPDATE", "uri": receiver.url})
        subscription = made["data"]["webhookSubscriptionCreate"]["webhookSubscription"]
        again = gql(box, CREATE, {"topic": "CUSTOMERS_UPDATE", "uri": receiver.url})
        assert again["data"]["webhookSubscriptionCreate"] == {"webhookSubscription": None,
                                                              "userErrors": [{
            "field": ["webhookSubscription", "callbackUrl"],
            "message": "Address for this topic has already been taken"}]}
        listed = gql(box, "{ webhookSubscriptions(first: 10, topics: [CUSTOMERS_UPDATE]) { "
                          "nodes { id uri } } }")["data"]["webhookSubscriptions"]["nodes"]
        assert listed == [{"id": subscription["id"], "uri": receiver.url}]
        # Another app neither sees nor removes it, and may subscribe the same address.
        other = new_token(box, "another-app")
        theirs = gql(box, "{ webhookSubscriptions(first: 10) { nodes { id } } }", token=other)
        assert theirs["data"]["webhookSubscriptions"]["nodes"] == []
        refused = gql(box, 'mutation($id: ID!) { webhookSubscriptionDelete(id: $id) { '
                           "userErrors { message } } }", {"id": subscription["id"]}, token=other)
        assert refused["data"]["webhookSubscriptionDelete"]["userErrors"]
        own = gql(box, CREATE, {"topic": "CUSTOMERS_UPDATE", "uri": receiver.url + "/x"},
                  token=other)["data"]["webhookSubscriptionCreate"]["webhookSubscription"]
        removed = gql(box, 'mutation($id: ID!) { webhookSubscriptionDelete(id: $id) { '
                           "deletedWebhookSubscriptionId } }", {"id": own["id"]}, token=other)
        assert removed["data"]["webhookSubscriptionDelete"]["deletedWebhookSubscriptionId"]
        admin(box, "mutate", {"resource": "customers", "ids": [9], "set": {"note": "hi"}})
        wait_for(lambda: len(receiver.received) >= 2)  # refused once, retried
        (first_headers, first_body), (headers, body) = receiver.received[:2]
        digest = base64.b64encode(hmac.new(box["client_secret"].encode(), body,
                                           hashlib.sha256).digest()).decode()
        assert hmac.compare_digest(headers["X-Shopify-Hmac-Sha256"], digest)
        assert headers["X-Shopify-Topic"] == "customers/update"
        assert headers["X-Shopify-Shop-Domain"] == f"{box['shop']}.myshopify.com"
        assert headers["X-Shopify-API-Version"] == schema.DEFAULT_VERSION
        assert headers["X-Shopify-Event-Id"] == first_headers["X-Shopify-Event-Id"]
        assert headers["X-Shopify-Webhook-Id"] == first_headers["X-Shopify-Webhook-Id"]
        assert body == first_body and "X-Shopify-Triggered-At" in headers
        payload = json.loads(body)
        assert payload["id"] == 9 and payload["admin_graphql_api_id"].endswith("/Customer/9")
        assert payload["note"] == "hi" and set(payload) == {"id", "note",
                                                            "admin_graphql_api_id"}
        gone = gql(box, 'mutation($id: ID!) { webhookSubscriptionDelete(id: $id) { '
                        "deletedWebhookSubscriptionId } }", {"id": subscription["id"]})
        assert gone["data"]["webhookSubscriptionDelete"]["deletedWebhookSubscriptionId"] == \
            subscription["id"]
        admin(box, "mutate", {"resource": "customers", "ids": [9], "set": {"note": "again"}})
        time.sleep(0.3)
        assert len(receiver.received) == 2
    finally:
        receiver.close()


def test_consent_and_stock_changes_have_their_own_topics(box: dict[str, Any]) -> None:
    receiver = Receiver()
    try:
        for topic in ("CUSTOMERS_EMAIL_MARKETING_CONSENT_UPDATE", "INVENTORY_LEVELS_UPDATE"):
            made = gql(box, CREATE, {"topic": topic, "uri": receiver.url})
            assert made["data"]["webhookSubscriptionCreate"]["userErrors"] == []
        admin(box, "mutate", {"resource": "customers", "ids": [21], "set": {
            "emailMarketingConsent": {"marketingState": "SUBSCRIBED"}}})
        admin(box, "inventory", {"variant_id": 2, "location_id": 2, "available": 5})
        wait_for(lambda: len(receiver.received) == 2)
        topics = {h["X-Shopify-Topic"]: json.loads(b) for h, b in receiver.received}
        consent = topics["customers_email_marketing_consent/update"]
        assert consent["id"] == 21
        assert consent["email_marketing_consent"]["state"] == "subscribed"
        assert topics["inventory_levels/update"] == {
            "inventory_item_id": 2, "location_id": 2, "available": 5,
            "updated_at": topics["inventory_levels/update"]["updated_at"],
            "admin_graphql_api_id": "gid://shopify/InventoryLevel/2?inventory_item_id=2"}
    finally:
        receiver.close()


def test_a_subscription_that_keeps_failing_is_removed_after_8_retries(box: dict[str, Any]
                                                                      ) -> None:
    receiver = Receiver(fail=10**6)
    try:
        made = gql(box, CREATE, {"topic": "ORDERS_UPDATED", "uri": receiver.url})
        subscription = made["data"]["webhookSubscriptionCreate"]["webhookSubscription"]
        admin(box, "mutate", {"resource": "orders", "update": 1, "seed": 1})
        wait_for(lambda: admin(box, "hooks")["stats"].get("removed"), timeout=20)
        assert len(receiver.received) == 1 + 8
        assert len({h["X-Shopify-Event-Id"] for h, _ in receiver.received}) == 1
        found = gql(box, f'{{ webhookSubscription(id: "{subscription["id"]}") {{ id }} }}')
        assert found["data"]["webhookSubscription"] is None
    finally:
        receiver.close()


def test_privacy_topics_reach_the_compliance_url(box: dict[str, Any]) -> None:
    receiver = Receiver()
    try:
        admin(box, "privacy", {"topic": "customers/redact", "customer_id": 12,
                               "uri": receiver.url})
        admin(box, "privacy", {"topic": "shop/redact"})
        wait_for(lambda: len(receiver.received) == 2)
        topics = {h["X-Shopify-Topic"]: json.loads(b) for h, b in receiver.received}
        redact = topics["customers/redact"]
        assert redact["customer"]["id"] == 12 and isinstance(redact["orders_to_redact"], list)
        assert redact["shop_domain"] == f"{box['shop']}.myshopify.com"
        assert set(topics["shop/redact"]) == {"shop_id", "shop_domain"}
        for headers, body in receiver.received:
            digest = base64.b64encode(hmac.new(box["client_secret"].encode(), body,
                                               hashlib.sha256).digest()).decode()
            assert headers["X-Shopify-Hmac-Sha256"] == digest
    finally:
        receiver.close()


def test_a_generated_shop_is_the_same_for_the_same_seed_and_has_every_state() -> None:
    from connectors.shopify.sandbox.data import Shop

    one = Shop.generate("a", 5, "standard", 120, 200, 10, history_end=1_780_000_000)
    two = Shop.generate("a", 5, "standard", 120, 200, 10, history_end=1_780_000_000)
    assert one.records == two.records
    customers = list(one.records["Customer"].values())
    assert {c["emailMarketingConsent"]["marketingState"] for c in customers} == {
        "SUBSCRIBED", "NOT_SUBSCRIBED", "PENDING", "UNSUBSCRIBED", "REDACTED", "INVALID"}
    assert {c["smsMarketingConsent"]["marketingState"] for c in customers
            if c["smsMarketingConsent"]} == {"SUBSCRIBED", "NOT_SUBSCRIBED", "PENDING",
                                              "UNSUBSCRIBED", "REDACTED"}
    orders = list(one.records["Order"].values())
    assert any(o["cancelledAt"] for o in orders) and any(o["refunds"] for o in orders)
    assert {"PAID", "REFUNDED", "PARTIALLY_REFUNDED"} <= {o["displayFinancialStatus"]
                                                          for o in orders}
    assert len(one.records["ProductVariant"]) > len(one.records["Product"])
    assert one.records["AbandonedCheckout"]
