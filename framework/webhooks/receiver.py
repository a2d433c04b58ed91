"""The webhook receiver: an ASGI app (served by uvicorn) that verifies, spools and acknowledges.

``POST /webhooks/{connector}``, in this order, so that nothing unverified is parsed or stored:

1. size: a body over ``max_body`` bytes is refused (413) before it is read in full;
2. authenticity: the secret header (constant-time compare with each store's secret: a store may
   have its own, see :class:`Verifier`) or a Standard Webhooks signature
   (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``: HMAC-SHA256 with the app's
   client secret, five minutes of clock skew) -- otherwise 401;
3. shape: strict JSON with the fields the platform's spec requires (``webhooks.payload``;
   e.g. ``scope``, ``data``, ``hash``, ``created_at``, ``producer``), nested at most
   ``MAX_DEPTH`` levels -- 400;
4. origin: the producer field must name a configured account whose secret was sent (the
   spec's ``webhooks.producer`` made of the account's config) -- 401;
5. scope: one the config subscribes to, with a valid resource id where the scope puts it (e.g.
   an integer from 1 to 2**31 - 1, or a UUID, as the spec's ``id_type`` says) -- 400;
6. freshness: the payload's ``created_at`` field, when the spec names one, within the retry
   horizon (three days) -- 400;
7. the event is committed to the spool (SQLite, WAL, synchronous FULL) and only then is 200
   sent. A re-delivery (the same values of the spec's ``payload.dedupe`` fields) is
   acknowledged and not stored again.

Appends from concurrent requests are committed together by one writer thread (group commit):
one disk sync per batch, not per request. A batch that cannot be committed is committed event by
event, so that one event that cannot be stored fails alone.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from framework.declarative.paginators import dig
from framework.declarative.spec import Webhooks
from framework.storage import problem as storage_problem
from framework.webhooks.guard import Limits, Proxies, RefusalLog
from framework.webhooks.spool import Event, Spool, check_id

log = logging.getLogger("tajo.receiver")

MAX_BODY = 64 * 1024  # webhook payloads carry ids: a few hundred bytes
SIGNATURE_SKEW_S = 300
#: Older deliveries are replays: platforms retry for a day or two (about 48 hours).
STALE_AFTER_S = 3 * 24 * 3600
MAX_DEPTH = 16  # payloads nest a few levels (three, typically); orjson writes at most 254
#: The Python type of each ``webhooks.payload.required`` type.
TYPES: dict[str, type] = {"string": str, "integer": int, "object": dict, "array": list}


class Refused(Exception):
    """A request that is not stored: its status and the one-line reason sent back."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class SpoolWriter:
    """One thread that commits the events of concurrent requests in batches."""

    def __init__(self, path: str | Path, on_stored: Callable[[], None] | None = None,
                 keep_days: float = 30) -> None:
        self.path = path
        self.on_stored = on_stored
        self.keep_s = keep_days * 86400
        self.pruned_at = 0.0
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.stored = self.duplicates = 0
        Spool(path, durable=True).close()  # create it (and fail now if the path is wrong)
        self.thread = threading.Thread(target=self._run, name="spool-writer", daemon=True)
        self.thread.start()

    def submit(self, event: Event) -> asyncio.Future[int | None]:
        """Queue an event; the future gets its offset (None: a duplicate) once committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int | None] = loop.create_future()
        self.queue.put((event, future, loop))
        return future

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join(timeout=10)

    def _run(self) -> None:
        spool = Spool(self.path, durable=True)
        try:
            while True:
                item = self.queue.get()
                if item is None:
                    return
                batch = [item]
                while len(batch) < 1000:
                    try:
                        item = self.queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is None:
                        self.queue.put(None)
                        break
                    batch.append(item)
                self._commit(spool, batch)
                if time.monotonic() - self.pruned_at > 3600:
                    self._prune(spool)
        finally:
            spool.close()

    def _prune(self, spool: Spool) -> None:
        """Events older than ``keep_days`` go (carts live 30 days; platforms retry for
        two): the spool stays small however long the receiver runs."""
        self.pruned_at = time.monotonic()
        gone = spool.prune(time.time() - self.keep_s)
        if gone:
            log.info("pruned %d spooled events older than %.0f days", gone, self.keep_s / 86400)

    def _commit(self, spool: Spool, batch: list[Any]) -> None:
        try:
            offsets: list[Any] = spool.append_many(event for event, _, _ in batch)
        except Exception as exc:
            # One event that cannot be stored must not fail the others: each is tried alone
            # (one transaction each, only on this rare path), and fails alone.
            log.error("cannot store %d webhooks in the spool together (%s); storing them one "
                      "by one", len(batch), exc)
            offsets = [self._one(spool, event) for event, _, _ in batch]
        for (_, future, loop), offset in zip(batch, offsets, strict=True):
            loop.call_soon_threadsafe(_settle, future, offset)
        new = sum(1 for o in offsets if isinstance(o, int))
        self.stored += new
        self.duplicates += sum(1 for o in offsets if o is None)
        if new and self.on_stored:
            self.on_stored()


    @staticmethod
    def _one(spool: Spool, event: Event) -> int | Exception | None:
        try:
            return spool.append_many([event])[0]
        except (TypeError, ValueError) as exc:  # the event itself (orjson cannot write it)
            return Refused(400, f"the event cannot be stored: {exc}")
        except Exception as exc:  # e.g. the disk is full: a 503, and the platform retries
            log.error("cannot store a webhook in the spool: %s", exc)
            return exc


def _settle(future: asyncio.Future[Any], outcome: Any) -> None:
    if future.done():
        return
    if isinstance(outcome, Exception):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


def signature_ok(key: bytes, headers: Any, body: bytes, now: float) -> bool:
    """A valid Standard Webhooks signature made with ``key``, sent within the allowed skew."""
    msg_id, stamp = headers.get("webhook-id"), headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not (msg_id and stamp and signatures):
        return False
    try:
        if abs(now - int(stamp)) > SIGNATURE_SKEW_S:
            return False
    except ValueError:
        return False
    expected = base64.b64encode(hmac.new(key, f"{msg_id}.{stamp}.".encode() + body,
                                         hashlib.sha256).digest())
    return any(version == "v1" and hmac.compare_digest(sig.encode(), expected)
               for version, _, sig in (part.partition(",") for part in signatures.split()))


def sign(key: bytes, msg_id: str, stamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for a body (what a sender computes)."""
    digest = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


