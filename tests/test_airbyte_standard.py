"""Airbyte's standard connector tests (airbyte-cdk's ``standard_tests``) on our console scripts.

One suite per connector, each the CDK's own class (``SourceTestSuiteBase``,
``DestinationTestSuiteBase``) pointed at the script through the adapters of
``tests/airbyte_standard.py``; the scenarios are the ``acceptance-test-config.yml`` of the
connector's directory. The sandboxes run once for the module; their URLs and tokens reach the
scenarios' ``${VAR}`` placeholders through the environment.

The CDK's image tests (``test_docker_image_*``) build the connector's image and run it; they need a
running Docker engine, and skip without one (see ``skip_image_tests_without_docker``).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airbyte_cdk.models import AirbyteMessageSerializer, ConfiguredAirbyteCatalogSerializer
from airbyte_cdk.test.models import ConnectorTestScenario
from airbyte_cdk.test.standard_tests import DestinationTestSuiteBase, SourceTestSuiteBase
from airbyte_cdk.test.standard_tests._job_runner import run_test_job
from airbyte_cdk.test.standard_tests._spec_lint import assert_spec_is_valid, get_single_spec
from airbyte_standard import SandboxScenario, ScriptDestination, ScriptSource, script_path

from framework.declarative.formats import format_utc
from framework.webhooks.spool import Spool

pytest_plugins = ["airbyte_cdk.test.standard_tests.pytest_hooks"]

ROOT = Path(__file__).resolve().parents[1]
LISTS = "40,41,42"  # the lists connectors/brevo/integration_tests/config.json names
CARTS = 2  # carts the spool names, so that every stream has records


@functools.cache
def docker_engine_running() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        return subprocess.run([docker, "info"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(autouse=True)
def skip_image_tests_without_docker(request: pytest.FixtureRequest) -> None:
    """The CDK skips its image tests only when the docker CLI is missing; with the CLI but no
    engine (this machine, CI) they would fail building the image. Nothing else is missing for
    them but the engine (and the ``metadata.yaml`` they then read to build it)."""
    if request.node.get_closest_marker("image_tests") and not docker_engine_running():
        pytest.skip("no Docker engine running: the CDK's image tests build and run the "
                    "connector's image")


def _start(*args: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    process = subprocess.Popen([script_path("runner"), "sandbox", *args, "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = process.stdout.readline() if process.stdout else ""
    if not line:
        process.kill()
        raise RuntimeError(f"runner sandbox {args[0]} did not start")
    return process, json.loads(line)


def _spool_carts(ready: dict[str, Any], spool_path: Path) -> None:
    """Carts made in the store and their webhooks spooled, as the receiver would (the carts
    stream has no list endpoint to read: BigCommerce has none), and a storefront event."""
    import requests

    made = requests.post(f"{ready['url']}/_sandbox/carts", json={"create": CARTS},
                         headers={"X-Auth-Token": ready["access_token"]}, timeout=30)
    made.raise_for_status()
    spool = Spool(spool_path)
    for n, cart_id in enumerate(made.json()["created"]):
        scope = "store/cart/abandoned" if n == 0 else "store/cart/created"  # one recovery link
        spool.append(ready["store_hash"], scope, "cart", cart_id, {"data": {"id": cart_id}},
                     f"standard-{n}")
    # A storefront beacon's event, as the receiver's storefront endpoint spools it.
    now = format_utc(time.time())
    viewed = {"id": "v-1:e-1", "type": "product_viewed", "occurred_at": now,
              "received_at": now, "visitor_id": "v-1", "customer_id": None, "email": None,
              "identified_by": None, "url": "https://shop.example.com/p/1",
              "product": {"id": "1", "variant_id": None, "price": 12.5}, "category": None,
              "cart": None}
    spool.append(ready["store_hash"], "storefront/product_viewed", "storefront_event",
                 viewed["id"], viewed, "standard-beacon")
    spool.close()


@pytest.fixture(scope="module", autouse=True)
def sandboxes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Both sandboxes (two small BigCommerce stores, one Brevo account) for the module; what
    the acceptance configs' placeholders name goes into the environment."""
    work = tmp_path_factory.mktemp("airbyte-standard")
    bigcommerce, shop = _start("bigcommerce", "--stores", "2", "--customers", "25",
                               "--orders", "50", "--products", "8", "--seed", "21",
                               "--plan", "enterprise")
    brevo, account = _start("brevo", "--lists", LISTS, "--import-delay-ms", "20")
    spool = work / "spool.db"
    _spool_carts(shop, spool)
    values = {
        "TAJO_STD_BIGCOMMERCE_URL": shop["url"],
        "TAJO_STD_STORE_HASH": shop["stores"][0]["store_hash"],
        "TAJO_STD_ACCESS_TOKEN": shop["stores"][0]["access_token"],
        "TAJO_STD_STORE_HASH_2": shop["stores"][1]["store_hash"],
        "TAJO_STD_ACCESS_TOKEN_2": shop["stores"][1]["access_token"],
        "TAJO_STD_SPOOL": str(spool),
        "TAJO_STD_BREVO_URL": account["url"],
        "TAJO_STD_BREVO_KEY": account["api_key"],
        "TAJO_STD_DIR": str(work),
    }
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    time.sleep(1.1)  # the source reads spooled events once they are a second old (SETTLE_S)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        for process in (bigcommerce, brevo):
            process.terminate()
            process.wait(timeout=10)


