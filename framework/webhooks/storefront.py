"""The receiver's storefront endpoint: events a store's pages send (products viewed, carts,
checkouts), checked as strictly as a webhook and spooled before they are acknowledged.

``POST /storefront/{connector}`` takes a *beacon* (``navigator.sendBeacon``, ``text/plain``, so
no CORS preflight): ``{"v": 1, "account", "visitor", "token"?, "events": [...]}``. In this order,
so that nothing unchecked is parsed or stored:

1. origin: the ``Origin`` header must be a page of a configured account (the accounts' origins,
   from their API's record the platform's spec names, plus the config's ``origins``) -- 403;
   answers to an allowed origin carry ``Access-Control-Allow-Origin`` for it, and no other;
2. per address: at most ``per_ip`` beacons a minute from one client address -- 429;
3. size: over ``max_body`` bytes (16 KB; a beacon is a few hundred) -- 413, before it is read;
4. shape: strict JSON matching :data:`BEACON` (types, lengths, at most ``MAX_EVENTS``
   events) -- 400; its account must be one this origin serves -- 403;
5. identity: a ``token`` (the platform's signed token for its logged-in shopper, see
   ``framework.declarative.spec.IdentityToken``) must verify with the account's secret, for
   that account and audience, unexpired -- 401; the shopper's id and email are then taken
   from it, never from the body;
6. per visitor: at most ``per_visitor`` events a minute for one visitor id -- 429;
7. each event is committed to the spool (one event per record, keyed by account, visitor and
   the event's id, so a beacon sent twice is stored once), and only then is 200 sent.

Nothing here decides what reaches a marketing tool: a visitor nobody identified is stored with
its first-party id only, for a destination to join once the shopper logs in.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import jwt
import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from framework.declarative.formats import format_utc
from framework.declarative.paginators import dig
from framework.declarative.spec import IdentityToken, Storefront
from framework.webhooks.guard import Proxies, RefusalLog
from framework.webhooks.receiver import Refused, SpoolWriter
from framework.webhooks.spool import Event

log = logging.getLogger("tajo.receiver")

MAX_BODY = 16 * 1024
MAX_EVENTS = 20
EVENT_TYPES = ("product_viewed", "category_viewed", "cart_updated", "checkout_started")
_ID = {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,64}$"}
#: An event's own id: with the visitor's (64 at most) it is the record's id, which stays
#: within the spool's 100 characters.
_EVENT_ID = {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,32}$"}
_TEXT = {"type": ["string", "null"], "maxLength": 300}
_URL = {"type": ["string", "null"], "maxLength": 2000}
_MONEY = {"type": ["number", "null"], "minimum": 0, "maximum": 1e9}
_CURRENCY = {"type": ["string", "null"], "pattern": "^[A-Z]{3}$"}
_ITEM = {"type": "object", "additionalProperties": False, "required": ["quantity"],
         "properties": {"product_id": _ID, "variant_id": {"anyOf": [_ID, {"type": "null"}]},
                        "sku": _TEXT, "name": _TEXT, "quantity": {
                            "type": "number", "minimum": 0, "maximum": 100000},
                        "price": _MONEY, "url": _URL, "image_url": _URL}}
#: What a page may send (JSON Schema): every string bounded, nothing unknown.
BEACON: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "required": ["v", "account", "visitor", "events"],
    "properties": {
        "v": {"const": 1},
        "account": _ID,
        "visitor": {"type": "string", "pattern": "^[A-Za-z0-9_-]{16,64}$"},
        "token": {"type": "string", "maxLength": 4096},
        "events": {"type": "array", "minItems": 1, "maxItems": MAX_EVENTS, "items": {
            "type": "object", "additionalProperties": False, "required": ["id", "type", "at"],
            "properties": {
                "id": _EVENT_ID,
                "type": {"enum": list(EVENT_TYPES)},
                "at": {"type": "integer", "minimum": 0},
                "url": _URL,
                "product": {"type": "object", "additionalProperties": False, "required": ["id"],
                            "properties": {"id": _ID,
                                           "variant_id": {"anyOf": [_ID, {"type": "null"}]},
                                           "sku": _TEXT, "name": _TEXT, "price": _MONEY,
                                           "currency": _CURRENCY, "url": _URL,
                                           "image_url": _URL}},
                "category": {"type": "object", "additionalProperties": False,
                             "required": ["id"], "properties": {"id": _ID, "name": _TEXT}},
                "cart": {"type": "object", "additionalProperties": False, "required": ["id"],
                         "properties": {"id": _ID, "currency": _CURRENCY, "total": _MONEY,
                                        "email": {"type": ["string", "null"],
                                                  "maxLength": 254},
                                        "items": {"type": "array", "maxItems": 100,
                                                  "items": _ITEM}}}}}}}}
_BEACON = jsonschema.Draft7Validator(BEACON)
#: An event dated this far from the receiver's clock is refused (a page's clock may be off,
#: and a beacon sent as a tab closes arrives a little late).
MAX_SKEW_S = 24 * 3600


class RateLimit:
    """Token buckets by key: ``per_minute`` on average, bursts up to ``burst``; at most
    ``max_keys`` keys are remembered (the least recently seen go first)."""

    def __init__(self, per_minute: float, burst: float, max_keys: int = 100_000) -> None:
        self.rate, self.burst, self.max_keys = per_minute / 60.0, burst, max_keys
        self.buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, key: str, count: float = 1, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        tokens, then = self.buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - then) * self.rate)
        allowed = tokens >= count
        self.buckets[key] = (tokens - count if allowed else tokens, now)
        if len(self.buckets) > self.max_keys:
            self.buckets.popitem(last=False)
        return allowed


@dataclass
class Account:
    """What the endpoint knows of one account: its origins and identity token settings."""

    key: str
    origins: set[str]
    secret: str | None = None
    audience: str | None = None


def origin_of(value: str) -> str | None:
    """A URL or host name as an origin (``scheme://host[:port]``, lowercase)."""
    text = value.strip()
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname.lower()}{port}"


