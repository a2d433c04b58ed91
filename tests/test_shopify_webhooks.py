"""Shopify's webhook deliveries through the framework's receiver: the HMAC of the raw body
checked before parsing, the shop and topic from the headers, dedupe on X-Shopify-Event-Id,
topics to streams, the privacy topics spooled and read."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests
from conftest import RUNNER, run_cli
from starlette.testclient import TestClient
from webhook_kit import start_receiver

from connectors.shopify import connector
from connectors.shopify.webhooks import (
    PRIVACY_TOPICS,
    ShopifyVerifier,
    redaction,
    signature,
    streams_of,
)
from framework.webhooks.receiver import SpoolWriter, build_app
from framework.webhooks.spool import Event, Spool
from framework.webhooks.subscriptions import declared, secrets_of

SECRET = "shpss_client-secret-of-the-app-0123"
OTHER = "shpss_another-app-s-secret-456789"
TOPICS = ["customers/update", "orders/updated", "refunds/create", "inventory_levels/update",
          "checkouts/update", "customers/redact", "shop/redact", "customers/data_request"]


def _verifier(config: dict[str, Any]) -> ShopifyVerifier:
    spec = declared(connector)
    accounts = {spec.producer.format(**a): connector.account_key(a)
                for a in connector.accounts(config)}
    return ShopifyVerifier(spec, accounts, TOPICS, secrets_of(connector, config),
                           config.get("client_secret"))


CONFIG = {"shop_setup": {"mode": "several_shops", "shops": [
    {"shop": "acme", "access_token": "shpat_1"},
    {"shop": "other.myshopify.com", "access_token": "shpat_2", "client_secret": OTHER}]},
    "client_secret": SECRET}


@pytest.fixture
def receiver(tmp_path: Path) -> Any:
    config = {**CONFIG, "shops": CONFIG["shop_setup"]["shops"]}
    writer = SpoolWriter(tmp_path / "spool.db")
    app = build_app(_verifier(config), writer, "/webhooks/shopify")
    with TestClient(app) as client:
        yield client, tmp_path / "spool.db"
    writer.close()


def headers(body: bytes, topic: str = "customers/update", shop: str = "acme.myshopify.com",
            secret: str = SECRET, event_id: str | None = None, **extra: str) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": signature(secret.encode(), body),
            "X-Shopify-Shop-Domain": shop, "X-Shopify-API-Version": "2026-07",
            "X-Shopify-Webhook-Id": str(uuid.uuid4()),
            "X-Shopify-Event-Id": event_id or str(uuid.uuid4()),
            "X-Shopify-Triggered-At": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            **extra}


def _rows(path: Path) -> list[tuple[Any, ...]]:
    spool = Spool(path)
    try:
        return spool.events()
    finally:
        spool.close()


def _stored(path: Path) -> list[tuple[str, str, str, str]]:
    """(account, topic, resource, resource id) of each spooled event, oldest first."""
    return [tuple(row[1:5]) for row in _rows(path)]


def test_shopify_s_signature_is_the_base64_hmac_of_the_raw_body() -> None:
    body = b'{"id": 1}'
    expected = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest())
    assert signature(SECRET.encode(), body) == expected.decode()


def test_a_signed_delivery_is_spooled_by_shop_topic_and_id(receiver: Any) -> None:
    client, spool = receiver
    body = orjson.dumps({"id": 7365453201593, "email": "ada@example.com"})
    answer = client.post("/webhooks/shopify", content=body, headers=headers(body))
    assert (answer.status_code, answer.json()) == (200, {"status": "stored"})
    assert _stored(spool) == [("acme", "customers/update", "customer", "7365453201593")]


def test_each_shop_is_verified_with_its_own_app_s_secret(receiver: Any) -> None:
    client, spool = receiver
    body = orjson.dumps({"id": 5, "order_id": 9})
    ok = client.post("/webhooks/shopify", content=body,
                     headers=headers(body, "refunds/create", "other.myshopify.com", OTHER))
    assert ok.status_code == 200
    # Signed with acme's secret but naming the other shop: refused.
    crossed = client.post("/webhooks/shopify", content=body,
                          headers=headers(body, "refunds/create", "other.myshopify.com"))
    assert crossed.status_code == 401
    assert "not made with shop other's client secret" in crossed.json()["error"]
    assert _stored(spool) == [("other", "refunds/create", "order", "9")]


@pytest.mark.parametrize(("mutate", "status", "reason"), [
    (lambda h, b: {**h, "X-Shopify-Hmac-Sha256": signature(b"wrong", b)}, 401,
     "no valid secret header or signature"),
    (lambda h, b: {k: v for k, v in h.items() if k != "X-Shopify-Hmac-Sha256"}, 401,
     "no valid secret header or signature"),
    (lambda h, b: {**h, "X-Shopify-Shop-Domain": "stranger.myshopify.com"}, 401,
     "shop 'stranger.myshopify.com' is not a configured shop"),
    (lambda h, b: {**h, "X-Shopify-Topic": "themes/publish"}, 400,
     "topic 'themes/publish' is not subscribed"),
    (lambda h, b: {k: v for k, v in h.items() if k != "X-Shopify-Event-Id"}, 400,
     "no X-Shopify-Event-Id header"),
    (lambda h, b: {**h, "X-Shopify-Triggered-At": (datetime.now(UTC) - timedelta(days=4))
                   .isoformat()}, 400, "a replay"),
])
def test_refusals(receiver: Any, mutate: Any, status: int, reason: str) -> None:
    client, spool = receiver
    body = orjson.dumps({"id": 1})
    answer = client.post("/webhooks/shopify", content=body, headers=mutate(headers(body), body))
    assert answer.status_code == status
    assert reason in answer.json()["error"]
    assert _stored(spool) == []


def test_the_signature_is_checked_before_the_body_is_parsed(receiver: Any) -> None:
    client, _ = receiver
    body = b"not json at all"
    unsigned = client.post("/webhooks/shopify", content=body,
                           headers={**headers(body), "X-Shopify-Hmac-Sha256": "AAAA"})
    assert unsigned.status_code == 401  # not 400: an unsigned body is never read
    signed = client.post("/webhooks/shopify", content=body, headers=headers(body))
    assert (signed.status_code, signed.json()["error"]) == (400, "the body is not JSON")


def test_a_redelivery_keeps_its_event_id_and_is_stored_once(receiver: Any) -> None:
    client, spool = receiver
    body = orjson.dumps({"id": 11})
    event = str(uuid.uuid4())
    first = client.post("/webhooks/shopify", content=body,
                        headers=headers(body, "orders/updated", event_id=event))
    again = client.post("/webhooks/shopify", content=body,
                        headers=headers(body, "orders/updated", event_id=event))
    assert (first.json(), again.json()) == ({"status": "stored"}, {"status": "duplicate"})
    other = client.post("/webhooks/shopify", content=body,
                        headers=headers(body, "orders/updated"))
    assert other.json() == {"status": "stored"}  # another event of the same order
    assert len(_stored(spool)) == 2


def test_privacy_topics_are_spooled_and_say_what_to_forget(receiver: Any) -> None:
    client, spool = receiver
    redact = orjson.dumps({"shop_id": 954889, "shop_domain": "acme.myshopify.com",
                           "customer": {"id": 191167, "email": "john@example.com",
                                        "phone": "555-625-1199"},
                           "orders_to_redact": [299938, 280263]})
    shop = orjson.dumps({"shop_id": 954889, "shop_domain": "acme.myshopify.com"})
    for body, topic in ((redact, "customers/redact"), (shop, "shop/redact")):
        answer = client.post("/webhooks/shopify", content=body, headers=headers(body, topic))
        assert answer.status_code == 200
    assert _stored(spool) == [("acme", "customers/redact", "customer_redaction", "191167"),
                              ("acme", "shop/redact", "shop_redaction", "954889")]
    asked = [redaction(Event(row[1], row[2], row[3], row[4], orjson.loads(row[6])))
             for row in _rows(spool)]
    assert asked[0] == {"kind": "customer", "shop": "acme", "customer_id": "191167",
                        "email": "john@example.com", "phone": "555-625-1199",
                        "orders": ["299938", "280263"]}
    assert asked[1] == {"kind": "shop", "shop": "acme"}


def test_topics_name_the_streams_they_change() -> None:
    spec = declared(connector)
    assert streams_of("orders/updated", spec) == ["orders"]
    assert streams_of("refunds/create", spec) == ["orders"]
    assert streams_of("inventory_levels/update", spec) == ["inventory_levels"]
    assert streams_of("checkouts/update", spec) == ["abandoned_checkouts"]
    assert streams_of("customers/redact", spec) == ["customer_erasures"]
    assert streams_of("shop/redact", spec) == ["shop_erasures"]
    assert set(PRIVACY_TOPICS) <= set(spec.scopes)
    streams = set(connector.loaded.streams)
    live = {s.live.resource: s.name for s in connector.loaded.model.streams if s.live}
    for topic, declared_scope in spec.scopes.items():
        assert set(streams_of(topic, spec)) <= streams
        # A topic's resource is the one its stream reads (by id, or its payload).
        assert streams_of(topic, spec) == ([live[declared_scope.resource]]
                                           if declared_scope.resource in live else [])
    default = connector.loaded.model.connectionSpecification["properties"]["webhooks"]["default"]
    # The privacy topics are no subscriptions (the app configuration's compliance URL).
    assert not set(PRIVACY_TOPICS) & {row["scope"] for row in default}
    assert {row["scope"] for row in default} <= set(spec.scopes)


def test_privacy_topics_are_taken_whatever_the_topic_table_says(tmp_path: Path) -> None:
    config = {**CONFIG, "shops": CONFIG["shop_setup"]["shops"]}
    spec = declared(connector)
    accounts = {spec.producer.format(**a): connector.account_key(a)
                for a in connector.accounts(config)}
    verifier = ShopifyVerifier(spec, accounts, ["orders/updated"],
                               secrets_of(connector, config))
    writer = SpoolWriter(tmp_path / "spool.db")
    with TestClient(build_app(verifier, writer, "/webhooks/shopify")) as client:
        body = orjson.dumps({"shop_id": 1, "shop_domain": "acme.myshopify.com"})
        taken = client.post("/webhooks/shopify", content=body,
                            headers=headers(body, "shop/redact"))
        other = client.post("/webhooks/shopify", content=body,
                            headers=headers(body, "customers/update"))
    writer.close()
    assert taken.status_code == 200
    assert (other.status_code, "is not subscribed" in other.json()["error"]) == (400, True)


@pytest.mark.e2e
def test_the_sandbox_s_signed_privacy_webhooks_reach_the_spool(tmp_path: Path) -> None:
    """Shopify's signature as the sandbox makes it (not this module's): ``runner webhooks
    serve --source shopify`` takes its customers/redact and shop/redact deliveries."""
    process = subprocess.Popen([RUNNER, "sandbox", "shopify", "--port", "0", "--customers",
                                "5", "--orders", "5", "--products", "2", "--seed", "9"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    ready = json.loads(process.stdout.readline())
    config = tmp_path / "shopify.json"
    config.write_text(json.dumps({
        "shop": ready["shop"], "access_token": ready["access_token"], "api_url": ready["url"],
        "client_secret": ready["client_secret"], "spool_path": str(tmp_path / "spool.db")}))
    receiver = start_receiver(config, "--source", "shopify")
    try:
        def admin(path: str, body: dict[str, Any]) -> Any:
            answer = requests.post(f"{ready['url']}/_sandbox/{path}", json=body, timeout=30,
                                   headers={"X-Shopify-Access-Token": ready["access_token"]})
            answer.raise_for_status()
            return answer.json()

        admin("privacy", {"topic": "customers/redact", "customer_id": 3,
                          "uri": receiver.endpoint})
        admin("privacy", {"topic": "shop/redact"})
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(_stored(tmp_path / "spool.db")) < 2:
            time.sleep(0.1)
        # Shopify does not promise an order of delivery.
        stored = {row[1]: row for row in _stored(tmp_path / "spool.db")}
        assert stored["customers/redact"] == (ready["shop"], "customers/redact",
                                              "customer_redaction", "3")
        assert stored["shop/redact"][:3] == (ready["shop"], "shop/redact", "shop_redaction")
        assert stored["shop/redact"][3].isdigit()  # the shop's id
        asked = {row[2]: redaction(Event(row[1], row[2], row[3], row[4], orjson.loads(row[6])))
                 for row in _rows(tmp_path / "spool.db")}
        customer = asked["customers/redact"]
        assert customer is not None and customer["customer_id"] == "3" and customer["email"]
        assert asked["shop/redact"] == {"kind": "shop", "shop": ready["shop"]}
        # The source reads the redaction as the model's erasure of customer 3.
        time.sleep(1.1)  # a spooled event is read once it is a second old
        catalog = connector.configured_catalog(everything=True)
        catalog.streams = [c for c in catalog.streams if c.stream.name == "commerce_erasures"]
        catalog_path = tmp_path / "catalog.json"
        catalog_path.write_text(json.dumps(catalog.model_dump(mode="json", exclude_none=True)))
        read = run_cli("runner", "read", "shopify", "--config", str(config), "--catalog",
                       str(catalog_path))
        assert read.returncode == 0, read.stderr.decode()
        erasures = [m["record"]["data"] for m in map(json.loads, read.stdout.splitlines())
                    if m["type"] == "RECORD"]
        assert [(e["account"], e["id"], e["subject"], e["deleted"]) for e in erasures] == \
            [(ready["shop"], "3", "customer", False)]
    finally:
        log = receiver.stop()
        process.terminate()
        process.wait(timeout=10)
    assert "refused" not in log, log



@pytest.mark.e2e
def test_register_subscribe_receive_and_read_what_webhooks_named(tmp_path: Path) -> None:
    """``runner webhooks register --source shopify`` subscribes the topics once (a second run
    changes nothing, a subscription of another topic is left alone, a new URL moves them);
    the sandbox's signed deliveries of a change reach the spool through ``runner webhooks
    serve``, and a read in ``read_mode: webhooks`` brings the records they named."""
    process = subprocess.Popen([RUNNER, "sandbox", "shopify", "--port", "0", "--customers",
                                "10", "--orders", "10", "--products", "3", "--seed", "6",
                                "--plan", "enterprise"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    ready = json.loads(process.stdout.readline())
    spool = tmp_path / "spool.db"
    config = tmp_path / "shopify.json"
    config.write_text(json.dumps({
        "shop": ready["shop"], "access_token": ready["access_token"], "api_url": ready["url"],
        "client_secret": ready["client_secret"], "spool_path": str(spool)}))
    token = {"X-Shopify-Access-Token": ready["access_token"]}
    graphql = f"{ready['url']}/{ready['shop']}/admin/api/2026-07/graphql.json"
    theirs = requests.post(graphql, headers=token, timeout=30, json={
        "query": 'mutation { webhookSubscriptionCreate(topic: APP_UNINSTALLED, '
                 'webhookSubscription: {uri: "https://other.example/hooks"}) '
                 '{ webhookSubscription { id } } }'}).json()
    assert theirs["data"]["webhookSubscriptionCreate"]["webhookSubscription"]["id"]
    receiver = start_receiver(config, "--source", "shopify")

    def register(url: str) -> list[dict[str, Any]]:
        done = run_cli("runner", "webhooks", "register", "--config", str(config), "--source",
                       "shopify", "--url", url, "--json")
        assert done.returncode == 0, done.stderr.decode()
        return [json.loads(line) for line in done.stdout.splitlines()]

    try:
        assert register("http://127.0.0.1:9/old")  # somewhere else first
        moved = register(receiver.endpoint)
        assert {row["action"] for row in moved} == {"updated"}
        assert {row["action"] for row in register(receiver.endpoint)} == {"unchanged"}
        topics = {row["scope"] for row in moved}
        assert "customers/update" in topics and not topics & set(PRIVACY_TOPICS)
        hooks = requests.get(f"{ready['url']}/_sandbox/hooks", headers=token, timeout=30)
        assert "https://other.example/hooks" in hooks.text  # not ours: untouched
        changed = requests.post(f"{ready['url']}/_sandbox/mutate", headers=token, timeout=30,
                                json={"resource": "customers", "update": 3, "seed": "w"}
                                ).json()["updated"]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(
                {r for _, t, _, r in _stored(spool) if t == "customers/update"}) < 3:
            time.sleep(0.1)
        named = {r for _, t, _, r in _stored(spool) if t == "customers/update"}
        assert named == {str(i) for i in changed}
    finally:
        log = receiver.stop()
    try:
        time.sleep(1.1)  # a spooled event is read once it is a second old
        read_config = tmp_path / "read.json"
        read_config.write_text(json.dumps({**json.loads(config.read_text()),
                                           "read_mode": "webhooks"}))
        catalog = connector.configured_catalog()
        catalog.streams = [c for c in catalog.streams if c.stream.name == "customers"]
        catalog_path = tmp_path / "catalog.json"
        catalog_path.write_text(json.dumps(catalog.model_dump(mode="json", exclude_none=True)))
        read = run_cli("runner", "read", "shopify", "--config", str(read_config), "--catalog",
                       str(catalog_path))
        assert read.returncode == 0, read.stderr.decode()
        got = {m["record"]["data"]["legacyResourceId"] for m in map(json.loads,
               read.stdout.splitlines()) if m["type"] == "RECORD"}
        assert got == {str(i) for i in changed}
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert "refused" not in log, log
