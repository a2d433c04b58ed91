"""The runner: plugins, the canonical pipeline through real pipes, write's error handling."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from conftest import RUNNER, messages, run_cli

from connectors.bigcommerce import connector as bigcommerce
from framework.cli import cli
from framework.plugins import connector as registry
from framework.plugins.connector import Destination
from framework.protocol import messages as p
from framework.protocol.catalog import data_path


def test_connectors_lists_builtins_found_through_entry_points() -> None:
    result = run_cli("runner", "connectors", "--json")
    rows = {json.loads(line)["name"]: json.loads(line) for line in result.stdout.splitlines()}
    assert rows["bigcommerce"]["kind"] == "source" and rows["bigcommerce"]["sandbox"] is True
    assert rows["sqlite"]["kind"] == "destination"


def test_loading_can_be_restricted_and_unknown_names_list_the_valid_ones() -> None:
    assert run_cli("runner", "connectors", env={"TAJO_CONNECTORS": ""}).stdout == b""
    only = run_cli("runner", "connectors", env={"TAJO_CONNECTORS": "sqlite"}).stdout.decode()
    assert "sqlite" in only and "bigcommerce" not in only
    result = run_cli("runner", "spec", "magento")
    assert result.returncode == 2
    assert ("unknown connector 'magento'; valid: bigcommerce, brevo, shopify, sqlite"
            in result.stderr.decode())
    result = run_cli("runner", "write", "bigcommerce", "--config", "x.json")
    assert ("unknown destination connector 'bigcommerce'; valid: brevo, sqlite"
            in result.stderr.decode())


def test_packaged_catalog_matches_discover() -> None:
    shipped = json.loads(Path(data_path("catalog.json")).read_text())
    assert shipped == bigcommerce.configured_catalog().model_dump(mode="json", exclude_none=True)


class MemoryDestination(Destination):
    """A third-party style destination that keeps records in memory."""

    def __init__(self, spec_file: Path) -> None:
        super().__init__(spec_file)
        self.records: list[dict[str, Any]] = []

    def check(self, config: dict[str, Any]) -> p.AirbyteConnectionStatus:
        return p.AirbyteConnectionStatus(status="SUCCEEDED")

    def write(self, config: dict[str, Any], catalog: p.ConfiguredAirbyteCatalog,
              messages: Iterable[dict[str, Any]]) -> Iterator[bytes]:
        for message in messages:
            if message["type"] == "RECORD":
                self.records.append(message["record"])
            elif message["type"] == "STATE":
                yield p.dump(p.AirbyteMessage.model_validate(message))


@pytest.fixture
def memory(tmp_path: Path) -> Iterator[MemoryDestination]:
    spec = tmp_path / "memory.json"
    spec.write_text(json.dumps({
        "name": "memory", "kind": "destination", "connectionSpecification": {
            "type": "object", "properties": {"label": {"type": "string"}},
            "additionalProperties": False}}))
    destination = MemoryDestination(spec)
    registry.register("memory", destination)
    yield destination
    registry.unregister("memory")


def record(stream: str, i: int) -> bytes:
    return p.record_line(stream, {"id": i, "store_hash": "abc"}, 1)


def test_a_registered_plugin_receives_stdin_and_echoes_states(memory, write_json) -> None:
    stdin = (record("customers", 1) + record("orders_typo", 2) + b"\n"
             + p.dump(p.state_message("customers", {"date_modified": "2024-01-01T00:00:00Z"}))
             + record("customers", 3))
    result = CliRunner().invoke(cli, ["write", "memory", "--config", str(write_json({}))],
                                input=stdin)
    assert result.exit_code == 0, result.output
    assert [r["data"]["id"] for r in memory.records] == [1, 3]  # orders_typo: not in catalog
    assert json.loads(result.stdout)["type"] == "STATE"


def test_a_malformed_stdin_line_stops_with_its_line_number(memory, write_json) -> None:
    stdin = record("customers", 1) + b'{"type": "RECORD", "record": {"stream": "customers"\n'
    result = CliRunner().invoke(cli, ["write", "memory", "--config", str(write_json({}))],
                                input=stdin)
    assert result.exit_code == 2
    assert "error: stdin line 2: not JSON" in result.stderr
    assert len(memory.records) == 1


def test_plugin_config_is_validated_against_its_own_spec(memory, write_json) -> None:
    result = CliRunner().invoke(cli, ["write", "memory", "--config",
                                      str(write_json({"lable": "x"}))], input=b"")
    assert result.exit_code == 2
    assert "invalid memory config: unknown field 'lable' (valid: label)" in result.stderr


@pytest.mark.e2e
def test_read_pipe_write_sqlite_then_resume_from_the_destination_states(
        sandbox, write_json, tmp_path: Path) -> None:
    source = write_json(sandbox.config(page_size=250))
    database = tmp_path / "mirror.db"
    destination = write_json({"path": str(database)})

    def pipeline(*extra: str) -> list[dict[str, Any]]:
        read = subprocess.Popen([RUNNER, "read", "bigcommerce", "--config", str(source),
                                 *extra], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        write = subprocess.run([RUNNER, "write", "sqlite", "--config", str(destination)],
                               stdin=read.stdout, capture_output=True, timeout=120)
        read.stdout.close()
        assert read.wait(timeout=60) == 0
        assert write.returncode == 0, write.stderr.decode()
        return messages(write.stdout)

    committed = pipeline()  # every stream of the packaged catalog
    assert all(m["type"] == "STATE" for m in committed)
    customer_states = [m for m in committed
                       if m["state"]["stream"]["stream_descriptor"]["name"] == "customers"]
    assert sum(m["state"]["destinationStats"]["recordCount"] for m in customer_states) == 600
    db = sqlite3.connect(database)
    snapshot = sandbox.admin("GET", "snapshot")
    counts = {table: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
              for table in ("customers", "orders", "products", "order_products", "store")}
    assert counts["customers"] == len(snapshot["customers"]) == 600
    assert counts["orders"] == len(snapshot["orders"])
    assert counts["products"] == len(snapshot["products"])
    assert counts["order_products"] > counts["orders"] and counts["store"] == 1
    state_file = tmp_path / "state.jsonl"
    state_file.write_text("\n".join(json.dumps(m) for m in committed))
    changed = sandbox.admin("POST", "mutate", {"update": 4, "seed": 1})["updated"]
    resumed = pipeline("--state", str(state_file))
    assert sum(m["state"]["destinationStats"]["recordCount"] for m in resumed
               if m["state"]["stream"]["stream_descriptor"]["name"] == "customers") >= 4
    rows = dict(db.execute("SELECT json_extract(data, '$.id'), json_extract(data, '$.notes') "
                           "FROM customers").fetchall())
    assert len(rows) == 600  # upserted, not appended
    assert all(rows[i].startswith("edited ") for i in changed)


def test_sandbox_group_lists_connector_sandboxes() -> None:
    result = CliRunner().invoke(cli, ["sandbox", "--help"])
    assert "bigcommerce" in result.output


def test_help_uses_no_deprecated_click_api() -> None:
    """Click 9 removes ``click.utils.make_default_short_help``, which shortened the lazy
    commands' help in ``runner --help``."""
    import warnings

    from app.cli import cli as app_cli

    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        result = CliRunner().invoke(app_cli, ["--help"])
    assert result.exit_code == 0, repr(result.exception)
    assert "Sync every enabled store into Brevo" in result.output


