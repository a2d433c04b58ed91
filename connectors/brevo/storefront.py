"""Storefront events (the commerce model's ``storefront_event``) as Brevo events on the contact:
``product_viewed``, ``cart_updated``, ``checkout_started``, and ``browse_abandoned`` when a
shopper viewed products and neither carted nor bought within ``browse_abandoned_minutes``.

Who: an event names its shopper (``email``) only when the platform vouched for it (a logged-in
shopper's signed token, or the email a checkout gave, confirmed by the platform's API). An
event of a visitor nobody named yet is held, by the browser's first-party ``visitor_id``, and
sent once that visitor is named: nothing reaches Brevo for a visitor nobody identified.

Kept in the ledger's database (tables ``storefront_*``), and for how long:

- a visitor's link to a contact (``visitor_id`` -> email), for ``VISITOR_DAYS`` after it was
  last seen;
- events of unnamed visitors, at most ``HELD_PER_VISITOR`` each, for ``HELD_DAYS``;
- an open browse (the products viewed since the last cart, checkout or order), until its
  ``browse_abandoned`` is sent or it is closed; and counts, for ``runner status``.

Deduplicated: a product viewed again by the same contact within the hour, a cart in the same
state, a checkout of the same cart are one event (the outbox claims each key once).
Rate-limited: at most ``events_per_contact_per_hour`` events per contact, the rest counted and
dropped (a busy shopper must not flood their own timeline, nor the account's quota).
``browse_abandoned`` falls due at a write: the forwarder writes on each event and poll, and
at least every 30 s while it forwards storefront events (``app.sync.due_every``).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from typing import Any

import orjson

from connectors.brevo.events import EventOutbox
from connectors.brevo.ledger import Ledger

SENT_TYPES = ("product_viewed", "cart_updated", "checkout_started")
VISITOR_DAYS = 90
HELD_DAYS = 7
HELD_PER_VISITOR = 50
BROWSED_PRODUCTS = 10  # the most recent products a browse_abandoned event lists
SCHEMA = """
CREATE TABLE IF NOT EXISTS storefront_visitors (
    account TEXT NOT NULL, visitor_id TEXT NOT NULL, email TEXT NOT NULL,
    seen_at REAL NOT NULL, PRIMARY KEY (account, visitor_id));
CREATE TABLE IF NOT EXISTS storefront_held (
    account TEXT NOT NULL, visitor_id TEXT NOT NULL, id TEXT NOT NULL, record TEXT NOT NULL,
    held_at REAL NOT NULL, PRIMARY KEY (account, visitor_id, id));
CREATE TABLE IF NOT EXISTS storefront_browse (
    account TEXT NOT NULL, email TEXT NOT NULL, first_view TEXT NOT NULL,
    due_at REAL NOT NULL, products TEXT NOT NULL, PRIMARY KEY (account, email));
