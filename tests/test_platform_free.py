"""The framework names no platform: what differs between platforms is declared by each plugin's
spec or hooks (account lists and per-account state, the settling delay, webhooks, paginators,
auth, the config fields the engine reads), and the app that pairs BigCommerce with Brevo is its
own layer (``app/``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_engine import ITEMS_SCHEMA, FakeClient

from framework.source import HttpSource

SHOPS_SPEC = {
    "name": "shops", "kind": "source",
    "connectionSpecification": {"type": "object", "properties": {
        "api_url": {"type": "string"}, "token": {"type": "string", "airbyte_secret": True},
        "shop": {"type": "string"}, "shops": {"type": "array"}}},
    "client": {"base_url": "{api_url}", "auth": {"type": "header", "header": "X-Token",
                                                 "config_field": "token"},
               "account_field": "shop", "accounts": "shops"},
    "streams": [{"name": "items", "path": "/items", "records_path": "data",
                 "paginator": {"type": "page_number"}, "primary_key": ["id"],
                 "incremental": {"cursor_field": "when", "param": "since",
                                 "format": "iso8601"},
                 "schema": "items.json"}],
}


def source_of(tmp_path: Path, spec: dict[str, Any]) -> HttpSource:
    (tmp_path / "items.json").write_text(json.dumps(ITEMS_SCHEMA))
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    return HttpSource(tmp_path / "spec.json")


def read(source: HttpSource, monkeypatch: pytest.MonkeyPatch, config: dict[str, Any],
         state: dict[str, Any], bodies: list[Any]) -> tuple[list[dict[str, Any]], FakeClient]:
    client = FakeClient(bodies)
    monkeypatch.setattr(source, "client", lambda config, resets=None: client)
    out = b"".join(source.read(config, source.configured_catalog(), state))
    return [json.loads(line) for line in out.splitlines()], client


def test_per_account_state_is_keyed_as_the_spec_names_its_accounts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = source_of(tmp_path, SHOPS_SPEC)
    config = {"api_url": "http://x", "token": "t", "page_size": 5, "shops": [{"shop": "a"}]}
    output, _ = read(source, monkeypatch, config, {},
                     [{"data": [{"id": 1, "when": "2024-01-02T00:00:00Z"}]}])
    states = [m["state"]["stream"]["stream_state"] for m in output if m["type"] == "STATE"]
    assert states[-1] == {"shops": {"a": {"when": "2024-01-02T00:00:00Z"}}}
    # and a run resumes from it
    _, client = read(source, monkeypatch, config, {"items": states[-1]}, [{"data": []}])
    assert client.asked[0]["since"] == "2024-01-02T00:00:00Z"


def test_a_state_of_another_shape_names_the_declared_key(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from framework.errors import ConfigError

    source = source_of(tmp_path, SHOPS_SPEC)
    config = {"api_url": "http://x", "token": "t", "shops": [{"shop": "a"}]}
    with pytest.raises(ConfigError, match=r'is not \{"shops": \{account: \{field: value\}\}\}'):
        read(source, monkeypatch, config, {"items": {"shops": {"a": 5}}}, [{"data": []}])


def test_a_spec_without_an_accounts_list_keys_its_state_accounts(tmp_path: Path) -> None:
    spec = {**SHOPS_SPEC, "client": {k: v for k, v in SHOPS_SPEC["client"].items()
                                     if k not in ("accounts", "account_field")}}
    assert source_of(tmp_path, spec).state_key == "accounts"


def test_bigcommerce_declares_what_the_framework_used_to_assume() -> None:
    from connectors.bigcommerce import connector

    assert connector.state_key == "stores"  # saved states and state databases load unchanged
    assert connector.loaded.model.client.account_field == "store_hash"
    assert connector.settle_s == 1.0  # its dates are whole seconds


def test_the_settling_delay_is_the_sources(tmp_path: Path) -> None:
    assert source_of(tmp_path, SHOPS_SPEC).settle_s == 0.0
