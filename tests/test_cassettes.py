"""Recorded HTTP (pytest-recording): the source replays a BigCommerce exchange offline.

The cassettes under tests/cassettes/ were recorded from the sandbox; re-record them with
``pytest tests/test_cassettes.py --record-mode=rewrite``. The ``X-Auth-Token`` header is filtered
out before a cassette is written, so cassettes recorded from a real store hold no secret either.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from connectors.bigcommerce import connector
from connectors.bigcommerce.sandbox.data import store_hash_for

TOKEN = "cassette-token-5e2b9d"
CASSETTES = Path(__file__).parent / "cassettes" / "test_cassettes"


@pytest.fixture(scope="module")
def vcr_config() -> dict[str, Any]:
    # Host and port differ between recording (a sandbox on a free port) and replay;
    # query_shape (conftest.py) ignores the values of date parameters.
    return {"filter_headers": ["X-Auth-Token"], "match_on": ["method", "path", "query_shape"]}


def store_config(request: pytest.FixtureRequest, make_sandbox: Any) -> dict[str, Any]:
    # One request at a time, so that requests happen in the same order when replayed.
    if request.config.getoption("--record-mode") == "none":
        return {"store_hash": store_hash_for(5), "access_token": TOKEN,
                "api_url": "http://127.0.0.1:9", "page_size": 10, "concurrency": 1}
    sandbox = make_sandbox("--customers", "30", "--seed", "5", "--access-token", TOKEN)
    return {**sandbox.config(), "page_size": 10, "concurrency": 1}


def customers_catalog() -> Any:
    catalog = connector.configured_catalog()
    catalog.streams = [s for s in catalog.streams if s.stream.name == "customers"]
    return catalog


@pytest.mark.vcr
def test_customers_replay_from_a_cassette(request: pytest.FixtureRequest, make_sandbox) -> None:
    config = store_config(request, make_sandbox)
    lines = b"".join(connector.read(config, customers_catalog(), {})).splitlines()
    output = [json.loads(line) for line in lines]
    ids = [m["record"]["data"]["id"] for m in output if m["type"] == "RECORD"]
    assert sorted(ids) == list(range(1, 31))
    assert [m["type"] for m in output].count("STATE") >= 2


@pytest.mark.vcr
def test_check_replays_a_401(request: pytest.FixtureRequest, make_sandbox) -> None:
    config = {**store_config(request, make_sandbox), "access_token": "not-the-token"}
    status = connector.check(config)
    assert status.status == "FAILED"
    assert "create new API credentials" in status.message


def test_cassettes_hold_no_token() -> None:
    files = list(CASSETTES.glob("*.yaml"))
    assert len(files) == 2
    for path in files:
        text = path.read_text()
        assert TOKEN not in text and "not-the-token" not in text
        assert not re.search(r"^\s+X-Auth-Token:", text, re.MULTILINE | re.IGNORECASE)
