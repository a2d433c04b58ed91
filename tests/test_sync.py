"""``runner sync``, ``runner status`` and ``runner check`` with a config in the seed's layout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import BrevoBox, Sandbox, run_cli

from app.sync_cli import Progress

pytestmark = pytest.mark.e2e

# The seed document's example, as written there, plus the Brevo key and (for the sandboxes)
# the API URLs.
SEED_YAML = """\
connectors:
  bigcommerce:
    enabled: true
    store_hash: "{store_hash}"
    access_token: "${{BC_ACCESS_TOKEN}}"
    client_id: "your-client-id"
    api_url: "{bc_url}"
    # Data sync options
    sync:
      customers: true
      orders: true
      products: true
      carts: true
      inventory: {inventory}
    # Brevo list assignment
    lists:
      all_customers: 40
      buyers: 41
      abandoned_cart: 42

customer_mapping:
  email: email
  first_name: FIRSTNAME
  last_name: LASTNAME
  phone: SMS
  company: COMPANY
  # Address fields
  addresses[0].city: CITY
  addresses[0].state: STATE
  addresses[0].country: COUNTRY
  addresses[0].zip: ZIP
  # E-commerce metrics
  orders_count: ORDER_COUNT
  total_spent: TOTAL_SPENT
  date_created: SIGNUP_DATE
  # Customer group
  customer_group_id: CUSTOMER_GROUP

webhooks:
  - scope: "store/customer/created"
    destination: "customer_created"
  - scope: "store/customer/updated"
    destination: "customer_updated"
  - scope: "store/order/created"
    destination: "order_placed"
  - scope: "store/order/updated"
    destination: "order_updated"
  - scope: "store/order/statusUpdated"
    destination: "order_status_changed"
  - scope: "store/cart/created"
    destination: "cart_created"
  - scope: "store/cart/updated"
    destination: "cart_updated"
  - scope: "store/cart/abandoned"
    destination: "cart_abandoned"
  - scope: "store/inventory/updated"
    destination: "inventory_changed"

brevo:
  api_key: ${{BREVO_API_KEY}}
  api_url: "{brevo_url}"

