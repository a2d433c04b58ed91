"""The destination's own memory (SQLite): what Brevo needs that one record does not carry.

Each customer's email, the orders that make ``order_count`` and ``amount_spent`` (when the
platform does not keep them), the versions of records seen (events), carts, stock levels and
catalog ids; plus what was last sent for each contact, so that a changed count is sent again and
an unchanged one is not. Kept across runs in the state directory. The column ``store`` holds the
model's ``account``.

Counting rule: an order counts once, by its (account, id), however often it is updated; an order
that is not ``counts_as_purchase`` does not count, and ``refunded`` is taken off its ``total``.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from framework.declarative.formats import iso_utc
from framework.files import open_sqlite

log = logging.getLogger("tajo.brevo")

SCHEMA = """
CREATE TABLE IF NOT EXISTS customers (store TEXT, id INTEGER, email TEXT,
                                      PRIMARY KEY (store, id));
CREATE INDEX IF NOT EXISTS customers_by_email ON customers (email);
CREATE TABLE IF NOT EXISTS orders (store TEXT, id INTEGER, email TEXT, counted INTEGER,
                                   spent REAL, customer_id INTEGER, PRIMARY KEY (store, id));
CREATE INDEX IF NOT EXISTS orders_by_email ON orders (email);
CREATE TABLE IF NOT EXISTS sent_totals (email TEXT PRIMARY KEY, orders INTEGER, spent REAL);
CREATE TABLE IF NOT EXISTS accounts (store TEXT PRIMARY KEY, country_code TEXT, url TEXT);
CREATE TABLE IF NOT EXISTS catalog_items (store TEXT, variant_id INTEGER, brevo_id TEXT,
                                          stock REAL, sent_stock REAL,
                                          PRIMARY KEY (store, variant_id));
CREATE TABLE IF NOT EXISTS catalog_names (brevo_id TEXT PRIMARY KEY, name TEXT);
CREATE TABLE IF NOT EXISTS sms_owners (sms TEXT PRIMARY KEY, email TEXT);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS orders_seen (store TEXT, id INTEGER, updated_at TEXT, status TEXT,
                                        PRIMARY KEY (store, id));
CREATE TABLE IF NOT EXISTS events_sent (key TEXT PRIMARY KEY, at TEXT);
CREATE TABLE IF NOT EXISTS events_in_doubt (key TEXT PRIMARY KEY, event TEXT);
CREATE TABLE IF NOT EXISTS events_outbox (seq INTEGER PRIMARY KEY, key TEXT UNIQUE, event TEXT);
CREATE TABLE IF NOT EXISTS customers_seen (store TEXT, id INTEGER, updated_at TEXT,
                                           PRIMARY KEY (store, id));
CREATE TABLE IF NOT EXISTS consents (email TEXT PRIMARY KEY, cart_emails INTEGER);
CREATE TABLE IF NOT EXISTS abandoned_carts (store TEXT, cart_id TEXT, email TEXT,
                                            PRIMARY KEY (store, cart_id));
CREATE TABLE IF NOT EXISTS skipped_carts (store TEXT, cart_id TEXT, reason TEXT,
                                          PRIMARY KEY (store, cart_id));
CREATE TABLE IF NOT EXISTS carts_seen (store TEXT, cart_id TEXT, updated_at TEXT,
                                       PRIMARY KEY (store, cart_id));
