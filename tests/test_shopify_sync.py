"""The issue's guarantees for Shopify, end to end: a shop of the Shopify sandbox (a couple of
thousand customers, consent in every state, orders refunded and cancelled, products with
variants, abandoned checkouts) synced into the Brevo sandbox by ``runner sync --config``, as
the BigCommerce tests check them: the backfill fires no automation, each contact holds
Shopify's own totals, the three lists hold who they should, an unsubscribed shopper is never
(re)subscribed, and a change in the shop makes one event, a sync without change none.

What Shopify holds is read from the sandbox's GraphQL API by the test itself, not from the
source, so the source's mapping is checked, not repeated.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from chaos_kit import ENV, LISTS, RUNNER, Account, Shop

pytestmark = pytest.mark.e2e

ALL, BUYERS, CARTS = LISTS["all_customers"], LISTS["buyers"], LISTS["abandoned_cart"]
CUSTOMER_FIELDS = ("legacyResourceId updatedAt defaultEmailAddress { emailAddress } "
                   "numberOfOrders amountSpent { amount } "
                   "emailMarketingConsent { marketingState }")
ORDER_FIELDS = ("legacyResourceId updatedAt cancelledAt displayFinancialStatus "
                "customer { legacyResourceId }")
CHECKOUT_FIELDS = "id completedAt customer { legacyResourceId }"
#: Shopify's order statuses that are no purchase (and a cancelled order is none either):
#: the buyers list's rule, as README's Shopify section states it.
NO_PURCHASE = {"REFUNDED", "VOIDED", "EXPIRED"}


@dataclass
class Synced:
    shop: Shop
    brevo: Account
    config: Path
    customers: dict[str, dict[str, Any]]  # as Shopify has them after the first sync


def sync(config: Path) -> None:
    done = subprocess.run([RUNNER, "--json-logs", "sync", "--config", str(config)],
                          capture_output=True, timeout=240, env=ENV)
    assert done.returncode == 0, done.stderr.decode()[-2000:]


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synced]:
    """The shop synced once into an empty Brevo account (its first sync: a backfill)."""
    shop = Shop.start(customers=2000, orders=1200, products=40, seed=18, checkouts=200)
    brevo = Account.start()
    try:
        work = tmp_path_factory.mktemp("shopify-sync")
        config = work / "tajo.json"
        config.write_text(json.dumps({
            "connectors": {"shopify": {**shop.block(), "lists": LISTS}},
            "brevo": {"api_key": brevo.ready["api_key"], "api_url": brevo.ready["url"]},
            "state_dir": str(work / "state")}))
        sync(config)
        yield Synced(shop, brevo, config, customers_of(shop))
    finally:
        shop.stop()
        brevo.stop()


def customers_of(shop: Shop) -> dict[str, dict[str, Any]]:
    """Shopify's customers with an email, by lowercase email."""
    return {c["defaultEmailAddress"]["emailAddress"].lower(): c
            for c in shop.everything("customers", CUSTOMER_FIELDS, page=200)
            if c.get("defaultEmailAddress")}


def contacts_of(brevo: Account) -> dict[str, dict[str, Any]]:
    return {c["email"]: c for c in brevo.state()["contacts"]}


def assert_totals(customers: dict[str, dict[str, Any]],
                  contacts: dict[str, dict[str, Any]]) -> None:
    """Every contact's ORDER_COUNT and TOTAL_SPENT are Shopify's numberOfOrders and
    amountSpent of its customer."""
    wrong = [(email, contacts[email]["attributes"].get("ORDER_COUNT"),
              contacts[email]["attributes"].get("TOTAL_SPENT"), c["numberOfOrders"],
              c["amountSpent"]["amount"])
             for email, c in customers.items()
             if contacts[email]["attributes"].get("ORDER_COUNT") != int(c["numberOfOrders"])
             or abs(contacts[email]["attributes"].get("TOTAL_SPENT", -1)
                    - float(c["amountSpent"]["amount"])) > 0.005]
    assert wrong == [], f"{len(wrong)} contacts' totals differ from Shopify's: {wrong[:5]}"


def test_the_backfill_fires_no_automation(synced: Synced) -> None:
    state = synced.brevo.state()
    orders = synced.shop.everything("orders", "legacyResourceId", page=250)
    assert state["events"] == []  # no order_placed, customer_created nor cart_abandoned
    assert len(state["orders"]) == len(orders) == 1200
    assert all(o["historical"] for o in state["orders"])
    # Products with their variants (parentId) went to the catalog.
    assert any(p.get("parentId") for p in state["products"])


