"""The destination's own memory: what Brevo needs that one record does not carry.

Each customer's email, the orders that make ``order_count`` and ``amount_spent`` (when the
platform does not keep them), the versions of records seen (events), carts, stock levels and
catalog ids; plus what was last sent for each contact (its totals, and a fingerprint of the
record its row was made of), so that a changed count or record is sent again and an unchanged one
is not even mapped. Kept across runs in the state directory. The column ``store`` holds the
model's ``account``.

A run reads and writes it a batch at a time (``Intake``): each lookup of a batch's keys is one
statement per ``LOOKUP_CHUNK`` keys (a join with a ``VALUES`` list, which uses the index), each
write one ``executemany``; ``statements`` counts them.

Where it is kept: ``brevo.db`` in the state directory (SQLite, the default), or, when the
config's ``storage`` is a PostgreSQL URL, the namespace ``brevo`` of that database (its own
``#namespace`` if the URL names one), where several workers writing different stores into
one Brevo account share it. The SQL is SQLite's either way (``framework.storage.session``
speaks it to PostgreSQL); what sharing asks for is below, at ``Ledger``. Dead letters follow
the same choice (``dead_letter_sink``): the file ``dead-letter.jsonl`` beside a SQLite ledger,
the ledger's table ``dead_letters`` in PostgreSQL.

Counting rule: an order counts once, by its (account, id), however often it is updated; an order
that is not ``counts_as_purchase`` does not count, and ``refunded`` is taken off its ``total``.
"""

from __future__ import annotations

import hashlib
import logging
import re
import sqlite3
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from framework.declarative.formats import iso_utc
from framework.files import open_sqlite, private_file
from framework.storage import describe, is_postgres, located

log = logging.getLogger("tajo.brevo")

SCHEMA = """
CREATE TABLE IF NOT EXISTS customers (store TEXT, id INTEGER, email TEXT,
                                      PRIMARY KEY (store, id));
CREATE INDEX IF NOT EXISTS customers_by_email ON customers (email);
CREATE TABLE IF NOT EXISTS orders (store TEXT, id INTEGER, email TEXT, counted INTEGER,
                                   spent REAL, customer_id INTEGER, PRIMARY KEY (store, id));
CREATE INDEX IF NOT EXISTS orders_by_email ON orders (email);
CREATE TABLE IF NOT EXISTS sent_totals (email TEXT PRIMARY KEY, orders INTEGER, spent REAL,
                                        fingerprint TEXT);
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
CREATE TABLE IF NOT EXISTS account_keys (platform TEXT, account TEXT, key TEXT UNIQUE,
                                         PRIMARY KEY (platform, account));
"""
#: What the keys mean: 2 = the commerce model's (ids as text, dates in ISO 8601 UTC in the
#: versions and the event keys ``{account}:{id}:{updated_at}:{name}``). A ledger without a
#: version was written by the destination that read the platform's own records.
SCHEMA_VERSION = "2"

#: The ledger in PostgreSQL: the same tables, made from SQLite's (``ddl_to_postgres``) but
#: with ids as TEXT: SQLite keeps an id that is not made of digits as text in an INTEGER
#: column, PostgreSQL refuses it, and the model's ids are text. Dead letters are a table there.
POSTGRES_SCHEMA = re.sub(r"\b(id|customer_id|variant_id) INTEGER\b", r"\1 TEXT", SCHEMA) + """
CREATE INDEX IF NOT EXISTS orders_by_customer ON orders (store, customer_id);
CREATE TABLE IF NOT EXISTS dead_letters (seq INTEGER PRIMARY KEY, stream TEXT, reason TEXT,
                                         at INTEGER, letter TEXT);
"""
#: The ledger's namespace in a PostgreSQL database (a storage URL that names none).
NAMESPACE = "brevo"


def ledger_location(config: dict[str, Any]) -> str | Path:
    """Where a destination config's ledger is: ``storage``'s namespace (``brevo`` unless
    the URL names one after ``#``), or ``brevo.db`` in ``state_dir``."""
    storage = config.get("storage")
    if is_postgres(storage):
        return str(storage) if "#" in str(storage) else located(str(storage), NAMESPACE)
    return Path(config.get("state_dir") or ".tajo") / "brevo.db"


class AccountMismatch(Exception):
    """The ledger describes another Brevo account than the one the API key opens."""


