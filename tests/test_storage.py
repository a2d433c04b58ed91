"""The spool and the state store on both backends: SQLite files and PostgreSQL (the
``storage`` fixture runs each test on each; PostgreSQL's cases are e2e)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from framework.errors import REDACT, ConfigError
from framework.protocol.statestore import StateStore
from framework.storage import describe, located, schema_name, split
from framework.webhooks.spool import Event, Spool

Location = Callable[[str], str]


def test_events_are_stored_once_and_read_by_id(storage: Location) -> None:
    spool = Spool(storage("spool"), durable=True)
    try:
        first = spool.append_many([
            Event("s1", "store/customer/updated", "customer", "7", {"n": 1}, "k1"),
            Event("s1", "store/customer/updated", "customer", "8", {"n": 2}, "k2"),
            Event("s2", "store/order/created", "order", "7", {"n": 3}, "k3")])
        assert first == [1, 2, 3]
        # A re-delivery (same key) is not stored again, whatever batch it comes in.
        assert spool.append_many([Event("s1", "store/customer/updated", "customer", "7",
                                        {"n": 1}, "k1")]) == [None]
        # (the refused insert used up an offset on both backends: offsets only grow)
        fourth = spool.append("s1", "store/customer/deleted", "customer", "7", {}, None)
        assert fourth is not None and fourth > 3
        assert list(spool.ids("s1", "customer")) == [(2, "8", "store/customer/updated"),
                                                     (fourth, "7", "store/customer/deleted")]
        assert list(spool.ids("s1", "customer", after=2, upto=3)) == []
        assert spool.last_offset() == fourth and spool.count() == 4
        assert spool.count(after=3) == 1
        assert spool.keys() == {"k1", "k2", "k3"}
        assert spool.counts_by_scope("customer") == {
            "s1": {"store/customer/updated": 2, "store/customer/deleted": 1}}
        assert spool.payloads("s1", "customer", 0, fourth, 2) == [
            (1, "7", "store/customer/updated", {"n": 1}),
            (2, "8", "store/customer/updated", {"n": 2})]
    finally:
        spool.close()


def test_dead_letters_are_kept_once_per_id(storage: Location) -> None:
    spool = Spool(storage("spool"))
    try:
        assert spool.dead_letter("s", "customer", "x", "store/customer/updated", 3, "bad id")
        assert not spool.dead_letter("s", "customer", "x", "store/customer/updated", 5, "again")
        letters = spool.dead_letters()
        assert [(d["resource_id"], d["offset"], d["reason"]) for d in letters] == [
            ("x", 3, "bad id")]
    finally:
        spool.close()


def test_settled_reads_and_pruning(storage: Location) -> None:
    spool = Spool(storage("spool"))
    try:
        spool.append("s", "store/customer/updated", "customer", "1", {}, "a")
        time.sleep(0.3)
        spool.append("s", "store/customer/updated", "customer", "2", {}, "b")
        assert spool.settled_offset(time.time() - 0.2) == 1
        assert spool.settled_offset(time.time()) == 2
        assert spool.prune(time.time() - 0.2) == 1
        # Offsets are never reused: a saved offset stays valid after pruning.
        assert (spool.append("s", "store/customer/updated", "customer", "3", {}, "c") or 0) > 2
        assert [row[1] for row in spool.ids("s", "customer")] == ["2", "3"]
    finally:
        spool.close()


def test_concurrent_writers_store_each_key_once_and_offsets_in_commit_order(
        storage: Location) -> None:
    """Four writers (receiver replicas) append overlapping keys: each key once, and a reader
    polling meanwhile never sees an offset appear below one it has already seen."""
    location = storage("spool")
    Spool(location).close()
    stored: list[int] = []
    seen_gaps: list[tuple[int, int]] = []
    done = threading.Event()

    def write(worker: int) -> None:
        spool = Spool(location, durable=True)
        try:
            for n in range(0, 200, 10):
                keys = range(n + worker % 2, n + 10, 1)  # writers overlap by pairs
                offsets = spool.append_many([Event("s", "store/order/created", "order",
                                                   str(k + 1), {}, f"o{k}") for k in keys])
                stored.extend(o for o in offsets if o is not None)
        finally:
            spool.close()

    def read() -> None:
        """Once the newest offset is L, the events up to L are final: count them again later."""
        spool = Spool(location)
        seen: list[tuple[int, int]] = []
        try:
            while not done.is_set():
                last = spool.last_offset()
                seen.append((last, len(list(spool.ids("s", "order", 0, last)))))
                for upto, count in seen[-5:]:
                    again = len(list(spool.ids("s", "order", 0, upto)))
                    if again != count:
                        seen_gaps.append((upto, count, again))
        finally:
            spool.close()

    reader = threading.Thread(target=read)
    reader.start()
    writers = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    done.set()
    reader.join()
    spool = Spool(location)
    try:
        assert len(spool.keys()) == 200 and spool.count() == 200
        assert sorted(stored) == sorted(row[0] for row in spool.ids("s", "order"))
    finally:
        spool.close()
    assert seen_gaps == []


def test_states_and_runs(storage: Location) -> None:
    store = StateStore(storage("state"))
    try:
        line = (b'{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":'
                b'{"name":"customers"},"stream_state":{"stores":{"abc":{"updated_at":"x"}}}}}}')
        assert store.save_message(line) == "customers"
        assert store.save_message(b'{"type":"LOG","log":{}}') is None
        store.save("orders", {"cursor": 2})
        store.save("orders", {"cursor": 3})
        assert store.load() == {"customers": {"stores": {"abc": {"updated_at": "x"}}},
                                "orders": {"cursor": 3}}
        assert set(store.saved_at()) == {"customers", "orders"}
        first = store.start_run("sync")
        store.finish_run(first, "succeeded", None, 12)
        second = store.start_run("forward")
        REDACT.add(["run-secret-9d8c7b"])
        store.finish_run(second, "failed", "boom: run-secret-9d8c7b", 1)
        runs = store.runs()
        assert [(r["kind"], r["status"], r["records"], r["error"]) for r in runs] == [
            ("forward", "failed", 1, "boom: ****"), ("sync", "succeeded", 12, None)]
        assert all("run-secret" not in str(row) for row in store.all_runs())
    finally:
        store.close()


def test_namespaces_of_one_database_are_apart(storage: Location) -> None:
    one, other = StateStore(storage("store-a")), StateStore(storage("store-b"))
    try:
        one.save("customers", {"n": 1})
        assert other.load() == {}
    finally:
        one.close()
        other.close()


def test_locations() -> None:
    url = "postgresql://tajo:pa55-w0rd-xyz@db.internal:5432/tajo"
    assert split(located(url, "bigcommerce")) == (url, "bigcommerce")
    assert split(url) == (url, "default")
    assert describe(located(url, "x")) == "postgresql://tajo@db.internal:5432/tajo#x"
    assert schema_name("bigcommerce") == "tajo_bigcommerce"
    assert schema_name("Big Commerce/abc").startswith("tajo_big_commerce_abc_")
    assert schema_name("a/b") != schema_name("a_b")


@pytest.mark.e2e
def test_an_unreachable_database_is_a_config_error_without_its_password(
        postgres_server: Any) -> None:
    url = f"postgresql://nobody:hidden-pass-1234@127.0.0.1:{postgres_server.port}/missing_db"
    with pytest.raises(ConfigError) as raised:
        Spool(located(url, "spool"))
    assert "hidden-pass" not in str(raised.value)
    assert "cannot connect to PostgreSQL at postgresql://nobody@127.0.0.1" in str(raised.value)


# --- a receiver's readiness --------------------------------------------------------------

def _health(location: str) -> tuple[int, dict[str, Any]]:
    """GET /healthz and /livez of a receiver whose spool is at ``location``."""
    from starlette.testclient import TestClient

    from framework.webhooks.receiver import SpoolWriter, build_app

    writer = SpoolWriter(location)
    try:
        app = build_app(None, writer, "/webhooks/x")  # type: ignore[arg-type]
        with TestClient(app) as client:
            ready, alive = client.get("/healthz"), client.get("/livez")
            assert alive.status_code == 200  # the process answers, whatever its storage
            return ready.status_code, ready.json()
    finally:
        writer.close()


def test_a_receiver_is_ready_while_its_spool_answers(storage: Location) -> None:
    status, body = _health(storage("spool"))
    assert status == 200 and body["ok"] is True


@pytest.mark.e2e
def test_a_receiver_whose_spool_is_unreachable_is_not_ready_until_it_is_back() -> None:
    """PostgreSQL stops under a receiver: /healthz says 503 (Kubernetes stops sending it
    webhooks, the other replicas take them) within the probe's timeout, without the URL's
    password; it is ready again once the server is back, without a restart."""
    import os
    import shutil
    import subprocess
    import tempfile
    from pathlib import Path

    from postgres_kit import binaries, start
    from starlette.testclient import TestClient

    from framework.storage import close_pools
    from framework.webhooks.receiver import SpoolWriter, build_app

    folder = Path(tempfile.mkdtemp(prefix="tajo-pg-ready-"))
    folder.chmod(0o755)
    server_run = start(folder)
    server = next(server_run)
    url = server.new_database().replace("@127.0.0.1", ":pw-s3cret@127.0.0.1")  # (trust)
    owner = ["runuser", "-u", server.user, "--"] if os.geteuid() == 0 else []
    pg_ctl = [*owner, str(binaries() / "pg_ctl"), "-D", str(folder / "data"), "-w"]
    writer = SpoolWriter(located(url, "bigcommerce"))
    try:
        with TestClient(build_app(None, writer, "/webhooks/x")) as client:  # type: ignore[arg-type]
            assert client.get("/healthz").status_code == 200
            subprocess.run([*pg_ctl, "-m", "immediate", "stop"], check=True,
                           capture_output=True)
            started = time.monotonic()
            down = client.get("/healthz")
            assert down.status_code == 503 and down.json()["ok"] is False
            assert time.monotonic() - started < 10
            assert "127.0.0.1" in down.json()["storage"]
            assert "pw-s3cret" not in down.text
            assert client.get("/livez").status_code == 200
            subprocess.run([*pg_ctl, "-o", f"-c listen_addresses=127.0.0.1 -c port="
                            f"{server.port} -c unix_socket_directories={folder}", "-l",
                            str(folder / "log"), "start"], check=True, capture_output=True)
            deadline = time.monotonic() + 20
            while client.get("/healthz").status_code != 200:  # a stale connection: once
                assert time.monotonic() < deadline, "not ready again after the restart"
                time.sleep(0.2)
    finally:
        writer.close()
        close_pools(url)
        server_run.close()
        shutil.rmtree(folder, ignore_errors=True)
