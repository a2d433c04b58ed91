"""The SQLite destination: a local mirror of any source, one table per stream.

Rows are upserted by the catalog's primary key, so replaying a read is harmless. A STATE message
is echoed only after the records before it are committed (the protocol's rule, kept by
``framework.destinations.sink.Writer``: here every STATE commits), which makes
``runner read X | runner write sqlite`` resumable from the states it prints. Records that cannot
be stored (a primary key field missing) go to the ``_rejected`` table and are counted.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from framework.destinations.sink import Writer
from framework.plugins.airbyte import airbyte_cli
from framework.plugins.connector import Destination
from framework.protocol import messages as p
from framework.protocol.catalog import data_path

log = logging.getLogger("tajo.sqlite")


def _table(stream: str) -> str:
    return '"' + stream.replace('"', '""') + '"'


class SqliteDestination(Destination):
    """Upserts records into ``config["path"]``."""

    def check(self, config: dict[str, Any]) -> p.AirbyteConnectionStatus:
        try:
            sqlite3.connect(config["path"]).execute("PRAGMA user_version").close()
        except sqlite3.Error as exc:
            return p.AirbyteConnectionStatus(status="FAILED",
                                             message=f"cannot open {config['path']}: {exc}")
        return p.AirbyteConnectionStatus(status="SUCCEEDED")

    def write(self, config: dict[str, Any], catalog: p.ConfiguredAirbyteCatalog,
              messages: Iterable[dict[str, Any]]) -> Iterator[bytes]:
        return SqliteWriter(config, catalog).write(messages)


class SqliteWriter(Writer):
    """One write run: one transaction from STATE to STATE (``Writer`` echoes the STATE once
    it is committed)."""

    def __init__(self, config: dict[str, Any], catalog: p.ConfiguredAirbyteCatalog) -> None:
        super().__init__(catalog)
        self.db = db = sqlite3.connect(config["path"], isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE IF NOT EXISTS _rejected (stream TEXT, reason TEXT, data TEXT)")
        self.keys: dict[str, list[list[str]]] = {}
        for configured in catalog.streams:
            name = configured.stream.name
            self.keys[name] = (configured.primary_key
                               or configured.stream.source_defined_primary_key or [])
            db.execute(f"CREATE TABLE IF NOT EXISTS {_table(name)} "
                       "(pk TEXT PRIMARY KEY, data TEXT NOT NULL, emitted_at INTEGER)")
            if configured.destination_sync_mode == "overwrite":
                db.execute(f"DELETE FROM {_table(name)}")
        self.total_written = self.total_rejected = 0
        self.emitted_at = 0
        db.execute("BEGIN")

    def record(self, stream: str, data: dict[str, Any]) -> bool:
        key_paths = self.keys[stream]
        pk = None  # no key: append (rowid decides)
        if key_paths:
            values = [data.get(path[0]) for path in key_paths]
            if any(v is None for v in values):
                self.reject(stream, "primary key field missing", data)
                return False
            pk = orjson.dumps(values).decode()
        self.db.execute(f"INSERT INTO {_table(stream)} VALUES (?, ?, ?) ON CONFLICT(pk) "
                        "DO UPDATE SET data=excluded.data, emitted_at=excluded.emitted_at",
                        (pk, orjson.dumps(data).decode(), self.emitted_at))
        self.total_written += 1
        return True

    def write(self, messages: Iterable[dict[str, Any]]) -> Iterator[bytes]:
        # The row keeps its message's emitted_at, which the base does not pass on.
        def stamped() -> Iterator[dict[str, Any]]:
            for message in messages:
                if message["type"] == "RECORD":
                    self.emitted_at = message["record"]["emitted_at"]
                yield message
        return super().write(stamped())

    def reject(self, stream: str, reason: str, data: dict[str, Any]) -> None:
        self.db.execute("INSERT INTO _rejected VALUES (?, ?, ?)",
                        (stream, reason, orjson.dumps(data).decode()))
        self.total_rejected += 1
        super().reject(stream, reason, data)

    def flush(self) -> None:
        self.db.execute("COMMIT")
        self.db.execute("BEGIN")

    def close(self) -> None:
        # What arrived after the last echoed STATE is kept too (upserts: replaying it is
        # harmless); a failure's cause is what the caller sees.
        if self.db.in_transaction:
            self.db.execute("COMMIT")
        self.db.close()
        log.info("wrote %d records, rejected %d (see table _rejected)", self.total_written,
                 self.total_rejected)


connector = SqliteDestination(data_path("specs/sqlite.json"))

#: ``destination-sqlite``: the Airbyte CLI (spec, check, write).
main = airbyte_cli(connector)
