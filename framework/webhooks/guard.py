"""The webhook receiver's HTTP server: uvicorn, with the limits a stranger must not get around.

The receiver listens on the internet and anyone can connect before any secret is checked, so the
server itself bounds what one client can hold. What uvicorn (0.54, httptools) does not do, found
by trying it:

- header size and count: httptools has no limit, and it joins a header that arrives in pieces
  by copying what it has so far, so one 100 MB header costs time that grows with its square
  (valid webhooks waited 4 to 19 s behind one). :class:`Limits.max_header_bytes` (request line
  and headers) and ``max_headers`` are checked before bytes reach the parser: 431, then close;
- time before the headers: uvicorn starts no timer before the first request (a connection that
  sends nothing, or a byte a minute, is held forever). ``header_timeout`` runs from the
  connection (or the next request's first byte) to the end of the headers: 408, then close;
- time for the body: the app (``framework.webhooks.receiver``) stops reading after ``body_timeout``
  (408, connection closed); keep-alive idle time is uvicorn's ``timeout_keep_alive``;
- connections: uvicorn's ``limit_concurrency`` answers 503 to requests, but only once headers
  are in, and every open connection holds a file descriptor (1,100 idle ones exhausted the
  default 1,024). At ``max_connections`` a new connection closes the oldest one that has no
  request in progress (a valid webhook still gets in; a slow client is dropped), or, when
  every one is busy, is itself closed. The descriptor limit is raised to its hard limit at
  start, and ``max_connections`` kept under it;
- the refusal log: a refusal is logged at most ``refusal_log_lines`` times per
  ``refusal_log_interval`` seconds; the next line logged says how many were left out;
- ``X-Forwarded-For``: uvicorn believes it from 127.0.0.1 by default. Here it is read only from
  ``trusted_proxies`` (none by default), and only for what the log names as the client.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import resource
import time
from dataclasses import dataclass
from typing import Any

import httptools
import orjson
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from framework.net import listen

log = logging.getLogger("tajo.receiver")

STATUS_TEXT = {400: "Bad Request", 408: "Request Timeout",
               431: "Request Header Fields Too Large"}
#: Descriptors kept for the spool, the log, the forwarder's connections and the listener.
SPARE_FDS = 64


@dataclass(frozen=True)
class Limits:
    """What one client may hold of the receiver (the README's Webhooks section lists them)."""

    max_header_bytes: int = 16 * 1024  # platforms send well under 2 KB of headers
    max_headers: int = 64
    header_timeout: float = 10.0
    body_timeout: float = 10.0
    idle_timeout: float = 5.0
    max_connections: int = 1000
    refusal_log_lines: int = 20
    refusal_log_interval: float = 60.0
    trusted_proxies: tuple[str, ...] = ()


class RefusalLog:
    """Logs refusals, at most ``lines`` per ``interval`` seconds; the first line of a new
    interval says how many were left out before it."""

    def __init__(self, lines: int, interval: float) -> None:
        self.lines, self.interval = lines, interval
        self.window_start = -interval
        self.logged = self.suppressed = 0

    def __call__(self, message: str, *args: Any) -> bool:
        """Log one refusal (``logging`` style arguments); False when it was left out."""
        now = time.monotonic()
        if now - self.window_start >= self.interval:
            self.window_start, self.logged = now, 0
        if self.logged >= self.lines:
            self.suppressed += 1
            return False
        self.logged += 1
        if self.suppressed:
            message += " (%d more refusals were not logged, at most %d are per %g s)"
            args = (*args, self.suppressed, self.lines, self.interval)
            self.suppressed = 0
        log.warning(message, *args)
        return True


class Proxies:
    """The trusted proxies: addresses or networks (``10.0.0.0/8``)."""

    def __init__(self, entries: tuple[str, ...]) -> None:
        self.networks = [ipaddress.ip_network(entry, strict=False) for entry in entries]

    def trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.networks)

    def client(self, peer: str, forwarded_for: str | None) -> str:
        """Who sent a request: the peer, or, when the peer is a trusted proxy, the nearest
        address in ``X-Forwarded-For`` that is not one (each proxy appends its peer)."""
        if not forwarded_for or not self.trusted(peer):
            return peer
        for hop in reversed([h.strip() for h in forwarded_for.split(",")][-16:]):
            if not self.trusted(hop):
                try:
                    return str(ipaddress.ip_address(hop))
                except ValueError:
                    return peer  # not an address: the header was not written by our proxy
        return peer


def parse_proxy(value: str) -> str:
    """A ``--trusted-proxy`` value, checked (ValueError says what is wrong)."""
    try:
        return str(ipaddress.ip_network(value.strip(), strict=False))
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address or network (e.g. 10.0.0.5 or "
                         "10.0.0.0/8)") from None


