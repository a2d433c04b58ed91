"""Bulk operations: a backfill read as one query the API runs on its side, whose result is a
file of JSON lines (``client.graphql.bulk`` and a stream's ``request.bulk`` in the spec).

The read starts the operation (``start`` mutation), records its id in the stream's state (a
STATE goes out before any waiting), polls it until it is done, then streams the result line by
line: a nested node's line names its parent's id (``parent_key``, e.g. ``__parentId``) and is
put back in the parent's list field (``children``, by ``__typename``). Only one record and its
children are held at a time, so the file's size does not matter. This relies on the file's
order: a parent's line comes before its children's, and they come before the next parent's (a
line whose parent is not the record being built fails the read, naming the line).

A read killed while it waits or downloads finds the operation's id in the state next time: it
polls it and goes on with it, or starts over when the operation failed, was canceled or
expired. When the result has been written, the state's cursor becomes the operation's start
(the read's upper bound: what changed while it ran is read by the next, incremental run,
which pages) and the id is removed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import orjson
import requests

from framework.declarative.graphql import BulkClient, graphql_string
from framework.declarative.paginators import dig
from framework.engine.graphql import Reader, cursor_filter
from framework.engine.reader import Page
from framework.errors import ConnectorError

log = logging.getLogger("tajo.bulk")

#: The state field holding the bulk operation a read waits for: ``{"id", "upper"}``.
BULK_KEY = "bulk_operation"


def wanted(reader: Reader) -> bool:
    """Whether this read is a bulk operation: one is under way (in the state), or this is a
    backfill (no saved cursor) of a stream the spec sends to bulk when large enough."""
    bulk, unit = reader.request.bulk, reader.unit
    if bulk is None:
        return False
    if isinstance(unit.resume.get(BULK_KEY), dict):
        return True
    incremental = unit.stream.incremental
    # The saved cursor: the stream's field, or a whole child's own (read alone in this unit).
    fields = {incremental.cursor_field if incremental else None,
              *(c.parent.cursor_field for c in unit.children if c.parent)}
    if unit.incremental and any(unit.resume.get(f) for f in fields if f):
        return False  # an incremental run pages from its cursor
    if bulk.count is None:
        return True
    variables = cursor_filter(unit, reader.request, unit.slices[0].lower, None)
    data = reader.api.run(reader.text(bulk.count.query), variables,
                          what=f"{bulk.count.query} (stream {unit.stream.name!r})")
    count = dig(data, bulk.count.path)
    if not isinstance(count, int):
        raise ConnectorError(f"{bulk.count.query}: no count at {bulk.count.path!r} (got "
                             f"{count!r})", "system_error", unit.stream.name)
    log.info("stream %s of %s: %d records (bulk from %d)", unit.stream.name,
             unit.account or "the account", count, bulk.min_records)
    return count >= bulk.min_records


def _client(reader: Reader) -> BulkClient:
    spec = reader.client_spec.bulk
    assert spec is not None  # the spec checks that a stream with bulk has it
    return spec


def poll(reader: Reader, operation_id: str) -> dict[str, Any] | None:
    """The operation as the API says it is now (``None``: it does not know it)."""
    spec = _client(reader)
    data = reader.api.run(reader.text(spec.poll), {"id": operation_id},
                          what=f"{spec.poll} for {operation_id}")
    found = dig(data, spec.poll_path)
    return found if isinstance(found, dict) and found.get("status") else None


def start(reader: Reader, lower: str | None, upper: str) -> str:
    """Start the stream's bulk query; returns the operation's id."""
    spec, request, unit = _client(reader), reader.request, reader.unit
    assert request.bulk is not None
    filtered = cursor_filter(unit, request, lower, upper)
    text = reader.text(request.bulk.query).replace(
        "{filter}", graphql_string(next(iter(filtered.values()), "")))
    data = reader.api.run(reader.text(spec.start), {"query": text}, idempotent=False,
                          what=f"{spec.start} (stream {unit.stream.name!r})")
    refused = dig(data, spec.user_errors) if spec.user_errors else None
    if refused:
        first = refused[0].get("message") if isinstance(refused[0], dict) else refused[0]
        raise ConnectorError(f"the API refused the bulk query of stream {unit.stream.name!r} "
                             f"({request.bulk.query}): {first}", "system_error",
                             unit.stream.name)
    operation = dig(data, spec.operation)
    if not isinstance(operation, dict) or not operation.get("id"):
        raise ConnectorError(f"{spec.start}: no operation id at {spec.operation!r}",
                             "system_error", unit.stream.name)
    log.info("stream %s of %s: bulk operation %s started", unit.stream.name,
             unit.account or "the account", operation["id"])
    return str(operation["id"])


def wait(reader: Reader, operation_id: str, stopped: Callable[[], bool]
         ) -> tuple[bool, str | None]:
    """Poll until the operation is done: (done, its result's URL, ``None`` when it found
    nothing). (False, None) when the read was stopped meanwhile.

    Raises:
        ConnectorError: it failed (the next run starts over) or took too long (the next run
            goes on waiting for it).
    """
    spec = _client(reader)
    deadline = time.monotonic() + spec.timeout_s
    while not stopped():
        operation = poll(reader, operation_id) or {"status": "(unknown to the API)"}
        status = operation.get("status")
        if status in spec.done:
            url = operation.get("url")
            return True, str(url) if url else None
        if status in spec.failed or status == "(unknown to the API)":
            code = operation.get("errorCode")
            raise ConnectorError(f"bulk operation {operation_id} of stream "
                                 f"{reader.unit.stream.name!r} ended {status}"
                                 f"{f' ({code})' if code else ''}; the next run starts over",
                                 "transient_error", reader.unit.stream.name)
        if time.monotonic() > deadline:
            raise ConnectorError(f"bulk operation {operation_id} is still {status} after "
                                 f"{spec.timeout_s:g}s; the next run goes on waiting for it",
                                 "transient_error", reader.unit.stream.name)
        time.sleep(spec.poll_every_s)
    return False, None


def reassemble(lines: Iterable[bytes], parent_key: str, children: dict[str, str],
               where: str = "bulk result") -> Iterator[dict[str, Any]]:
    """The records of a bulk result's lines, each with its nested nodes in its list fields.

    Holds one record (and its children) at a time: a record is yielded when the next
    top-level line starts.
    """
    current: dict[str, Any] | None = None
    by_id: dict[Any, dict[str, Any]] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise ConnectorError(f"{where}: line {number} is not JSON", "system_error") from None
        parent = item.pop(parent_key, None)
        if parent is None:
            if current is not None:
                yield current
            current = item
            for name in children.values():
                current.setdefault(name, [])
            by_id = {item.get("id"): item}
            continue
        owner = by_id.get(parent)
        if owner is None:
            raise ConnectorError(f"{where}: line {number} names parent {parent!r}, which is not"
                                 " the record being read (lines out of order)", "system_error")
        typename = item.pop("__typename", None)
        joins = children.get(str(typename))
        if joins is None:
            raise ConnectorError(f"{where}: line {number} is a nested {typename or 'node'} "
                                 f"without a list field to join; declare its __typename in "
                                 f"request.bulk.children (known: {', '.join(children) or 'none'})",
                                 "system_error")
        owner.setdefault(joins, []).append(item)
        if item.get("id") is not None:
            by_id[item["id"]] = item
    if current is not None:
        yield current


class ResultGone(ConnectorError):
    """A bulk result's URL answered an error (e.g. it expired): the operation starts over."""


