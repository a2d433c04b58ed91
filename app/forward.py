"""Forwarding: keep a destination current from the webhook spool, continuously.

A loop of short syncs inside the receiver's process, on the one data path: the source reads in
``webhooks`` mode (only what the spool named since the last cycle, fetched by id), its messages
go straight into the destination's ``write``, and each STATE the destination echoes is saved in
the state store. A cycle runs as soon as the receiver stores a new event; a full poll runs at
start (to catch up) and every ``poll_every_s`` (to catch what no webhook announced); and, when
``due_every_s`` is set, a cycle runs at least that often with no new event, for what the
destination sends at a time of its own (Brevo's ``browse_abandoned`` falls due at a write).

A crash between a cycle's fetches and its saved STATE repeats that cycle's work on restart;
the destination's ledger makes the repetition harmless (contacts are upserts, events are
claimed once).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from app.leases import Leases, Renewal, default_name
from framework.errors import REDACT, ConnectorError
from framework.plugins.connector import Destination, Source
from framework.protocol import messages as p
from framework.protocol.statestore import StateStore
from framework.storage import is_postgres, split
from framework.webhooks.spool import Spool

log = logging.getLogger("tajo.forward")

#: How long the forwarder's lease on its store lasts unless renewed.
LEASE_S = 60.0
RETRY_S = (1, 2, 5, 10, 30, 60)


def messages(chunks: Iterable[bytes],
             observe: Callable[[dict[str, Any]], None] | None = None
             ) -> Iterator[dict[str, Any]]:
    """Parsed messages out of a source's output chunks (each holds whole lines)."""
    for chunk in chunks:
        for number, line in enumerate(chunk.splitlines(), 1):
            if line.strip():
                message = p.parse_line(line, number)
                if observe is not None:
                    observe(message)
                yield message


MODEL_HOOK = "commerce."  # the hooks of a source's commerce-model streams (framework/mapping)


def model_catalog(source: Source, off: frozenset[str] | set[str] = frozenset()
                  ) -> p.ConfiguredAirbyteCatalog:
    """What the Brevo destination reads: the source's commerce-model streams, less those
    made of a stream in ``off`` (a sync switch turned off)."""
    streams = source.loaded.streams
    full = source.configured_catalog(everything=True)
    picked = [s for s in full.streams
              if (parent := streams[s.stream.name].parent) is not None
              and parent.hook.startswith(MODEL_HOOK) and parent.stream not in off]
    return p.ConfiguredAirbyteCatalog(streams=picked)


def with_model_states(source: Source, catalog: p.ConfiguredAirbyteCatalog,
                      saved: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The saved states, plus, for a model stream without one, its parent's (a state store
    of the version that synced the API streams): the model's ``updated_at`` is the API's
    cursor renamed, so the first sync after the upgrade reads on where the last one stopped
    instead of everything again."""
    streams = getattr(source, "loaded", None)
    if streams is None:
        return saved
    states = dict(saved)
    for configured in catalog.streams:
        name = configured.stream.name
        parent = streams.streams[name].parent if name in streams.streams else None
        if name in states or parent is None or parent.stream not in saved:
            continue
        upstream = streams.streams[parent.stream].incremental
        old = upstream.cursor_field if upstream is not None else None
        new = parent.cursor_field or old
        states[name] = {key: ({account: {(new if k == old else k): v
                                         for k, v in entry.items()}
                               for account, entry in accounts.items() if isinstance(entry, dict)}
                              if isinstance(accounts, dict) else accounts)
                        for key, accounts in saved[parent.stream].items()}
    return states


def sync_once(source: Source, source_config: dict[str, Any], destination: Destination,
              destination_config: dict[str, Any], store: StateStore,
              catalog: p.ConfiguredAirbyteCatalog | None = None,
              observe: Callable[[dict[str, Any]], None] | None = None) -> int:
    """One read piped into one write (the same protocol messages, in one process), states
    saved as the destination commits them; returns how many STATE messages were committed.
    ``observe`` sees every source message (progress) and every destination LOG message."""
    catalog = catalog or model_catalog(source)
    read = _Deferred(source.read(source_config, catalog,
                                 with_model_states(source, catalog, store.load())))
    committed = 0
    for chunk in destination.write(destination_config, catalog, messages(read, observe)):
        for line in chunk.splitlines():
            if not line.strip():
                continue
            if line.startswith(b'{"type":"LOG"') and observe is not None:
                observe(orjson.loads(line))
            elif not destination_config.get("dry_run") and store.save_message(line):
                committed += 1
    if read.error is not None:  # e.g. a stream that failed while the others were read
        raise read.error
    return committed


class _Deferred:
    """A source's output whose error is raised only after the destination has finished:
    the records and states of the streams that were read are committed (and their states
    saved) before the run fails for the stream that was not."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks
        self.error: Exception | None = None

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self.chunks
        except Exception as exc:  # raised by sync_once once the destination is done
            self.error = exc


