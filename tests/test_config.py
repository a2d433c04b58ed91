"""User config: JSON or YAML, ${ENV} substitution, and errors that name fields, not secrets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from connectors.bigcommerce import connector
from framework.config import load_config
from framework.errors import ConfigError

SCHEMA = connector.loaded.model.connectionSpecification
SECRET = "tok_SuperSecret_9f8e7d"
GOOD = {"store_hash": "abc123", "access_token": SECRET}


def load(tmp_path: Path, text: str, name: str = "config.yaml") -> dict[str, Any]:
    path = tmp_path / name
    path.write_text(text)
    return load_config(path, SCHEMA, "bigcommerce")


def test_yaml_with_env_substitution_and_defaults(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BC_TOKEN", SECRET)
    config = load(tmp_path, 'store_hash: "abc123"\naccess_token: "${BC_TOKEN}"\n')
    webhooks = config.pop("webhooks")
    assert config == {"store_hash": "abc123", "access_token": SECRET,
                      "api_url": "https://api.bigcommerce.com", "page_size": 250,
                      "concurrency": 8, "read_mode": "poll", "request_timeout": 60}
    assert {"scope": "store/cart/abandoned", "destination": "cart_abandoned"} in webhooks


def test_json_config(tmp_path: Path) -> None:
    config = load(tmp_path, '{"store_hash": "abc123", "access_token": "t", "page_size": 100}',
                  "c.json")
    assert config["page_size"] == 100


def test_seed_connector_block_maps_onto_the_source_config(tmp_path: Path) -> None:
    # The seed document's keys for the store keep their names in the source config.
    config = load(tmp_path, 'store_hash: "your-store-hash-1"\n'.replace("-", "")
                  + 'access_token: "your-access-token"\nclient_id: "your-client-id"\n')
    assert config["client_id"] == "your-client-id"


def test_missing_env_var_names_field_and_variable(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOPE_TOKEN", raising=False)
    with pytest.raises(ConfigError, match=r"config field 'access_token' refers to "
                       r"\$\{NOPE_TOKEN\}, but the environment variable NOPE_TOKEN is not set"):
        load(tmp_path, "store_hash: abc\naccess_token: ${NOPE_TOKEN}\n")


ONE_STORE = {"store_setup": {"mode": "one_store", "store_hash": "abc123", "access_token": SECRET}}


@pytest.mark.parametrize(("config", "error"), [
    ({"store_hash": "abc123"}, "invalid bigcommerce config: 'store_setup' needs mode one_store "
                               "(with store_hash and access_token) or several_stores (with "
                               "stores)"),
    ({**GOOD, "sotre_hash": "x"},
     "unknown field 'sotre_hash' (valid: api_url, channel_ids, client_id, client_secret, "
     "concurrency, page_size, read_mode, request_timeout, spool_path, start_date, store_setup, "
     "webhook_secret, webhooks)"),
    ({"stores": [{"store_hash": "abc", "access_token": 987654321}]},
     "'store_setup.stores[0].access_token' must be of type string"),
    ({"stores": [{"store_hash": "abc"}]}, "'store_setup.stores[0].access_token' is required"),
    ({"stores": [{"store_hash": "abc", "access_token": SECRET, "tokn": 1}]},
     "unknown field 'tokn' in 'store_setup.stores[0]' (valid: access_token, channel_ids, "
     "client_id, store_hash)"),
    ({**GOOD, "concurrency": 100}, "'concurrency' must be <= 16 (got 100)"),
    ({**GOOD, "page_size": 500}, "'page_size' must be <= 250 (got 500)"),
    ({**GOOD, "page_size": "big"}, "'page_size' must be of type integer (got 'big')"),
    ({**GOOD, "store_hash": "ABC-123"},
     "'store_setup.store_hash' must be lowercase letters and digits, as in "
     "https://api.bigcommerce.com/stores/abc123xyz (got 'ABC-123')"),
    ({**GOOD, "api_url": "http://api.example.com"},
     "'api_url' must be an https:// URL without a path (plain http:// only for loopback"),
    ({**GOOD, "api_url": "ftp://127.0.0.1"}, "'api_url' must be an https:// URL"),
    ({**GOOD, "start_date": "last tuesday"},
     "'start_date' must be an ISO 8601 date or date-time, e.g. 2024-01-31"),
    ({**GOOD, "access_token": 12345678}, "'store_setup.access_token' must be of type string"),
    ({**GOOD, "access_token": ""}, "'store_setup.access_token' must be at least 1 characters"),
    # The layout Airbyte's form writes: a choice told apart by store_setup.mode.
    ({"store_setup": {**ONE_STORE["store_setup"], "mode": "single"}},
     "'store_setup.mode' must be one of one_store, several_stores (got 'single')"),
    ({"store_setup": {**ONE_STORE["store_setup"], "access_token": 12345678}},
     "'store_setup.access_token' must be of type string"),
    ({"store_setup": {**ONE_STORE["store_setup"], "stores": []}},
     "unknown field 'stores' in 'store_setup' (valid: access_token, mode, store_hash)"),
    ({"store_setup": {"mode": "several_stores", "store_hash": "abc123", "access_token": SECRET}},
     "'store_setup.stores' is required"),
    # Both layouts at once (before, the stores won and the store's own fields were ignored).
    ({**GOOD, "stores": [{"store_hash": "abc", "access_token": SECRET}]},
     "'store_setup' needs mode one_store"),
])
def test_invalid_config_errors(tmp_path: Path, config: dict[str, Any], error: str) -> None:
    import json
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, json.dumps(config), "c.json")
    assert error in caught.value.message
    assert SECRET not in caught.value.message
    assert "12345678" not in caught.value.message
    assert "987654321" not in caught.value.message


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:9",
                                 "https://api.bigcommerce.com", "https://api.bigcommerce.com/"])
def test_api_url_accepts_https_and_loopback_http(tmp_path: Path, url: str) -> None:
    import json
    assert load(tmp_path, json.dumps({**GOOD, "api_url": url}), "c.json")["api_url"] == url


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read config file .*missing\.yaml"):
        load_config(tmp_path / "missing.yaml", SCHEMA, "bigcommerce")
    with pytest.raises(ConfigError, match="is neither JSON nor YAML at line 2"):
        load(tmp_path, "store_hash: abc\n  bad: [unclosed\n")
    with pytest.raises(ConfigError, match="config must be a mapping of fields, got list"):
        load(tmp_path, "- a\n- b\n")


def test_the_form_layout_and_the_earlier_flat_one_load_alike(tmp_path: Path) -> None:
    import json
    expected = load(tmp_path, json.dumps(GOOD), "flat.json")
    assert expected["store_hash"] == "abc123" and "store_setup" not in expected
    assert load(tmp_path, json.dumps(ONE_STORE), "form.json") == expected
    # The discriminator left out: inferred from the fields that are there.
    unnamed = {"store_setup": {"store_hash": "abc123", "access_token": SECRET}}
    assert load(tmp_path, json.dumps(unnamed), "unnamed.json") == expected
    several = {"store_setup": {"mode": "several_stores", "stores": [GOOD]}, "client_id": "c"}
    config = load(tmp_path, json.dumps(several), "several.json")
    assert config["stores"] == [GOOD] and config["client_id"] == "c"
    assert load(tmp_path, json.dumps({"stores": [GOOD], "client_id": "c"}), "old.json") == config


def test_the_store_choice_is_a_oneof_told_apart_by_a_constant() -> None:
    """Airbyte's form renders a oneOf of objects that share a field with a const value, on an
    object property (a root combinator it does not render, and the CDK's secret filter does
    not look into one: its spec lint refuses a secret there)."""
    assert not {"anyOf", "oneOf", "allOf"} & set(SCHEMA)
    choice = SCHEMA["properties"]["store_setup"]
    assert choice["type"] == "object" and SCHEMA["required"] == ["store_setup"]
    modes = [v["properties"]["mode"]["const"] for v in choice["oneOf"]]
    assert modes == ["one_store", "several_stores"]
    for variant in choice["oneOf"]:
        assert variant["type"] == "object" and "mode" in variant["required"]


def test_unknown_keys_can_be_warnings(tmp_path: Path) -> None:
    import json
    path = tmp_path / "c.json"
    path.write_text(json.dumps({**ONE_STORE, "pagesize": 10}))
    told: list[str] = []
    config = load_config(path, SCHEMA, "bigcommerce", on_unknown=told.append)
    assert config["store_hash"] == "abc123"
    assert told == ["unknown field 'pagesize' (valid: api_url, channel_ids, client_id, "
                    "client_secret, concurrency, page_size, read_mode, request_timeout, "
                    "spool_path, start_date, store_setup, webhook_secret, webhooks)"]


@pytest.mark.parametrize("name", ["bigcommerce", "brevo", "sqlite"])
def test_published_specs_do_not_forbid_unknown_keys(name: str) -> None:
    """Airbyte refuses ``additionalProperties: false`` in a spec: a config saved by a newer
    version must load in an older one. Typos are caught by ``unknown_fields`` instead."""
    from framework import connector as registry

    def forbidding(node: Any, at: str = "$") -> list[str]:
        if isinstance(node, dict):
            here = [at] if node.get("additionalProperties") is False else []
            return here + [p for k, v in node.items() for p in forbidding(v, f"{at}.{k}")]
        if isinstance(node, list):
            return [p for i, v in enumerate(node) for p in forbidding(v, f"{at}[{i}]")]
        return []

    spec = registry.get(name).spec().connectionSpecification
    assert forbidding(spec) == []
