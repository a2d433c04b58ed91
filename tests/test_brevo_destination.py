"""``runner read bigcommerce | runner write brevo`` against the two sandboxes: the source emits
the commerce model's streams (what ``runner sync`` asks for), the destination reads only those."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import RUNNER, BrevoBox, messages, run_cli

from app.forward import model_catalog
from connectors.bigcommerce import connector as bigcommerce
from connectors.brevo.mapping import international_phone
from framework.protocol import messages as p


def pipeline(source: Path, destination: Path, *extra: str) -> tuple[list[Any], list[Any]]:
    """Run read | write with real pipes (the commerce model's streams, as ``runner sync``
    reads them); returns (source messages, echoed states)."""
    catalog = destination.parent / "model.json"
    catalog.write_text(json.dumps(model_catalog(bigcommerce).model_dump(
        mode="json", exclude_none=True)))
    read = subprocess.run([RUNNER, "read", "bigcommerce", "--config", str(source), "--catalog",
                           str(catalog), *extra], capture_output=True, timeout=300)
    assert read.returncode == 0, read.stderr.decode()
    write = subprocess.run([RUNNER, "write", "brevo", "--config", str(destination),
                            "--catalog", str(catalog)],
                           input=read.stdout, capture_output=True, timeout=300)
    assert write.returncode == 0, write.stderr.decode()
    return messages(read.stdout), messages(write.stdout)


def expected_totals(source: list[Any]) -> dict[str, tuple[int, float]]:
    totals: dict[str, tuple[int, float]] = {}
    orders = {m["record"]["data"]["id"]: m["record"]["data"] for m in source
              if m["type"] == "RECORD" and m["record"]["stream"] == "commerce_orders"}
    for order in orders.values():
        if order["customer_id"] and order["counts_as_purchase"]:
            count, spent = totals.get(order["customer_id"], (0, 0.0))
            totals[order["customer_id"]] = (count + 1, spent + order["total"]
                                            - order["refunded"])
    return totals


@pytest.mark.e2e
def test_brevo_holds_what_the_store_implies_then_only_changes_follow(
        make_sandbox, write_json, brevo: BrevoBox, destination: Path) -> None:
    store = make_sandbox("--customers", "300", "--orders", "700", "--products", "10",
                         "--plan", "enterprise", "--seed", "51")
    source = write_json(store.config())
    read, echoed = pipeline(source, destination)
    source_states = [m for m in read if m["type"] == "STATE"]
    assert [m["state"]["stream"] for m in echoed] == [m["state"]["stream"] for m in source_states]
    customers = [m["record"]["data"] for m in read
                 if m["type"] == "RECORD" and m["record"]["stream"] == "commerce_customers"]
    totals = expected_totals(read)
    contacts = brevo.contacts()
    assert len(contacts) == len(customers) == 300
    for customer in customers:
        contact = contacts[customer["email"].lower()]
        attributes = contact["attributes"]
        assert attributes["FIRSTNAME"] == customer["first_name"]
        assert attributes["LASTNAME"] == customer["last_name"]
        assert attributes.get("CUSTOMER_GROUP") == (customer["group"] or {}).get("name")
        region = (customer["addresses"] or [{}])[0].get("country_code") or "US"
        phone = international_phone(customer["phone"], region) if customer["phone"] else None
        assert attributes.get("SMS") in (phone, None)  # None: a number another contact holds
        orders, spent = totals.get(customer["id"], (0, 0.0))
        assert attributes["ORDER_COUNT"] == orders
        assert attributes["TOTAL_SPENT"] == pytest.approx(spent, abs=0.01)
        assert 40 in contact["listIds"]
        assert (41 in contact["listIds"]) == (orders > 0)
        assert contact["emailBlacklisted"] is False
    # A contact unsubscribes in Brevo; then the store changes and a second run follows.
    quiet = customers[0]["email"].lower()
    brevo.admin("blacklist", {"email": quiet})
    before = len(brevo.state()["processes"])
    brevo.admin("stats/reset", {})
    changed = store.admin("POST", "mutate", {"update": 6, "seed": 3})["updated"]
    state = destination.parent / "state.jsonl"
    state.write_text("\n".join(json.dumps(m) for m in echoed))
    pipeline(source, destination, "--state", str(state))
    after = brevo.state()
    # A few contacts go one by one (POST /v3/contacts), many through imports.
    sent = sum(process["rows"] for process in after["processes"][before:]) + after[
        "requests"]["by_path"].get("/v3/contacts", 0)
    assert len(changed) <= sent <= len(changed) + 4  # the changed ones and the boundary second
    events = brevo.state()["events"]
    by_customer = {c["id"]: c["email"].lower() for c in customers}
    assert sorted(e["identifiers"]["email_id"] for e in events
                  if e["event_name"] == "customer_updated") == sorted(
        by_customer[str(i)] for i in changed)
    assert not [e for e in events if e["event_name"] == "customer_created"]
    assert brevo.contacts()[quiet]["emailBlacklisted"] is True  # never resubscribed


def customer(i: int, email: str, phone: str = "") -> dict[str, Any]:
    """A customer of the commerce model (specs/schemas/commerce/v1/customer.json)."""
    unknown = {"state": "unknown"}
    return {"platform": "bigcommerce", "account": "s1", "id": str(i), "deleted": False,
            "email": email, "first_name": f"F{i}", "last_name": "L", "phone": phone,
            "group": None, "created_at": "2024-01-02T00:00:00Z",
            "updated_at": "2024-01-02T00:00:00Z", "custom_fields": [],
            "addresses": [{"country_code": "TH", "city": "Bangkok", "postal_code": "10500"}],
            "consent": {"email": unknown, "sms": unknown, "abandoned_cart": unknown},
            "order_count": None, "amount_spent": None}


NO_PURCHASE = {0, 4, 5, 6}  # BigCommerce's Incomplete, Refunded, Cancelled, Declined


def order(i: int, customer_id: int, status: int, total: float, refunded: float = 0.0,
          created: str = "2024-03-01T10:00:00Z") -> dict[str, Any]:
    """An order of the commerce model, its status as BigCommerce's mapping makes it."""
    return {"platform": "bigcommerce", "account": "s1", "id": str(i), "deleted": False,
            "customer_id": str(customer_id) if customer_id else None, "email": None,
            "counts_as_purchase": status not in NO_PURCHASE,
            "platform_status": {"id": str(status), "name": None}, "total": total,
            "refunded": refunded, "billing_address": {}, "lines": [], "coupons": [],
            "created_at": created, "updated_at": created}


