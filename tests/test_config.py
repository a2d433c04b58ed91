"""User config: JSON or YAML, ${ENV} substitution, and errors that name fields, not secrets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from connectors.bigcommerce import connector
from framework.errors import ConfigError
from framework.protocol.config import load_config

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
    # The Brevo event each scope is sent as is the app's (app/events.py), not the source's.
    assert {"scope": "store/cart/abandoned"} in webhooks


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
     "storefront, webhook_secret, webhooks)"),
    ({"stores": [{"store_hash": "abc", "access_token": 987654321}]},
     "'store_setup.stores[0].access_token' must be of type string"),
    ({"stores": [{"store_hash": "abc"}]}, "'store_setup.stores[0].access_token' is required"),
    ({"stores": [{"store_hash": "abc", "access_token": SECRET, "tokn": 1}]},
     "unknown field 'tokn' in 'store_setup.stores[0]' (valid: access_token, channel_ids, "
     "client_id, store_hash, webhook_secret)"),
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
                    "spool_path, start_date, store_setup, storefront, webhook_secret, webhooks)"]


@pytest.mark.parametrize("name", ["bigcommerce", "brevo", "sqlite"])
def test_published_specs_do_not_forbid_unknown_keys(name: str) -> None:
    """Airbyte refuses ``additionalProperties: false`` in a spec: a config saved by a newer
    version must load in an older one. Typos are caught by ``unknown_fields`` instead."""
    from framework.plugins import connector as registry

    def forbidding(node: Any, at: str = "$") -> list[str]:
        if isinstance(node, dict):
            here = [at] if node.get("additionalProperties") is False else []
            return here + [p for k, v in node.items() for p in forbidding(v, f"{at}.{k}")]
        if isinstance(node, list):
            return [p for i, v in enumerate(node) for p in forbidding(v, f"{at}[{i}]")]
        return []

    spec = registry.get(name).spec().connectionSpecification
    assert forbidding(spec) == []


# --- secrets a careless operator hands over (issue 15) ------------------------------------
# A token with the characters that change when escaped (quote, backslash, non-ASCII, < and &),
# and a trailing newline, as a file-mounted Kubernetes secret has.
ODD = 'odd"to\\ken<&é-5c1a9f'


def _sync_schema() -> dict[str, Any]:
    from app import sync
    from framework.plugins.connector import get

    destination = get("brevo", "destination")
    return sync.sync_schema(sync.sources(), destination)  # type: ignore[arg-type]


def test_secrets_lose_surrounding_whitespace(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BC_TOKEN", f"  {ODD}\n")
    config = load(tmp_path, 'store_hash: abc123\naccess_token: "${BC_TOKEN}"\n'
                  'webhook_secret: " hook-secret-0123456789\\t"\n')
    assert config["access_token"] == ODD
    assert config["webhook_secret"] == "hook-secret-0123456789"
    several = {"stores": [{"store_hash": "abc123", "access_token": ODD + "\r\n"}]}
    assert load(tmp_path, __import__("json").dumps(several), "s.json")["stores"][0][
        "access_token"] == ODD


@pytest.mark.parametrize("inner", ["\n", "\t", "\x00", "\x7f"])
def test_a_control_character_inside_a_secret_is_an_error(tmp_path: Path, inner: str) -> None:
    import json
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, json.dumps({**GOOD, "access_token": f"zq9{inner}w8x-1234"}), "c.json")
    message = caught.value.message
    assert f"'store_setup.access_token' has a control character (U+{ord(inner):04X}) inside " \
           "it; a secret is one line without tabs or line breaks" in message
    assert "zq9" not in message and "w8x" not in message and "\n" not in message


def test_every_spelling_of_a_secret_is_redacted() -> None:
    """The forms decided (framework/errors.py): raw, JSON (with and without \\u escapes),
    repr and ascii, a bytes repr, URL-encoded (path, query, form), HTML; and each of those
    escaped once more (a repr inside a JSON document)."""
    import html
    import json
    from urllib.parse import quote, quote_plus

    from framework.errors import Redactor

    redact = Redactor()
    redact.add([ODD + "\n"])
    for form in (ODD, json.dumps(ODD), json.dumps(ODD, ensure_ascii=False), repr(ODD),
                 ascii(ODD), repr(ODD.encode()), quote(ODD, safe=""), quote_plus(ODD),
                 html.escape(ODD), repr(ODD + "\n"), json.dumps(repr(ODD)),
                 json.dumps({"trace": repr(ODD + "\n")}), repr(json.dumps(ODD))):
        assert "5c1a9f" not in redact(f"header value {form}!"), form
    assert redact("nothing secret here") == "nothing secret here"


@pytest.mark.parametrize(("text", "error"), [
    # a mapping where the list of stores goes
    ('stores: {main: {store_hash: abc123, access_token: "%s"}}\n',
     "'store_setup.stores' must be of type array (got a mapping)"),
    # a token pasted into the URL
    ('store_hash: abc123\naccess_token: x-1234\napi_url: "https://api.example.com/?t=%s"\n',
     "'api_url' must be an https:// URL without a path"),
    ('store_hash: abc123\naccess_token: x-1234\napi_url: "https://me:%s@api.example.com"\n',
     "'api_url' must be an https:// URL without a path"),
])
def test_a_config_of_the_wrong_shape_does_not_print_its_secrets(tmp_path: Path, text: str,
                                                                error: str) -> None:
    from framework.errors import REDACT
    secret = "shape-secret-7d2e91"
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text % secret)
    assert error in caught.value.message
    assert secret not in caught.value.message
    assert secret not in REDACT(f"later, an error quoting {secret!r}")


def test_a_sync_config_of_the_wrong_shape_does_not_print_its_secrets(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``brevo: ${BREVO_API_KEY}``: a string where the brevo section goes."""
    from app import sync
    from framework.errors import REDACT

    key = "xkeysib-shape-0f9e8d7c6b5a"
    monkeypatch.setenv("BREVO_API_KEY", key + "\n")
    path = tmp_path / "tajo.yaml"
    path.write_text("connectors:\n  bigcommerce: {store_hash: abc123, access_token: t-1234, "
                    "lists: {all_customers: 40}}\nbrevo: ${BREVO_API_KEY}\n")
    with pytest.raises(ConfigError) as caught:
        sync.load(path)
    assert "'brevo' must be of type object" in caught.value.message
    assert key not in caught.value.message
    assert key not in REDACT(f"InvalidHeader: {key!r}")
    assert "brevo.api_key" in _sync_schema_secrets()


