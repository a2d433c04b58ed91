"""Brevo's hourly budget (issue 17): the buckets of Brevo's rate-limit page, the sandbox held to
Brevo's batch and body limits (and calling an import's notifyUrl when it ends), the receiver's
route for those calls, the writer sending each contact once per run with its final totals and
every batch full, STATEs held until what came before them is in Brevo, the dry run's estimate
per bucket, and (e2e) a sync paced by a bucket it exhausts, told of its imports by the
receiver."""

from __future__ import annotations

import http.server
import json
import os
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
import requests
from brevo_fake import FakeBrevo
from starlette.applications import Starlette
from starlette.testclient import TestClient

from connectors.brevo import destination, notify
from connectors.brevo.limits import TIERS, bucket_of, estimate, tier_of
from connectors.brevo.sandbox.app import ROUTES, BrevoSandbox, build_app
from framework.errors import REDACT
from framework.protocol import messages as p

KEY = "xkeysib-budget-test"
LISTS = {"all_customers": 40, "buyers": 41}

# --- Brevo's rate-limit page -------------------------------------------------------------


def test_buckets_are_those_of_brevos_rate_limit_page() -> None:
    # developers.brevo.com/docs/api-limits: the named endpoints have their own bucket,
    # everything else shares one (100 an hour on the general tier).
    assert bucket_of("POST", "/v3/contacts/import") == "contacts"
    assert bucket_of("GET", "/v3/contacts/lists/40") == "contacts"
    assert bucket_of("POST", "/v3/events") == "events"
    assert bucket_of("POST", "/v3/orders/status") == "orders"
    assert bucket_of("POST", "/v3/products") == "products"
    for method, path in (("POST", "/v3/orders/status/batch"), ("POST", "/v3/products/batch"),
                         ("POST", "/v3/categories/batch"), ("POST", "/v3/events/batch"),
                         ("GET", "/v3/processes"), ("GET", "/v3/processes/7"),
                         ("GET", "/v3/account"), ("GET", "/v3/products")):
        assert bucket_of(method, path) == "other", path
    assert [TIERS[t]["other"].per_hour for t in TIERS] == [100, 200, 600]
    assert (TIERS["general"]["orders"].per_hour, TIERS["general"]["contacts"].per_second) == (
        18_000, 10)
    assert tier_of(200) == "advanced" and tier_of(150) is None


def test_the_sandbox_spends_the_buckets_of_the_page() -> None:
    for method, path, bucket, _ in ROUTES:
        assert bucket_of(method, path.replace(":int", "")) == bucket, (method, path)


def test_the_estimate_says_hours_per_bucket_at_the_tier() -> None:
    said = estimate({"other": 2050, "contacts": 36, "events": 0}, "general")
    assert "everything else 2,050 (20.50 h at 100 an hour)" in said
    assert "/v3/contacts/* 36 (0.00 h at 36,000 an hour)" in said and "events" not in said
    assert "(10.25 h at 200 an hour)" in estimate({"other": 2050}, "advanced")


# --- the sandbox: Brevo's limits, and its calls to notifyUrl ------------------------------


@pytest.fixture
def sandbox() -> Iterator[tuple[BrevoSandbox, TestClient]]:
    box = BrevoSandbox(KEY, window_ms=1000, latency_ms=0, import_delay_ms=20)
    box.account.add_list(40, "All", 1)
    with TestClient(build_app(box), headers={"api-key": KEY}) as client:
        yield box, client


def order(n: int, lines: int = 1) -> dict[str, Any]:
    return {"id": f"s-{n}", "createdAt": "2026-01-01T00:00:00Z",
            "updatedAt": "2026-01-01T00:00:00Z", "status": "Shipped", "amount": 10.0,
            "products": [{"productId": str(i), "price": 1.0, "quantity": 1}
                         for i in range(lines)]}


