"""Reading one stream of one account, page by page, in slices that may run in parallel.

A *unit* is a stream (with the child streams extracted from its records) of one account (store).
A unit starts with one open slice. When its first page is full and the stream can be bounded
above (``incremental.max_param``), the rest of the time range is cut into slices that worker
threads read at once, each with its own keyset paginator, all under the account's one pacer.
A paged snapshot with a known page count fans out by page instead.

Workers only read and serialize; they report :class:`Page` events to the coordinating thread
(``framework.source``), which writes them in order and moves the state forward only over
slices that are complete, so a STATE never covers a record that has not been written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from framework import protocol as p
from framework.errors import ConnectorError
from framework.formats import CURSOR_FORMATS, apply_plan, parse_datetime
from framework.http import HttpClient
from framework.paginators import PAGINATORS, Keyset, PageNumber, dig
from framework.spec import Stream
from framework.spool import Spool

log = logging.getLogger("tajo.reader")

#: A child hook: (parent record, fetch) -> the child records it holds.
Hook = Callable[[dict[str, Any], Callable[..., Any]], list[dict[str, Any]]]


@dataclass
class Slice:
    """A part of a unit's range: cursor ``lower``..``upper`` (inclusive), or one page."""

    lower: str | None = None
    upper: str | None = None
    at_lower: set[tuple[Any, ...]] = field(default_factory=set)
    page: int | None = None
    cursor: str | None = None  # highest cursor written so far
    done: bool = False


@dataclass
class Unit:
    """One stream (and its child streams) of one account."""

    stream: Stream
    children: list[Stream]
    emit: set[str]
    account: str
    config: dict[str, Any]
    client: HttpClient
    incremental: bool
    start: str | None
    params: dict[str, Any]
    plans: dict[str, Any]
    added: dict[str, Any]
    keep: Callable[[dict[str, Any]], bool] | None = None
    slices: list[Slice] = field(default_factory=list)
    #: Upper bound of the slices: the server's time when they were cut. Whatever changes
    #: while they are read moves past it and is read by the next run.
    horizon: str | None = None

    @property
    def names(self) -> list[str]:
        return [self.stream.name, *(c.name for c in self.children)]

    def frontier(self) -> str | None:
        """The newest cursor written below which every record of the unit has been written.

        Slices are in range order; the frontier runs through the complete ones and stops in the
        first incomplete one. It never passes the newest record written (a state says where
        the data reached, not where the slicing did).
        """
        value = self.start
        for piece in self.slices:
            if piece.page is not None:
                continue
            value = max(filter(None, (value, piece.cursor)), default=None)
            if not piece.done:
                break
        return value


@dataclass
class Page:
    """What a worker read: serialized records and how far its slice got."""

    unit: Unit
    index: int
    lines: bytes
    counts: dict[str, int]
    cursor: str | None
    done: bool
    total: int | None = None
    split_at: tuple[str | None, set[tuple[Any, ...]]] | None = None
    pages: int | None = None
    offset: int | None = None


def _format(stream: Stream, value: str) -> str:
    assert stream.incremental is not None
    return CURSOR_FORMATS[stream.incremental.format](value)