#: The page cache, in KiB (SQLite's default is 2 MB): a batch touches pages all over the
#: email indexes. The ledger alone, 300,000 customers and their orders committed every 50,000
#: records: 34.4 s of CPU with the default, 30.5 s with 16 MB, 25.1 s with 64 MB; a sync of
#: 150,000 customers from 50 stores peaked at 235 MB with 16 MB, 227 MB with 8. Filled only
#: as the file grows.
CACHE_KIB = 8 * 1024
#: Keys a lookup binds at once (two values each: under SQLite's old limit of 999 variables).
LOOKUP_CHUNK = 400


class CountingConnection(sqlite3.Connection):
    """A connection that counts the statements run through it (``Ledger.statements``): an
    ``execute`` and an ``executemany`` are one each, however many rows they carry."""

    statements = 0

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        self.statements += 1
        return super().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        self.statements += 1
        return super().executemany(sql, parameters)


def _prepare(db: sqlite3.Connection) -> None:
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    db.executescript(SCHEMA)
    columns = {row[1] for row in db.execute("PRAGMA table_info(orders)")}
    if "customer_id" not in columns:  # a ledger made before orders knew their customer
        db.execute("ALTER TABLE orders ADD COLUMN customer_id INTEGER")
    columns = {row[1] for row in db.execute("PRAGMA table_info(sent_totals)")}
    if "fingerprint" not in columns:  # a ledger made before unchanged contacts were skipped
        db.execute("ALTER TABLE sent_totals ADD COLUMN fingerprint TEXT")
    db.execute("CREATE INDEX IF NOT EXISTS orders_by_customer ON orders (store, customer_id)")
    move_old_tables(db)  # a ledger of any earlier version, the switch's first included
    version = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if version is None:
        migrate_to_model(db)
        db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
        db.commit()
    if db.execute("SELECT 1 FROM meta WHERE key = 'account_keys'").fetchone() is None:
        # Accounts a ledger knew before keys were qualified by platform keep their key,
        # adopted by the first platform that names them again (there was one platform then).
        db.execute("INSERT OR IGNORE INTO account_keys SELECT '', store, store FROM ("
                   "SELECT store FROM accounts UNION SELECT store FROM customers UNION "
                   "SELECT store FROM orders UNION SELECT store FROM catalog_items)")
        db.execute("INSERT INTO meta VALUES ('account_keys', '1')")
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


def _prepare_postgres(db: Any) -> None:
    """A ledger in PostgreSQL starts at today's version (``runner storage migrate`` copies
    one that SQLite has brought up to it)."""
    db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
    db.execute("INSERT OR IGNORE INTO meta VALUES ('account_keys', '1')")
    db.commit()


