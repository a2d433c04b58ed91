"""``runner worker``: processes that share the stores of a folder of sync configs.

The stores are a **directory of sync configs**, one file per store (``acme.yaml``, each in
``tajo.yaml``'s layout, each with ``storage: postgresql://...``). The folder is read again
before every claim, so a store is added by adding its file and removed by removing it, with
no restart (on Kubernetes: a key of the ConfigMap mounted there).

Each store (one enabled source of a config) is claimed with a **lease** in PostgreSQL, in the
``workers`` namespace of the config's storage: a row per store in ``leases``, taken with
``SELECT ... FOR UPDATE SKIP LOCKED`` (workers claiming at once skip each other's rows and
never wait), held for ``lease_s`` seconds and renewed every third of that while the sync
runs. A worker that dies stops renewing: its lease lapses and another worker takes the
store, which resumes from the states the dead one had committed (they are in PostgreSQL too).
Times are the database's clock, so workers' clocks do not matter.

A store is due when it was last synced more than ``every_s`` ago (or never); the least
recently synced due store is claimed first. ``lease_history`` keeps one row per claim:
who, when it was taken, and when its sync ended (``runner status`` of a store, audits, and
the tests' check that no store was synced by two workers at once).

What a lease does not fence: a worker stalled past its lease (a paused process) may still
write after another has taken over. The lease is renewed far more often than it lapses, a
renewal that finds the lease gone stops the sync at its next record (``LeaseLost``), and the
destination's writes are idempotent (contacts and orders by their ids), so such an overlap
sends some records twice and loses none.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app import sync
from framework.errors import ConfigError, ConnectorError
from framework.storage import Database, is_postgres, located, split

log = logging.getLogger("tajo.worker")

CONFIG_SUFFIXES = (".yaml", ".yml", ".json")
NOW = "extract(epoch from clock_timestamp())"

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


@dataclass
class Store:
    """One store of the folder: its lease key, its config file and its job."""

    key: str
    path: Path
    job: sync.Job
    storage: str


def lease_key(job: sync.Job) -> str:
    """A store's lease key: its state namespace (source and store keys), so that two files
    naming the same store share one lease."""
    return split(str(job.state_path))[1]


class Folder:
    """The folder of store configs, read again before each claim; a file is loaded again
    only when it changed (its size or modification time), and one that does not load is
    logged once per change and left out: the other stores go on."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.loaded: dict[Path, tuple[tuple[int, int], list[Store]]] = {}

    def stores(self) -> dict[str, Store]:
        found: dict[str, Store] = {}
        present = set()
        for path in sorted(self.path.iterdir()):
            if path.suffix not in CONFIG_SUFFIXES or path.name.startswith("."):
                continue
            present.add(path)
            for store in self._load(path):
                found.setdefault(store.key, store)
        for gone in set(self.loaded) - present:
            del self.loaded[gone]
        return found

    def _load(self, path: Path) -> list[Store]:
        stat = path.stat()
        version = (stat.st_mtime_ns, stat.st_size)
        cached = self.loaded.get(path)
        if cached is not None and cached[0] == version:
            return cached[1]
        try:
            jobs = sync.load(path)
            storage = _storage_of(path, jobs)
            stores = [Store(lease_key(job), path, job, storage) for job in jobs]
        except ConnectorError as exc:
            log.error("%s is left out: %s", path, exc.message)
            stores = []
        self.loaded[path] = (version, stores)
        return stores


def _storage_of(path: Path, jobs: list[sync.Job]) -> str:
    location = str(jobs[0].state_path)
    if not is_postgres(location):
        raise ConfigError(f"{path} has no storage: workers share stores through PostgreSQL; "
                          "add storage: postgresql://USER:${PASSWORD}@HOST/DB to it")
    return split(location)[0]


class Leases:
    """The leases of one PostgreSQL database (its ``workers`` namespace)."""

    def __init__(self, url: str, holder: str, lease_s: float) -> None:
        self.db = Database(located(url, "workers"), "lease table", SCHEMA)
        self.holder, self.lease_s = holder, lease_s

    def claim(self, keys: list[str], every_s: float) -> str | None:
        """Take the least recently synced due store among ``keys`` that nobody holds."""
        if not keys:
            return None
        with self.db.transaction():
            for key in keys:
                self.db.execute("INSERT INTO {schema}.leases (store) VALUES (?) "
                                "ON CONFLICT DO NOTHING", (key,))
            row = self.db.execute(
                f"SELECT store FROM {{schema}}.leases WHERE store = ANY(?) AND expires_at < {NOW}"
                f" AND (synced_at IS NULL OR synced_at < {NOW} - ?) ORDER BY synced_at NULLS "
                "FIRST, store LIMIT 1 FOR UPDATE SKIP LOCKED", (keys, every_s)).fetchone()
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
    return f"{socket.gethostname()}-{os.getpid()}"


def work(folder: Path, *, name: str, every_s: float, lease_s: float, poll_s: float,
         stop: Callable[[], bool], once: bool = False) -> int:
    """Claim and sync stores until ``stop()``; returns how many syncs succeeded. ``once``:
    return when no store is due (a backfill Job)."""
    if not folder.is_dir():
        raise ConfigError(f"{folder} is not a folder: give --config the folder of the stores' "
                          "sync configs (one file per store)")
    stores_folder = Folder(folder)
    leases: dict[str, Leases] = {}
    synced = 0
    while not stop():
        stores = stores_folder.stores()
        store = _claim(stores, leases, name, every_s, lease_s)
        if store is None:
            if once:
                return synced
            time.sleep(poll_s)
            continue
        synced += _sync(store, leases[store.storage])
    return synced


def _claim(stores: dict[str, Store], leases: dict[str, Leases], name: str, every_s: float,
           lease_s: float) -> Store | None:
    by_storage: dict[str, list[str]] = {}
    for store in stores.values():
        by_storage.setdefault(store.storage, []).append(store.key)
    for url, keys in by_storage.items():
        if url not in leases:
            leases[url] = Leases(url, name, lease_s)
        key = leases[url].claim(keys, every_s)
        if key is not None:
            return stores[key]
    return None


def _sync(store: Store, leases: Leases) -> int:
    """Sync one claimed store; 1 when it succeeded."""
    log.info("syncing %s (%s)", store.key, store.path.name)
    renewal = Renewal(leases, store.key)

    def watch(message: dict[str, Any]) -> None:
        if renewal.lost:
            raise LeaseLost(f"the lease of {store.key} was lost; another worker syncs it now")

    status = "failed"
    try:
        records = sync.run([store.job], observe=watch)
        status = "succeeded"
        log.info("synced %s: %d records", store.key, records)
    except ConnectorError as exc:
        log.error("sync of %s failed: %s", store.key, exc.message)
    except Exception as exc:  # one store's failure must not stop the worker's others
        log.exception("sync of %s failed: %s", store.key, exc)
    finally:
        renewal.stop()
        if not renewal.lost:
            leases.release(store.key, status)
    return 1 if status == "succeeded" else 0
