"""What the commerce model's records change, worked out a batch at a time against the ledger.

The writer keeps a flush's records as they come (``take``, nothing else per record); ``apply``
works them out kind by kind, each kind with a few statements for the whole batch: what the
ledger knows of the batch's records is read at once (emails, versions, orders, stock levels),
the records are worked out in memory in the order they came (a record seen twice in a batch
sees its first version as the ledger would have), and what changed is written at once. Per
record, the ledger cost seven statements before (issue 17); per batch, it costs about twenty.

Kinds go in this order: stores (the region of national phone numbers), customers (orders and
carts look up their customer), orders, stock levels, products and categories, carts (the
consent of a customer of the same batch). Streams arrive in any order, so nothing may depend
on the order of two records of different kinds: only on what a kind reads of an earlier one.

``apply`` returns a ``Work``: what the flush sends to Brevo.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from connectors.brevo.events import EventOutbox
from connectors.brevo.ledger import Ledger
from connectors.brevo.payloads import brevo_order_id

log = logging.getLogger("tajo.brevo")

#: The kinds worked out here, in the order they are.
KINDS = ("store", "customer", "order", "stock_level", "product", "category", "cart")
CONSENT = {"subscribed": True, "not_subscribed": False}
Key = tuple[str, str]  # (account, id)


@dataclass
class Work:
    """What one flush sends: built by ``Intake.apply``, sent by the writer."""

    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)  # email -> customer
    touched: set[str] = field(default_factory=set)  # emails whose totals may have changed
    orders: dict[Key, tuple[dict[str, Any], str | None]] = field(default_factory=dict)
    products: dict[Key, dict[str, Any]] = field(default_factory=dict)
    categories: dict[Key, dict[str, Any]] = field(default_factory=dict)
    cart_add: set[str] = field(default_factory=set)  # into the abandoned-cart list
    cart_remove: set[str] = field(default_factory=set)
    skipped_carts: int = 0
    gone_customers: set[str] = field(default_factory=set)
    gone_products: list[Key] = field(default_factory=list)
    deleted: dict[str, int] = field(default_factory=dict)  # stream -> records gone
    back_in_stock: int = 0
    new_contacts: int = 0  # customers the ledger did not know (a dry run's count)

    def gone(self, stream: str) -> None:
        self.deleted[stream] = self.deleted.get(stream, 0) + 1


class Intake:
    """The records of the flush being kept, and how they change the ledger."""

    def __init__(self, ledger: Ledger, events: EventOutbox, connected_at: str,
                 account_property: str,
                 bought: Callable[[Collection[Key]], None] | None = None) -> None:
        self.ledger, self.events = ledger, events
        self.connected_at = connected_at  # what was created before fires no automation
        self.account_property = account_property
        self.bought = bought  # (account, email) of a batch's buyers
        self.records: dict[str, list[tuple[dict[str, Any], str | None]]] = {}
        self.count = 0

    def take(self, kind: str, data: dict[str, Any], email: str | None = None) -> None:
        """Keep a record of ``kind`` (one of ``KINDS``) for the next ``apply``; a customer
        comes with its email, checked and normalized."""
        self.records.setdefault(kind, []).append((data, email))
        self.count += 1

    def apply(self) -> Work:
        """Work out the records kept (the ledger changed in the open transaction)."""
        records, self.records, self.count = self.records, {}, 0
        work = Work()
        for data, _ in records.get("store", []):
            if not data.get("deleted"):
                    self.ledger.put_account(str(data.get("account", "")),
                                        data.get("country_code"), data.get("url"))
        self._customers(records.get("customer", []), work)
        self._orders(records.get("order", []), work)
        self._stock(records.get("stock_level", []), work)
        for data, _ in records.get("product", []):
            key = (str(data.get("account", "")), data["id"])
            if data.get("deleted"):
                work.gone("products")
                work.products.pop(key, None)
                work.gone_products.append(key)
            else:
                work.products[key] = data
        for data, _ in records.get("category", []):
            if not data.get("deleted"):
                work.categories[(str(data.get("account", "")), data["id"])] = data
        for data, _ in records.get("cart", []):
            cart = {**data, "state": "gone"} if data.get("deleted") else data
            self._cart(str(data.get("account", "")), cart, work)
        return work

    # --- customers ------------------------------------------------------------------------

    def _customers(self, records: list[tuple[dict[str, Any], str | None]], work: Work) -> None:
        if not records:
            return
        keys = {(str(data.get("account", "")), data["id"]) for data, _ in records}
        emails = self.ledger.customer_emails(keys)
        versions = self.ledger.customer_versions(keys)
        put: dict[Key, str] = {}
        consents: dict[str, bool | None] = {}
        seen: dict[Key, str] = {}
        for data, email in records:
            key = (str(data.get("account", "")), data["id"])
            if data.get("deleted"):
                # The contact stays in Brevo (it holds the shopper's marketing consent and
                # history); it leaves the customer lists.
                work.gone("customers")
                known = emails.get(key)
                if known:
                    work.gone_customers.add(known)
                    work.contacts.pop(known, None)
                continue
            assert email is not None  # checked when it was taken
            if key not in emails:
                work.new_contacts += 1
            emails[key] = put[key] = email
            consent = ((data.get("consent") or {}).get("abandoned_cart") or {}).get("state")
            consents[email] = CONSENT.get(str(consent))
            work.contacts[email] = data
            work.gone_customers.discard(email)  # back in the store after all
            work.touched.add(email)
            self._customer_event(key, email, data, versions, seen)
        self.ledger.put_customers([(*key, email) for key, email in put.items()])
        # Orders read before their customer counted for the order's email: not any more
        # (streams arrive in any order, so the totals must not depend on it).
        work.touched |= self.ledger.rehome_orders_of(put)
        self.ledger.put_consents(list(consents.items()))
        self.ledger.put_customer_versions([(*key, at) for key, at in seen.items()])
        self.ledger.forget_fingerprints(sorted(work.gone_customers))

    def _customer_event(self, key: Key, email: str, data: dict[str, Any],
                        versions: dict[Key, str], seen: dict[Key, str]) -> None:
        """``customer_created`` for a customer who signed up after the first run,
        ``customer_updated`` for a later change; nothing for what the first sync finds."""
        modified = data.get("updated_at") or ""
        before = versions.get(key)
        versions[key] = seen[key] = modified
        if before == modified:
            return
        if before is None:
            if (data.get("created_at") or modified) < self.connected_at:
                return
            name = "customer_created"
        else:
            name = "customer_updated"
        account = key[0]
        event = {"event_name": name, "identifiers": {"email_id": email},
                 "event_date": modified,
                 "event_properties": {"customer_id": as_sent(data["id"]),
                                      self.account_property: account}}
        self.events.queue(f"{account}:customer:{data['id']}:{modified}:{name}", event)

    # --- orders ---------------------------------------------------------------------------

    def _orders(self, records: list[tuple[dict[str, Any], str | None]], work: Work) -> None:
        """Counting rule (see the ledger): an order counts once, by its (account, id);
        one gone from the store no longer counts."""
        if not records:
            return
        keys = {(str(data.get("account", "")), data["id"]) for data, _ in records}
        owners = self.ledger.customer_emails({
            (str(data.get("account", "")), str(data["customer_id"])) for data, _ in records
            if data.get("customer_id") and not data.get("deleted")})
        known = self.ledger.order_rows(keys)
        versions = self.ledger.order_versions(keys)
        rows: dict[Key, tuple[str, str, str | None, int, float, Any]] = {}
        seen: dict[Key, tuple[str, str]] = {}
        buyers: set[Key] = set()
        for data, _ in records:
            account = str(data.get("account", ""))
            key = (account, data["id"])
            before = known.get(key)
            if data.get("deleted"):
                work.gone("orders")
                if before is not None:
                    rows[key] = (*key, before[0], 0, 0.0, before[1])
                    if before[0]:
                        work.touched.add(before[0])  # its totals no longer count the order
                continue
            customer = data.get("customer_id") or None
            email = owners.get((account, str(customer))) if customer else None
            email = email or (data.get("email") or "").strip().lower() or None
            counted = data.get("counts_as_purchase") is not False
            spent = float(data.get("total") or 0) - float(data.get("refunded") or 0)
            rows[key] = (*key, email, int(counted), spent if counted else 0.0, customer)
            known[key] = (email, customer)
            work.touched.update(e for e in (email, before[0] if before else None) if e)
            if email:
                buyers.add((account, email))
            self._order_events(key, data, email, versions, seen)
            work.orders[key] = (data, email)
        self.ledger.put_orders(list(rows.values()))
        if buyers and self.bought is not None:
            self.bought(sorted(buyers))  # their browses are no longer abandoned
        self.ledger.put_order_versions([(*key, *version) for key, version in seen.items()])

    def _order_events(self, key: Key, order: dict[str, Any], email: str | None,
                      versions: dict[Key, tuple[str, str]],
                      seen: dict[Key, tuple[str, str]]) -> None:
        """Lifecycle events of an order change. None for what the first sync finds (backfill
        never fires automations); one per change, keyed by the order's updated_at, so a
        change seen twice (webhook and poll, a rerun after a crash) is sent once."""
        modified = order.get("updated_at") or ""
        platform = order.get("platform_status") or {}
        status = str(platform.get("name") or platform.get("id") or order.get("status"))
        before = versions.get(key)
        versions[key] = seen[key] = (modified, status)
        if email is None or (before is not None and before[0] == modified):
            return
        names: list[tuple[str, dict[str, Any]]] = []
        if before is None:
            if (order.get("created_at") or modified) >= self.connected_at:
                names.append(("order_placed", {}))
        else:
            names.append(("order_updated", {}))
            if before[1] != status:
                names.append(("order_status_changed", {"previous_status": before[1],
                                                       "new_status": status}))
        account = key[0]
        for name, extra in names:
            event = {"event_name": name, "identifiers": {"email_id": email},
                     "event_date": modified,
                     "event_properties": {"order_id": brevo_order_id(account, order["id"]),
                                          self.account_property: account, "status": status,
                                          "amount": order.get("total"),
                                          "currency": order.get("currency"), **extra}}
            self.events.queue(f"{account}:{order['id']}:{modified}:{name}", event)

    # --- stock ----------------------------------------------------------------------------

    def _stock(self, records: list[tuple[dict[str, Any], str | None]], work: Work) -> None:
        levels_of = [(str(data.get("account", "")), str(data.get("variant_id") or data["id"]),
                      data) for data, _ in records if not data.get("deleted")]
        if not levels_of:
            return
        levels = self.ledger.stocks({(account, variant) for account, variant, _ in levels_of})
        changed: dict[Key, float] = {}
        for account, variant, data in levels_of:
            level = data.get("available") or 0
            before = levels.get((account, variant))
            if before is not None and before <= 0 < level:
                # Brevo fires its back-in-stock alerts when the product's stock rises above 0.
                work.back_in_stock += 1
                log.info("variant %s of product %s is back in stock (%s -> %s)", variant,
                         data.get("product_id"), before, level)
            levels[(account, variant)] = changed[(account, variant)] = level
        self.ledger.set_stocks([(*key, level) for key, level in changed.items()])

    # --- carts (few: one at a time) -------------------------------------------------------

    def _cart(self, account: str, cart: dict[str, Any], work: Work) -> None:
        """A cart of a shopper who has an email and consents to abandoned-cart emails:
        ``cart_created`` (a cart not seen before) / ``cart_updated`` events while active;
        abandoned, into the abandoned-cart list with a ``cart_abandoned`` event (items,
        amount, recovery link). A recovered or gone cart leaves the list."""
        cart_id, state = str(cart["id"]), cart.get("state")
        modified = cart.get("updated_at") or ""
        before = self.ledger.cart_version(account, cart_id, modified)
        if state not in ("active", "abandoned"):
            email = self.ledger.drop_abandoned(account, cart_id)
            if email:
                work.cart_remove.add(email)
                work.cart_add.discard(email)
            return
        customer = cart.get("customer_id")
        email = self.ledger.customer_email(account, customer) if customer else None
        email = email or (cart.get("email") or "").strip().lower() or None
        if email is None or not self.ledger.cart_consent(email):
            # A guest, or a customer who has not accepted abandoned-cart emails: nothing,
            # but counted (runner status), so that an empty list has its reason.
            work.skipped_carts += 1
            self.ledger.skip_cart(account, cart_id, "no_consent" if customer else "guest")
            return
        self.ledger.unskip_cart(account, cart_id)
        if state == "abandoned":
            self.ledger.put_abandoned(account, cart_id, email)
            work.cart_add.add(email)
            work.cart_remove.discard(email)
            name = "cart_abandoned"
        elif before is None:
            name = "cart_created"  # the model's "active" is both; a cart not seen before
        elif before != modified:
            name = "cart_updated"
        else:
            return  # the same change again (webhook and poll, a rerun): its event went
        if modified and modified < self.connected_at:
            # A cart last changed before the first run (a platform whose abandoned checkouts
            # are read, not only sent by webhook, backfills them): on the list, but like the
            # backfill's orders it fires no automation, then or when it is read again.
            return
        self.events.queue(f"{account}:cart:{cart_id}:{modified}:{name}",
                          self._cart_event(name, account, cart, email))

    def _cart_event(self, name: str, account: str, cart: dict[str, Any], email: str
                    ) -> dict[str, Any]:
        items = [{k: i.get(k) for k in ("product_id", "variant_id", "sku", "name", "quantity",
                                         "price", "url", "image_url")}
                 for i in cart.get("items") or []]
        properties = {"cart_id": str(cart["id"]), self.account_property: account,
                      "amount": cart.get("total"), "currency": cart.get("currency"),
                      "items": items}
        if cart.get("recovery_url"):
            properties["recovery_url"] = cart["recovery_url"]
            properties["cart_url"] = cart.get("cart_url")
        elif cart.get("state") == "abandoned" and cart.get("cart_url"):
            # No recovery link (the token may not mint one): the store's cart page, where
            # the customer, once logged in, finds the cart.
            properties["cart_url"] = cart["cart_url"]
        event: dict[str, Any] = {"event_name": name, "identifiers": {"email_id": email},
                                 "event_properties": properties}
        if cart.get("updated_at"):
            event["event_date"] = cart["updated_at"]
        return event


def as_sent(record_id: Any) -> int | str:
    """A record's id as an event property: ids are text in the commerce model, but one made of
    digits goes as a number, as this destination has always sent it (automations compare it)."""
    text = str(record_id)
    return int(text) if text.isdigit() and len(text) < 19 else text