@dataclass
class Limits:
    """The storefront endpoint's bounds (``runner webhooks serve --storefront-*``)."""

    max_body: int = MAX_BODY
    per_ip: float = 120.0  # beacons a minute from one address (a page sends a few)
    per_visitor: float = 60.0  # events a minute for one visitor


@dataclass
class Counts:
    stored: int = 0
    duplicate: int = 0
    refused: dict[int, int] = field(default_factory=dict)


class Beacons:
    """Turns a beacon into spool events, or refuses it (:class:`Refused`)."""

    def __init__(self, spec: Storefront, accounts: list[Account],
                 limits: Limits | None = None) -> None:
        self.spec = spec
        self.accounts = {a.key: a for a in accounts}
        self.limits = limits or Limits()
        self.by_origin: dict[str, set[str]] = {}
        for account in accounts:
            for origin in account.origins:
                self.by_origin.setdefault(origin, set()).add(account.key)
        self.per_ip = RateLimit(self.limits.per_ip, max(10.0, self.limits.per_ip / 4))
        self.per_visitor = RateLimit(self.limits.per_visitor,
                                     max(10.0, self.limits.per_visitor / 2))
        self.counts = Counts()

    def allowed_origin(self, origin: str | None) -> bool:
        return origin is not None and origin_of(origin) in self.by_origin

    def check_address(self, address: str) -> None:
        if not self.per_ip.take(address):
            raise Refused(429, f"more than {self.limits.per_ip:g} beacons a minute from "
                               "this address")

    def events(self, origin: str, body: bytes, now: float | None = None) -> list[Event]:
        """The spool events of a beacon sent from a page of ``origin``."""
        now = time.time() if now is None else now
        try:
            beacon = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise Refused(400, "the body is not JSON") from None
        error = next(iter(sorted(_BEACON.iter_errors(beacon), key=lambda e: e.path)), None)
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "the beacon"
            raise Refused(400, f"{where}: {error.message[:200]}")
        account = self.accounts.get(beacon["account"])
        if account is None or account.key not in self.by_origin.get(origin_of(origin) or "",
                                                                     set()):
            raise Refused(403, f"account {beacon['account'][:64]!r} has no storefront at "
                               f"{origin[:100]}")
        identity = self._identity(account, beacon.get("token"), now)
        visitor = beacon["visitor"]
        if not self.per_visitor.take(f"{account.key}|{visitor}", len(beacon["events"])):
            raise Refused(429, f"more than {self.limits.per_visitor:g} events a minute for "
                               "this visitor")
        return [self._event(account.key, visitor, identity, event, now)
                for event in beacon["events"]]

    def _event(self, account: str, visitor: str, identity: dict[str, Any],
               event: dict[str, Any], now: float) -> Event:
        at = event["at"] / 1000.0
        if abs(now - at) > MAX_SKEW_S:
            raise Refused(400, f"event {event['id']}: dated {event['at']}, more than a day "
                               "from now")
        payload = {"id": f"{visitor}:{event['id']}", "type": event["type"],
                   "occurred_at": format_utc(at), "received_at": format_utc(now),
                   "visitor_id": visitor, **identity,
                   **{k: event.get(k) for k in ("url", "product", "category", "cart")}}
        key = hashlib.sha1(f"{account}|{payload['id']}".encode()).hexdigest()
        return Event(account, f"storefront/{event['type']}", self.spec.resource,
                     payload["id"], payload, key)

    def _identity(self, account: Account, token: str | None, now: float) -> dict[str, Any]:
        """The shopper a verified token names (empty without a token)."""
        spec = self.spec.identity
        if not token:
            return {"customer_id": None, "email": None, "identified_by": None}
        if spec is None or not account.secret:
            raise Refused(401, "a shopper token was sent, but no secret to verify it is "
                               "configured")
        try:
            claims = jwt.decode(token, account.secret, algorithms=list(spec.algorithms),
                                audience=account.audience or None, issuer=spec.issuer,
                                options={"require": ["exp", "iat"],
                                         "verify_aud": bool(account.audience)},
                                leeway=60)
        except jwt.PyJWTError as exc:
            raise Refused(401, f"the shopper token is not valid: {str(exc)[:120]}") from None
        return _claims(spec, account.key, claims, now)


