"""Helpers for webhook tests and benchmarks: start a receiver, build and send payloads."""

from __future__ import annotations

import hashlib
import http.client
import json
import resource
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
from conftest import RUNNER

SECRET = "test-webhook-secret-0123456789"
HEADER = "X-Tajo-Webhook-Secret"


@dataclass
class Receiver:
    """A running ``runner webhooks serve`` subprocess."""

    process: subprocess.Popen[bytes]
    url: str
    path: str
    log_file: Path

    @property
    def endpoint(self) -> str:
        return self.url + self.path

    def stop(self) -> str:
        """Stop it (SIGTERM) and return what it logged."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.log_file.read_text()


def start_receiver(config: Path, *extra: str, max_fds: int | None = None) -> Receiver:
    """Start ``runner webhooks serve`` (its log goes to a file beside the config: a pipe
    nobody reads would fill up and stall it); ``max_fds``: its file descriptor limit, soft
    and hard."""
    log_file = config.with_name(f"receiver-{time.monotonic_ns()}.log")

    def limit() -> None:
        if max_fds is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max_fds, max_fds))
    with log_file.open("wb") as log:
        process = subprocess.Popen([RUNNER, "webhooks", "serve", "--config", str(config),
                                    "--port", "0", *extra], stdout=subprocess.PIPE, stderr=log,
                                   preexec_fn=limit)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        raise RuntimeError(f"receiver did not start: {log_file.read_text()}")
    ready = json.loads(line)
    return Receiver(process, ready["url"], ready["path"], log_file)


def payload(store_hash: str, scope: str, data: dict[str, Any], created_at: int | None = None
            ) -> dict[str, Any]:
    """A webhook as BigCommerce delivers it (``data`` may hold what orjson cannot write, such
    as an integer past 64 bits: the body is then written with ``json``)."""
    try:
        encoded = orjson.dumps(data)
    except TypeError:
        encoded = json.dumps(data).encode()
    return {"scope": scope, "store_id": "1000001", "data": data,
            "hash": hashlib.sha1(encoded).hexdigest(),
            "created_at": int(time.time()) if created_at is None else created_at,
            "producer": f"stores/{store_hash}"}


def spool_key(body: dict[str, Any]) -> str:
    """The de-duplication key the receiver stores an event under."""
    return hashlib.sha1(f"{body['producer']}|{body['scope']}|{body['hash']}|"
                        f"{body['created_at']}".encode()).hexdigest()


class Poster:
    """A keep-alive HTTP connection that posts raw bodies (one per thread)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port, self.path = parts.hostname or "", parts.port or 80, parts.path
        self.connection = http.client.HTTPConnection(self.host, self.port, timeout=30)

    def post(self, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        self.connection.request("POST", self.path, body=body,
                                headers={"Content-Type": "application/json", **(headers or {})})
        response = self.connection.getresponse()
        return response.status, response.read()

    def close(self) -> None:
        self.connection.close()
