"""The product page's setup followed literally: its scopes (store_cart read-only), its one
``tajo.yaml`` for every command, its webhook table (no ``store/cart/converted``), and what
``check`` and ``status`` say about it."""

from __future__ import annotations

import io
import json
import logging
import stat
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import BrevoBox, Sandbox, run_cli
from test_sync import SEED_YAML
from webhook_kit import start_receiver

from app import sync
from connectors.bigcommerce import source as bigcommerce
from framework.errors import ConfigError, ConnectorError
from framework.plugins import commands
from framework.webhooks.spool import Spool

# The product page's OAuth scopes table: every scope read-only, store_cart included.
PAGE_SCOPES = ["store_v2_customers_read_only", "store_v2_orders_read_only",
               "store_v2_products_read_only", "store_cart_read_only",
               "store_v2_information_read_only", "store_v2_content_read_only"]
FIX = "store_cart with modify access"


def page_config(tmp_path: Path, store: Sandbox, brevo: BrevoBox, token: str,
                inventory: str = "false", webhooks: str | None = None) -> Path:
    """The product page's tajo.yaml (its YAML, its webhook table), with literal credentials
    (a receiver started by the tests does not get their environment)."""
    text = SEED_YAML.format(store_hash=store.store_hash, bc_url=store.url,
                            brevo_url=brevo.url, inventory=inventory,
                            state_dir=tmp_path / "state")
    text = text.replace("${BC_ACCESS_TOKEN}", token).replace("${BREVO_API_KEY}", brevo.key)
    if webhooks is not None:
        text = text.replace('  - scope: "store/inventory/updated"\n',
                            webhooks + '  - scope: "store/inventory/updated"\n')
    path = tmp_path / "tajo.yaml"
    path.write_text(text)
    return path


def page_token(store: Sandbox, **extra: Any) -> str:
    return str(store.admin("POST", "tokens", {"scopes": PAGE_SCOPES, **extra})["access_token"])


def spool_carts(tmp_path: Path, store: Sandbox, carts: list[str]) -> None:
    """Abandoned-cart webhooks as the receiver spools them (settled: a second old)."""
    spool = Spool(tmp_path / "state" / "bigcommerce.spool.db")
    try:
        for cart_id in carts:
            spool.append(store.store_hash, "store/cart/abandoned", "cart", cart_id,
                         {"scope": "store/cart/abandoned", "data": {"id": cart_id}})
    finally:
        spool.close()
    time.sleep(1.1)


def customers(store: Sandbox) -> list[dict[str, Any]]:
    return requests.get(f"{store.url}/stores/{store.store_hash}/v3/customers",
                        params={"limit": 50}, headers={"X-Auth-Token": store.access_token},
                        timeout=10).json()["data"]


