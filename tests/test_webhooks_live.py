"""The live path as real processes: sandbox -> webhook -> receiver -> spool -> Brevo."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests
from conftest import BrevoBox, Sandbox, run_cli
from webhook_kit import HEADER, SECRET, Poster, payload, spool_key, start_receiver

pytestmark = pytest.mark.e2e


def wait_for(check: Callable[[], Any], timeout: float = 30, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or check}")


def settled_events(brevo: BrevoBox, quiet_s: float = 3, timeout: float = 30) -> int:
    """Brevo's event count once the forwarder has stopped adding to it (unchanged for
    ``quiet_s``): the webhooks of a change can be forwarded over more than one cycle."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        count = len(brevo.state()["events"])
        if count != last:
            last, since = count, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return count
        time.sleep(0.1)
    raise AssertionError(f"events kept arriving for {timeout} s")


def register(config: Path, url: str) -> None:
    result = run_cli("runner", "webhooks", "register", "--config", str(config), "--url", url)
    assert result.returncode == 0, result.stderr.decode()


def events(brevo: BrevoBox, name: str) -> list[dict[str, Any]]:
    return [e for e in brevo.state()["events"] if e["event_name"] == name]


def store_api(store: Sandbox, path: str, **params: Any) -> Any:
    return requests.get(f"{store.url}/stores/{store.store_hash}{path}", params=params,
                        headers={"X-Auth-Token": store.access_token}, timeout=10).json()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_store_changes_reach_brevo_once_through_webhooks(
        make_sandbox, write_json, brevo: BrevoBox, destination: Path, tmp_path: Path) -> None:
    store = make_sandbox("--customers", "40", "--orders", "20", "--products", "10",
                         "--plan", "enterprise", "--seed", "81",
                         "--webhook-retry-scale", "0.001")
    config = write_json(store.config(spool_path=str(tmp_path / "spool.db"),
                                     webhook_secret=SECRET))
    receiver = start_receiver(config, "--forward", str(destination),
                              "--state-dir", str(tmp_path / "forward"))
    try:
        register(config, receiver.endpoint)
        # The forwarder's first cycle polls: every customer becomes a contact.
        wait_for(lambda: len(brevo.state()["contacts"]) == 40, what="the first poll")
        customers = store_api(store, "/v3/customers", limit=50)["data"]
        shopper = next(c for c in customers if c["accepts_product_review_abandoned_cart_emails"])
        email = shopper["email"].lower()
        cart_id = store.admin("POST", "carts", {"create": 1, "customer_id": shopper["id"]})[
            "created"][0]
        wait_for(lambda: events(brevo, "cart_created"), what="cart_created")
        store.admin("POST", "carts", {"abandon": [cart_id]})
        abandoned = wait_for(lambda: events(brevo, "cart_abandoned"), what="cart_abandoned")
        assert len(abandoned) == 1 and abandoned[0]["identifiers"] == {"email_id": email}
        properties = abandoned[0]["event_properties"]
        cart = store_api(store, f"/v3/carts/{cart_id}")["data"]
        assert properties["amount"] == cart["cart_amount"]
        assert properties["currency"] == "USD"
        assert [(i["sku"], i["quantity"], i["price"], i["image_url"], i["url"], i["name"])
                for i in properties["items"]] == [
            (i["sku"], i["quantity"], i["sale_price"], i["image_url"], i["url"], i["name"])
            for i in cart["line_items"]["physical_items"]]
        assert "action=loadInCheckout" in properties["recovery_url"]
        assert cart_id in properties["recovery_url"]
        assert 42 in brevo.contacts()[email]["listIds"]

        store.admin("POST", "carts", {"convert": [cart_id]})
        wait_for(lambda: 42 not in brevo.contacts()[email]["listIds"], what="leaving list 42")

        # Stock: out, then back in: Brevo's product follows, and the return is counted.
        product = store_api(store, "/v3/catalog/products", include="variants", limit=1)[
            "data"][0]
        variant = product["variants"][0]
        brevo_id = (f"{store.store_hash}-{product['id']}" if len(product["variants"]) == 1
                    else f"{store.store_hash}-{product['id']}-{variant['id']}")

        def stock() -> Any:
            return next((p.get("stock") for p in brevo.state()["products"]
                         if p["id"] == brevo_id), None)

        for location in (1, 2):  # Brevo gets the stock across locations
            store.admin("POST", "inventory", {"variant_id": variant["id"], "level": 0,
                                              "location_id": location})
        wait_for(lambda: stock() == 0, what="stock 0")
        store.admin("POST", "inventory", {"variant_id": variant["id"], "level": 7})
        wait_for(lambda: stock() == 7, what="stock 7")

        # An order changes status: one event each, and a later poll adds none.
        changed = store.admin("POST", "mutate", {"resource": "orders", "update": 3, "seed": 5})
        order_ids = {f"{store.store_hash}-{i}" for i in changed["updated"]}

        def order_events() -> list[dict[str, Any]]:
            return [e for e in brevo.state()["events"]
                    if e["event_properties"].get("order_id") in order_ids]

        wait_for(lambda: len([e for e in order_events() if e["event_name"] == "order_updated"])
                 >= len([i for i in changed["updated"]
                         if store_api(store, f"/v2/orders/{i}").get("customer_id")]),
                 what="order_updated events")
        before = settled_events(brevo)
        read = run_cli("runner", "read", "bigcommerce", "--config", str(config))
        assert read.returncode == 0, read.stderr.decode()
        write = run_cli("runner", "write", "brevo", "--config", str(destination),
                        stdin=read.stdout)
        assert write.returncode == 0, write.stderr.decode()
        assert len(brevo.state()["events"]) == before  # the poll saw the same changes
    finally:
        log = receiver.stop()
    assert "back in stock" in log
    assert SECRET not in log and brevo.key not in log