class Ledger:
    """A SQLite file or a PostgreSQL namespace; every write is committed with the batch it
    belongs to.

    Shared in PostgreSQL by writers of different stores, it is correct by its keys: each row
    is a store's (its account in the key) or a contact's (email), written with
    ``INSERT ... ON CONFLICT``, never read-then-written across a commit. Where writers could
    take the same work, it is claimed: ``outbox`` reads with ``FOR UPDATE SKIP LOCKED``
    (another writer's claimed events are skipped, not sent twice), and a batch of events in
    flight holds a session advisory lock per event from before its commit until Brevo answers
    (or the writer's connection ends), which ``events_in_doubt`` tries: a live writer's batch
    is never taken for a dead one's. The row locks of a contact that two
    stores' customers share are held until the writer's next commit: the other waits, and
    when two wait on each other PostgreSQL ends one's transaction (a deadlock), whose run
    fails as a transient error and reads its records again from its last STATE.
    """

    def __init__(self, location: str | Path) -> None:
        self.path = location
        self.pg = is_postgres(location)
        #: How the ledger is named to people and in the account check (no password).
        self.where = describe(location) if self.pg else str(Path(location).resolve())
        self.in_flight: list[str] = []  # events posted and not yet answered (PostgreSQL)
        if self.pg:
            from framework.storage.session import PostgresSession

            self.db: Any = PostgresSession(str(location), "Brevo ledger", POSTGRES_SCHEMA)
            _prepare_postgres(self.db)
        else:
            # Private (0600 in a 0700 directory); a damaged file is a one-line error, left
            # as it is.
            self.db = open_sqlite(Path(location), "Brevo ledger", _prepare,
                                  factory=CountingConnection)
        self.countries: dict[str, str | None] | None = None  # store -> country, once read
        self.keys: dict[tuple[str, str], str] = {}  # (platform, account) -> its key here

    dry_run = False  # a dry run never commits (its changes are rolled back on close)

    def commit(self) -> None:
        if not self.dry_run:
            self.db.commit()

    def rollback(self) -> None:
        self.db.rollback()

    @property
    def _lock_space(self) -> int:
        """The first of the two keys of this ledger's advisory locks on events (its schema's;
        the second is the event key's hash, ``hashtext``)."""
        return int(hashlib.sha1(str(getattr(self.db, "schema", "")).encode()).hexdigest()[:7],
                   16)  # (under 2**28: the contacts' locks use the next number)

    def close(self) -> None:
        self.db.commit()
        self.db.close()

    def connected_at(self, now: str) -> str:
        """When this destination first wrote to Brevo (set on the first call)."""
        self.db.execute("INSERT OR IGNORE INTO meta VALUES ('connected_at', ?)", (now,))
        if self.pg:  # at once: other writers' first insert would wait for this one's commit
            self.commit()
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
                f"the ledger {self.where} belongs to the Brevo account "
                f"{bound['brevo_account_name']!r} (organization {bound['brevo_account']}), but "
                f"the API key is of the account {name!r} (organization {account_id}): point "
                "state_dir at a directory of its own for this account, or delete the ledger "
                "to start this account over (everything is sent to it again as new)")

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
            "SELECT key, event FROM events_outbox ORDER BY seq LIMIT ?" + self._claim,
            (limit,))]

    @property
    def _claim(self) -> str:
        """Rows another writer of a shared ledger is working on are skipped (PostgreSQL)."""
        return " FOR UPDATE SKIP LOCKED" if self.pg else ""

    def doubt_events(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        """Move events that are about to be sent from the outbox to "in doubt", where they
        stay until Brevo's answer settles them: a run that dies before the answer leaves
        them for the next run to look up."""
        self.db.executemany("INSERT OR REPLACE INTO events_in_doubt VALUES (?, ?)",
                            [(key, orjson.dumps(event).decode()) for key, event in events])
        self.db.executemany("DELETE FROM events_outbox WHERE key = ?",
                            [(key,) for key, _ in events])
        if self.pg:  # held until Brevo answers, past the commit that follows (session locks)
            self.in_flight = [key for key, _ in events]
            self.db.execute("SELECT pg_advisory_lock(?::int4, hashtext(k)) FROM "
                            "unnest(?::text[]) AS k", (self._lock_space, self.in_flight))

    def settle_events(self, keys: list[str]) -> None:
        """Brevo answered about these events (taken or refused): no longer in doubt."""
        self.db.executemany("DELETE FROM events_in_doubt WHERE key = ?", [(k,) for k in keys])
        settled = set(keys)
        answered = [key for key in self.in_flight if key in settled]
        if answered:
            self.db.execute("SELECT pg_advisory_unlock(?::int4, hashtext(k)) FROM "
                            "unnest(?::text[]) AS k", (self._lock_space, answered))
            self.in_flight = [key for key in self.in_flight if key not in settled]

    def events_in_doubt(self) -> list[tuple[str, dict[str, Any]]]:
        """Events sent by a run that ended before Brevo answered. In PostgreSQL, only those
        no live writer holds (its batch posted and not yet answered): each taken here is
        locked until this writer's next commit, so two do not look up the same."""
        if not self.pg:
            rows = self.db.execute("SELECT key, event FROM events_in_doubt ORDER BY key")
        else:
            rows = self.db.execute(
                "SELECT key, event FROM events_in_doubt WHERE "
                "pg_try_advisory_xact_lock(?::int4, hashtext(key)) ORDER BY key",
                (self._lock_space,))
        return [(key, orjson.loads(event)) for key, event in rows]

    def release_event(self, key: str) -> None:
        """Forget an event Brevo refused, so that a later run may send it."""
        self.db.execute("DELETE FROM events_sent WHERE key = ?", (key,))

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
        if self.countries is not None:
            self.countries[store] = country_code

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

    def account_key(self, platform: str, account: str) -> str:
        """The key a platform's account goes by in this ledger and in Brevo's ids: the account
        itself, unless another platform's account of the same name has it already, then
        ``{platform}-{account}``. Kept once given, so ids never change; the model's
        (platform, account) pairs never collide, whatever the platforms call their stores."""
        known = self.keys.get((platform, account))
        if known is not None:
            return known
        row = self.db.execute("SELECT key FROM account_keys WHERE platform = ? AND account = ?",
                              (platform, account)).fetchone()
        if row is None:
            adopted = self.db.execute(
                "UPDATE account_keys SET platform = ? WHERE platform = '' AND account = ?",
                (platform, account)).rowcount
            key = account
            if not adopted:
                taken = self.db.execute("SELECT 1 FROM account_keys WHERE key = ?",
                                        (account,)).fetchone()
                key = f"{platform}-{account}" if taken else account
                self.db.execute("INSERT INTO account_keys VALUES (?, ?, ?)",
                                (platform, account, key))
            # Committed with the records it keys (a run that dies forgets both).
            row = (key,)
        self.keys[(platform, account)] = row[0]
        return str(row[0])

    def store_country(self, store: str) -> str | None:
        """The store's country (every national phone number asks: the stores' countries are
        read once, with one statement however many stores there are)."""
        if self.countries is None:
            self.countries = dict(self.db.execute("SELECT store, country_code FROM accounts"))
        return self.countries.get(store)

    def cart_version(self, store: str, cart_id: str, updated_at: str) -> str | None:
        """The cart's ``updated_at`` as last seen (None: never seen), recording the new one."""
        row = self.db.execute("SELECT updated_at FROM carts_seen WHERE store = ? AND "
                              "cart_id = ?", (store, cart_id)).fetchone()
        self.db.execute("INSERT OR REPLACE INTO carts_seen VALUES (?, ?, ?)",
                        (store, cart_id, updated_at))
        return (row[0] or "") if row else None

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

    # --- a batch at once: a few statements for any number of records ---------------------

    @property
    def statements(self) -> int:
        """Statements run so far (an ``execute`` or an ``executemany`` is one)."""
        return int(getattr(self.db, "statements", 0))

    def _lookup(self, sql: str, keys: Collection[tuple[Any, ...]]
                ) -> Iterator[tuple[Any, ...]]:
        """The rows of ``sql`` for many keys, ``LOOKUP_CHUNK`` to a statement. ``sql`` joins
        ``(VALUES {keys}) AS k`` to a table by one of its indexes (SQLite does not use an
        index for a row value ``IN`` list) and selects the key first as it was given
        (``k.column1``...): the table's INTEGER columns give back ids made of digits as
        numbers."""
        ordered = list(keys)
        if not ordered:
            return
        row = "(" + ", ".join("?" * len(ordered[0])) + ")"
        for start in range(0, len(ordered), LOOKUP_CHUNK):
            part = ordered[start:start + LOOKUP_CHUNK]
            yield from self.db.execute(sql.replace("{keys}", ", ".join([row] * len(part))),
                                       [value for key in part for value in key])

    def _write(self, sql: str, rows: Collection[tuple[Any, ...]]) -> None:
        if rows:
            self.db.executemany(sql, rows)

    def customer_emails(self, keys: Collection[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """(store, customer id) -> email, of the customers the ledger knows among ``keys``."""
        return {(store, cid): email for store, cid, email in self._lookup(
            "SELECT k.column1, k.column2, c.email FROM (VALUES {keys}) AS k JOIN customers c "
            "ON c.store = k.column1 AND c.id = k.column2", keys)}

    def put_customers(self, rows: Collection[tuple[str, str, str]]) -> None:
        """(store, customer id, email) rows."""
        self._write("INSERT OR REPLACE INTO customers VALUES (?, ?, ?)", rows)

    def customer_versions(self, keys: Collection[tuple[str, str]]
                          ) -> dict[tuple[str, str], str]:
        """(store, customer id) -> the ``updated_at`` last seen, of those seen before."""
        return {(store, cid): at for store, cid, at in self._lookup(
            "SELECT k.column1, k.column2, v.updated_at FROM (VALUES {keys}) AS k JOIN "
            "customers_seen v ON v.store = k.column1 AND v.id = k.column2", keys)}

    def put_customer_versions(self, rows: Collection[tuple[str, str, str]]) -> None:
        self._write("INSERT OR REPLACE INTO customers_seen VALUES (?, ?, ?)", rows)

    def put_consents(self, rows: Collection[tuple[str, bool | None]]) -> None:
        """Whether each customer accepts abandoned-cart emails (None: the store did not
        say)."""
        self._write("INSERT OR REPLACE INTO consents VALUES (?, ?)",
                    [(email, None if value is None else int(value)) for email, value in rows])

    def rehome_orders_of(self, customers: dict[tuple[str, str], str]) -> set[str]:
        """Orders seen before their customer (counted for the billing email then) count for
        the customer's email now; returns the emails they counted for before."""
        moved = list(self._lookup(
            "SELECT DISTINCT k.column1, k.column2, k.column3, o.email FROM (VALUES {keys}) "
            "AS k JOIN orders o ON o.store = k.column1 AND o.customer_id = k.column2 "
            "WHERE o.email IS NOT k.column3",
            [(store, cid, email) for (store, cid), email in customers.items()]))
        self._write("UPDATE orders SET email = ? WHERE store = ? AND customer_id = ?",
                    sorted({(email, store, cid) for store, cid, email, _ in moved}))
        return {before for *_, before in moved if before}

    def order_rows(self, keys: Collection[tuple[str, str]]
                   ) -> dict[tuple[str, str], tuple[str | None, Any]]:
        """(store, order id) -> (email it counts for, customer id), of the orders known."""
        return {(store, oid): (email, customer) for store, oid, email, customer in
                self._lookup("SELECT k.column1, k.column2, o.email, o.customer_id FROM "
                             "(VALUES {keys}) AS k JOIN orders o ON o.store = k.column1 AND "
                             "o.id = k.column2", keys)}

    def put_orders(self, rows: Collection[tuple[str, str, str | None, int, float, Any]]
                   ) -> None:
        """(store, id, email, counted, spent, customer id) rows (see the counting rule)."""
        self._write("INSERT OR REPLACE INTO orders (store, id, email, counted, spent, "
                    "customer_id) VALUES (?, ?, ?, ?, ?, ?)", rows)

    def order_versions(self, keys: Collection[tuple[str, str]]
                       ) -> dict[tuple[str, str], tuple[str, str]]:
        """(store, order id) -> (updated_at, status) as last seen, of those seen before."""
        return {(store, oid): (at, status) for store, oid, at, status in self._lookup(
            "SELECT k.column1, k.column2, v.updated_at, v.status FROM (VALUES {keys}) AS k "
            "JOIN orders_seen v ON v.store = k.column1 AND v.id = k.column2", keys)}

    def put_order_versions(self, rows: Collection[tuple[str, str, str, str]]) -> None:
        self._write("INSERT OR REPLACE INTO orders_seen VALUES (?, ?, ?, ?)", rows)

    def stocks(self, keys: Collection[tuple[str, str]]
               ) -> dict[tuple[str, str], float | None]:
        """(store, variant id) -> stock level, of the variants known."""
        return {(store, vid): level for store, vid, level in self._lookup(
            "SELECT k.column1, k.column2, i.stock FROM (VALUES {keys}) AS k JOIN "
            "catalog_items i ON i.store = k.column1 AND i.variant_id = k.column2", keys)}

    def set_stocks(self, rows: Collection[tuple[str, str, float]]) -> None:
        self._write("INSERT INTO catalog_items VALUES (?, ?, NULL, ?, NULL) ON CONFLICT "
                    "(store, variant_id) DO UPDATE SET stock = excluded.stock", rows)

    def customers_among(self, emails: Collection[str]) -> set[str]:
        """Those of ``emails`` that belong to a customer (guests never become contacts)."""
        return {email for email, in self._lookup(
            "SELECT DISTINCT k.column1 FROM (VALUES {keys}) AS k JOIN customers c "
            "ON c.email = k.column1", [(email,) for email in emails])}

    def totals_of(self, emails: Collection[str]) -> dict[str, tuple[int, float]]:
        """email -> (orders, spent) over every store, of the contacts with orders.

        In a shared ledger each contact is locked first (a transaction advisory lock, in
        email order) until this writer's commit: two writers that each wrote an order of
        the same contact, uncommitted, would otherwise each count only their own and send
        Brevo a total short of the other's. The second now waits, and counts both."""
        if self.pg and emails:
            self.db.execute("SELECT pg_advisory_xact_lock(?::int4 + 1, hashtext(e)) FROM "
                            "(SELECT DISTINCT e FROM unnest(?::text[]) AS e ORDER BY e) AS m",
                            (self._lock_space, sorted(set(emails))))
        return {email: (int(orders or 0), round(float(spent or 0), 2))
                for email, orders, spent in self._lookup(
                    "SELECT k.column1, SUM(o.counted), SUM(o.spent) FROM (VALUES {keys}) AS k "
                    "JOIN orders o ON o.email = k.column1 GROUP BY k.column1",
                    [(email,) for email in set(emails)])}

    def sent_of(self, emails: Collection[str]
                ) -> dict[str, tuple[int, float, str | None]]:
        """email -> (orders, spent, fingerprint) last sent, of the contacts sent before."""
        return {email: (int(orders or 0), round(float(spent or 0), 2), fingerprint)
                for email, orders, spent, fingerprint in self._lookup(
                    "SELECT k.column1, s.orders, s.spent, s.fingerprint FROM (VALUES {keys}) "
                    "AS k JOIN sent_totals s ON s.email = k.column1",
                    [(email,) for email in emails])}

    def mark_sent_many(self, rows: Collection[tuple[str, int, float, str | None]]) -> None:
        """(email, orders, spent, fingerprint) of contacts Brevo took; a None fingerprint
        (only the totals went) keeps the one before."""
        self._write("INSERT INTO sent_totals VALUES (?, ?, ?, ?) ON CONFLICT (email) DO "
                    "UPDATE SET orders = excluded.orders, spent = excluded.spent, "
                    "fingerprint = COALESCE(excluded.fingerprint, sent_totals.fingerprint)", rows)

    def forget_fingerprints(self, emails: Collection[str]) -> None:
        """These contacts go again in full with their next record (they left the lists)."""
        self._write("UPDATE sent_totals SET fingerprint = NULL WHERE email = ?",
                    [(email,) for email in emails])

    def sms_owners(self, numbers: Collection[str]) -> dict[str, str]:
        """SMS number -> the contact holding it, of those held."""
        return {sms: email for sms, email in self._lookup(
            "SELECT k.column1, s.email FROM (VALUES {keys}) AS k JOIN sms_owners s "
            "ON s.sms = k.column1", [(sms,) for sms in numbers])}

    def claim_sms_many(self, rows: Iterable[tuple[str, str]]) -> None:
        """(SMS number, email): each number given to its contact."""
        self._write("INSERT OR REPLACE INTO sms_owners VALUES (?, ?)", list(rows))


# --- dead letters: beside the ledger -------------------------------------------------------

DEAD_LETTER_FILE = "dead-letter.jsonl"


class DeadLetterTable:
    """Dead letters as rows of a PostgreSQL ledger's ``dead_letters`` table, written like the
    file (one JSON line each). In the ledger's transaction: committed with the batch whose
    records they are, so a run that dies and reads those records again keeps each once."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def write(self, line: bytes) -> int:
        try:
            letter = orjson.loads(line)
        except orjson.JSONDecodeError:  # a damaged line of a file being migrated: kept as is
            letter = {}
        if not isinstance(letter, dict):
            letter = {}
        self.ledger.db.execute("INSERT INTO dead_letters (stream, reason, at, letter) "
                               "VALUES (?, ?, ?, ?)",
                               (str(letter.get("stream", "?")), str(letter.get("reason", "")),
                                letter.get("at"), line.decode().strip()))
        return len(line)

    def flush(self) -> None:
        """Nothing to do: written with the ledger's next commit."""

    def close(self) -> None:
        """Nothing to do: the ledger's connection is the ledger's to close."""


def dead_letter_sink(config: dict[str, Any], ledger: Ledger) -> BinaryIO | DeadLetterTable:
    """Where a destination writes its dead letters: the ledger's table in PostgreSQL, the
    file ``dead-letter.jsonl`` in ``state_dir`` (0600) beside a SQLite ledger."""
    if ledger.pg:
        return DeadLetterTable(ledger)
    state_dir = Path(config.get("state_dir") or ".tajo")
    return private_file(state_dir / DEAD_LETTER_FILE, "dead-letter file").open("ab")


def dead_letter_counts(config: dict[str, Any]) -> dict[str, int]:
    """Dead letters by stream, wherever the config keeps them (``runner status``)."""
    location = ledger_location(config)
    counts: dict[str, int] = {}
    if is_postgres(location):
        ledger = Ledger(location)
        try:
            for stream, count in ledger.db.execute("SELECT stream, COUNT(*) FROM dead_letters "
                                                   "GROUP BY stream ORDER BY stream"):
                counts[str(stream)] = int(count)
        finally:
            ledger.close()
        return counts
    path = Path(config.get("state_dir") or ".tajo") / DEAD_LETTER_FILE
    if path.exists():
        with path.open("rb") as lines:
            for line in lines:
                try:
                    stream = orjson.loads(line).get("stream", "?")
                except orjson.JSONDecodeError:
                    stream = "?"
                counts[stream] = counts.get(stream, 0) + 1
    return counts
