"""Reading one stream of one account, page by page, in slices that may run in parallel.

A *unit* is a stream (with the child streams extracted from its records) of one account (store).
A unit starts with one open slice. When its first page is full and the stream can be bounded
above (``incremental.max_param``), the rest of the time range is cut into slices that worker
threads read at once, each with its own keyset paginator, all under the account's one pacer.
A paged snapshot with a known page count fans out by page instead.

Workers only read and serialize; they report :class:`Page` events to the coordinating thread
(``framework.engine.source``), which writes them in order and moves the state forward only over
slices that are complete, so a STATE never covers a record that has not been written.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any

from framework.declarative.formats import CURSOR_FORMATS, apply_plan, format_utc, parse_datetime
from framework.declarative.paginators import PAGINATORS, Keyset, PageNumber, dig
from framework.declarative.spec import Settings, Stream
from framework.engine.http import HttpClient
from framework.engine.page_process import PageProcess, Parsed, body_and_records, prepare
from framework.errors import ConnectorError
from framework.protocol import messages as p
from framework.webhooks.spool import Spool, check_id, short

log = logging.getLogger("tajo.reader")

#: Pages parsed at once, across every worker. Parsing holds the GIL, so more would not be
#: faster; each parsed page is several times its JSON (250 orders with their lines: 1 MB of
#: JSON, 3.7 MB parsed) and eight workers parsing at once held eight. Two, so that one can
#: parse while the other waits on a child request (an order's extra lines).
PARSING = threading.BoundedSemaphore(2)

#: A child hook: (parent record, fetch) -> the child records it holds.
Hook = Callable[[dict[str, Any], Callable[..., Any]], list[dict[str, Any]]]

#: Fetches the records of spooled ids with a GraphQL query (``framework.engine.graphql``):
#: (unit, ids) -> (the records found, the record id of each spooled id).
ByIds = Callable[["Unit", list[str]], tuple[list[dict[str, Any]], dict[str, str]]]


@dataclass
class Slice:
    """A part of a unit's range: cursor ``lower``..``upper`` (inclusive), or one page."""

    lower: str | None = None
    upper: str | None = None
    at_lower: set[tuple[Any, ...]] = field(default_factory=set)
    page: int | None = None
    cursor: str | None = None  # highest cursor written so far
    #: A live unit's one slice: the spool offset read up to (it starts at the saved one).
    offset: int = 0
    done: bool = False


@dataclass
class Unit:
    """One stream (and its child streams) of one account."""

    stream: Stream
    children: list[Stream]
    emit: list[str]
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
    #: The spool's last offset when the unit was made: a live unit reads up to it, a polling
    #: unit's finished read covers every change spooled up to it.
    spool_mark: int | None = None
    #: Reads the spooled ids (``read_live``) rather than polling the list.
    live: bool = False
    #: Upper bound of the slices: the server's time when they were cut. Whatever changes
    #: while they are read moves past it and is read by the next run.
    horizon: str | None = None
    #: The process that parses this unit's pages (``framework.engine.page_process``), and the key
    #: of the unit's recipe there; ``None``: parsed in the reader thread.
    helper: PageProcess | None = None
    helper_key: int = 0
    #: The settings of the account's config (``framework.declarative.spec.ConfigNames``).
    settings: Settings = field(default_factory=Settings)
    #: The saved state of the unit's stream for its account (a GraphQL read finds the bulk
    #: operation it was waiting for there).
    resume: dict[str, Any] = field(default_factory=dict)

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
    #: The slice's next request (``None``: the slice is done).
    following: dict[str, Any] | None = None
    #: State fields of the unit's account to set with this page (``None`` values: to remove),
    #: e.g. the bulk operation a read waits for, so that a killed read finds it again.
    marks: dict[str, Any] | None = None


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
        low = lower if i == 0 else format_utc(bound)
        high = (None if i == count - 1 else
                format_utc(bounds[i + 1] - timedelta(seconds=1)))
        out.append((low, high))
    return out


