"""The SQLite destination: a local mirror of any source, one table per stream.

Rows are upserted by the catalog's primary key, so replaying a read is harmless. A STATE message
is echoed only after the records before it are committed (the protocol's rule), which makes
``runner read X | runner write sqlite`` resumable from the states it prints. Records that cannot
be stored (a primary key field missing) go to the ``_rejected`` table and are counted.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from framework import protocol as p
from framework.airbyte import airbyte_cli
from framework.catalog import data_path
from framework.connector import Destination

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
        db = sqlite3.connect(config["path"], isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE IF NOT EXISTS _rejected (stream TEXT, reason TEXT, data TEXT)")
        keys: dict[str, list[list[str]]] = {}
        for configured in catalog.streams:
            name = configured.stream.name
            keys[name] = (configured.primary_key or configured.stream.source_defined_primary_key
                          or [])
            db.execute(f"CREATE TABLE IF NOT EXISTS {_table(name)} "
                       "(pk TEXT PRIMARY KEY, data TEXT NOT NULL, emitted_at INTEGER)")
            if configured.destination_sync_mode == "overwrite":
                db.execute(f"DELETE FROM {_table(name)}")
        written = rejected = 0
        since_state: dict[str, int] = {}
        db.execute("BEGIN")
        try:
            for message in messages:
                if message["type"] == "RECORD":
                    record = message["record"]
                    stream, data = record["stream"], record["data"]
                    key_paths = keys[stream]
                    if key_paths:
                        values = [data.get(path[0]) for path in key_paths]
                        if any(v is None for v in values):
                            db.execute("INSERT INTO _rejected VALUES (?, ?, ?)",
                                       (stream, "primary key field missing",
                                        orjson.dumps(data).decode()))
                            rejected += 1
                            continue
                        pk = orjson.dumps(values).decode()
                    else:
                        pk = None  # no key: append (rowid decides)
                    db.execute(f"INSERT INTO {_table(stream)} VALUES (?, ?, ?) ON CONFLICT(pk) "
                               "DO UPDATE SET data=excluded.data, emitted_at=excluded.emitted_at",
                               (pk, orjson.dumps(data).decode(), record["emitted_at"]))
                    written += 1
                    since_state[stream] = since_state.get(stream, 0) + 1
                elif message["type"] == "STATE":
                    db.execute("COMMIT")
                    name = (message["state"].get("stream") or {}).get(
                        "stream_descriptor", {}).get("name")
                    count = since_state.pop(name, 0) if name else sum(since_state.values())
                    message["state"]["destinationStats"] = {"recordCount": float(count)}
                    yield orjson.dumps(message) + b"\n"
                    db.execute("BEGIN")
            db.execute("COMMIT")
        except BaseException:
            db.execute("COMMIT")  # keep what arrived before the failure; states were echoed
            raise
        finally:
            db.close()
        log.info("wrote %d records, rejected %d (see table _rejected)", written, rejected)


connector = SqliteDestination(data_path("specs/sqlite.json"))

#: ``destination-sqlite``: the Airbyte CLI (spec, check, write).
main = airbyte_cli(connector)
