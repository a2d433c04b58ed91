"""Past one machine: state in PostgreSQL (``storage:``), receivers as replicas over one
spool, workers sharing stores. Each test starts a throwaway PostgreSQL server and the
sandboxes as subprocesses."""

from __future__ import annotations

import asyncio
import http.client
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests
from conftest import RUNNER, BrevoBox, run_cli, start_sandbox
from test_sync import seed_config
from webhook_kit import HEADER, SECRET, Poster, Receiver, payload, spool_key, start_receiver

from app.leases import Leases
from connectors.brevo.ledger import Ledger
from framework.protocol.statestore import StateStore
from framework.storage import close_pools, located
from framework.webhooks.spool import Event, Spool

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
    assert not (state_dir / "brevo.db").exists()  # the ledger too is in PostgreSQL
    ledger = Ledger(located(postgres_url, "brevo"))
    try:
        assert ledger.orders_sent() == 30
    finally:
        ledger.close()
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
    assert json.loads(status.stdout)["brevo"]["orders"] == 30
    assert len(brevo.state()["events"]) == len({json.dumps(e, sort_keys=True)
                                                for e in brevo.state()["events"]})


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


# --- workers sharing stores ----------------------------------------------------------------

STORE_YAML = """\
connectors:
  bigcommerce:
    store_hash: "{store_hash}"
    access_token: "{access_token}"
    api_url: "{bc_url}"
    sync: {{carts: false}}
    lists: {{all_customers: 40, buyers: 41, abandoned_cart: 42}}
brevo:
  api_key: "{brevo_key}"
  api_url: "{brevo_url}"
state_dir: "{state_dir}"
storage: "{storage}"
"""


def store_folder(folder: Path, stores: list[dict[str, str]], bc_url: str, brevo: BrevoBox,
                 storage: str, state_root: Path) -> None:
    """One sync config per store, a state_dir each; with storage set, every store's
    ledger is the one Brevo ledger in PostgreSQL that all the workers share."""
    folder.mkdir()
    for store in stores:
        (folder / f"{store['store_hash']}.yaml").write_text(STORE_YAML.format(
            bc_url=bc_url, brevo_key=brevo.key, brevo_url=brevo.url, storage=storage,
            state_dir=state_root / store["store_hash"], **store))


def start_worker(folder: Path, name: str, *extra: str) -> subprocess.Popen[bytes]:
    log = (folder.parent / f"{name}.log").open("wb")
    return subprocess.Popen([RUNNER, "worker", "--config", str(folder), "--name", name,
                             "--lease", "2", "--poll", "0.2", *extra],
                            stdout=log, stderr=log)


def expected_in_brevo(bc_url: str, stores: list[dict[str, str]]) -> tuple[set[str], int]:
    """The emails of every store's customers, and how many orders they hold, as the
    BigCommerce API lists them."""
    emails: set[str] = set()
    orders = 0
    for store in stores:
        headers = {"X-Auth-Token": store["access_token"], "Accept": "application/json"}
        base = f"{bc_url}/stores/{store['store_hash']}"
        customers = requests.get(f"{base}/v3/customers", params={"limit": 250},
                                 headers=headers, timeout=30).json()["data"]
        emails |= {c["email"].lower() for c in customers}
        orders += len(requests.get(f"{base}/v2/orders", params={"limit": 250},
                                   headers=headers, timeout=30).json())
    return emails, orders


