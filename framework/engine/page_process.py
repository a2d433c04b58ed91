"""Pages parsed in helper processes, so that a read uses two cores instead of one.

A read is CPU-bound under one GIL: for each page it parses the JSON, normalizes every record
(dates, numbers) and writes the RECORD lines, about 40% of its CPU, while the HTTP threads and
the writer wait for the same lock. For a stream without child streams that work depends on the
page's bytes alone, so helper processes do it: a reader thread hands the body it fetched to a
free helper and gets back the page's lines, with a *skeleton* of each record (its cursor, its
primary key and a digest of its line) for the paginator, which stays in the thread.

The helpers are forked, not spawned: they start in milliseconds with the streams' compiled
plans and nothing to import, before any reader thread exists (a fork copies the calling thread
only; no lock can be caught held). A process that already runs threads (the webhook forwarder)
parses in its reader threads, as does a process allowed one CPU, a system other than Linux,
or any read with ``TAJO_PAGE_PROCESS=0``.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import signal
import sys
import threading
from dataclasses import dataclass
from itertools import accumulate
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

import orjson

from framework.declarative.formats import Plan
from framework.declarative.paginators import dig
from framework.errors import ConnectorError
from framework.protocol.messages import now_ms, record_envelope

#: The skeleton's field holding a digest of the record's line: two versions of a record with
#: one cursor value must not look alike to the paginator (see ``Keyset``).
LINE_DIGEST = "_line"


def body_and_records(data: bytes, where: str, records_path: str | None) -> tuple[Any, list[Any]]:
    """A page's parsed body and its list of records.

    Raises:
        ConnectorError: the body is not JSON, or holds no list of records where the stream
            says they are.
    """
    try:
        body = orjson.loads(data) if data else None
    except orjson.JSONDecodeError as exc:
        raise ConnectorError(f"GET {where} answered with a body that is not valid JSON "
                             f"({exc}); the run can be retried", "transient_error") from None
    raw = dig(body, records_path) if body is not None else []
    if isinstance(raw, dict):
        raw = [raw]  # a single-object resource (e.g. /v2/store)
    if not isinstance(raw, list):
        got = (type(raw).__name__ if isinstance(body, dict)
               else f"{type(body).__name__} for the whole body")
        raise ConnectorError(f"GET {where} answered without a list of records at "
                             f"{records_path or 'the body'!r} (got {got})", "system_error")
    return body, raw


@dataclass(frozen=True)
class Recipe:
    """What a reader thread would do with a page of one unit (see ``framework.engine.reader``)."""

    stream: str
    where: str  # the request, for error messages
    records_path: str | None
    total_path: str | None
    plan: Plan
    copy_fields: dict[str, str]
    added: dict[str, Any]
    keys: tuple[str, ...]  # what the paginator reads of a record: cursor and primary key


@dataclass
class Parsed:
    """A page as the helper returns it."""

    lines: bytes
    ends: list[int]  # where each record's line ends in ``lines``
    skeletons: list[dict[str, Any]]
    meta: Any  # the body without its records: what paginators read (next cursor, pages)
    total: Any

    def lines_of(self, chosen: list[dict[str, Any]]) -> bytes:
        """The lines of the chosen skeletons (the paginator's ``fresh`` ones)."""
        if len(chosen) == len(self.skeletons):
            return self.lines
        index = {id(s): i for i, s in enumerate(self.skeletons)}
        starts = [0, *self.ends[:-1]]
        return b"".join(self.lines[starts[i]:self.ends[i]]
                        for i in (index[id(s)] for s in chosen))


def prepare(record: dict[str, Any], plan: Plan, copy_fields: dict[str, str],
            added: dict[str, Any]) -> None:
    """Normalize a record by its schema, copy the declared fields, tag it (the account's fields)."""
    plan(record)
    for name, source in copy_fields.items():
        record[name] = dig(record, source)
    record.update(added)


def parse(recipe: Recipe, data: bytes) -> Parsed:
    """One page: parsed, each record normalized and tagged, and serialized."""
    body, raw = body_and_records(data, recipe.where, recipe.records_path)
    for record in raw:
        prepare(record, recipe.plan, recipe.copy_fields, recipe.added)
    dumped = [orjson.dumps(r) for r in raw]
    head, tail = record_envelope(recipe.stream, now_ms())
    lines = head + (tail + head).join(dumped) + tail if dumped else b""
    frame = len(head) + len(tail)
    skeletons = [{**{k: r.get(k) for k in recipe.keys}, LINE_DIGEST: hash(d)}
                 for r, d in zip(raw, dumped, strict=True)]
    return Parsed(lines, list(accumulate(len(d) + frame for d in dumped)), skeletons,
                  _without(body, recipe.records_path),
                  dig(body, recipe.total_path) if recipe.total_path else None)


def _without(body: Any, path: str | None) -> Any:
    """``body`` with the records at ``path`` left out (``None`` when the body is the records)."""
    if not path or not isinstance(body, dict):
        return None
    head, _, rest = path.partition(".")
    return {**body, head: _without(body.get(head), rest) if rest else None}


def _serve(conn: Any, recipes: dict[int, Recipe], others: list[Any]) -> None:
    """The helper's loop: a page in, its :class:`Parsed` (or its error's message) out."""
    # Hold nothing of the reader's: a pipeline's stdin and stdout (or the downstream reader
    # would wait for this process to see the end), the other helpers' pipes (or they would
    # not see the reader go). Ctrl-C is the reader's to handle; this process ends with it.
    quiet = os.open(os.devnull, os.O_RDWR)
    os.dup2(quiet, 0)
    os.dup2(quiet, 1)
    os.close(quiet)
    for other in others:
        other.close()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):  # the reader is gone
            return
        if request is None:
            return
        key, data = request
        try:
            result: Any = parse(recipes[key], data)
        except ConnectorError as exc:
            result = (exc.message, exc.failure_type)
        except Exception as exc:  # a bug: say so in the reader rather than vanish
            result = (f"parsing a page of {recipes[key].stream} failed: "
                      f"{type(exc).__name__}: {exc}", "system_error")
        conn.send(result)


