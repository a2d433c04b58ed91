"""Webhooks in the sandbox: the ``/v3/hooks`` API and deliveries as BigCommerce makes them.

Subscriptions follow webhooks.v3.yml: one hook per store, client, scope and destination, at most
10 per scope (and, as the product page says, 100 per store: that total is not in BigCommerce's
reference, so it is this sandbox's reading). Destinations must be https on port 443; plain
http is accepted to loopback addresses only, so that tests can receive.

Deliveries POST ``{scope, store_id (a string), data, hash, created_at, producer}`` with the
hook's custom headers (and Standard Webhooks signature headers when the sandbox knows a client
secret). ``hash`` is the SHA-1 of the JSON of ``data`` (BigCommerce's description), so two
events about the same resource share it: receivers must not de-duplicate on it alone. A
delivery answered with anything but 2xx (or not answered within the timeout) is retried after
60, 180, 300, 600, 900, 1800, 3600, 7200, 21600, 50400 and 86400 s times ``retry_scale``; after
the last retry the hook is deactivated, as BigCommerce does.
"""

from __future__ import annotations

import hashlib
import heapq
import logging
import re
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import orjson
import requests

from framework.webhooks.receiver import sign

log = logging.getLogger("tajo.sandbox.hooks")

RETRY_S = (60, 180, 300, 600, 900, 1800, 3600, 7200, 21600, 50400, 86400)
MAX_PER_SCOPE = 10
MAX_PER_STORE = 100
LOOPBACK = re.compile(r"^(localhost|127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1)$")
# What a subscription to each scope needs (read access to the resource).
SCOPE_PERMISSION = {"customer": "store_v2_customers", "order": "store_v2_orders",
                    "product": "store_v2_products", "sku": "store_v2_products",
                    "cart": "store_cart", "information": "store_v2_information",
                    "app": "store_v2_information", "inventory": "store_v2_products"}
KNOWN = re.compile(
    r"^store/(customer/(\*|created|updated|deleted|address/(\*|created|updated|deleted))"
    r"|order/(\*|created|updated|archived|statusUpdated|message/created|refund/created)"
    r"|product/(\*|created|updated|deleted|inventory/updated|inventory/order/updated)"
    r"|sku/(\*|created|updated|deleted|inventory/updated|inventory/order/updated)"
    r"|cart/(\*|created|updated|deleted|couponApplied|abandoned|converted"
    r"|lineItem/(\*|created|updated|deleted))"
    r"|app/uninstalled|information/updated)$")


