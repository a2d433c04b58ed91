"""The destination base: the write loop every destination shares.

A destination reads RECORD and STATE messages. The protocol's rule for it: a STATE is echoed only
once every record before it is committed, because the source resumes from the last STATE it sees
echoed. singer-sdk splits this between its ``Target`` (which drains every sink, ``drain_all``,
before it emits a state) and its ``Sink`` (which batches records, ``is_full``, and writes a batch,
``process_batch``). ``Writer`` is that pair for one write run:

- it holds each STATE, with the count of the records of its stream that came before it;
- it flushes when a batch is full, when ``flush_every_s`` has passed since the last flush, or at
  the end of the input (a subclass may put off a due flush, ``may_wait``, when what it needs to
  send the records has not arrived yet);
- after a flush it echoes the held states in order, each with the rejections counted for its
  stream since (most rejections happen while a batch is sent, after its records' state arrived);
- a stream whose records a flush kept back (``streams_waiting``) keeps its states held.

A subclass says how a record is kept (``record``) and how everything kept is committed
(``flush``). Records that do not match their stream's schema are rejected before ``record`` when
``check_schemas`` is set.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from framework.protocol import messages as p
from framework.protocol.records import checks_of


def state_stream(message: dict[str, Any]) -> str | None:
    """The stream a STATE message is of (None for a legacy or global state)."""
    stream = (message.get("state") or {}).get("stream") or {}
    name: str | None = (stream.get("stream_descriptor") or {}).get("name")
    return name


class Writer:
    """One write run: the STATE rule, batching and flushing; subclasses keep and send."""

    #: Records waiting that make a batch full (a due flush, whatever the time).
    batch_size = 1000
    #: Seconds between flushes at a STATE; 0 flushes at every STATE.
    flush_every_s = 0.0
    #: Reject the records that do not match their stream's JSON Schema before ``record``.
    check_schemas = False

    def __init__(self, catalog: p.ConfiguredAirbyteCatalog) -> None:
        self.catalog_streams = {s.stream.name for s in catalog.streams}
        self.checks = checks_of(catalog) if self.check_schemas else {}
        self.written: dict[str, int] = {}  # records per stream since its last held state
        self.rejected: dict[str, int] = {}  # rejections per stream since its last echoed state
        self.held_states: list[dict[str, Any]] = []
        self.flushed_at = time.monotonic()

    # --- what a destination says ----------------------------------------------------------

    def record(self, stream: str, data: dict[str, Any]) -> bool:
        """Keep a record until the next flush (or write it in the open transaction); False
        when it was rejected instead (then it is not counted as written)."""
        raise NotImplementedError

    def flush(self) -> None:
        """Commit every record kept so far; raise when that cannot be done."""
        raise NotImplementedError

    def pending(self) -> int:
        """How many records wait for a flush (``batch_size`` of them make it due)."""
        return 0

    def full(self) -> bool:
        """Whether to try a flush before the next record (memory stays flat between states)."""
        return self.pending() >= self.batch_size

    def may_wait(self) -> bool:
        """Whether a due flush may be put off (never at the end of the input)."""
        return False

    def streams_waiting(self) -> set[str]:
        """Streams with records a flush kept back: their states stay held."""
        return set()

    def not_saved(self, streams: set[str]) -> None:
        """At the end of the input, records of ``streams`` were still kept back: their states
        are dropped (the next run reads those records again). Say so here."""

    def close(self) -> None:
        """Release what the run holds (called once, whatever happened)."""

    # --- what every destination shares ----------------------------------------------------

    def reject(self, stream: str, reason: str, data: dict[str, Any]) -> None:
        """Count a record that cannot be written against ``stream``, in the next STATE
        echoed for it. Subclasses keep the record (a dead-letter file, a table) and call this."""
        self.rejected[stream] = self.rejected.get(stream, 0) + 1

    def write(self, messages: Iterable[dict[str, Any]]) -> Iterator[bytes]:
        """Consume messages; yield each STATE once the records before it are committed."""
        try:
            for message in messages:
                if message["type"] == "RECORD":
                    stream, data = message["record"]["stream"], message["record"]["data"]
                    check = self.checks.get(stream)
                    problem = check.problem(data) if check else None
                    if problem:
                        self.reject(stream, f"does not match the {stream} schema: {problem}",
                                    data)
                        continue
                    if self.record(stream, data):
                        self.written[stream] = self.written.get(stream, 0) + 1
                    if self.full():
                        yield from self.state({})
                elif message["type"] == "STATE":
                    yield from self.state(message)
            yield from self.state({}, final=True)
        finally:
            self.close()

    def state(self, message: dict[str, Any], final: bool = False) -> Iterator[bytes]:
        """Hold a STATE (an empty ``message``: none) and flush when due, then echo the held
        states whose records are committed, in order."""
        if message:
            stream = state_stream(message)
            names = [stream] if stream else list(self.written)
            message["state"]["destinationStats"] = {
                "recordCount": float(sum(self.written.pop(n, 0) for n in names))}
            self.held_states.append(message)
        due = (final or self.pending() >= self.batch_size
               or time.monotonic() - self.flushed_at >= self.flush_every_s)
        if not due or not (self.held_states or final):
            return
        if not final and self.may_wait():
            return
        self.flush()
        self.flushed_at = time.monotonic()
        waiting = self.streams_waiting()
        kept = []
        for held in self.held_states:
            stream = state_stream(held)
            if waiting and stream in waiting | {None}:
                kept.append(held)  # a global state waits for every stream
                continue
            names = [stream] if stream else list(self.rejected)
            held["state"]["destinationStats"]["rejectedRecordCount"] = float(
                sum(self.rejected.pop(n, 0) for n in names))
            yield orjson.dumps(held) + b"\n"
        self.held_states = kept
        if final and waiting:
            self.not_saved(waiting)
            self.held_states.clear()