STREAMS = {"customers": "commerce_customers", "orders": "commerce_orders"}


def lines(*items: tuple[str, dict[str, Any]], state_for: str | None = None) -> bytes:
    """Records of the model's streams (named by their kind's plural: ``customers``)."""
    out = b"".join(p.record_line(STREAMS.get(stream, stream), data, 1)
                   for stream, data in items)
    state_for = STREAMS.get(state_for or "", state_for)
    if state_for:
        out += p.dump(p.state_message(state_for, {"stores": {"s1": {"n": 1}}}))
    return out


def test_bad_records_go_to_the_dead_letter_file_and_are_counted(
        brevo: BrevoBox, destination: Path) -> None:
    stdin = lines(("customers", customer(1, "not an email")),
                  ("customers", customer(2, "ok@example.com", "081-234-5678")),
                  ("customers", customer(3, "bad-phone@example.com", "12345")),
                  state_for="customers")
    result = run_cli("runner", "write", "brevo", "--config", str(destination), stdin=stdin)
    assert result.returncode == 0, result.stderr.decode()
    echoed = messages(result.stdout)
    assert echoed[0]["state"]["destinationStats"] == {"recordCount": 2.0,
                                                      "rejectedRecordCount": 1.0}
    dead = [json.loads(line) for line in (destination.parent / "state" /
                                          "dead-letter.jsonl").read_text().splitlines()]
    assert dead[0]["reason"] == "invalid email 'not an email'"
    assert dead[0]["record"]["id"] == "1"
    contacts = brevo.contacts()
    assert contacts["ok@example.com"]["attributes"]["SMS"] == "+66812345678"
    assert "SMS" not in contacts["bad-phone@example.com"]["attributes"]  # synced all the same
    assert b"1 phone numbers are not valid numbers" in result.stderr