class Hooks:
    """One store's subscriptions and its delivery machinery."""

    def __init__(self, store_hash: str, store_id: int, retry_scale: float = 1.0,
                 client_secret: str | None = None, timeout_s: float = 5.0) -> None:
        self.store_hash, self.store_id = store_hash, store_id
        self.retry_scale = retry_scale
        self.client_secret = client_secret
        self.timeout_s = timeout_s
        self.hooks: dict[int, dict[str, Any]] = {}
        self.next_id = 1
        self.stats: Counter[str] = Counter()
        self.log: list[dict[str, Any]] = []  # every delivered payload (for tests)
        self._due: list[tuple[float, int, dict[str, Any]]] = []
        self._seq = 0
        self._lock = threading.Condition()
        self._pool = ThreadPoolExecutor(8, thread_name_prefix="deliver")
        self._session = requests.Session()
        threading.Thread(target=self._schedule, name="hook-scheduler", daemon=True).start()

    # --- the API --------------------------------------------------------------------------

    def validate(self, body: dict[str, Any], granted: frozenset[str]) -> dict[str, str]:
        """Errors of a hook body, by field (empty when valid)."""
        errors: dict[str, str] = {}
        scope = body.get("scope")
        if not isinstance(scope, str) or not KNOWN.match(scope):
            errors["scope"] = "scope is not a valid webhook scope"
        else:
            resource = scope.split("/")[1]
            need = SCOPE_PERMISSION.get(resource)
            if need and need not in granted and f"{need}_read_only" not in granted:
                errors["scope"] = f"the API account lacks the {need} OAuth scope"
        destination = body.get("destination")
        parts = urlsplit(destination) if isinstance(destination, str) else None
        if parts is None or not parts.hostname:
            errors["destination"] = "destination must be a URL"
        elif parts.scheme == "http" and LOOPBACK.match(parts.hostname):
            pass  # the sandbox's exception, for tests on loopback
        elif parts.scheme != "https" or parts.port not in (None, 443):
            errors["destination"] = "destination must be https and served on port 443"
        headers = body.get("headers")
        if headers is not None and (not isinstance(headers, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in headers.items())):
            errors["headers"] = "headers must be an object of strings"
        if "is_active" in body and not isinstance(body["is_active"], bool):
            errors["is_active"] = "is_active must be a boolean"
        return errors

    def mine(self, client_id: str) -> list[dict[str, Any]]:
        return [h for h in self.hooks.values() if h["client_id"] == client_id]

    def create(self, client_id: str, body: dict[str, Any]) -> dict[str, Any]:
        now = int(time.time())
        hook = {"id": self.next_id, "client_id": client_id, "store_hash": self.store_hash,
                "created_at": now, "updated_at": now, "scope": body["scope"],
                "destination": body["destination"], "is_active": body.get("is_active", True),
                "headers": body.get("headers")}
        self.hooks[self.next_id] = hook
        self.next_id += 1
        return hook

    def limit_error(self, client_id: str, scope: str, destination: str) -> str | None:
        mine = self.mine(client_id)
        if any(h["scope"] == scope and h["destination"] == destination for h in mine):
            return "A webhook with this scope and destination already exists"
        if sum(1 for h in mine if h["scope"] == scope) >= MAX_PER_SCOPE:
            return f"Webhook limit reached: at most {MAX_PER_SCOPE} per scope"
        if len(self.hooks) >= MAX_PER_STORE:
            return f"Webhook limit reached: at most {MAX_PER_STORE} per store"
        return None

    # --- deliveries -----------------------------------------------------------------------

    def emit(self, scope: str, data: dict[str, Any]) -> int:
        """An event happened: schedule a delivery to every active hook subscribed to it."""
        payload = {"scope": scope, "store_id": str(self.store_id), "data": data,
                   "hash": hashlib.sha1(orjson.dumps(data)).hexdigest(),
                   "created_at": int(time.time()), "producer": f"stores/{self.store_hash}"}
        targets = [h for h in self.hooks.values() if h["is_active"] and _matches(h["scope"],
                                                                                 scope)]
        for hook in targets:
            self.stats["events"] += 1
            self._queue(0.0, {"hook": hook["id"], "payload": payload, "attempt": 0,
                              "id": f"msg_{uuid.uuid4().hex}"})
        return len(targets)

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

    def _deliver(self, delivery: dict[str, Any]) -> None:
        hook = self.hooks.get(delivery["hook"])
        if hook is None or not hook["is_active"]:
            return
        body = orjson.dumps(delivery["payload"])
        headers = {"Content-Type": "application/json", **(hook.get("headers") or {})}
        if self.client_secret:
            stamp = int(time.time())
            headers.update({"webhook-id": delivery["id"], "webhook-timestamp": str(stamp),
                            "webhook-signature": sign(self.client_secret.encode(),
                                                      delivery["id"], stamp, body)})
        self.stats["attempts"] += 1
        try:
            answer = self._session.post(hook["destination"], data=body, headers=headers,
                                        timeout=self.timeout_s)
            ok = 200 <= answer.status_code < 300
        except requests.RequestException:
            ok = False
        if ok:
            self.stats["delivered"] += 1
            self.log.append(delivery["payload"])
            return
        self.stats["failed"] += 1
        attempt = delivery["attempt"]
        if attempt >= len(RETRY_S):
            hook["is_active"] = False  # BigCommerce deactivates it (and emails the app owner)
            self.stats["deactivated"] += 1
            return
        self._queue(RETRY_S[attempt] * self.retry_scale, {**delivery, "attempt": attempt + 1})

    def pending(self) -> int:
        with self._lock:
            return len(self._due)


def _matches(subscribed: str, scope: str) -> bool:
    if subscribed.endswith("/*"):
        return scope.startswith(subscribed[:-1])
    return subscribed == scope
