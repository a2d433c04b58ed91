"""Shopify's webhook deliveries, for the framework's receiver (``framework.webhooks.receiver``).

Shopify signs the raw body, not a shared-secret header: ``X-Shopify-Hmac-Sha256`` is the
base64 HMAC-SHA256 of the body with the app's client secret. It is checked before the body
is parsed, in constant time, against every configured shop's secret (a shop may have its own
app, ``shops[].client_secret``; all are compared every time, so the time taken says nothing
about which matched). What the framework reads from a BigCommerce body, Shopify sends in
headers: the topic (``X-Shopify-Topic``), the shop (``X-Shopify-Shop-Domain``), the event
(``X-Shopify-Event-Id``, the same on every re-delivery: the dedupe key) and when it happened
(``X-Shopify-Triggered-At``). The spec's ``webhooks`` section names those headers in the
fields the framework reads from a body (``producer_field``, ``payload.scope``,
``payload.dedupe``, ``payload.created_at``), and :class:`ShopifyVerifier` reads them there.

The receiver hands ``event`` only what ``authentic`` returned, so the headers ride along with
the accounts they speak for (:class:`Delivery`).

Topics and streams: each topic names a spool resource (the spec's ``webhooks.scopes``) and
:data:`RESOURCE_STREAMS` the streams whose records it changes. The mandatory privacy topics
are spooled like the others, before the 200 Shopify requires: ``customers/redact`` (resource
``customer_redaction``: the shopper whose personal data must go, with the orders to redact),
``shop/redact`` (``shop_redaction``, 48 hours after the app is uninstalled: forget the shop) and
``customers/data_request`` (``data_request``: the merchant is to send the shopper their data;
nothing here holds more than the shop does). :func:`redaction` reads a privacy event. They
are not subscriptions (Shopify sends them to the compliance URL of the app's configuration),
so the receiver takes them whatever the config's topic table says.

Subscriptions (:class:`ShopifyHooks`, for ``runner webhooks register``): the GraphQL Admin API's
``webhookSubscriptions``, ``webhookSubscriptionCreate`` and ``webhookSubscriptionDelete``.
Shopify lists only the calling app's subscriptions and signs all of them with the app's
secret, so a subscription to a topic this connector knows is ours and "sends" that secret;
a subscription to any other topic (one the app's configuration declares) is never touched.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import weakref
from datetime import datetime
from typing import Any

import orjson

from framework.declarative.graphql import GraphQLClient
from framework.declarative.paginators import dig
from framework.declarative.spec import Webhooks
from framework.errors import ConnectorError
from framework.webhooks.receiver import (
    MAX_DEPTH,
    SIGNATURE_SKEW_S,
    STALE_AFTER_S,
    Refused,
    Verifier,
    _deeper_than,
)
from framework.webhooks.spool import Event, check_id
from framework.webhooks.subscriptions import Subscriptions

SIGNATURE_HEADER = "x-shopify-hmac-sha256"
SHOP_SUFFIX = ".myshopify.com"

#: The stream whose records a resource's webhook names (read by id in ``read_mode:
#: webhooks``, the spec's ``live``). A refund names its order (``order_id``); an inventory
#: level its item; an order's new totals for its customer come as Shopify's own
#: ``customers/update``.
RESOURCE_STREAMS: dict[str, list[str]] = {
    "customer": ["customers"],
    "order": ["orders"],
    "product": ["products"],
    "collection": ["collections"],
    "inventory_item": ["inventory_levels"],
    "checkout": ["abandoned_checkouts"],
    "customer_redaction": ["customer_erasures"],
    "shop_redaction": ["shop_erasures"],
    "data_request": [],
}
#: The privacy topics every public app must answer (the app's listing is refused without).
PRIVACY_TOPICS = ("customers/data_request", "customers/redact", "shop/redact")


class Delivery(set[str]):
    """The accounts a delivery's signature speaks for, with its headers."""

    def __init__(self, accounts: set[str], headers: Any) -> None:
        super().__init__(accounts)
        self.headers = headers


def signature(secret: bytes, body: bytes) -> str:
    """``X-Shopify-Hmac-Sha256`` of a body (what Shopify sends, what a test signs with)."""
    return base64.b64encode(hmac.new(secret, body, hashlib.sha256).digest()).decode()


def streams_of(topic: str, spec: Webhooks) -> list[str]:
    """The streams a topic's webhook changes (none: a privacy topic, or one not declared)."""
    declared = spec.scopes.get(topic)
    return list(RESOURCE_STREAMS.get(declared.resource, [])) if declared else []


