"""Airbyte protocol 0.18 messages as pydantic v2 models, and their one-line JSON form.

Field names are the protocol's own (``connectionSpecification``, ``emitted_at``,
``sourceStats``...), so a message we write is a message any Airbyte tool reads. The hot path
(records) does not build a model per record: :func:`record_line` writes the same JSON directly,
and the tests check both forms against the official models.
"""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from framework.errors import REDACT


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", use_enum_values=True)


class StreamDescriptor(_Model):
    """Names a stream (and its namespace)."""

    name: str
    namespace: str | None = None


class AirbyteRecordMessage(_Model):
    """One record of one stream."""

    stream: str
    data: dict[str, Any]
    emitted_at: int
    namespace: str | None = None
    meta: dict[str, Any] | None = None


class StateType(StrEnum):
    STREAM = "STREAM"
    GLOBAL = "GLOBAL"
    LEGACY = "LEGACY"


class AirbyteStreamState(_Model):
    """The state of one stream: an opaque blob the stream reads back next run."""

    stream_descriptor: StreamDescriptor
    stream_state: dict[str, Any] | None = None


class AirbyteGlobalState(_Model):
    """State shared by all streams plus per-stream states."""

    shared_state: dict[str, Any] | None = None
    stream_states: list[AirbyteStreamState]


class AirbyteStateStats(_Model):
    """Record counts since the previous state message of the same stream."""

    recordCount: float | None = None
    rejectedRecordCount: float | None = None


class AirbyteStateMessage(_Model):
    """A checkpoint: everything before it is committed."""

    type: StateType | None = None
    stream: AirbyteStreamState | None = None
    global_: AirbyteGlobalState | None = Field(default=None, alias="global")
    data: dict[str, Any] | None = None
    sourceStats: AirbyteStateStats | None = None
    destinationStats: AirbyteStateStats | None = None

    model_config = ConfigDict(extra="allow", use_enum_values=True, populate_by_name=True)


class LogLevel(StrEnum):
    FATAL = "FATAL"
    ERROR = "ERROR"
    WARN = "WARN"
    INFO = "INFO"
    DEBUG = "DEBUG"
    TRACE = "TRACE"


class AirbyteLogMessage(_Model):
    """A log line for the platform's log view."""

    level: LogLevel
    message: str
    stack_trace: str | None = None


class FailureType(StrEnum):
    system_error = "system_error"
    config_error = "config_error"
    transient_error = "transient_error"


class AirbyteErrorTraceMessage(_Model):
    """Why a run failed, for people (``message``) and for engineers (``internal_message``)."""

    message: str
    internal_message: str | None = None
    stack_trace: str | None = None
    failure_type: FailureType | None = None
    stream_descriptor: StreamDescriptor | None = None


class AirbyteEstimateTraceMessage(_Model):
    """How many rows a stream is expected to produce."""

    name: str
    type: Literal["STREAM", "SYNC"]
    namespace: str | None = None
    row_estimate: int | None = None
    byte_estimate: int | None = None


class StreamStatus(StrEnum):
    STARTED = "STARTED"
    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    INCOMPLETE = "INCOMPLETE"


class AirbyteStreamStatusTraceMessage(_Model):
    """A stream's lifecycle; ``reasons`` says why it is waiting (e.g. RATE_LIMITED)."""

    stream_descriptor: StreamDescriptor
    status: StreamStatus
    reasons: list[dict[str, Any]] | None = None


TraceType = Literal["ERROR", "ESTIMATE", "STREAM_STATUS", "ANALYTICS"]


class AirbyteTraceMessage(_Model):
    """ERROR, ESTIMATE, STREAM_STATUS or ANALYTICS."""

    type: TraceType
    emitted_at: float
    error: AirbyteErrorTraceMessage | None = None
    estimate: AirbyteEstimateTraceMessage | None = None
    stream_status: AirbyteStreamStatusTraceMessage | None = None
    analytics: dict[str, Any] | None = None


