"""A PostgreSQL connection that speaks SQLite's dialect and keeps its transaction open until
``commit``: what a store written like a ``sqlite3.Connection`` (a destination's ledger) runs
on when its location is a PostgreSQL URL.

A ledger's writes are committed only once the destination has what they describe (a run that
dies reads its records again), so it holds one connection and one transaction between commits,
unlike :class:`framework.storage.Database` (autocommit, a pooled connection per statement).
Its SQL is SQLite's; :func:`to_postgres` rewrites the few forms that differ:

- ``?`` placeholders become ``%s`` (and a literal ``%`` is doubled);
- ``INSERT OR IGNORE`` becomes ``INSERT ... ON CONFLICT DO NOTHING``;
- ``INSERT OR REPLACE`` becomes ``INSERT ... ON CONFLICT (primary key) DO UPDATE`` of every
  other column (the table's primary key read once from the catalog). SQLite's REPLACE
  deletes a row that conflicts on *any* unique key; the stores that use it have one unique
  key per table, where the two are the same;
- ``a IS NOT b`` (SQLite's null-safe comparison) becomes ``IS DISTINCT FROM``;
- ``sqlite_master WHERE name = 'x'`` asks ``information_schema.tables`` of the schema.

Table definitions go through :func:`ddl_to_postgres` (``REAL`` is a 4-byte float in
PostgreSQL: it becomes ``DOUBLE PRECISION``; ``INTEGER`` ``BIGINT``; a rowid
``INTEGER PRIMARY KEY`` a ``BIGSERIAL``). Anything else SQLite-only (``UPDATE OR IGNORE``,
``PRAGMA``) is refused with an error naming it: it belongs to SQLite-only migrations.

The namespace's schema is the connection's ``search_path``, so table names stay bare. A
driver error is a ``ConnectorError`` (``transient_error``) naming the store and its location
without password; the transaction is then rolled back, as a run that dies would leave it.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Iterable, Sequence
from typing import Any

from framework.errors import REDACT, ConnectorError
from framework.storage import _made as storage_made
from framework.storage import describe, pool, schema_name, split

_IGNORE = re.compile(r"^\s*INSERT\s+OR\s+IGNORE\s+INTO\s", re.I)
_REPLACE = re.compile(r"^\s*INSERT\s+OR\s+REPLACE\s+INTO\s+(\w+)\s*(\(([^)]*)\))?", re.I)
_IS_NOT = re.compile(r"\bIS\s+NOT\s+(?!NULL\b)", re.I)
_MASTER = re.compile(r"\bsqlite_master\s+WHERE\s+name\s*=", re.I)
_SQLITE_ONLY = re.compile(r"^\s*(UPDATE\s+OR\s|PRAGMA\s)", re.I)


#: (url, schema, ddl) already run by this process (``framework.storage``'s, for its stores).
_made = storage_made


def ddl_to_postgres(script: str) -> str:
    """SQLite table definitions as PostgreSQL's (types only: the statements are the same)."""
    script = re.sub(r"\bINTEGER\s+PRIMARY\s+KEY\b", "BIGSERIAL PRIMARY KEY", script, flags=re.I)
    script = re.sub(r"\bINTEGER\b", "BIGINT", script, flags=re.I)
    return re.sub(r"\bREAL\b", "DOUBLE PRECISION", script, flags=re.I)


def statements_of(script: str) -> list[str]:
    """The statements of a script (``;``-separated; none of ours has ``;`` in a literal)."""
    return [s.strip() for s in script.split(";") if s.strip()]