def download(url: str, timeout: tuple[float, float]) -> Iterator[bytes]:
    """The lines at a result's URL, as they arrive (no credentials are sent: the URL is a
    signed one, often on another host).

    Raises:
        ConnectorError: the URL answered an error (e.g. an expired result).
    """
    with requests.get(url, stream=True, timeout=timeout) as response:
        if response.status_code >= 400:
            raise ResultGone(f"the bulk result answered HTTP {response.status_code}; the "
                             "next run starts the operation over", "transient_error")
        yield from response.iter_lines(chunk_size=1 << 16)


def read_bulk(reader: Reader, stopped: Callable[[], bool]) -> Iterator[Page]:
    """The stream read as a bulk operation, resumed from the state's when there is one.

    One at a time per account: an API may run one bulk operation per app and account (older
    versions do), so a second stream's waits for the first's to be read.
    """
    with reader.api.bulk_lock:
        yield from _read_bulk(reader, stopped)


def _read_bulk(reader: Reader, stopped: Callable[[], bool]) -> Iterator[Page]:
    unit, spec = reader.unit, _client(reader)
    assert reader.request.bulk is not None
    saved = unit.resume.get(BULK_KEY)
    operation = saved if isinstance(saved, dict) and saved.get("id") else None
    if operation is not None:
        found = poll(reader, str(operation["id"]))
        if found is None or found.get("status") in spec.failed:
            log.info("bulk operation %s is %s: starting over", operation["id"],
                     found.get("status") if found else "unknown to the API")
            operation = None
    if operation is None:
        upper = reader.upper()
        operation = {"id": start(reader, unit.slices[0].lower, upper), "upper": upper}
        yield reader.page([], None, False, marks={BULK_KEY: operation})
    done, url = wait(reader, str(operation["id"]), stopped)
    if not done:
        return
    batch: list[dict[str, Any]] = []
    if url is not None:
        try:
            lines = download(url, unit.client.timeout)
            for record in reassemble(lines, spec.parent_key, reader.request.bulk.children,
                                     f"bulk result of stream {unit.stream.name!r}"):
                batch.append(record)
                if len(batch) >= reader.page_size:
                    yield reader.page(batch, None, False)
                    batch = []
                    if stopped():
                        return
        except ResultGone as exc:
            yield reader.page([], None, False, marks={BULK_KEY: None})
            exc.stream = unit.stream.name
            raise
    yield reader.page(batch, str(operation["upper"]), True, marks={BULK_KEY: None})