def test_orders_count_once_by_the_stated_rule_across_runs(brevo: BrevoBox,
                                                          destination: Path) -> None:
    first = lines(("customers", customer(7, "buyer@example.com")),
                  ("orders", order(100, 7, 10, 50.0)),
                  ("orders", order(100, 7, 2, 50.0)),  # the same order, updated: once
                  ("orders", order(101, 7, 5, 80.0)),  # cancelled: not counted
                  ("orders", order(102, 7, 14, 40.0, refunded=15.0)),  # partly refunded
                  state_for="orders")
    assert run_cli("runner", "write", "brevo", "--config", str(destination),
                   stdin=first).returncode == 0
    contact = brevo.contacts()["buyer@example.com"]
    assert contact["attributes"]["ORDER_COUNT"] == 2
    assert contact["attributes"]["TOTAL_SPENT"] == 75.0
    assert 41 in contact["listIds"]
    # Next run: both counted orders are refunded or cancelled; the contact leaves buyers.
    later = lines(("orders", order(100, 7, 4, 50.0, refunded=50.0)),
                  ("orders", order(102, 7, 5, 40.0)), state_for="orders")
    assert run_cli("runner", "write", "brevo", "--config", str(destination),
                   stdin=later).returncode == 0
    contact = brevo.contacts()["buyer@example.com"]
    assert contact["attributes"]["ORDER_COUNT"] == 0
    assert 41 not in contact["listIds"] and 40 in contact["listIds"]


def test_check_names_the_lists_that_do_not_exist(brevo: BrevoBox, tmp_path: Path) -> None:
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"api_url": brevo.url, "api_key": brevo.key,
                                  "lists": {"all_customers": 40, "buyers": 77}}))
    result = run_cli("runner", "check", "brevo", "--config", str(config))
    assert result.returncode == 1
    assert b"these lists do not exist in Brevo: buyers=77" in result.stderr
    config.write_text(json.dumps({"api_url": brevo.url, "api_key": "xkeysib-wrong-key",
                                  "lists": {"all_customers": 40}}))
    result = run_cli("runner", "check", "brevo", "--config", str(config))
    assert b"Brevo rejected the API key" in result.stderr
    assert b"xkeysib-wrong-key" not in result.stderr + result.stdout


def test_config_requires_the_all_customers_list(tmp_path: Path) -> None:
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"api_key": "k", "lists": {"buyers": 1}}))
    result = run_cli("runner", "write", "brevo", "--config", str(config), stdin=b"")
    assert result.returncode == 2
    assert b"'lists.all_customers' is required" in result.stderr