def test_the_sandbox_refuses_imports_and_order_batches_over_brevos_limits(
        sandbox: tuple[BrevoSandbox, TestClient]) -> None:
    _, client = sandbox
    row = {"email": "a@example.com", "attributes": {"NOTE": "x" * 1000}}
    rows = [row] * (10_000_000 // 1040 + 1)  # over 10 MB
    too_big = client.post("/v3/contacts/import", content=orjson.dumps(
        {"jsonBody": rows, "listIds": [40]}), headers={"content-type": "application/json"})
    assert too_big.status_code == 413 and too_big.json()["code"] == "out_of_range"
    fits = client.post("/v3/contacts/import", json={"jsonBody": rows[:7000], "listIds": [40]})
    assert fits.status_code == 202  # 7.3 MB
    many = client.post("/v3/orders/status/batch", json={"orders": [order(n) for n in
                                                                   range(1001)]})
    assert many.status_code == 400 and "1000 orders" in many.json()["message"]
    assert client.post("/v3/orders/status/batch", json={
        "orders": [order(n) for n in range(1000)]}).status_code == 202
    heavy = client.post("/v3/orders/status/batch", json={
        "orders": [order(n, lines=120) for n in range(1000)]})  # about 5.5 MB
    assert heavy.status_code == 413


def test_the_sandbox_takes_a_thousand_products_only_from_a_raised_account(
        sandbox: tuple[BrevoSandbox, TestClient]) -> None:
    box, client = sandbox
    products = [{"id": str(n), "name": f"P{n}"} for n in range(1000)]
    body = {"products": products, "updateEnabled": True}
    assert client.post("/v3/products/batch", json=body).status_code == 400
    box.account.product_batch_limit = 1000
    assert client.post("/v3/products/batch", json=body).status_code == 201
    without_update = client.post("/v3/products/batch", json={"products": products[:101]})
    assert without_update.status_code == 400  # the raised limit is for upserts only


def test_the_sandbox_lists_processes_newest_first(
        sandbox: tuple[BrevoSandbox, TestClient]) -> None:
    _, client = sandbox
    for n in range(3):
        client.post("/v3/contacts/import", json={
            "jsonBody": [{"email": f"p{n}@example.com"}], "listIds": [40]})
    time.sleep(0.05)
    page = client.get("/v3/processes", params={"limit": 2}).json()
    assert page["count"] == 3 and [p["id"] for p in page["processes"]] == [3, 2]
    assert {p["status"] for p in page["processes"]} == {"completed"}
    assert client.get("/v3/processes", params={"limit": 51}).status_code == 400


def test_each_tier_has_its_buckets_headers() -> None:
    box = BrevoSandbox(KEY, window_ms=1000, latency_ms=0, import_delay_ms=20, tier="advanced")
    with TestClient(build_app(box), headers={"api-key": KEY}) as client:
        assert client.get("/v3/account").headers["x-sib-ratelimit-limit"] == "200"
        assert client.get("/v3/contacts/attributes").headers["x-sib-ratelimit-limit"] == "20"


class Catcher(http.server.BaseHTTPRequestHandler):
    """A receiver that notes each call (method, path, body)."""

    calls: list[tuple[str, str, bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        self.calls.append(("POST", self.path, body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


def test_the_sandbox_calls_an_imports_notify_url_once_it_has_ended(
        sandbox: tuple[BrevoSandbox, TestClient]) -> None:
    box, client = sandbox
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Catcher)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Catcher.calls = []
    try:
        url = f"http://127.0.0.1:{server.server_port}/notify/brevo/s/k1"
        started = client.post("/v3/contacts/import", json={
            "jsonBody": [{"email": "n@example.com"}], "listIds": [40], "notifyUrl": url})
        assert started.status_code == 202
        for _ in range(100):
            if Catcher.calls:
                break
            time.sleep(0.02)
        assert Catcher.calls == [("POST", "/notify/brevo/s/k1", b"")]
        process = box.account.processes[started.json()["processId"]]
        assert process.status == "completed" and box.notified == 1  # ended before the call
        assert [c.email for c in box.account.contacts.values()] == ["n@example.com"]
    finally:
        server.shutdown()


# --- the receiver's route for Brevo's calls -----------------------------------------------


def test_the_receiver_takes_brevos_calls_only_with_the_secret(tmp_path: Path) -> None:
    route, board = notify.notify_route(tmp_path)
    secret = notify.stored_secret(tmp_path)
    assert (tmp_path / "brevo-notify-secret").stat().st_mode & 0o777 == 0o600
    assert secret not in REDACT(f"the url /notify/brevo/{secret}/x")
    key = "0123456789abcdef" * 2
    with TestClient(Starlette(routes=[route])) as client:
        assert client.post(f"/notify/brevo/{secret}/{key}").status_code == 200
        assert client.get(f"/notify/brevo/{secret}/{'f' * 32}").status_code == 200
        assert client.post(f"/notify/brevo/{'0' * 32}/{'a' * 32}").status_code == 404
        assert client.post(f"/notify/brevo/{secret}/not-a-key").status_code == 404
        assert client.post(f"/notify/brevo/{secret}/{'b' * 32}",
                           content=b"x" * 5000).status_code == 413
    assert board.seen([key, "f" * 32, "a" * 32, "b" * 32]) == {key, "f" * 32}
    assert not board.alive()
    board.beat()
    assert board.alive() and not board.alive(now=time.time() + notify.ALIVE_S + 1)
    board.stopped()
    assert not board.alive()
    board.close()


def test_notices_are_used_only_while_a_receiver_is_up(tmp_path: Path) -> None:
    config = {"notify_url": "https://hooks.example.com", "state_dir": str(tmp_path)}
    assert notify.notices_for(config) is None  # no receiver said it is up
    board = notify.NoticeBoard(tmp_path)
    board.beat()
    notices = notify.notices_for(config)
    assert notices is not None
    url = notices.url("c" * 32)
    assert url.startswith("https://hooks.example.com/notify/brevo/") and url.endswith("c" * 32)
    assert notify.notices_for({**config, "dry_run": True}) is None
    board.close()


# --- the writer: once per run, full batches, STATEs held --------------------------------


class Account:
    """Brevo as the writer meets it, on a FakeBrevo (which holds requests to the SDK)."""

    def __init__(self, other_limit: int = 100) -> None:
        self.fake = FakeBrevo()
        self.fake.quota = SimpleNamespace(quota=other_limit)  # what the pacer read
        self.imports: list[dict[str, Any]] = []
        self.process_checks = 0
        h = self.fake.handlers
        h[("GET", "/v3/account")] = lambda *_: (200, {"organization_id": "org-1",
                                                      "companyName": "Shop"})
        h[("GET", "/v3/contacts/attributes")] = lambda *_: (200, {"attributes": []})
        h[("POST", "/v3/contacts/import")] = self.start
        h[("GET", "/v3/processes")] = self.processes
        h[("POST", "/v3/orders/status/batch")] = lambda *_: (202, {"count": 1, "batch_id": 1})

    def start(self, body: Any, _: Any) -> tuple[int, Any]:
        self.imports.append(body)
        return 202, {"processId": len(self.imports)}

    def processes(self, *_: Any) -> tuple[int, Any]:
        self.process_checks += 1
        return 200, {"count": len(self.imports), "processes": [
            {"id": n, "name": "IMPORTUSER", "status": "completed"}
            for n in range(len(self.imports), 0, -1)]}

    def client(self, *_: Any, **__: Any) -> FakeBrevo:
        return self.fake


def customer(i: int) -> dict[str, Any]:
    unknown = {"state": "unknown"}
    return {"platform": "bigcommerce", "account": "s1", "id": str(i), "deleted": False,
            "email": f"c{i}@example.com", "first_name": f"F{i}", "last_name": "L",
            "phone": "", "group": None, "created_at": "2024-01-02T00:00:00Z",
            "updated_at": "2024-01-02T00:00:00Z", "custom_fields": [], "addresses": [],
            "consent": {"email": unknown, "sms": unknown, "abandoned_cart": unknown},
            "order_count": None, "amount_spent": None}


def model_order(i: int, customer_id: int) -> dict[str, Any]:
    return {"platform": "bigcommerce", "account": "s1", "id": str(i), "deleted": False,
            "customer_id": str(customer_id), "email": f"c{customer_id}@example.com",
            "counts_as_purchase": True, "platform_status": {"id": "10", "name": "Completed"},
            "total": 10.0, "refunded": 0.0, "billing_address": {}, "coupons": [],
            "lines": [{"product_id": "1", "variant_id": "2", "quantity": 1, "price": 10.0}],
            "created_at": "2024-03-01T10:00:00Z", "updated_at": "2024-03-01T10:00:00Z"}


def run(account: Account, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        messages: list[dict[str, Any]], **config: Any) -> list[tuple[int, dict[str, Any]]]:
    """One write; each STATE echoed with the number of Brevo calls made before it."""
    return run_writer(account, monkeypatch, tmp_path, messages, **config)[0]


def run_writer(account: Account, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
               messages: list[dict[str, Any]], **config: Any
               ) -> tuple[list[tuple[int, dict[str, Any]]], destination.BrevoWriter]:
    """``run``, and the writer (closed)."""
    monkeypatch.setattr(destination, "HttpClient", account.client)
    catalog = p.ConfiguredAirbyteCatalog(streams=[p.ConfiguredAirbyteStream(
        stream=p.AirbyteStream(name=name, json_schema={"type": "object"},
                               supported_sync_modes=["full_refresh"]),
        sync_mode="full_refresh", destination_sync_mode="append")
        for name in ("commerce_customers", "commerce_orders")])
    settings = {"api_url": "https://api.brevo.com", "api_key": KEY, "lists": LISTS,
                "state_dir": str(tmp_path / "state"), "import_batch": 10, **config}
    writer = destination.BrevoWriter(settings, catalog)
    return [(len(account.fake.calls), json.loads(line))
            for line in writer.write(iter(messages))], writer


def shop(customers: int, orders_each: int) -> list[dict[str, Any]]:
    """Customers a page of 10 at a time, each page with its STATE, then their orders the
    same way: the orders change every customer's totals after its row was made."""
    def record(stream: str, data: dict[str, Any]) -> dict[str, Any]:
        return {"type": "RECORD", "record": {"stream": stream, "data": data, "emitted_at": 1}}

    messages: list[dict[str, Any]] = []
    for page in range(0, customers, 10):
        messages += [record("commerce_customers", customer(i))
                     for i in range(page, min(page + 10, customers))]
        messages.append(p.state_message("commerce_customers", {"page": page}).model_dump(
            mode="json", exclude_none=True))
    orders = [(n, n % customers) for n in range(customers * orders_each)]
    for page in range(0, len(orders), 10):
        messages += [record("commerce_orders", model_order(n, c)) for n, c in
                     orders[page:page + 10]]
        messages.append(p.state_message("commerce_orders", {"page": page}).model_dump(
            mode="json", exclude_none=True))
    return messages


def test_each_contact_is_imported_once_with_its_final_totals(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    account = Account()
    echoed = run(account, monkeypatch, tmp_path, shop(60, 2))
    rows = [row for body in account.imports for row in body["jsonBody"]]
    assert Counter(row["email"] for row in rows) == {f"c{i}@example.com": 1 for i in range(60)}
    assert {row["attributes"]["ORDER_COUNT"] for row in rows} == {2}
    assert {row["attributes"]["TOTAL_SPENT"] for row in rows} == {20.0}
    assert {tuple(body["listIds"]) for body in account.imports} == {(40, 41)}  # buyers all
    # 120 orders: one batch, not one per flush; one look at Brevo's processes.
    batches = account.fake.posted("/v3/orders/status/batch")
    assert [len(b["orders"]) for b in batches] == [120] and account.process_checks == 1
    # Every STATE waited until the import had been seen to end, and all came out in order.
    check = max(i for i, (m, path, _, _) in enumerate(account.fake.calls)
                if path == "/v3/processes") + 1
    assert all(calls >= check for calls, _ in echoed) and len(echoed) == 18
    assert [s["state"]["stream"]["stream_state"]["page"] for _, s in echoed] == [
        *range(0, 60, 10), *range(0, 120, 10)]


def test_a_checkpoint_sends_what_waits_and_echoes_the_states(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    account = Account()
    # A flush at every STATE, and batches that are not full wait at most a few microseconds:
    # from the second flush on, each sends everything and its STATEs come out at once.
    echoed = run(account, monkeypatch, tmp_path, shop(30, 1), checkpoint_minutes=1e-7,
                 flush_seconds=0)
    assert len(echoed) == 6
    assert echoed[0][0] < len(account.fake.calls)  # the first STATE before the end
    assert len(account.fake.posted("/v3/orders/status/batch")) > 1  # at the cost of batches


def test_with_a_receiver_up_imports_wait_for_its_notices_and_the_run_lets_go_of_them(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    account = Account()
    board = notify.NoticeBoard(tmp_path / "state")
    board.beat()

    def start(body: Any, _: Any) -> tuple[int, Any]:
        board.record(body["notifyUrl"].rsplit("/", 1)[1])  # Brevo calls once it has ended
        return account.start(body, _)

    account.fake.handlers[("POST", "/v3/contacts/import")] = start
    echoed, writer = run_writer(account, monkeypatch, tmp_path, shop(30, 1),
                                notify_url="https://hooks.example.com/tajo")
    assert len(echoed) == 6 and account.process_checks == 1
    secret = notify.stored_secret(tmp_path / "state")
    assert account.imports[0]["notifyUrl"].startswith(
        f"https://hooks.example.com/tajo/notify/brevo/{secret}/")
    with pytest.raises(sqlite3.ProgrammingError):  # the writer closed its notices
        writer.notices.board.db.execute("SELECT 1")
    board.close()


def test_the_dry_run_estimates_each_bucket_at_the_accounts_tier(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    account = Account(other_limit=200)  # Brevo's answers say: the advanced tier
    monkeypatch.setattr(destination, "_OTHER_LIMIT", {})
    monkeypatch.setattr(destination, "HttpClient", account.client)
    catalog = p.ConfiguredAirbyteCatalog(streams=[p.ConfiguredAirbyteStream(
        stream=p.AirbyteStream(name=name, json_schema={"type": "object"},
                               supported_sync_modes=["full_refresh"]),
        sync_mode="full_refresh", destination_sync_mode="append")
        for name in ("commerce_customers", "commerce_orders")])
    config = {"api_url": "https://dry.brevo.example", "api_key": KEY, "lists": LISTS,
              "state_dir": str(tmp_path / "dry"), "import_batch": 10, "dry_run": True}
    lines = list(destination.write(config, catalog, iter(shop(30, 40))))
    summary = json.loads(lines[-1])["log"]["message"]
    # 1,200 orders: two batches; one import (and one look at it), the account: 4 requests
    # in the 100-an-hour bucket, here 200 an hour.
    assert "at the advanced tier's limits" in summary
    assert "everything else 4 (0.02 h at 200 an hour)" in summary
    assert account.imports == [] and account.fake.posted("/v3/orders/status/batch") == []


# --- e2e: a sync paced by the bucket it exhausts, told of its imports by the receiver ---


RUNNER = str(Path(os.environ.get("VIRTUAL_ENV", ".venv")) / "bin" / "runner")


def start(*args: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    process = subprocess.Popen([RUNNER, "sandbox", *args, "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    return process, json.loads(process.stdout.readline())


@pytest.mark.e2e
def test_a_sync_paces_itself_to_a_bucket_it_exhausts_and_hears_of_its_imports(
        tmp_path: Path) -> None:
    from webhook_kit import start_receiver

    bc, store = start("bigcommerce", "--customers", "1200", "--orders", "2600", "--products",
                      "20", "--plan", "enterprise", "--seed", "5")
    # An hour of 7.2 s, and 4 requests an hour in "everything else": the sync needs more.
    brevo, account = start("brevo", "--lists", "40,41,42", "--window-ms", "2", "--limit",
                           "other=4", "--import-delay-ms", "300")
    key = {"api-key": account["api_key"]}
    config_path = tmp_path / "tajo.json"

    def config(notify_url: str) -> dict[str, Any]:
        return {"connectors": {"bigcommerce": {
                    "store_hash": store["store_hash"], "access_token": store["access_token"],
                    "api_url": store["url"], "lists": {**LISTS, "abandoned_cart": 42},
                    "sync": {"carts": False, "inventory": False}}},
                "brevo": {"api_key": account["api_key"], "api_url": account["url"],
                          "notify_url": notify_url},
                "state_dir": str(tmp_path / "state")}

    config_path.write_text(json.dumps(config("http://127.0.0.1:9")))
    receiver = start_receiver(config_path)
    try:
        config_path.write_text(json.dumps(config(receiver.url)))
        dry = subprocess.run([RUNNER, "sync", "--config", str(config_path), "--dry-run"],
                             capture_output=True, text=True, timeout=300)
        assert dry.returncode == 0, dry.stderr[-2000:]
        assert "at the general tier's limits: " in dry.stdout
        assert "everything else" in dry.stdout
        requests.post(f"{account['url']}/_sandbox/stats/reset", headers=key, timeout=10)
        started = time.monotonic()
        done = subprocess.run([RUNNER, "sync", "--config", str(config_path)],
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        state = requests.get(f"{account['url']}/_sandbox/state", headers=key,
                             timeout=30).json()
    finally:
        log = receiver.stop()
        bc.terminate()
        brevo.terminate()
    buckets = {path.replace(":int", ""): bucket for _, path, bucket, _ in ROUTES}
    other = sum(n for path, n in state["requests"]["by_path"].items()
                if buckets.get(path) == "other")
    elapsed = time.monotonic() - started
    # It waited for a new "hour". (Whether one wait was long enough to be logged depends on
    # where in its window the run stood: the log line is tested in-process, below.)
    assert other > 4 and elapsed >= 3.6, (other, elapsed)
    assert state["requests"]["throttled"] == 0  # paced by the headers, never refused
    assert state["notified"] >= 1 and "Traceback" not in log
    rows = Counter()
    for process in state["processes"]:
        rows["rows"] += process["rows"]
    assert rows["rows"] == len(state["contacts"]) == 1200  # each contact once
    assert state["requests"]["by_path"].get("/v3/processes", 0) <= len(state["processes"])
    assert len(state["orders"]) == 2600


def test_a_long_wait_for_a_bucket_is_said_and_a_short_one_is_not(
        caplog: pytest.LogCaptureFixture) -> None:
    writer = destination.BrevoWriter.__new__(destination.BrevoWriter)
    on_wait = writer._waiting("other")
    with caplog.at_level("WARNING", logger="tajo.brevo"):
        on_wait(destination.LONG_WAIT_S / 2, "x-sib-ratelimit-remaining is 0")
        assert caplog.messages == []
        on_wait(1800.0, "x-sib-ratelimit-remaining is 0")
    assert len(caplog.messages) == 1
    assert caplog.messages[0].startswith("Brevo's rate limit for everything else: "
                                         "x-sib-ratelimit-remaining is 0 (1800 s;")