class _OurConnector:
    """What our suites set on the CDK's classes: where the connector's acceptance config is,
    its Airbyte name (our directories are named after the connector, not ``source-x``), how
    to run it, and scenarios that resolve the sandbox placeholders."""

    directory: str
    connector_name: str  # a plain attribute in place of the CDK's directory-name property

    @classmethod
    def get_connector_root_dir(cls) -> Path:
        return ROOT / "connectors" / cls.directory

    @classmethod
    def get_scenarios(cls) -> list[ConnectorTestScenario]:
        return [SandboxScenario.of(s) for s in super().get_scenarios()]  # type: ignore[misc]


class TestSourceBigCommerce(_OurConnector, SourceTestSuiteBase):
    directory = "bigcommerce"
    connector_name = "source-bigcommerce"

    @classmethod
    def create_connector(cls, scenario: ConnectorTestScenario | None) -> ScriptSource:
        return ScriptSource("source-bigcommerce")


class _DestinationSpecLint:
    """The CDK runs its spec lint (secret marking) only in the source suite; the same test,
    from the same functions, for destinations."""

    def test_spec(self) -> None:
        suite: Any = self
        result = run_test_job(suite.create_connector(None), "spec",
                              connector_root=suite.get_connector_root_dir())
        spec = get_single_spec(result, connector_name=suite.connector_name)
        assert_spec_is_valid(spec, connector_name=suite.connector_name)


class TestDestinationBrevo(_OurConnector, _DestinationSpecLint, DestinationTestSuiteBase):
    directory = "brevo"
    connector_name = "destination-brevo"

    @classmethod
    def create_connector(cls, scenario: ConnectorTestScenario | None) -> ScriptDestination:
        return ScriptDestination("destination-brevo")


class TestDestinationSqlite(_OurConnector, _DestinationSpecLint, DestinationTestSuiteBase):
    directory = "sqlite"
    connector_name = "destination-sqlite"

    @classmethod
    def create_connector(cls, scenario: ConnectorTestScenario | None) -> ScriptDestination:
        return ScriptDestination("destination-sqlite")


def test_every_source_defined_cursor_is_named_and_carried_by_the_records() -> None:
    """Airbyte's catalog: a stream with a source-defined cursor names it in
    default_cursor_field, a field of its schema (carts, incremental at a spool offset, named
    none). Read from the sandbox, every record but a deletion carries it."""
    source = ScriptSource("source-bigcommerce")
    config = SandboxScenario(config_path=Path("integration_tests/config.json")).get_config_dict(
        connector_root=TestSourceBigCommerce.get_connector_root_dir(), empty_if_missing=False)
    logger = logging.getLogger("test")
    catalog = source.discover(logger, config)
    cursors = {}
    for stream in catalog.streams:
        if stream.source_defined_cursor:
            assert stream.default_cursor_field, f"{stream.name} names no cursor field"
            assert stream.default_cursor_field[0] in stream.json_schema["properties"]
            cursors[stream.name] = stream.default_cursor_field[0]
    assert "carts" in cursors
    configured = {"streams": [
        {"stream": {"name": s.name, "json_schema": {}, "supported_sync_modes": ["full_refresh"]},
         "sync_mode": "full_refresh", "destination_sync_mode": "append"}
        for s in catalog.streams if s.name in cursors]}
    seen: dict[str, int] = dict.fromkeys(cursors, 0)
    for message in source.read(logger, config, configured):
        if message.record is not None and not message.record.data.get("is_deleted"):
            assert message.record.data.get(cursors[message.record.stream]) is not None, (
                f"a {message.record.stream} record without its cursor field")
            seen[message.record.stream] += 1
    assert all(seen.values()), seen


def test_the_destination_adapter_writes_through_the_script(tmp_path: Path) -> None:
    """The adapter's ``write`` (the CDK's Destination interface; its suite does not call it yet)
    feeds the script's stdin: records stored, the state echoed after them."""
    stream = {"name": "customers", "json_schema": {"type": "object"},
              "supported_sync_modes": ["full_refresh"],
              "source_defined_primary_key": [["store_hash"], ["id"]]}
    catalog = ConfiguredAirbyteCatalogSerializer.load({"streams": [
        {"stream": stream, "sync_mode": "full_refresh", "destination_sync_mode": "append"}]})
    sent = [AirbyteMessageSerializer.load(m) for m in (
        {"type": "RECORD", "record": {"stream": "customers", "emitted_at": 1,
                                      "data": {"store_hash": "s", "id": n}}} for n in (1, 2))]
    sent.append(AirbyteMessageSerializer.load({"type": "STATE", "state": {
        "type": "STREAM", "stream": {"stream_descriptor": {"name": "customers"},
                                     "stream_state": {"done": True}}}}))
    database = tmp_path / "written.db"
    out = ScriptDestination("destination-sqlite").write({"path": str(database)}, catalog, sent)
    states = [m.state.stream.stream_state for m in out if m.state is not None]
    assert [s.__dict__ for s in states] == [{"done": True}]
    assert sqlite3.connect(database).execute("SELECT COUNT(*) FROM customers").fetchone() == (2,)
