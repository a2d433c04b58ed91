"""Where state is kept: a SQLite file (the embedded default) or a PostgreSQL database.

A *location* names one store of state (a webhook spool, a sync's stream states): a SQLite
file's path, or ``postgresql://USER:PASSWORD@HOST:PORT/DB#NAMESPACE``. In PostgreSQL each
namespace is a schema of its own (``tajo_`` and the namespace, made safe for an identifier),
so one database holds the spool of every source and the states of every store, and the
queries are the same text for both backends.

:class:`Database` is the one interface the stores use: ``execute`` (``?`` placeholders,
rows returned at once) and ``transaction``. SQLite is opened in autocommit mode; PostgreSQL
through one psycopg connection pool per URL and process (``psycopg_pool``), shared by every
store opened on it, so opening a store per read costs no connection.

A store written like a ``sqlite3.Connection``, with transactions that span many statements
(a destination's ledger), runs on PostgreSQL through :mod:`framework.storage.session`, which
speaks SQLite's dialect to it.

A location's password never appears in text bound for people: :func:`describe` leaves it
out and the URL's secrets are added to :data:`framework.errors.REDACT`.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from framework.errors import REDACT, ConfigError
from framework.files import open_sqlite

SCHEMES = ("postgresql://", "postgres://")
POOL_SIZE = 8


def is_postgres(location: str | Path | None) -> bool:
    """Whether a location is a PostgreSQL URL (anything else is a SQLite path)."""
    return isinstance(location, str) and location.startswith(SCHEMES)


def located(url: str, namespace: str) -> str:
    """The location of ``namespace`` in the database at ``url`` (whose fragment it replaces)."""
    return url.split("#", 1)[0] + "#" + namespace


def split(location: str) -> tuple[str, str]:
    """A PostgreSQL location's connection URL and namespace (``default`` when none)."""
    url, _, namespace = location.partition("#")
    return url, namespace or "default"


def schema_name(namespace: str) -> str:
    """The PostgreSQL schema of a namespace: ``tajo_`` and its letters, digits and
    underscores (lower case), with a short hash when anything had to change."""
    safe = re.sub(r"[^a-z0-9_]", "_", namespace.lower())
    if safe != namespace or len(safe) > 50:  # (PostgreSQL's identifiers end at 63 bytes)
        safe = safe[:40] + "_" + hashlib.sha1(namespace.encode()).hexdigest()[:8]
    return "tajo_" + safe


