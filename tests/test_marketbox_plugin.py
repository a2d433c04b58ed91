"""Marketbox, the made-up platform's plugin (``tests/plugins/tajo_marketbox``), in-process: its
spec names the commerce model's schemas by their ``$id`` (a plugin installed apart from the
framework has no path to them), every record its sandbox serves maps to a valid model record, and
the plugin is only files under ``tests/``. ``tests/test_second_platform.py`` runs it end to end.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator

from framework.declarative.spec import SpecError, load_spec

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "tests" / "plugins" / "tajo_marketbox"
MODEL = ROOT / "specs" / "schemas" / "commerce" / "v1"

sys.path.insert(0, str(PLUGIN.parent))  # as PYTHONPATH does for the e2e tests
import tajo_marketbox  # noqa: E402
from tajo_marketbox.sandbox import Shop  # noqa: E402


def spec_with_schema(tmp_path: Path, schema: str) -> Path:
    spec = {"name": "shoplike", "kind": "source",
            "connectionSpecification": {"type": "object", "properties": {
                "api_url": {"type": "string"}, "key": {"type": "string"}}},
            "client": {"base_url": "{api_url}",
                       "auth": {"type": "header", "header": "X-Key", "config_field": "key"}},
            "streams": [{"name": "people", "path": "/people", "primary_key": ["id"],
                         "schema": "people.json"},
                        {"name": "commerce_customers", "primary_key": ["platform", "account", "id"],
                         "parent": {"stream": "people", "hook": "commerce.customer",
                                    "whole": True, "cursor_field": "updated_at"},
                         "schema": schema}]}
    (tmp_path / "people.json").write_text(json.dumps({"type": "object", "properties": {
        "id": {"type": "integer"}}}))
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    return path


def test_a_spec_names_a_model_schema_by_its_id(tmp_path: Path) -> None:
    loaded = load_spec(spec_with_schema(tmp_path, "urn:tajo:commerce:v1:customer"))
    assert loaded.schemas["commerce_customers"] == json.loads(
        (MODEL / "customer.json").read_text())
    assert loaded.schemas["people"]["properties"] == {"id": {"type": "integer"}}  # paths still


@pytest.mark.parametrize(("name", "error"), [
    ("urn:tajo:commerce:v1:invoice", "no model schema 'urn:tajo:commerce:v1:invoice'; valid: "
                                     "urn:tajo:commerce:v1:cart, urn:tajo:commerce:v1:category"),
    ("urn:tajo:commerce:v9:customer", "no model schema 'urn:tajo:commerce:v9:customer'; "
                                      "valid: (none)"),
])
def test_an_unknown_model_schema_lists_the_valid_ones(tmp_path: Path, name: str,
                                                      error: str) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec(spec_with_schema(tmp_path, name))
    assert f"at $.streams[1].schema: {error}" in str(caught.value)


def test_the_model_streams_carry_the_model_schemas() -> None:
    connector = tajo_marketbox.connector
    for stream in connector.loaded.model.streams:
        if stream.name.startswith("commerce_"):
            kind = stream.schema_file.rsplit(":", 1)[1]
            assert connector.loaded.schemas[stream.name]["$id"] == f"urn:tajo:commerce:v1:{kind}"
            assert stream.parent is not None and stream.parent.hook == f"commerce.{kind}"
            assert tajo_marketbox.COMMERCE.kinds[kind].stream == stream.parent.stream


def sandbox_records() -> dict[str, list[dict[str, Any]]]:
    """Every record the sandbox serves, by kind, as the engine hands them to the mapping (with
    the account field the spec adds to each)."""
    shop = Shop("acme-outdoor", 12, 24)
    shop.change({"refund": [1], "archive": ["cus_0003"]})
    rows = {"customer": shop.customers, "order": shop.orders, "product": shop.products,
            "cart": shop.carts, "store": [shop.info]}
    return {kind: [{**row, "shop": "acme-outdoor"} for row in found]
            for kind, found in rows.items()}


def test_every_sandbox_record_maps_to_a_valid_model_record() -> None:
    context = {"shop": Shop("acme-outdoor", 1, 1).info}
    for kind, records in sandbox_records().items():
        validator = Draft7Validator(json.loads((MODEL / f"{kind}.json").read_text()))
        for record in records:
            mapped = tajo_marketbox.COMMERCE.map(kind, record, context=context)
            assert mapped is not None
            errors = list(validator.iter_errors(mapped))
            assert not errors, f"{kind} {record['id']}: {errors[0].message}"
            assert (mapped["platform"], mapped["account"]) == ("marketbox", "acme-outdoor")


@pytest.mark.parametrize(("word", "status", "purchase"), [
    ("open", "pending", False), ("paid", "processing", True), ("fulfilled", "completed", True),
    ("cancelled", "cancelled", False), ("refunded", "refunded", False),
    ("partially_refunded", "partially_refunded", True), ("on_hold", "unknown", False),
])
def test_status_words_and_the_purchase_rule(word: str, status: str, purchase: bool) -> None:
    order = {**sandbox_records()["order"][0], "status": word}
    mapped = tajo_marketbox.COMMERCE.map("order", order, context={})
    assert mapped is not None
    assert (mapped["status"], mapped["counts_as_purchase"]) == (status, purchase)
    assert mapped["platform_status"] == {"id": word, "name": word}


def test_consent_and_tombstones() -> None:
    customers = {c["id"]: c for c in sandbox_records()["customer"]}
    mapped = tajo_marketbox.COMMERCE.map("customer", customers["cus_0001"], context={})
    assert mapped is not None
    # Withdrawn, and when: the shop's local time (+02:00) as UTC.
    assert mapped["consent"] == {"email": {"state": "unsubscribed", "at": "2024-03-02T07:00:00Z"},
                                 "sms": {"state": "not_subscribed"},
                                 "abandoned_cart": {"state": "subscribed"}}
    gone = tajo_marketbox.COMMERCE.map("customer", customers["cus_0003"], context={})
    assert gone is not None and gone["deleted"] is True and "email" not in gone


def tracked_and_new_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return listed.splitlines()


def test_the_plugin_is_only_files_under_tests() -> None:
    """Nothing outside tests/ is Marketbox's: no file named for it, and no line of the
    framework, the connectors, the app or the specs names it."""
    files = tracked_and_new_files()
    assert [f for f in files if "marketbox" in f.lower() and not f.startswith("tests/")] == []
    outside = [f for f in files if f.split("/")[0] in ("framework", "connectors", "app", "specs")
               and (ROOT / f).is_file() and f.endswith((".py", ".json", ".toml", ".yml"))]
    assert outside  # the check reads something
    assert [f for f in outside if "marketbox" in (ROOT / f).read_text().lower()] == []
    connector = tajo_marketbox.connector
    for path in [connector.spec_file, tajo_marketbox.COMMERCE.path,
                 Path(tajo_marketbox.sandbox.__file__),
                 *(connector.spec_file.parent / s.schema_file
                   for s in connector.loaded.model.streams if not s.name.startswith("commerce_"))]:
        assert path.resolve().is_relative_to(PLUGIN)