class Verifier:
    """Turns a request into a spool event, or refuses it with a status and reason.

    ``secrets`` maps each account (store) to its webhook secret: a store's own, or the shared
    one. The secret header is compared with every store's secret (each in constant time, all of
    them every time, so the time taken says nothing about which matched), and the event is
    taken only for a store whose secret it carries. A Standard Webhooks signature is made with
    the app's client secret, which speaks for every store the app is installed in.
    """

    def __init__(self, spec: Webhooks, accounts: dict[str, str], scopes: list[str],
                 secrets: dict[str, str], client_secret: str | None = None) -> None:
        self.spec = spec
        self.accounts = accounts  # producer value -> account key
        self.scopes = set(scopes)
        self.secrets = {account: secret.encode() for account, secret in secrets.items()}
        signed = spec.signatures == "standard_webhooks"
        self.key = client_secret.encode() if client_secret and signed else None
        self.required = {name: TYPES[kind] for name, kind in spec.payload.required.items()}
        self.header = spec.secret_header.lower()

    def authentic(self, headers: Any, body: bytes) -> set[str] | None:
        """The accounts the request's credentials speak for (None: no valid credentials)."""
        given = headers.get(self.header)
        if given is not None:
            sent = given.encode()
            matches = {account for account, secret in self.secrets.items()
                       if hmac.compare_digest(sent, secret)}  # a set: every one is compared
            return matches or None
        if self.key is not None and signature_ok(self.key, headers, body, time.time()):
            return set(self.secrets)
        return None

    def event(self, body: bytes, allowed: set[str] | None = None) -> Event:
        """The event of a body whose credentials speak for the accounts ``allowed`` (None:
        any account)."""
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise Refused(400, "the body is not JSON") from None
        if not isinstance(payload, dict):
            raise Refused(400, "the body is not a JSON object")
        if _deeper_than(payload, MAX_DEPTH):
            raise Refused(400, f"the body nests objects or arrays more than {MAX_DEPTH} levels "
                               f"deep ({self.spec.platform}'s nest a few)")
        for name, kind in self.required.items():
            value = payload.get(name)
            if not isinstance(value, kind) or isinstance(value, bool):
                raise Refused(400, f"field {name!r} is missing or not a {kind.__name__}")
        noun = self.spec.account
        producer = str(payload.get(self.spec.producer_field))
        account = self.accounts.get(producer)
        if account is None:
            raise Refused(401, f"producer {producer[:80]!r} is not a configured {noun}")
        if allowed is not None and account not in allowed:
            raise Refused(401, f"the secret sent is not {noun} {account}'s webhook secret")
        scope = str(payload.get(self.spec.payload.scope))
        if scope not in self.scopes:
            raise Refused(400, f"scope {scope[:80]!r} is not subscribed; subscribed: "
                               f"{', '.join(sorted(self.scopes))}")
        declared = self.spec.scopes[scope]
        resource_id = dig(payload, declared.id)
        if resource_id is None or resource_id == "":
            raise Refused(400, f"{scope} payload has no resource id at {declared.id}")
        try:
            resource_id = check_id(resource_id, declared.id_type)
        except ValueError as exc:  # stored, it would be dead-lettered by every reader
            raise Refused(400, f"{scope} payload: the {declared.resource} id at {declared.id} "
                               f"{exc}") from None
        _check_fresh(payload, self.spec.payload.created_at)
        # Joined as they always were ("producer|scope|hash|created_at" for the first platform), so
        # that a spool written before keeps recognizing re-deliveries.
        fields = "|".join(str(payload.get(name)) for name in self.spec.payload.dedupe)
        key = hashlib.sha1(fields.encode()).hexdigest()
        return Event(account, scope, declared.resource, resource_id, payload, key)


