"""Erasures (the commerce model's ``erasure``) in the Brevo destination: the shopper's contact
deleted or anonymized and their email gone from every table of the ledger, a contact another
store still has kept, a whole store forgotten; Shopify's customers/redact and shop/redact from
the sandbox's compliance delivery to the Brevo sandbox."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import RUNNER, BrevoBox, messages, run_cli
from test_brevo_destination import customer, order
from webhook_kit import start_receiver

from connectors.shopify import connector as shopify
from framework.protocol import messages as p


def erasure(account: str, identifier: str, email: str | None = None,
            subject: str = "customer") -> dict[str, Any]:
    return {"platform": "bigcommerce", "account": account, "id": identifier,
            "deleted": False, "subject": subject, "email": email, "phone": None,
            "updated_at": "2024-05-01T00:00:00Z"}


def write(destination: Path, *records: tuple[str, dict[str, Any]]
          ) -> subprocess.CompletedProcess[bytes]:
    stdin = b"".join(p.record_line(stream, data, 1) for stream, data in records)
    for stream in sorted({stream for stream, _ in records}):
        stdin += p.dump(p.state_message(stream, {"n": 1}))
    result = run_cli("runner", "write", "brevo", "--config", str(destination), stdin=stdin)
    assert result.returncode == 0, result.stderr.decode()
    return result


def rejected(result: subprocess.CompletedProcess[bytes]) -> float:
    """The erasures the destination refused, as the STATE of commerce_erasures counts them."""
    return sum(m["state"]["destinationStats"]["rejectedRecordCount"]
               for m in messages(result.stdout) if m["type"] == "STATE"
               and m["state"]["stream"]["stream_descriptor"]["name"] == "commerce_erasures")


def where_in_ledger(state_dir: Path, text: str) -> list[str]:
    """Every table.column of the ledger holding ``text`` (every table, every column)."""
    found = []
    with sqlite3.connect(state_dir / "brevo.db") as db:
        tables = [row[0] for row in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for column in [row[1] for row in db.execute(f"PRAGMA table_info({table})")]:
                hit = db.execute(f'SELECT 1 FROM "{table}" WHERE instr(CAST("{column}" AS '
                                 "TEXT), ?) > 0 LIMIT 1", (text,)).fetchone()
                if hit:
                    found.append(f"{table}.{column}")
    return found


def of(account: str, record: dict[str, Any]) -> dict[str, Any]:
    return {**record, "account": account}


SHOPPER = "ann_lee@example.com"  # "_" would match any character in a LIKE pattern


@pytest.mark.e2e
def test_brevo_sandbox_deletes_a_contact_as_brevo_does(brevo: BrevoBox,
                                                        destination: Path) -> None:
    write(destination, ("commerce_customers", customer(1, SHOPPER)))
    headers = {"api-key": brevo.key}
    url = f"{brevo.url}/v3/contacts/{SHOPPER}"
    assert requests.delete(url, headers=headers, timeout=10).status_code == 204
    assert SHOPPER not in brevo.contacts()
    gone = requests.delete(url, headers=headers, timeout=10)
    assert (gone.status_code, gone.json()["code"]) == (404, "document_not_found")


@pytest.mark.e2e
def test_an_erasure_deletes_the_contact_and_the_ledger_forgets_the_email(
        brevo: BrevoBox, destination: Path) -> None:
    consenting = customer(1, SHOPPER, "081-234-5678")
    consenting["consent"]["abandoned_cart"] = {"state": "subscribed"}
    neighbour = customer(2, "annxlee@example.com")  # what a bare "_" pattern would match
    write(destination, ("commerce_customers", consenting), ("commerce_customers", neighbour),
          ("commerce_orders", order(10, 1, 11, 50.0)), ("commerce_orders", order(11, 2, 11, 9.0)))
    state = destination.parent / "state"
    assert where_in_ledger(state, SHOPPER)  # the check finds what is there
    assert SHOPPER in brevo.contacts()
    result = write(destination, ("commerce_erasures", erasure("s1", "1")))
    assert rejected(result) == 0
    assert SHOPPER not in brevo.contacts()
    assert where_in_ledger(state, SHOPPER) == []
    assert where_in_ledger(state, "annxlee@example.com")  # the other shopper is kept
    assert "annxlee@example.com" in brevo.contacts()
    # The same erasure again (a re-delivered request): Brevo's 404 is no failure.
    again = write(destination, ("commerce_erasures", erasure("s1", "1", SHOPPER)))
    assert rejected(again) == 0


@pytest.mark.e2e
def test_a_shopper_another_store_still_has_keeps_the_contact(
        brevo: BrevoBox, destination: Path) -> None:
    write(destination, ("commerce_customers", customer(1, SHOPPER)),
          ("commerce_customers", of("s2", customer(7, SHOPPER))),
          ("commerce_orders", order(10, 1, 11, 50.0)),
          ("commerce_orders", of("s2", order(20, 7, 11, 30.0))))
    result = write(destination, ("commerce_erasures", erasure("s1", "1")))
    assert SHOPPER in brevo.contacts()
    assert b"another store still has the shopper" in result.stderr
    with sqlite3.connect(destination.parent / "state" / "brevo.db") as db:
        assert db.execute("SELECT store, id FROM customers").fetchall() == [("s2", 7)]
        assert db.execute("SELECT store, id FROM orders").fetchall() == [("s2", 20)]
    # Then s2 asks too: the contact goes.
    write(destination, ("commerce_erasures", erasure("s2", "7")))
    assert SHOPPER not in brevo.contacts()
    assert where_in_ledger(destination.parent / "state", SHOPPER) == []


@pytest.mark.e2e
def test_anonymize_keeps_the_contact_emptied_and_out_of_the_lists(
        brevo: BrevoBox, destination: Path) -> None:
    config = json.loads(destination.read_text())
    destination.write_text(json.dumps({**config, "erasure": "anonymize"}))
    write(destination, ("commerce_customers", customer(1, SHOPPER, "081-234-5678")),
          ("commerce_orders", order(10, 1, 11, 50.0)))
    before = brevo.contacts()[SHOPPER]
    assert before["attributes"]["FIRSTNAME"] == "F1" and set(before["listIds"]) >= {40, 41}
    write(destination, ("commerce_erasures", erasure("s1", "1")))
    after = brevo.contacts()[SHOPPER]
    assert after["listIds"] == []
    assert not any(after["attributes"].get(name) for name in ("FIRSTNAME", "LASTNAME", "SMS",
                                                              "ORDER_COUNT", "TOTAL_SPENT"))
    assert where_in_ledger(destination.parent / "state", SHOPPER) == []


@pytest.mark.e2e
def test_an_account_erasure_forgets_the_store_not_the_others(
        brevo: BrevoBox, destination: Path) -> None:
    write(destination, ("commerce_customers", customer(1, SHOPPER)),
          ("commerce_customers", customer(2, "only-s1@example.com")),
          ("commerce_customers", of("s2", customer(7, SHOPPER))),
          ("commerce_orders", order(10, 1, 11, 50.0)),
          ("commerce_orders", of("s2", order(20, 7, 11, 30.0))))
    write(destination, ("commerce_erasures", erasure("s1", "s1", subject="account")))
    state = destination.parent / "state"
    with sqlite3.connect(state / "brevo.db") as db:
        stores = {row[0] for table in ("customers", "orders", "orders_seen", "customers_seen")
                  for row in db.execute(f"SELECT store FROM {table}")}
    assert stores == {"s2"}
    assert where_in_ledger(state, "only-s1@example.com") == []
    # Brevo's contacts are the account owner's: they stay.
    assert {SHOPPER, "only-s1@example.com"} <= set(brevo.contacts())


@pytest.mark.e2e
def test_a_failed_erasure_is_dead_lettered_and_the_others_go_on(
        brevo: BrevoBox, destination: Path) -> None:
    write(destination, ("commerce_customers", customer(1, SHOPPER)),
          ("commerce_customers", customer(2, "bob@example.com")))
    # A contact Brevo refuses to delete (the sandbox answers 400 to the next request there).
    brevo.admin("refuse", {"method": "DELETE", "path": f"/v3/contacts/{SHOPPER}",
                           "status": 400, "count": 1})
    result = write(destination, ("commerce_erasures", erasure("s1", "1")),
                   ("commerce_erasures", erasure("s1", "2")))
    assert rejected(result) == 1
    dead = [json.loads(line) for line in (destination.parent / "state" /
                                          "dead-letter.jsonl").read_text().splitlines()]
    assert dead[-1]["stream"] == "commerce_erasures" and "HTTP 400" in dead[-1]["reason"]
    assert "bob@example.com" not in brevo.contacts()


def _read(config: Path, tmp_path: Path, streams: set[str]) -> bytes:
    """``runner read shopify`` of ``streams`` (the model's), its output as a write's input."""
    catalog = shopify.configured_catalog(everything=True)
    catalog.streams = [c for c in catalog.streams if c.stream.name in streams]
    path = tmp_path / f"catalog-{len(streams)}-{time.monotonic_ns()}.json"
    path.write_text(json.dumps(catalog.model_dump(mode="json", exclude_none=True)))
    read = run_cli("runner", "read", "shopify", "--config", str(config), "--catalog", str(path))
    assert read.returncode == 0, read.stderr.decode()
    return read.stdout


@pytest.mark.e2e
def test_shopify_s_privacy_topics_reach_brevo(brevo: BrevoBox, destination: Path,
                                                   tmp_path: Path) -> None:
    """The Shopify sandbox's signed customers/redact, to the compliance URL (``runner
    webhooks serve``), read as the model's erasure and written: the contact is gone from the
    Brevo sandbox and the shopper's email from the ledger."""
    process = subprocess.Popen([RUNNER, "sandbox", "shopify", "--port", "0", "--customers",
                                "6", "--orders", "6", "--products", "2", "--seed", "5"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    ready = json.loads(process.stdout.readline())
    config = tmp_path / "shopify.json"
    config.write_text(json.dumps({
        "shop": ready["shop"], "access_token": ready["access_token"], "api_url": ready["url"],
        "client_secret": ready["client_secret"], "spool_path": str(tmp_path / "spool.db")}))
    receiver = start_receiver(config, "--source", "shopify")
    try:
        customers = _read(config, tmp_path, {"commerce_customers"})
        written = run_cli("runner", "write", "brevo", "--config", str(destination),
                          stdin=customers)
        assert written.returncode == 0, written.stderr.decode()
        shoppers = {m["record"]["data"]["id"]: m["record"]["data"]["email"].lower()
                    for m in messages(customers) if m["type"] == "RECORD"}
        target = sorted(shoppers)[0]
        email = shoppers[target]
        assert email in brevo.contacts()
        requests.post(f"{ready['url']}/_sandbox/privacy", timeout=30,
                      headers={"X-Shopify-Access-Token": ready["access_token"]},
                      json={"topic": "customers/redact", "customer_id": int(target),
                            "uri": receiver.endpoint}).raise_for_status()
        deadline = time.monotonic() + 20
        spool = tmp_path / "spool.db"
        while time.monotonic() < deadline and not (spool.exists() and sqlite3.connect(
                spool).execute("SELECT COUNT(*) FROM events").fetchone()[0]):
            time.sleep(0.1)
        time.sleep(1.1)  # a spooled event is read once it is a second old
        erasures = _read(config, tmp_path, {"commerce_erasures"})
        assert [m["record"]["data"]["id"] for m in messages(erasures)
                if m["type"] == "RECORD"] == [target]
        erased = run_cli("runner", "write", "brevo", "--config", str(destination),
                         stdin=erasures)
        assert erased.returncode == 0, erased.stderr.decode()
        contacts = brevo.contacts()
        assert email not in contacts
        assert len(contacts) == len(shoppers) - 1  # the others stay
        assert where_in_ledger(destination.parent / "state", email) == []
        # shop/redact: the model's erasure of the account; the ledger forgets the shop.
        requests.post(f"{ready['url']}/_sandbox/privacy", timeout=30,
                      headers={"X-Shopify-Access-Token": ready["access_token"]},
                      json={"topic": "shop/redact"}).raise_for_status()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and sqlite3.connect(spool).execute(
                "SELECT COUNT(*) FROM events").fetchone()[0] < 2:
            time.sleep(0.1)
        time.sleep(1.1)
        forget = _read(config, tmp_path, {"commerce_account_erasures"})
        asked = [m["record"]["data"] for m in messages(forget) if m["type"] == "RECORD"]
        assert [(a["account"], a["subject"]) for a in asked] == [(ready["shop"], "account")]
        forgot = run_cli("runner", "write", "brevo", "--config", str(destination), stdin=forget)
        assert forgot.returncode == 0, forgot.stderr.decode()
    finally:
        receiver.stop()
        process.terminate()
        process.wait(timeout=10)
    state = destination.parent / "state"
    # Only the shop's key stays (so that ids never change if it comes back).
    assert where_in_ledger(state, ready["shop"]) == ["account_keys.account", "account_keys.key"]
    for other in shoppers.values():
        assert where_in_ledger(state, other) == []  # no other store had them
    assert len(brevo.contacts()) == len(shoppers) - 1  # Brevo's contacts stay


def test_no_warning_for_a_privacy_topic_the_platform_sends_unasked() -> None:
    """Shopify's privacy topics come to the app's compliance URL, not through a
    subscription (the spec marks them ``subscribed: false``): a synced customer_erasures
    with no customers/redact subscription is no reason to send anyone to `runner webhooks
    register`."""
    from types import SimpleNamespace

    from app.sync import hook_warnings
    from framework.webhooks.subscriptions import declared

    job = SimpleNamespace(source=shopify, name="shopify", streams={"customer_erasures"})
    assert hook_warnings(job, {"acme": []}) == []  # type: ignore[arg-type]
    spec = declared(shopify)
    assert sorted(t for t, s in spec.scopes.items() if not s.subscribed) == [
        "customers/data_request", "customers/redact", "shop/redact"]


class FakeBrevo:
    """Brevo's contact endpoints as the erasure calls them: what was asked, 204 each."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def send(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        self.calls.append((method, path))
        return 204, None


def _holding(ledger: Any, text: str) -> list[str]:
    """Every table of the ledger (SQLite or PostgreSQL) with a value holding ``text``."""
    if ledger.pg:
        tables = [row[0] for row in ledger.db.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ?",
            (ledger.db.schema,))]
    else:
        tables = [row[0] for row in ledger.db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")]
    return sorted(table for table in tables for row in ledger.db.execute(
        f"SELECT * FROM {table}") if any(text in str(value).lower() for value in row))


@pytest.mark.e2e
@pytest.mark.parametrize("where", ["sqlite", "postgres"])
def test_the_ledger_forgets_a_shopper_in_sqlite_and_postgresql(where: str, tmp_path: Path,
                                                               request: Any) -> None:
    """The erasure's SQL as both databases run it: every table holding the shopper (their
    customer row, orders, totals, consent, SMS number, carts, events, storefront links and
    held events) forgets them; a shopper whose email differs by a LIKE wildcard stays."""
    from connectors.brevo.erasure import Erasures
    from connectors.brevo.events import EventOutbox
    from connectors.brevo.ledger import Ledger
    from connectors.brevo.storefront import StorefrontEvents
    from framework.storage import located

    location = (located(request.getfixturevalue("postgres_url"), f"brevo_{uuid.uuid4().hex}")
                if where == "postgres" else tmp_path / "brevo.db")
    ledger = Ledger(location)
    try:
        StorefrontEvents(ledger, EventOutbox(ledger, None, None, lambda *a: None), {}, "store")
        near = "annxlee@example.com"
        for email, cid in ((SHOPPER, "1"), (near, "2")):
            ledger.put_customers([("s1", cid, email)])
            ledger.put_customer_versions([("s1", cid, "2024-01-01T00:00:00Z")])
            ledger.put_orders([("s1", f"1{cid}", email, 1, 10.0, cid)])
            ledger.put_order_versions([("s1", f"1{cid}", "2024-01-01T00:00:00Z", "paid")])
            ledger.put_consents([(email, True)])
            ledger.mark_sent_many([(email, 1, 10.0, "f")])
            ledger.claim_sms_many([(f"+6681234567{cid}", email)])
            ledger.put_abandoned("s1", f"cart{cid}", email)
            ledger.claim_event(f"s1:storefront:browse:{email}:2024", "now")
            ledger.outbox_event(f"s1:customer:{cid}:2024:customer_created",
                                {"identifiers": {"email_id": email}})
            ledger.db.execute("INSERT INTO storefront_visitors VALUES (?, ?, ?, ?)",
                              ("s1", f"v{cid}", email, 1.0))
            ledger.db.execute("INSERT INTO storefront_held VALUES (?, ?, ?, ?, ?)",
                              ("s1", f"v{cid}", "e1", "{}", 1.0))
            ledger.db.execute("INSERT INTO storefront_rate VALUES (?, ?, ?)", (email, 1, 1))
            letter = json.dumps({"stream": "commerce_orders", "reason": "refused",
                                 "record": {"email": email.upper()}})
            if ledger.pg:
                ledger.db.execute("INSERT INTO dead_letters (stream, reason, at, letter) "
                                  "VALUES (?, ?, ?, ?)", ("commerce_orders", "x", 1, letter))
            else:
                with (tmp_path / "dead-letter.jsonl").open("a") as letters:
                    letters.write(letter + "\n")
        ledger.commit()
        assert len(_holding(ledger, SHOPPER)) >= 8
        brevo, refused = FakeBrevo(), []
        erasures = Erasures(ledger, brevo, "delete", {}, [40],
                            lambda *args: refused.append(args))
        erasures.take("commerce_erasures", {"account": "s1", "id": "1", "subject": "customer"})
        erasures.apply()
        ledger.commit()
        assert refused == [] and brevo.calls == [("DELETE", f"/v3/contacts/{SHOPPER}")]
        assert _holding(ledger, SHOPPER) == []
        assert ledger.db.execute("SELECT COUNT(*) FROM storefront_held").fetchone()[0] == 1
        assert len(_holding(ledger, near)) >= 8  # the other shopper is all there
        if not ledger.pg:
            letters = (tmp_path / "dead-letter.jsonl").read_text().lower()
            assert SHOPPER not in letters and near in letters
    finally:
        ledger.close()
