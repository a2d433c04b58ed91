"""What every sandbox (a local emulator of a real API) shares: quota windows, request counting,
injected faults, JSON responses and a real server (uvicorn) on loopback.

When ready, a sandbox prints one JSON line on stdout (its URL and credentials) and serves until
it is stopped, so a test or a shell script can start it as a subprocess and read that line.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

import orjson
import uvicorn
from starlette.responses import Response

from framework.net import listen


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None
                  ) -> Response:
    """A JSON response serialized with orjson."""
    return Response(orjson.dumps(body), status_code=status, headers=headers,
                    media_type="application/json")


@dataclass
class QuotaWindow:
    """A fixed window of ``quota`` requests every ``window_ms`` (``quota=None``: unlimited).

    The real APIs do not document whether their windows are fixed or sliding; a fixed window
    is what their reset headers describe (time left until the quota is whole again).
    """

    quota: int | None
    window_ms: int
    started: float = 0.0
    used: int = 0

    def take(self) -> tuple[bool, int, int]:
        """Count one request; returns (allowed, requests left, ms until the window resets)."""
        now = time.monotonic()
        if now - self.started >= self.window_ms / 1000:
            self.started, self.used = now, 0
        reset_ms = max(1, int((self.started + self.window_ms / 1000 - now) * 1000))
        if self.quota is None:
            return True, 10**9, reset_ms
        if self.used >= self.quota:
            return False, 0, reset_ms
        self.used += 1
        return True, self.quota - self.used, reset_ms


@dataclass
class Faults:
    """Faults queued by tests, each for the next API request: an HTTP ``status`` (with or
    without the rate-limit headers: ``bare``), an HTML error page (``html``) such as a
    proxy sends, or a JSON ``body`` of the wrong shape."""

    queue: list[dict[str, Any]] = field(default_factory=list)

    def add(self, fault: dict[str, Any], count: int) -> None:
        self.queue.extend([fault] * count)

    def next(self) -> dict[str, Any] | None:
        return self.queue.pop(0) if self.queue else None


@dataclass
class RequestStats:
    """Requests seen: in all, per path template, per status, and how many were throttled."""

    total: int = 0
    throttled: int = 0
    by_path: Counter[str] = field(default_factory=Counter)
    by_status: Counter[int] = field(default_factory=Counter)

    def count(self, path: str, status: int) -> None:
        self.total += 1
        self.by_path[path] += 1
        self.by_status[status] += 1
        if status == 429:
            self.throttled += 1

    def as_dict(self) -> dict[str, Any]:
        return {"requests": self.total, "throttled": self.throttled,
                "by_path": dict(self.by_path),
                "by_status": {str(k): v for k, v in self.by_status.items()}}


async def delay(latency_ms: int) -> None:
    """Simulated network and server time for one response."""
    if latency_ms > 0:
        await asyncio.sleep(latency_ms / 1000)


def serve(app: Any, host: str, port: int, ready: dict[str, Any]) -> None:
    """Bind, print ``ready`` (plus the URL) as one JSON line, then serve until stopped."""
    sock = listen(host, port, ready)
    config = uvicorn.Config(_dated(app), log_level="warning", access_log=False,
                            lifespan="off", timeout_keep_alive=30, date_header=False)
    uvicorn.Server(config).run(sockets=[sock])


def _dated(app: Any) -> Any:
    """The app with a ``Date`` header read off the clock for each answer.

    uvicorn's own refreshes once a second on its event loop's tick, later under load: an
    answer could be dated a second or more before the records it lists were changed. Clients
    take the server's ``Date`` as the horizon of a read (a real API's is its clock), so a
    stale one made a read leave out records changed just before it started.
    """
    async def dated(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def send_dated(message: Any) -> None:
            if message["type"] == "http.response.start":
                now = formatdate(time.time(), usegmt=True).encode()
                message["headers"] = [*message.get("headers", []), (b"date", now)]
            await send(message)

        await app(scope, receive, send_dated)
    return dated