def _claims(spec: IdentityToken, account: str, claims: dict[str, Any], now: float
            ) -> dict[str, Any]:
    if now - float(claims.get("iat") or 0) > spec.max_age_s:
        raise Refused(401, f"the shopper token is older than {spec.max_age_s} s")
    for name, value in spec.claims.items():
        if dig(claims, name) != value:
            raise Refused(401, f"the shopper token's {name} is not {value!r}")
    if str(dig(claims, spec.account_claim)) != account:
        raise Refused(401, "the shopper token is another account's")
    customer = dig(claims, spec.customer_id_claim)
    if customer in (None, "", 0):
        raise Refused(401, "the shopper token names no customer")
    email = dig(claims, spec.email_claim) if spec.email_claim else None
    return {"customer_id": str(customer),
            "email": str(email).strip().lower() if email else None, "identified_by": "token"}


def accounts_of(source: Any, config: dict[str, Any], extra_origins: list[str]
                ) -> list[Account]:
    """Each account of a source's config as the endpoint knows it: its origins (read from
    the API record the spec's ``storefront.origins`` names, plus ``extra_origins``), its
    token secret and audience (the account's own config fields, else the shared ones)."""
    spec = source.loaded.model.storefront
    identity = spec.identity if spec is not None else None
    found = []
    for account in source.accounts(config):
        key = source.account_key(account)
        origins = {o for o in map(origin_of, extra_origins) if o}
        if spec is not None and spec.origins is not None:
            client = source.client(account)
            try:
                record = client.get(spec.origins.get) or {}
            except Exception as exc:
                log.warning("%s: could not read its storefront's domains (%s); only the "
                            "configured origins may send events", key, exc)
                record = {}
            finally:
                client.close()
            origins |= {o for name in spec.origins.fields
                        if isinstance(value := dig(record, name), str)
                        and (o := origin_of(value))}
        secret = audience = None
        if identity is not None:
            secret = account.get(identity.secret_field) or config.get(identity.secret_field)
            if identity.audience_field:
                audience = (account.get(identity.audience_field)
                            or config.get(identity.audience_field))
        found.append(Account(key, origins, secret, audience))
    return found