def read_slice(unit: Unit, index: int, hooks: dict[str, Hook], probe: bool,
               stopped: Callable[[], bool]) -> Iterator[Page]:
    """Read one slice of a unit; a probe (the first slice) may hand its rest to slices."""
    stream, piece = unit.stream, unit.slices[index]
    cursor = stream.incremental
    paginator_class = PAGINATORS[stream.paginator.type]
    page_size = unit.settings.page_size
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
    # A stream without a path is a child, read with its parent (the spec checks it).
    assert stream.path is not None
    first = True
    while params is not None and not stopped():
        data = unit.client.get_raw(stream.path.format(**unit.config), params, scope=stream.scope)
        if unit.helper is not None:
            parsed = unit.helper.parse(unit.helper_key, data, stream.name)
            del data
            page = _page(unit, index, params, paginator, first, can_split, can_fan_out,
                         parsed.meta, parsed.skeletons, parsed.total, _lines_of(unit, parsed))
        else:
            with PARSING:
                page = _page_of(unit, index, data, params, paginator, first, hooks,
                                can_split, can_fan_out)
            del data
        yield page
        if page.split_at is not None or page.pages is not None:
            return
        params, first = page.following, False


def _page_of(unit: Unit, index: int, data: bytes, params: dict[str, Any], paginator: Any,
             first: bool, hooks: dict[str, Hook], can_split: bool, can_fan_out: bool) -> Page:
    """One answer of a slice's request, parsed, normalized and serialized in this thread."""
    stream = unit.stream
    body, raw = body_and_records(data, unit.client.base_url + (stream.path or ""),
                                 stream.records_path)
    total = dig(body, stream.total_path) if first and stream.total_path else None
    for record in raw:
        _prepare(unit, record)

    def serialize(fresh: list[dict[str, Any]]) -> Written:
        if unit.keep is not None:
            fresh = [r for r in fresh if unit.keep(r)]
        return (*_serialize(unit, fresh, hooks), fresh)

    return _page(unit, index, params, paginator, first, can_split, can_fan_out, body, raw,
                 total, serialize)


def _lines_of(unit: Unit, parsed: Parsed) -> Callable[[list[dict[str, Any]]], Written]:
    """How the helper's page is written: its lines for the fresh skeletons (the helpers take
    units of one stream, without children, that the catalog asked for; every record kept)."""
    return lambda fresh: (parsed.lines_of(fresh), {unit.stream.name: len(fresh)}, fresh)


#: A page's RECORD lines, the count of each stream's, and the records they are of.
Written = tuple[bytes, dict[str, int], list[dict[str, Any]]]


def _page(unit: Unit, index: int, params: dict[str, Any], paginator: Any, first: bool,
          can_split: bool, can_fan_out: bool, body: Any, raw: list[dict[str, Any]],
          total: Any, serialize: Callable[[list[dict[str, Any]]], Written]) -> Page:
    """What a page means for its slice: the fresh records' lines, how far the slice got, and
    its next request (or the split or fan-out it calls for). ``raw`` are the page's records, or
    their skeletons when the page was parsed by the helper process."""
    stream, piece, cursor = unit.stream, unit.slices[index], unit.stream.incremental
    lines, counts, fresh = serialize(paginator.fresh(raw))
    high = None
    if cursor:
        high = max((v for r in fresh if (v := r.get(cursor.cursor_field))), default=None)
    following = None if piece.page is not None else paginator.next(params, body, raw)
    if following == params:
        raise ConnectorError(f"pagination loop in stream {stream.name!r}: the next request "
                             f"repeats {params}", "system_error", stream.name)
    pages = dig(body, paginator.options.total_pages_path) if can_fan_out else None
    total = total if first else None
    # Only the serialized page leaves (the parsed records go with this frame).
    if following is not None and can_split:
        return Page(unit, index, lines, counts, high, True, total,
                    split_at=(paginator.lower, set(paginator.at_lower)))
    if following is not None and isinstance(pages, int) and pages > 1:
        return Page(unit, index, lines, counts, high, True, total, pages=pages)
    return Page(unit, index, lines, counts, high, following is None, total,
                following=following)