state_dir: "{state_dir}"
"""


def seed_config(tmp_path: Path, store: Sandbox, brevo: BrevoBox, inventory: str = "false",
                extra: str = "") -> tuple[Path, dict[str, str]]:
    path = tmp_path / "tajo.yaml"
    path.write_text(SEED_YAML.format(store_hash=store.store_hash, bc_url=store.url,
                                     brevo_url=brevo.url, inventory=inventory,
                                     state_dir=tmp_path / "state") + extra)
    return path, {"BC_ACCESS_TOKEN": store.access_token, "BREVO_API_KEY": brevo.key}


def test_a_seed_style_config_syncs_and_status_tells_the_truth(
        make_sandbox, brevo: BrevoBox, tmp_path: Path) -> None:
    store = make_sandbox("--customers", "60", "--orders", "90", "--products", "12",
                         "--plan", "enterprise", "--seed", "5")
    config, env = seed_config(tmp_path, store, brevo)
    first = run_cli("runner", "--json-logs", "sync", "--config", str(config), env=env)
    assert first.returncode == 0, first.stderr.decode()
    assert "synced" in first.stdout.decode()
    logs = [json.loads(line) for line in first.stderr.decode().splitlines()]  # piped: no bars
    assert logs and all({"time", "level", "logger", "message"} <= set(line) for line in logs)
    paths = store.admin("GET", "stats")["by_path"]
    assert "/v3/inventory/items" not in paths  # inventory: false
    assert paths["/v3/customers"] >= 1 and paths["/v2/orders"] >= 1

    status = run_cli("runner", "status", "--config", str(config), "--json", env=env)
    assert status.returncode == 0, status.stderr.decode()
    report = json.loads(status.stdout)
    held = brevo.state()
    members = {name: sum(1 for c in held["contacts"] if list_id in c["listIds"])
               for name, list_id in {"all_customers": 40, "buyers": 41,
                                     "abandoned_cart": 42}.items()}
    assert report["connected"] is True
    assert report["brevo"]["contacts"] == len(held["contacts"]) == 60
    assert report["brevo"]["products"] == len(held["products"]) > 0
    assert report["brevo"]["orders"] == len(held["orders"]) == 90
    assert report["brevo"]["lists"] == members
    source = report["connectors"]["bigcommerce"]
    assert source["last_run"]["status"] == "succeeded" and source["last_error"] is None
    assert source["last_run"]["records"] > 60 + 90
    assert all(s["last_sync"] for s in source["streams"].values())
    assert "inventory" not in source["streams"]
    assert report["dead_letters"] == {}

    # The second run resumes: only what changed comes, and Brevo follows.
    changed = store.admin("POST", "mutate", {"resource": "customers", "update": 3, "seed": 2})
    second = run_cli("runner", "sync", "--config", str(config), env=env)
    assert second.returncode == 0, second.stderr.decode()
    again = json.loads(run_cli("runner", "status", "--config", str(config), "--json",
                               env=env).stdout)
    records = again["connectors"]["bigcommerce"]["last_run"]["records"]
    assert len(changed["updated"]) <= records < 60
    text = run_cli("runner", "status", "--config", str(config), env=env).stdout.decode()
    assert "connected: yes" in text and "contacts 60, orders 90" in text


def test_unknown_keys_and_bad_values_are_named(make_sandbox, brevo: BrevoBox,
                                               tmp_path: Path) -> None:
    store = make_sandbox("--customers", "5", "--orders", "5", "--products", "5")
    config, env = seed_config(tmp_path, store, brevo)
    config.write_text(config.read_text().replace("    sync:\n", "    sycn:\n"))
    result = run_cli("runner", "sync", "--config", str(config), env=env)
    assert result.returncode == 2
    message = result.stderr.decode()
    assert "unknown field 'sycn' in 'connectors.bigcommerce'" in message
    assert "valid: api_url, channel_ids" in message and "sync" in message
    assert "store_setup" in message  # where the seed's store_hash and access_token go
    config.write_text(config.read_text().replace("sycn:", "sync:").replace(
        "inventory: false", "inventory: nope"))
    result = run_cli("runner", "sync", "--config", str(config), env=env)
    assert result.returncode == 2
    assert "'connectors.bigcommerce.sync.inventory' must be of type boolean" in \
        result.stderr.decode()
    missing = run_cli("runner", "sync", "--config", str(config),
                      env={"BC_ACCESS_TOKEN": "", "BREVO_API_KEY": ""})
    assert missing.returncode == 2


def test_check_prints_the_fix_for_each_side(make_sandbox, brevo: BrevoBox,
                                            tmp_path: Path) -> None:
    store = make_sandbox("--customers", "5", "--orders", "5", "--products", "5")
    config, env = seed_config(tmp_path, store, brevo)
    good = run_cli("runner", "check", "--config", str(config), env=env)
    assert good.returncode == 0, good.stdout.decode() + good.stderr.decode()
    lines = good.stdout.decode().splitlines()
    assert lines[:3] == [
        "brevo: OK", "bigcommerce: OK",
        f"bigcommerce webhooks ({store.store_hash}): 0 hooks of this API account, 0 active; "
        "the store's limit of 100 counts other apps' hooks too, which this API account cannot "
        "list"]
    # Warnings (the seed's table lacks store/cart/converted; no cart hook is registered) do
    # not fail the check: the sync runs without what they name.
    assert [line.split(":")[0] for line in lines[3:]] == ["bigcommerce warning"] * 2
    assert "store/cart/converted" in lines[3] and "no cart webhook" in lines[4]
    store.fill_scope("store/cart/abandoned")  # another app's hooks fill the scope
    full = run_cli("runner", "check", "--config", str(config), env=env)
    assert full.returncode == 1
    assert ("the store has reached its webhook limit (10 of 100 hooks; at 10: "
            "store/cart/abandoned); list them with `runner webhooks list`") in \
        full.stdout.decode()
    no_orders = store.admin("POST", "tokens", {"scopes": ["store_v2_customers_read_only",
                                                          "store_v2_products_read_only",
                                                          "store_v2_information_read_only",
                                                          "store_cart"]})["access_token"]
    bad = run_cli("runner", "check", "--config", str(config),
                  env={"BC_ACCESS_TOKEN": no_orders, "BREVO_API_KEY": "xkeysib-not-a-key"})
    assert bad.returncode == 1
    lines = bad.stdout.decode().splitlines()
    assert lines[0].startswith("brevo: Brevo rejected the API key (HTTP 401")
    assert "create a new API key" in lines[0]
    assert "lacks the OAuth scope store_v2_orders" in lines[1]
    assert no_orders not in bad.stdout.decode() + bad.stderr.decode()


def test_dry_run_says_what_would_change_and_writes_nothing(make_sandbox, brevo: BrevoBox,
                                                           tmp_path: Path) -> None:
    store = make_sandbox("--customers", "25", "--orders", "30", "--products", "5",
                         "--plan", "enterprise")
    config, env = seed_config(tmp_path, store, brevo)
    dry = run_cli("runner", "sync", "--config", str(config), "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr.decode()
    out = dry.stdout.decode()
    assert "dry run: would send 25 contacts (25 new, 0 updated)" in out
    assert "30 orders" in out and "nothing was written" in out
    held = brevo.state()
    assert held["contacts"] == [] and held["orders"] == [] and held["products"] == []
    # Nothing was kept either: the real run afterwards sends everything.
    real = run_cli("runner", "sync", "--config", str(config), env=env)
    assert real.returncode == 0, real.stderr.decode()
    assert len(brevo.state()["contacts"]) == 25


def test_a_failed_sync_is_reported_by_status(make_sandbox, brevo: BrevoBox,
                                             tmp_path: Path) -> None:
    store = make_sandbox("--customers", "5", "--orders", "5", "--products", "5")
    config, env = seed_config(tmp_path, store, brevo)
    config.write_text(config.read_text().replace("buyers: 41", "buyers: 77"))
    failed = run_cli("runner", "sync", "--config", str(config), env=env)
    assert failed.returncode != 0
    report = json.loads(run_cli("runner", "status", "--config", str(config), "--json",
                                env=env).stdout)
    source: dict[str, Any] = report["connectors"]["bigcommerce"]
    assert source["last_run"]["status"] == "failed"
    assert "77" in source["last_error"]


def test_the_sandbox_demo_syncs_both_platforms_into_one_brevo(tmp_path: Path) -> None:
    # (The BigCommerce-only demo, the default, is README's quick start: CI runs it as is.)
    result = run_cli("runner", "sync", "--sandbox", "--platform", "both", timeout=300)
    assert result.returncode == 0, result.stderr.decode()
    out = result.stdout.decode()
    assert "synced " in out and " from bigcommerce, shopify in " in out
    assert "connected: yes" in out
    assert "bigcommerce: connected" in out and "shopify: connected" in out
    # 500 customers and 800 orders in each store, none of them the same shopper or order.
    assert "contacts 1000, orders 1600" in out
    assert "dead letters: none" in out


def test_progress_bars_follow_records_estimates_and_rate_limit_waits(
        capsys: pytest.CaptureFixture[str]) -> None:
    progress = Progress(enabled=True)
    progress({"type": "TRACE", "trace": {"type": "ESTIMATE", "estimate": {
        "name": "customers", "type": "STREAM", "row_estimate": 4}}})
    for _ in range(3):
        progress({"type": "RECORD", "record": {"stream": "customers", "data": {}}})
    progress({"type": "TRACE", "trace": {"type": "STREAM_STATUS", "stream_status": {
        "stream_descriptor": {"name": "customers"}, "status": "RUNNING",
        "reasons": [{"type": "RATE_LIMITED", "rate_limited": {"quota_reset": 1}}]}}})
    bar = progress.bars["customers"]
    assert (bar.n, bar.total) == (3, 4)
    assert progress.waits == {"customers": 1}
    progress.close()
    assert "3/4" in capsys.readouterr().err
    quiet = Progress(enabled=False)
    quiet({"type": "RECORD", "record": {"stream": "customers", "data": {}}})
    assert quiet.bars == {}


def test_the_shared_webhooks_table_applies_to_connectors_without_their_own(
        tmp_path: Path) -> None:
    """The product page's top-level ``webhooks`` table is written for one platform: with a
    second connector it is that connector's only if every scope is one it knows; a table of
    the connector's own takes its place."""
    from app import sync
    from framework.errors import ConfigError

    lists = {"all_customers": 40, "buyers": 41, "abandoned_cart": 42}
    config: dict[str, Any] = {
        "connectors": {
            "bigcommerce": {"store_hash": "abc123", "access_token": "t" * 20, "lists": lists},
            "shopify": {"shop": "demo-shop", "access_token": "shpat_" + "0" * 32,
                        "client_secret": "s" * 32, "lists": lists}},
        "brevo": {"api_key": "xkeysib-" + "0" * 64},
        "webhooks": [{"scope": "store/customer/updated", "destination": "customer_updated"}],
        "state_dir": str(tmp_path / "state")}
    path = tmp_path / "tajo.json"
    path.write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=r"give connectors\.shopify a webhooks table of its"):
        sync.load(path)
    config["connectors"]["shopify"]["webhooks"] = [{"scope": "customers/update"}]
    path.write_text(json.dumps(config))
    jobs = {job.name: job for job in sync.load(path)}
    assert jobs["bigcommerce"].source_config["webhooks"] == config["webhooks"]
    assert [row["scope"] for row in jobs["shopify"].source_config["webhooks"]] == \
        ["customers/update"]
