"""Faults a sandbox injects at random (``runner sandbox NAME --faults 429=0.02,reset=0.01``):
what a client meets on a bad day, to prove that a sync under them ends where a clean one does.

Light on purpose (no web framework): the sandbox commands import it when the CLI loads.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import click
import orjson

#: The kinds of fault a profile can inject, and when. "before": the request never reaches the
#: API (nothing happened). "after": the API did the work, then the answer went wrong: the worst
#: case for a client, which cannot know whether a write took effect.
FAULT_KINDS = {
    "429": "before: HTTP 429 without any rate-limit header (another app, a proxy)",
    "500": "after on writes, before on reads: HTTP 500 with an error body",
    "502": "after on writes, before on reads: HTTP 502 with a proxy's HTML page",
    "503": "before: HTTP 503 (unavailable: nothing was done)",
    "reset": "after: the connection closes once the status line is sent, before the body",
    "truncate": "after: half the body is sent, then the connection closes",
    "slow": "after: the answer waits --faults-slow-ms (longer than the client's timeout)",
    "stall": "before: the request waits --faults-slow-ms, then its connection drops; the API "
             "never saw it",
}


class InjectedFault(Exception):
    """Raised inside the ASGI app to make uvicorn drop a connection mid-answer."""


@dataclass
class FaultProfile:
    """Random faults at fixed rates, e.g. ``429=0.02,500=0.01,reset=0.01`` (each a
    probability per API request; together at most 1). Seeded: the same seed gives the same
    faults for the same sequence of requests."""

    rates: dict[str, float]
    seed: int = 0
    slow_ms: int = 3000
    injected: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.random = random.Random(self.seed)

    @classmethod
    def parse(cls, text: str, seed: int = 0, slow_ms: int = 3000) -> FaultProfile:
        """Read ``kind=rate,...``; a clear error names what is wrong."""
        rates: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            kind, _, value = part.partition("=")
            if kind not in FAULT_KINDS:
                raise click.BadParameter(f"unknown fault {kind!r}; valid: "
                                         f"{', '.join(FAULT_KINDS)}", param_hint="--faults")
            try:
                rates[kind] = float(value)
            except ValueError:
                raise click.BadParameter(f"{kind}={value!r}: the rate must be a number "
                                         "between 0 and 1", param_hint="--faults") from None
            if not 0 <= rates[kind] <= 1:
                raise click.BadParameter(f"{kind}={value}: the rate must be between 0 and 1",
                                         param_hint="--faults")
        if sum(rates.values()) > 1:
            raise click.BadParameter("the rates add up to more than 1", param_hint="--faults")
        return cls(rates, seed, slow_ms)

    def draw(self) -> str | None:
        """The fault for the next request, if any."""
        roll, edge = self.random.random(), 0.0
        for kind, rate in self.rates.items():
            edge += rate
            if roll < edge:
                self.injected[kind] += 1
                return kind
        return None


ASGIApp = Callable[[MutableMapping[str, Any], Any, Any], Awaitable[None]]


class FaultInjector:
    """ASGI middleware: API requests (not ``/_sandbox`` ones) meet the profile's faults.

    ``GET /_sandbox/fault-profile`` reports the rates and how many of each fault were
    injected; ``POST /_sandbox/fault-profile`` replaces the profile (``{"rates": {...},
    "seed": n}``) or queues faults for the next requests to a path (``{"kind": "reset",
    "path": "/v3/events/batch", "count": 1}``), so that one test can run clean and faulty.
    """

    def __init__(self, app: ASGIApp, profile: FaultProfile) -> None:
        self.app, self.profile = app, profile
        self.queued: list[tuple[str, str]] = []  # (kind, path prefix)
        # uvicorn logs a dropped connection as an application error: these are on purpose.
        logging.getLogger("uvicorn.error").addFilter(
            lambda record: not (record.exc_info and record.exc_info[0] is InjectedFault))

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or "/_sandbox" in path:
            if path.endswith("/_sandbox/fault-profile"):
                await self._admin(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        fault = self._next(path)
        write = scope.get("method") not in ("GET", "HEAD")
        if fault in ("429", "503") or (fault in ("500", "502") and not write):
            await self._error(send, fault)
            return
        if fault is None:
            await self.app(scope, receive, send)
            return
        if fault == "stall":
            await _sleep(self.profile.slow_ms)
            await self._drop(send, {"type": "http.response.start", "status": 200,
                                    "headers": [(b"content-type", b"application/json")]}, b"",
                             fault)
        answer: list[MutableMapping[str, Any]] = []

        async def keep(message: MutableMapping[str, Any]) -> None:
            answer.append(message)

        await self.app(scope, receive, keep)  # the work is done; the answer goes wrong
        if fault in ("500", "502"):
            await self._error(send, fault)
            return
        if fault == "slow":
            await _sleep(self.profile.slow_ms)
            for message in answer:
                await send(message)
            return
        body = b"".join(m.get("body", b"") for m in answer[1:])
        await self._drop(send, answer[0], body, fault)

    @staticmethod
    async def _drop(send: Any, start: MutableMapping[str, Any], body: bytes, fault: str
                    ) -> None:
        """Send the status line and headers (and half the body when truncating), then make
        uvicorn close the connection."""
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(max(len(body), 2)).encode()))
        await send({**start, "headers": headers})
        cut = body[:len(body) // 2] if fault == "truncate" else b""
        await send({"type": "http.response.body", "body": cut, "more_body": True})
        raise InjectedFault(fault)

    def _next(self, path: str) -> str | None:
        for index, (kind, prefix) in enumerate(self.queued):
            if path.startswith(prefix) or path.endswith(prefix):
                del self.queued[index]
                self.profile.injected[kind] += 1
                return kind
        return self.profile.draw()

    async def _admin(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope.get("method") == "POST":
            raw = b""
            while True:
                message = await receive()
                raw += message.get("body", b"")
                if not message.get("more_body"):
                    break
            try:
                body = orjson.loads(raw or b"{}")
                if "kind" in body:
                    if body["kind"] not in FAULT_KINDS:
                        raise ValueError(f"unknown fault {body['kind']!r}; valid: "
                                         f"{', '.join(FAULT_KINDS)}")
                    self.queued += [(body["kind"], str(body.get("path", "/")))] * int(
                        body.get("count", 1))
                else:
                    text = ",".join(f"{k}={v}" for k, v in (body.get("rates") or {}).items())
                    profile = FaultProfile.parse(text, int(body.get("seed", 0)),
                                                 int(body.get("slow_ms", self.profile.slow_ms)))
                    profile.injected = self.profile.injected
                    self.profile = profile
            except (ValueError, TypeError, click.BadParameter) as exc:
                message = exc.message if isinstance(exc, click.BadParameter) else str(exc)
                await self._send(send, 422, orjson.dumps({"status": 422, "title": message}))
                return
        await self._send(send, 200, orjson.dumps({
            "rates": self.profile.rates, "injected": dict(self.profile.injected),
            "queued": len(self.queued)}))

    @staticmethod
    async def _send(send: Any, status: int, body: bytes, kind: bytes = b"application/json"
                    ) -> None:
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", kind),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def _error(self, send: Any, fault: str) -> None:
        if fault == "502":
            await self._send(send, 502, b"<html><body><h1>502 Bad Gateway</h1></body></html>",
                             b"text/html")
        else:
            await self._send(send, int(fault), orjson.dumps(
                {"status": int(fault), "title": "Injected fault", "type": "about:blank"}))


async def _sleep(ms: int) -> None:
    import asyncio  # here, not at the top: the CLI imports this module for every command

    await asyncio.sleep(ms / 1000)


def fault_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--faults``, ``--faults-seed`` and ``--faults-slow-ms`` for a sandbox command."""
    command = click.option("--faults-slow-ms", default=3000, show_default=True,
                           help="How long a 'slow' fault holds the answer.")(command)
    command = click.option("--faults-seed", default=0, show_default=True,
                           help="Seed of the fault draws.")(command)
    return click.option(
        "--faults", default="", metavar="KIND=RATE,...",
        help="Random faults per API request, e.g. 429=0.02,503=0.01,reset=0.01. Kinds: "
             + "; ".join(f"{k}: {v}" for k, v in FAULT_KINDS.items()))(command)


def with_faults(app: Any, faults: str, seed: int, slow_ms: int) -> Any:
    """``app`` behind a :class:`FaultInjector` (with no faults until a profile is set when
    ``faults`` is empty)."""
    return FaultInjector(app, FaultProfile.parse(faults, seed, slow_ms))