def test_every_contact_holds_shopify_s_own_order_count_and_amount_spent(
        synced: Synced) -> None:
    customers = synced.customers
    contacts = contacts_of(synced.brevo)
    assert set(contacts) == set(customers) and len(customers) > 1900
    states = Counter(c["emailMarketingConsent"]["marketingState"] for c in customers.values())
    assert set(states) >= {"SUBSCRIBED", "NOT_SUBSCRIBED", "PENDING", "UNSUBSCRIBED",
                           "INVALID"}, states  # consent in every state (REDACTED reads as
    # UNSUBSCRIBED in the versions where Shopify dropped it)
    assert any(int(c["numberOfOrders"]) > 1 for c in customers.values())
    assert_totals(customers, contacts)


def expected_lists(shop: Shop, customers: dict[str, dict[str, Any]]
                   ) -> tuple[set[str], set[str]]:
    """(buyers, abandoned-cart list) as the shop implies them."""
    email_of = {c["legacyResourceId"]: email for email, c in customers.items()}
    buyers = {email_of[o["customer"]["legacyResourceId"]]
              for o in shop.everything("orders", ORDER_FIELDS, page=250)
              if o.get("customer") and o["customer"]["legacyResourceId"] in email_of
              and not o["cancelledAt"] and o["displayFinancialStatus"] not in NO_PURCHASE}
    carts = {email_of[c["customer"]["legacyResourceId"]]
             for c in shop.everything("abandonedCheckouts", CHECKOUT_FIELDS, page=250)
             if c.get("customer") and not c["completedAt"]
             and c["customer"]["legacyResourceId"] in email_of}
    consenting = {e for e, c in customers.items()
                  if c["emailMarketingConsent"]["marketingState"] == "SUBSCRIBED"}
    return buyers, carts & consenting


def test_lists_hold_every_customer_the_buyers_and_consenting_abandoned_carts(
        synced: Synced) -> None:
    customers = synced.customers
    contacts = contacts_of(synced.brevo)
    buyers, carts = expected_lists(synced.shop, customers)
    members = {name: {e for e, c in contacts.items() if list_id in c["listIds"]}
               for name, list_id in LISTS.items()}
    assert members["all_customers"] == set(customers)
    assert members["buyers"] == buyers and 0 < len(buyers) < len(customers)
    assert members["abandoned_cart"] == carts and carts
    # Nobody unsubscribed is on a list that mails them, and Brevo's own unsubscription flag
    # is never touched by a sync.
    for email in members["abandoned_cart"]:
        assert customers[email]["emailMarketingConsent"]["marketingState"] == "SUBSCRIBED"
    assert not any(c["emailBlacklisted"] for c in contacts.values())


def snapshot(shop: Shop) -> dict[str, dict[int, str]]:
    """Each record's updatedAt, by resource and id (the sandbox's view)."""
    return {resource: dict(map(tuple, rows))  # type: ignore[arg-type]
            for resource, rows in shop.admin("snapshot").items()}


def changed(before: dict[str, dict[int, str]], after: dict[str, dict[int, str]],
            resource: str) -> set[int]:
    return {i for i, at in after[resource].items() if before[resource].get(i) != at}


