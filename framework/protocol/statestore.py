"""The state store: each stream's last committed state, in a SQLite file (the embedded
default) or PostgreSQL, and the history of runs.

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
from framework.storage import Database

SCHEMA = {"sqlite": """
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
""", "postgresql": """
CREATE TABLE IF NOT EXISTS {schema}.stream_state (
    stream TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    saved_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS {schema}.runs (
    id BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    started_at DOUBLE PRECISION NOT NULL,
    finished_at DOUBLE PRECISION,
    status TEXT NOT NULL,
    error TEXT,
    records BIGINT
);
"""}


def _setup(db: sqlite3.Connection) -> None:
    db.execute("PRAGMA journal_mode=WAL")


class StateStore:
    """Per-stream states of one sync: a SQLite file, or a namespace of a PostgreSQL
    database (see :mod:`framework.storage`)."""

    def __init__(self, path: str | Path) -> None:
        self.db = Database(path, "state database", SCHEMA, _setup)

    def load(self) -> dict[str, dict[str, Any]]:
        """Stream name -> its state, as a source's ``read`` takes them."""
        return {name: orjson.loads(state) for name, state in
                self.db.execute("SELECT stream, state FROM {schema}.stream_state")}

    def saved_at(self) -> dict[str, float]:
        """Stream name -> when its state was last saved (epoch seconds)."""
        return dict(self.db.execute("SELECT stream, saved_at FROM {schema}.stream_state").rows)

    def save_message(self, line: bytes) -> str | None:
        """Save the state a STATE line carries; returns its stream (None for other lines)."""
        message = orjson.loads(line)
        if message.get("type") != "STATE":
            return None
        stream = (message.get("state") or {}).get("stream") or {}
        name = (stream.get("stream_descriptor") or {}).get("name")
        if not name:
            return None
        self.save(str(name), stream.get("stream_state") or {})
        return str(name)

    def save(self, name: str, state: dict[str, Any], saved_at: float | None = None) -> None:
        """Save one stream's state."""
        self.db.execute("INSERT INTO {schema}.stream_state (stream, state, saved_at) VALUES "
                        "(?, ?, ?) ON CONFLICT (stream) DO UPDATE SET state = excluded.state, "
                        "saved_at = excluded.saved_at",
                        (name, orjson.dumps(state).decode(),
                         time.time() if saved_at is None else saved_at))

    def start_run(self, kind: str) -> int:
        """Record that a run (``sync``, ``forward``) began; returns its id."""
        row = self.db.execute("INSERT INTO {schema}.runs (kind, started_at, status) VALUES "
                              "(?, ?, 'running') RETURNING id", (kind, time.time())).fetchone()
        return int(row[0]) if row else 0

    def finish_run(self, run_id: int, status: str, error: str | None = None,
                   records: int | None = None) -> None:
        """Record how a run ended (``succeeded`` or ``failed``, with the one-line error)."""
        self.db.execute("UPDATE {schema}.runs SET finished_at = ?, status = ?, error = ?, "
                        "records = ? WHERE id = ?",
                        (time.time(), status, REDACT(error) if error else None, records, run_id))

    def runs(self, limit: int = 5) -> list[dict[str, Any]]:
        """The latest runs, newest first."""
        rows = self.db.execute("SELECT kind, started_at, finished_at, status, error, records "
                               "FROM {schema}.runs ORDER BY id DESC LIMIT ?", (limit,))
        found = [dict(zip(("kind", "started_at", "finished_at", "status", "error", "records"),
                          row, strict=True)) for row in rows]
        for run in found:  # an error stored by an older version, before redaction
            run["error"] = REDACT(run["error"]) if run["error"] else None
        return found

    def all_runs(self) -> list[tuple[Any, ...]]:
        """Every run as stored, oldest first (``runner storage migrate`` copies them):
        (kind, started_at, finished_at, status, error, records)."""
        return self.db.execute("SELECT kind, started_at, finished_at, status, error, records "
                               "FROM {schema}.runs ORDER BY id").rows

    def add_run(self, run: tuple[Any, ...]) -> None:
        """Store a run as :meth:`all_runs` gives it."""
        self.db.execute("INSERT INTO {schema}.runs (kind, started_at, finished_at, status, "
                        "error, records) VALUES (?, ?, ?, ?, ?, ?)", run)

    def close(self) -> None:
        self.db.close()
