"""The switch to the commerce model keeps a ledger of the previous version working.

``fixtures/ledger-v1.db`` was written by the destination that read BigCommerce's own streams
(commit 1ad421a, ``fixtures/make_ledger_v1.py``): a customer, an order and a cart, created then
changed, each change's event sent. Today's destination reads the same store as the model (ids
as text, ``updated_at``): nothing sent before goes again, no order counts twice.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

from conftest import BrevoBox, run_cli

from app.sync import model_mapping
from connectors.brevo.ledger import SCHEMA_VERSION, model_event_key
from framework.protocol import messages as p

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def test_a_ledger_of_the_previous_version_sends_nothing_twice(brevo: BrevoBox,
                                                             destination: Path) -> None:
    state = destination.parent / "state"
    state.mkdir(mode=0o700)
    shutil.copy(FIXTURES / "ledger-v1.db", state / "brevo.db")
    (state / "brevo.db").chmod(0o600)
    config = json.loads(destination.read_text())
    destination.write_text(json.dumps({**config, "lists": {"all_customers": 40, "buyers": 41,
                                                           "abandoned_cart": 42}}))
    run = json.loads((FIXTURES / "ledger_v1_records.json").read_text())["model_run"]
    stdin = b"".join(p.record_line(stream, data, 1) for stream, data in run)
    stdin += b"".join(p.dump(p.state_message(stream, {"stores": {"s1": {}}}))
                      for stream in sorted({stream for stream, _ in run}))
    result = run_cli("runner", "write", "brevo", "--config", str(destination), stdin=stdin)
    assert result.returncode == 0, result.stderr.decode()
    sent = brevo.state()
    # Only the new changes' events: the customer's, the first order's and the abandoned
    # cart's changes had theirs from the previous version; the cart the previous version saw
    # created and that changed since is updated, not created.
    assert sorted((e["event_name"], e["event_properties"].get("order_id")
                   or e["event_properties"].get("cart_id")) for e in sent["events"]) == [
        ("cart_updated", "c2"), ("order_placed", "s1-11")]
    contact = brevo.contacts()["ann@example.com"]
    assert contact["attributes"]["ORDER_COUNT"] == 2  # order 10 once, and order 11
    assert contact["attributes"]["TOTAL_SPENT"] == 100.0
    assert sorted(o["id"] for o in sent["orders"]) == ["s1-10", "s1-11"]
    ledger = sqlite3.connect(state / "brevo.db")
    assert ledger.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
        SCHEMA_VERSION,)
    assert ledger.execute("SELECT COUNT(*) FROM orders").fetchone() == (2,)
    # Run again: the same records are the same changes, sent once.
    again = run_cli("runner", "write", "brevo", "--config", str(destination), stdin=stdin)
    assert again.returncode == 0, again.stderr.decode()
    assert len(brevo.state()["events"]) == 2


def test_event_keys_of_the_previous_version_take_the_models_dates() -> None:
    """The date of a key may hold colons (and spaces, in V2's RFC 2822): it is what lies
    between the record's id and the event's name."""
    assert model_event_key("s1:10:Tue, 20 Nov 2012 01:00:00 +0000:order_updated") == (
        "s1:10:2012-11-20T01:00:00Z:order_updated")
    assert model_event_key("s1:customer:7:2024-01-02T03:04:05+00:00:customer_updated") == (
        "s1:customer:7:2024-01-02T03:04:05Z:customer_updated")
    assert model_event_key("s1:cart:ab-1:2024-01-02T03:04:05Z:cart_created") == (
        "s1:cart:ab-1:2024-01-02T03:04:05Z:cart_created")


def test_the_product_pages_customer_mapping_reads_the_model() -> None:
    """``customer_mapping`` as the product page writes it (BigCommerce's customer fields),
    in the model's paths the destination reads."""
    written = {"email": "email", "first_name": "FIRSTNAME", "addresses[0].state": "STATE",
               "addresses[0].zip": "ZIP", "addresses[0].city": "CITY",
               "customer_group_id": "CUSTOMER_GROUP", "date_created": "SIGNUP_DATE",
               "orders_count": "ORDER_COUNT", "total_spent": "TOTAL_SPENT",
               "form_fields.Birthday": "BIRTHDAY", "attributes.Loyalty tier": "TIER",
               "custom_fields.Size": "SIZE"}
    assert model_mapping(written) == {
        "email": "email", "first_name": "FIRSTNAME", "addresses[0].region": "STATE",
        "addresses[0].postal_code": "ZIP", "addresses[0].city": "CITY",
        "group.name": "CUSTOMER_GROUP", "created_at": "SIGNUP_DATE", "order_count": "ORDER_COUNT",
        "amount_spent": "TOTAL_SPENT", "custom_fields.Birthday": "BIRTHDAY",
        "custom_fields.Loyalty tier": "TIER", "custom_fields.Size": "SIZE"}


def test_the_first_sync_after_the_upgrade_reads_on_from_the_api_streams_states() -> None:
    """A state store of the version that synced the API streams: each model stream starts
    where its API stream stopped (its cursor renamed ``updated_at``; a spool offset kept)."""
    from app.forward import model_catalog, with_model_states
    from connectors.bigcommerce import connector as bigcommerce

    saved = {"customers": {"stores": {"abc": {"date_modified": "2024-05-01T00:00:00Z"}}},
             "carts": {"stores": {"abc": {"spool_offset": 7}}},
             "commerce_orders": {"stores": {"abc": {"updated_at": "2024-06-01T00:00:00Z"}}},
             "orders": {"stores": {"abc": {"date_modified": "2020-01-01T00:00:00Z"}}}}
    states = with_model_states(bigcommerce, model_catalog(bigcommerce), saved)
    assert states["commerce_customers"] == {"stores": {"abc": {
        "updated_at": "2024-05-01T00:00:00Z"}}}
    assert states["commerce_carts"] == {"stores": {"abc": {"spool_offset": 7}}}
    # A model stream's own state wins over its API stream's.
    assert states["commerce_orders"] == saved["commerce_orders"]
    assert "commerce_products" not in states  # nothing saved for products: read from the start