class ShopifyVerifier(Verifier):
    """A Shopify delivery made a spool event: signature, shop, topic, id, freshness, dedupe.

    ``secrets`` are the shops' client secrets (``client.config.webhook_secret`` of the spec
    names the ``client_secret`` field, a shop's own or the shared one); ``client_secret``
    is not used apart from them.
    """

    def __init__(self, spec: Webhooks, accounts: dict[str, str], scopes: list[str],
                 secrets: dict[str, str], client_secret: str | None = None) -> None:
        super().__init__(spec, accounts, scopes, secrets, None)
        self.scopes |= {topic for topic in PRIVACY_TOPICS if topic in spec.scopes}
        self.topic_header = spec.payload.scope.lower()
        self.shop_header = spec.producer_field.lower()
        self.event_headers = [name.lower() for name in spec.payload.dedupe]
        self.when_header = (spec.payload.created_at or "").lower()

    def authentic(self, headers: Any, body: bytes) -> Delivery | None:
        """The shops whose client secret signed the body (None: no valid signature)."""
        given = headers.get(SIGNATURE_HEADER)
        if not given:
            return None
        sent = given.strip().encode()
        matches = {account for account, secret in self.secrets.items()
                   if hmac.compare_digest(sent, signature(secret, body).encode())}
        return Delivery(matches, headers) if matches else None

    def event(self, body: bytes, allowed: set[str] | None = None) -> Event:
        if not isinstance(allowed, Delivery):  # not a delivery authentic() vouched for
            raise Refused(401, "no valid X-Shopify-Hmac-Sha256 signature")
        headers = allowed.headers
        payload = _payload(body)
        shop = str(headers.get(self.shop_header) or "")
        account = self.accounts.get(shop)
        if account is None:
            raise Refused(401, f"shop {shop[:80]!r} is not a configured shop")
        if account not in allowed:
            raise Refused(401, f"the signature is not made with shop {account}'s client "
                               "secret")
        topic = str(headers.get(self.topic_header) or "")
        if topic not in self.scopes:
            raise Refused(400, f"topic {topic[:80]!r} is not subscribed; subscribed: "
                               f"{', '.join(sorted(self.scopes))}")
        declared = self.spec.scopes[topic]
        resource_id = dig(payload, declared.id)
        if resource_id is None or resource_id == "" or isinstance(resource_id, bool):
            raise Refused(400, f"{topic} payload has no resource id at {declared.id}")
        try:  # Shopify's ids pass 2**31: kept as text
            resource_id = check_id(str(resource_id), declared.id_type)
        except ValueError as exc:
            raise Refused(400, f"{topic} payload: the {declared.resource} id at "
                               f"{declared.id} {exc}") from None
        _check_fresh(headers.get(self.when_header))
        event_id = next((str(headers[name]) for name in self.event_headers
                         if headers.get(name)), None)
        if event_id is None:
            raise Refused(400, "no X-Shopify-Event-Id header: a delivery that cannot be told "
                               "from its re-deliveries is not stored")
        key = hashlib.sha1(f"{account}|{event_id}|{topic}".encode()).hexdigest()
        return Event(account, topic, declared.resource, resource_id, payload, key)


def _payload(body: bytes) -> dict[str, Any]:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Refused(400, "the body is not JSON") from None
    if not isinstance(payload, dict):
        raise Refused(400, "the body is not a JSON object")
    if _deeper_than(payload, MAX_DEPTH):
        raise Refused(400, f"the body nests objects or arrays more than {MAX_DEPTH} levels "
                           "deep")
    return payload


def _check_fresh(stamp: Any) -> None:
    """``X-Shopify-Triggered-At`` (ISO 8601, nanoseconds) within Shopify's retries (about
    four hours; the receiver's horizon is three days) and not in the future: else a
    replay. A delivery without it is taken (it is signed)."""
    if not stamp:
        return
    text = str(stamp).strip().replace("Z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:  # Python reads at most microseconds
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[:min(digits, 6)]}{rest[digits:]}"
    try:
        when = datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise Refused(400, "X-Shopify-Triggered-At is not an ISO 8601 date-time") from None
    age = time.time() - when
    if age > STALE_AFTER_S or age < -SIGNATURE_SKEW_S:
        raise Refused(400, f"X-Shopify-Triggered-At {str(stamp)[:40]} is out of range (older "
                           "than three days, or in the future): a replay")