@pytest.mark.e2e
def test_read_only_cart_scope_sends_carts_without_a_link_and_syncing_goes_on(
        make_sandbox, brevo: BrevoBox, tmp_path: Path) -> None:
    store = make_sandbox("--customers", "12", "--orders", "6", "--products", "4",
                         "--plan", "enterprise", "--seed", "81")
    token = page_token(store)
    config = page_config(tmp_path, store, brevo, token)
    first = run_cli("runner", "sync", "--config", str(config))
    assert first.returncode == 0, first.stderr.decode()

    people = customers(store)
    willing = next(c for c in people if c["accepts_product_review_abandoned_cart_emails"])
    unwilling = next(c for c in people if not c["accepts_product_review_abandoned_cart_emails"])
    made = [store.admin("POST", "carts", {"create": 1, "customer_id": who})["created"][0]
            for who in (willing["id"], willing["id"], unwilling["id"], 0)]  # 0: a guest
    store.admin("POST", "carts", {"abandon": made})
    store.admin("POST", "mutate", {"resource": "customers", "update": 2, "seed": 3})
    spool_carts(tmp_path, store, made)

    # Before: the first cart's POST .../redirect_urls got a 403 and the whole sync failed.
    second = run_cli("runner", "sync", "--config", str(config))
    assert second.returncode == 0, second.stderr.decode()
    log = second.stderr.decode()
    assert log.count(FIX) == 1, log  # said once, naming the access level needed
    assert "read-only is not enough" in log and token not in log
    abandoned = [e for e in brevo.state()["events"] if e["event_name"] == "cart_abandoned"]
    assert len(abandoned) == 2  # the consenting customer's two carts; no guest, no refusal
    for event in abandoned:
        properties = event["event_properties"]
        assert "recovery_url" not in properties
        assert properties["cart_url"] == (
            f"https://sandbox-{store.store_hash}.mybigcommerce.com/cart.php")
    assert len(brevo.state()["contacts"]) == 12

    check = run_cli("runner", "check", "--config", str(config))
    out = check.stdout.decode()
    assert check.returncode == 0, out
    assert "bigcommerce warning: abandoned carts are synced without a recovery link" in out
    assert FIX in out
    # No cart hooks are registered: carts, read only from webhooks, would never come.
    assert "carts is synced but no cart webhook of ours is registered" in out
    assert "runner webhooks register --config CONFIG --url" in out
    # The page's table has no store/cart/converted: a bought cart stays "abandoned".
    assert "store/cart/abandoned but not store/cart/converted" in out
    assert '{scope: "store/cart/converted", destination: "cart_converted"}' in out

    status = run_cli("runner", "status", "--config", str(config), "--json")
    report = json.loads(status.stdout)
    assert report["brevo"]["carts_skipped"] == {"guest": 1, "no_consent": 1}
    warnings = report["connectors"]["bigcommerce"]["warnings"]
    assert any(FIX in w for w in warnings)
    assert any("no cart webhook of ours is registered" in w for w in warnings)
    text = run_cli("runner", "status", "--config", str(config)).stdout.decode()
    assert ("carts skipped for lack of consent: 1 of guests, 1 of customers who did not "
            "accept abandoned-cart emails") in text
    assert "warning: abandoned carts are synced without a recovery link" in text

    # With modify access on carts, the link comes and the warning goes.
    full = run_cli("runner", "check", "--config", str(page_config(
        tmp_path, store, brevo, store.access_token)))
    assert full.returncode == 0 and FIX not in full.stdout.decode()


def test_the_recovery_warning_is_said_once_and_the_cart_goes_on(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bigcommerce, "_refused", {})
    calls = []

    def refuse(path: str, params: Any = None, *, method: str = "GET", scope: str = "") -> Any:
        calls.append(scope)
        raise ConnectorError("BigCommerce refused it (HTTP 403)", "config_error")

    with caplog.at_level(logging.WARNING, "tajo.bigcommerce"):
        for n in range(3):
            cart = {"id": f"c{n}", "store_hash": "abc", "webhook_scope": "store/cart/abandoned"}
            assert bigcommerce.cart_recovery(cart, refuse) == []
            assert "redirect_urls" not in cart
    assert calls == [FIX]  # asked once; the 403's fix names the access level needed
    assert sum(FIX in r.getMessage() for r in caplog.records) == 1

    def outage(*_: Any, **__: Any) -> Any:
        raise ConnectorError("HTTP 503", "transient_error")
    with pytest.raises(ConnectorError):  # an outage is not a missing scope
        bigcommerce.cart_recovery({"id": "x", "store_hash": "other",
                                   "webhook_scope": "store/cart/abandoned"}, outage)