def describe(location: str | Path) -> str:
    """A location as logs and errors show it: a URL without its password."""
    if not is_postgres(location):
        return str(location)
    parts = urlsplit(str(location))
    host = parts.hostname or ""
    netloc = (f"{parts.username}@" if parts.username else "") + host + (
        f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", parts.fragment))


def _remember_secrets(url: str) -> None:
    parts = urlsplit(url)
    if parts.password:
        REDACT.add([parts.password, unquote(parts.password)])


_pools: dict[str, Any] = {}
_pools_lock = threading.Lock()
_made: set[tuple[str, str, str]] = set()  # (url, schema, what): DDL already run here


def pool(url: str) -> Any:
    """The process's connection pool for ``url`` (opened on first use)."""
    with _pools_lock:
        found = _pools.get(url)
        if found is None:
            import psycopg  # imported only by PostgreSQL's users
            from psycopg_pool import ConnectionPool

            _remember_secrets(url)
            try:  # one connection first: a wrong URL fails now, with the server's reason
                psycopg.connect(url, connect_timeout=10).close()
            except psycopg.Error as exc:
                reason = REDACT(str(exc).strip().splitlines()[0] if str(exc).strip() else
                                type(exc).__name__)
                raise ConfigError(f"cannot connect to PostgreSQL at {describe(url)}: {reason};"
                                  " check the storage URL and that the server is up") from None
            found = ConnectionPool(url, min_size=1, max_size=POOL_SIZE, open=True,
                                   kwargs={"autocommit": True}, name="tajo")
            _pools[url] = found
        return found


def close_pools(url: str | None = None) -> None:
    """Close the pool of ``url``, or every pool (a server that is gone: its pool would go on
    trying to reconnect; a process that is about to exit)."""
    with _pools_lock:
        for known in [url] if url is not None else list(_pools):
            found = _pools.pop(known, None)
            if found is not None:
                found.close()
        for made in [m for m in _made if url is None or m[0] == url]:
            _made.discard(made)


#: How long a readiness check waits for a PostgreSQL connection (a probe must answer fast).
PROBE_TIMEOUT_S = 2.0


def problem(location: str | Path, timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """Why the store at ``location`` cannot be used right now, or None when it answers
    (a receiver's readiness): a SQLite file is opened read-only and read, PostgreSQL answers
    ``SELECT 1`` on a pooled connection within ``timeout_s``. Secrets are left out."""
    try:
        if not is_postgres(location):
            db = sqlite3.connect(f"file:{Path(location).resolve()}?mode=ro", uri=True,
                                 timeout=timeout_s)
            try:
                db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            finally:
                db.close()
            return None
        url, _ = split(str(location))
        with pool(url).connection(timeout=timeout_s) as conn:
            conn.execute("SELECT 1")
        return None
    except ConfigError as exc:
        return exc.message
    except Exception as exc:  # the driver's, the pool's timeout, SQLite's: said in one line
        text = str(exc).strip()
        return REDACT(f"{describe(location)}: " + (text.splitlines()[0] if text else
                                                    type(exc).__name__))


class Result:
    """Rows of one statement, read at once (the connection goes back to its pool)."""

    def __init__(self, rows: list[tuple[Any, ...]], rowcount: int,
                 columns: list[str]) -> None:
        self.rows, self.rowcount, self.columns = rows, rowcount, columns

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self.rows)

    def fetchone(self) -> tuple[Any, ...] | None:
        return self.rows[0] if self.rows else None


def _result(cursor: Any) -> Result:
    columns = [column[0] for column in cursor.description] if cursor.description else []
    rows = [tuple(row) for row in cursor.fetchall()] if cursor.description else []
    return Result(rows, cursor.rowcount, columns)


class Database:
    """One store's connection: SQLite file or PostgreSQL schema, the same SQL for both.

    SQL is written with ``?`` placeholders and ``{schema}.`` before table names (nothing in
    SQLite, the namespace's schema in PostgreSQL); ``dialect`` is ``sqlite`` or
    ``postgresql`` for the few statements that differ (table definitions).
    """

    def __init__(self, location: str | Path, what: str, ddl: dict[str, str],
                 setup: Callable[[sqlite3.Connection], None] | None = None) -> None:
        self.location = location
        self.what = what
        self._local = threading.local()  # .tx: this thread's open PostgreSQL transaction
        if is_postgres(location):
            self.dialect = "postgresql"
            url, namespace = split(str(location))
            self.url, self.schema = url, schema_name(namespace)
            self.pool = pool(url)
            self._create(ddl["postgresql"])
        else:
            self.dialect = "sqlite"
            self.schema = ""
            def prepare(db: sqlite3.Connection) -> None:
                if setup is not None:
                    setup(db)
                db.executescript(ddl["sqlite"])

            self.db = open_sqlite(location, what, prepare, timeout=30, isolation_level=None,
                                  check_same_thread=False)

    def sql(self, text: str) -> str:
        """``text`` for this backend: its schema, and psycopg's placeholders."""
        if self.dialect == "sqlite":
            return text.replace("{schema}.", "")
        return text.replace("{schema}", f'"{self.schema}"').replace("?", "%s")

    def _create(self, ddl: str) -> None:
        """The schema and tables, once per process; an advisory lock keeps replicas that
        start together from racing on CREATE ... IF NOT EXISTS (which can fail then)."""
        key = (self.url, self.schema, ddl)
        if key in _made:
            return
        lock = int(hashlib.sha1(self.schema.encode()).hexdigest()[:15], 16)
        with self.pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock,))
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            for statement in filter(str.strip, self.sql(ddl).split(";")):
                conn.execute(statement)
        _made.add(key)

    def execute(self, text: str, params: Sequence[Any] = ()) -> Result:
        """Run one statement (in the open transaction, if any); its rows."""
        if self.dialect == "sqlite":
            return _result(self.db.execute(self.sql(text), params))
        tx = getattr(self._local, "tx", None)
        if tx is not None:
            return _result(tx.execute(self.sql(text), params))
        with self.pool.connection() as conn:
            return _result(conn.execute(self.sql(text), params))

    @contextmanager
    def transaction(self, lock: str | None = None) -> Iterator[Database]:
        """One transaction (SQLite: BEGIN IMMEDIATE, so writers queue at its start).
        ``lock``: PostgreSQL takes an advisory lock of that name until the commit, which
        orders writers that must commit in the order they were given ids."""
        if self.dialect == "sqlite":
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            return
        with self.pool.connection() as conn, conn.transaction():
            if lock is not None:
                key = int(hashlib.sha1(f"{self.schema}.{lock}".encode()).hexdigest()[:15], 16)
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (key,))
            self._local.tx = conn
            try:
                yield self
            finally:
                self._local.tx = None

    def close(self) -> None:
        if self.dialect == "sqlite":
            self.db.close()
