"""Past one machine: state in PostgreSQL (``storage:``), receivers as replicas over one
spool, workers sharing stores. Each test starts a throwaway PostgreSQL server and the
sandboxes as subprocesses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import BrevoBox, run_cli
from test_sync import seed_config

from framework.protocol.statestore import StateStore
from framework.storage import located

pytestmark = pytest.mark.e2e


def test_runner_sync_keeps_its_state_in_postgresql(make_sandbox, brevo: BrevoBox,
                                                   postgres_url: str, tmp_path: Path) -> None:
    store = make_sandbox("--customers", "40", "--orders", "30", "--seed", "3")
    config, env = seed_config(tmp_path, store, brevo, extra="storage: ${PG_URL}\n")
    env["PG_URL"] = postgres_url
    first = run_cli("runner", "sync", "--config", str(config), env=env)
    assert first.returncode == 0, first.stderr.decode()
    state_dir = tmp_path / "state"
    assert not list(state_dir.glob("*.state.db")) and not list(state_dir.glob("*.spool.db"))
    states = StateStore(located(postgres_url, f"bigcommerce.state.{store.store_hash}"))
    try:
        assert "commerce_customers" in states.load()
        assert [r["status"] for r in states.runs()] == ["succeeded"]
    finally:
        states.close()
    assert len(brevo.state()["contacts"]) == 40
    # The second run resumes from the states in PostgreSQL: only what changed is read.
    store.admin("POST", "mutate", {"resource": "customers", "update": 2, "seed": 2})
    second = run_cli("runner", "sync", "--config", str(config), env=env)
    assert second.returncode == 0, second.stderr.decode()
    status = run_cli("runner", "status", "--config", str(config), "--json", env=env)
    report = json.loads(status.stdout)["connectors"]["bigcommerce"]
    assert report["last_run"]["status"] == "succeeded" and report["last_run"]["records"] < 40
    assert report["spool"] == {"events": 0, "unread": 0, "dead_letters": 0}