def _check_fresh(payload: dict[str, Any], field: str | None) -> None:
    """An event dated (epoch seconds in ``field``) past the retry horizon, or in the future,
    is a replay."""
    if field is None:
        return
    created = payload.get(field)
    if not isinstance(created, (int, float)) or isinstance(created, bool):
        raise Refused(400, f"field {field!r} is missing or not a number")
    age = time.time() - created
    if age > STALE_AFTER_S or age < -SIGNATURE_SKEW_S:
        raise Refused(400, f"{field} {created} is out of range (older than three days, or "
                           "in the future): a replay")


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether objects and arrays nest more than ``limit`` levels in ``value`` (no recursion:
    the value is an untrusted body)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        for child in children:
            if isinstance(child, (dict, list)):
                if depth >= limit:
                    return True
                stack.append((child, depth + 1))
    return False


def build_app(verifier: Verifier, writer: SpoolWriter, path: str, max_body: int = MAX_BODY,
              limits: Limits | None = None, refusals: RefusalLog | None = None,
              more_routes: list[Route] | None = None) -> Starlette:
    """The receiver's ASGI app (``framework.webhooks.guard`` serves it within ``limits``);
    ``more_routes``: e.g. the storefront endpoint's (``framework.webhooks.storefront``)."""
    limits = limits or Limits()
    refusals = refusals or RefusalLog(limits.refusal_log_lines, limits.refusal_log_interval)
    proxies = Proxies(limits.trusted_proxies)
    counts = {"stored": 0, "duplicate": 0, "refused": 0}

    def refuse(request: Request, status: int, reason: str, close: bool = False) -> Response:
        counts["refused"] += 1
        peer = request.client.host if request.client else "?"
        refusals("refused a webhook from %s: HTTP %d, %s",
                 proxies.client(peer, request.headers.get("x-forwarded-for")), status, reason)
        return Response(orjson.dumps({"status": status, "error": reason}), status,
                        media_type="application/json",
                        headers={"connection": "close"} if close else None)

    async def read_body(request: Request) -> bytes | None:
        """The body, or None when it is over ``max_body``."""
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_body:
                return None
        return bytes(body)

    async def receive(request: Request) -> Response:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > max_body):
            return refuse(request, 413, f"the body is over {max_body} bytes", close=True)
        try:  # uvicorn gives a body all the time it takes: a slow one holds a connection
            async with asyncio.timeout(limits.body_timeout):
                body = await read_body(request)
        except TimeoutError:
            return refuse(request, 408, f"the body took over {limits.body_timeout:g} s",
                          close=True)
        except ClientDisconnect:
            return Response(status_code=400)  # nobody is left to answer
        if body is None:
            return refuse(request, 413, f"the body is over {max_body} bytes", close=True)
        allowed = verifier.authentic(request.headers, body)
        if allowed is None:
            return refuse(request, 401, "no valid secret header or signature")
        try:
            event = verifier.event(body, allowed)
        except Refused as exc:
            return refuse(request, exc.status, exc.reason)
        try:
            offset = await writer.submit(event)
        except Refused as exc:  # this event cannot be stored, however often it is sent
            return refuse(request, exc.status, exc.reason)
        except Exception:  # the spool could not take it: let the platform retry
            return refuse(request, 503, "the spool is unavailable; retry later")
        status = "stored" if offset is not None else "duplicate"
        counts[status] += 1
        return Response(orjson.dumps({"status": status}), 200, media_type="application/json")

    async def health(_: Request) -> Response:
        """Readiness: 503 while the spool's storage does not answer (a replica that cannot
        commit must not be sent webhooks it would refuse; the others take them)."""
        broken = await asyncio.to_thread(storage_problem, writer.path)
        if broken is not None:
            return Response(orjson.dumps({"ok": False, "storage": broken, **counts}), 503,
                            media_type="application/json")
        return Response(orjson.dumps({"ok": True, **counts}), media_type="application/json")

    async def alive(_: Request) -> Response:
        """Liveness: the process answers (a storage outage is no reason to restart it)."""
        return Response(orjson.dumps({"ok": True}), media_type="application/json")

    return Starlette(routes=[Route(path, receive, methods=["POST"]),
                             Route("/healthz", health, methods=["GET"]),
                             Route("/livez", alive, methods=["GET"]), *(more_routes or [])])
