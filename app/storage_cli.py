"""``runner storage migrate``: copy a state_dir's SQLite state into PostgreSQL.

What moves: each ``{source}.spool.db`` (events with their offsets, so the offsets saved in
stream states stay valid, and dead letters) into the namespace ``{source}``, and each
``{source}.state.db`` (stream states and run history) into ``{source}.state.{store keys}``,
the namespaces ``runner sync`` uses once the config says ``storage: postgresql://...``.
The store keys come from the sync config (``--config``) or, without one, from the saved
states themselves (each names the stores it covers).

The Brevo destination's ledger (``brevo.db``: every table, brought up to today's version
first as the next sync would) and its dead letters (``dead-letter.jsonl``, a row each) go into
the namespace ``brevo``, the one the destination uses once ``storage:`` is set. Several
state_dirs that wrote to one Brevo account each had a ledger; they merge only into a ledger
that is still empty, so migrate the first and start the others' stores from PostgreSQL's.

The copy goes into namespaces that hold nothing yet (a second run is refused, naming what
is there), and the SQLite files are only read: after a failed run, fix and run it again
on an emptied database; after a good one, set ``storage:`` and the files are no longer read.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from connectors.brevo.ledger import DEAD_LETTER_FILE, NAMESPACE, DeadLetterTable, Ledger
from framework.errors import REDACT, ConfigError, ConnectorError
from framework.protocol.statestore import StateStore
from framework.storage import describe, is_postgres, located
from framework.webhooks.spool import Spool

BATCH = 5000


@click.group("storage")
def storage() -> None:
    """Move state between SQLite files and PostgreSQL."""


@storage.command("migrate")
@click.option("--from", "state_dir", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="The state_dir whose spool and state databases, Brevo ledger and "
                   "dead-letter file are copied.")
@click.option("--to", "url", required=True,
              help="The PostgreSQL URL (postgresql://USER:PASSWORD@HOST/DB); ${VAR} is read "
                   "from the environment.")
@click.option("--config", "config_path", default=None,
              type=click.Path(dir_okay=False, path_type=Path),
              help="The sync config, to name each state by its stores (default: the stores "
                   "its saved states name).")
def migrate_command(state_dir: Path, url: str, config_path: Path | None) -> None:
    """Copy STATE_DIR's webhook spools, stream states, runs, Brevo ledger and dead letters
    into PostgreSQL."""
    from framework.protocol.config import substitute_env

    try:
        copied = migrate(state_dir, substitute_env(url, "--to"), config_path)
    except ConnectorError as exc:
        click.echo(f"error: {REDACT(exc.message)}", err=True)
        sys.exit(2 if exc.failure_type == "config_error" else 1)
    for line in copied:
        click.echo(line)


def migrate(state_dir: Path, url: str, config_path: Path | None = None) -> list[str]:
    """Copy every spool and state database of ``state_dir``, and its Brevo ledger with the
    dead-letter file; one line per database."""
    if not is_postgres(url):
        raise ConfigError(f"--to {describe(url)} is not a PostgreSQL URL; give "
                          "postgresql://USER:PASSWORD@HOST/DB")
    if not state_dir.is_dir():
        raise ConfigError(f"--from {state_dir} is not a folder; give the state_dir of the "
                          "sync config (default .tajo)")
    spools = sorted(state_dir.glob("*.spool.db"))
    states = sorted(state_dir.glob("*.state.db"))
    ledger, letters = state_dir / "brevo.db", state_dir / DEAD_LETTER_FILE
    if not spools and not states and not ledger.exists() and not letters.exists():
        raise ConfigError(f"{state_dir} holds no *.spool.db, *.state.db, brevo.db or "
                          f"{DEAD_LETTER_FILE}: nothing to migrate")
    done = []
    for path in spools:
        source = path.name.removesuffix(".spool.db")
        done.append(f"{path.name} -> {describe(located(url, source))}: "
                    f"{copy_spool(path, located(url, source))}")
    for path in states:
        source = path.name.removesuffix(".state.db")
        target = located(url, state_namespace(path, source, config_path))
        done.append(f"{path.name} -> {describe(target)}: {copy_states(path, target)}")
    if ledger.exists() or letters.exists():
        target = located(url, NAMESPACE)
        done.append(f"brevo.db, {DEAD_LETTER_FILE} -> {describe(target)}: "
                    f"{copy_ledger(ledger, letters, target)}")
    return done


def state_namespace(path: Path, source_name: str, config_path: Path | None) -> str:
    """The namespace ``runner sync`` will read this state database's states from."""
    from app import sync

    if config_path is not None:
        for job in sync.load(config_path):
            if job.name == source_name:
                keys = sorted(job.source.account_key(a)
                              for a in job.source.accounts(job.source_config))
                return f"{source_name}.state.{'+'.join(keys)}"
        raise ConfigError(f"{config_path} has no enabled connectors.{source_name} for "
                          f"{path.name}; enable it or leave --config out")
    source = sync.sources().get(source_name)
    if source is None:
        raise ConfigError(f"{path.name}: no installed source is named {source_name!r}")
    store = StateStore(path)
    try:
        saved = store.load()
    finally:
        store.close()
    keys = sorted({key for state in saved.values()
                   for key in (state.get(source.state_key) or {})})
    if not keys:
        raise ConfigError(f"{path.name} names no store in its states; give --config with "
                          "the sync config so that its stores name them")
    return f"{source_name}.state.{'+'.join(keys)}"