def time_slices(lower: str, now: datetime, count: int) -> list[tuple[str, str | None]]:
    """``count`` equal time ranges from ``lower`` to ``now``; the last one ends at the unit's
    horizon (``None`` here)."""
    start = parse_datetime(lower)
    if now <= start + timedelta(seconds=count):
        return [(lower, None)]
    step = (now - start) / count
    bounds = [start + step * i for i in range(count)]
    out = []
    for i, bound in enumerate(bounds):
        low = lower if i == 0 else bound.strftime("%Y-%m-%dT%H:%M:%SZ")
        high = (None if i == count - 1 else
                (bounds[i + 1] - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ"))
        out.append((low, high))
    return out


def read_slice(unit: Unit, index: int, hooks: dict[str, Hook], probe: bool,
               stopped: Callable[[], bool]) -> Iterator[Page]:
    """Read one slice of a unit; a probe (the first slice) may hand its rest to slices."""
    stream, piece = unit.stream, unit.slices[index]
    cursor = stream.incremental
    paginator_class = PAGINATORS[stream.paginator.type]
    page_size = int(unit.config.get("page_size") or 250)
    if paginator_class.needs_cursor:
        assert cursor is not None
        paginator: Any = paginator_class(
            stream.paginator.options, page_size, cursor_field=cursor.cursor_field,
            cursor_param=cursor.param, format_cursor=CURSOR_FORMATS[cursor.format],
            primary_key=stream.primary_key, start=piece.lower)
        paginator.at_lower = set(piece.at_lower)
    else:
        paginator = paginator_class(stream.paginator.options, page_size)
    params: dict[str, Any] | None = paginator.first(dict(unit.params))
    assert params is not None
    if cursor and piece.lower:
        params[cursor.param] = _format(stream, piece.lower)
    upper = piece.upper or unit.horizon
    if cursor and cursor.max_param and upper:
        params[cursor.max_param] = _format(stream, upper)
    if piece.page is not None and isinstance(paginator, PageNumber):
        params[paginator.options.page_param] = piece.page
    can_split = (probe and isinstance(paginator, Keyset) and cursor is not None
                 and cursor.max_param is not None)
    can_fan_out = (probe and isinstance(paginator, PageNumber) and not unit.incremental
                   and paginator.options.total_pages_path is not None)
    first = True
    while params is not None and not stopped():
        body = unit.client.get(stream.path.format(**unit.config), params, scope=stream.scope)
        raw = dig(body, stream.records_path) if body is not None else []
        if isinstance(raw, dict):
            raw = [raw]  # a single-object resource (e.g. /v2/store)
        if not isinstance(raw, list):
            raise ConnectorError(f"GET {unit.client.base_url}{stream.path} answered without a "
                                 f"list of records at {stream.records_path or 'the body'!r} "
                                 f"(got {type(raw).__name__})", "system_error", stream.name)
        total = dig(body, stream.total_path) if first and stream.total_path else None
        plan = unit.plans[stream.name]
        for record in raw:
            apply_plan(record, plan)
            for name, source in stream.copy_fields.items():
                record[name] = dig(record, source)
            record.update(unit.added)
        fresh = paginator.fresh(raw)
        if unit.keep is not None:
            fresh = [r for r in fresh if unit.keep(r)]
        lines, counts = _serialize(unit, fresh, hooks)
        high = None
        if cursor:
            high = max((v for r in fresh if (v := r.get(cursor.cursor_field))), default=None)
        following = None if piece.page is not None else paginator.next(params, body, raw)
        if following == params:
            raise ConnectorError(f"pagination loop in stream {stream.name!r}: the next request "
                                 f"repeats {params}", "system_error", stream.name)
        if following is not None and can_split:
            yield Page(unit, index, lines, counts, high, True, total,
                       split_at=(paginator.lower, set(paginator.at_lower)))
            return
        pages = dig(body, paginator.options.total_pages_path) if can_fan_out else None
        if following is not None and isinstance(pages, int) and pages > 1:
            yield Page(unit, index, lines, counts, high, True, total, pages=pages)
            return
        yield Page(unit, index, lines, counts, high, following is None, total)
        params, first = following, False


def read_ids(unit: Unit, stopped: Callable[[], bool]) -> Iterator[Page]:
    """A stream of resources fetched one by one, for ids recorded in the spool.

    Each record carries ``webhook_scope``, the scope of the latest event about it (e.g.
    ``store/cart/abandoned``). A resource that is gone (404: converted, deleted, expired) is
    written as a tombstone, ``{id, store_hash, is_deleted: true}``: the fact matters (a cart
    that converted leaves the abandoned-cart list).
    """
    stream = unit.stream
    source, _, resource = (stream.ids_from or "").partition(":")
    if source != "spool":
        raise ConnectorError(f"stream {stream.name!r}: unknown id source {source!r}; valid: spool")
    spool_path = unit.config.get("spool_path")
    if not spool_path:
        yield Page(unit, 0, b"", {stream.name: 0}, None, True)
        return
    spool = Spool(spool_path)
    plan, records = unit.plans[stream.name], []
    offset = int(unit.slices[0].lower or 0)
    try:
        for event_offset, resource_id, scope in spool.ids(unit.account, resource, offset):
            offset = event_offset
            if stopped():
                return
            body = unit.client.get(stream.path.format(**{**unit.config, "id": resource_id}),
                                   dict(unit.params), scope=stream.scope, missing_ok=True)
            record = dig(body, stream.records_path) if body is not None else None
            if not isinstance(record, dict):  # converted, deleted or expired (404)
                log.info("%s %s is gone; written as deleted", resource, resource_id)
                record = {"id": resource_id, "is_deleted": True}
            apply_plan(record, plan)
            record["webhook_scope"] = scope
            record.update(unit.added)
            records.append(record)
            if len(records) >= 50:
                lines, counts = _serialize(unit, records, {})
                yield Page(unit, 0, lines, counts, None, False, offset=offset)
                records = []
        lines, counts = _serialize(unit, records, {})
        yield Page(unit, 0, lines, counts, None, True, offset=offset)
    finally:
        spool.close()


def _serialize(unit: Unit, records: list[dict[str, Any]], hooks: dict[str, Hook]
               ) -> tuple[bytes, dict[str, int]]:
    """RECORD lines of the unit's streams that the catalog asked for, children included."""
    emitted_at = p.now_ms()
    name = unit.stream.name
    out: list[bytes] = []
    counts = {n: 0 for n in unit.names}
    if name in unit.emit:
        out.extend(p.record_line(name, r, emitted_at) for r in records)
        counts[name] = len(records)
    for child in unit.children:
        assert child.parent is not None
        hook, plan = hooks[child.parent.hook], unit.plans[child.name]

        def fetch(path: str, params: dict[str, Any] | None = None, *,
                  scope: str | None = child.scope) -> Any:
            return unit.client.get(path, params, scope=scope, missing_ok=True)

        cursor = unit.stream.incremental.cursor_field if unit.stream.incremental else None
        for record in records:
            for item in hook(record, fetch):
                apply_plan(item, plan)
                item.update(unit.added)
                if cursor and cursor not in item:  # a child changes when its parent does
                    item[cursor] = record.get(cursor)
                out.append(p.record_line(child.name, item, emitted_at))
                counts[child.name] += 1
    return b"".join(out), counts


def horizon(client: HttpClient) -> datetime:
    """The server's time as its last answer gave it (the local clock if it sent none)."""
    if client.server_time is not None:
        return datetime.fromtimestamp(int(client.server_time), UTC)
    return datetime.now(UTC).replace(microsecond=0)