@pytest.mark.e2e
def test_one_streams_permanent_error_does_not_stop_the_others(
        make_sandbox, brevo: BrevoBox, tmp_path: Path) -> None:
    store = make_sandbox("--customers", "30", "--orders", "10", "--products", "6",
                         "--plan", "enterprise", "--seed", "5")
    no_orders = store.admin("POST", "tokens", {"scopes": [
        s for s in PAGE_SCOPES if "orders" not in s]})["access_token"]
    config = {**store.config(), "access_token": no_orders}
    catalog = bigcommerce.connector.configured_catalog()
    out = io.BytesIO()
    code = commands.run(bigcommerce.connector.read(config, catalog, {}), out=out)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    ends = {m["trace"]["stream_status"]["stream_descriptor"]["name"]:
            m["trace"]["stream_status"]["status"] for m in lines
            if m["type"] == "TRACE" and m["trace"]["type"] == "STREAM_STATUS"
            and m["trace"]["stream_status"]["status"] in ("COMPLETE", "INCOMPLETE")}
    assert ends.pop("orders") == ends.pop("order_products") == "INCOMPLETE"
    assert set(ends.values()) == {"COMPLETE"} and "customers" in ends and "products" in ends
    states = {m["state"]["stream"]["stream_descriptor"]["name"] for m in lines
              if m["type"] == "STATE"}
    assert {"customers", "products", "categories"} <= states
    assert code == 2  # the read still fails: the lost scope is for someone to fix
    error = [m for m in lines if m["type"] == "TRACE" and m["trace"]["type"] == "ERROR"][-1]
    assert "store_v2_orders" in error["trace"]["error"]["message"]

    seed = page_config(tmp_path, store, brevo, no_orders)
    result = run_cli("runner", "sync", "--config", str(seed))
    assert result.returncode == 2  # documented: a stream that failed fails the run
    assert "store_v2_orders" in result.stderr.decode()
    assert len(brevo.state()["contacts"]) == 30 and brevo.state()["products"]
    report = json.loads(run_cli("runner", "status", "--config", str(seed), "--json").stdout)
    streams = report["connectors"]["bigcommerce"]["streams"]
    assert streams["customers"]["last_sync"] and streams["products"]["last_sync"]
    assert streams["orders"]["last_sync"] is None
    assert "store_v2_orders" in report["connectors"]["bigcommerce"]["last_error"]


@pytest.mark.e2e
def test_one_tajo_yaml_for_register_list_and_serve_with_the_sync_switches(
        make_sandbox, brevo: BrevoBox, tmp_path: Path) -> None:
    store = make_sandbox("--customers", "8", "--orders", "4", "--products", "3",
                         "--plan", "enterprise", "--seed", "9")
    config = page_config(tmp_path, store, brevo, store.access_token)  # inventory: false
    receiver = start_receiver(config, "--forward", str(config))
    try:
        # serve took the page's file: its spool is under state_dir, and it forwards.
        spool = tmp_path / "state" / "bigcommerce.spool.db"
        assert spool.exists()
        deadline = time.monotonic() + 60
        while len(brevo.state()["contacts"]) < 8 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(brevo.state()["contacts"]) == 8
        assert "/v3/inventory/items" not in store.admin("GET", "stats")["by_path"]

        register = run_cli("runner", "webhooks", "register", "--config", str(config),
                           "--url", receiver.endpoint)
        assert register.returncode == 0, register.stderr.decode()
        warned = register.stderr.decode()
        assert "store/cart/abandoned but not store/cart/converted" in warned
        assert "cart_converted" in warned  # what to add
        secret_file = tmp_path / "state" / "webhook_secret"
        assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
        secret = secret_file.read_text().strip()
        hooks = store.admin("GET", "hooks")["hooks"]
        assert len(hooks) == 10 and all(
            h["headers"] == {"X-Tajo-Webhook-Secret": secret} for h in hooks)
        assert secret not in register.stdout.decode() + warned

        listed = run_cli("runner", "webhooks", "list", "--config", str(config))
        assert listed.returncode == 0, listed.stderr.decode()
        assert "10 of 100 hooks" in listed.stdout.decode()

        # The receiver takes the deliveries the registered hooks send (the same secret).
        people = customers(store)
        cart = store.admin("POST", "carts", {"create": 1, "customer_id": people[0]["id"]})
        deadline = time.monotonic() + 30
        while store.admin("GET", "hooks")["stats"].get("delivered", 0) < 1:
            assert time.monotonic() < deadline, store.admin("GET", "hooks")["stats"]
            time.sleep(0.1)
        assert cart["created"]

        # With the cart hooks (and converted) registered, check no longer flags them.
        fixed = page_config(tmp_path, store, brevo, store.access_token, webhooks=(
            '  - scope: "store/cart/converted"\n    destination: "cart_converted"\n'))
        again = run_cli("runner", "webhooks", "register", "--config", str(fixed),
                        "--url", receiver.endpoint)
        assert again.returncode == 0 and "converted" not in again.stderr.decode()
        check = run_cli("runner", "check", "--config", str(fixed)).stdout.decode()
        assert "warning" not in check, check
    finally:
        receiver.stop()