def test_help_imports_no_command_and_lists_the_lazy_ones_by_their_own_help() -> None:
    """``runner --help`` answers without the verbs, the plugins, pydantic or requests (it took
    half a second with them); the short help it shows for a lazy command is that command's."""
    import sys

    probe = ("import sys\nfrom app.cli import cli\ntry:\n    cli(['--help'], prog_name='runner')\n"
             "except SystemExit:\n    pass\nheavy = ('framework.plugins', 'framework.engine', "
             "'app.sync', 'app.webhooks_cli', 'pydantic', 'jsonschema', 'requests')\n"
             "print(sorted(m for m in sys.modules if m.startswith(heavy)), file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=60)
    assert result.stderr.strip() == "[]"
    assert "Sync every enabled store into Brevo" in result.stdout
    from app.cli import cli as app_cli

    for name, (_, short) in app_cli.LAZY.items():
        command = app_cli.get_command(click.Context(app_cli), name)
        assert command is not None and command.get_short_help_str(1000) == short


SPEC_PROBE = """import sys
from app.cli import cli
try:
    cli(['spec', sys.argv[1]], prog_name='runner')
except SystemExit:
    pass
heavy = ('pydantic', 'jsonschema', 'requests', 'urllib3', 'yaml', 'framework.protocol',
         'framework.declarative', 'framework.engine', 'framework.plugins.connector',
         'framework.plugins.commands', 'connectors.bigcommerce.', 'connectors.brevo.')
print(sorted(m for m in sys.modules if m.startswith(heavy)), file=sys.stderr)
"""


@pytest.mark.parametrize("name", ["bigcommerce", "brevo"])
def test_spec_is_read_from_the_declared_file_without_the_connector(name: str) -> None:
    """``runner spec NAME`` answers from the spec file its package declares: neither the
    connector's modules, the engine, pydantic nor requests are imported (it took half a second
    with them), and the message is the one the loaded connector gives, byte for byte."""
    import sys

    from framework.plugins import commands

    result = subprocess.run([sys.executable, "-c", SPEC_PROBE, name], capture_output=True,
                            text=True, timeout=60)
    assert result.stderr.strip() == "[]"
    loaded = registry.get(name)
    assert result.stdout.encode() == b"".join(commands.spec(loaded))


def test_declared_spec_files_are_the_connectors_and_the_light_message_matches() -> None:
    """Each built-in package's ``SPEC_FILE`` is its connector's spec file (found the way
    ``data_path`` finds it), and the message read from a file equals ``Connector.spec``'s for
    every built-in (the sqlite one declares none and is loaded: the light reading is checked on
    its file all the same)."""
    import connectors.bigcommerce
    import connectors.brevo
    from framework.plugins import commands, declared

    for package in (connectors.bigcommerce, connectors.brevo):
        assert package.connector.spec_file == package.SPEC_FILE
    assert declared.data_file("specs/brevo.json") == data_path("specs/brevo.json")
    for name in ("bigcommerce", "brevo", "sqlite"):
        conn = registry.get(name)
        assert declared.spec_message(conn.spec_file) == b"".join(commands.spec(conn))


def test_spec_of_a_package_without_a_declared_file_or_with_a_bad_one_loads_it(
        tmp_path: Path) -> None:
    """A plugin that declares no ``SPEC_FILE`` is loaded and asked, as before; a declared file
    the light reading cannot use (here: no connectionSpecification) is left to the loader,
    whose error names the fault."""
    spec = json.loads(data_path("specs/sqlite.json").read_text())
    (tmp_path / "plain_plugin.py").write_text(
        "from framework.plugins.connector import Destination\n"
        f"connector = Destination({str(data_path('specs/sqlite.json'))!r})\n")
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({k: v for k, v in spec.items()
                                  if k != "connectionSpecification"}))
    (tmp_path / "declared_plugin.py").write_text(
        f"SPEC_FILE = {str(broken)!r}\n"
        "def __getattr__(name):\n"
        "    from framework.plugins.connector import Destination\n"
        "    if name != 'connector':\n"
        "        raise AttributeError(name)\n"
        "    return Destination(SPEC_FILE)\n")
    env = {"PYTHONPATH": str(tmp_path), "TAJO_CONNECTORS": "plain,declared",
           "TAJO_PLUGINS": "plain=plain_plugin:connector,declared=declared_plugin:connector"}
    plain = run_cli("runner", "spec", "plain", env=env)
    assert plain.returncode == 0
    assert json.loads(plain.stdout)["spec"]["connectionSpecification"] == \
        spec["connectionSpecification"]
    bad = run_cli("runner", "spec", "declared", env=env)
    assert bad.returncode == 1
    assert "at $.connectionSpecification: Field required" in bad.stderr.decode()