@pytest.mark.e2e
def test_orders_backfill_quietly_then_each_change_fires_one_event(
        make_sandbox, write_json, brevo: BrevoBox, destination: Path) -> None:
    store = make_sandbox("--customers", "100", "--orders", "200", "--products", "10",
                         "--plan", "enterprise", "--seed", "61")
    source = write_json(store.config())
    _, echoed = pipeline(source, destination)
    state = brevo.state()
    assert len(state["orders"]) == 200 and all(o["historical"] for o in state["orders"])
    assert state["events"] == []  # the backfill fires no automation
    first = {o["id"]: o for o in state["orders"]}
    some = next(iter(first.values()))
    assert some["products"] and {"productId", "variantId", "quantity", "price"} <= set(
        some["products"][0])
    with_coupon = [o for o in state["orders"] if o.get("coupons")]
    assert with_coupon and all(c.startswith("SAVE10-") for o in with_coupon
                               for c in o["coupons"])
    saved = destination.parent / "first-state.jsonl"
    saved.write_text("\n".join(json.dumps(m) for m in echoed))
    changed = store.admin("POST", "mutate", {"resource": "orders", "update": 3, "create": 2,
                                             "seed": 8})
    signed_up = store.admin("POST", "mutate", {"resource": "customers", "create": 2})["created"]
    pipeline(source, destination, "--state", str(saved))
    events = brevo.state()["events"]
    created = [e for e in events if e["event_name"] == "customer_created"]
    # A numeric id goes as a number, as before the destination read the model (text ids).
    assert sorted(e["event_properties"]["customer_id"] for e in created) == sorted(signed_up)
    placed = [e for e in events if e["event_name"] == "order_placed"]
    updated = [e for e in events if e["event_name"] == "order_updated"]
    assert sorted(e["event_properties"]["order_id"] for e in placed) == sorted(
        f"{store.store_hash}-{i}" for i in changed["created"])
    assert sorted(e["event_properties"]["order_id"] for e in updated) == sorted(
        f"{store.store_hash}-{i}" for i in changed["updated"])
    for event in events:
        if event["event_name"] == "order_status_changed":
            props = event["event_properties"]
            assert props["previous_status"] != props["new_status"] == props["status"]
    orders = {o["id"]: o for o in brevo.state()["orders"]}
    assert len(orders) == 202
    for order_id in changed["created"]:
        assert orders[f"{store.store_hash}-{order_id}"]["historical"] is False
    # The same changes read again (a rerun from the same state): no event twice.
    pipeline(source, destination, "--state", str(saved))
    assert len(brevo.state()["events"]) == len(events)


@pytest.mark.e2e
def test_catalog_with_variants_categories_urls_and_stock(make_sandbox, write_json,
                                                          brevo: BrevoBox,
                                                          destination: Path) -> None:
    store = make_sandbox("--customers", "20", "--orders", "20", "--products", "40",
                         "--plan", "enterprise", "--seed", "71")
    source = write_json(store.config())
    read, echoed = pipeline(source, destination)
    records = {}
    for m in read:
        if m["type"] == "RECORD":
            records.setdefault(m["record"]["stream"], []).append(m["record"]["data"])
    site = records["commerce_stores"][0]["url"]
    stock = {row["variant_id"]: sum(loc["available"] for loc in row["locations"]
                                    if loc["enabled"])
             for row in records["commerce_stock_levels"]}
    products = {item["id"]: item for item in brevo.state()["products"]}
    expected = 0
    for product in records["commerce_products"]:
        parent = products[f"{store.store_hash}-{product['id']}"]
        assert parent["url"] == product["url"] and parent["url"].startswith(site + "/")
        assert parent["categories"] == [f"{store.store_hash}-{c}"
                                        for c in product["category_ids"]]
        variants = product["variants"]
        expected += 1 if len(variants) == 1 else 1 + len(variants)
        if len(variants) == 1:
            assert parent["stock"] == stock[variants[0]["id"]]
        for variant in variants if len(variants) > 1 else []:
            item = products[f"{store.store_hash}-{product['id']}-{variant['id']}"]
            assert item["parentId"] == parent["id"] and item["stock"] == stock[variant["id"]]
    assert len(products) == expected
    categories = {c["id"]: c for c in brevo.state()["categories"]}
    assert len(categories) == len(records["commerce_categories"]) == 12
    # Stock runs out at the main location: the next run sends the new level.
    variant_id = int(records["commerce_stock_levels"][0]["variant_id"])
    store.admin("POST", "inventory", {"variant_id": variant_id, "location_id": 1, "level": 0})
    store.admin("POST", "inventory", {"variant_id": variant_id, "location_id": 2, "level": 0})
    saved = destination.parent / "catalog-state.jsonl"
    saved.write_text("\n".join(json.dumps(m) for m in echoed))
    pipeline(source, destination, "--state", str(saved))
    after = {item["id"]: item for item in brevo.state()["products"]}
    holder = [i for i in after.values() if i["id"].endswith(f"-{variant_id}")
              or i["id"] == f"{store.store_hash}-{variant_id // 10}"]
    assert any(i.get("stock") == 0 for i in holder)