"""
#: What the keys mean: 2 = the commerce model's (ids as text, dates in ISO 8601 UTC in the
#: versions and the event keys ``{account}:{id}:{updated_at}:{name}``). A ledger without a
#: version was written by the destination that read the platform's own records.
SCHEMA_VERSION = "2"


class AccountMismatch(Exception):
    """The ledger describes another Brevo account than the one the API key opens."""


def _prepare(db: sqlite3.Connection) -> None:
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(SCHEMA)
    columns = {row[1] for row in db.execute("PRAGMA table_info(orders)")}
    if "customer_id" not in columns:  # a ledger made before orders knew their customer
        db.execute("ALTER TABLE orders ADD COLUMN customer_id INTEGER")
    db.execute("CREATE INDEX IF NOT EXISTS orders_by_customer ON orders (store, customer_id)")
    move_old_tables(db)  # a ledger of any earlier version, the switch's first included
    version = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if version is None:
        migrate_to_model(db)
        db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
        db.commit()


def _iso(value: str) -> str:
    try:
        return iso_utc(value) if value else value
    except (ValueError, TypeError, IndexError):
        return value  # not a date this ledger can read: left as it was


def model_event_key(key: str) -> str:
    """An event key of the first ledger (``{store}:{id}:{date}:{name}``, ``{store}:customer:
    {id}:{date}:{name}``, ``{store}:cart:{id}:{date}:{name}``) with its date in ISO 8601 UTC,
    as the model's ``updated_at`` writes it. The date may hold colons: it is what lies between
    the id and the last colon."""
    store, _, rest = key.partition(":")
    head, _, name = rest.rpartition(":")
    kind = ""
    if head.startswith(("customer:", "cart:")):
        kind, _, head = head.partition(":")
        kind += ":"
    record_id, _, date = head.partition(":")
    if not name or not record_id:
        return key
    return f"{store}:{kind}{record_id}:{_iso(date)}:{name}"


def move_old_tables(db: sqlite3.Connection) -> None:
    """The versions and the store addresses of an earlier ledger into today's tables (copied
    by position: the old tables' columns were named after the platform's fields), their dates
    in ISO 8601 UTC; the old tables dropped."""
    old = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "order_versions" in old:
        rows = db.execute("SELECT * FROM order_versions").fetchall()
        db.executemany("INSERT OR IGNORE INTO orders_seen VALUES (?, ?, ?, ?)",
                       [(s, i, _iso(d or ""), status) for s, i, d, status in rows])
        db.execute("DROP TABLE order_versions")
    if "customer_versions" in old:
        rows = db.execute("SELECT * FROM customer_versions").fetchall()
        db.executemany("INSERT OR IGNORE INTO customers_seen VALUES (?, ?, ?)",
                       [(s, i, _iso(d or "")) for s, i, d in rows])
        db.execute("DROP TABLE customer_versions")
    if "stores" in old:
        db.execute("INSERT OR IGNORE INTO accounts SELECT * FROM stores")
        db.execute("DROP TABLE stores")


def migrate_to_model(db: sqlite3.Connection) -> None:
    """Turn a ledger written from the platform's own records into the model's: the event keys
    with their dates in ISO 8601 UTC (so that a change seen before is not an event again), and
    the carts events were sent for marked seen (an active cart seen before is
    ``cart_updated``, as its webhook said)."""
    for table in ("events_sent", "events_in_doubt"):
        rows = db.execute(f"SELECT key FROM {table}").fetchall()
        db.executemany(f"UPDATE OR IGNORE {table} SET key = ? WHERE key = ?",
                       [(model_event_key(k), k) for (k,) in rows])
    rows = db.execute("SELECT key FROM events_outbox").fetchall()
    db.executemany("UPDATE OR IGNORE events_outbox SET key = ? WHERE key = ?",
                   [(model_event_key(k), k) for (k,) in rows])
    carts: dict[tuple[str, str], str] = {}
    for (key,) in db.execute("SELECT key FROM events_sent WHERE key LIKE '%:cart:%' "
                             "ORDER BY key"):
        store, _, rest = key.partition(":")
        _, cart_id, date = rest.rpartition(":")[0].split(":", 2)
        carts[(store, cart_id)] = max(carts.get((store, cart_id), ""), date)
    db.executemany("INSERT OR REPLACE INTO carts_seen VALUES (?, ?, ?)",
                   [(*cart, date) for cart, date in sorted(carts.items())])


class Ledger:
    """One SQLite file; every write is committed with the batch it belongs to."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # Private (0600 in a 0700 directory); a damaged file is a one-line error, left as it is.
        self.db = open_sqlite(path, "Brevo ledger", _prepare)

    dry_run = False  # a dry run never commits (its changes are rolled back on close)

    def commit(self) -> None:
        if not self.dry_run:
            self.db.commit()

    def close(self) -> None:
        self.db.commit()
        self.db.close()

    def connected_at(self, now: str) -> str:
        """When this destination first wrote to Brevo (set on the first call)."""
        self.db.execute("INSERT OR IGNORE INTO meta VALUES ('connected_at', ?)", (now,))
        return self.db.execute("SELECT value FROM meta WHERE key = 'connected_at'").fetchone()[0]

    def bind_account(self, account_id: str, name: str) -> None:
        """Record which Brevo account this ledger describes (on first use), or refuse another
        one: what the ledger says was sent was sent to that account only."""
        self.db.execute("INSERT OR IGNORE INTO meta VALUES ('brevo_account', ?)", (account_id,))
        self.db.execute("INSERT OR IGNORE INTO meta VALUES ('brevo_account_name', ?)", (name,))
        self.db.commit()
        bound = dict(self.db.execute("SELECT key, value FROM meta WHERE key IN "
                                     "('brevo_account', 'brevo_account_name')").fetchall())
        if bound["brevo_account"] != account_id:
            raise AccountMismatch(
                f"the ledger {self.path} belongs to the Brevo account "
                f"{bound['brevo_account_name']!r} (organization {bound['brevo_account']}), but "
                f"the API key is of the account {name!r} (organization {account_id}): point "
                "state_dir at a directory of its own for this account, or delete the ledger "
                "to start this account over (everything is sent to it again as new)")

    def order_version(self, store: str, order_id: str) -> tuple[str, str] | None:
        """(updated_at, status) of the order as last seen, or None when never seen."""
        row = self.db.execute("SELECT updated_at, status FROM orders_seen WHERE "
                              "store = ? AND id = ?", (store, order_id)).fetchone()
        return (row[0], row[1]) if row else None

    def put_order_version(self, store: str, order_id: str, modified: str, status: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO orders_seen VALUES (?, ?, ?, ?)",
                        (store, order_id, modified, status))

    def customer_version(self, store: str, customer_id: str, modified: str) -> str | None:
        """The customer's updated_at as last seen (None: never), recording the new one."""
        row = self.db.execute("SELECT updated_at FROM customers_seen WHERE store = ? "
                              "AND id = ?", (store, customer_id)).fetchone()
        self.db.execute("INSERT OR REPLACE INTO customers_seen VALUES (?, ?, ?)",
                        (store, customer_id, modified))
        return row[0] if row else None

    def claim_event(self, key: str, at: str) -> bool:
        """Record that an event is being sent; False when it already was (no duplicate)."""
        cursor = self.db.execute("INSERT OR IGNORE INTO events_sent VALUES (?, ?)", (key, at))
        return cursor.rowcount == 1

    def outbox_event(self, key: str, event: dict[str, Any]) -> None:
        """An event to send at the next flush (committed with the change that made it)."""
        self.db.execute("INSERT OR IGNORE INTO events_outbox (key, event) VALUES (?, ?)",
                        (key, orjson.dumps(event).decode()))

    def outbox(self, limit: int) -> list[tuple[str, dict[str, Any]]]:
        """The oldest events waiting to be sent."""
        return [(key, orjson.loads(event)) for key, event in self.db.execute(
            "SELECT key, event FROM events_outbox ORDER BY seq LIMIT ?", (limit,))]

    def doubt_events(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        """Move events that are about to be sent from the outbox to "in doubt", where they
        stay until Brevo's answer settles them: a run that dies before the answer leaves
        them for the next run to look up."""
        self.db.executemany("INSERT OR REPLACE INTO events_in_doubt VALUES (?, ?)",
                            [(key, orjson.dumps(event).decode()) for key, event in events])
        self.db.executemany("DELETE FROM events_outbox WHERE key = ?",
                            [(key,) for key, _ in events])

    def settle_events(self, keys: list[str]) -> None:
        """Brevo answered about these events (taken or refused): no longer in doubt."""
        self.db.executemany("DELETE FROM events_in_doubt WHERE key = ?", [(k,) for k in keys])

    def events_in_doubt(self) -> list[tuple[str, dict[str, Any]]]:
        """Events sent by a run that ended before Brevo answered."""
        return [(key, orjson.loads(event)) for key, event in
                self.db.execute("SELECT key, event FROM events_in_doubt ORDER BY key")]

    def release_event(self, key: str) -> None:
        """Forget an event Brevo refused, so that a later run may send it."""
        self.db.execute("DELETE FROM events_sent WHERE key = ?", (key,))

    def put_consent(self, email: str, cart_emails: bool | None) -> None:
        """Whether the customer accepts abandoned-cart emails (None: the store did not say)."""
        self.db.execute("INSERT OR REPLACE INTO consents VALUES (?, ?)",
                        (email, None if cart_emails is None else int(cart_emails)))

    def cart_consent(self, email: str) -> bool:
        """True only when the store said yes: consent is carried, never invented."""
        row = self.db.execute("SELECT cart_emails FROM consents WHERE email = ?",
                              (email,)).fetchone()
        return bool(row and row[0])

    def customer_email(self, store: str, customer_id: str) -> str | None:
        row = self.db.execute("SELECT email FROM customers WHERE store = ? AND id = ?",
                              (store, customer_id)).fetchone()
        return row[0] if row else None

    def put_abandoned(self, store: str, cart_id: str, email: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO abandoned_carts VALUES (?, ?, ?)",
                        (store, cart_id, email))

    def drop_abandoned(self, store: str, cart_id: str) -> str | None:
        """Forget an abandoned cart; returns its email when no other abandoned cart has it."""
        row = self.db.execute("SELECT email FROM abandoned_carts WHERE store = ? AND "
                              "cart_id = ?", (store, cart_id)).fetchone()
        if row is None:
            return None
        self.db.execute("DELETE FROM abandoned_carts WHERE store = ? AND cart_id = ?",
                        (store, cart_id))
        others = self.db.execute("SELECT 1 FROM abandoned_carts WHERE email = ? LIMIT 1",
                                 (row[0],)).fetchone()
        return None if others else row[0]

    def skip_cart(self, store: str, cart_id: str, reason: str) -> None:
        """A cart whose changes are not sent for lack of consent (``guest``, ``no_consent``);
        one that is sent later (consent given) is no longer counted."""
        self.db.execute("INSERT OR REPLACE INTO skipped_carts VALUES (?, ?, ?)",
                        (store, cart_id, reason))

    def unskip_cart(self, store: str, cart_id: str) -> None:
        self.db.execute("DELETE FROM skipped_carts WHERE store = ? AND cart_id = ?",
                        (store, cart_id))

    def skipped_carts(self) -> dict[str, int]:
        """Carts skipped for lack of consent, by reason (``runner status``)."""
        return dict(self.db.execute("SELECT reason, COUNT(*) FROM skipped_carts "
                                    "GROUP BY reason").fetchall())

    def put_account(self, store: str, country_code: str | None, url: str | None) -> None:
        """The store's country (the region of national phone numbers) and web address."""
        before = self.store_url(store)
        after = (url or "").rstrip("/") or None
        if before and after != before:
            # Brevo keeps the URLs it was sent; only products read again get the new one.
            log.warning("store %s moved from %s to %s: products in Brevo keep the old address "
                        "until they change or the products stream is read from the start "
                        "(without its saved state)",
                        store, before, after)
        self.db.execute("INSERT OR REPLACE INTO accounts VALUES (?, ?, ?)",
                        (store, country_code, url))

    def store_url(self, store: str) -> str | None:
        row = self.db.execute("SELECT url FROM accounts WHERE store = ?",
                              (store,)).fetchone()
        return row[0].rstrip("/") if row and row[0] else None

    def put_item(self, store: str, variant_id: str, brevo_id: str) -> None:
        """Which Brevo product holds a variant's stock (the product itself when it has one
        variant, the variant's own product otherwise)."""
        self.db.execute("INSERT INTO catalog_items VALUES (?, ?, ?, NULL, NULL) ON CONFLICT "
                        "(store, variant_id) DO UPDATE SET brevo_id = excluded.brevo_id",
                        (store, variant_id, brevo_id))

    def put_item_name(self, brevo_id: str, name: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO catalog_names VALUES (?, ?)", (brevo_id, name))

    def item_name(self, brevo_id: str) -> str | None:
        """The name a catalog item was last sent with (the SDK requires it on every
        product write, a stock update's or a deletion's too)."""
        row = self.db.execute("SELECT name FROM catalog_names WHERE brevo_id = ?",
                              (brevo_id,)).fetchone()
        return row[0] if row else None

    def set_stock(self, store: str, variant_id: str, level: float) -> None:
        self.db.execute("INSERT INTO catalog_items VALUES (?, ?, NULL, ?, NULL) "
                        "ON CONFLICT (store, variant_id) DO UPDATE SET stock = excluded.stock",
                        (store, variant_id, level))

    def stock(self, store: str, variant_id: str) -> float | None:
        row = self.db.execute("SELECT stock FROM catalog_items WHERE store = ? AND "
                              "variant_id = ?", (store, variant_id)).fetchone()
        return row[0] if row else None

    def stale_stock(self) -> list[tuple[str, str, str, float]]:
        """(store, variant, Brevo id, stock) where the stock differs from what Brevo has."""
        return list(self.db.execute(
            "SELECT store, variant_id, brevo_id, stock FROM catalog_items WHERE brevo_id IS NOT "
            "NULL AND stock IS NOT NULL AND (sent_stock IS NULL OR sent_stock != stock)"))

    def mark_stock_sent(self, store: str, variant_id: str, level: float) -> None:
        self.db.execute("UPDATE catalog_items SET sent_stock = ? WHERE store = ? AND "
                        "variant_id = ?", (level, store, variant_id))

    def store_country(self, store: str) -> str | None:
        row = self.db.execute("SELECT country_code FROM accounts WHERE store = ?",
                              (store,)).fetchone()
        return row[0] if row else None

    def put_customer(self, store: str, customer_id: str, email: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO customers VALUES (?, ?, ?)",
                        (store, customer_id, email))

    def rehome_orders(self, store: str, customer_id: str, email: str) -> list[str]:
        """A customer's orders seen before the customer (counted for the billing email then)
        count for the customer's email now; returns the emails whose totals change."""
        before = [row[0] for row in self.db.execute(
            "SELECT DISTINCT email FROM orders WHERE store = ? AND customer_id = ? "
            "AND email IS NOT ?", (store, customer_id, email))]
        if before:
            self.db.execute("UPDATE orders SET email = ? WHERE store = ? AND customer_id = ?",
                            (email, store, customer_id))
        return [e for e in before if e]

    def buyer_email(self, store: str, customer_id: Any, email: str | None) -> str | None:
        """Whom an order belongs to: its customer's email, else (a guest) the order's."""
        if customer_id:
            found = self.customer_email(store, customer_id)
            if found:
                return found
        return (email or "").strip().lower() or None

    def cart_version(self, store: str, cart_id: str, updated_at: str) -> str | None:
        """The cart's ``updated_at`` as last seen (None: never seen), recording the new one."""
        row = self.db.execute("SELECT updated_at FROM carts_seen WHERE store = ? AND "
                              "cart_id = ?", (store, cart_id)).fetchone()
        self.db.execute("INSERT OR REPLACE INTO carts_seen VALUES (?, ?, ?)",
                        (store, cart_id, updated_at))
        return (row[0] or "") if row else None

    def count_order(self, store: str, order_id: Any, email: str | None, counted: bool,
                    spent: float, customer_id: Any) -> str | None:
        """Record an order for ``email`` (``spent``: its total less refunds); returns the
        email it counted for before when that was another one (the order moved between
        customers: both totals change)."""
        previous = self.db.execute("SELECT email FROM orders WHERE store = ? AND id = ?",
                                   (store, order_id)).fetchone()
        self.db.execute("INSERT OR REPLACE INTO orders (store, id, email, counted, spent, "
                        "customer_id) VALUES (?, ?, ?, ?, ?, ?)",
                        (store, order_id, email, int(counted), spent if counted else 0.0,
                         customer_id))
        return previous[0] if previous and previous[0] and previous[0] != email else None

    def drop_order(self, store: str, order_id: str) -> str | None:
        """An order gone from the store no longer counts; returns whose totals change."""
        row = self.db.execute("SELECT email FROM orders WHERE store = ? AND id = ?",
                              (store, order_id)).fetchone()
        self.db.execute("UPDATE orders SET counted = 0, spent = 0 WHERE store = ? AND id = ?",
                        (store, order_id))
        return row[0] if row else None

    def product_items(self, store: str, product_id: str) -> list[str]:
        """The Brevo catalog ids that hold a product and its variants."""
        parent = f"{store}-{product_id}"
        return [row[0] for row in self.db.execute(
            "SELECT DISTINCT brevo_id FROM catalog_items WHERE store = ? AND (brevo_id = ? OR "
            "brevo_id LIKE ?)", (store, parent, parent + "-%"))] + (
            [parent] if self.db.execute("SELECT 1 FROM catalog_items WHERE store = ? AND "
                                        "brevo_id LIKE ? LIMIT 1",
                                        (store, parent + "-%")).fetchone() else [])

    def orders_sent(self) -> int:
        """Orders the ledger holds (each was sent to Brevo with the batch it came in)."""
        return int(self.db.execute("SELECT COUNT(*) FROM orders").fetchone()[0])

    def known_customers(self, emails: set[str]) -> set[str]:
        """Those of ``emails`` that belong to a customer (guests never become contacts)."""
        return {email for email in emails if self.db.execute(
            "SELECT 1 FROM customers WHERE email = ? LIMIT 1", (email,)).fetchone()}

    def claim_sms(self, sms: str, email: str) -> bool:
        """Give ``sms`` to ``email`` unless another contact holds it (Brevo refuses a phone
        number on two contacts)."""
        row = self.db.execute("SELECT email FROM sms_owners WHERE sms = ?", (sms,)).fetchone()
        if row and row[0] != email:
            return False
        self.db.execute("INSERT OR REPLACE INTO sms_owners VALUES (?, ?)", (sms, email))
        return True

    def totals(self, email: str) -> tuple[int, float]:
        """(orders, spent) of a contact over every store."""
        row = self.db.execute("SELECT COALESCE(SUM(counted), 0), COALESCE(SUM(spent), 0) "
                              "FROM orders WHERE email = ?", (email,)).fetchone()
        return int(row[0]), round(float(row[1]), 2)

    def changed_totals(self, emails: set[str]) -> Iterator[tuple[str, int, float, int]]:
        """(email, orders, spent, orders last sent) of the contacts among ``emails`` whose
        totals differ from what was last sent."""
        for email in sorted(emails):
            orders, spent = self.totals(email)
            sent = self.db.execute("SELECT orders, spent FROM sent_totals WHERE email = ?",
                                   (email,)).fetchone()
            if sent is None or (sent[0], round(sent[1], 2)) != (orders, spent):
                yield email, orders, spent, sent[0] if sent else 0

    def mark_sent(self, email: str, orders: int, spent: float) -> None:
        self.db.execute("INSERT OR REPLACE INTO sent_totals VALUES (?, ?, ?)",
                        (email, orders, spent))