def test_no_acknowledged_event_is_lost_when_the_receiver_is_killed(
        make_sandbox, write_json, tmp_path: Path) -> None:
    store = make_sandbox("--customers", "5", "--orders", "5", "--products", "5")
    config = write_json(store.config(spool_path=str(tmp_path / "spool.db"),
                                     webhook_secret=SECRET))
    port = free_port()
    receiver = start_receiver(config, "--port", str(port))
    bodies = [payload(store.store_hash, "store/customer/updated", {"type": "customer", "id": n})
              for n in range(1, 5001)]  # a burst of 5,000 at concurrency 50
    acked: list[str] = []
    lock = threading.Lock()

    def send(share: list[dict[str, Any]]) -> None:
        poster = Poster(receiver.endpoint)
        try:
            for body in share:
                status, _ = poster.post(orjson.dumps(body), {HEADER: SECRET})
                if status == 200:
                    with lock:
                        acked.append(spool_key(body))
        except (OSError, http.client.HTTPException):
            return  # the receiver died under us
        finally:
            poster.close()

    threads = [threading.Thread(target=send, args=(bodies[n::50],)) for n in range(50)]
    for thread in threads:
        thread.start()
    wait_for(lambda: len(acked) >= 2000, what="2,000 acknowledgements")
    os.kill(receiver.process.pid, signal.SIGKILL)
    for thread in threads:
        thread.join(timeout=30)
    receiver.process.wait()
    acknowledged = set(acked)
    assert 2000 <= len(acknowledged) < len(bodies)
    db = sqlite3.connect(tmp_path / "spool.db")
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    stored = {row[0] for row in db.execute("SELECT hash FROM events")}
    assert acknowledged <= stored  # every acknowledged event survived the kill
    db.close()
    # BigCommerce re-delivers what was not acknowledged: each ends up stored exactly once.
    again = start_receiver(config, "--port", str(port))
    poster = Poster(again.endpoint)
    try:
        for body in bodies:
            assert poster.post(orjson.dumps(body), {HEADER: SECRET})[0] == 200
    finally:
        poster.close()
        again.stop()
    db = sqlite3.connect(tmp_path / "spool.db")
    assert db.execute("SELECT COUNT(*), COUNT(DISTINCT hash) FROM events").fetchone() == (
        len(bodies), len(bodies))
    db.close()


def test_the_sandbox_retries_failed_deliveries_and_deactivates_a_dead_hook(
        make_sandbox, write_json, tmp_path: Path) -> None:
    store = make_sandbox("--customers", "5", "--orders", "5", "--products", "5",
                         "--webhook-retry-scale", "0.001")
    config = write_json(store.config(spool_path=str(tmp_path / "spool.db"),
                                     webhook_secret=SECRET))
    port = free_port()
    register(config, f"http://127.0.0.1:{port}/webhooks/bigcommerce")
    store.admin("POST", "mutate", {"resource": "customers", "update": 1, "seed": 1})
    time.sleep(0.5)  # the first attempts fail: nothing listens yet
    assert store.admin("GET", "hooks")["stats"]["failed"] >= 1
    receiver = start_receiver(config, "--port", str(port))
    try:
        spool = tmp_path / "spool.db"

        def delivered() -> bool:
            db = sqlite3.connect(spool)
            try:
                return db.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 1
            finally:
                db.close()

        wait_for(delivered, timeout=20, what="the retried delivery")
    finally:
        receiver.stop()
    # A destination that never answers: after the last retry (about 48 h, scaled) the hook
    # is deactivated, as BigCommerce does; register reactivates it.
    dead = make_sandbox("--customers", "5", "--orders", "5", "--products", "5",
                        "--webhook-retry-scale", "0.00001")
    dead_config = write_json(dead.config(spool_path=str(tmp_path / "dead.db"),
                                         webhook_secret=SECRET))
    register(dead_config, f"http://127.0.0.1:{free_port()}/webhooks/bigcommerce")
    dead.admin("POST", "mutate", {"resource": "customers", "update": 1, "seed": 1})
    wait_for(lambda: not next(h for h in dead.admin("GET", "hooks")["hooks"]
                              if h["scope"] == "store/customer/updated")["is_active"],
             timeout=30, what="deactivation")
    assert dead.admin("GET", "hooks")["stats"]["attempts"] == 12  # the first and 11 retries