def test_custom_fields_group_names_and_a_custom_mapping(brevo: BrevoBox, tmp_path: Path) -> None:
    """A custom ``customer_mapping`` of model paths: custom fields and the group by name."""
    config = tmp_path / "brevo.json"
    config.write_text(json.dumps({
        "api_url": brevo.url, "api_key": brevo.key, "lists": {"all_customers": 40},
        "state_dir": str(tmp_path / "state"),
        "customer_mapping": {"email": "email", "first_name": "FIRSTNAME",
                             "custom_fields.Birthday": "BIRTHDAY",
                             "custom_fields.Loyalty tier": "LOYALTY_TIER",
                             "group.name": "CUSTOMER_GROUP",
                             "order_count": "ORDER_COUNT"}}))
    shopper = {**customer(5, "fields@example.com"), "group": {"id": "3", "name": "VIP"},
               "custom_fields": [{"name": "Birthday", "value": "1990-04-12"},
                                 {"name": "Loyalty tier", "value": "gold"}]}
    result = run_cli("runner", "write", "brevo", "--config", str(config),
                     stdin=lines(("customers", shopper), state_for="customers"))
    assert result.returncode == 0, result.stderr.decode()
    assert brevo.contacts()["fields@example.com"]["attributes"] == {
        "FIRSTNAME": "F5", "BIRTHDAY": "1990-04-12", "LOYALTY_TIER": "gold",
        "CUSTOMER_GROUP": "VIP", "ORDER_COUNT": 0}
    types = {a["name"]: a["type"] for a in brevo.state()["attributes"]}
    assert types["ORDER_COUNT"] == "float" and types["BIRTHDAY"] == "text"


@pytest.mark.e2e
def test_abandoned_carts_follow_consent_and_leave_the_list_when_converted(
        make_sandbox, write_json, brevo: BrevoBox, destination: Path, tmp_path: Path) -> None:
    from framework.webhooks.spool import Spool
    store = make_sandbox("--customers", "40", "--orders", "10", "--products", "10",
                         "--plan", "enterprise", "--seed", "81")
    spool_path = tmp_path / "spool.db"
    source = write_json(store.config(spool_path=str(spool_path)))
    read, echoed = pipeline(source, destination)  # contacts first, no cart yet
    customers = [m["record"]["data"] for m in read
                 if m["type"] == "RECORD" and m["record"]["stream"] == "commerce_customers"]
    yes = next(c for c in customers if c["consent"]["abandoned_cart"]["state"] == "subscribed")
    no = next(c for c in customers if c["consent"]["abandoned_cart"]["state"] != "subscribed")
    carts = {name: store.admin("POST", "carts", {"create": 1, "customer_id": int(c["id"])})[
        "created"][0] for name, c in (("yes", yes), ("no", no))}
    guest = store.admin("POST", "carts", {"create": 1, "customer_id": 0})["created"][0]
    spool = Spool(spool_path)
    for cart_id in (carts["yes"], carts["no"], guest):
        spool.append(store.store_hash, "store/cart/abandoned", "cart", cart_id, {}, None)
    time.sleep(1.1)  # spooled events are read once a second old (SETTLE_S)
    saved = tmp_path / "after-first.jsonl"
    saved.write_text("\n".join(json.dumps(m) for m in echoed))
    _, echoed = pipeline(source, destination, "--state", str(saved))
    events = [e for e in brevo.state()["events"] if e["event_name"] == "cart_abandoned"]
    assert [e["identifiers"]["email_id"] for e in events] == [yes["email"].lower()]
    assert events[0]["event_properties"]["cart_id"] == carts["yes"]
    assert events[0]["event_properties"]["items"]
    contacts = brevo.contacts()
    assert 42 in contacts[yes["email"].lower()]["listIds"]
    assert 42 not in contacts[no["email"].lower()]["listIds"]
    # The cart converts: BigCommerce deletes it and says so; the contact leaves the list.
    store.admin("POST", "carts", {"delete": [carts["yes"]]})
    spool.append(store.store_hash, "store/cart/converted", "cart", carts["yes"], {}, None)
    time.sleep(1.1)  # spooled events are read once a second old (SETTLE_S)
    saved.write_text("\n".join(json.dumps(m) for m in echoed))
    pipeline(source, destination, "--state", str(saved))
    assert 42 not in brevo.contacts()[yes["email"].lower()]["listIds"]
    assert len([e for e in brevo.state()["events"] if e["event_name"] == "cart_abandoned"]) == 1