def test_sync_and_check_validate_the_webhooks_table(tmp_path: Path) -> None:
    yaml = f"""\
connectors:
  bigcommerce:
    store_hash: "abc123"
    access_token: "not-used-here"
    lists: {{all_customers: 40, buyers: 41, abandoned_cart: 42}}
webhooks:
  - scope: "store/cart/abandonned"
    destination: "cart_abandoned"
brevo:
  api_key: "xkeysib-not-used-here"
state_dir: "{tmp_path / 'state'}"
"""
    path = tmp_path / "tajo.yaml"
    path.write_text(yaml)
    with pytest.raises(ConfigError, match=r"webhooks\[0\]\.scope: unknown scope "
                                          r"'store/cart/abandonned'; valid: "):
        sync.load(path)
    for command in ("sync", "check"):
        result = run_cli("runner", command, "--config", str(path))
        assert result.returncode == 2
        assert "unknown scope 'store/cart/abandonned'" in result.stderr.decode()


def test_table_advice_names_what_to_add() -> None:
    page = ["store/customer/created", "store/cart/created", "store/cart/updated",
            "store/cart/abandoned"]
    [advice] = bigcommerce.webhook_advice(page, {"carts", "customers"})
    assert "store/cart/converted" in advice and "cart_converted" in advice
    assert bigcommerce.webhook_advice([*page, "store/cart/converted"], {"carts"}) == []
    assert bigcommerce.webhook_advice(page, {"customers"}) == []  # carts: false
    [none] = bigcommerce.webhook_advice(["store/customer/created"], {"carts"})
    assert "no store/cart/ scope" in none


@pytest.mark.e2e
def test_check_does_not_count_a_store_full_of_other_apps_hooks_as_empty(
        make_sandbox, brevo: BrevoBox, tmp_path: Path) -> None:
    store = make_sandbox("--customers", "3", "--orders", "2", "--products", "2")
    other = store.admin("POST", "tokens", {"scopes": PAGE_SCOPES, "client_id": "other-app"})[
        "access_token"]
    scopes = ["store/customer/created", "store/customer/updated", "store/customer/deleted",
              "store/order/created", "store/order/updated", "store/order/archived",
              "store/order/statusUpdated", "store/product/created", "store/product/updated",
              "store/product/deleted"]
    for n in range(95):  # another app holds 95 of the store's 100
        requests.post(f"{store.url}/stores/{store.store_hash}/v3/hooks",
                      json={"scope": scopes[n // 10],
                            "destination": f"https://other{n % 10}.example.com/h"},
                      headers={"X-Auth-Token": other}, timeout=10).raise_for_status()
    config = page_config(tmp_path, store, brevo, store.access_token)
    check = run_cli("runner", "check", "--config", str(config)).stdout.decode()
    assert "0 of 100" not in check  # before: "0 of 100 hooks", as if the store were empty
    assert ("0 hooks of this API account, 0 active; the store's limit of 100 counts other "
            "apps' hooks too, which this API account cannot list") in check
    register = run_cli("runner", "webhooks", "register", "--config", str(config),
                       "--url", "http://127.0.0.1:9/webhooks/bigcommerce")
    assert register.returncode == 2
    assert "webhook limit" in register.stderr.decode()
