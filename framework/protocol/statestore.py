"""The embedded state store: each stream's last committed state, in a SQLite file.

What ``runner webhooks serve --forward`` (and ``runner sync``) resume from. A state is saved
only when the destination has echoed it, that is, once what it covers is committed there.

The file is private (``framework/files.py``), and a run's error is stored redacted: the
database outlives the process, and ``runner status`` shows what it holds.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import orjson

from framework.errors import REDACT
from framework.files import open_sqlite

SCHEMA = """
CREATE TABLE IF NOT EXISTS stream_state (
    stream TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    saved_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL,
    status TEXT NOT NULL,
    error TEXT,
    records INTEGER
);
"""


def _setup(db: sqlite3.Connection) -> None:
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(SCHEMA)


class StateStore:
    """Per-stream states of one sync."""

    def __init__(self, path: str | Path) -> None:
        self.db = open_sqlite(path, "state database", _setup, timeout=30,
                              isolation_level=None, check_same_thread=False)

    def load(self) -> dict[str, dict[str, Any]]:
        """Stream name -> its state, as a source's ``read`` takes them."""
        return {name: orjson.loads(state) for name, state in
                self.db.execute("SELECT stream, state FROM stream_state")}

    def saved_at(self) -> dict[str, float]:
        """Stream name -> when its state was last saved (epoch seconds)."""
        return dict(self.db.execute("SELECT stream, saved_at FROM stream_state"))

    def save_message(self, line: bytes) -> str | None:
        """Save the state a STATE line carries; returns its stream (None for other lines)."""
        message = orjson.loads(line)
        if message.get("type") != "STATE":
            return None
        stream = (message.get("state") or {}).get("stream") or {}
        name = (stream.get("stream_descriptor") or {}).get("name")
        if not name:
            return None
        self.db.execute("INSERT INTO stream_state (stream, state, saved_at) VALUES (?, ?, ?) "
                        "ON CONFLICT (stream) DO UPDATE SET state = excluded.state, "
                        "saved_at = excluded.saved_at",
                        (name, orjson.dumps(stream.get("stream_state") or {}).decode(),
                         time.time()))
        return str(name)

    def start_run(self, kind: str) -> int:
        """Record that a run (``sync``, ``forward``) began; returns its id."""
        cursor = self.db.execute("INSERT INTO runs (kind, started_at, status) VALUES "
                                 "(?, ?, 'running')", (kind, time.time()))
        return int(cursor.lastrowid or 0)

    def finish_run(self, run_id: int, status: str, error: str | None = None,
                   records: int | None = None) -> None:
        """Record how a run ended (``succeeded`` or ``failed``, with the one-line error)."""
        self.db.execute("UPDATE runs SET finished_at = ?, status = ?, error = ?, records = ? "
                        "WHERE id = ?", (time.time(), status, REDACT(error) if error else None,
                                         records, run_id))

    def runs(self, limit: int = 5) -> list[dict[str, Any]]:
        """The latest runs, newest first."""
        rows = self.db.execute("SELECT kind, started_at, finished_at, status, error, records "
                               "FROM runs ORDER BY id DESC LIMIT ?", (limit,))
        found = [dict(zip(("kind", "started_at", "finished_at", "status", "error", "records"),
                          row, strict=True)) for row in rows]
        for run in found:  # an error stored by an older version, before redaction
            run["error"] = REDACT(run["error"]) if run["error"] else None
        return found

    def close(self) -> None:
        self.db.close()