def _sync_schema_secrets() -> list[str]:
    from framework.protocol.config import secret_fields
    return secret_fields(_sync_schema())


def test_the_sync_config_strips_its_secrets(tmp_path: Path) -> None:
    from app import sync
    path = tmp_path / "tajo.json"
    path.write_text(__import__("json").dumps({
        "connectors": {"bigcommerce": {"store_hash": "abc123", "access_token": ODD + "\n",
                                       "client_secret": " cs-12345 ", "lists": {
                                           "all_customers": 40}}},
        "brevo": {"api_key": "xkeysib-strip-1234\n"}, "state_dir": str(tmp_path / "s")}))
    job = sync.load(path)[0]
    assert job.source_config["access_token"] == ODD
    assert job.source_config["client_secret"] == "cs-12345"
    assert job.destination_config["api_key"] == "xkeysib-strip-1234"
    assert {"connectors.bigcommerce.store_setup.access_token", "brevo.api_key",
            "connectors.bigcommerce.client_secret"} <= set(_sync_schema_secrets())


def test_a_yaml_alias_bomb_is_refused_quickly_and_small(tmp_path: Path) -> None:
    """Nine levels of ten aliases: 10**9 strings once ${VAR} substitution builds it out."""
    import time
    import tracemalloc

    lines = ['a0: &a0 "${HOME}lol"']
    lines += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 10)}]" for n in range(1, 10)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\nstore_hash: abc123\naccess_token: t\n")
    tracemalloc.start()
    started = time.monotonic()
    with pytest.raises(ConfigError) as caught:
        load_config(path, SCHEMA, "bigcommerce")
    elapsed = time.monotonic() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert caught.value.message == (
        f"config file {path} line 2: YAML aliases (*a0) are not accepted in a config (they "
        "can multiply it beyond memory); write the value out in full")
    assert elapsed < 1 and peak < 5 * 2**20, (elapsed, peak)


# --- customer data files ------------------------------------------------------------------

def test_customer_data_files_are_private(tmp_path: Path) -> None:
    import os
    import stat

    from framework.files import open_sqlite, private_file
    from framework.protocol.statestore import StateStore

    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    state_dir = tmp_path / "state"
    store = StateStore(state_dir / "bigcommerce.state.db")
    store.start_run("sync")
    assert mode(state_dir) == 0o700
    for path in state_dir.iterdir():  # the database and its -wal/-shm files
        assert mode(path) == 0o600, path
    store.close()
    # Files and a state directory from an older version are tightened.
    old = tmp_path / "old"
    old.mkdir(mode=0o755)
    os.chmod(old, 0o755)
    (old / "spool.db").touch()
    (old / "spool.db-wal").touch()
    for path in (old / "spool.db", old / "spool.db-wal"):
        path.chmod(0o644)
    open_sqlite(old / "spool.db", "webhook spool").close()
    assert (mode(old), mode(old / "spool.db"), mode(old / "spool.db-wal")) == (
        0o700, 0o600, 0o600)
    # The current directory keeps its mode (spool_path: spool.db in the project folder).
    here = Path.cwd()
    before = mode(here)
    private_file(here / ".tajo-files-test")
    (here / ".tajo-files-test").unlink()
    assert mode(here) == before


def test_a_damaged_database_or_a_directory_is_a_one_line_error(tmp_path: Path) -> None:
    from framework.files import open_sqlite
    from framework.protocol.statestore import StateStore

    damaged = tmp_path / "state.db"
    damaged.write_bytes(b"not a database " * 300)
    with pytest.raises(ConfigError) as caught:
        StateStore(damaged)
    assert caught.value.message == (
        f"state database {damaged} is damaged or not a SQLite database (file is not a "
        f"database); it was left as it is: move it aside (mv {damaged} {damaged}.damaged) to "
        "start a new one, or restore it from a backup")
    assert damaged.read_bytes() == b"not a database " * 300
    with pytest.raises(ConfigError, match=rf"webhook spool {tmp_path} is a directory; give the "
                       rf"path of a file in it \(e.g. {tmp_path}/webhook-spool.db\)"):
        open_sqlite(tmp_path, "webhook spool")


def test_run_errors_are_stored_redacted(tmp_path: Path) -> None:
    from framework.errors import REDACT
    from framework.protocol.statestore import StateStore

    REDACT.add(["stored-secret-4e5f6a"])
    store = StateStore(tmp_path / "s.db")
    run = store.start_run("sync")
    store.finish_run(run, "failed", "InvalidHeader: 'stored-secret-4e5f6a\\n'")
    store.close()
    assert b"stored-secret" not in b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert StateStore(tmp_path / "s.db").runs()[0]["error"] == "InvalidHeader: '****\\n'"