CREATE TABLE IF NOT EXISTS storefront_rate (
    email TEXT PRIMARY KEY, hour INTEGER NOT NULL, count INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS storefront_counts (name TEXT PRIMARY KEY, n INTEGER NOT NULL);
"""


def epoch(iso: str | None) -> float:
    """An ISO 8601 UTC date (the model's) as epoch seconds (now when missing)."""
    if not iso:
        return time.time()
    return time.mktime(time.strptime(iso[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone


def storefront_counts(db: Any) -> dict[str, int]:
    """The counts kept in a ledger's database (empty before any storefront event)."""
    if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'storefront_counts'").fetchone():
        return dict(db.execute("SELECT name, n FROM storefront_counts").fetchall())
    return {}


class StorefrontEvents:
    """The destination's storefront part: records in, events into the outbox."""

    def __init__(self, ledger: Ledger, outbox: EventOutbox, settings: dict[str, Any],
                 account_property: str) -> None:
        self.ledger, self.outbox = ledger, outbox
        self.db = ledger.db
        self.db.executescript(SCHEMA)
        self.window_s = float(settings.get("browse_abandoned_minutes", 60)) * 60
        self.per_hour = int(settings.get("events_per_contact_per_hour", 60))
        self.account_property = account_property

    # --- records --------------------------------------------------------------------------

    def record(self, account: str, event: dict[str, Any], now: float | None = None) -> None:
        now = time.time() if now is None else now
        visitor = str(event.get("visitor_id") or "")
        email = (event.get("email") or "").strip().lower() or None
        if email and visitor:
            self._link(account, visitor, email, now)
        elif visitor:
            email = self._linked(account, visitor, now)
        if email is None:
            self._hold(account, visitor, event, now)
            return
        self._send(account, email, event, now)

    def bought(self, account: str, email: str) -> None:
        """An order of the contact: their open browse is no longer abandoned."""
        self.db.execute("DELETE FROM storefront_browse WHERE account = ? AND email = ?",
                        (account, email.lower()))

    def bought_all(self, buyers: Iterable[tuple[str, str]]) -> None:
        """Orders of these (account, email): one statement for a batch's buyers."""
        self.db.executemany("DELETE FROM storefront_browse WHERE account = ? AND email = ?",
                            [(account, email.lower()) for account, email in buyers])

    def due(self, now: float | None = None) -> int:
        """Send ``browse_abandoned`` for each browse whose window has passed; how many."""
        now = time.time() if now is None else now
        if self.window_s <= 0:
            return 0
        rows = self.db.execute("SELECT account, email, first_view, products FROM "
                               "storefront_browse WHERE due_at <= ?", (now,)).fetchall()
        for account, email, first_view, products in rows:
            self.db.execute("DELETE FROM storefront_browse WHERE account = ? AND email = ?",
                            (account, email))
            viewed = orjson.loads(products)
            event = {"event_name": "browse_abandoned", "identifiers": {"email_id": email},
                     "event_properties": {self.account_property: account,
                                          "products": viewed, "first_viewed_at": first_view,
                                          "product_id": viewed[-1]["product_id"]}}
            self.outbox.queue(f"{account}:storefront:browse:{email}:{first_view}", event)
            self._count("browse_abandoned")
        self._prune(now)
        return len(rows)

    # --- identity -------------------------------------------------------------------------

    def _link(self, account: str, visitor: str, email: str, now: float) -> None:
        self.db.execute("INSERT INTO storefront_visitors VALUES (?, ?, ?, ?) ON CONFLICT "
                        "(account, visitor_id) DO UPDATE SET email = excluded.email, "
                        "seen_at = excluded.seen_at", (account, visitor, email, now))
        held = self.db.execute("SELECT id, record FROM storefront_held WHERE account = ? AND "
                               "visitor_id = ? ORDER BY held_at", (account, visitor)).fetchall()
        if held:
            self.db.execute("DELETE FROM storefront_held WHERE account = ? AND visitor_id = ?",
                            (account, visitor))
            self._count("joined", len(held))
        for _, record in held:  # what the visitor did before they were named
            self._send(account, email, orjson.loads(record), now)

    def _linked(self, account: str, visitor: str, now: float) -> str | None:
        row = self.db.execute("SELECT email FROM storefront_visitors WHERE account = ? AND "
                              "visitor_id = ?", (account, visitor)).fetchone()
        if row is None:
            return None
        self.db.execute("UPDATE storefront_visitors SET seen_at = ? WHERE account = ? AND "
                        "visitor_id = ?", (now, account, visitor))
        return str(row[0])

    def _hold(self, account: str, visitor: str, event: dict[str, Any], now: float) -> None:
        held = self.db.execute("SELECT COUNT(*) FROM storefront_held WHERE account = ? AND "
                               "visitor_id = ?", (account, visitor)).fetchone()[0]
        if not visitor or held >= HELD_PER_VISITOR:
            self._count("anonymous_dropped")
            return
        self.db.execute("INSERT OR IGNORE INTO storefront_held VALUES (?, ?, ?, ?, ?)",
                        (account, visitor, str(event.get("id")), orjson.dumps(event).decode(),
                         now))
        self._count("anonymous_held")

    # --- events ---------------------------------------------------------------------------

    def _send(self, account: str, email: str, event: dict[str, Any], now: float) -> None:
        kind = event.get("type")
        self._browse(account, email, event)
        if kind not in SENT_TYPES:
            return
        key = self._key(account, email, event)
        if self._claimed(key):
            self._count("duplicate")
            return
        if not self._within_rate(email, now):
            self._count("rate_limited")
            return
        self.outbox.queue(key, {"event_name": kind, "identifiers": {"email_id": email},
                                "event_date": event.get("occurred_at"),
                                "event_properties": self._properties(account, event)})
        self._count(str(kind))

    def _key(self, account: str, email: str, event: dict[str, Any]) -> str:
        """One event per product viewed per hour, per cart state, per checkout of a cart."""
        kind = event.get("type")
        if kind == "product_viewed":
            hour = int(epoch(event.get("occurred_at")) // 3600)
            product = (event.get("product") or {}).get("id")
            return f"{account}:storefront:{kind}:{email}:{product}:{hour}"
        cart = event.get("cart") or {}
        state = hashlib.sha1(orjson.dumps([(i.get("product_id"), i.get("variant_id"),
                                            i.get("quantity")) for i in cart.get("items") or []]
                                          )).hexdigest()[:12]
        return f"{account}:storefront:{kind}:{email}:{cart.get('id')}:{state}"

    def _properties(self, account: str, event: dict[str, Any]) -> dict[str, Any]:
        properties: dict[str, Any] = {self.account_property: account, "url": event.get("url"),
                                      "visitor_id": event.get("visitor_id")}
        product = event.get("product")
        if product:
            properties.update({f"product_{k}" if k != "price" and k != "currency" else k: v
                               for k, v in product.items() if v is not None})
        cart = event.get("cart")
        if cart:
            properties.update(cart_id=cart.get("id"), amount=cart.get("total"),
                              currency=cart.get("currency"), items=[
                                  {k: v for k, v in item.items() if v is not None}
                                  for item in cart.get("items") or []])
        return properties

    def _browse(self, account: str, email: str, event: dict[str, Any]) -> None:
        """A product viewed opens (or extends) the contact's browse; a cart with items or a
        checkout closes it."""
        kind = event.get("type")
        if kind in ("cart_updated", "checkout_started"):
            if kind == "checkout_started" or (event.get("cart") or {}).get("items"):
                self.bought(account, email)
            return
        product = event.get("product")
        if kind != "product_viewed" or not product or self.window_s <= 0:
            return
        row = self.db.execute("SELECT first_view, products FROM storefront_browse WHERE "
                              "account = ? AND email = ?", (account, email)).fetchone()
        viewed = [p for p in (orjson.loads(row[1]) if row else [])
                  if p["product_id"] != product.get("id")]
        viewed.append({"product_id": product.get("id"), "name": product.get("name"),
                       "price": product.get("price"), "url": product.get("url")})
        due = epoch(event.get("occurred_at")) + self.window_s
        self.db.execute("INSERT INTO storefront_browse VALUES (?, ?, ?, ?, ?) ON CONFLICT "
                        "(account, email) DO UPDATE SET due_at = excluded.due_at, "
                        "products = excluded.products",
                        (account, email, row[0] if row else event.get("occurred_at"), due,
                         orjson.dumps(viewed[-BROWSED_PRODUCTS:]).decode()))

    def _claimed(self, key: str) -> bool:
        """Whether the outbox has claimed ``key`` (its ``events_sent``): a duplicate, which
        must not spend the contact's rate."""
        return self.db.execute("SELECT 1 FROM events_sent WHERE key = ?",
                               (key,)).fetchone() is not None

    def _within_rate(self, email: str, now: float) -> bool:
        hour = int(now // 3600)
        row = self.db.execute("SELECT hour, count FROM storefront_rate WHERE email = ?",
                              (email,)).fetchone()
        count = row[1] if row and row[0] == hour else 0
        if count >= self.per_hour:
            return False
        self.db.execute("INSERT OR REPLACE INTO storefront_rate VALUES (?, ?, ?)",
                        (email, hour, count + 1))
        return True

    def _count(self, name: str, n: int = 1) -> None:
        self.db.execute("INSERT INTO storefront_counts VALUES (?, ?) ON CONFLICT (name) DO "
                        "UPDATE SET n = storefront_counts.n + excluded.n", (name, n))

    def _prune(self, now: float) -> None:
        """What is kept about visitors, and for how long (the module's doc)."""
        self.db.execute("DELETE FROM storefront_visitors WHERE seen_at < ?",
                        (now - VISITOR_DAYS * 86400,))
        gone = self.db.execute("DELETE FROM storefront_held WHERE held_at < ?",
                               (now - HELD_DAYS * 86400,)).rowcount
        if gone:
            self._count("anonymous_expired", gone)
        self.db.execute("DELETE FROM storefront_rate WHERE hour < ?", (int(now // 3600),))
