"""Webhooks as Shopify makes them: subscriptions through GraphQL, signed deliveries, retries.

``webhookSubscriptionCreate`` with a topic and uri already subscribed answers Shopify's
userError "Address for this topic has already been taken"; uris must be https (plain http is
accepted to loopback only, so tests can receive). A delivery POSTs the record as a REST-style
JSON payload (the record's fields in snake_case, ``id`` the number and
``admin_graphql_api_id`` the global id: not every field of Shopify's REST payloads) with the
headers of shopify-api.md: ``X-Shopify-Hmac-Sha256`` (base64 HMAC-SHA256 of the raw body with
the app's client secret), ``-Topic``, ``-Shop-Domain``, ``-API-Version``, ``-Webhook-Id`` (one
per delivery, kept on its retries), ``-Event-Id`` (one per event, shared by every subscription
and retry) and ``-Triggered-At``.

Retries: Shopify retries a delivery that is not answered 2xx within 5 s 8 times over about
4 hours and then removes the subscription. The schedule in between is not published; this
sandbox doubles from one minute (1, 2, 4 ... 128 minutes: 4.25 hours), times
``retry_scale`` (``--webhook-retry-scale 0.001``: 60 ms first).

The privacy topics (``customers/redact``, ``customers/data_request``, ``shop/redact``) are
not subscriptions in Shopify (an app declares one URL for them in its configuration): the
admin API sets that URL (``compliance_uri``) and triggers them.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
import re
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import orjson
import requests

from connectors.shopify.sandbox import generate as g

RETRY_S = tuple(60 * 2**n for n in range(8))
LOOPBACK = re.compile(r"^(localhost|127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1)$")
PRIVACY_TOPICS = ("customers/redact", "customers/data_request", "shop/redact")
CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def topic_enum(topic: str) -> str:
    """``orders/create`` -> ``ORDERS_CREATE`` (the schema's WebhookSubscriptionTopic)."""
    return topic.upper().replace("/", "_")


def sign(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def rest_payload(record: dict[str, Any]) -> dict[str, Any]:
    """A record as Shopify's REST-style webhook payloads carry it."""
    if record.get("__typename") == "InventoryLevel":  # inventory_levels/update's own shape
        available = next((q["quantity"] for q in record["quantities"]
                          if q["name"] == "available"), 0)
        return {"inventory_item_id": int(record["item"].rsplit("/", 1)[1]),
                "location_id": int(record["location"].rsplit("/", 1)[1]),
                "available": available, "updated_at": record["updatedAt"],
                "admin_graphql_api_id": record["id"]}
    payload: dict[str, Any] = {}
    for key, value in record.items():
        if key.startswith("__") or key == "legacyResourceId":
            continue
        name = CAMEL.sub("_", key).lower()
        if key == "id":
            payload["id"] = int(record.get("legacyResourceId") or 0) or value
            payload["admin_graphql_api_id"] = value
        elif isinstance(value, str) and value.startswith("gid://"):
            payload[f"{name}_id"] = int(value.rsplit("/", 1)[1].split("?")[0])
        elif key in ("emailMarketingConsent", "smsMarketingConsent") and value:
            payload[name] = {"state": value["marketingState"].lower(),
                             "opt_in_level": (value.get("marketingOptInLevel") or "").lower()
                             or None, "consent_updated_at": value.get("consentUpdatedAt")}
        elif not (isinstance(value, list) and value and isinstance(value[0], str)
                  and value[0].startswith("gid://")):
            payload[name] = _snake(value)
    return payload


def _snake(value: Any) -> Any:
    """Nested objects with REST's snake_case keys (a copy: later edits are later events)."""
    if isinstance(value, dict):
        return {CAMEL.sub("_", k).lower(): _snake(v) for k, v in value.items()
                if not k.startswith("__")}
    if isinstance(value, list):
        return [_snake(v) for v in value]
    return value


class Webhooks:
    """One shop's subscriptions and deliveries."""

    def __init__(self, shop: str, client_secret: str, retry_scale: float = 1.0,
                 timeout_s: float = 5.0) -> None:
        self.shop, self.client_secret = shop, client_secret
        self.retry_scale, self.timeout_s = retry_scale, timeout_s
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.compliance_uri: str | None = None
        self.next_id = 1
        self.stats: Counter[str] = Counter()
        self.log: list[dict[str, Any]] = []  # every delivery that was answered 2xx
        self._due: list[tuple[float, int, dict[str, Any]]] = []
        self._seq = 0
        self._lock = threading.Condition()
        self._pool = ThreadPoolExecutor(8, thread_name_prefix="shopify-deliver")
        self._session = requests.Session()
        threading.Thread(target=self._schedule, name="shopify-hooks", daemon=True).start()

    # --- subscriptions ---------------------------------------------------------------------

    def mine(self, client: str) -> list[dict[str, Any]]:
        """An app's subscriptions (an app sees and changes its own only)."""
        return [s for s in list(self.subscriptions.values()) if s["_client"] == client]

    def create(self, client: str, topic: str, uri: str | None, version: str,
               include_fields: list[str]
               ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """A subscription of the app ``client``, or Shopify's userErrors."""
        field = ["webhookSubscription", "callbackUrl"]
        parts = urlsplit(uri or "")
        if not parts.hostname or not (parts.scheme == "https" or (
                parts.scheme == "http" and LOOPBACK.match(parts.hostname))):
            return None, [{"__typename": "UserError", "field": field,
                           "message": "Address is invalid"}]
        if any(s["topic"] == topic and s["uri"] == uri for s in self.mine(client)):
            return None, [{"__typename": "UserError", "field": field,
                           "message": "Address for this topic has already been taken"}]
        number, now = self.next_id, g.iso(time.time())
        self.next_id += 1
        subscription: dict[str, Any] = {
            "__typename": "WebhookSubscription", "_client": client,
            "id": g.gid("WebhookSubscription", number),
            "legacyResourceId": str(number), "topic": topic, "uri": uri, "callbackUrl": uri,
            "endpoint": {"__typename": "WebhookHttpEndpoint", "callbackUrl": uri},
            "format": "JSON", "includeFields": include_fields, "metafieldNamespaces": [],
            "metafields": [], "filter": None, "name": None, "createdAt": now, "updatedAt": now,
            "apiVersion": {"__typename": "ApiVersion", "handle": version,
                           "displayName": version, "supported": True}}
        self.subscriptions[subscription["id"]] = subscription
        return subscription, []

    def delete(self, client: str, subscription_id: str
               ) -> tuple[str | None, list[dict[str, Any]]]:
        found = self.subscriptions.get(subscription_id)
        if found is None or found["_client"] != client:
            return None, [{"__typename": "UserError", "field": ["id"],
                           "message": "Webhook subscription does not exist"}]
        del self.subscriptions[subscription_id]
        return subscription_id, []

    # --- deliveries ------------------------------------------------------------------------

    def emit(self, topic: str, record: dict[str, Any]) -> int:
        """An event: a delivery to every subscription to its topic."""
        # (a copy of the values: a delivery thread may remove a failing subscription meanwhile)
        targets = [s for s in list(self.subscriptions.values())
                   if s["topic"] == topic_enum(topic)]
        event = str(uuid.uuid4())
        payload = rest_payload(record)
        for subscription in targets:
            self.stats["events"] += 1
            wanted = subscription["includeFields"]  # the subscription's own choice of fields
            shown = {k: v for k, v in payload.items() if k in wanted} if wanted else payload
            self._queue(0.0, {"subscription": subscription["id"], "uri": subscription["uri"],
                              "topic": topic, "payload": shown, "event": event,
                              "webhook": str(uuid.uuid4()), "attempt": 0,
                              "version": subscription["apiVersion"]["handle"],
                              "triggered": datetime.now(UTC).isoformat()})
        return len(targets)

    def privacy(self, topic: str, payload: dict[str, Any], version: str) -> int:
        """A mandatory privacy topic, delivered to the app's compliance URL."""
        if not self.compliance_uri:
            return 0
        self.stats["events"] += 1
        self._queue(0.0, {"subscription": None, "uri": self.compliance_uri, "topic": topic,
                          "payload": payload, "event": str(uuid.uuid4()),
                          "webhook": str(uuid.uuid4()), "attempt": 0, "version": version,
                          "triggered": datetime.now(UTC).isoformat()})
        return 1

    def _queue(self, delay_s: float, delivery: dict[str, Any]) -> None:
        with self._lock:
            self._seq += 1
            heapq.heappush(self._due, (time.monotonic() + delay_s, self._seq, delivery))
            self._lock.notify()

    def _schedule(self) -> None:
        while True:
            with self._lock:
                while not self._due or self._due[0][0] > time.monotonic():
                    self._lock.wait(timeout=(self._due[0][0] - time.monotonic())
                                    if self._due else None)
                _, _, delivery = heapq.heappop(self._due)
            self._pool.submit(self._deliver, delivery)

    def headers(self, delivery: dict[str, Any], body: bytes) -> dict[str, str]:
        return {"Content-Type": "application/json",
                "X-Shopify-Hmac-Sha256": sign(self.client_secret, body),
                "X-Shopify-Topic": delivery["topic"],
                "X-Shopify-Shop-Domain": f"{self.shop}.myshopify.com",
                "X-Shopify-API-Version": delivery["version"],
                "X-Shopify-Webhook-Id": delivery["webhook"],
                "X-Shopify-Event-Id": delivery["event"],
                "X-Shopify-Triggered-At": delivery["triggered"]}

    def _deliver(self, delivery: dict[str, Any]) -> None:
        if delivery["subscription"] and delivery["subscription"] not in self.subscriptions:
            return  # deleted since
        body = orjson.dumps(delivery["payload"])
        self.stats["attempts"] += 1
        try:
            answer = self._session.post(delivery["uri"], data=body,
                                        headers=self.headers(delivery, body),
                                        timeout=self.timeout_s)
            ok = 200 <= answer.status_code < 300
        except requests.RequestException:
            ok = False
        if ok:
            self.stats["delivered"] += 1
            self.log.append({"topic": delivery["topic"], "event": delivery["event"],
                             "attempt": delivery["attempt"], "payload": delivery["payload"]})
            return
        self.stats["failed"] += 1
        attempt = delivery["attempt"]
        if attempt >= len(RETRY_S):
            if delivery["subscription"]:
                self.subscriptions.pop(delivery["subscription"], None)  # Shopify removes it
                self.stats["removed"] += 1
            return
        self._queue(RETRY_S[attempt] * self.retry_scale, {**delivery, "attempt": attempt + 1})

    def pending(self) -> int:
        with self._lock:
            return len(self._due)