@pytest.fixture
def quick_brevo() -> Iterator[BrevoBox]:
    """A Brevo sandbox whose rate-limit windows are short: thirty stores' syncs spend more
    than an hour's quota of some of Brevo's buckets."""
    process = subprocess.Popen([RUNNER, "sandbox", "brevo", "--lists", "40,41,42",
                                "--import-delay-ms", "30", "--window-ms", "2"],
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    ready = json.loads(process.stdout.readline())
    yield BrevoBox(process, ready["url"], ready["api_key"])
    process.terminate()
    process.wait(timeout=10)


def watch_and_kill(leases: Leases, victim: subprocess.Popen[bytes]) -> tuple[float, str]:
    """SIGKILL ``victim`` (worker w1) once it is into the sync of a store it holds; then wait
    until every one of the 30 stores is synced. Returns when it was killed, and its store."""
    killed: tuple[float, str] | None = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        held = leases.db.execute("SELECT store FROM {schema}.leases WHERE holder = 'w1' "
                                 "AND expires_at > 0").fetchone()
        if killed is None and held is not None:
            time.sleep(0.15)  # into its sync (each request takes 40 ms: a sync takes longer)
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            # The store it held when it died (it may have finished the one seen above and
            # claimed the next one in the meantime).
            still = leases.db.execute("SELECT store FROM {schema}.leases WHERE holder = 'w1' "
                                      "AND expires_at > 0").fetchone()
            if still is None:
                raise AssertionError("w1 held no store when it was killed: nothing to take over")
            killed = (time.time(), str(still[0]))
        done = leases.db.execute("SELECT COUNT(*) FROM {schema}.leases WHERE synced_at "
                                 "IS NOT NULL").fetchone()
        if killed is not None and done is not None and done[0] == 30:
            return killed
        time.sleep(0.1)
    raise AssertionError(f"not every store was synced in time (w1 killed: {killed})")


def test_three_workers_share_thirty_stores_and_take_over_a_killed_ones(
        quick_brevo: BrevoBox, postgres_url: str, tmp_path: Path) -> None:
    brevo = quick_brevo
    sandbox = start_sandbox("--stores", "30", "--customers", "6", "--orders", "5",
                            "--products", "3", "--plan", "enterprise", "--latency-ms", "40")
    try:
        stores = sandbox.stores
        folder = tmp_path / "stores"
        store_folder(folder, stores, sandbox.url, brevo, postgres_url, tmp_path / "state")
        leases = Leases(postgres_url, "test", 2)
        workers = {name: start_worker(folder, name) for name in ("w1", "w2", "w3")}
        try:
            killed_at, killed_store = watch_and_kill(leases, workers["w1"])
            for name, process in workers.items():
                if name != "w1":
                    process.terminate()  # SIGTERM: each finishes its current store
            for process in workers.values():
                process.wait(timeout=30)
        finally:
            for process in workers.values():
                if process.poll() is None:
                    process.kill()
                    process.wait()
        history = leases.history()
        emails, orders = expected_in_brevo(sandbox.url, stores)
    finally:
        sandbox.stop()
    succeeded: dict[str, list[str]] = {}
    for row in history:
        if row["status"] == "succeeded":
            succeeded.setdefault(row["store"], []).append(row["holder"])
    # Every store synced, once; the killed worker's store finished by another.
    assert len(succeeded) == 30 and all(len(h) == 1 for h in succeeded.values()), succeeded
    assert succeeded[killed_store] != ["w1"]
    unfinished = [row for row in history if row["ended_at"] is None]
    assert [(row["holder"], row["store"]) for row in unfinished] == [("w1", killed_store)]
    # None by two workers at once: each claim ends (the killed one: when it was killed)
    # before the next claim of its store begins.
    by_store: dict[str, list[dict[str, Any]]] = {}
    for row in history:
        by_store.setdefault(row["store"], []).append(row)
    for rows in by_store.values():
        for before, after in itertools.pairwise(rows):
            assert (before["ended_at"] or killed_at) <= after["taken_at"], rows
    # Nothing lost or doubled in Brevo.
    held = brevo.state()
    assert {c["email"].lower() for c in held["contacts"]} == emails
    assert len(held["contacts"]) == len(emails)
    assert len(held["orders"]) == orders == 30 * 5
    events = [json.dumps(e, sort_keys=True) for e in held["events"]]
    assert len(events) == len(set(events))
    # The ledger the three shared, in PostgreSQL: every order once, no SQLite ledger made.
    assert not list((tmp_path / "state").rglob("brevo.db"))
    shared = Ledger(located(postgres_url, "brevo"))
    try:
        assert shared.orders_sent() == 30 * 5
        assert shared.db.execute("SELECT COUNT(*) FROM customers").fetchone()[0] == 30 * 6
    finally:
        shared.close()


def test_a_lease_is_held_renewed_and_lapses(postgres_url: str) -> None:
    one, other = Leases(postgres_url, "one", 1), Leases(postgres_url, "other", 1)
    assert one.claim(["a", "b"], every_s=3600) == "a"  # never synced: due, "a" first
    assert other.claim(["a"], every_s=3600) is None  # held
    assert other.claim(["a", "b"], every_s=3600) == "b"
    time.sleep(0.6)
    assert one.renew("a")
    time.sleep(0.6)
    assert other.claim(["a"], every_s=3600) is None  # renewed: still held
    time.sleep(1.1)  # "one" stopped renewing: its lease lapses
    assert other.claim(["a"], every_s=3600) == "a"
    assert not one.renew("a")  # taken: "one" must stop
    other.release("a", "succeeded")
    other.release("b", "failed")
    assert other.claim(["a", "b"], every_s=3600) == "b"  # a failed sync stays due
    assert other.claim(["a"], every_s=3600) is None  # synced just now: not due
    assert one.claim(["a"], every_s=0) == "a"
    assert [(h["store"], h["holder"], h["status"]) for h in one.history()] == [
        ("a", "one", None), ("b", "other", "failed"), ("a", "other", "succeeded"),
        ("b", "other", None), ("a", "one", None)]


# --- from SQLite to PostgreSQL ---------------------------------------------------------------

def test_a_state_dir_migrates_to_postgresql_and_the_sync_resumes_there(
        make_sandbox, brevo: BrevoBox, postgres_url: str, tmp_path: Path) -> None:
    store = make_sandbox("--customers", "30", "--orders", "20", "--seed", "4")
    config, env = seed_config(tmp_path, store, brevo)
    first = run_cli("runner", "sync", "--config", str(config), env=env)
    assert first.returncode == 0, first.stderr.decode()
    state_dir = tmp_path / "state"
    spool = Spool(state_dir / "bigcommerce.spool.db")
    spool.append(store.store_hash, "store/cart/created", "cart", "c-1", {"n": 1}, "k1")
    spool.append(store.store_hash, "store/cart/created", "cart", "c-2", {"n": 2}, "k2")
    spool.dead_letter(store.store_hash, "cart", "bad id", "store/cart/created", 1, "not an id")
    spool.close()
    sqlite_states = StateStore(state_dir / "bigcommerce.state.db")
    saved, runs = sqlite_states.load(), sqlite_states.runs()
    sqlite_states.close()

    moved = run_cli("runner", "storage", "migrate", "--from", str(state_dir), "--to",
                    "${PG_URL}", env={**env, "PG_URL": postgres_url})
    assert moved.returncode == 0, moved.stderr.decode()
    assert "2 events, 1 dead letters" in moved.stdout.decode()
    # The ledger too: the orders sent before are known in PostgreSQL, not sent again.
    assert "brevo.db, dead-letter.jsonl -> " in moved.stdout.decode()
    assert "20 orders" in moved.stdout.decode()
    (state_dir / "brevo.db").unlink()  # from now on only PostgreSQL's ledger can answer
    again = run_cli("runner", "storage", "migrate", "--from", str(state_dir), "--to",
                    postgres_url, env=env)
    assert again.returncode == 2 and "already holds 2 spooled events" in again.stderr.decode()

    target = Spool(located(postgres_url, "bigcommerce"))
    try:
        assert target.keys() == {"k1", "k2"} and target.last_offset() == 2
        assert [d["resource_id"] for d in target.dead_letters()] == ["bad id"]
        # New events continue after the copied offsets.
        assert (target.append(store.store_hash, "store/cart/created", "cart", "c-3", {},
                              "k3") or 0) > 2
    finally:
        target.close()
    states = StateStore(located(postgres_url, f"bigcommerce.state.{store.store_hash}"))
    try:
        assert states.load() == saved and states.runs() == runs
    finally:
        states.close()
    # With storage set, the next sync reads its states from PostgreSQL: it resumes.
    with config.open("a") as text:
        text.write("storage: ${PG_URL}\n")
    resumed = run_cli("runner", "sync", "--config", str(config),
                      env={**env, "PG_URL": postgres_url})
    assert resumed.returncode == 0, resumed.stderr.decode()
    status = json.loads(run_cli("runner", "status", "--config", str(config), "--json",
                                env={**env, "PG_URL": postgres_url}).stdout)
    last = status["connectors"]["bigcommerce"]["last_run"]
    assert last["status"] == "succeeded" and last["records"] < 30
    assert status["brevo"]["orders"] == 20  # runner status reads the ledger there
    assert not (state_dir / "brevo.db").exists()
    assert len(brevo.state()["orders"]) == 20  # none twice
    ledger = Ledger(located(postgres_url, "brevo"))  # the resumed sync's ledger
    try:
        assert ledger.orders_sent() == 20
    finally:
        ledger.close()


def test_the_forwarder_takes_the_same_lease_as_the_workers(postgres_url: str) -> None:
    """The live path (runner webhooks serve --forward) and the scheduled syncs share the
    store's lease: while a worker holds it the forwarder waits, then forwards under it."""
    from app.forward import Forwarder, StoreBusy

    key = "bigcommerce.state.abc123"
    forwarder = Forwarder(None, {}, None, {}, located(postgres_url, key))  # type: ignore[arg-type]
    forwarded: list[str] = []
    forwarder._forward = lambda store, mode, *_: forwarded.append(mode)  # type: ignore[method-assign]
    worker = Leases(postgres_url, "w1", 30)
    assert worker.claim([key], every_s=3600) == key
    with pytest.raises(StoreBusy):
        forwarder._cycle(None, "webhooks")  # type: ignore[arg-type]
    assert forwarded == []
    worker.release(key, "succeeded")
    synced = worker.db.execute("SELECT synced_at FROM {schema}.leases").rows
    forwarder._cycle(None, "webhooks")  # type: ignore[arg-type]
    assert forwarded == ["webhooks"]
    # A webhooks cycle is not the store's scheduled sync: it stays dated by the worker's.
    assert worker.db.execute("SELECT synced_at FROM {schema}.leases").rows == synced
    forwarder._cycle(None, "poll")  # type: ignore[arg-type]
    assert worker.db.execute("SELECT synced_at FROM {schema}.leases").rows != synced
    assert [(h["holder"].startswith("forwarder-"), h["status"]) for h in worker.history()] == [
        (False, "succeeded"), (True, "forwarded"), (True, "succeeded")]


def test_a_spool_whose_database_goes_away_acknowledges_nothing_and_recovers() -> None:
    """PostgreSQL restarts under a receiver: the events it could not commit are not
    acknowledged (an error, which the receiver answers 503, and the platform retries), and
    it stores again once the server is back, without a restart of its own."""
    from postgres_kit import binaries, start

    from framework.webhooks.receiver import Refused, SpoolWriter

    folder = Path(tempfile.mkdtemp(prefix="tajo-pg-restart-"))  # the server's user reads it
    folder.chmod(0o755)
    server_run = start(folder)
    server = next(server_run)
    url = server.new_database()
    try:
        location = located(url, "bigcommerce")
        writer = SpoolWriter(location)
        spool = Spool(location, durable=True)

        def commit(key: str) -> Any:
            async def one() -> Any:
                loop = asyncio.get_running_loop()
                future = loop.create_future()
                writer._commit(spool, [(Event("s", "store/order/created", "order", "1", {},
                                              key), future, loop)])
                await asyncio.sleep(0.01)
                return future.exception() or future.result()
            return asyncio.run(one())

        assert commit("before") == 1
        pg_ctl = [str(binaries() / "pg_ctl"), "-D", str(folder / "data"), "-m", "immediate",
                  "-w"]
        owner = ["runuser", "-u", server.user, "--"] if os.geteuid() == 0 else []
        subprocess.run([*owner, *pg_ctl, "stop"], check=True, capture_output=True)
        down = commit("while-down")
        assert isinstance(down, Exception) and not isinstance(down, Refused)  # -> 503
        subprocess.run([*owner, *pg_ctl, "-o", f"-c listen_addresses=127.0.0.1 -c port="
                        f"{server.port} -c unix_socket_directories={folder}", "-l",
                        str(folder / "log"), "start"], check=True, capture_output=True)
        outcomes = [commit(f"after-{n}") for n in range(3)]  # a stale connection may fail once
        assert any(isinstance(o, int) for o in outcomes), outcomes
        writer.close()
        stored = spool.keys()
        assert "while-down" not in stored and "before" in stored
        spool.close()
    finally:
        close_pools(url)  # (its server is about to go for good)
        server_run.close()
        shutil.rmtree(folder, ignore_errors=True)
