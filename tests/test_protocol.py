"""Every kind of message we emit validates against the official Airbyte protocol models."""

from __future__ import annotations

import json

import pytest
from airbyte_protocol import models as official

from connectors.bigcommerce import connector as bigcommerce
from framework.protocol import messages as p


def emitted_messages() -> dict[str, bytes]:
    """One line of every message kind and variant the framework writes."""
    catalog = bigcommerce.discover()
    configured = bigcommerce.configured_catalog()
    return {
        "record": p.record_line("customers", {"id": 1, "email": "a@example.com"}, p.now_ms()),
        "state_stream": p.dump(p.state_message(
            "customers", {"date_modified": "2024-01-01T00:00:00Z"}, 250)),
        "state_global": p.dump(p.AirbyteMessage(type="STATE", state=p.AirbyteStateMessage(
            type="GLOBAL", global_=p.AirbyteGlobalState(
                shared_state={"spool_offset": 7},
                stream_states=[p.AirbyteStreamState(
                    stream_descriptor=p.StreamDescriptor(name="carts"), stream_state={"x": 1})]),
            destinationStats=p.AirbyteStateStats(recordCount=3.0)))),
        "log": p.dump(p.log_message("INFO", "hello")),
        "spec": p.dump(p.AirbyteMessage(type="SPEC", spec=bigcommerce.spec())),
        "connection_status": p.dump(p.AirbyteMessage(
            type="CONNECTION_STATUS",
            connectionStatus=p.AirbyteConnectionStatus(status="FAILED", message="no"))),
        "catalog": p.dump(p.AirbyteMessage(type="CATALOG", catalog=catalog)),
        "trace_error": p.dump(p.error_trace("broken", "config_error", internal="x",
                                            stream="customers")),
        "trace_estimate": p.dump(p.trace_message("ESTIMATE", name="customers", type="STREAM",
                                                 row_estimate=10)),
        "trace_status": p.dump(p.stream_status("customers", "STARTED")),
        "trace_rate_limited": p.dump(p.stream_status(
            "customers", "RUNNING",
            [{"type": "RATE_LIMITED", "rate_limited": {"quota_reset": p.now_ms()}}])),
        "control": p.dump(p.AirbyteMessage(type="CONTROL", control=p.AirbyteControlMessage(
            type="CONNECTOR_CONFIG", emitted_at=float(p.now_ms()),
            connectorConfig={"config": {"access_token": "new"}}))),
        "configured_catalog": json.dumps(configured.model_dump(mode="json",
                                                               exclude_none=True)).encode(),
    }


@pytest.mark.parametrize("kind", sorted(emitted_messages()))
def test_message_validates_against_official_models(kind: str) -> None:
    line = emitted_messages()[kind]
    assert (line.count(b"\n") <= 1 and line.endswith(b"\n")) or kind == "configured_catalog"
    if kind == "configured_catalog":
        official.ConfiguredAirbyteCatalog.model_validate_json(line)
        return
    parsed = official.AirbyteMessage.model_validate_json(line)
    # The official model keeps our field names and values: nothing was lost or renamed.
    ours = json.loads(line)
    theirs = json.loads(parsed.model_dump_json(exclude_none=True, by_alias=True))
    assert theirs["type"] == ours["type"]
    field = p.PAYLOAD_FIELD[ours["type"]]
    assert set(ours[field]) <= set(theirs[field]) | {"global"}


def test_record_fast_path_equals_model_path() -> None:
    data = {"id": 1, "nested": {"a": [1, 2]}, "text": "ไทย"}
    fast = json.loads(p.record_line("s", data, 5))
    model = json.loads(p.dump(p.AirbyteMessage(
        type="RECORD", record=p.AirbyteRecordMessage(stream="s", data=data, emitted_at=5))))
    assert fast == model


@pytest.mark.parametrize(("line", "error"), [
    (b"not json", "line 3: not JSON"),
    (b"[1, 2]", "line 3: expected a JSON object, got list"),
    (b'{"type": "RECORDS"}', "line 3: unknown message type 'RECORDS'; valid types: RECORD, STATE"),
    (b'{"type": "RECORD"}', "line 3: RECORD message has no 'record' object"),
    (b'{"type": "RECORD", "record": {"stream": 1, "data": {}, "emitted_at": 1}}',
     "line 3: RECORD needs 'stream' (string) and 'data' (object)"),
    (b'{"type": "RECORD", "record": {"stream": "s", "data": {}, "emitted_at": "x"}}',
     "line 3: RECORD needs 'emitted_at' (integer ms)"),
    (b'{"type": "STATE", "state": {"type": "NOPE"}}',
     "line 3: invalid STATE message at 'state.type'"),
    (b'{"type": "LOG", "log": {"message": "x"}}', "line 3: invalid LOG message at 'log.level'"),
])
def test_parse_line_rejects_with_line_number(line: bytes, error: str) -> None:
    with pytest.raises(p.ProtocolError) as caught:
        p.parse_line(line, 3)
    assert str(caught.value).startswith(error)


def test_parse_line_accepts_every_emitted_message() -> None:
    for kind, line in emitted_messages().items():
        if kind != "configured_catalog":
            assert p.parse_line(line, 1)["type"] == json.loads(line)["type"]