def routes(beacons: Beacons, writer: SpoolWriter, path: str, body_timeout: float,
           refusals: RefusalLog, proxies: Proxies) -> list[Route]:
    """The endpoint's routes (``POST`` and its CORS preflight ``OPTIONS`` at ``path``), for
    ``framework.webhooks.receiver.build_app``."""
    max_body = beacons.limits.max_body

    def cors(origin: str | None) -> dict[str, str]:
        if not beacons.allowed_origin(origin):
            return {"vary": "Origin"}
        assert origin is not None
        return {"access-control-allow-origin": origin, "vary": "Origin",
                "access-control-allow-credentials": "true"}

    def refuse(request: Request, status: int, reason: str) -> Response:
        beacons.counts.refused[status] = beacons.counts.refused.get(status, 0) + 1
        peer = request.client.host if request.client else "?"
        refusals("refused a storefront beacon from %s: HTTP %d, %s",
                 proxies.client(peer, request.headers.get("x-forwarded-for")), status, reason)
        return Response(orjson.dumps({"status": status, "error": reason}), status,
                        media_type="application/json",
                        headers=cors(request.headers.get("origin")))

    async def preflight(request: Request) -> Response:
        origin = request.headers.get("origin")
        if not beacons.allowed_origin(origin):
            return refuse(request, 403, f"origin {str(origin)[:100]!r} is no store's")
        return Response(status_code=204, headers={
            **cors(origin), "access-control-allow-methods": "POST",
            "access-control-allow-headers": "content-type", "access-control-max-age": "600"})

    async def receive(request: Request) -> Response:
        origin = request.headers.get("origin")
        if not beacons.allowed_origin(origin):
            return refuse(request, 403, f"origin {str(origin)[:100]!r} is no store's")
        assert origin is not None
        peer = request.client.host if request.client else "?"
        try:
            beacons.check_address(proxies.client(peer, request.headers.get("x-forwarded-for")))
            body = await _read(request, max_body, body_timeout)
            events = beacons.events(origin, body)
            outcomes = [await writer.submit(event) for event in events]
        except Refused as exc:
            return refuse(request, exc.status, exc.reason)
        except ClientDisconnect:
            return Response(status_code=400)
        except Exception:  # the spool could not take them: the page's next beacon retries
            return refuse(request, 503, "the spool is unavailable; retry later")
        stored = sum(1 for o in outcomes if o is not None)
        beacons.counts.stored += stored
        beacons.counts.duplicate += len(outcomes) - stored
        return Response(orjson.dumps({"stored": stored, "duplicate": len(outcomes) - stored}),
                        200, media_type="application/json", headers=cors(origin))

    return [Route(path, receive, methods=["POST"]), Route(path, preflight, methods=["OPTIONS"])]


async def _read(request: Request, max_body: int, timeout: float) -> bytes:
    """The body, refused over ``max_body`` (413) or slower than ``timeout`` (408)."""
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > max_body):
        raise Refused(413, f"the body is over {max_body} bytes")
    body = bytearray()
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                body += chunk
                if len(body) > max_body:
                    raise Refused(413, f"the body is over {max_body} bytes")
    except TimeoutError:
        raise Refused(408, f"the body took over {timeout:g} s") from None
    return bytes(body)
