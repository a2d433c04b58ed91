"""The stream engine without a server: paginators, the loop guard, normalization, state files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from framework.declarative.formats import CURSOR_FORMATS, apply_plan, compile_plan, iso_utc
from framework.declarative.paginators import Cursor, Keyset, PageNumber
from framework.engine.http import Stats
from framework.engine.source import HttpSource
from framework.errors import ConfigError, ConnectorError
from framework.protocol import messages as p
from framework.protocol.catalog import load_state

SPEC = {
    "name": "fake", "kind": "source",
    "connectionSpecification": {"type": "object", "properties": {
        "api_url": {"type": "string"}, "token": {"type": "string", "airbyte_secret": True}}},
    "client": {"base_url": "{api_url}", "auth": {"type": "header", "header": "X-Token",
                                                 "config_field": "token"}},
    "streams": [{"name": "items", "path": "/items", "records_path": "data",
                 "paginator": {"type": "cursor", "options": {"cursor_path": "next"}},
                 "primary_key": ["id"], "schema": "items.json"}],
}
ITEMS_SCHEMA = {"type": "object", "properties": {
    "id": {"type": "integer"}, "price": {"type": ["null", "number"]},
    "when": {"type": ["null", "string"], "format": "date-time"},
    "lines": {"type": "array", "items": {"type": "object", "properties": {
        "qty": {"type": "integer"}, "at": {"type": "string", "format": "date-time"}}}}}}


class FakeClient:
    """Answers GETs from a list of bodies and remembers the params it was asked for."""

    def __init__(self, bodies: list[Any]) -> None:
        self.bodies = bodies
        self.asked: list[dict[str, Any]] = []
        self.stats = Stats()
        self.base_url = "http://127.0.0.1:1"

    def get(self, path: str, params: dict[str, Any], scope: str | None = None) -> Any:
        self.asked.append(dict(params))
        return self.bodies[min(len(self.asked), len(self.bodies)) - 1]

    def get_raw(self, path: str, params: dict[str, Any], scope: str | None = None) -> bytes:
        return orjson.dumps(self.get(path, params, scope))

    def close(self) -> None:
        pass


@pytest.fixture
def fake_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    (tmp_path / "items.json").write_text(json.dumps(ITEMS_SCHEMA))
    (tmp_path / "fake.json").write_text(json.dumps(SPEC))
    source = HttpSource(tmp_path / "fake.json")

    def run(bodies: list[Any]) -> tuple[list[dict[str, Any]], FakeClient]:
        client = FakeClient(bodies)
        monkeypatch.setattr(source, "client", lambda config, resets=None: client)
        config = {"api_url": "http://127.0.0.1:1", "token": "t", "page_size": 2}
        out = b"".join(source.read(config, source.configured_catalog(), {}))
        return [json.loads(line) for line in out.splitlines()], client

    return run


def test_cursor_pages_until_the_cursor_runs_out(fake_source) -> None:
    output, client = fake_source([{"data": [{"id": 1}, {"id": 2}], "next": "c1"},
                                  {"data": [{"id": 3}], "next": None}])
    assert [m["record"]["data"]["id"] for m in output if m["type"] == "RECORD"] == [1, 2, 3]
    assert client.asked == [{"limit": 2}, {"limit": 2, "after": "c1"}]


def test_a_repeated_request_is_a_loop_not_an_endless_read(fake_source) -> None:
    with pytest.raises(ConnectorError, match=r"pagination loop in stream 'items': the next "
                                             r"request repeats \{'limit': 2, 'after': 'same'\}"):
        fake_source([{"data": [{"id": 1}], "next": "same"}])


def test_a_body_without_the_records_list_is_a_clear_error(fake_source) -> None:
    with pytest.raises(ConnectorError, match=r"GET http://127\.0\.0\.1:1/items answered "
                                             r"without a list of records at 'data' \(got str\)"):
        fake_source([{"data": "oops"}])


def test_records_are_normalized_by_their_schema(fake_source) -> None:
    output, _ = fake_source([{"data": [{
        "id": "7", "price": "225.5000", "when": "Tue, 20 Nov 2012 08:00:00 -0500",
        "lines": [{"qty": "2", "at": "2024-05-14T09:34:00+07:00"}], "extra": "kept"}],
        "next": None}])
    data = next(m for m in output if m["type"] == "RECORD")["record"]["data"]
    assert data == {"id": 7, "price": 225.5, "when": "2012-11-20T13:00:00Z",
                    "lines": [{"qty": 2, "at": "2024-05-14T02:34:00Z"}], "extra": "kept"}


@pytest.mark.parametrize(("raw", "expected"), [
    ("2024-05-14T09:34:00+00:00", "2024-05-14T09:34:00Z"),
    ("2024-05-14T09:34:00Z", "2024-05-14T09:34:00Z"),
    ("2024-05-14T09:34:00.123456-04:00", "2024-05-14T13:34:00Z"),
    ("2024-05-14", "2024-05-14T00:00:00Z"),
    ("2024-05-14T09:34:00", "2024-05-14T09:34:00Z"),
    ("Thu, 20 Apr 2017 11:32:00 -0400", "2017-04-20T15:32:00Z"),
])
def test_iso_utc(raw: str, expected: str) -> None:
    assert iso_utc(raw) == expected


def test_unparseable_dates_and_numbers_are_kept_as_they_came() -> None:
    plan = compile_plan(ITEMS_SCHEMA)
    assert apply_plan({"id": "x", "when": "soon", "price": ""}, plan) == {
        "id": "x", "when": "soon", "price": None}


def test_cursor_formats() -> None:
    value = "2024-05-14T09:34:00Z"
    assert {name: fmt(value) for name, fmt in CURSOR_FORMATS.items()} == {
        "iso8601": "2024-05-14T09:34:00Z", "iso8601_offset": "2024-05-14T09:34:00+00:00",
        "rfc2822": "Tue, 14 May 2024 09:34:00 +0000", "unix": "1715679240",
        "date": "2024-05-14"}


def keyset(start: str | None = None) -> Keyset:
    return Keyset({}, 3, cursor_field="m", cursor_param="m:min", format_cursor=str,
                  primary_key=["id"], start=start)


def test_keyset_moves_its_bound_and_drops_what_it_produced_at_the_bound() -> None:
    pager = keyset()
    params = pager.first({})
    page = [{"id": 1, "m": "a"}, {"id": 2, "m": "b"}, {"id": 3, "m": "b"}]
    params = pager.next(params, None, page)
    assert params == {"limit": 3, "page": 1, "m:min": "b"}
    again = [{"id": 2, "m": "b"}, {"id": 3, "m": "b"}, {"id": 4, "m": "c"}]
    assert pager.fresh(again) == [{"id": 4, "m": "c"}]


def test_keyset_pages_within_one_cursor_value_and_checks_the_block_again() -> None:
    pager = keyset(start="b")
    params = pager.first({})
    block = [[{"id": i, "m": "b"} for i in ids] for ids in ((1, 2, 3), (4, 5, 6), (7,))]

    def page(records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], Any]:
        return pager.fresh(records), pager.next(params, None, records)

    got, params = page(block[0])
    assert params["page"] == 2 and len(got) == 3
    got, params = page(block[1])
    assert params["page"] == 3
    got, params = page(block[2])  # a short page ends the block: its offsets may have moved,
    assert got == block[2] and params["page"] == 1  # so the block is read once more
    got, params = page(block[0])
    assert got == [] and params["page"] == 2
    moved_in = [{"id": 4, "m": "b"}, {"id": 5, "m": "b"}, {"id": 0, "m": "b", "new": True}]
    got, params = page(moved_in)
    assert got == [moved_in[2]] and params["page"] == 3
    got, params = page([{"id": 6, "m": "b"}, {"id": 7, "m": "b"}])
    assert got == [] and params["page"] == 1  # that pass found a record: one more
    for records in (block[0], moved_in):
        got, params = page(records)
        assert got == []
    got, params = page([{"id": 6, "m": "b"}, {"id": 7, "m": "b"}])
    assert got == [] and params is None  # a pass with nothing new: done


def test_keyset_takes_a_second_change_in_the_same_second_for_a_new_version() -> None:
    pager = keyset()
    params = pager.first({})
    params = pager.next(params, None, pager.fresh(
        [{"id": 1, "m": "a"}, {"id": 2, "m": "b"}, {"id": 3, "m": "b", "v": 1}]))
    again = [{"id": 2, "m": "b"}, {"id": 3, "m": "b", "v": 2}, {"id": 4, "m": "c"}]
    assert pager.fresh(again) == again[1:]


def test_page_number_stops_at_the_reported_last_page() -> None:
    pager = PageNumber({"total_pages_path": "meta.total_pages"}, 2)
    params = pager.first({})
    full = [{"id": 1}, {"id": 2}]
    params = pager.next(params, {"meta": {"total_pages": 2}}, full)
    assert params == {"limit": 2, "page": 2}
    assert pager.next(params, {"meta": {"total_pages": 2}}, full) is None


def test_cursor_paginator_needs_records_to_continue() -> None:
    pager = Cursor({"cursor_path": "next"}, 2)
    assert pager.next({}, {"next": "x"}, []) is None


def test_state_files_in_every_accepted_form(tmp_path: Path) -> None:
    stream_state = p.state_message("customers", {"date_modified": "2024-01-01T00:00:00Z"})
    message = json.loads(p.dump(stream_state))
    forms = {
        "airbyte.json": json.dumps([message["state"]]),
        "one.json": json.dumps(message["state"]),
        "output.jsonl": (json.dumps({"type": "RECORD", "record": {}}) + "\n"
                         + json.dumps(message) + "\n"),
        "legacy.json": json.dumps({"customers": {"date_modified": "2024-01-01T00:00:00Z"}}),
        "global.json": json.dumps({"type": "GLOBAL", "global": {"stream_states": [
            {"stream_descriptor": {"name": "customers"},
             "stream_state": {"date_modified": "2024-01-01T00:00:00Z"}}]}}),
    }
    for name, text in forms.items():
        (tmp_path / name).write_text(text)
        assert load_state(tmp_path / name) == {
            "customers": {"date_modified": "2024-01-01T00:00:00Z"}}, name


def test_bad_state_files(tmp_path: Path) -> None:
    (tmp_path / "bad.jsonl").write_text('{"type": "STATE"}\nnot json\n')
    with pytest.raises(ConfigError, match="line 2 is not JSON"):
        load_state(tmp_path / "bad.jsonl")
    (tmp_path / "kind.json").write_text('{"type": "STREEM"}')
    with pytest.raises(ConfigError, match="unknown state message type 'STREEM'"):
        load_state(tmp_path / "kind.json")
    assert load_state(None) == {}