class AirbyteControlMessage(_Model):
    """Asks the platform to persist a changed connector config."""

    type: Literal["CONNECTOR_CONFIG"]
    emitted_at: float
    connectorConfig: dict[str, Any]


class AirbyteConnectionStatus(_Model):
    """The answer to ``check``."""

    status: Literal["SUCCEEDED", "FAILED"]
    message: str | None = None


class ConnectorSpecification(_Model):
    """The answer to ``spec``: the JSON Schema of the connector's config."""

    connectionSpecification: dict[str, Any]
    documentationUrl: str | None = None
    changelogUrl: str | None = None
    supportsIncremental: bool | None = None
    supported_destination_sync_modes: list[str] | None = None
    protocol_version: str | None = None


class AirbyteStream(_Model):
    """A stream offered by a source."""

    name: str
    json_schema: dict[str, Any]
    supported_sync_modes: list[Literal["full_refresh", "incremental"]]
    source_defined_cursor: bool | None = None
    default_cursor_field: list[str] | None = None
    source_defined_primary_key: list[list[str]] | None = None
    namespace: str | None = None
    is_resumable: bool | None = None


class AirbyteCatalog(_Model):
    """The answer to ``discover``."""

    streams: list[AirbyteStream]


class ConfiguredAirbyteStream(_Model):
    """A stream as the user chose to sync it."""

    stream: AirbyteStream
    sync_mode: Literal["full_refresh", "incremental"]
    destination_sync_mode: Literal["append", "overwrite", "append_dedup", "update", "soft_delete"]
    cursor_field: list[str] | None = None
    primary_key: list[list[str]] | None = None
    generation_id: int | None = None
    minimum_generation_id: int | None = None
    sync_id: int | None = None


class ConfiguredAirbyteCatalog(_Model):
    """What ``read`` and ``write`` are asked to move."""

    streams: list[ConfiguredAirbyteStream]


MessageType = Literal[
    "RECORD", "STATE", "LOG", "SPEC", "CONNECTION_STATUS", "CATALOG", "TRACE", "CONTROL"
]


class AirbyteMessage(_Model):
    """The envelope: exactly one payload field, named by ``type``."""

    type: MessageType
    record: AirbyteRecordMessage | None = None
    state: AirbyteStateMessage | None = None
    log: AirbyteLogMessage | None = None
    spec: ConnectorSpecification | None = None
    connectionStatus: AirbyteConnectionStatus | None = None
    catalog: AirbyteCatalog | None = None
    trace: AirbyteTraceMessage | None = None
    control: AirbyteControlMessage | None = None


PAYLOAD_FIELD: dict[str, str] = {
    "RECORD": "record",
    "STATE": "state",
    "LOG": "log",
    "SPEC": "spec",
    "CONNECTION_STATUS": "connectionStatus",
    "CATALOG": "catalog",
    "TRACE": "trace",
    "CONTROL": "control",
}


def now_ms() -> int:
    """Milliseconds since the epoch, the protocol's ``emitted_at`` unit."""
    return time.time_ns() // 1_000_000


def dump(message: AirbyteMessage) -> bytes:
    """One message as one JSON line (with its newline), unset fields left out."""
    return orjson.dumps(message.model_dump(mode="json", exclude_none=True, by_alias=True)) + b"\n"


def record_line(stream: str, data: dict[str, Any], emitted_at: int) -> bytes:
    """The RECORD message for ``data``, written without building a model (hot path)."""
    return b"".join((b'{"type":"RECORD","record":{"stream":', orjson.dumps(stream),
                     b',"data":', orjson.dumps(data), b',"emitted_at":', b"%d" % emitted_at,
                     b"}}\n"))


def record_lines(stream: str, records: list[dict[str, Any]], emitted_at: int) -> bytes:
    """The RECORD messages of a page of one stream, as :func:`record_line` writes them, with
    the parts common to every line made once."""
    if not records:
        return b""
    head, tail = record_envelope(stream, emitted_at)
    return head + (tail + head).join([orjson.dumps(r) for r in records]) + tail


