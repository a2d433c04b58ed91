"""A listening socket, bound and announced: how a sandbox and the webhook receiver start."""

from __future__ import annotations

import socket
import sys
from typing import Any

import orjson

from framework.errors import listen_error


def listen(host: str, port: int, ready: dict[str, Any]) -> socket.socket:
    """Bind a listening socket, then print ``ready`` (plus the URL) as one JSON line: what a
    sandbox and the webhook receiver say when they can be reached."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP lets asyncio set TCP_NODELAY on each connection; without it every
    # response waits ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:  # a port in use, an unknown host: one line, exit 2
        sock.close()
        raise listen_error(host, port, exc) from None
    sock.listen(2048)
    shown_host = f"[{host}]" if ":" in host else host
    line = {"url": f"http://{shown_host}:{sock.getsockname()[1]}", **ready}
    sys.stdout.write(orjson.dumps(line).decode() + "\n")
    sys.stdout.flush()
    return sock