def read_live(unit: Unit, hooks: dict[str, Hook], stopped: Callable[[], bool],
              by_ids: ByIds | None = None) -> Iterator[Page]:
    """The resources webhooks named since the unit's spool offset, fetched by id.

    Every record carries ``webhook_scope``, the scope of the latest event about it (e.g.
    ``cart/abandoned``). A resource that is gone (404, or missing from a batch:
    converted, deleted, expired) is written as a tombstone ``{id, account fields, is_deleted:
    true}``: the fact matters (a converted cart leaves the abandoned-cart list). The spool is
    read up to its end as the unit starts; what arrives later is the next run's.

    An event that names no valid id (``live.id_type``), or an id the API refuses (400 or 422),
    is dead-lettered in the spool, logged and passed over: the stream goes on without it.
    """
    stream, live = unit.stream, unit.stream.live
    assert live is not None
    spool_path = unit.settings.spool_path
    if not spool_path:
        yield Page(unit, 0, b"", {name: 0 for name in unit.names}, None, True)
        return
    hook = hooks.get(live.hook) if live.hook else None
    if live.payload:
        yield from _payload_pages(unit, spool_path, hooks, hook, stopped)
        return
    one_by_one = live.path or (stream.path if live.param is None else None)
    params = dict(live.params if live.params is not None else unit.params)
    spool = Spool(spool_path)
    try:
        last = None
        pending = spool.ids(unit.account, live.resource, unit.slices[0].offset,
                            unit.spool_mark)
        while batch := list(islice(pending, live.batch)):
            if stopped():
                return
            reject = _rejecter(unit, spool, batch)
            usable = [row for row in batch if _valid(unit, row, reject)]
            yield _live_page(unit, usable, one_by_one, params, hooks, hook, reject, by_ids)
            last = batch[-1][0]
    finally:
        spool.close()
    yield Page(unit, 0, b"", {name: 0 for name in unit.names}, None, True, offset=last)


def _payload_pages(unit: Unit, spool_path: str, hooks: dict[str, Hook], hook: Hook | None,
                   stopped: Callable[[], bool]) -> Iterator[Page]:
    """``live.payload``: each spooled event of the resource is a record, its payload (events
    a page sent, which no API holds), with ``webhook_scope`` and the account's fields; the
    live hook, if any, may still call the API (e.g. to check what the page claimed)."""
    live = unit.stream.live
    assert live is not None
    spool = Spool(spool_path)
    after, last = unit.slices[0].offset, None  # the saved spool offset (as read_live's)
    upto = unit.spool_mark if unit.spool_mark is not None else spool.last_offset()
    fetch = _fetcher(unit, unit.stream.scope)
    try:
        while not stopped():
            batch = spool.payloads(unit.account, live.resource, after, upto, live.batch)
            if not batch:
                break
            records = []
            for _, _, scope, payload in batch:
                record = dict(payload)
                _prepare(unit, record)
                record["webhook_scope"] = scope
                if hook is not None:
                    hook(record, fetch)
                records.append(record)
            lines, counts = _serialize(unit, records, hooks)
            after = last = batch[-1][0]
            yield Page(unit, 0, lines, counts, None, False, offset=last)
    finally:
        spool.close()
    yield Page(unit, 0, b"", {name: 0 for name in unit.names}, None, True, offset=last)


#: Records an id the reader cannot use, with the reason, and passes over it.
Reject = Callable[[str, str], None]


