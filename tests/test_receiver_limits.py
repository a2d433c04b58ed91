"""The receiver under hostile clients (issue 15): real slow and oversized clients on loopback.

Each test runs ``runner webhooks serve`` and attacks it with raw sockets while valid webhooks
are sent, and is bounded in time. The receiver needs no store for this: nothing is forwarded.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
from webhook_kit import HEADER, SECRET, Receiver, payload, start_receiver

from framework.webhooks.guard import Proxies, RefusalLog

STORE = "abc123"


@pytest.fixture
def config(write_json, tmp_path: Path) -> Path:
    path: Path = write_json({"store_hash": STORE, "access_token": "token-not-used-0123",
                             "api_url": "http://127.0.0.1:9", "webhook_secret": SECRET,
                             "spool_path": str(tmp_path / "spool.db")})
    return path


def address(receiver: Receiver) -> tuple[str, int]:
    parts = urlsplit(receiver.url)
    return parts.hostname or "", parts.port or 80


def webhook(receiver: Receiver, customer: int, headers: dict[str, str] | None = None
            ) -> tuple[int, float]:
    """Send one valid webhook on a new connection: (status, seconds it took)."""
    host, port = address(receiver)
    body = orjson.dumps(payload(STORE, "store/customer/updated",
                                {"type": "customer", "id": customer}))
    started = time.monotonic()
    connection = http.client.HTTPConnection(host, port, timeout=10)
    try:
        connection.request("POST", receiver.path, body=body,
                           headers={"Content-Type": "application/json",
                                    **({HEADER: SECRET} if headers is None else headers)})
        status = connection.getresponse().status
    finally:
        connection.close()
    return status, time.monotonic() - started


def answer(sock: socket.socket, timeout: float = 5) -> bytes:
    """What the server sends before it closes (b"" if it closes without a word)."""
    sock.settimeout(timeout)
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except (ConnectionResetError, TimeoutError):
        pass
    return b"".join(chunks)


def test_a_100_mb_header_does_not_delay_valid_webhooks(config: Path) -> None:
    """Issue 15: one 100 MB header froze the receiver (valid webhooks waited 4 to 19 s). It is
    cut off past 16 KB with a 431, and valid webhooks sent meanwhile are answered at once."""
    receiver = start_receiver(config)
    host, port = address(receiver)
    stop = threading.Event()
    cut_off: list[tuple[int, bytes]] = []

    def attack() -> None:
        chunk = b"a" * (1 << 20)
        while not stop.is_set():
            sent = 0
            with socket.create_connection((host, port), timeout=10) as sock:
                try:
                    sock.sendall(f"POST {receiver.path} HTTP/1.1\r\nHost: x\r\nX-Big: ".encode())
                    while sent < 100 << 20 and not stop.is_set():
                        sock.sendall(chunk)
                        sent += len(chunk)
                except OSError:  # the server closed the connection
                    pass
                cut_off.append((sent, answer(sock, 2)))
    attackers = [threading.Thread(target=attack) for _ in range(2)]
    try:
        for thread in attackers:
            thread.start()
        time.sleep(0.3)
        results = [webhook(receiver, n + 1) for n in range(40)]
    finally:
        stop.set()
        for thread in attackers:
            thread.join(timeout=20)
        log = receiver.stop()
    assert [status for status, _ in results] == [200] * 40
    slowest = max(seconds for _, seconds in results)
    assert slowest < 0.5, f"a valid webhook waited {slowest:.2f} s during the attack"
    assert len(cut_off) >= 2
    # Cut off long before 100 MB (what the kernel's buffers held when it closed, at most).
    assert all(sent < 20 << 20 for sent, _ in cut_off), [sent for sent, _ in cut_off]
    assert any(reply.startswith(b"HTTP/1.1 431 ") for _, reply in cut_off)
    assert "request line and headers over 16384 bytes" in log


def test_too_many_headers_are_refused(config: Path) -> None:
    receiver = start_receiver(config)
    try:
        many = {f"X-H{n}": "1" for n in range(100)}  # 1 KB: small, but 100 of them
        status, _ = webhook(receiver, 1, {HEADER: SECRET, **many})
        assert status == 431
        assert webhook(receiver, 2)[0] == 200
    finally:
        log = receiver.stop()
    assert "more than 64 headers" in log


def test_1100_idle_connections_do_not_exhaust_descriptors(config: Path) -> None:
    """Issue 15: 1,100 idle connections exhausted the receiver's file descriptors (1,024 by
    default). At its connection limit the oldest idle connection gives way, valid webhooks
    get through, and the idle ones are closed after the header timeout."""
    receiver = start_receiver(config, "--header-timeout", "3", max_fds=1024)
    host, port = address(receiver)
    idle: list[socket.socket] = []
    try:
        for _ in range(1100):
            idle.append(socket.create_connection((host, port), timeout=5))
        time.sleep(0.3)
        results = [webhook(receiver, n + 1) for n in range(20)]
        assert [status for status, _ in results] == [200] * 20
        slowest = max(seconds for _, seconds in results)
        assert slowest < 0.5, f"a valid webhook waited {slowest:.2f} s"
        time.sleep(3.5)  # the header timeout: every idle connection is closed by now
        for sock in idle:
            sock.setblocking(False)
        still_open = 0
        for sock in idle:
            try:
                if sock.recv(1):
                    still_open += 1  # something other than a close came
            except BlockingIOError:
                still_open += 1
            except OSError:
                pass
        assert still_open == 0
        assert webhook(receiver, 99)[0] == 200
    finally:
        for sock in idle:
            sock.close()
        log = receiver.stop()
    assert "Too many open files" not in log and "out of system resource" not in log
    assert "only 960 connections fit under the file descriptor limit" in log


def test_slow_headers_and_bodies_time_out(config: Path) -> None:
    receiver = start_receiver(config, "--header-timeout", "1", "--body-timeout", "1")
    host, port = address(receiver)
    try:
        with socket.create_connection((host, port)) as slow_head:
            started = time.monotonic()
            slow_head.sendall(f"POST {receiver.path} HTTP/1.1\r\nHost: x\r\n".encode())
            reply = b""
            for _ in range(10):  # a byte every 0.3 s: never the end of the headers
                time.sleep(0.3)
                try:
                    slow_head.sendall(b"X")
                except OSError:
                    break
            reply = answer(slow_head)
            assert reply.startswith(b"HTTP/1.1 408 "), reply
            assert time.monotonic() - started < 3
        with socket.create_connection((host, port)) as slow_body:
            started = time.monotonic()
            slow_body.sendall(f"POST {receiver.path} HTTP/1.1\r\nHost: x\r\n"
                              f"Content-Length: 500\r\n{HEADER}: {SECRET}\r\n\r\n{{".encode())
            reply = answer(slow_body)
            assert b" 408 " in reply.split(b"\r\n")[0], reply
            assert b"the body took over 1 s" in reply
            assert time.monotonic() - started < 3
        assert webhook(receiver, 1)[0] == 200
    finally:
        receiver.stop()


def test_refusals_are_logged_at_most_at_the_configured_rate(config: Path) -> None:
    """Issue 15: every unauthenticated refusal was logged (97 GiB a day from one client)."""
    receiver = start_receiver(config, "--refusal-log-lines", "5",
                              "--refusal-log-interval", "1")
    host, port = address(receiver)
    started = time.monotonic()
    try:
        sent = 0
        while time.monotonic() - started < 2.5:
            assert webhook(receiver, 1, {})[0] == 401  # no secret
            with socket.create_connection((host, port)) as sock:  # not HTTP at all
                sock.sendall(b"\x16\x03\x01 garbage\r\n\r\n")
                answer(sock, 2)
            sent += 2
        elapsed = time.monotonic() - started
    finally:
        log = receiver.stop()
    logged = log.count("refused a ")
    windows = int(elapsed) + 1
    assert sent > 100
    assert logged <= 5 * windows, (logged, sent)
    assert "more refusals were not logged, at most 5 are per 1 s" in log


def test_forwarded_for_is_believed_from_trusted_proxies_only(config: Path) -> None:
    spoofed = {"X-Forwarded-For": "203.0.113.9"}
    for extra, named in (((), "127.0.0.1"), (("--trusted-proxy", "127.0.0.0/8"),
                                             "203.0.113.9")):
        receiver = start_receiver(config, *extra)
        try:
            assert webhook(receiver, 1, spoofed)[0] == 401
        finally:
            log = receiver.stop()
        assert f"refused a webhook from {named}: HTTP 401" in log


@pytest.mark.parametrize(("peer", "header", "client"), [
    ("198.51.100.1", "203.0.113.9", "198.51.100.1"),  # not a proxy of ours: its header is not
    ("10.0.0.2", "203.0.113.9", "203.0.113.9"),
    ("10.0.0.2", "203.0.113.9, 10.0.0.7", "203.0.113.9"),  # two proxies of ours in a row
    ("10.0.0.2", "192.0.2.1, 203.0.113.9", "203.0.113.9"),  # the client's own claim: ignored
    ("10.0.0.2", "not-an-address", "10.0.0.2"),
    ("10.0.0.2", None, "10.0.0.2"),
])
def test_the_client_behind_a_trusted_proxy(peer: str, header: str | None, client: str) -> None:
    assert Proxies(("10.0.0.0/8",)).client(peer, header) == client


def test_the_refusal_log_counts_what_it_left_out(caplog: Any) -> None:
    refusals = RefusalLog(lines=3, interval=0.2)
    with caplog.at_level("WARNING", logger="tajo.receiver"):
        shown = [refusals("refused %d", n) for n in range(10)]
        time.sleep(0.25)
        refusals("refused %d", 10)
    assert shown == [True] * 3 + [False] * 7
    assert [r.getMessage() for r in caplog.records] == [
        "refused 0", "refused 1", "refused 2",
        "refused 10 (7 more refusals were not logged, at most 3 are per 0.2 s)"]
