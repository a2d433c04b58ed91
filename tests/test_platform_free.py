"""The framework names no platform: what differs between platforms is declared by each plugin's
spec or hooks (account lists and per-account state, the settling delay, webhooks, paginators,
auth, the config fields the engine reads), and the app that pairs BigCommerce with Brevo is its
own layer (``app/``)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from test_engine import ITEMS_SCHEMA, FakeClient

from framework.declarative.formats import format_utc
from framework.declarative.paginators import PAGINATORS, Paginator, register_paginator
from framework.declarative.spec import AUTH_TYPES, Authenticator, SpecError, register_auth
from framework.engine.source import HttpSource

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


# --- paginators and auth types a plugin registers ---------------------------------------------

class Offset(Paginator):
    """``offset=0,n,2n...`` until a short page: a paginator the framework does not have."""

    def first(self, params: dict[str, Any]) -> dict[str, Any]:
        return {**super().first(params), "offset": 0}

    def next(self, params: dict[str, Any], body: Any, records: list[Any]
             ) -> dict[str, Any] | None:
        if len(records) < self.page_size:
            return None
        return {**params, "offset": params["offset"] + self.page_size}


class Bearer(Authenticator):
    class Options(Authenticator.Options):
        config_field: str

    def headers(self, config: dict[str, Any]) -> dict[str, str]:
        return {"Authorization": f"Bearer {config[self.options.config_field]}"}  # type: ignore[attr-defined]


@pytest.fixture
def registered() -> Any:
    register_paginator("offset_test", Offset)
    register_auth("bearer_test", Bearer)
    try:
        yield
    finally:
        PAGINATORS.pop("offset_test")
        AUTH_TYPES.pop("bearer_test")


def test_a_plugin_registered_paginator_and_auth_run_a_stream(
        registered: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = {**SHOPS_SPEC,
            "client": {"base_url": "{api_url}",
                       "auth": {"type": "bearer_test", "config_field": "token"}},
            "streams": [{**SHOPS_SPEC["streams"][0], "incremental": None,
                         "paginator": {"type": "offset_test"}}]}
    source = source_of(tmp_path, spec)
    config = {"api_url": "http://x", "token": "t0k", "page_size": 2}
    output, client = read(source, monkeypatch, config, {},
                          [{"data": [{"id": 1}, {"id": 2}]}, {"data": [{"id": 3}]}])
    assert [m["record"]["data"]["id"] for m in output if m["type"] == "RECORD"] == [1, 2, 3]
    assert client.asked == [{"limit": 2, "offset": 0}, {"limit": 2, "offset": 2}]
    assert source.loaded.model.client.auth.authenticator().headers(config) == {
        "Authorization": "Bearer t0k"}


def test_registered_names_are_the_valid_choices(registered: None, tmp_path: Path) -> None:
    spec = {**SHOPS_SPEC, "streams": [{**SHOPS_SPEC["streams"][0], "incremental": None,
                                       "paginator": {"type": "offset"}}]}
    with pytest.raises(SpecError, match=r"unknown paginator 'offset'; valid: cursor, keyset, "
                                        r"offset_test, page_number, single_page"):
        source_of(tmp_path, spec)
    spec = {**SHOPS_SPEC, "client": {"base_url": "{api_url}",
                                     "auth": {"type": "bearer_test", "header": "X"}}}
    with pytest.raises(SpecError, match=r"\$\.client\.auth"):
        source_of(tmp_path, spec)  # bearer_test has no header option, and needs config_field


def test_registering_something_else_or_a_taken_name_is_refused() -> None:
    with pytest.raises(TypeError, match=r"not a subclass of .*paginators\.Paginator"):
        register_paginator("odd", dict)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="paginator 'cursor' is registered already"):
        register_paginator("cursor", Offset)
    with pytest.raises(TypeError, match=r"not a subclass of .*spec\.Authenticator"):
        register_auth("odd", dict)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="auth type 'header' is registered already"):
        register_auth("header", Bearer)


# --- the config fields the engine reads are the spec's ---------------------------------------

def test_the_engine_reads_settings_from_the_fields_the_spec_names(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = {**SHOPS_SPEC, "client": {**SHOPS_SPEC["client"],
                                     "config": {"page_size": "batch", "start_date": "since"}}}
    source = source_of(tmp_path, spec)
    config = {"api_url": "http://x", "token": "t", "batch": 3, "page_size": 7,
              "since": "2024-05-01T00:00:00Z", "start_date": "2020-01-01T00:00:00Z"}
    _, client = read(source, monkeypatch, config, {}, [{"data": []}])
    assert client.asked[0]["limit"] == 3  # not page_size's 7
    assert client.asked[0]["since"] == "2024-05-01T00:00:00Z"  # not start_date's


def test_a_spec_cannot_name_a_setting_the_engine_does_not_have(tmp_path: Path) -> None:
    spec = {**SHOPS_SPEC, "client": {**SHOPS_SPEC["client"], "config": {"pagesize": "n"}}}
    with pytest.raises(SpecError, match=r"\$\.client\.config\.pagesize: unknown key"):
        source_of(tmp_path, spec)


# --- the framework core names no platform ----------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
#: BigCommerce's field, stream, scope and header names, and the names of Brevo, none of which
#: the framework core may spell (case-insensitive): a platform's names live in its plugin
#: (connectors/NAME, specs/NAME.json) and the pairing of two platforms in the app.
PLATFORM_NAMES = ("bigcommerce", "brevo", "store_hash", '"stores"', "status_id", "consignment",
                  "secure_url", "custom_url", "inventory_level", "store/", "order_products",
                  "customer_groups", "customer_attributes", "inventory_locations",
                  "x-auth-token", "date_modified", "sendinblue")
#: The one layer allowed to pair the two platforms by name: it is not scanned.
ALLOWED = ("app/",)


def test_the_framework_core_names_no_platform() -> None:
    found = []
    for path in sorted((ROOT / "framework").rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        assert not relative.startswith(ALLOWED)
        for number, line in enumerate(path.read_text().splitlines(), 1):
            lowered = line.lower()
            found += [f"{relative}:{number}: {name}" for name in PLATFORM_NAMES
                      if name in lowered]
    assert found == []


def test_the_bigcommerce_plugin_and_spec_name_no_brevo_event() -> None:
    from app.events import EVENTS

    text = (ROOT / "specs" / "bigcommerce.json").read_text()
    assert [event for event in set(EVENTS.values()) if f'"{event}"' in text] == []
    plugin = [ROOT / "specs" / "bigcommerce.json",
              *(ROOT / "connectors" / "bigcommerce").rglob("*.py"),
              *(ROOT / "connectors" / "bigcommerce").rglob("*.json")]
    assert [p.name for p in plugin if "brevo" in p.read_text().lower()] == []


def test_one_date_format() -> None:
    """``framework.declarative.formats.format_utc`` is the one writer of ISO 8601 UTC dates."""
    copies = []
    for folder in ("framework", "app", "connectors/bigcommerce"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "%Y-%m-%dT%H:%M:%SZ" in path.read_text():
                copies.append(path.relative_to(ROOT).as_posix())
    assert copies == ["framework/declarative/formats.py"]


@pytest.mark.parametrize(("when", "expected"), [
    (0, "1970-01-01T00:00:00Z"),
    (1700000000.9, "2023-11-14T22:13:20Z"),
    (datetime(2024, 5, 1, 12, 30), "2024-05-01T12:30:00Z"),  # naive: UTC
    (datetime(2024, 5, 1, 14, 30, tzinfo=timezone(timedelta(hours=2))), "2024-05-01T12:30:00Z"),
])
def test_format_utc(when: Any, expected: str) -> None:
    assert format_utc(when) == expected


# --- runner read NAME without --catalog reads NAME's own default catalog ---------------------

def test_a_read_without_a_catalog_reads_the_sources_own(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from framework.plugins import commands

    source = source_of(tmp_path, SHOPS_SPEC)  # no BigCommerce stream: the old default failed
    client = FakeClient([{"data": [{"id": 1, "when": "2024-01-02T00:00:00Z"}]}])
    monkeypatch.setattr(source, "client", lambda config, resets=None: client)
    (tmp_path / "config.json").write_text(json.dumps({"api_url": "http://x", "token": "t"}))
    out = b"".join(commands.read(source, tmp_path / "config.json", None, None))
    records = [json.loads(line) for line in out.splitlines()
               if json.loads(line)["type"] == "RECORD"]
    assert [r["record"]["stream"] for r in records] == ["items"]


def test_the_packaged_catalog_is_the_default_a_pipe_of_the_built_ins_uses() -> None:
    """catalog.json (for an Airbyte connection) is what `runner read bigcommerce` and
    `runner write` read and write without --catalog."""
    from connectors.bigcommerce import connector as bigcommerce
    from framework.protocol.catalog import load_catalog, sources_catalog

    packaged = load_catalog(ROOT / "catalog.json")
    assert packaged == bigcommerce.configured_catalog()
    assert packaged == sources_catalog([bigcommerce])


def test_the_shopify_plugin_carries_its_catalog_for_an_airbyte_connection() -> None:
    """connectors/shopify/catalog.json, as catalog.json is BigCommerce's: what `runner read
    shopify` reads without --catalog (regenerate with `runner discover shopify --configured`)."""
    from connectors.shopify import connector as shopify
    from framework.protocol.catalog import load_catalog

    packaged = load_catalog(ROOT / "connectors/shopify/catalog.json")
    assert packaged == shopify.configured_catalog()


#: The framework's layers, bottom to top (README, "Writing a connector plugin"): a module imports
#: its own layer and those below it, never one above.
LAYERS = ["errors", "files", "net", "storage", "protocol", "declarative", "plugins", "webhooks",
          "engine", "destinations", "devkit", "cli"]
SHARED = {"errors": 0, "files": 0, "net": 0}  # one layer at the bottom; files and net use errors


def _layer(module: str) -> int:
    part = module.split(".")[1]
    return SHARED.get(part, LAYERS.index(part))


def test_each_layer_imports_only_the_layers_below_it() -> None:
    import ast

    upward = []
    for path in sorted((ROOT / "framework").rglob("*.py")):
        relative = path.relative_to(ROOT).with_suffix("")
        if relative.parts[1:] in [(), ("__init__",)]:
            continue
        own = _layer(".".join(relative.parts))
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(
                    "framework"):
                names = ([f"framework.{alias.name}" for alias in node.names]
                         if node.module == "framework" else [node.module])
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names if a.name.startswith("framework.")]
            upward += [f"{relative.as_posix()} imports {name}" for name in names
                       if _layer(name) > own]
    assert upward == []
    assert sorted({p.parent.name for p in (ROOT / "framework").glob("*/__init__.py")}) == sorted(
        set(LAYERS) - {"errors", "files", "net", "cli"})