def test_an_order_that_moves_to_another_customer_changes_both_totals(
        brevo: BrevoBox, destination: Path) -> None:
    first = lines(("customers", customer(1, "first@example.com")),
                  ("customers", customer(2, "second@example.com")),
                  ("orders", order(500, 1, 10, 20.0)), state_for="orders")
    assert run_cli("runner", "write", "brevo", "--config", str(destination),
                   stdin=first).returncode == 0
    moved = lines(("orders", order(500, 2, 10, 20.0)), state_for="orders")
    assert run_cli("runner", "write", "brevo", "--config", str(destination),
                   stdin=moved).returncode == 0
    contacts = brevo.contacts()
    assert contacts["first@example.com"]["attributes"]["ORDER_COUNT"] == 0
    assert 41 not in contacts["first@example.com"]["listIds"]
    assert contacts["second@example.com"]["attributes"]["ORDER_COUNT"] == 1
    assert 41 in contacts["second@example.com"]["listIds"]


def test_an_order_read_before_its_customer_counts_for_the_customer(
        brevo: BrevoBox, destination: Path) -> None:
    """Streams arrive in any order: totals must not depend on it (found by the chaos script,
    where a killed pipeline read orders before their customers)."""
    early = {**order(200, 9, 10, 30.0), "email": "billing@example.com"}
    stdin = (lines(("orders", early), state_for="orders")
             + lines(("customers", customer(9, "late@example.com")), state_for="customers"))
    assert run_cli("runner", "write", "brevo", "--config", str(destination),
                   stdin=stdin).returncode == 0
    contact = brevo.contacts()["late@example.com"]
    assert contact["attributes"]["ORDER_COUNT"] == 1
    assert contact["attributes"]["TOTAL_SPENT"] == 30.0
    assert 41 in contact["listIds"]


def test_products_go_with_their_url_whatever_the_order_of_the_streams(
        make_sandbox, write_json, brevo: BrevoBox, destination: Path) -> None:
    """Product URLs are made of the store's address, and Brevo keeps what it was sent (the
    chaos script once found 202 products sent without a URL that no later run corrected).
    The model's URLs are absolute: products read with no store record go with their URL,
    and their state is echoed."""
    store = make_sandbox("--customers", "5", "--orders", "5", "--products", "6",
                         "--plan", "enterprise", "--seed", "72")
    catalog = destination.parent / "model.json"
    catalog.write_text(json.dumps(model_catalog(bigcommerce).model_dump(
        mode="json", exclude_none=True)))
    read = run_cli("runner", "read", "bigcommerce", "--config", str(write_json(store.config())),
                   "--catalog", str(catalog))
    assert read.returncode == 0, read.stderr.decode()
    by_stream: dict[str, list[bytes]] = {}
    for line in read.stdout.splitlines(keepends=True):
        message = json.loads(line)
        if message["type"] == "RECORD":
            by_stream.setdefault(message["record"]["stream"], []).append(line)
    products_only = (b"".join(by_stream["commerce_products"]) + p.dump(
        p.state_message("commerce_products", {"stores": {"s1": {"n": 1}}})))
    config = json.loads(destination.read_text())
    destination.write_text(json.dumps({**config, "flush_seconds": 0}))  # flush at every state
    result = run_cli("runner", "write", "brevo", "--config", str(destination),
                     "--catalog", str(catalog), stdin=products_only)
    assert result.returncode == 0, result.stderr.decode()
    echoed = [m["state"]["stream"]["stream_descriptor"]["name"] for m in messages(result.stdout)]
    assert echoed == ["commerce_products"]
    site = json.loads(by_stream["commerce_stores"][0])["record"]["data"]["url"]
    sent = brevo.state()["products"]
    assert len(sent) >= 6 and all(item["url"].startswith(site) for item in sent)


