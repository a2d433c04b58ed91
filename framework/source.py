"""The engine that runs the streams an HTTP source declares in its spec file.

One path for data: HTTP page -> records (selected, normalized, tagged) -> RECORD lines -> a STATE
line once the page is out. The stream config says everything else: path, params, paginator,
where the records are, keys, cursor and schema.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from framework import protocol as p
from framework.connector import Source
from framework.errors import ConfigError, ConnectorError
from framework.formats import CURSOR_FORMATS, apply_plan, compile_plan, iso_utc
from framework.http import HttpClient
from framework.paginators import PAGINATORS, dig
from framework.spec import Stream

log = logging.getLogger("tajo.source")


class HttpSource(Source):
    """A source whose streams are declared in its spec file and run by this engine."""

    def client(self, config: dict[str, Any], resets: list[int] | None = None) -> HttpClient:
        """One pooled client for the store ``config`` names.

        Waits for quota are logged and, when ``resets`` is given, their end times (epoch ms)
        are appended to it so that the stream can report itself RATE_LIMITED.
        """
        spec = self.loaded.model.client
        assert spec is not None  # parse_spec guarantees a client for sources with streams
        base_url = spec.base_url.format(**{k: str(v).rstrip("/") for k, v in config.items()})
        headers = {**spec.headers, spec.auth.header: str(config[spec.auth.config_field])}

        def on_wait(seconds: float, reason: str) -> None:
            if seconds >= 1:
                log.info("waiting %.1fs: %s", seconds, reason)
            if resets is not None and ("quota" in reason or "429" in reason):
                resets.append(p.now_ms() + int(seconds * 1000))

        return HttpClient(base_url, headers, rate_limit=spec.rate_limit, errors=spec.errors,
                          on_wait=on_wait)

    def check(self, config: dict[str, Any]) -> p.AirbyteConnectionStatus:
        """One cheap request per OAuth scope the streams need (credentials and scopes)."""
        client = self.client(config)
        checked = set()
        try:
            for stream in self.loaded.model.streams:
                if stream.scope in checked:
                    continue
                checked.add(stream.scope)
                client.get(stream.path, stream.check_params or {}, scope=stream.scope)
        except ConnectorError as exc:
            return p.AirbyteConnectionStatus(status="FAILED", message=exc.message)
        finally:
            client.close()
        return p.AirbyteConnectionStatus(status="SUCCEEDED")

    def airbyte_stream(self, stream: Stream) -> p.AirbyteStream:
        """The catalog entry of one declared stream."""
        incremental = stream.incremental
        return p.AirbyteStream(
            name=stream.name,
            json_schema=self.loaded.schemas[stream.name],
            supported_sync_modes=["full_refresh", "incremental"] if incremental
            else ["full_refresh"],
            source_defined_cursor=True if incremental else None,
            default_cursor_field=[incremental.cursor_field] if incremental else None,
            source_defined_primary_key=[[k] for k in stream.primary_key],
            is_resumable=bool(incremental),
        )

    def discover(self, config: dict[str, Any] | None = None) -> p.AirbyteCatalog:
        """The declared streams (no request is needed: the schemas are static)."""
        return p.AirbyteCatalog(streams=[self.airbyte_stream(s) for s in self.loaded.model.streams])

    def configured_catalog(self) -> p.ConfiguredAirbyteCatalog:
        """Every stream, incremental where it can be, deduplicated by primary key."""
        streams = []
        for stream in self.discover().streams:
            incremental = "incremental" in stream.supported_sync_modes
            streams.append(p.ConfiguredAirbyteStream(
                stream=stream, sync_mode="incremental" if incremental else "full_refresh",
                destination_sync_mode="append_dedup",
                cursor_field=stream.default_cursor_field,
                primary_key=stream.source_defined_primary_key))
        return p.ConfiguredAirbyteCatalog(streams=streams)

    def read(self, config: dict[str, Any], catalog: p.ConfiguredAirbyteCatalog,
             state: dict[str, dict[str, Any]]) -> Iterator[bytes]:
        """Read every stream of ``catalog`` in order, resuming each from its state."""
        declared = self.loaded.streams
        for configured in catalog.streams:
            if configured.stream.name not in declared:
                raise ConfigError(f"catalog names stream {configured.stream.name!r}, which "
                                  f"{self.name} does not have; valid: {', '.join(declared)}")
        resets: list[int] = []
        client = self.client(config, resets)
        try:
            for configured in catalog.streams:
                stream = declared[configured.stream.name]
                incremental = configured.sync_mode == "incremental" and stream.incremental
                yield from self._read_stream(client, resets, config, stream, bool(incremental),
                                             state.get(stream.name) or {})
        finally:
            client.close()

    def _read_stream(self, client: HttpClient, resets: list[int], config: dict[str, Any],
                     stream: Stream, incremental: bool, state: dict[str, Any]) -> Iterator[bytes]:
        name = stream.name
        plan = compile_plan(self.loaded.schemas[name])
        added = {k: v.format(**config) for k, v in self.loaded.model.client.add_fields.items()}
        cursor = stream.incremental
        start = None
        if cursor:
            start = state.get(cursor.cursor_field) if incremental else None
            start = start or config.get("start_date")
            start = iso_utc(start) if start else None
        paginator_class = PAGINATORS[stream.paginator.type]
        page_size = int(config.get("page_size") or 250)
        if paginator_class.needs_cursor:
            assert cursor is not None  # parse_spec guarantees it
            paginator = paginator_class(
                stream.paginator.options, page_size, cursor_field=cursor.cursor_field,
                cursor_param=cursor.param, format_cursor=CURSOR_FORMATS[cursor.format],
                primary_key=stream.primary_key, start=start)
        else:
            paginator = paginator_class(stream.paginator.options, page_size)
        params: dict[str, Any] | None = paginator.first(dict(stream.params))
        if cursor and start:
            params[cursor.param] = CURSOR_FORMATS[cursor.format](start)
        checkpoint_each_page = incremental and paginator_class.sorted_by_cursor
        high = start
        since_state = total = 0
        yield p.dump(p.stream_status(name, "STARTED"))
        try:
            while params is not None:
                body = client.get(stream.path, params, scope=stream.scope)
                yield from self._rate_limited(resets, name)
                raw = dig(body, stream.records_path) if body is not None else []
                if not isinstance(raw, list):
                    where = stream.records_path or "the body"
                    raise ConnectorError(f"GET {stream.path} answered without a list of records "
                                         f"at {where!r} (got {type(raw).__name__})",
                                         "system_error", name)
                if total == 0 and since_state == 0:
                    yield p.dump(p.stream_status(name, "RUNNING"))
                    estimate = dig(body, stream.total_path) if stream.total_path else None
                    if isinstance(estimate, int):
                        yield p.dump(p.trace_message("ESTIMATE", name=name, type="STREAM",
                                                     row_estimate=estimate))
                for record in raw:
                    apply_plan(record, plan)
                    record.update(added)
                fresh = paginator.fresh(raw)
                emitted_at = p.now_ms()
                yield b"".join(p.record_line(name, r, emitted_at) for r in fresh)
                since_state += len(fresh)
                if cursor:
                    values = [v for r in fresh if (v := r.get(cursor.cursor_field))]
                    if values and (high is None or max(values) > high):
                        high = max(values)
                following = paginator.next(params, body, raw)
                if following == params:
                    raise ConnectorError(f"pagination loop in stream {name!r}: the next request "
                                         f"repeats {params}", "system_error", name)
                params = following
                if checkpoint_each_page and high and (params is not None and fresh):
                    yield self._state(name, cursor.cursor_field, high, since_state)
                    total += since_state
                    since_state = 0
            if incremental and high:
                yield self._state(name, cursor.cursor_field, high, since_state)
            total += since_state
        except ConnectorError as exc:
            exc.stream = exc.stream or name
            yield p.dump(p.stream_status(name, "INCOMPLETE"))
            raise
        log.info("stream %s: %d records, %d requests so far", name, total, client.stats.requests)
        yield p.dump(p.stream_status(name, "COMPLETE"))

    @staticmethod
    def _state(name: str, field: str, value: str, count: int) -> bytes:
        return p.dump(p.state_message(name, {field: value}, count))

    @staticmethod
    def _rate_limited(resets: list[int], name: str) -> Iterator[bytes]:
        """Report the quota waits of the last request as RUNNING with reason RATE_LIMITED."""
        while resets:
            reason = {"type": "RATE_LIMITED", "rate_limited": {"quota_reset": resets.pop(0)}}
            yield p.dump(p.stream_status(name, "RUNNING", [reason]))
