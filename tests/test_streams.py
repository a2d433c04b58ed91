"""Every BigCommerce stream against the sandbox: shapes, requests, stores, channels, carts."""

from __future__ import annotations

import io
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import requests
from airbyte_protocol import models as official
from conftest import messages, run_cli
from jsonschema import Draft7Validator

from connectors.bigcommerce import connector, order_line_items
from framework.declarative.formats import format_utc
from framework.engine.http import HttpClient
from framework.errors import ConnectorError
from framework.plugins import commands
from framework.protocol import messages as p
from framework.webhooks.spool import Spool

SCHEMAS = connector.loaded.schemas
RATE = connector.loaded.model.client.rate_limit


def catalog_file(tmp_path: Path, *names: str) -> Path:
    catalog = connector.configured_catalog()
    if names:
        catalog.streams = [s for s in catalog.streams if s.stream.name in names]
    path = tmp_path / f"catalog-{'-'.join(names) or 'all'}.json"
    path.write_text(json.dumps(catalog.model_dump(mode="json", exclude_none=True)))
    return path


def records_by_stream(output: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for m in output:
        if m["type"] == "RECORD":
            found.setdefault(m["record"]["stream"], []).append(m["record"]["data"])
    return found


def key(stream: str, record: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(record.get(k) for k in connector.loaded.streams[stream].primary_key)


def api(sandbox, path: str, params: dict[str, Any] | None = None) -> Any:
    response = requests.get(f"{sandbox.url}/stores/{sandbox.store_hash}{path}", params=params,
                            headers={"X-Auth-Token": sandbox.access_token}, timeout=30)
    response.raise_for_status()
    return response.json() if response.status_code == 200 else None


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Any:
    from conftest import start_sandbox
    box = start_sandbox("--customers", "300", "--orders", "2500", "--products", "60",
                        "--seed", "31", "--plan", "enterprise")
    yield box
    box.stop()


@pytest.mark.e2e
def test_every_stream_through_a_pipe_is_valid(shop, write_json, tmp_path) -> None:
    spool = tmp_path / "spool.db"
    carts = shop.admin("POST", "carts", {"create": 3})["created"]
    queue = Spool(spool)
    for n, cart_id in enumerate(carts):
        queue.append(shop.store_hash, "store/cart/abandoned", "cart", cart_id,
                     {"data": {"id": cart_id}}, f"hash-{n}")
    # A storefront beacon's event as the receiver's storefront endpoint spools it.
    now = format_utc(time.time())
    viewed = {"id": "v-1:e-1", "type": "product_viewed", "occurred_at": now,
              "received_at": now, "visitor_id": "v-1", "customer_id": None, "email": None,
              "identified_by": None, "url": "https://shop.example.com/p/1",
              "product": {"id": "1", "variant_id": None, "price": 12.5}, "category": None,
              "cart": None}
    queue.append(shop.store_hash, "storefront/product_viewed", "storefront_event",
                 viewed["id"], viewed, "beacon-1")
    queue.close()
    time.sleep(1.1)  # spooled events are read once a second old (SETTLE_S)
    config = write_json(shop.config(spool_path=str(spool)))
    everything = tmp_path / "everything.json"
    everything.write_bytes(run_cli("runner", "discover", "bigcommerce", "--configured",
                                   "--all").stdout)
    result = run_cli("runner", "read", "bigcommerce", "--config", str(config), "--catalog",
                     str(everything))
    assert result.returncode == 0, result.stderr.decode()
    for line in result.stdout.splitlines():
        official.AirbyteMessage.model_validate_json(line)
    output = messages(result.stdout)
    found = records_by_stream(output)
    assert set(found) == set(connector.loaded.streams)
    for stream, rows in found.items():
        validator = Draft7Validator(SCHEMAS[stream])
        for row in rows:
            errors = list(validator.iter_errors(row))
            assert not errors, f"{stream}: {errors[0].message} in {row}"
        keys = [key(stream, row) for row in rows]
        assert len(keys) == len(set(keys)), f"{stream} has duplicate primary keys"
    snapshot = shop.admin("GET", "snapshot")
    assert len(found["orders"]) == len(snapshot["orders"]) == 2500
    with_coupon = {o["id"] for o in found["orders"] if o["coupon_discount"]}
    assert {c["order_id"] for c in found["order_coupons"]} == with_coupon
    assert {c["id"] for c in found["carts"]} == set(carts)
    order = found["orders"][0]
    assert isinstance(order["total_inc_tax"], float)  # "225.0000" became a number
    assert order["date_modified"].endswith("Z")  # RFC 2822 became ISO 8601 UTC
    assert found["store"][0]["secure_url"].startswith("https://")
    # API-shaped records carry their store; the model's records (whole) name it as account.
    model = {name for name in found if (parent := connector.loaded.streams[name].parent)
             and parent.whole}
    assert {r["store_hash"] for name in set(found) - model for r in found[name]} == {
        shop.store_hash}
    assert model and {r["account"] for name in model for r in found[name]} == {shop.store_hash}


@pytest.mark.e2e
def test_order_lines_are_embedded_and_only_capped_orders_cost_a_request(shop, write_json,
                                                                       tmp_path) -> None:
    shop.admin("POST", "stats/reset")
    config = write_json(shop.config(concurrency=2))
    result = run_cli("runner", "read", "bigcommerce", "--config", str(config), "--catalog",
                     str(catalog_file(tmp_path, "orders", "order_products")))
    assert result.returncode == 0, result.stderr.decode()
    found = records_by_stream(messages(result.stdout))
    stats = shop.admin("GET", "stats")["by_path"]
    capped = [o for o in found["orders"]
              if any("__warning__" in c for c in o["consignments"]["shipping"])]
    assert 0 < len(capped) < 20
    # One request per capped order, none for the others; ~250 orders per orders request.
    assert stats["/v2/orders/{order_id}/products"] == len(capped)
    assert stats["/v2/orders"] <= 2500 / 250 + 12
    lines = Counter(line["order_id"] for line in found["order_products"])
    for order in capped:
        expected = api(shop, f"/v2/orders/{order['id']}/products", {"limit": 250})
        assert lines[order["id"]] == len(expected) > 50
    some = found["orders"][:20]
    for order in some:
        assert lines[order["id"]] == len(api(shop, f"/v2/orders/{order['id']}/products"))


def test_a_vanished_order_keeps_its_embedded_lines() -> None:
    order = {"id": 7, "consignments": {"shipping": [
        {"line_items": [{"id": 1, "order_id": 7}], "__warning__": {"message": "only 50"}}]}}
    assert order_line_items(order, lambda path, params: None) == [{"id": 1, "order_id": 7}]
    pages = {1: [{"id": n} for n in range(250)], 2: [{"id": 250}]}
    got = order_line_items(order, lambda path, params: pages.get(params["page"]))
    assert len(got) == 251


@pytest.mark.e2e
def test_several_stores_are_read_concurrently_with_their_own_state(make_sandbox, write_json,
                                                                   tmp_path) -> None:
    box = make_sandbox("--stores", "2", "--customers", "400", "--orders", "300",
                       "--products", "20", "--window-ms", "3000")
    assert len(box.stores) == 2
    config = write_json({"api_url": box.url, "stores": box.stores, "concurrency": 3})
    result = run_cli("runner", "read", "bigcommerce", "--config", str(config), "--catalog",
                     str(catalog_file(tmp_path, "customers", "orders")))
    assert result.returncode == 0, result.stderr.decode()
    output = messages(result.stdout)
    found = records_by_stream(output)
    hashes = [s["store_hash"] for s in box.stores]
    for stream in ("customers", "orders"):
        by_store = Counter(r["store_hash"] for r in found[stream])
        assert set(by_store) == set(hashes)
        keys = [key(stream, r) for r in found[stream]]
        assert len(keys) == len(set(keys))  # ids repeat across stores; keys do not
    assert Counter(r["store_hash"] for r in found["customers"]) == dict.fromkeys(hashes, 400)
    final = [m["state"]["stream"]["stream_state"] for m in output if m["type"] == "STATE"
             and m["state"]["stream"]["stream_descriptor"]["name"] == "orders"][-1]
    assert set(final["stores"]) == set(hashes)


@pytest.mark.e2e
def test_channel_ids_narrow_orders_products_and_customers(shop, write_json, tmp_path) -> None:
    config = write_json(shop.config(channel_ids=[2]))
    result = run_cli("runner", "read", "bigcommerce", "--config", str(config), "--catalog",
                     str(catalog_file(tmp_path, "customers", "orders", "products")))
    assert result.returncode == 0, result.stderr.decode()
    found = records_by_stream(messages(result.stdout))
    assert found["orders"] and all(o["channel_id"] == 2 for o in found["orders"])
    assert found["products"] and all(2 in pr["channels"] for pr in found["products"])
    assert all(c["channel_ids"] is None or 2 in c["channel_ids"] for c in found["customers"])
    everything = [o for page in range(1, 12)
                  for o in api(shop, "/v2/orders", {"limit": 250, "page": page}) or []]
    assert len(found["orders"]) == sum(1 for o in everything if o["channel_id"] == 2)


@pytest.mark.e2e
def test_carts_come_from_the_spool_and_resume_at_its_offset(shop, write_json, tmp_path) -> None:
    spool_path = tmp_path / "spool.db"
    spool = Spool(spool_path)
    first = shop.admin("POST", "carts", {"create": 2})["created"]
    for cart_id in [*first, "00000000-dead-4000-8000-000000000000", first[0]]:
        spool.append(shop.store_hash, "store/cart/updated", "cart", cart_id, {}, None)
    time.sleep(1.1)  # spooled events are read once a second old (SETTLE_S)
    config = write_json(shop.config(spool_path=str(spool_path)))
    catalog = catalog_file(tmp_path, "carts")
    run = run_cli("runner", "read", "bigcommerce", "--config", str(config), "--catalog",
                  str(catalog))
    assert run.returncode == 0, run.stderr.decode()
    output = messages(run.stdout)
    carts = records_by_stream(output)["carts"]
    assert sorted(c["id"] for c in carts if not c.get("is_deleted")) == sorted(first)
    # The unknown cart (404) is a tombstone, not a failure. It carries the stream's cursor,
    # the time it was found gone (newer than any version of the cart it ends).
    tombstones = [c for c in carts if c.get("is_deleted")]
    found_at = tombstones[0].pop("updated_time")
    assert tombstones == [{
        "id": "00000000-dead-4000-8000-000000000000", "is_deleted": True,
        "webhook_scope": "store/cart/updated", "store_hash": shop.store_hash}]
    assert found_at >= max(c["updated_time"] for c in carts if not c.get("is_deleted"))
    assert found_at.endswith("Z") and len(found_at) == 20
    assert all(c["webhook_scope"] == "store/cart/updated" for c in carts)
    state = tmp_path / "state.jsonl"
    state.write_bytes(run.stdout)
    assert [m["state"]["stream"]["stream_state"] for m in output if m["type"] == "STATE"][-1] \
        == {"stores": {shop.store_hash: {"spool_offset": 4}}}
    again = run_cli("runner", "read", "bigcommerce", "--config", str(config), "--catalog",
                    str(catalog), "--state", str(state))
    assert "carts" not in records_by_stream(messages(again.stdout))
    later = shop.admin("POST", "carts", {"create": 1})["created"]
    spool.append(shop.store_hash, "store/cart/created", "cart", later[0], {}, None)
    time.sleep(1.1)  # spooled events are read once a second old (SETTLE_S)
    third = run_cli("runner", "read", "bigcommerce", "--config", str(config), "--catalog",
                    str(catalog), "--state", str(state))
    assert [c["id"] for c in records_by_stream(messages(third.stdout))["carts"]] == later


def client_for(box, **options: Any) -> HttpClient:
    return HttpClient(f"{box.url}/stores/{box.store_hash}",
                      {"X-Auth-Token": box.access_token}, rate_limit=RATE, **options)


def test_429_without_headers_backs_off_and_retries(make_sandbox) -> None:
    box = make_sandbox("--customers", "5")
    box.admin("POST", "faults", {"status": 429, "bare": True, "count": 2})
    client = client_for(box, backoff_s=0.01)
    assert len(client.get("/v3/customers")["data"]) == 5
    assert client.stats.throttled == 2


def test_a_page_that_is_not_json_names_the_url(make_sandbox) -> None:
    box = make_sandbox("--customers", "5")
    box.admin("POST", "faults", {"status": 200, "html": True, "count": 3})
    client = client_for(box, backoff_s=0.01, max_retries=2)
    with pytest.raises(ConnectorError) as caught:
        client.get("/v3/customers")
    assert caught.value.message.startswith(
        f"GET {box.url}/stores/{box.store_hash}/v3/customers answered HTTP 200 with text/html")
    assert caught.value.failure_type == "transient_error"


def test_422_is_reported_with_the_api_reason(make_sandbox) -> None:
    box = make_sandbox("--customers", "5")
    with pytest.raises(ConnectorError, match=r"failed with HTTP 422: .*must be between 1 and 250"):
        client_for(box).get("/v3/customers", {"limit": 500})


def test_persistent_5xx_ends_the_read_with_a_transient_error_trace(
        make_sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    box = make_sandbox("--customers", "5")
    box.admin("POST", "faults", {"status": 503, "count": 10})
    monkeypatch.setattr("framework.engine.http.random.uniform", lambda low, high: 0.0)
    catalog = connector.configured_catalog()
    catalog.streams = [s for s in catalog.streams if s.stream.name == "customers"]
    out = io.BytesIO()
    code = commands.run(connector.read(box.config(), catalog, {}), out=out)
    assert code == 1
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    error = next(m for m in lines if m["type"] == "TRACE" and m["trace"]["type"] == "ERROR")
    assert error["trace"]["error"]["failure_type"] == "transient_error"
    assert error["trace"]["error"]["stream_descriptor"] == {"name": "customers"}
    assert {"type": "TRACE", "status": "INCOMPLETE"}.items() <= {
        "type": lines[-2]["type"],
        "status": lines[-2]["trace"].get("stream_status", {}).get("status")}.items()
    assert p.parse_line(out.getvalue().splitlines()[-1], 1)["type"] == "TRACE"