class PostgresSession:
    """One connection to a namespace of a PostgreSQL database, used like a
    ``sqlite3.Connection`` in its default (deferred transaction) mode; ``statements``
    counts ``execute`` and ``executemany`` calls as the ledger's SQLite connection does."""

    dialect = "postgresql"

    def __init__(self, location: str, what: str, ddl: str) -> None:
        import psycopg

        self.what, self.where = what, describe(location)
        url, namespace = split(location)
        self.url = url
        self.schema = schema_name(namespace)
        pool(url)  # a wrong URL or a server that is down: one clear line, the secret noted
        self.statements = 0
        self._keys: dict[str, tuple[list[str], list[str]]] = {}  # table -> (key, columns)
        try:
            self.conn = psycopg.connect(url, autocommit=False, connect_timeout=10)
        except psycopg.Error as exc:
            raise self._error(exc) from None
        self._guarded(self._create, ddl)

    def _error(self, exc: Exception) -> ConnectorError:
        text = str(exc).strip()
        reason = REDACT(text.splitlines()[0] if text else type(exc).__name__)
        return ConnectorError(f"the {self.what} in PostgreSQL at {self.where}: {reason}",
                              "transient_error")

    def _guarded(self, call: Any, *args: Any) -> Any:
        import psycopg

        try:
            return call(*args)
        except psycopg.Error as exc:
            with contextlib.suppress(psycopg.Error):  # a connection gone has nothing to undo
                self.conn.rollback()
            raise self._error(exc) from None

    def _create(self, ddl: str) -> None:
        """The schema and its tables, once per process (a forwarder opens its ledger every
        few seconds); an advisory lock keeps writers that open the same namespace at once
        from racing on CREATE ... IF NOT EXISTS (which can fail then)."""
        made = (self.url, self.schema, ddl)
        if made not in _made:
            lock = int(hashlib.sha1(self.schema.encode()).hexdigest()[:15], 16)
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock,))
            self.conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            self.conn.execute(f'SET search_path TO "{self.schema}"')
            for statement in statements_of(ddl_to_postgres(ddl)):
                self.conn.execute(statement)
        self.conn.execute(f'SET search_path TO "{self.schema}"')  # this connection's
        self.conn.commit()
        _made.add(made)

    # --- SQLite's dialect in PostgreSQL's ---------------------------------------------------

    def _key_of(self, table: str) -> tuple[list[str], list[str]]:
        """A table's primary key columns and all its columns, in order (read once)."""
        known = self._keys.get(table)
        if known is None:
            columns = [row[0] for row in self.conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
                "AND table_name = %s ORDER BY ordinal_position", (self.schema, table.lower()))]
            key = [row[0] for row in self.conn.execute(
                "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = "
                "i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass AND "
                "i.indisprimary", (f'"{self.schema}".{table.lower()}',))]
            if not key:
                raise ConnectorError(f"INSERT OR REPLACE into {table}, which has no primary "
                                     "key in PostgreSQL", "system_error")
            known = self._keys[table] = (key, columns)
        return known

    def to_postgres(self, sql: str) -> str:
        """One statement of SQLite's dialect in PostgreSQL's (see the module's text)."""
        if _SQLITE_ONLY.match(sql):
            raise ConnectorError(f"{sql.split()[0]} ... is SQLite's only: {sql[:60]}",
                                 "system_error")
        text = sql.replace("%", "%%").replace("?", "%s")
        text = _IS_NOT.sub("IS DISTINCT FROM ", text)
        text = _MASTER.sub("information_schema.tables WHERE table_schema = current_schema() "
                           "AND table_name =", text)
        if _IGNORE.match(text):
            return _IGNORE.sub("INSERT INTO ", text, count=1) + " ON CONFLICT DO NOTHING"
        replace = _REPLACE.match(text)
        if replace:
            table = replace.group(1)
            key, columns = self._key_of(table)
            named = [c.strip() for c in replace.group(3).split(",")] if replace.group(3) \
                else columns
            others = [c for c in named if c not in key]
            action = ("DO UPDATE SET " + ", ".join(f"{c} = EXCLUDED.{c}" for c in others)
                      if others else "DO NOTHING")
            head = text[:replace.start()] + "INSERT INTO " + text[replace.start(1):]
            return f"{head} ON CONFLICT ({', '.join(key)}) {action}"
        return text

    # --- a sqlite3.Connection's ways -----------------------------------------------------

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> Any:
        self.statements += 1
        return self._guarded(lambda: self.conn.execute(self.to_postgres(sql),
                                                       list(parameters)))

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> Any:
        self.statements += 1

        def run() -> Any:
            cursor = self.conn.cursor()
            cursor.executemany(self.to_postgres(sql), [list(row) for row in rows])
            return cursor

        return self._guarded(run)

    def executescript(self, script: str) -> None:
        """As SQLite's: what is pending is committed first; then the script, in a
        transaction of its own (table definitions under the schema's advisory lock)."""
        def run() -> None:
            self.conn.commit()
            self._create(script)

        self._guarded(run)

    def commit(self) -> None:
        self._guarded(self.conn.commit)

    def rollback(self) -> None:
        self._guarded(self.conn.rollback)

    def close(self) -> None:
        self.conn.close()
