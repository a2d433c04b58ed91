"""The webhook spool: a durable change feed in SQLite (WAL mode) or PostgreSQL.

The receiver appends events; streams read the resource ids recorded since their offset (a
stream of a resource the API cannot list, such as carts, learns ids only this way). Each event
has a unique ``key``, so a re-delivered webhook is stored once.

Durability: the receiver commits with ``synchronous=FULL`` before it answers, so an
acknowledged event survives a crash of the process and of the machine.

In PostgreSQL (``spool_path`` a ``postgresql://...#NAMESPACE`` location, see
:mod:`framework.storage`) any number of receivers append to one spool: the unique key is what
stores a re-delivered event once, whichever replica it reaches.

Dead letters: an event whose resource id cannot be read (not an id of its kind, see
:func:`check_id`, or one the API refuses) is recorded in ``dead_letters`` by the reader, which
goes on without it; a stream is never held up by one event. That table is the only thing a
reader writes. The receiver refuses such ids at the door (400), so dead letters come from
spools written before it did, or from ids the platform itself refuses.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from framework.storage import Database

SCHEMA = {"sqlite": """
CREATE TABLE IF NOT EXISTS events (
    "offset" INTEGER PRIMARY KEY AUTOINCREMENT,
    account TEXT NOT NULL,
    scope TEXT NOT NULL,
    resource TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    hash TEXT UNIQUE,
    payload TEXT NOT NULL,
    received_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_resource ON events (account, resource, "offset");
CREATE TABLE IF NOT EXISTS dead_letters (
    account TEXT NOT NULL,
    resource TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    "offset" INTEGER NOT NULL,
    reason TEXT NOT NULL,
    at REAL NOT NULL,
    UNIQUE (account, resource, resource_id)
);
""", "postgresql": """
CREATE TABLE IF NOT EXISTS {schema}.events (
    "offset" BIGSERIAL PRIMARY KEY,
    account TEXT NOT NULL,
    scope TEXT NOT NULL,
    resource TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    hash TEXT UNIQUE,
    payload TEXT NOT NULL,
    received_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_resource ON {schema}.events (account, resource, "offset");
CREATE INDEX IF NOT EXISTS events_by_time ON {schema}.events (received_at);
CREATE TABLE IF NOT EXISTS {schema}.dead_letters (
    account TEXT NOT NULL,
    resource TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    "offset" BIGINT NOT NULL,
    reason TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    UNIQUE (account, resource, resource_id)
);
"""}

#: The largest ``integer`` id: OpenAPI files of commerce APIs type resource ids as
#: ``integer``, ``format: int32`` where a format is given, and ids count up from 1.
MAX_INTEGER_ID = 2**31 - 1
_DIGITS = re.compile(r"[0-9]{1,10}")  # ASCII only: "²".isdigit() is True, int("²") fails
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_TEXT = re.compile(r"[A-Za-z0-9._:-]{1,100}")  # no comma: ids travel in comma-separated lists


def check_id(value: object, id_type: str) -> str:
    """A resource id as the spool stores it (a string), if ``value`` is a valid one of
    ``id_type`` (``integer``, ``uuid`` or ``text``; see ``framework.declarative.spec.IdType``).

    Raises:
        ValueError: what is wrong with it, in a few words that never echo a long value.
    """
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"is a {type(value).__name__}, not an id")
    if isinstance(value, int) and not -MAX_INTEGER_ID <= value <= MAX_INTEGER_ID:
        raise ValueError(f"{short(str(value)) if value.bit_length() < 1000 else 'the number'} "
                         "is too large to be an id")
    if id_type == "integer":
        if isinstance(value, str):
            if not _DIGITS.fullmatch(value):
                raise ValueError(f"{short(value)} is not a whole number of at most 10 "
                                 "ASCII digits")
            value = int(value)
        if not 1 <= value <= MAX_INTEGER_ID:
            raise ValueError(f"{short(str(value))} is out of range (1 to {MAX_INTEGER_ID})")
        return str(value)
    pattern = _UUID if id_type == "uuid" else _TEXT
    if not isinstance(value, str) and id_type == "uuid":
        raise ValueError(f"{short(str(value))} is not a UUID")
    text = str(value)
    if not pattern.fullmatch(text):
        kind = "a UUID (8-4-4-4-12 hex digits)" if id_type == "uuid" else \
            "1 to 100 letters, digits or ._:-"
        raise ValueError(f"{short(text)} is not {kind}")
    return text


def short(text: str) -> str:
    """A value as an error may show it: at most 24 characters, and its length if longer."""
    return repr(text) if len(text) <= 24 else f"{text[:20]!r}... ({len(text)} characters)"


class Event(NamedTuple):
    """One webhook as the spool keeps it; ``key`` is unique (None: never de-duplicated)."""

    account: str
    scope: str
    resource: str
    resource_id: str
    payload: dict[str, Any]
    key: str | None = None


class Spool:
    """One spool: a SQLite file, or a namespace of a PostgreSQL database (see
    :mod:`framework.storage`) that any number of receivers write at once."""

    def __init__(self, path: str | Path, *, durable: bool = False) -> None:
        def pragmas(db: sqlite3.Connection) -> None:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")

        # private, errors with the fix; PostgreSQL commits durably by itself
        self.db = Database(path, "webhook spool", SCHEMA, pragmas)

    def append(self, account: str, scope: str, resource: str, resource_id: str,
               payload: dict[str, Any], event_hash: str | None = None) -> int | None:
        """Store an event durably; returns its offset, or None when its key is already in."""
        return self.append_many([Event(account, scope, resource, str(resource_id), payload,
                                       event_hash)])[0]

    def append_many(self, events: Iterable[Event]) -> list[int | None]:
        """Store events in one transaction (one disk sync for all); for each, its offset or
        None when its key was already in.

        Replicas writing one PostgreSQL spool: the unique key stores a re-delivered event
        once, whichever receiver has it (ON CONFLICT DO NOTHING, no lock). Offsets are
        handed out under a lock held until the commit, so they become visible in order: a
        reader that has read up to offset N never later finds a smaller one committed.
        """
        now = time.time()
        offsets: list[int | None] = []
        with self.db.transaction(lock="append"):
            for event in events:
                row = self.db.execute(
                    "INSERT INTO {schema}.events (account, scope, resource, resource_id, hash,"
                    " payload, received_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
                    ' RETURNING "offset"',
                    (event.account, event.scope, event.resource, str(event.resource_id),
                     event.key, orjson.dumps(event.payload).decode(), now)).fetchone()
                offsets.append(int(row[0]) if row else None)
        return offsets

    def ids(self, account: str, resource: str, after: int = 0, upto: int | None = None
            ) -> Iterator[tuple[int, str, str]]:
        """Distinct resource ids with events in (after, upto]: (latest offset, id, the scope
        of that latest event), oldest first."""
        upto = self.last_offset() if upto is None else upto
        rows = self.db.execute(
            'SELECT e."offset", e.resource_id, e.scope FROM {schema}.events e JOIN (SELECT '
            'MAX("offset") AS last FROM {schema}.events WHERE account = ? AND resource = ? AND'
            ' "offset" > ? AND "offset" <= ? GROUP BY resource_id) m ON e."offset" = m.last '
            'ORDER BY e."offset"', (account, resource, after, upto))
        yield from ((int(offset), rid, scope) for offset, rid, scope in rows)

    def last_offset(self) -> int:
        """The offset of the newest event (0 when empty)."""
        row = self.db.execute('SELECT COALESCE(MAX("offset"), 0) FROM {schema}.events')
        return int(row.rows[0][0])

    def settled_offset(self, received_before: float) -> int:
        """The newest offset among events received before ``received_before`` (epoch s)."""
        row = self.db.execute('SELECT MAX("offset") FROM {schema}.events WHERE received_at < ?',
                              (received_before,)).rows[0]
        return int(row[0] or 0)

    def prune(self, received_before: float) -> int:
        """Delete events received before ``received_before``; returns how many. Offsets are
        never reused, so readers' saved offsets stay valid."""
        return self.db.execute("DELETE FROM {schema}.events WHERE received_at < ?",
                               (received_before,)).rowcount

    def count(self, after: int = 0) -> int:
        """How many events are stored (past offset ``after``)."""
        return int(self.db.execute('SELECT COUNT(*) FROM {schema}.events WHERE "offset" > ?',
                                   (after,)).rows[0][0])

    def counts_by_scope(self, resource: str) -> dict[str, dict[str, int]]:
        """Events of ``resource`` held, by account and scope."""
        counts: dict[str, dict[str, int]] = {}
        for account, scope, n in self.db.execute(
                "SELECT account, scope, COUNT(*) FROM {schema}.events WHERE resource = ? "
                "GROUP BY account, scope", (resource,)):
            counts.setdefault(account, {})[scope] = int(n)
        return counts

    def payloads(self, account: str, resource: str, after: int, upto: int, limit: int
                 ) -> list[tuple[int, str, str, dict[str, Any]]]:
        """Events of ``resource`` in (after, upto], each one (not one per id: an event that
        is its own record), oldest first: (offset, resource id, scope, payload)."""
        rows = self.db.execute(
            'SELECT "offset", resource_id, scope, payload FROM {schema}.events WHERE account = ?'
            ' AND resource = ? AND "offset" > ? AND "offset" <= ? ORDER BY "offset" LIMIT ?',
            (account, resource, after, upto, limit))
        return [(int(offset), rid, scope, orjson.loads(payload))
                for offset, rid, scope, payload in rows]

    def keys(self) -> set[str]:
        """Every event key (for tests and audits)."""
        return {row[0] for row in self.db.execute(
            "SELECT hash FROM {schema}.events WHERE hash IS NOT NULL")}

    def events(self, after: int = 0, limit: int = 5000) -> list[tuple[Any, ...]]:
        """Stored rows as they are, oldest first (``runner storage migrate`` copies them):
        (offset, account, scope, resource, resource_id, hash, payload text, received_at)."""
        return self.db.execute(
            'SELECT "offset", account, scope, resource, resource_id, hash, payload, received_at'
            ' FROM {schema}.events WHERE "offset" > ? ORDER BY "offset" LIMIT ?',
            (after, limit)).rows

    def dead_letter(self, account: str, resource: str, resource_id: str, scope: str,
                    offset: int, reason: str, at: float | None = None) -> bool:
        """Record an event the reader could not use; False when its id was already there
        (a later event about the same bad id)."""
        cursor = self.db.execute(
            'INSERT INTO {schema}.dead_letters (account, resource, resource_id, scope, "offset",'
            " reason, at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (account, resource, resource_id, scope, offset, reason,
             time.time() if at is None else at))
        return bool(cursor.rowcount)

    def dead_letters(self) -> list[dict[str, Any]]:
        """Every dead letter, oldest first."""
        cursor = self.db.execute('SELECT account, resource, resource_id, scope, "offset", '
                                 'reason, at FROM {schema}.dead_letters ORDER BY at, "offset"')
        return [dict(zip(cursor.columns, row, strict=True)) for row in cursor]

    def close(self) -> None:
        self.db.close()