def _empty(what: str, count: int, target: str) -> None:
    if count:
        raise ConfigError(f"{describe(target)} already holds {count} {what}: migrate copies "
                          "into an empty database (drop that schema, or choose another "
                          "database)")


def copy_spool(path: Path, target_location: str) -> str:
    """Events (offsets kept) and dead letters of one spool file."""
    source, target = Spool(path), Spool(target_location)
    try:
        _empty("spooled events", target.count(), target_location)
        copied, after = 0, 0
        while rows := source.events(after, BATCH):
            with target.db.transaction():
                for row in rows:
                    target.db.execute(
                        'INSERT INTO {schema}.events ("offset", account, scope, resource, '
                        "resource_id, hash, payload, received_at) VALUES "
                        "(?, ?, ?, ?, ?, ?, ?, ?)", row)
            copied += len(rows)
            after = int(rows[-1][0])
        # New events continue after the copied ones (offsets are never reused).
        last = max(source.last_offset(), after)
        if last:
            target.db.execute("SELECT setval(pg_get_serial_sequence('{schema}.events', "
                              "'offset'), ?)", (last,))
        letters = source.dead_letters()
        for letter in letters:
            target.dead_letter(letter["account"], letter["resource"], letter["resource_id"],
                               letter["scope"], letter["offset"], letter["reason"],
                               letter["at"])
        return f"{copied} events, {len(letters)} dead letters"
    finally:
        source.close()
        target.close()


def copy_states(path: Path, target_location: str) -> str:
    """Stream states (with when each was saved) and the run history of one state file."""
    source, target = StateStore(path), StateStore(target_location)
    try:
        _empty("stream states", len(target.load()), target_location)
        saved, when = source.load(), source.saved_at()
        for name, state in saved.items():
            target.save(name, state, when.get(name))
        runs: list[Any] = source.all_runs()
        for run in runs:
            target.add_run(run)
        return f"{len(saved)} stream states, {len(runs)} runs"
    finally:
        source.close()
        target.close()


def _ledger_rows(target: Ledger) -> int:
    """What says a ledger has been written to (its account, customers, orders, events)."""
    return sum(int(target.db.execute(sql).fetchone()[0]) for sql in (
        "SELECT COUNT(*) FROM meta WHERE key = 'brevo_account'",
        "SELECT COUNT(*) FROM customers", "SELECT COUNT(*) FROM orders",
        "SELECT COUNT(*) FROM events_sent", "SELECT COUNT(*) FROM dead_letters"))


def _as_column(value: Any, kind: str) -> Any:
    """A SQLite value as PostgreSQL's column takes it: SQLite keeps ids made of digits as
    numbers in the ledger's INTEGER columns, PostgreSQL's are TEXT."""
    if value is None:
        return None
    if kind == "text":
        return str(value)
    if kind == "bigint" and isinstance(value, str):
        return int(value)
    return value


def copy_table(source: Any, target: Ledger, table: str) -> int:
    """Every row of one table of a SQLite ledger into the PostgreSQL one; the rows copied."""
    kinds = dict(target.db.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = "
        "current_schema() AND table_name = ?", (table,)).fetchall())
    columns = [row[1] for row in source.execute(f"PRAGMA table_info({table})")
               if row[1] in kinds]
    if not kinds or not columns:
        raise ConfigError(f"the ledger's table {table} is unknown to this version's ledger in "
                          "PostgreSQL; upgrade tajo-connectors where migrate runs")
    listed = ", ".join(columns)
    insert = (f"INSERT OR REPLACE INTO {table} ({listed}) VALUES "
              f"({', '.join('?' * len(columns))})")
    rows = source.execute(f"SELECT {listed} FROM {table}")
    copied = 0
    while part := rows.fetchmany(BATCH):
        target.db.executemany(insert, [[_as_column(v, kinds[c]) for v, c in zip(row, columns,
                                                                               strict=True)]
                                       for row in part])
        copied += len(part)
    return copied


def copy_ledger(path: Path, letters: Path, target_location: str) -> str:
    """The Brevo ledger's tables and the dead-letter file, in one transaction."""
    from connectors.brevo.storefront import SCHEMA as STOREFRONT_SCHEMA

    target = Ledger(target_location)
    try:
        _empty("ledger rows", _ledger_rows(target), target_location)
        target.db.executescript(STOREFRONT_SCHEMA)  # its tables, as the destination makes them
        counts: dict[str, int] = {}
        if path.exists():
            source = Ledger(path)  # an earlier version's is brought up to today's first
            try:
                tables = [name for (name,) in source.db.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE "
                    "'sqlite_%' ORDER BY name")]
                counts = {table: copy_table(source.db, target, table) for table in tables}
            finally:
                source.close()
            # New events queue after the copied ones.
            target.db.execute("SELECT setval(pg_get_serial_sequence('events_outbox', 'seq'), "
                              "GREATEST((SELECT MAX(seq) FROM events_outbox), 1))")
        dead = 0
        if letters.exists():
            table = DeadLetterTable(target)
            with letters.open("rb") as lines:
                for line in lines:
                    if line.strip():
                        table.write(line)
                        dead += 1
        target.commit()
    finally:
        target.close()
    return (f"{counts.get('customers', 0)} customers, {counts.get('orders', 0)} orders, "
            f"{counts.get('events_sent', 0)} events sent, {dead} dead letters")