class StoreBusy(Exception):
    """Another process (a worker) holds the store's lease: forward its events later."""


class Forwarder:
    """The forwarding loop (run it on a thread; ``wake`` after storing an event)."""

    def __init__(self, source: Source, source_config: dict[str, Any],
                 destination: Destination, destination_config: dict[str, Any],
                 state_path: str | Path, poll_every_s: float = 3600,
                 catalog: p.ConfiguredAirbyteCatalog | None = None,
                 due_every_s: float | None = None) -> None:
        self.source, self.destination = source, destination
        self.catalog = catalog  # None: the source's default (a sync config's switches else)
        self.source_config, self.destination_config = source_config, destination_config
        self.state_path = state_path
        self.poll_every_s = poll_every_s
        #: The longest time without a cycle (None: cycles only on events and polls).
        self.due_every_s = due_every_s
        self.woken = threading.Event()
        self.stopping = threading.Event()
        self.cycles = self.failures = 0
        self.thread = threading.Thread(target=self.run, name="forwarder", daemon=True)
        self.leases: Leases | None = None

    def wake(self) -> None:
        """New events are in the spool."""
        self.woken.set()

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        """Finish the cycle under way, then stop."""
        self.stopping.set()
        self.woken.set()
        self.thread.join(timeout=120)

    def run(self) -> None:
        store = StateStore(self.state_path)
        next_poll, failures, seen = 0.0, 0, -1
        next_due = math.inf
        try:
            while not self.stopping.is_set():
                now = time.monotonic()
                poll = now >= next_poll
                self.woken.clear()
                try:  # the spool can fail to answer too: the loop goes on after a pause
                    last = self._spool_end()
                except Exception as exc:
                    failures += 1
                    self._failed(exc, failures)
                    continue
                if poll or last != seen or now >= next_due:
                    # Events are read once they are settle_s old
                    # (framework.engine.source._spool_mark);
                    # waiting here lets this cycle take them.
                    self.stopping.wait(getattr(self.source, "settle_s", 0.0) + 0.05)
                    try:
                        self._cycle(store, "poll" if poll else "webhooks",
                                    quiet=not poll and last == seen)
                        seen, failures = last, 0
                        if poll:
                            next_poll = now + self.poll_every_s
                        if self.due_every_s is not None:
                            next_due = time.monotonic() + self.due_every_s
                    except StoreBusy:  # a worker syncs it: the events wait for us
                        self.stopping.wait(1.0)
                        continue
                    except Exception as exc:  # logged; the loop goes on after a pause
                        failures += 1
                        self._failed(exc, failures)
                        continue
                wake_at = min(next_poll, next_due)
                self.woken.wait(timeout=max(0.0, min(wake_at - time.monotonic(), 5.0)))
        finally:
            store.close()

    def _failed(self, exc: Exception, failures: int) -> None:
        """Log a failure and pause (longer after each in a row)."""
        self.failures += 1
        message = exc.message if isinstance(exc, ConnectorError) else repr(exc)
        pause = RETRY_S[min(failures, len(RETRY_S)) - 1]
        log.error("forwarding failed (%s); retrying in %ds", REDACT(message), pause)
        self.stopping.wait(pause)

    def _spool_end(self) -> int:
        path = self.source_config.get("spool_path")
        if not path:
            return 0
        spool = Spool(path)
        try:
            return spool.last_offset()
        finally:
            spool.close()

    def _cycle(self, store: StateStore, mode: str, quiet: bool = False) -> None:
        """One forwarding cycle; with state in PostgreSQL, under the store's lease (the one
        ``runner worker`` takes): a store a worker is syncing now waits (StoreBusy).
        ``quiet``: a cycle no event or poll asked for (``due_every_s``), logged at DEBUG."""
        if not is_postgres(str(self.state_path)):
            self._forward(store, mode, quiet)
            return
        url, key = split(str(self.state_path))
        if self.leases is None:
            self.leases = Leases(url, f"forwarder-{default_name()}", LEASE_S)
        if self.leases.claim([key], None) is None:
            raise StoreBusy(key)
        renewal = Renewal(self.leases, key)
        status = "failed"
        try:
            self._forward(store, mode, quiet)
            # a catch-up is the store's scheduled sync too; a webhooks cycle is not
            status = "succeeded" if mode == "poll" else "forwarded"
        finally:
            renewal.stop()
            if not renewal.lost:
                self.leases.release(key, status)

    def _forward(self, store: StateStore, mode: str, quiet: bool = False) -> None:
        started = time.monotonic()
        client = self.source.loaded.model.client  # the field the spec reads the mode from
        config = {**self.source_config, client.config.read_mode if client else "read_mode": mode}
        states = sync_once(self.source, config, self.destination, self.destination_config,
                           store, self.catalog)
        self.cycles += 1
        log.log(logging.DEBUG if quiet else logging.INFO,
                "forwarded (%s) in %.2fs: %d states committed", "timer" if quiet else mode,
                time.monotonic() - started, states)