# --- held to Brevo's SDK (brevo-python): each test failed on the destination before --------

def dead_letters(destination: Path) -> list[dict[str, Any]]:
    path = destination.parent / "state" / "dead-letter.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_events_a_partly_failed_batch_refused_are_dead_lettered_not_marked_sent(
        brevo: BrevoBox, destination: Path) -> None:
    """Brevo answers a partly failed batch with 207 and its BatchEventsResponse
    (``errors: [{eventIndex: [...], message}]``); the destination read ``failed[].index``
    and so took every event of the batch as sent."""
    later = "2099-01-01T00:00:00Z"  # after the first run: live orders, which fire events
    good = {**order(1, 0, 11, 10.0, created=later), "email": "guest@example.com"}
    bad = {**order(2, 0, 11, 12.0, created=later), "email": "no-at-sign.example.com"}
    result = run_cli("runner", "write", "brevo", "--config", str(destination),
                     stdin=lines(("orders", good), ("orders", bad), state_for="orders"))
    assert result.returncode == 0, result.stderr.decode()
    placed = [e for e in brevo.state()["events"] if e["event_name"] == "order_placed"]
    assert [e["identifiers"]["email_id"] for e in placed] == ["guest@example.com"]
    refused = [d for d in dead_letters(destination) if d["stream"] == "events"]
    assert len(refused) == 1
    assert refused[0]["record"]["identifiers"]["email_id"] == "no-at-sign.example.com"
    assert refused[0]["reason"] == "Brevo refused the event: Invalid email address"
    assert b"rejected a record of events" in result.stderr
    # Counted in the STATE of the stream the event came of, echoed once the batch was sent.
    echoed = [json.loads(line) for line in result.stdout.splitlines()]
    assert [m["state"]["destinationStats"]["rejectedRecordCount"] for m in echoed] == [1.0]
    # Not marked sent: the ledger let it go, so a corrected run may send it.
    ledger = sqlite3.connect(destination.parent / "state" / "brevo.db")
    keys = {row[0] for row in ledger.execute("SELECT key FROM events_sent")}
    assert any(k.startswith("s1:1:") for k in keys) and not any(k.startswith("s1:2:")
                                                                 for k in keys)


def many_customers(count: int, phone_of: dict[int, str] | None = None) -> bytes:
    """``count`` customers (more than go one by one: they are imported)."""
    return lines(*[("customers", customer(i, f"c{i}@example.com", (phone_of or {}).get(i, "")))
                   for i in range(1, count + 1)], state_for="customers")