def _rejecter(unit: Unit, spool: Spool, batch: list[tuple[int, str, str]]) -> Reject:
    """What dead-letters an id of ``batch`` (in the spool's ``dead_letters``, logged)."""
    live = unit.stream.live
    assert live is not None
    rows = {resource_id: (offset, scope) for offset, resource_id, scope in batch}

    def reject(resource_id: str, reason: str) -> None:
        offset, scope = rows[resource_id]
        try:
            new = spool.dead_letter(unit.account, live.resource, resource_id, scope, offset,
                                    reason)
        except sqlite3.Error as exc:  # a read-only spool: the log line is all there is
            log.error("cannot record a dead letter in the spool: %s", exc)
            new = True
        if new:
            log.warning("%s %s (spool offset %d, %s) is dead-lettered: %s; the %s stream goes"
                        " on without it (see the spool's dead_letters table)", live.resource,
                        short(resource_id), offset, scope, reason, unit.stream.name)
    return reject


def _valid(unit: Unit, row: tuple[int, str, str], reject: Reject) -> bool:
    live = unit.stream.live
    assert live is not None
    try:
        check_id(row[1], live.id_type)
    except ValueError as exc:
        reject(row[1], f"not a {live.resource} id: {exc}")
        return False
    return True


def _live_page(unit: Unit, batch: list[tuple[int, str, str]], one_by_one: str | None,
               params: dict[str, Any], hooks: dict[str, Hook], hook: Hook | None,
               reject: Reject, by_ids: ByIds | None = None) -> Page:
    """One batch of spooled ids, fetched, as a page of records (tombstones included)."""
    stream, live = unit.stream, unit.stream.live
    assert live is not None
    if not batch:  # every id of it was dead-lettered
        return Page(unit, 0, b"", {name: 0 for name in unit.names}, None, False)
    scopes = {resource_id: scope for _, resource_id, scope in batch}
    refused: dict[str, str] = {}
    if by_ids is not None:  # a GraphQL query; the records name the ids as the API does
        records, named = by_ids(unit, list(scopes))
        scopes = {named[resource_id]: scope for resource_id, scope in scopes.items()}
    elif one_by_one:
        found = [_fetch_one(unit, one_by_one, resource_id, params, refused)
                 for resource_id in scopes]
        records = [r for r in found if r is not None]
    else:
        records = _fetch_batch(unit, live.param or "", list(scopes), params, refused)
    for resource_id, reason in refused.items():
        reject(resource_id, reason)
    present = {str(r.get(live.key)) for r in records} if live.key else set(scopes)
    for record in records:
        _prepare(unit, record)
    if unit.keep is not None:  # another storefront's: not ours, but not gone either
        records = [r for r in records if unit.keep(r)]
    gone = sorted(scopes.keys() - present - refused.keys())
    # A tombstone carries the stream's cursor, set to when the absence was seen (the server's
    # time): a destination that deduplicates on the cursor keeps it over the record it ends.
    seen = ({live.cursor_field: format_utc(horizon(unit.client))}
            if live.cursor_field and gone else {})
    for resource_id in gone:
        assert live.key is not None  # without a key field every id counts as present
        log.info("%s %s is gone; written as deleted", live.resource, resource_id)
        records.append({live.key: _typed_id(resource_id), "is_deleted": True, **seen,
                        **unit.added})
    fetch = _fetcher(unit, stream.scope)
    for record in records:
        key = str(record.get(live.key)) if live.key else None
        # A record fetched by another id (inventory by product) takes the batch's scope.
        record["webhook_scope"] = scopes[key] if key in scopes else batch[-1][2]
        if hook is not None and not record.get("is_deleted"):
            hook(record, fetch)
    lines, counts = _serialize(unit, records, hooks)
    return Page(unit, 0, lines, counts, None, False, offset=batch[-1][0])


def _prepare(unit: Unit, record: dict[str, Any]) -> None:
    prepare(record, unit.plans[unit.stream.name], unit.stream.copy_fields, unit.added)


