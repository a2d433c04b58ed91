"""Spec files: the shipped ones load; broken ones fail with the file, the JSON path and choices."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from framework.declarative.spec import SpecError, load_spec
from framework.protocol.catalog import data_path

SPECS = Path(data_path("specs"))
BASE = json.loads((SPECS / "bigcommerce.json").read_text())


def variant(change: Any) -> dict[str, Any]:
    spec = copy.deepcopy(BASE)
    change(spec)
    return spec


def stream(spec: dict[str, Any]) -> dict[str, Any]:
    return spec["streams"][0]


VALID = {
    "as shipped": lambda s: None,
    "page_number paginator": lambda s: stream(s).update(
        paginator={"type": "page_number", "options": {"total_pages_path":
                                                      "meta.pagination.total_pages"}}),
    "cursor paginator": lambda s: stream(s).update(
        paginator={"type": "cursor", "options": {"cursor_path":
                                                 "meta.cursor_pagination.end_cursor"}}),
    "full refresh only": lambda s: (stream(s).pop("incremental"),
                                    stream(s).update(paginator={"type": "page_number"})),
    "rfc2822 cursor": lambda s: stream(s)["incremental"].update(format="rfc2822"),
}

INVALID = [
    (lambda s: stream(s)["paginator"].update(type="pages"),
     "at $.streams[0].paginator.type: unknown paginator 'pages'; "
     "valid: cursor, keyset, page_number, single_page"),
    (lambda s: stream(s)["incremental"].update(format="epoch"),
     "at $.streams[0].incremental.format: unknown cursor format 'epoch'; "
     "valid: date, iso8601, iso8601_offset, rfc2822, unix"),
    (lambda s: s["client"]["auth"].update(type="oauth"),
     "at $.client.auth.type: unknown auth type 'oauth'; valid: header"),
    (lambda s: stream(s).update(pagniator={"type": "keyset"}),
     "at $.streams[0].pagniator: unknown key"),
    (lambda s: stream(s).pop("primary_key"), "at $.streams[0].primary_key: Field required"),
    (lambda s: stream(s).update(path="v3/customers"),
     "at $.streams[0].path: String should match pattern '^/'"),
    (lambda s: stream(s).update(primary_key=["uuid"]),
     "at $.streams[0].primary_key: 'uuid' is not a property of the record schema "
     "schemas/bigcommerce/customers.json"),
    (lambda s: stream(s)["incremental"].update(cursor_field="updated_at"),
     "at $.streams[0].incremental.cursor_field: 'updated_at' is not a property of the record "
     "schema schemas/bigcommerce/customers.json"),
    (lambda s: stream(s).pop("incremental"),
     "at $.streams[0].paginator.type: 'keyset' walks the cursor field, so the stream needs "
     "'incremental'"),
    (lambda s: stream(s)["paginator"].update(options={"page_parm": "p"}),
     "at $.streams[0].paginator.options.page_parm: Extra inputs are not permitted"),
    (lambda s: s.update(kind="sink"), "at $.kind: Input should be 'source' or 'destination'"),
    (lambda s: s["client"].update(base_url="{api_url}/stores/{hash}"),
     "at $.client.base_url: placeholder {hash} is not a config field; valid: access_token, "
     "api_url, channel_ids, client_id, client_secret, concurrency, page_size, read_mode, "
     "request_timeout, spool_path, start_date, store_hash, storefront, stores, webhook_secret, "
     "webhooks"),
    (lambda s: s["connectionSpecification"].update(type="thing"),
     "at $.connectionSpecification: not a valid JSON Schema"),
    (lambda s: s["streams"].append(copy.deepcopy(stream(s))),
     "at $.streams[22].name: duplicate stream name 'customers'"),
    (lambda s: s["streams"][13]["parent"].update(cursor_field="modified"),
     "at $.streams[13].parent.cursor_field: 'modified' is not a property of the record schema "
     "schemas/commerce/v1/customer.json"),
    (lambda s: s["streams"][4]["parent"].update(stream="order"),
     "at $.streams[4].parent.stream: no stream 'order'"),
    (lambda s: s["streams"][1].pop("path"), "at $.streams[1].path: a stream needs a path"),
    (lambda s: stream(s).update(schema="schemas/bigcommerce/nope.json"),
     "nope.json: cannot read record schema of stream 'customers'"),
    (lambda s: s["streams"][12]["live"].pop("cursor_field"),
     "at $.streams[12].live.cursor_field: a stream read only from the spool is incremental "
     "(at a spool offset); name the record field its records are ordered by"),
    # A channels rule without its parameter or field read every channel's records.
    (lambda s: s["streams"][6]["channels"].pop("param"),
     "at $.streams[6].channels: mode 'list' needs 'param', the request parameter that takes "
     "the account's channels"),
    (lambda s: s["streams"][0]["channels"].pop("field"),
     "at $.streams[0].channels: mode 'field' needs 'field', the record field naming the "
     "channel(s) of a record"),
    (lambda s: s["streams"][12]["live"].update(cursor_field="modified"),
     "at $.streams[12].live.cursor_field: 'modified' is not a property of the record schema "
     "schemas/bigcommerce/carts.json"),
]


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_specs_load(name: str, tmp_path: Path) -> None:
    path = tmp_path / "spec.json"
    (tmp_path / "schemas").symlink_to(SPECS / "schemas")
    path.write_text(json.dumps(variant(VALID[name])))
    loaded = load_spec(path)
    assert loaded.name == "bigcommerce"
    assert "customers" in loaded.schemas


@pytest.mark.parametrize(("change", "error"), INVALID, ids=[e[1][:50] for e in INVALID])
def test_invalid_specs_name_file_path_and_choices(change: Any, error: str,
                                                  tmp_path: Path) -> None:
    path = tmp_path / "spec.json"
    (tmp_path / "schemas").symlink_to(SPECS / "schemas")
    path.write_text(json.dumps(variant(change)))
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    message = str(caught.value)
    assert message.startswith(str(tmp_path)), message
    assert error in message, message


def test_spec_that_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{nope")
    with pytest.raises(SpecError, match=r"broken.json: connector spec is not valid JSON"):
        load_spec(path)


@pytest.mark.parametrize("path", sorted(SPECS.glob("*.json")), ids=lambda p: p.name)
def test_every_shipped_spec_loads(path: Path) -> None:
    assert load_spec(path).name == path.stem


def test_a_bad_record_schema_is_refused_where_it_is_used(tmp_path: Path) -> None:
    """Record schemas are checked against the metaschema when first looked up (``runner spec``
    need not check twenty): a bad one is the same one-line error at the discover that uses it."""
    from framework.engine.source import HttpSource

    (tmp_path / "schemas").mkdir()
    for name in ("bigcommerce", "commerce"):
        (tmp_path / "schemas" / name).symlink_to(SPECS / "schemas" / name)
    spec = variant(lambda s: stream(s).update(schema="bad.json"))
    good = json.loads((SPECS / "schemas" / "bigcommerce" / "customers.json").read_text())
    good["properties"]["id"] = {"type": "thing"}
    (tmp_path / "bad.json").write_text(json.dumps(good))
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    source = HttpSource(path)
    assert source.spec().connectionSpecification["type"] == "object"
    with pytest.raises(SpecError, match=r"bad.json: not a valid JSON Schema: 'thing' is not"):
        source.discover({})
    assert load_spec(path).schemas["orders"]["type"] == "object"  # the others are fine