def record_envelope(stream: str, emitted_at: int) -> tuple[bytes, bytes]:
    """What comes before and after a record's JSON in its RECORD line."""
    return (b'{"type":"RECORD","record":{"stream":' + orjson.dumps(stream) + b',"data":',
            b',"emitted_at":%d}}\n' % emitted_at)


def state_message(stream: str, stream_state: dict[str, Any] | None,
                  record_count: int | None = None) -> AirbyteMessage:
    """A per-stream (type STREAM) state message, with the record count since the last one."""
    stats = AirbyteStateStats(recordCount=float(record_count)) if record_count is not None else None
    return AirbyteMessage(type="STATE", state=AirbyteStateMessage(
        type=StateType.STREAM,
        stream=AirbyteStreamState(stream_descriptor=StreamDescriptor(name=stream),
                                  stream_state=stream_state),
        sourceStats=stats,
    ))


def log_message(level: str, text: str) -> AirbyteMessage:
    """A LOG message (any known secret redacted)."""
    return AirbyteMessage(type="LOG", log=AirbyteLogMessage(level=LogLevel(level),
                                                            message=REDACT(text)))


def trace_message(kind: TraceType, **payload: Any) -> AirbyteMessage:
    """A TRACE message of ``kind`` (ERROR, ESTIMATE, STREAM_STATUS) with its payload."""
    return AirbyteMessage(type="TRACE", trace=AirbyteTraceMessage.model_validate(
        {"type": kind, "emitted_at": float(now_ms()), kind.lower(): payload}))


def stream_status(stream: str, status: str, reasons: list[dict[str, Any]] | None = None
                  ) -> AirbyteMessage:
    """A STREAM_STATUS trace message."""
    return trace_message("STREAM_STATUS", stream_descriptor={"name": stream}, status=status,
                         reasons=reasons)


def error_trace(message: str, failure_type: str, internal: str | None = None,
                stream: str | None = None, stack_trace: str | None = None) -> AirbyteMessage:
    """An ERROR trace message: ``message`` is for people; any known secret is redacted from
    it, from ``internal`` and from ``stack_trace``."""
    return trace_message("ERROR", message=REDACT(message), failure_type=failure_type,
                         internal_message=REDACT(internal) if internal else None,
                         stream_descriptor={"name": stream} if stream else None,
                         stack_trace=REDACT(stack_trace) if stack_trace else None)


class ProtocolError(ValueError):
    """A line on stdin that is not a valid Airbyte message."""


def parse_line(line: bytes, line_number: int) -> dict[str, Any]:
    """Parse one stdin line strictly; returns the message as a plain dict.

    RECORD messages (the bulk of any stream) get a cheap structural check instead of a
    model; every other type is validated against its model. Errors name the line.
    """
    try:
        message = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"line {line_number}: not JSON ({exc.args[0].split(':')[0]}); "
                            "each line must be one Airbyte message") from None
    if not isinstance(message, dict):
        raise ProtocolError(f"line {line_number}: expected a JSON object, "
                            f"got {type(message).__name__}")
    kind = message.get("type")
    field = PAYLOAD_FIELD.get(kind) if isinstance(kind, str) else None
    if field is None:
        raise ProtocolError(f"line {line_number}: unknown message type {kind!r}; valid types: "
                            + ", ".join(PAYLOAD_FIELD))
    payload = message.get(field)
    if not isinstance(payload, dict):
        raise ProtocolError(f"line {line_number}: {kind} message has no '{field}' object")
    if kind == "RECORD":
        if not isinstance(payload.get("stream"), str) or not isinstance(payload.get("data"), dict):
            raise ProtocolError(f"line {line_number}: RECORD needs 'stream' (string) "
                                "and 'data' (object)")
        if not isinstance(payload.get("emitted_at"), int):
            raise ProtocolError(f"line {line_number}: RECORD needs 'emitted_at' (integer ms)")
        return message
    try:
        AirbyteMessage.model_validate(message)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ProtocolError(f"line {line_number}: invalid {kind} message at '{where}': "
                            f"{first['msg']}") from None
    return message
