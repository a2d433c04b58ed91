"""Nothing lost, nothing doubled: syncs under injected faults, syncs killed at random points,
and a store that changes while it is read all end with Brevo holding exactly what a clean
sync gives. Small sizes here; ``tests/bench/chaos.py`` runs the same checks bigger.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from chaos_kit import (
    LISTS,
    PROFILE,
    RUNNER,
    Account,
    Store,
    comparable,
    differences,
    doubled_events,
    kill_at,
    kill_one_side,
    kill_when,
    pipeline,
    run_until_done,
    sync_config,
    sync_until_done,
)

from framework.faults import FAULT_KINDS

pytestmark = pytest.mark.e2e


@pytest.fixture
def store() -> Any:
    box = Store.start(customers=150, orders=240, products=30)
    yield box
    box.stop()


@pytest.fixture
def accounts() -> Any:
    started: list[Account] = []

    def start() -> Account:
        started.append(Account.start())
        return started[-1]

    yield start
    for account in started:
        account.stop()


def change(store: Store) -> None:
    """What happens between two syncs: edits, sign-ups, new orders, deletions."""
    store.mutate("customers", update=25, create=6, delete=2)
    store.mutate("orders", update=30, create=8)
    store.mutate("products", update=5, delete=1)


def test_faults_end_where_a_clean_sync_does(store: Store, accounts: Any,
                                            tmp_path: Path) -> None:
    clean, faulty = accounts(), accounts()
    clean_config = sync_config(store, clean, tmp_path / "clean")
    faulty_config = sync_config(store, faulty, tmp_path / "faulty")

    def faults(on: bool) -> None:
        store.faults(PROFILE if on else {})
        faulty.faults(PROFILE if on else {})
        if on:  # and one of each kind for sure on both sides, beyond the random ones
            for n, kind in enumerate(FAULT_KINDS):
                store.admin("fault-profile", {"kind": kind, "path": ("/v3/customers",
                                                                      "/v2/orders")[n % 2]})
                faulty.admin("fault-profile", {"kind": kind, "path": (
                    "/v3/contacts", "/v3/orders/status/batch", "/v3/products/batch")[n % 3]})

    sync_until_done(clean_config)
    faults(True)
    outcome = sync_until_done(faulty_config)
    faults(False)
    assert differences(comparable(clean.state()), comparable(faulty.state())) == {}

    change(store)
    sync_until_done(clean_config)
    # The answers to the first event batches never come: Brevo did take them.
    faulty.admin("fault-profile", {"kind": "reset", "path": "/v3/events/batch"})
    faulty.admin("fault-profile", {"kind": "slow", "path": "/v3/events/batch"})
    faults(True)
    sync_until_done(faulty_config, outcome)
    faults(False)
    clean_state, faulty_state = clean.state(), faulty.state()
    assert clean_state["events"], "the changes should have produced lifecycle events"
    assert differences(comparable(clean_state), comparable(faulty_state)) == {}
    assert doubled_events(faulty_state) == []
    injected = [store.admin("fault-profile")["injected"],
                faulty.admin("fault-profile")["injected"]]
    total = sum(n for side in injected for n in side.values())
    print(f"faults injected: {injected}; runs: {outcome.runs} (exit codes {outcome.codes})")
    assert total >= 2 * 2 * len(FAULT_KINDS), injected
    assert all(set(side) == set(FAULT_KINDS) for side in injected), injected


def test_a_sync_killed_anywhere_ends_where_a_clean_sync_does(store: Store, accounts: Any,
                                                              tmp_path: Path) -> None:
    clean, crashed = accounts(), accounts()
    clean_config = sync_config(store, clean, tmp_path / "clean")
    crash_config = sync_config(store, crashed, tmp_path / "crashed")
    command = [RUNNER, "sync", "--config", str(crash_config)]
    rng = random.Random(8)
    kills = 0
    sync_until_done(clean_config)
    for _ in range(4):
        kills += kill_at(command, rng.uniform(0.4, 2.5))
    sync_until_done(crash_config)
    assert differences(comparable(clean.state()), comparable(crashed.state())) == {}

    change(store)
    sync_until_done(clean_config)
    # Killed while Brevo holds a batch of events it has not yet seen (they may be lost),
    # then while Brevo has taken one but not yet answered (they may be doubled).
    for kind in ("stall", "slow"):
        crashed.admin("fault-profile", {"kind": kind, "path": "/v3/events/batch"})
        assert kill_when(command, lambda kind=kind: bool(
            crashed.admin("fault-profile")["injected"].get(kind))), \
            f"no batch of events met the {kind} fault: were the events of the killed run lost?"
        kills += 1
    for _ in range(3):
        kills += kill_at(command, rng.uniform(0.4, 2.0))
    sync_until_done(crash_config)
    clean_state, crashed_state = clean.state(), crashed.state()
    assert differences(comparable(clean_state), comparable(crashed_state)) == {}
    assert doubled_events(crashed_state) == []
    print(f"killed {kills} of 9 runs")
    assert kills >= 5


def test_a_pipeline_killed_on_either_side_ends_where_a_clean_one_does(
        store: Store, accounts: Any, tmp_path: Path, write_json: Any) -> None:
    source = write_json({"api_url": store.ready["url"], "store_hash": store.ready["store_hash"],
                         "access_token": store.ready["access_token"], "request_timeout": 5})

    def destination(account: Account, name: str) -> Path:
        return write_json({"api_url": account.ready["url"], "api_key": account.ready["api_key"],
                           "lists": LISTS, "state_dir": str(tmp_path / name)})

    clean, crashed = accounts(), accounts()
    clean_args = (destination(clean, "clean"), tmp_path / "clean.jsonl")
    crash_args = (destination(crashed, "crashed"), tmp_path / "crashed.jsonl")
    rng = random.Random(9)
    kills = 0
    for phase in range(2):
        run_until_done(pipeline(source, *clean_args))
        for n in range(4):
            kills += kill_one_side(pipeline(source, *crash_args), rng.uniform(0.5, 2.0),
                                   ("read", "write")[n % 2])
        run_until_done(pipeline(source, *crash_args))
        clean_state, crashed_state = clean.state(), crashed.state()
        assert differences(comparable(clean_state), comparable(crashed_state)) == {}, phase
        assert doubled_events(crashed_state) == []
        if phase == 0:
            change(store)
    print(f"killed {kills} of 8 pipelines")
    assert kills >= 4


def test_a_store_that_changes_during_the_sync_ends_in_brevo_as_it_is(accounts: Any,
                                                                      tmp_path: Path) -> None:
    store = Store.start(customers=2500, orders=2500, products=20, seed=6)
    account = accounts()
    mapping = {"email": "email", "first_name": "FIRSTNAME", "notes": "NOTES"}
    config = sync_config(store, account, tmp_path / "live", mapping)
    stop = threading.Event()
    changes = 0

    def merchant() -> None:  # edits customers and orders all through the sync
        nonlocal changes
        seed = 100
        while not stop.is_set():
            seed += 1
            store.admin("mutate", {"resource": "customers", "update": 20, "seed": seed})
            store.admin("mutate", {"resource": "orders", "update": 20, "seed": seed})
            changes += 40
            time.sleep(0.02)

    thread = threading.Thread(target=merchant)
    thread.start()
    try:
        sync_until_done(config)
        sync_until_done(config)  # an incremental run, the store still changing
    finally:
        stop.set()
        thread.join()
        try:
            sync_until_done(config)  # the store has settled: one more incremental run
            customers = store.everything("/v3/customers", ("email", "notes"))
            orders = store.everything("/v2/orders", ("status",))
        finally:
            store.stop()
    state = account.state()
    notes = {c["email"]: c["attributes"].get("NOTES") or "" for c in state["contacts"]}
    stale = [i for i, (email, note) in customers.items() if notes.get(email.lower()) != note]
    statuses = {o["id"]: o["status"] for o in state["orders"]}
    hash_ = store.ready["store_hash"]
    late = [i for i, (status,) in orders.items() if statuses.get(f"{hash_}-{i}") != status]
    print(f"{changes} changes during two syncs")
    assert changes >= 400
    assert stale == [] and late == [], (len(stale), len(late))
