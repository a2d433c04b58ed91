"""Shared fixtures: sandboxes as real subprocesses, config files, and plugin isolation."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from brevo_reference import brevo_reference  # noqa: F401 (autouse: Brevo's SDK judges traffic)
from postgres_kit import postgres_server, postgres_url, storage  # noqa: F401 (PostgreSQL)

# Only the built-in connectors load from entry points during tests, whatever else is installed.
BUILTINS = "bigcommerce,brevo,shopify,sqlite"
os.environ["TAJO_CONNECTORS"] = BUILTINS

RUNNER = shutil.which("runner") or str(Path(sys.executable).parent / "runner")


@dataclass
class Sandbox:
    """A running ``runner sandbox`` subprocess and what it printed when ready."""

    process: subprocess.Popen[str]
    url: str
    store_hash: str
    access_token: str
    stores: list[dict[str, str]]

    def admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = requests.request(method, f"{self.url}/_sandbox/{path}", json=body,
                                    headers={"X-Auth-Token": self.access_token}, timeout=30)
        response.raise_for_status()
        return response.json()

    def fill_scope(self, scope: str, count: int = 10) -> None:
        """Another app subscribes ``count`` hooks to ``scope`` (10 is BigCommerce's limit)."""
        for n in range(count):
            requests.post(f"{self.url}/stores/{self.store_hash}/v3/hooks",
                          json={"scope": scope, "destination": f"https://other{n}.example.com/h"},
                          headers={"X-Auth-Token": self.access_token},
                          timeout=10).raise_for_status()

    def config(self, **extra: Any) -> dict[str, Any]:
        return {"store_hash": self.store_hash, "access_token": self.access_token,
                "api_url": self.url, **extra}

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_sandbox(*args: str) -> Sandbox:
    """Start ``runner sandbox bigcommerce ARGS`` and wait for its ready line."""
    process = subprocess.Popen([RUNNER, "sandbox", "bigcommerce", "--port", "0", *args],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    if not line:
        raise RuntimeError(f"sandbox did not start: {process.stderr.read()}")
    ready = json.loads(line)
    return Sandbox(process, ready["url"], ready["store_hash"], ready["access_token"],
                   ready.get("stores", []))


@pytest.fixture
def make_sandbox() -> Iterator[Any]:
    """Factory: start sandboxes with the given CLI options; all stopped after the test."""
    started: list[Sandbox] = []

    def make(*args: str) -> Sandbox:
        sandbox = start_sandbox(*args)
        started.append(sandbox)
        return sandbox

    yield make
    for sandbox in started:
        sandbox.stop()


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    """A 600-customer store with a 3 s quota window, shared by a test module."""
    box = start_sandbox("--customers", "600", "--seed", "7", "--window-ms", "3000")
    yield box
    box.stop()


@pytest.fixture
def write_json(tmp_path: Path) -> Any:
    """Write an object as a JSON file under tmp_path; returns the path."""
    counter = iter(range(10**6))

    def write(obj: Any, name: str | None = None) -> Path:
        path = tmp_path / (name or f"file{next(counter)}.json")
        path.write_text(json.dumps(obj))
        return path

    return write


LISTS = {"all_customers": 40, "buyers": 41, "abandoned_cart": 42}


class BrevoBox:
    def __init__(self, process: subprocess.Popen[str], url: str, key: str) -> None:
        self.process, self.url, self.key = process, url, key

    def state(self) -> dict[str, Any]:
        return requests.get(f"{self.url}/_sandbox/state", headers={"api-key": self.key},
                            timeout=30).json()

    def admin(self, path: str, body: dict[str, Any]) -> Any:
        return requests.post(f"{self.url}/_sandbox/{path}", json=body,
                             headers={"api-key": self.key}, timeout=30).json()

    def contacts(self) -> dict[str, dict[str, Any]]:
        return {c["email"]: c for c in self.state()["contacts"]}


@pytest.fixture
def brevo() -> Iterator[BrevoBox]:
    process = subprocess.Popen([RUNNER, "sandbox", "brevo", "--lists", "40,41,42",
                                "--import-delay-ms", "30"], stdout=subprocess.PIPE, text=True)
    ready = json.loads(process.stdout.readline())
    yield BrevoBox(process, ready["url"], ready["api_key"])
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def destination(brevo: BrevoBox, tmp_path: Path) -> Path:
    path = tmp_path / "brevo.json"
    path.write_text(json.dumps({"api_url": brevo.url, "api_key": brevo.key, "lists": LISTS,
                                "state_dir": str(tmp_path / "state")}))
    return path


def query_shape(r1: Any, r2: Any) -> None:
    """Cassette matcher: query parameters equal, except the values of dates (the reader cuts
    its time slices at the current time, which differs between recording and replay)."""
    def shape(request: Any) -> list[tuple[str, str]]:
        return sorted((k, "<date>" if "date" in k else v) for k, v in request.query)
    assert shape(r1) == shape(r2)


def pytest_recording_configure(config: Any, vcr: Any) -> None:
    vcr.register_matcher("query_shape", query_shape)


def run_cli(*args: str, stdin: bytes | None = None, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    """Run a console script (``runner``, ``source-bigcommerce``...) as a subprocess."""
    command = args[0]
    path = shutil.which(command) or str(Path(sys.executable).parent / command)
    return subprocess.run([path, *args[1:]], input=stdin, capture_output=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def messages(stdout: bytes) -> list[dict[str, Any]]:
    """Parse stdout as Airbyte messages (every line must be one)."""
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


# The fast loop, `pytest -m "not e2e"`, runs what runs in this process (specs, configs, the
# engine against in-process fakes, protocol, mapping, the destination's parts, the webhook
# receiver as an ASGI app). These modules start sandboxes, servers or the CLI as subprocesses
# in most of their tests, so all their tests are e2e; a test elsewhere marks itself.
E2E_MODULES = {
    "test_airbyte_standard", "test_bad_input", "test_bench", "test_brevo_destination",
    "test_brevo_model_only", "test_brevo_reference", "test_brevo_sandbox", "test_chaos",
    "test_child_streams", "test_commerce_model", "test_consistency", "test_docker",
    "test_e2e_read", "test_http", "test_ledger_migration", "test_lint", "test_page_process",
    "test_product_page_setup", "test_pyairbyte", "test_receiver_limits", "test_runner",
    "test_scaffold", "test_second_platform", "test_secrets", "test_standard",
    "test_storefront_browser", "test_streams", "test_sync", "test_webhooks_live",
}


def pytest_collection_modifyitems(items: list[Any]) -> None:
    for item in items:
        if item.module is not None and item.module.__name__ in E2E_MODULES:
            item.add_marker(pytest.mark.e2e)
