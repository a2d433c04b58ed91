"""Leases on stores in PostgreSQL: which process syncs a store now (see :mod:`app.worker`).

Shared by ``runner worker`` (scheduled syncs) and the forwarder of ``runner webhooks serve
--forward`` (the live path), so a store is synced by one of them at a time.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import Any

from framework.errors import ConnectorError
from framework.storage import Database, located

log = logging.getLogger("tajo.worker")

NOW = "extract(epoch from clock_timestamp())"
#: How long ended claims are kept in lease_history.
HISTORY_S = 30 * 86400

SCHEMA = {"postgresql": """
CREATE TABLE IF NOT EXISTS {schema}.leases (
    store TEXT PRIMARY KEY,
    holder TEXT,
    expires_at DOUBLE PRECISION NOT NULL DEFAULT 0,
    synced_at DOUBLE PRECISION
);
CREATE TABLE IF NOT EXISTS {schema}.lease_history (
    id BIGSERIAL PRIMARY KEY,
    store TEXT NOT NULL,
    holder TEXT NOT NULL,
    taken_at DOUBLE PRECISION NOT NULL,
    renewed_at DOUBLE PRECISION NOT NULL,
    ended_at DOUBLE PRECISION,
    status TEXT
);
""", "sqlite": ""}


class LeaseLost(ConnectorError):
    """Another worker holds the store now: this one must stop writing it."""

    failure_type = "transient_error"


class Leases:
    """The leases of one PostgreSQL database (its ``workers`` namespace)."""

    def __init__(self, url: str, holder: str, lease_s: float) -> None:
        self.db = Database(located(url, "workers"), "lease table", SCHEMA)
        self.holder, self.lease_s = holder, lease_s

    def claim(self, keys: list[str], every_s: float | None) -> str | None:
        """Take the least recently synced due store among ``keys`` that nobody holds
        (``every_s`` None: due or not, as the forwarder takes its store)."""
        if not keys:
            return None
        with self.db.transaction():
            for key in keys:
                self.db.execute("INSERT INTO {schema}.leases (store) VALUES (?) "
                                "ON CONFLICT DO NOTHING", (key,))
            row = self.db.execute(
                f"SELECT store FROM {{schema}}.leases WHERE store = ANY(?) AND expires_at < {NOW}"
                f" AND (synced_at IS NULL OR synced_at < {NOW} - ?) ORDER BY synced_at NULLS "
                "FIRST, store LIMIT 1 FOR UPDATE SKIP LOCKED",
                (keys, -1.0 if every_s is None else every_s)).fetchone()
            if row is None:
                return None
            key = str(row[0])
            self.db.execute(f"UPDATE {{schema}}.leases SET holder = ?, expires_at = {NOW} + ? "
                            "WHERE store = ?", (self.holder, self.lease_s, key))
            self.db.execute(f"INSERT INTO {{schema}}.lease_history (store, holder, taken_at, "
                            f"renewed_at) VALUES (?, ?, {NOW}, {NOW})", (key, self.holder))
        return key

    def renew(self, key: str) -> bool:
        """Extend the lease; False when it is no longer ours (it lapsed and was taken)."""
        with self.db.transaction():
            held = self.db.execute(f"UPDATE {{schema}}.leases SET expires_at = {NOW} + ? WHERE "
                                   "store = ? AND holder = ?", (self.lease_s, key, self.holder))
            self.db.execute(f"UPDATE {{schema}}.lease_history SET renewed_at = {NOW} WHERE id = "
                            "(SELECT MAX(id) FROM {schema}.lease_history WHERE store = ? AND "
                            "holder = ?)", (key, self.holder))
        return held.rowcount == 1

    def release(self, key: str, status: str) -> None:
        """Give the store back; a successful sync dates it (it is due again ``every_s``
        later), a failed one leaves it due (another worker may try at once)."""
        synced = f", synced_at = {NOW}" if status == "succeeded" else ""
        with self.db.transaction():
            self.db.execute(f"DELETE FROM {{schema}}.lease_history WHERE ended_at < {NOW} - ?",
                            (HISTORY_S,))  # (the forwarder adds a claim per burst of events)
            self.db.execute(f"UPDATE {{schema}}.leases SET holder = NULL, expires_at = 0{synced}"
                            " WHERE store = ? AND holder = ?", (key, self.holder))
            self.db.execute(f"UPDATE {{schema}}.lease_history SET ended_at = {NOW}, status = ? "
                            "WHERE id = (SELECT MAX(id) FROM {schema}.lease_history WHERE "
                            "store = ? AND holder = ?)", (status, key, self.holder))

    def history(self) -> list[dict[str, Any]]:
        result = self.db.execute("SELECT store, holder, taken_at, renewed_at, ended_at, status "
                                 "FROM {schema}.lease_history ORDER BY id")
        return [dict(zip(result.columns, row, strict=True)) for row in result]


class Renewal:
    """Renews a lease every third of its length, in a thread, while a sync runs."""

    def __init__(self, leases: Leases, key: str) -> None:
        self.leases, self.key = leases, key
        self.lost = False
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"lease-{key}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.done.wait(self.leases.lease_s / 3):
            try:
                if not self.leases.renew(self.key):
                    log.error("lost the lease of %s (it lapsed and another worker took it): "
                              "stopping its sync", self.key)
                    self.lost = True
                    return
            except Exception as exc:  # the database is away: try again, the lease may hold
                log.warning("could not renew the lease of %s: %s", self.key, exc)

    def stop(self) -> None:
        self.done.set()
        self.thread.join(timeout=10)


def default_name() -> str:
    """A process's name in the lease table: its host and process id."""
    return f"{socket.gethostname()}-{os.getpid()}"
