"""``runner``: the framework's commands (``framework.cli``) and the app's.

The app adds ``sync``, ``status``, ``webhooks`` and ``storefront`` (imported when called, so
that ``runner read`` in a pipeline starts without them) and lets ``check`` take a sync config
without a NAME.
"""

from __future__ import annotations

import click

from framework import cli as base


class AppGroup(base.LazyGroup):
    LAZY = {"sync": ("app.sync_cli:sync_command",
                     "Sync every enabled store into Brevo, resuming from the state kept in "
                     "state_dir."),
            "status": ("app.sync_cli:status_command",
                       "Connected? Last sync per stream, what Brevo holds, spool depth, errors, "
                       "dead letters."),
            "webhooks": ("app.webhooks_cli:webhooks",
                         "Subscribe to a store's webhooks, list them, and receive them."),
            "storage": ("app.storage_cli:storage",
                        "Move state between SQLite files and PostgreSQL."),
            "worker": ("app.worker_cli:worker_command",
                       "Claim the stores of a folder of sync configs (leases in PostgreSQL) "
                       "and keep them synced."),
            "storefront": ("app.storefront_cli:storefront",
                           "Install the storefront script (product views, carts, checkouts) "
                           "on each store.")}


@click.command("check")
@click.argument("name", required=False)
@base.CONFIG
def check_command(name: str | None, config_path: str) -> None:
    """Check the config and the credentials; exit 1 when the check fails. Without NAME,
    check both sides of a sync config."""
    if name is None:
        from app.sync_cli import check_sync  # lazy: see AppGroup

        check_sync(config_path)
        return
    base.check_connector(name, config_path)


cli = AppGroup(name="runner", callback=base.cli.callback, params=base.cli.params,
               help=base.cli.help, context_settings=base.cli.context_settings,
               commands={**base.cli.commands, "check": check_command})


def main() -> None:
    """Console script entry point."""
    base.main(cli)