def redaction(event: Event) -> dict[str, Any] | None:
    """What a privacy event asks to forget: ``{"kind": "customer", "shop", "customer_id",
    "email", "phone", "orders"}`` for ``customers/redact``, ``{"kind": "shop", "shop"}`` for
    ``shop/redact``; None for any other event."""
    payload = event.payload
    if event.scope == "customers/redact":
        customer = payload.get("customer") or {}
        return {"kind": "customer", "shop": event.account,
                "customer_id": str(customer.get("id")) if customer.get("id") else None,
                "email": customer.get("email") or None, "phone": customer.get("phone") or None,
                "orders": [str(o) for o in payload.get("orders_to_redact") or []]}
    if event.scope == "shop/redact":
        return {"kind": "shop", "shop": event.account}
    return None


#: The secret each shop's client signs with (its app's client secret), by client: what a
#: subscription of the app "sends" (set by the source when it makes a shop's client).
_SIGNING: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
PAGE = 250


def signs_with(client: Any, secret: str | None) -> None:
    """Remember the client secret a shop's client's app signs deliveries with."""
    if secret:
        _SIGNING[client] = secret


def _query(name: str) -> str:
    from connectors.shopify import queries_check  # (the queries folder's reader)

    return queries_check.query(name)


class ShopifyHooks(Subscriptions):
    """The app's webhook subscriptions through the GraphQL Admin API."""

    #: The API's GraphQL endpoint (the source sets its spec's).
    graphql = GraphQLClient(endpoint="/graphql.json")

    def _api(self, client: Any) -> Any:
        from framework.engine.graphql import api_for

        return api_for(client, self.graphql)

    def _enum(self, topic: str) -> str:
        return topic.upper().replace("/", "_")

    def list(self, client: Any) -> list[dict[str, Any]]:
        topics = {self._enum(t): t for t in self.spec.scopes if t not in PRIVACY_TOPICS}
        signed = {self.spec.secret_header: _SIGNING.get(client, "")}
        hooks, after = [], None
        while True:
            data = self._api(client).run(_query("webhook_subscriptions"),
                                         {"first": PAGE, "after": after},
                                         what="the app's webhook subscriptions")
            page = (data or {}).get("webhookSubscriptions") or {}
            for node in page.get("nodes") or []:
                if node.get("topic") in topics:  # ours: a topic this connector knows
                    hooks.append({"id": node["id"], "scope": topics[node["topic"]],
                                  "destination": node.get("uri"), "is_active": True,
                                  "headers": signed})
            info = page.get("pageInfo") or {}
            if not info.get("hasNextPage"):
                return hooks
            after = info.get("endCursor")

    def create(self, client: Any, scope: str, url: str, headers: dict[str, str]
               ) -> dict[str, Any] | None:
        if scope in PRIVACY_TOPICS:
            raise ConnectorError(f"{scope} is not a subscription: Shopify sends it to the "
                                 "compliance webhooks URL of the app's configuration; set "
                                 f"that to {url} and take {scope} out of the webhooks table",
                                 "config_error")
        data = self._api(client).run(_query("webhook_subscription_create"),
                                     {"topic": self._enum(scope), "uri": url},
                                     what=f"webhookSubscriptionCreate {scope}",
                                     idempotent=False)
        answer = (data or {}).get("webhookSubscriptionCreate") or {}
        self._fail(answer, f"webhookSubscriptionCreate for {scope}")
        made = answer.get("webhookSubscription") or {}
        return {"id": made.get("id"), "scope": scope, "destination": made.get("uri"),
                "is_active": True, "headers": headers}

    def update(self, client: Any, hook: dict[str, Any], url: str, headers: dict[str, str]
               ) -> dict[str, Any] | None:
        """A subscription moved to ``url``: made anew there, then the old one removed (the
        topic is never without one)."""
        made = self.create(client, hook["scope"], url, headers)
        self.delete(client, hook)
        return made

    def delete(self, client: Any, hook: dict[str, Any]) -> None:
        data = self._api(client).run(_query("webhook_subscription_delete"), {"id": hook["id"]},
                                     what=f"webhookSubscriptionDelete {hook['scope']}",
                                     idempotent=False)
        self._fail((data or {}).get("webhookSubscriptionDelete") or {},
                   f"webhookSubscriptionDelete for {hook['scope']}")

    @staticmethod
    def _fail(answer: dict[str, Any], what: str) -> None:
        errors = [e.get("message") for e in answer.get("userErrors") or [] if e]
        if errors:
            raise ConnectorError(f"{what} failed: {'; '.join(map(str, errors))}",
                                 "config_error")
