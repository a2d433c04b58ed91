"""Past one machine: state in PostgreSQL (``storage:``), receivers as replicas over one
spool, workers sharing stores. Each test starts a throwaway PostgreSQL server and the
sandboxes as subprocesses."""

from __future__ import annotations

import http.client
import json
import os
import signal
import threading
from pathlib import Path

import orjson
import pytest
from conftest import BrevoBox, run_cli
from test_sync import seed_config
from webhook_kit import HEADER, SECRET, Poster, Receiver, payload, spool_key, start_receiver

from framework.protocol.statestore import StateStore
from framework.storage import located
from framework.webhooks.spool import Spool

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


# --- receivers as replicas -----------------------------------------------------------------

def test_two_receivers_on_one_spool_lose_nothing_when_one_is_killed(
        make_sandbox, postgres_url: str, tmp_path: Path) -> None:
    """5,000 webhooks at concurrency 50, split between two receivers on one PostgreSQL
    spool; one is SIGKILLed mid-burst and what it had not acknowledged is retried on the
    other (as a load balancer or the platform's retry would): every acknowledged event is
    stored, and stored once."""
    store = make_sandbox("--customers", "5", "--orders", "5", "--products", "5")
    config = tmp_path / "source.json"
    config.write_text(json.dumps({"store_hash": store.store_hash,
                                  "access_token": store.access_token, "api_url": store.url,
                                  "webhook_secret": SECRET,
                                  "spool_path": located(postgres_url, "bigcommerce")}))
    first, second = start_receiver(config), start_receiver(config)
    bodies = [orjson.dumps(payload(store.store_hash, "store/customer/updated",
                                   {"type": "customer", "id": n})) for n in range(1, 5001)]
    acked: list[bytes] = []
    lock = threading.Lock()
    kill_now = threading.Event()
    retried = [0]

    def send(share: list[bytes], target: Receiver) -> None:
        poster = Poster(target.endpoint)
        for body in share:
            while True:
                try:
                    status, _ = poster.post(body, {HEADER: SECRET})
                except (OSError, http.client.HTTPException):  # the receiver died
                    status = 0
                if status == 200:
                    break
                with lock:
                    retried[0] += 1
                poster.close()
                poster = Poster(second.endpoint)  # the surviving replica
            with lock:
                acked.append(body)
                if len(acked) >= 1500:
                    kill_now.set()
        poster.close()

    threads = [threading.Thread(target=send, args=(bodies[n::50], first if n % 2 else second))
               for n in range(50)]
    for thread in threads:
        thread.start()
    kill_now.wait(timeout=120)
    os.kill(first.process.pid, signal.SIGKILL)
    for thread in threads:
        thread.join(timeout=180)
    first.process.wait(timeout=10)
    second.stop()
    spool = Spool(located(postgres_url, "bigcommerce"))
    try:
        keys = spool.keys()
        stored = spool.count()
    finally:
        spool.close()
    assert len(acked) == 5000 and retried[0] > 0  # the kill did land mid-burst
    assert {spool_key(orjson.loads(body)) for body in acked} == keys
    assert stored == len(keys) == 5000  # once each
