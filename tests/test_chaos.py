"""Nothing lost, nothing doubled: syncs under injected faults, syncs killed at random points,
and a store that changes while it is read all end with Brevo holding exactly what a clean
sync gives. Small sizes here; ``tests/bench/chaos.py`` runs the same checks bigger.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from chaos_kit import (
    Account,
    Store,
    crash_scenario,
    faults_scenario,
    mutation_scenario,
    pipeline_crash_scenario,
)

from framework.devkit.faults import FAULT_KINDS

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


def test_faults_end_where_a_clean_sync_does(store: Store, accounts: Any,
                                            tmp_path: Path) -> None:
    report = faults_scenario(store, accounts(), accounts(), tmp_path)
    print(report)
    assert report["full"] == {} and report["incremental"] == {}  # nothing missing or extra
    assert report["doubled"] == []
    assert report["events"] > 0, "the changes should have produced lifecycle events"
    injected = report["injected"]
    assert all(set(side) == set(FAULT_KINDS) for side in injected.values()), injected
    assert sum(n for side in injected.values() for n in side.values()) >= 4 * len(FAULT_KINDS)


def test_a_sync_killed_anywhere_ends_where_a_clean_sync_does(store: Store, accounts: Any,
                                                              tmp_path: Path) -> None:
    report = crash_scenario(store, accounts(), accounts(), tmp_path)
    print(report)
    assert report["killed_with_events_in_flight"] == [True, True], \
        "no batch of events met its fault: were the events of a killed run lost?"
    assert report["full"] == {} and report["incremental"] == {}
    assert report["doubled"] == []
    assert report["kills_landed"] >= 5


def test_a_pipeline_killed_on_either_side_ends_where_a_clean_one_does(
        store: Store, accounts: Any, tmp_path: Path) -> None:
    report = pipeline_crash_scenario(store, accounts(), accounts(), tmp_path)
    print(report)
    assert report["full"] == {} and report["incremental"] == {}
    assert report["doubled"] == []
    assert report["kills_landed"] >= 4


def test_a_store_that_changes_during_the_sync_ends_in_brevo_as_it_is(accounts: Any,
                                                                      tmp_path: Path) -> None:
    store = Store.start(customers=1200, orders=1200, products=20, seed=6)
    try:
        report = mutation_scenario(store, accounts(), tmp_path)
    finally:
        store.stop()
    print({k: v if isinstance(v, int) else len(v) for k, v in report.items()})
    print("\n".join(report["sync_errors"]))
    assert report["during_first_sync"] >= 200
    assert report["stale_customers"] == [] and report["stale_orders"] == []
