"""``runner storage migrate``: copy a state_dir's SQLite state into PostgreSQL.

What moves: each ``{source}.spool.db`` (events with their offsets, so the offsets saved in
stream states stay valid, and dead letters) into the namespace ``{source}``, and each
``{source}.state.db`` (stream states and run history) into ``{source}.state.{store keys}``,
the namespaces ``runner sync`` uses once the config says ``storage: postgresql://...``.
The store keys come from the sync config (``--config``) or, without one, from the saved
states themselves (each names the stores it covers).

What stays: the destination's ledger and dead-letter file (``brevo-ledger.db``,
``dead-letter.jsonl``) are files of state_dir still: keep state_dir where the sync runs.

The copy goes into namespaces that hold nothing yet (a second run is refused, naming what
is there), and the SQLite files are only read: after a failed run, fix and run it again
on an emptied database; after a good one, set ``storage:`` and the files are no longer read.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

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
              help="The state_dir whose spool and state databases are copied.")
@click.option("--to", "url", required=True,
              help="The PostgreSQL URL (postgresql://USER:PASSWORD@HOST/DB); ${VAR} is read "
                   "from the environment.")
@click.option("--config", "config_path", default=None,
              type=click.Path(dir_okay=False, path_type=Path),
              help="The sync config, to name each state by its stores (default: the stores "
                   "its saved states name).")
def migrate_command(state_dir: Path, url: str, config_path: Path | None) -> None:
    """Copy STATE_DIR's webhook spools, stream states, runs and dead letters into
    PostgreSQL."""
    from framework.protocol.config import substitute_env

    try:
        copied = migrate(state_dir, substitute_env(url, "--to"), config_path)
    except ConnectorError as exc:
        click.echo(f"error: {REDACT(exc.message)}", err=True)
        sys.exit(2 if exc.failure_type == "config_error" else 1)
    for line in copied:
        click.echo(line)


def migrate(state_dir: Path, url: str, config_path: Path | None = None) -> list[str]:
    """Copy every spool and state database of ``state_dir``; one line per database."""
    if not is_postgres(url):
        raise ConfigError(f"--to {describe(url)} is not a PostgreSQL URL; give "
                          "postgresql://USER:PASSWORD@HOST/DB")
    if not state_dir.is_dir():
        raise ConfigError(f"--from {state_dir} is not a folder; give the state_dir of the "
                          "sync config (default .tajo)")
    spools = sorted(state_dir.glob("*.spool.db"))
    states = sorted(state_dir.glob("*.state.db"))
    if not spools and not states:
        raise ConfigError(f"{state_dir} holds no *.spool.db or *.state.db: nothing to migrate")
    done = []
    for path in spools:
        source = path.name.removesuffix(".spool.db")
        done.append(f"{path.name} -> {describe(located(url, source))}: "
                    f"{copy_spool(path, located(url, source))}")
    for path in states:
        source = path.name.removesuffix(".state.db")
        target = located(url, state_namespace(path, source, config_path))
        done.append(f"{path.name} -> {describe(target)}: {copy_states(path, target)}")
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
