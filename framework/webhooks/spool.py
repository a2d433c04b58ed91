"""The webhook spool: a durable change feed in SQLite (WAL mode).

The receiver appends events; streams read the resource ids recorded since their offset (a
stream of a resource the API cannot list, such as carts, learns ids only this way). Each event
has a unique ``key``, so a re-delivered webhook is stored once.

Durability: the receiver commits with ``synchronous=FULL`` before it answers, so an
acknowledged event survives a crash of the process and of the machine.

Dead letters: an event whose resource id cannot be read (not an id of its kind, see
:func:`check_id`, or one the API refuses) is recorded in ``dead_letters`` by the reader, which
goes on without it; a stream is never held up by one event. That table is the only thing a
reader writes. The receiver refuses such ids at the door (400), so dead letters come from
spools written before it did, or from ids the platform itself refuses.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from framework.files import open_sqlite

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    offset INTEGER PRIMARY KEY AUTOINCREMENT,
    account TEXT NOT NULL,
    scope TEXT NOT NULL,
    resource TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    hash TEXT UNIQUE,
    payload TEXT NOT NULL,
    received_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_resource ON events (account, resource, offset);
CREATE TABLE IF NOT EXISTS dead_letters (
    account TEXT NOT NULL,
    resource TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    offset INTEGER NOT NULL,
    reason TEXT NOT NULL,
    at REAL NOT NULL,
    UNIQUE (account, resource, resource_id)
);
"""

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
    """One spool file."""

    def __init__(self, path: str | Path, *, durable: bool = False) -> None:
        self.db = open_sqlite(path, "webhook spool", timeout=30, isolation_level=None,
                              check_same_thread=False)  # private, errors with the fix
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        self.db.executescript(SCHEMA)

    def append(self, account: str, scope: str, resource: str, resource_id: str,
               payload: dict[str, Any], event_hash: str | None = None) -> int | None:
        """Store an event durably; returns its offset, or None when its key is already in."""
        return self.append_many([Event(account, scope, resource, str(resource_id), payload,
                                       event_hash)])[0]

    def append_many(self, events: Iterable[Event]) -> list[int | None]:
        """Store events in one transaction (one disk sync for all); for each, its offset or
        None when its key was already in."""
        now = time.time()
        offsets: list[int | None] = []
        self.db.execute("BEGIN IMMEDIATE")
        try:
            for event in events:
                cursor = self.db.execute(
                    "INSERT OR IGNORE INTO events (account, scope, resource, resource_id, hash,"
                    " payload, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (event.account, event.scope, event.resource, str(event.resource_id),
                     event.key, orjson.dumps(event.payload).decode(), now))
                offsets.append(cursor.lastrowid if cursor.rowcount else None)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return offsets

    def ids(self, account: str, resource: str, after: int = 0, upto: int | None = None
            ) -> Iterator[tuple[int, str, str]]:
        """Distinct resource ids with events in (after, upto]: (latest offset, id, the scope
        of that latest event), oldest first."""
        upto = self.last_offset() if upto is None else upto
        rows = self.db.execute(
            "SELECT e.offset, e.resource_id, e.scope FROM events e JOIN (SELECT MAX(offset) AS "
            "last FROM events WHERE account = ? AND resource = ? AND offset > ? AND offset <= ?"
            " GROUP BY resource_id) m ON e.offset = m.last ORDER BY e.offset",
            (account, resource, after, upto))
        yield from rows

    def last_offset(self) -> int:
        """The offset of the newest event (0 when empty)."""
        return int(self.db.execute("SELECT COALESCE(MAX(offset), 0) FROM events").fetchone()[0])

    def settled_offset(self, received_before: float) -> int:
        """The newest offset among events received before ``received_before`` (epoch s)."""
        row = self.db.execute("SELECT MAX(offset) FROM events WHERE received_at < ?",
                              (received_before,)).fetchone()
        return int(row[0] or 0)

    def prune(self, received_before: float) -> int:
        """Delete events received before ``received_before``; returns how many. Offsets are
        never reused, so readers' saved offsets stay valid."""
        return self.db.execute("DELETE FROM events WHERE received_at < ?",
                               (received_before,)).rowcount

    def count(self, after: int = 0) -> int:
        """How many events are stored (past offset ``after``)."""
        return int(self.db.execute("SELECT COUNT(*) FROM events WHERE offset > ?",
                                   (after,)).fetchone()[0])

    def keys(self) -> set[str]:
        """Every event key (for tests and audits)."""
        return {row[0] for row in self.db.execute("SELECT hash FROM events WHERE hash NOT NULL")}

    def dead_letter(self, account: str, resource: str, resource_id: str, scope: str,
                    offset: int, reason: str) -> bool:
        """Record an event the reader could not use; False when its id was already there
        (a later event about the same bad id)."""
        cursor = self.db.execute(
            "INSERT OR IGNORE INTO dead_letters (account, resource, resource_id, scope, offset,"
            " reason, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (account, resource, resource_id, scope, offset, reason, time.time()))
        return bool(cursor.rowcount)

    def dead_letters(self) -> list[dict[str, Any]]:
        """Every dead letter, oldest first."""
        cursor = self.db.execute("SELECT account, resource, resource_id, scope, offset, reason,"
                                 " at FROM dead_letters ORDER BY at, offset")
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor]

    def close(self) -> None:
        self.db.close()