def test_a_failed_import_is_reported_at_once_and_its_rows_dead_lettered(
        brevo: BrevoBox, destination: Path) -> None:
    """Import processes can end failed or cancelled; the destination polled until
    ``completed`` only (30 minutes, most of the hourly quota)."""
    brevo.admin("imports", {"end_as": ["failed"]})
    started = time.monotonic()
    result = run_cli("runner", "write", "brevo", "--config", str(destination),
                     stdin=many_customers(25), timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    assert time.monotonic() - started < 30
    assert b"ended failed" in result.stderr
    refused = [d for d in dead_letters(destination) if d["stream"] == "customers"]
    assert len(refused) == 25 and "import process 1 ended failed" in refused[0]["reason"]
    assert brevo.state()["contacts"] == []
    # Their totals were not marked sent: the next run sends them (and this import ends well).
    again = run_cli("runner", "write", "brevo", "--config", str(destination),
                    stdin=many_customers(25), timeout=60)
    assert again.returncode == 0, again.stderr.decode()
    assert len(brevo.contacts()) == 25
    assert all(c["attributes"]["ORDER_COUNT"] == 0 for c in brevo.contacts().values())


def test_rows_a_completed_import_lists_as_not_taken_are_dead_lettered(
        brevo: BrevoBox, destination: Path) -> None:
    """A completed import links reports of the rows it did not take (``info.import``)."""
    holder = requests.post(f"{brevo.url}/v3/contacts", headers={"api-key": brevo.key},
                           json={"email": "holder@example.com",
                                 "attributes": {"SMS": "+66812345678"}}, timeout=10)
    assert holder.status_code == 201
    result = run_cli("runner", "write", "brevo", "--config", str(destination),
                     stdin=many_customers(25, {7: "081-234-5678"}), timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    refused = [d for d in dead_letters(destination) if d["stream"] == "customers"]
    assert [(d["record"]["email"], d["reason"]) for d in refused] == [
        ("c7@example.com", "Brevo's import listed it in duplicate_phone_id")]
    assert "c7@example.com" not in brevo.contacts() and len(brevo.contacts()) == 25


def test_check_reads_every_page_of_lists(brevo: BrevoBox, tmp_path: Path) -> None:
    """``GET /v3/contacts/lists`` gives at most 50 a page, newest first: with 60 lists, the
    oldest were reported missing."""
    made = 0
    while made < 57:  # 60 lists in all, at the contacts endpoints' 10 a second
        answer = requests.post(f"{brevo.url}/v3/contacts/lists", headers={"api-key": brevo.key},
                               json={"name": f"Extra {made}", "folderId": 1}, timeout=10)
        if answer.status_code == 429:
            time.sleep(0.2)
            continue
        assert answer.status_code == 201
        made += 1
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"api_url": brevo.url, "api_key": brevo.key,
                                  "lists": {"all_customers": 40, "buyers": 41}}))
    result = run_cli("runner", "check", "brevo", "--config", str(config))
    assert result.returncode == 0, result.stderr.decode()
    config.write_text(json.dumps({"api_url": brevo.url, "api_key": brevo.key,
                                  "lists": {"all_customers": 40, "buyers": 9999}}))
    result = run_cli("runner", "check", "brevo", "--config", str(config))
    assert b"these lists do not exist in Brevo: buyers=9999" in result.stderr


def test_orders_carry_only_the_fields_of_brevos_order_model(
        brevo: BrevoBox, destination: Path) -> None:
    """No top-level ``email`` (not in the SDK's Order): the contact is in ``identifiers``;
    ids are strings and quantities integers."""
    stdin = lines(("customers", customer(7, "buyer@example.com")),
                  ("orders", order(100, 7, 10, 50.0)), state_for="orders")
    assert run_cli("runner", "write", "brevo", "--config", str(destination),
                   stdin=stdin).returncode == 0
    sent = brevo.state()["orders"]
    assert len(sent) == 1 and "email" not in sent[0]
    assert sent[0]["identifiers"] == {"email_id": "buyer@example.com"}


def test_the_ledger_belongs_to_one_brevo_account(brevo: BrevoBox, destination: Path,
                                                 tmp_path: Path) -> None:
    """Pointed at another account, the ledger would take what it never sent there as sent."""
    stdin = lines(("customers", customer(1, "ann@example.com")), state_for="customers")
    first = run_cli("runner", "write", "brevo", "--config", str(destination), stdin=stdin)
    assert first.returncode == 0, first.stderr.decode()
    brevo.admin("account", {"organization_id": "other-org", "company_name": "Second Brand"})
    other = run_cli("runner", "write", "brevo", "--config", str(destination), stdin=stdin)
    assert other.returncode != 0
    errors = [line for line in other.stderr.decode().splitlines() if "belongs to" in line]
    assert len(errors) == 1
    assert "'Sandbox Store' (organization sandbox-organization)" in errors[0]
    assert "'Second Brand' (organization other-org)" in errors[0]
    assert "point state_dir at a directory of its own" in errors[0]
    assert brevo.key not in other.stderr.decode()
    # Its own state directory: the second account starts from scratch, and is sent all.
    config = json.loads(destination.read_text())
    destination.write_text(json.dumps({**config, "state_dir": str(tmp_path / "second")}))
    assert run_cli("runner", "write", "brevo", "--config", str(destination),
                   stdin=stdin).returncode == 0
