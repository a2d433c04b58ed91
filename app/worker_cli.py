"""``runner worker``: claim the stores of a folder of sync configs and keep them synced."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from types import FrameType

import click

from app import worker
from app.leases import default_name
from framework.errors import REDACT, ConnectorError


@click.command("worker")
@click.option("--config", "folder", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="A folder of sync configs, one file per store, each with storage: "
                   "postgresql://... (read again before every claim: add or remove a store "
                   "by adding or removing its file).")
@click.option("--name", default=None, help="This worker's name in the lease table "
                                           "(default: host name and process id).")
@click.option("--every", "every_s", default=3600.0, show_default=True,
              type=click.FloatRange(0), help="Sync each store again this many seconds after "
                                             "its last successful sync.")
@click.option("--lease", "lease_s", default=60.0, show_default=True,
              type=click.FloatRange(1), help="Seconds a claim lasts unless renewed (renewed "
                                             "every third of it): how soon a dead worker's "
                                             "stores are taken over.")
@click.option("--poll", "poll_s", default=5.0, show_default=True, type=click.FloatRange(0.05),
              help="Seconds between looks for a due store when none is.")
@click.option("--once", is_flag=True,
              help="Exit when no store is due (a backfill: every store synced once).")
def worker_command(folder: Path, name: str | None, every_s: float, lease_s: float,
                   poll_s: float, once: bool) -> None:
    """Claim the stores of a folder of sync configs (leases in PostgreSQL) and keep them
    synced."""
    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        click.echo("stopping after the current store's sync", err=True)
        stopping.set()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        synced = worker.work(folder, name=name or default_name(), every_s=every_s,
                             lease_s=lease_s, poll_s=poll_s, stop=stopping.is_set, once=once)
    except ConnectorError as exc:
        click.echo(f"error: {REDACT(exc.message)}", err=True)
        sys.exit(2 if exc.failure_type == "config_error" else 1)
    click.echo(f"synced {synced} store(s)")