class PageProcess:
    """Helper processes and their pipes; a reader thread takes a free one for each page."""

    def __init__(self, recipes: dict[int, Recipe], count: int) -> None:
        context = multiprocessing.get_context("fork")
        sys.stdout.flush()  # a child must not write out what the parent had buffered
        sys.stderr.flush()
        self._free: queue.SimpleQueue[tuple[Any, Any]] = queue.SimpleQueue()
        self._all: list[tuple[Connection, BaseProcess]] = []
        for _ in range(count):
            conn, child = context.Pipe()
            others = [c for c, _ in self._all] + [conn]
            process = context.Process(target=_serve, args=(child, recipes, others),
                                      daemon=True, name="tajo-pages")
            process.start()
            child.close()
            self._free.put((conn, process))
            self._all.append((conn, process))

    def parse(self, key: int, data: bytes, stream: str) -> Parsed:
        """A helper's parse of one page (the reader thread waits, without the GIL).

        Raises:
            ConnectorError: the page's own error, or the helper is gone.
        """
        conn, process = self._free.get()
        try:
            conn.send((key, data))
            result = conn.recv()
        except (EOFError, OSError):
            # Its pipe closes as it dies, a moment before its exit code can be read.
            process.join(timeout=2)
            raise ConnectorError(
                f"a process parsing pages ended (exit code {process.exitcode}); run again, "
                "or set TAJO_PAGE_PROCESS=0 to parse in the reader threads",
                "system_error", stream) from None
        finally:
            self._free.put((conn, process))
        if isinstance(result, tuple):
            raise ConnectorError(result[0], result[1], stream)
        return result

    def close(self) -> None:
        """Stop the helpers (they also stop by themselves when the reader's pipes close)."""
        for conn, _ in self._all:
            with contextlib.suppress(OSError):
                conn.send(None)
            conn.close()
        for _, process in self._all:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join()


def start(recipes: dict[int, Recipe]) -> PageProcess | None:
    """Helpers for these units' pages, or ``None`` where they cannot or should not run.

    ``TAJO_PAGE_PROCESS`` sets how many; by default two when this process may use more than
    one CPU (two, not one: a reader thread waits for its helper's answer, and with a single
    helper the threads queue for it), none on one CPU (the helpers would only add copying)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    count = int(os.environ.get("TAJO_PAGE_PROCESS") or (2 if (cpus or 1) > 1 else 0))
    # Linux only: macOS has fork, but system libraries a process may have loaded (the
    # Objective-C runtime) can abort a forked child; that path is not tested here.
    if (not recipes or count <= 0 or not sys.platform.startswith("linux")
            or threading.active_count() > 1):
        return None
    return PageProcess(recipes, count)
