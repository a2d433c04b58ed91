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
who, when it was taken, last renewed and ended (for audits, and the tests' check that no
store was synced by two workers at once). The forwarder of ``runner webhooks serve
--forward`` takes the same leases (:mod:`app.leases`).

What a lease does not fence: a worker stalled past its lease (a paused process) may still
write after another has taken over. The lease is renewed far more often than it lapses, a
renewal that finds the lease gone stops the sync at its next record (``LeaseLost``), and the
destination's writes are idempotent (contacts and orders by their ids), so such an overlap
sends some records twice and loses none.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app import sync
from app.leases import LeaseLost, Leases, Renewal
from framework.errors import ConfigError, ConnectorError
from framework.storage import is_postgres, split

log = logging.getLogger("tajo.worker")

CONFIG_SUFFIXES = (".yaml", ".yml", ".json")


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
        # A fresh job for each sync: nothing one run leaves in its configs reaches the next.
        job = next((j for j in sync.load(store.path) if lease_key(j) == store.key), None)
        if job is None:
            raise ConfigError(f"{store.path} no longer configures {store.key}")
        records = sync.run([job], observe=watch)
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
