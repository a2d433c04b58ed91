"""Webhooks: subscriptions, the receiver's verification, the spool as a change feed."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
import requests
from conftest import Sandbox, messages, run_cli
from webhook_kit import HEADER, SECRET, Poster, payload, spool_key, start_receiver

from connectors.bigcommerce import connector as bigcommerce
from framework.engine.reader import _fetch_batch
from framework.errors import ConfigError
from framework.webhooks.receiver import Refused, SpoolWriter, Verifier, sign
from framework.webhooks.spool import MAX_INTEGER_ID, Event, Spool, check_id
from framework.webhooks.subscriptions import (
    check_destination,
    declared,
    plan,
    secret_of,
    secrets_of,
    subscriptions,
)

CLIENT_SECRET = "test-client-secret-abcdef"
SEED_SCOPES = {"store/customer/created", "store/customer/updated", "store/order/created",
               "store/order/updated", "store/order/statusUpdated", "store/cart/created",
               "store/cart/updated", "store/cart/abandoned", "store/cart/converted",
               "store/product/inventory/updated", "store/sku/inventory/updated"}


def hooks_of(store: Sandbox) -> list[dict[str, Any]]:
    return store.admin("GET", "hooks")["hooks"]


def source_config(store: Sandbox, tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return store.config(spool_path=str(tmp_path / "spool.db"), webhook_secret=SECRET, **extra)


# --- what the config asks for ----------------------------------------------------------------

def test_the_seed_table_subscribes_to_real_scopes_only() -> None:
    scopes = subscriptions(bigcommerce, {})
    assert set(scopes) == SEED_SCOPES  # store/inventory/updated became the two real scopes
    assert "store/inventory/updated" not in scopes


@pytest.mark.parametrize(("row", "error"), [
    ({"scope": "store/customer/signedUp"}, "webhooks[0].scope: unknown scope "
                                           "'store/customer/signedUp'; valid: store/customer/"),
    ({"scope": "store/order/created", "destination": "order_created"},
     "webhooks[0].destination: store/order/created is sent to Brevo as 'order_placed', not "
     "'order_created'; write destination: order_placed"),
])
def test_a_wrong_webhooks_table_is_a_clear_error(row: dict[str, str], error: str) -> None:
    """The app checks the event a row names (app.events); the framework, the scope."""
    from app.events import subscribed

    with pytest.raises(ConfigError) as caught:
        subscribed(bigcommerce, {"webhooks": [row]})
    assert error in caught.value.message


@pytest.mark.parametrize(("url", "error"), [
    ("https://hooks.example.com/webhooks/bigcommerce", None),
    ("http://127.0.0.1:8080/webhooks/bigcommerce", None),
    ("https://hooks.example.com:8443/x", "port 443 only"),
    ("http://hooks.example.com/x", "must be https:// URLs"),
    ("ftp://hooks.example.com/x", "must be https:// URLs"),
])
def test_destinations_follow_bigcommerce_rules(url: str, error: str | None) -> None:
    if error is None:
        assert check_destination(url, declared(bigcommerce)) == url
    else:
        with pytest.raises(ConfigError, match=error):
            check_destination(url, declared(bigcommerce))


def test_the_plan_touches_only_our_hooks() -> None:
    spec = declared(bigcommerce)
    url = "https://hooks.example.com/webhooks/bigcommerce"
    ours = {HEADER: SECRET}
    existing = [
        {"id": 1, "scope": "store/order/created", "destination": url, "is_active": True,
         "headers": ours},
        {"id": 2, "scope": "store/order/updated", "destination": url, "is_active": False,
         "headers": ours},
        {"id": 3, "scope": "store/cart/created", "destination": "https://old.example.com/h",
         "is_active": True, "headers": ours},
        {"id": 4, "scope": "store/cart/created", "destination": url, "is_active": True,
         "headers": {HEADER: "rotated-away-secret"}},
        {"id": 5, "scope": "store/product/updated", "destination": url, "is_active": True,
         "headers": ours},
        {"id": 6, "scope": "store/order/created", "destination": "https://other-app.example",
         "is_active": True, "headers": {"X-Other": "x"}},
    ]
    wanted = ["store/order/created", "store/order/updated", "store/cart/created",
              "store/cart/abandoned"]
    actions = {(action, scope, hook["id"] if hook else None)
               for action, scope, hook in plan(existing, wanted, url, spec, SECRET)}
    assert actions == {
        ("unchanged", "store/order/created", 1),
        ("reactivated", "store/order/updated", 2),
        ("updated", "store/cart/created", 4),  # right destination kept; secret brought up to date
        ("removed", "store/cart/created", 3),  # a second hook of ours for the scope
        ("created", "store/cart/abandoned", None),
        ("removed", "store/product/updated", 5),  # no longer configured
    }  # hook 6 belongs to another app: untouched


# --- registering against the sandbox -----------------------------------------------------------

@pytest.mark.e2e
def test_register_is_idempotent_and_keeps_the_store_in_line(make_sandbox, write_json,
                                                          tmp_path: Path) -> None:
    store = make_sandbox("--customers", "5", "--orders", "5", "--products", "5")
    url = "http://127.0.0.1:9/webhooks/bigcommerce"
    config = write_json(source_config(store, tmp_path))
    first = run_cli("runner", "webhooks", "register", "--config", str(config), "--url", url,
                    "--json")
    assert first.returncode == 0, first.stderr.decode()
    rows = messages(first.stdout)
    assert {r["action"] for r in rows} == {"created"} and len(rows) == len(SEED_SCOPES)
    assert "store/inventory/updated is not a BigCommerce scope" in first.stderr.decode()
    hooks = hooks_of(store)
    assert {h["scope"] for h in hooks} == SEED_SCOPES
    assert all(h["headers"] == {HEADER: SECRET} and h["destination"] == url for h in hooks)

    again = run_cli("runner", "webhooks", "register", "--config", str(config), "--url", url,
                    "--json")
    assert {r["action"] for r in messages(again.stdout)} == {"unchanged"}
    assert len(hooks_of(store)) == len(SEED_SCOPES)

    # BigCommerce deactivated one (its deliveries kept failing); the scope table shrinks.
    hook = next(h for h in hooks if h["scope"] == "store/cart/created")
    requests.put(f"{store.url}/stores/{store.store_hash}/v3/hooks/{hook['id']}",
                 json={"is_active": False}, headers={"X-Auth-Token": store.access_token},
                 timeout=10).raise_for_status()
    table = [{"scope": s} for s in ("store/cart/created", "store/cart/abandoned")]
    config = write_json(source_config(store, tmp_path, webhooks=table))
    third = run_cli("runner", "webhooks", "register", "--config", str(config), "--url", url,
                    "--json")
    actions = {r["scope"]: r["action"] for r in messages(third.stdout)}
    assert actions["store/cart/created"] == "reactivated"
    assert actions["store/cart/abandoned"] == "unchanged"
    assert actions["store/order/created"] == "removed"
    assert {(h["scope"], h["is_active"]) for h in hooks_of(store)} == {
        ("store/cart/created", True), ("store/cart/abandoned", True)}

    listed = run_cli("runner", "webhooks", "list", "--config", str(config))
    assert listed.returncode == 0
    text = listed.stdout.decode()
    assert "store/cart/abandoned" in text and "2 of 100 hooks" in text
    assert SECRET not in text + listed.stderr.decode()


@pytest.mark.e2e
def test_register_refuses_what_bigcommerce_would(make_sandbox, write_json,
                                                 tmp_path: Path) -> None:
    store = make_sandbox("--customers", "5", "--orders", "5", "--products", "5")
    config = write_json(source_config(store, tmp_path))
    bad_port = run_cli("runner", "webhooks", "register", "--config", str(config), "--url",
                       "https://hooks.example.com:8443/webhooks/bigcommerce")
    assert bad_port.returncode == 2
    assert "port 443 only" in bad_port.stderr.decode()
    no_secret = write_json(store.config())
    missing = run_cli("runner", "webhooks", "register", "--config", str(no_secret), "--url",
                      "https://hooks.example.com/webhooks/bigcommerce")
    assert missing.returncode == 2
    assert "webhook_secret is not set" in missing.stderr.decode()
    # Ten hooks of another app's making fill the abandoned-cart scope: nothing is created.
    store.fill_scope("store/cart/abandoned")  # another app's hooks fill the scope
    full = run_cli("runner", "webhooks", "register", "--config", str(config), "--url",
                   "https://hooks.example.com/webhooks/bigcommerce")
    assert full.returncode == 2
    assert "webhook limit (10 hooks for store/cart/abandoned)" in full.stderr.decode()
    assert len(hooks_of(store)) == 10


# --- receiving --------------------------------------------------------------------------------

@pytest.mark.e2e
def test_the_receiver_stores_only_verified_well_formed_events(make_sandbox, write_json,
                                                              tmp_path: Path) -> None:
    store = make_sandbox("--customers", "5", "--orders", "5", "--products", "5")
    config = write_json(source_config(store, tmp_path, client_secret=CLIENT_SECRET))
    receiver = start_receiver(config, "--max-body", "4096")
    poster = Poster(receiver.endpoint)
    try:
        good = payload(store.store_hash, "store/customer/updated", {"type": "customer", "id": 3})
        body = orjson.dumps(good)
        secret = {HEADER: SECRET}
        assert poster.post(body, secret) == (200, b'{"status":"stored"}')
        assert poster.post(body, secret) == (200, b'{"status":"duplicate"}')  # re-delivered

        signed = payload(store.store_hash, "store/order/created", {"type": "order", "id": 4})
        raw = orjson.dumps(signed)
        stamp = int(time.time())
        standard = {"webhook-id": "msg_1", "webhook-timestamp": str(stamp),
                    "webhook-signature": sign(CLIENT_SECRET.encode(), "msg_1", stamp, raw)}
        assert poster.post(raw, standard)[0] == 200

        def refused(body: bytes, headers: dict[str, str], status: int, reason: str) -> None:
            got, answer = poster.post(body, headers)
            assert got == status, (got, answer)
            assert reason in json.loads(answer)["error"]

        other = orjson.dumps(payload(store.store_hash, "store/customer/created",
                                     {"type": "customer", "id": 9}))
        refused(other, {}, 401, "no valid secret header or signature")
        refused(other, {HEADER: SECRET[:-1] + "x"}, 401, "no valid secret header")
        refused(other, {**standard, "webhook-signature": sign(b"forged", "msg_1", stamp, other)},
                401, "no valid secret header")
        old = stamp - 3600
        refused(other, {"webhook-id": "m", "webhook-timestamp": str(old),
                        "webhook-signature": sign(CLIENT_SECRET.encode(), "m", old, other)},
                401, "no valid secret header")
        wrong_store = {**json.loads(other), "producer": "stores/someoneelse"}
        refused(orjson.dumps(wrong_store), secret, 401, "is not a configured store")
        # The seed's check (store_id == store hash) is not what identifies the store.
        seed_style = {**json.loads(other), "store_id": store.store_hash,
                      "producer": "stores/someoneelse"}
        refused(orjson.dumps(seed_style), secret, 401, "is not a configured store")
        refused(b"x" * 5000, secret, 413, "over 4096 bytes")
        refused(b"{not json", secret, 400, "not JSON")
        refused(b"[1, 2]", secret, 400, "not a JSON object")
        missing = {k: v for k, v in json.loads(other).items() if k != "hash"}
        refused(orjson.dumps(missing), secret, 400, "field 'hash' is missing")
        unknown = payload(store.store_hash, "store/product/updated", {"type": "product", "id": 1})
        refused(orjson.dumps(unknown), secret, 400, "is not subscribed")
        no_id = payload(store.store_hash, "store/cart/abandoned", {"type": "cart"})
        refused(orjson.dumps(no_id), secret, 400, "has no resource id")
        replay = payload(store.store_hash, "store/customer/created", {"type": "customer", "id": 9},
                         created_at=int(time.time()) - 5 * 24 * 3600)
        refused(orjson.dumps(replay), secret, 400, "a replay")
    finally:
        poster.close()
        log = receiver.stop()
    spool = Spool(tmp_path / "spool.db")
    assert spool.count() == 2
    assert spool.keys() == {spool_key(good), spool_key(signed)}
    assert list(spool.ids(store.store_hash, "customer")) == [(1, "3", "store/customer/updated")]
    assert log.count("refused a webhook") == 13
    assert SECRET not in log and CLIENT_SECRET not in log


# --- secrets ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("given", "kept"), [
    (f"  {SECRET}\n", SECRET), (f"\t{SECRET}\r\n", SECRET), (SECRET, SECRET)])
def test_whitespace_around_a_webhook_secret_is_dropped(given: str, kept: str) -> None:
    """A header value cannot start or end with whitespace: a padded secret would register
    and then never match a delivery."""
    assert secret_of({"webhook_secret": given}) == kept


@pytest.mark.parametrize(("given", "error"), [
    ("short-secret", "has 12 characters"),
    ("hook secret 0123456789", "with whitespace inside"),
    ("hook-secret-0123456789\x07", "with control characters"),
    ("hook-secret-0123456789é", "not all ASCII"),
    ("   \n", "is not set"),
])
def test_a_webhook_secret_no_header_can_carry_is_refused(given: str, error: str) -> None:
    with pytest.raises(ConfigError) as caught:
        secrets_of(bigcommerce, {"webhook_secret": given, "store_hash": "abc123"})
    message = caught.value.message
    assert error in message and "for store abc123" in message and "\n" not in message
    assert not given.strip() or given.strip() not in message


@pytest.mark.parametrize(("given", "error"), [
    ("", "client_secret is not set for shop acme"),
    ("short-secret", "client_secret for shop acme must be at least 16"),
])
def test_the_secret_error_names_the_field_the_connector_verifies_with(given: str,
                                                                      error: str) -> None:
    """Shopify verifies deliveries with the app's client_secret (its spec's
    ``client.config.webhook_secret``): the error names that field, not webhook_secret, and
    does not tell to make one up (the platform issued it)."""
    from connectors.shopify import connector as shopify

    with pytest.raises(ConfigError) as caught:
        secrets_of(shopify, {"shop": "acme", "access_token": "shpat_x", "client_secret": given})
    message = caught.value.message
    assert error in message and "webhook_secret" not in message
    assert "token_urlsafe" not in message


def test_each_store_is_verified_against_its_own_secret() -> None:
    """Issue 15: one shared secret spoke for every store. A store with its own secret takes
    deliveries carrying that secret only; the others, the shared one."""
    spec = declared(bigcommerce)
    own, shared = "store-a-secret-0123456789", SECRET
    check = Verifier(spec, {"stores/aaa": "aaa", "stores/bbb": "bbb"}, list(spec.scopes),
                     {"aaa": own, "bbb": shared})

    def deliver(store: str, secret: str) -> str:
        body = orjson.dumps(payload(store, "store/customer/updated", {"type": "customer",
                                                                       "id": 3}))
        allowed = check.authentic({HEADER.lower(): secret}, body)
        if allowed is None:
            return "no valid secret"
        try:
            return check.event(body, allowed).account
        except Refused as exc:
            return exc.reason

    assert deliver("aaa", own) == "aaa"
    assert deliver("bbb", shared) == "bbb"
    assert deliver("aaa", shared) == "the secret sent is not store aaa's webhook secret"
    assert deliver("bbb", own) == "the secret sent is not store bbb's webhook secret"
    assert deliver("aaa", "forged-secret-0123456789") == "no valid secret"


@pytest.mark.e2e
def test_per_store_secrets_are_registered_and_received(make_sandbox, write_json,
                                                       tmp_path: Path) -> None:
    """Two stores, one with its own secret, the shared one padded as a file-mounted secret
    is: each store's hooks send its secret, and the receiver takes each store's deliveries
    with its secret only."""
    box = make_sandbox("--stores", "2", "--customers", "3")
    first, second = box.stores
    own = "store-one-secret-0123456789"
    config = write_json({"api_url": box.url, "spool_path": str(tmp_path / "spool.db"),
                         "webhook_secret": f"  {SECRET}\n",
                         "stores": [{**first, "webhook_secret": own}, second]})
    receiver = start_receiver(config)
    poster = Poster(receiver.endpoint)
    try:
        registered = run_cli("runner", "webhooks", "register", "--config", str(config),
                             "--url", receiver.endpoint)
        assert registered.returncode == 0, registered.stderr.decode()
        for store, secret in ((first, own), (second, SECRET)):
            hooks = requests.get(f"{box.url}/stores/{store['store_hash']}/v3/hooks",
                                 headers={"X-Auth-Token": store["access_token"]},
                                 timeout=10).json()["data"]
            assert hooks and all(h["headers"] == {HEADER: secret} for h in hooks)

        def post(store: dict[str, str], secret: str, customer: int) -> int:
            body = payload(store["store_hash"], "store/customer/updated",
                           {"type": "customer", "id": customer})
            return poster.post(orjson.dumps(body), {HEADER: secret})[0]
        assert post(first, own, 1) == 200 and post(second, SECRET, 2) == 200
        assert post(first, SECRET, 3) == 401 and post(second, own, 4) == 401
        # A delivery the sandbox makes after registering (the padded secret, stripped).
        box.admin("POST", "mutate", {"resource": "customers", "update": 1, "seed": 5})
        spool = Spool(tmp_path / "spool.db")
        deadline = time.monotonic() + 20
        while spool.count() < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert spool.count() == 3
    finally:
        poster.close()
        log = receiver.stop()
    assert "the secret sent is not store" in log
    assert SECRET not in log and own not in log


def test_keep_days_shorter_than_the_delivery_window_is_refused(write_json) -> None:
    """Issue 15: --keep-days 0 deleted events already acknowledged."""
    config = write_json({"store_hash": "abc123", "access_token": "token-0123456789",
                         "webhook_secret": SECRET, "spool_path": "spool.db"})
    for days in ("0", "2.5", "-1", "nan"):
        result = run_cli("runner", "webhooks", "serve", "--config", str(config), "--port", "0",
                         "--keep-days", days, timeout=30)
        error = result.stderr.decode()
        assert result.returncode == 2, error
        assert "--keep-days" in error and "at least 3 days" in error


# --- resource ids ----------------------------------------------------------------------------
# The hostile ids of issue 15 ("²" passes str.isdigit(), 6,000 digits pass int() no more, a
# 64-bit overflow), as a number and as a string, for each kind of resource.

CART = "09346904-4175-44fd-be53-f7e598531b6c"
BAD_IDS = ["²", "9" * 6000, "18446744073709551616", 2**63, 2**64, 0, -4, "", " 7", "7 ",
           "1,2", True, 1.5, None, [3], {"id": 3}, str(MAX_INTEGER_ID + 1), "0x1F", "١٢"]


def verifier() -> Verifier:
    spec = declared(bigcommerce)
    return Verifier(spec, {"stores/abc123": "abc123"}, list(spec.scopes), {"abc123": SECRET})


@pytest.mark.parametrize("bad", BAD_IDS, ids=lambda v: repr(v)[:24])
@pytest.mark.parametrize(("scope", "where"), [
    ("store/customer/updated", "data.id"), ("store/order/created", "data.id"),
    ("store/product/updated", "data.id"), ("store/cart/abandoned", "data.id"),
    ("store/sku/inventory/updated", "data.inventory.product_id")])
def test_the_receiver_refuses_an_id_that_is_not_one(bad: Any, scope: str, where: str) -> None:
    data: dict[str, Any] = ({"type": "sku", "id": 5, "inventory": {"product_id": bad}}
                            if "inventory" in where else {"type": "x", "id": bad})
    body = json.dumps(payload("abc123", scope, data)).encode()
    with pytest.raises(Refused) as caught:
        verifier().event(body)
    assert caught.value.status == 400
    reason = caught.value.reason
    assert len(reason) < 200 and "\n" not in reason  # one line, never the 6,000 digits
    assert where in reason or "no resource id" in reason


@pytest.mark.parametrize(("scope", "data", "stored"), [
    ("store/customer/updated", {"type": "customer", "id": 3}, "3"),
    ("store/customer/updated", {"type": "customer", "id": "0042"}, "42"),
    ("store/order/created", {"type": "order", "id": MAX_INTEGER_ID}, str(MAX_INTEGER_ID)),
    ("store/cart/abandoned", {"type": "cart", "id": CART}, CART),
    ("store/sku/inventory/updated", {"type": "sku", "id": 461,
                                     "inventory": {"product_id": 167}}, "167"),
])
def test_the_receiver_takes_the_ids_bigcommerce_sends(scope: str, data: dict[str, Any],
                                                      stored: str) -> None:
    event = verifier().event(orjson.dumps(payload("abc123", scope, data)))
    assert event.resource_id == stored


def test_the_spec_gives_a_resource_one_kind_of_id() -> None:
    """The receiver checks an id by its scope's id_type, the reader by its stream's: a
    resource must have one, or the reader would dead-letter what the receiver took."""
    spec = declared(bigcommerce)
    by_scope = {scope.resource: scope.id_type for scope in spec.scopes.values()}
    by_stream = {s.live.resource: s.live.id_type for s in bigcommerce.loaded.streams.values()
                 if s.live}
    # storefront events come from the storefront endpoint, not from a webhook scope
    assert {r: t for r, t in by_stream.items() if r != "storefront_event"} == {
        r: t for r, t in by_scope.items() if r in by_stream}
    assert by_scope["cart"] == "uuid" and by_scope["customer"] == "integer"
    assert check_id(CART, "uuid") == CART and check_id("7", "integer") == "7"


@pytest.mark.e2e
def test_a_bad_spooled_event_is_dead_lettered_and_every_stream_goes_on(
        make_sandbox, write_json, tmp_path: Path) -> None:
    """Events spooled before the receiver checked ids: each bad one is dead-lettered once,
    counted, and the good events around it are read (the run succeeds)."""
    store = make_sandbox("--customers", "6", "--orders", "4", "--products", "3",
                         "--plan", "enterprise")
    spool = Spool(tmp_path / "spool.db")
    h = store.store_hash
    bad = ["²", "9" * 6000, "18446744073709551616", "12a"]
    for resource, scope in [("customer", "store/customer/updated"),
                            ("order", "store/order/updated"),
                            ("product", "store/product/updated"),
                            ("inventory", "store/sku/inventory/updated"),
                            ("cart", "store/cart/abandoned")]:
        good = CART if resource == "cart" else "2"
        spool.append(h, scope, resource, good, {})
        for value in bad:
            spool.append(h, scope, resource, value, {})
        spool.append(h, scope, resource, "3" if resource != "cart" else CART.upper(), {})
    time.sleep(1.1)  # spooled events are read once a second old (SETTLE_S)
    config = write_json(source_config(store, tmp_path, read_mode="webhooks"))
    result = run_cli("runner", "read", "bigcommerce", "--config", str(config))
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    read = messages(result.stdout)
    assert sorted(c["id"] for c in _records(read, "customers")) == [2, 3]
    assert sorted(o["id"] for o in _records(read, "orders")) == [2, 3]
    assert sorted(p["id"] for p in _records(read, "products")) == [2, 3]
    assert {i["identity"]["product_id"] for i in _records(read, "inventory")} == {2, 3}
    assert {c["id"] for c in _records(read, "carts")} == {CART, CART.upper()}
    letters = spool.dead_letters()
    assert len(letters) == 5 * 4
    assert {(d["resource"], d["resource_id"]) for d in letters} == {
        (r, v) for r in ("customer", "order", "product", "inventory", "cart") for v in bad}
    assert all(len(d["reason"]) < 200 for d in letters)
    logged = result.stderr.decode() + "".join(m["log"]["message"] for m in read
                                              if m["type"] == "LOG")
    assert logged.count("is dead-lettered") == 20 and "9" * 100 not in logged
    # Read again from the start: the same events are passed over, not counted twice.
    again = run_cli("runner", "read", "bigcommerce", "--config", str(config))
    assert again.returncode == 0 and len(spool.dead_letters()) == 20


@pytest.mark.e2e
def test_ids_the_api_refuses_are_dead_lettered_alone(make_sandbox, tmp_path: Path) -> None:
    """An id the reader takes but the API refuses (422 for the whole id list): the list is
    halved until that id stands alone; the others are read."""
    store = make_sandbox("--customers", "6", "--products", "2")
    account = source_config(store, tmp_path)
    client = bigcommerce.client(account)
    # What _fetch_batch uses of a unit: its stream, config, settings and client.
    unit: Any = SimpleNamespace(stream=bigcommerce.loaded.streams["customers"],
                                config=account, settings=bigcommerce.settings(account),
                                client=client)
    refused: dict[str, str] = {}
    try:
        records = _fetch_batch(unit, "id:in", ["1", "2", "x9", "3", "4", "y"], {}, refused)
    finally:
        client.close()
    assert sorted(r["id"] for r in records) == [1, 2, 3, 4]
    assert refused == {"x9": "the API refused it (HTTP 422)",
                       "y": "the API refused it (HTTP 422)"}


# --- one bad event fails alone ---------------------------------------------------------------

def nested(levels: int) -> dict[str, Any]:
    data: dict[str, Any] = {"type": "customer", "id": 1}
    for _ in range(levels - 2):
        data = {"type": "customer", "id": 1, "x": data}
    return data


@pytest.mark.e2e
def test_a_deeply_nested_payload_fails_alone_in_a_group_commit(make_sandbox, write_json,
                                                               tmp_path: Path) -> None:
    """Issue 15: 300 levels of nesting failed the whole group commit (every webhook in the
    batch got 503). It is refused (400) and the webhooks sent with it are stored."""
    store = make_sandbox("--customers", "2")
    config = write_json(source_config(store, tmp_path))
    receiver = start_receiver(config)
    deep = json.dumps(payload(store.store_hash, "store/customer/updated", nested(300))).encode()
    answers: list[tuple[str, int, bytes]] = []

    def send(worker: int) -> None:
        poster = Poster(receiver.endpoint)
        try:
            for n in range(40):
                if n % 10 == 0:
                    answers.append(("deep", *poster.post(deep, {HEADER: SECRET})))
                body = payload(store.store_hash, "store/customer/updated",
                               {"type": "customer", "id": worker * 100 + n + 1})
                answers.append(("good", *poster.post(orjson.dumps(body), {HEADER: SECRET})))
        finally:
            poster.close()
    try:
        threads = [threading.Thread(target=send, args=(w,)) for w in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        receiver.stop()
    good = [(status, body) for kind, status, body in answers if kind == "good"]
    assert good == [(200, b'{"status":"stored"}')] * 320
    refused = {(status, body) for kind, status, body in answers if kind == "deep"}
    assert refused == {(400, b'{"status":400,"error":"the body nests objects or arrays more '
                            b'than 16 levels deep (BigCommerce\'s nest a few)"}')}
    assert Spool(tmp_path / "spool.db").count() == 320


def test_an_event_the_spool_cannot_write_fails_alone(storage: Any) -> None:
    """Behind the door's checks: a batch that cannot be committed is committed one event at a
    time; the event that cannot be written gets a 400, the others their offsets (on both
    storage backends)."""
    writer = SpoolWriter(storage("spool"))
    spool = Spool(storage("spool"))
    events = [Event("s", "store/customer/updated", "customer", str(n),
                    nested(300) if n == 2 else {"n": n}, f"k{n}") for n in range(4)]

    async def commit_together() -> list[Any]:
        loop = asyncio.get_running_loop()
        batch = [(event, loop.create_future(), loop) for event in events]
        writer._commit(spool, batch)  # one batch, as the writer thread makes them
        await asyncio.sleep(0.01)  # the futures are settled through the loop
        return [f.exception() or f.result() for _, f, _ in batch]
    try:
        outcomes = asyncio.run(commit_together())
    finally:
        spool.close()
        writer.close()
    # (PostgreSQL's sequence does not roll back: the failed batch used up offsets there)
    assert outcomes[0] < outcomes[1] < outcomes[3]
    assert storage("spool").startswith("postgresql") or outcomes[:2] + outcomes[3:] == [1, 2, 3]
    assert isinstance(outcomes[2], Refused) and outcomes[2].status == 400
    assert writer.stored == 3


# --- the spool as a change feed ------------------------------------------------------------

def test_reads_take_only_events_that_have_settled(storage: Any) -> None:
    """Two changes in one second send one webhook (the second is a duplicate), so an event
    is read once a second has passed: the fetch then sees every change of that second."""
    spool = Spool(storage("spool"))
    spool.append("s", "store/customer/updated", "customer", "1", {}, "a")
    time.sleep(0.3)
    spool.append("s", "store/customer/updated", "customer", "2", {}, "b")
    assert spool.settled_offset(time.time() - 0.2) == 1
    assert spool.settled_offset(time.time()) == 2
    assert spool.settled_offset(time.time() - 5) == 0
    assert spool.append("s", "store/customer/updated", "customer", "1", {}, "a") is None
    # Old events are pruned; offsets are never reused, so saved offsets stay valid.
    assert spool.prune(time.time() - 0.2) == 1
    assert (spool.append("s", "store/customer/updated", "customer", "3", {}, "c") or 0) > 2
    assert [row[1] for row in spool.ids("s", "customer")] == ["2", "3"]

def _read(config: Path, state: Path | None = None) -> list[dict[str, Any]]:
    args = ["runner", "read", "bigcommerce", "--config", str(config)]
    if state is not None:
        args += ["--state", str(state)]
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr.decode()
    return messages(result.stdout)


def _records(read: list[dict[str, Any]], stream: str) -> list[dict[str, Any]]:
    return [m["record"]["data"] for m in read
            if m["type"] == "RECORD" and m["record"]["stream"] == stream]


@pytest.mark.e2e
def test_webhooks_mode_fetches_only_what_was_named(make_sandbox, write_json,
                                                   tmp_path: Path) -> None:
    store = make_sandbox("--customers", "30", "--orders", "30", "--products", "10",
                         "--plan", "enterprise")
    spool = Spool(tmp_path / "spool.db")
    h = store.store_hash
    changed = store.admin("POST", "mutate", {"resource": "customers", "update": 2,
                                             "delete": 1, "seed": 3})
    for customer_id in changed["updated"] + changed["deleted"]:
        spool.append(h, "store/customer/updated", "customer", str(customer_id), {})
    spool.append(h, "store/order/statusUpdated", "order", "7", {})
    spool.append(h, "store/sku/inventory/updated", "inventory", "4", {})
    spool.append("anotherstore", "store/order/created", "order", "8", {})
    time.sleep(1.1)  # spooled events are read once a second old (SETTLE_S)
    config = write_json(source_config(store, tmp_path, read_mode="webhooks"))
    store.admin("POST", "stats/reset", {})
    read = _read(config)
    customers = {c["id"]: c for c in _records(read, "customers")}
    assert set(customers) == set(changed["updated"] + changed["deleted"])
    gone = changed["deleted"][0]
    assert customers[gone] == {"id": gone, "is_deleted": True, "store_hash": h,
                               "webhook_scope": "store/customer/updated"}
    assert all(customers[c]["email"] for c in changed["updated"])
    assert [o["id"] for o in _records(read, "orders")] == [7]
    assert {line["order_id"] for line in _records(read, "order_products")} == {7}
    assert {i["identity"]["product_id"] for i in _records(read, "inventory")} == {4}
    assert _records(read, "products") == [] and _records(read, "categories") == []
    paths = store.admin("GET", "stats")["by_path"]
    assert paths == {"/v3/customers": 1, "/v2/orders/{order_id}": 1,
                     "/v3/inventory/items": 1}  # ids in lists, one order by id
    states = {m["state"]["stream"]["stream_descriptor"]["name"]:
              m["state"]["stream"]["stream_state"] for m in read if m["type"] == "STATE"}
    assert states["customers"] == {"stores": {h: {"spool_offset": 3}}}
    assert states["orders"] == {"stores": {h: {"spool_offset": 4}}}
    saved = tmp_path / "state.jsonl"
    saved.write_text("\n".join(json.dumps(m) for m in read if m["type"] == "STATE"))
    assert _records(_read(config, saved), "customers") == []  # nothing new: nothing fetched

    # A poll covers everything spooled before it: its STATE moves the offsets there.
    poll = write_json(source_config(store, tmp_path))
    polled = _read(poll, saved)
    last = [m["state"]["stream"]["stream_state"] for m in polled if m["type"] == "STATE"
            and m["state"]["stream"]["stream_descriptor"]["name"] == "orders"][-1]
    assert last["stores"][h]["spool_offset"] == 6
    assert "date_modified" in last["stores"][h]
