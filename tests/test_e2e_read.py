"""``runner read bigcommerce`` and ``source-bigcommerce`` as subprocesses against a sandbox."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from airbyte_protocol import models as official
from conftest import messages, run_cli
from jsonschema import Draft7Validator

from connectors.bigcommerce import connector

SCHEMA = connector.loaded.schemas["customers"]


def records(output: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m["record"]["data"] for m in output if m["type"] == "RECORD"]


def states(output: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m["state"] for m in output if m["type"] == "STATE"]


def snapshot(sandbox) -> dict[int, int]:
    return dict(sandbox.admin("GET", "snapshot")["customers"])


def cursor_of(state: dict[str, Any], store_hash: str) -> str:
    return state["stream"]["stream_state"]["stores"][store_hash]["date_modified"]


@pytest.fixture(scope="module")
def customers_catalog(tmp_path_factory) -> Path:
    """A catalog of the customers stream alone (the foundation's stream)."""
    catalog = connector.configured_catalog()
    catalog.streams = [s for s in catalog.streams if s.stream.name == "customers"]
    path = tmp_path_factory.mktemp("catalog") / "customers.json"
    path.write_text(json.dumps(catalog.model_dump(mode="json", exclude_none=True)))
    return path


def read(config: Path, catalog: Path, *extra: str, env: dict[str, str] | None = None) -> Any:
    return run_cli("runner", "read", "bigcommerce", "--config", str(config), "--catalog",
                   str(catalog), *extra, env=env)


@pytest.fixture(scope="module")
def first_run(sandbox, tmp_path_factory, customers_catalog) -> dict[str, Any]:
    config = tmp_path_factory.mktemp("e2e") / "config.json"
    config.write_text(json.dumps(sandbox.config(page_size=100)))
    result = read(config, customers_catalog)
    assert result.returncode == 0, result.stderr.decode()
    return {"config": config, "result": result, "output": messages(result.stdout)}


@pytest.mark.e2e
def test_every_customer_arrives_exactly_once(sandbox, first_run) -> None:
    got = records(first_run["output"])
    ids = [r["id"] for r in got]
    assert len(ids) == len(set(ids)) == 600
    assert set(ids) == set(snapshot(sandbox))
    validator = Draft7Validator(SCHEMA)
    for record in got:
        assert not list(validator.iter_errors(record)), record["id"]
        assert record["store_hash"] == sandbox.store_hash
        assert record["date_modified"].endswith("Z") and len(record["date_modified"]) == 20


@pytest.mark.e2e
def test_output_is_only_valid_protocol_messages(first_run) -> None:
    stdout = first_run["result"].stdout
    for line in stdout.splitlines():
        official.AirbyteMessage.model_validate_json(line)
    kinds = [m["type"] for m in first_run["output"]]
    assert set(kinds) == {"RECORD", "STATE", "TRACE"}
    assert b"INFO" not in stdout  # logs stay on stderr


@pytest.mark.e2e
def test_a_state_follows_each_page_and_ends_at_the_newest_record(sandbox, first_run) -> None:
    got = states(first_run["output"])
    # The first page (100) is read alone; the rest of the range is cut into time slices read
    # in parallel, and the state moves only over slices that are complete.
    assert got[0]["sourceStats"]["recordCount"] == 100.0
    cursors = [cursor_of(s, sandbox.store_hash) for s in got]
    assert cursors == sorted(cursors) and len(set(cursors)) == len(cursors)
    newest = max(r["date_modified"] for r in records(first_run["output"]))
    assert cursors[-1] == newest
    assert sum(s["sourceStats"]["recordCount"] for s in got) == 600
    statuses = [m["trace"]["stream_status"]["status"] for m in first_run["output"]
                if m["type"] == "TRACE" and m["trace"]["type"] == "STREAM_STATUS"]
    assert statuses == ["STARTED", "RUNNING", "COMPLETE"]


@pytest.mark.e2e
def test_resuming_from_a_state_rereads_nothing_older(first_run, customers_catalog,
                                                    tmp_path) -> None:
    third = states(first_run["output"])[2]
    cursor = cursor_of(third, next(iter(third["stream"]["stream_state"]["stores"])))
    state_file = tmp_path / "state.json"
    state_file.write_text(json.dumps([third]))
    result = read(first_run["config"], customers_catalog, "--state", str(state_file))
    assert result.returncode == 0, result.stderr.decode()
    resumed = records(messages(result.stdout))
    assert all(r["date_modified"] >= cursor for r in resumed)
    before = {r["id"] for r in records(first_run["output"]) if r["date_modified"] < cursor}
    assert before | {r["id"] for r in resumed} == {r["id"] for r in records(first_run["output"])}
    overlap = [r for r in resumed if r["date_modified"] == cursor]
    assert len(overlap) <= 2  # only the boundary second is read again


@pytest.mark.e2e
def test_incremental_run_brings_only_the_changed_customers(make_sandbox, customers_catalog,
                                                          tmp_path) -> None:
    sandbox = make_sandbox("--customers", "400", "--seed", "11")
    config = tmp_path / "config.yaml"
    config.write_text(f"store_hash: {sandbox.store_hash}\naccess_token: ${{BC_TOKEN}}\n"
                      f"api_url: {sandbox.url}\n")
    env = {"BC_TOKEN": sandbox.access_token}
    first = read(config, customers_catalog, env=env)
    assert first.returncode == 0, first.stderr.decode()
    state_file = tmp_path / "state.jsonl"
    state_file.write_bytes(first.stdout)  # a previous run's output works as a state file
    cursor = cursor_of(states(messages(first.stdout))[-1], sandbox.store_hash)
    boundary = {i for i, r in ((r["id"], r) for r in records(messages(first.stdout)))
                if r["date_modified"] == cursor}
    changed = sandbox.admin("POST", "mutate", {"update": 7, "create": 3, "delete": 2, "seed": 5})
    second = read(config, customers_catalog, "--state", str(state_file), env=env)
    assert second.returncode == 0, second.stderr.decode()
    got = records(messages(second.stdout))
    ids = [r["id"] for r in got]
    assert len(ids) == len(set(ids))
    assert set(ids) == set(changed["updated"]) | set(changed["created"]) | boundary
    assert not set(ids) & set(changed["deleted"])
    edited = {r["id"]: r["notes"] for r in got}
    assert all(edited[i].startswith("edited ") for i in changed["updated"])
    new_cursor = cursor_of(states(messages(second.stdout))[-1], sandbox.store_hash)
    assert new_cursor > cursor


@pytest.mark.e2e
@pytest.mark.parametrize("helpers", ["2", "0"])  # pages parsed in helper processes, or not
def test_more_customers_in_one_second_than_a_page_holds(make_sandbox, write_json,
                                                       customers_catalog, helpers) -> None:
    # 120 customers created in the same second, read 25 a page: the keyset paginator pages
    # within that second and still produces each customer once.
    sandbox = make_sandbox("--customers", "30", "--seed", "3")
    first_ids = set(snapshot(sandbox))
    created = sandbox.admin("POST", "mutate", {"create": 120})["created"]
    same_second = {s for s in snapshot(sandbox).values() if s}
    assert len(same_second) > 0
    config = write_json(sandbox.config(page_size=25))
    result = read(config, customers_catalog, env={"TAJO_PAGE_PROCESS": helpers})
    assert result.returncode == 0, result.stderr.decode()
    ids = [r["id"] for r in records(messages(result.stdout))]
    assert len(ids) == len(set(ids)) == 150
    assert set(ids) == first_ids | set(created)


@pytest.mark.e2e
def test_start_date_skips_older_records(sandbox, write_json, customers_catalog) -> None:
    config = write_json(sandbox.config(start_date="2025-01-01"))
    result = read(config, customers_catalog)
    got = records(messages(result.stdout))
    expected = {i for i, ts in snapshot(sandbox).items() if ts >= 1735689600}
    assert {r["id"] for r in got} == expected and 0 < len(expected) < 600


@pytest.mark.e2e
def test_airbyte_cli_spec_check_discover_read(sandbox, write_json, tmp_path) -> None:
    config = write_json(sandbox.config())
    spec = messages(run_cli("source-bigcommerce", "spec").stdout)
    assert spec[0]["type"] == "SPEC"
    one_store = spec[0]["spec"]["connectionSpecification"]["properties"]["store_setup"]["oneOf"][0]
    assert one_store["properties"]["access_token"]["airbyte_secret"] is True
    check = run_cli("source-bigcommerce", "check", "--config", str(config))
    assert messages(check.stdout)[0]["connectionStatus"]["status"] == "SUCCEEDED"
    discover = messages(run_cli("source-bigcommerce", "discover", "--config",
                                str(config)).stdout)
    stream = discover[0]["catalog"]["streams"][0]
    assert stream["name"] == "customers"
    # Every stream the spec declares: the API-shaped ones and the commerce model's.
    names = [s["name"] for s in discover[0]["catalog"]["streams"]]
    assert names == [s.name for s in connector.loaded.model.streams]
    # seven kinds of records and the storefront events
    assert len([n for n in names if n.startswith("commerce_")]) == 8
    assert stream["default_cursor_field"] == ["date_modified"]
    assert stream["source_defined_primary_key"] == [["store_hash"], ["id"]]
    catalog = tmp_path / "configured.json"
    catalog.write_text(json.dumps({"streams": [{"stream": stream, "sync_mode": "full_refresh",
                                                "destination_sync_mode": "overwrite"}]}))
    read = run_cli("source-bigcommerce", "read", "--config", str(config), "--catalog",
                   str(catalog))
    assert read.returncode == 0, read.stderr.decode()
    output = messages(read.stdout)
    assert len(records(output)) == 600
    # A full-refresh read ends with its stream's STATE (Airbyte's acceptance tests ask for
    # one per stream read), which holds no cursor.
    assert [s["stream"]["stream_state"] for s in states(output)] == [{"stores": {}}]


@pytest.mark.e2e
def test_bad_token_fails_check_with_the_fix_and_without_the_token(sandbox, write_json,
                                                                  customers_catalog) -> None:
    token = "bad-token-7f3a9c1e"
    config = write_json(sandbox.config(access_token=token))
    check = run_cli("runner", "check", "bigcommerce", "--config", str(config))
    assert check.returncode == 1
    assert b"create new API credentials in the BigCommerce control panel" in check.stderr
    read_run = read(config, customers_catalog)
    assert read_run.returncode == 2
    error = next(m for m in messages(read_run.stdout) if m["type"] == "TRACE"
                 and m["trace"]["type"] == "ERROR")["trace"]["error"]
    assert error["failure_type"] == "config_error" and error["stream_descriptor"] == {
        "name": "customers"}
    last_line = read_run.stderr.decode().strip().splitlines()[-1]
    assert last_line.startswith("error: BigCommerce rejected the access token")
    for stream in (check.stdout, check.stderr, read_run.stdout, read_run.stderr):
        assert token.encode() not in stream


@pytest.mark.e2e
def test_bad_config_is_one_line_and_exit_2(write_json) -> None:
    config = write_json({"store_hash": "abc", "access_token": "s3cr3t-value-x",
                         "api_url": "http://api.example.com", "pagesize": 10})
    result = run_cli("runner", "read", "bigcommerce", "--config", str(config))
    assert result.returncode == 2
    stderr = result.stderr.decode().strip()
    assert stderr.count("\n") == 0, stderr
    assert stderr.startswith("error: invalid bigcommerce config: ")
    assert "'api_url' must be an https:// URL" in stderr
    assert "unknown field 'pagesize'" in stderr
    assert "s3cr3t-value-x" not in stderr + result.stdout.decode()


@pytest.mark.e2e
def test_catalog_with_an_unknown_stream(sandbox, write_json) -> None:
    config = write_json(sandbox.config())
    catalog = json.loads(json.dumps(connector.configured_catalog().model_dump(mode="json",
                                                                              exclude_none=True)))
    catalog["streams"][0]["stream"]["name"] = "customer"
    result = run_cli("runner", "read", "bigcommerce", "--config", str(config), "--catalog",
                     str(write_json(catalog)))
    assert result.returncode == 2
    assert ("catalog names stream 'customer', which bigcommerce does not have; valid: customers"
            in result.stderr.decode())