def test_a_change_makes_one_event_and_never_resubscribes_an_unsubscribed_shopper(
        synced: Synced) -> None:
    shop, brevo = synced.shop, synced.brevo
    customers = synced.customers
    by_id = {c["legacyResourceId"]: email for email, c in customers.items()}
    orders = shop.everything("orders", ORDER_FIELDS, page=250)
    live = [o for o in orders if not o["cancelledAt"] and o["customer"]
            and o["displayFinancialStatus"] == "PAID" and o["customer"]["legacyResourceId"]
            in by_id]
    refunded, cancelled = live[0], live[1]
    unsubscribed = [c for c in customers.values()
                    if c["emailMarketingConsent"]["marketingState"] == "UNSUBSCRIBED"]
    subscribed = [c for c in customers.values()
                  if c["emailMarketingConsent"]["marketingState"] == "SUBSCRIBED"
                  and c["legacyResourceId"] not in {refunded["customer"]["legacyResourceId"],
                                                    cancelled["customer"]["legacyResourceId"]}]
    edited, gone_quiet, withdrawn = subscribed[0], subscribed[1], subscribed[2]
    before = snapshot(shop)
    time.sleep(1.1)  # updatedAt is to the second: the changes come after the saved cursors
    shop.admin("orders/refund", {"id": int(refunded["legacyResourceId"])})
    shop.admin("orders/cancel", {"id": int(cancelled["legacyResourceId"])})
    shop.mutate("customers", ids=[int(edited["legacyResourceId"])],
                set={"note": "moved to Lyon"})
    # A shopper who unsubscribed in Brevo, then changed in Shopify and left a checkout.
    quiet = by_id[gone_quiet["legacyResourceId"]]
    brevo.admin("blacklist", {"email": quiet})
    shop.mutate("customers", ids=[int(gone_quiet["legacyResourceId"])],
                set={"note": "new address"})
    # Shoppers unsubscribed in Shopify (one of them just now) leave checkouts, and one who
    # is subscribed.
    shop.mutate("customers", ids=[int(withdrawn["legacyResourceId"])],
                set={"emailMarketingConsent": {"marketingState": "UNSUBSCRIBED"}})
    for customer in (unsubscribed[0], withdrawn, edited):
        shop.admin("checkouts", {"create": 1, "customer": int(customer["legacyResourceId"])})
    after = snapshot(shop)
    sync(synced.config)

    state = brevo.state()
    events = Counter((e["event_name"], e["identifiers"]["email_id"],
                      e["event_properties"].get("order_id")) for e in state["events"])
    assert all(n == 1 for n in events.values()), events  # no event twice
    account = shop.ready["shop"]
    # Every order Shopify changed has one order_updated, each status move one
    # order_status_changed; every customer it changed one customer_updated; nothing else.
    orders_changed = changed(before, after, "orders")
    assert orders_changed == {int(refunded["legacyResourceId"]),
                              int(cancelled["legacyResourceId"])}
    updated = {o for name, _, o in events if name == "order_updated"}
    assert updated == {f"{account}-{i}" for i in orders_changed}
    moved = [e["event_properties"] for e in state["events"]
             if e["event_name"] == "order_status_changed"]
    assert {m["order_id"] for m in moved} <= updated
    assert all(m["previous_status"] != m["new_status"] for m in moved)
    customers_changed = {by_id[str(i)] for i in changed(before, after, "customers")}
    assert by_id[edited["legacyResourceId"]] in customers_changed
    assert by_id[refunded["customer"]["legacyResourceId"]] in customers_changed  # amountSpent
    assert {email for name, email, _ in events if name == "customer_updated"} == \
        customers_changed
    carts = [(name, email) for name, email, _ in events if name.startswith("cart_")]
    assert carts == [("cart_abandoned", by_id[edited["legacyResourceId"]])]
    assert {name for name, _, _ in events} <= {
        "order_updated", "order_status_changed", "customer_updated", "cart_abandoned"}

    # Totals follow the refund; the unsubscribed are on no mailing list of carts, and the
    # shopper who unsubscribed in Brevo stays unsubscribed there.
    now = customers_of(shop)
    contacts = contacts_of(brevo)
    assert_totals(now, contacts)
    assert contacts[quiet]["emailBlacklisted"] is True
    for customer in (unsubscribed[0], withdrawn):
        email = by_id[customer["legacyResourceId"]]
        assert CARTS not in contacts[email]["listIds"]
        assert not contacts[email]["emailBlacklisted"]  # Brevo's flag is Brevo's alone
    _, on_list = expected_lists(shop, now)
    assert by_id[edited["legacyResourceId"]] in on_list
    assert {e for e, c in contacts.items() if CARTS in c["listIds"]} == on_list

    # A sync with nothing changed sends no event and no contact (an order of the cursor's
    # own second is read again, as Shopify's updated_at:>= asks, and upserted as it was).
    requests_before = state["requests"]["by_path"]
    sync(synced.config)
    again = brevo.state()
    assert again["events"] == state["events"]
    assert again["contacts"] == state["contacts"]
    assert again["orders"] == state["orders"]
    written = {path: again["requests"]["by_path"].get(path, 0) - requests_before.get(path, 0)
               for path in ("/v3/contacts", "/v3/contacts/import", "/v3/events",
                            "/v3/events/batch")}
    assert not any(written.values()), written