def fd_headroom(wanted: int) -> int:
    """Raise the descriptor limit to its hard limit; how many connections fit under it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = 65536 if hard == resource.RLIM_INFINITY else hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, target), hard))
            soft = max(soft, target)
        except (ValueError, OSError):
            pass
    return max(1, min(wanted, soft - SPARE_FDS))


class _TooManyHeaders(Exception):
    pass


def guarded_protocol(limits: Limits, refusals: RefusalLog) -> type:
    """uvicorn's httptools protocol with the limits of the module doc."""

    class Guarded(HttpToolsProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.opened = time.monotonic()
            self.in_head = True
            self.head_bytes = self.header_count = 0
            self.tail = b""
            self.head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            if len(self.connections) > limits.max_connections:
                _make_room(self)
            self._arm_head_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_head_timer()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self.in_head and not self._head_fits(data):
                self.refuse(431, f"request line and headers over {limits.max_header_bytes} "
                                 "bytes")
                return
            self._unset_keepalive_if_required()
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserUpgrade:
                self.refuse(400, "protocol upgrades are not served here")
            except httptools.HttpParserError:
                if self.header_count > limits.max_headers:
                    self.refuse(431, f"more than {limits.max_headers} headers")
                else:
                    self.refuse(400, "not a valid HTTP/1.1 request")

        def _head_fits(self, data: bytes) -> bool:
            """Whether the head stays within bounds (its end may be in ``data``)."""
            start = self.head_bytes - len(self.tail)
            self.head_bytes += len(data)
            if self.head_bytes <= limits.max_header_bytes:
                self.tail = (self.tail + data)[-3:]
                return True
            end = (self.tail + data).find(b"\r\n\r\n")
            return end >= 0 and start + end + 4 <= limits.max_header_bytes

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self.in_head = True
            self.header_count = 0
            self._arm_head_timer()

        def on_header(self, name: bytes, value: bytes) -> None:
            self.header_count += 1
            if self.header_count > limits.max_headers:
                raise _TooManyHeaders
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self.in_head = False
            self.head_bytes, self.tail = 0, b""
            self._cancel_head_timer()
            super().on_headers_complete()

        def _arm_head_timer(self) -> None:
            if self.head_timer is None:
                self.head_timer = self.loop.call_later(limits.header_timeout, self._head_late)

        def _cancel_head_timer(self) -> None:
            if self.head_timer is not None:
                self.head_timer.cancel()
                self.head_timer = None

        def _head_late(self) -> None:
            self.head_timer = None
            if not self.in_head or self.transport.is_closing():
                return
            if self.head_bytes:
                self.refuse(408, f"the headers took over {limits.header_timeout:g} s")
            else:  # connected and said nothing: nothing to answer
                self.transport.close()

        @property
        def busy(self) -> bool:
            """A request is being answered (its headers are in, its answer not all sent)."""
            return not self.in_head and self.cycle is not None and \
                not self.cycle.response_complete

        def refuse(self, status: int, reason: str) -> None:
            """Answer ``status`` with ``reason``, log it (rate-limited) and close."""
            refusals("refused a connection from %s: HTTP %d, %s",
                     self.client[0] if self.client else "?", status, reason)
            body = orjson.dumps({"status": status, "error": reason})
            head = (f"HTTP/1.1 {status} {STATUS_TEXT[status]}\r\ncontent-type: application/json"
                    f"\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n")
            self.transport.write(head.encode() + body)
            self.transport.close()
            self.in_head = False
            self._cancel_head_timer()

    return Guarded


def _make_room(newcomer: Any) -> None:
    """At the connection limit: close the oldest connection with no request in progress
    (``newcomer`` itself when every other one is busy)."""
    idle = [c for c in newcomer.connections if c is not newcomer and not c.busy]
    victim = min(idle, key=lambda c: c.opened) if idle else newcomer
    victim.transport.abort()


def serve(app: Any, host: str, port: int, ready: dict[str, Any], limits: Limits,
          refusals: RefusalLog) -> None:
    """Bind, print ``ready`` (plus the URL) as one JSON line, then serve until stopped."""
    limits_in_force = limits
    connections = fd_headroom(limits.max_connections)
    if connections < limits.max_connections:
        log.warning("only %d connections fit under the file descriptor limit (ulimit -n); "
                    "serving at most that many", connections)
        limits_in_force = Limits(**{**limits.__dict__, "max_connections": connections})
    sock = listen(host, port, ready)
    protocol = guarded_protocol(limits_in_force, refusals)
    config = uvicorn.Config(app, http=protocol, log_level="warning", access_log=False,
                            lifespan="off", proxy_headers=False,
                            # Annotated int, but uvicorn hands it to loop.call_later (seconds,
                            # a float): --idle-timeout 0.5 works as given.
                            timeout_keep_alive=limits.idle_timeout)  # type: ignore[arg-type]
    uvicorn.Server(config).run(sockets=[sock])
