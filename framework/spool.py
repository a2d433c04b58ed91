"""The webhook spool: a durable change feed in SQLite (WAL mode).

Webhook receivers append events; streams read the resource ids recorded since their offset (the
``carts`` stream learns cart ids only this way: BigCommerce has no list of carts). An event's
``hash`` is unique, so a re-delivered webhook is stored once.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    offset INTEGER PRIMARY KEY AUTOINCREMENT,
    account TEXT NOT NULL,
    scope TEXT NOT NULL,
    resource TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    hash TEXT UNIQUE,
    payload TEXT NOT NULL,
    received_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_resource ON events (account, resource, offset);
"""


class Spool:
    """One spool file."""

    def __init__(self, path: str | Path) -> None:
        self.db = sqlite3.connect(str(path), timeout=30, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)

    def append(self, account: str, scope: str, resource: str, resource_id: str,
               payload: dict[str, Any], event_hash: str | None = None) -> int | None:
        """Store an event durably; returns its offset, or None when its hash is already in."""
        cursor = self.db.execute(
            "INSERT OR IGNORE INTO events (account, scope, resource, resource_id, hash, payload,"
            " received_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (account, scope, resource, str(resource_id), event_hash,
             orjson.dumps(payload).decode(), time.time()))
        return cursor.lastrowid if cursor.rowcount else None

    def ids(self, account: str, resource: str, after: int = 0
            ) -> Iterator[tuple[int, str, str]]:
        """Distinct resource ids with events after ``after``: (latest offset, id, the scope
        of that latest event)."""
        rows = self.db.execute(
            "SELECT e.offset, e.resource_id, e.scope FROM events e JOIN (SELECT MAX(offset) AS "
            "last FROM events WHERE account = ? AND resource = ? AND offset > ? GROUP BY "
            "resource_id) m ON e.offset = m.last ORDER BY e.offset",
            (account, resource, after))
        yield from rows

    def close(self) -> None:
        self.db.close()