def _typed_id(resource_id: str) -> int | str:
    return int(resource_id) if resource_id.isascii() and resource_id.isdigit() else resource_id


#: Answers that mean "this id is not one the API takes" (e.g. 422 for a malformed
#: id list, 400 for a malformed path): the id is dead-lettered, the others are read.
REFUSED_ID = (400, 422)


def _fetch_one(unit: Unit, path: str, resource_id: str, params: dict[str, Any],
               refused: dict[str, str]) -> dict[str, Any] | None:
    """One record by id; None when it is gone (404) or refused (added to ``refused``)."""
    url = path.format(**{**unit.config, "id": resource_id})
    status, body = unit.client.send("GET", url, params=dict(params), scope=unit.stream.scope)
    if status == 404:
        return None
    if status in REFUSED_ID:
        refused[resource_id] = f"the API refused it (HTTP {status})"
        return None
    if status >= 400:
        raise unit.client.client_error("GET", unit.client.base_url + url, status, body)
    record = dig(body, unit.stream.records_path) if body is not None else None
    return record if isinstance(record, dict) else None


def _fetch_batch(unit: Unit, param: str, ids: list[str], params: dict[str, Any],
                 refused: dict[str, str]) -> list[dict[str, Any]]:
    """Records of a list of ids: the stream's path filtered by ``param``, page after page. A
    list the API refuses is halved until the ids it refuses stand alone (``refused``)."""
    stream = unit.stream
    assert stream.path is not None
    path = stream.path.format(**unit.config)
    limit = unit.settings.page_size
    records: list[dict[str, Any]] = []
    page = 1
    while True:
        query = {**params, param: ",".join(ids), "limit": limit, "page": page}
        status, body = unit.client.send("GET", path, params=query, scope=stream.scope)
        if status in REFUSED_ID and len(ids) == 1:
            refused[ids[0]] = f"the API refused it (HTTP {status})"
            return records
        if status in REFUSED_ID:
            half = len(ids) // 2
            return (_fetch_batch(unit, param, ids[:half], params, refused)
                    + _fetch_batch(unit, param, ids[half:], params, refused))
        if status >= 400:
            raise unit.client.client_error("GET", unit.client.base_url + path, status, body)
        found = dig(body, stream.records_path) if body is not None else None
        found = found if isinstance(found, list) else []
        records.extend(r for r in found if isinstance(r, dict))
        if len(found) < limit:
            return records
        page += 1


def _fetcher(unit: Unit, scope: str | None) -> Callable[..., Any]:
    """What a hook uses to call the API: a GET (None on 404), or another method."""
    def fetch(path: str, params: dict[str, Any] | None = None, *, method: str = "GET",
              body: Any = None, scope: str | None = scope) -> Any:
        if method == "GET":
            return unit.client.get(path, params, scope=scope, missing_ok=True)
        status, answer = unit.client.send(method, path, params=params, json=body, scope=scope)
        return answer if status < 400 else None
    return fetch


def _serialize(unit: Unit, records: list[dict[str, Any]], hooks: dict[str, Hook]
               ) -> tuple[bytes, dict[str, int]]:
    """RECORD lines of the unit's streams that the catalog asked for, children included."""
    emitted_at = p.now_ms()
    name = unit.stream.name
    out: list[bytes] = []
    counts = {n: 0 for n in unit.names}
    if name in unit.emit:
        out.append(p.record_lines(name, records, emitted_at))
        counts[name] = len(records)
    for child in unit.children:
        assert child.parent is not None
        hook, plan = hooks[child.parent.hook], unit.plans[child.name]

        fetch = _fetcher(unit, child.scope)
        cursor = unit.stream.incremental.cursor_field if unit.stream.incremental else None
        whole = child.parent.whole  # records as the hook made them (a model's)
        for record in records:
            for item in hook(record, fetch):
                apply_plan(item, plan)
                if not whole:
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
