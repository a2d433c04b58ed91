"""The Airbyte CLI of one connector, exactly as the platform and PyAirbyte call it.

    source-x spec
    source-x check --config config.json
    source-x discover --config config.json
    source-x read --config config.json --catalog catalog.json [--state state.json]
    destination-x write --config config.json --catalog catalog.json < messages

A config key the spec does not declare is ignored with a warning (a LOG message and a line on
stderr) naming it: the platform may hand over a config saved by a newer version of the connector.
``runner`` refuses the same key (see ``framework/plugins/commands.py``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import click

from framework.plugins import commands
from framework.plugins.connector import Connector, Destination, Source


def airbyte_cli(connector: Connector) -> Callable[[], None]:
    """A console-script main for ``connector``, speaking the Airbyte CLI."""
    group = click.Group(name=f"{connector.kind}-{connector.spec_file.stem}",
                        help=f"Airbyte {connector.kind} connector.")

    def finish(messages):  # type: ignore[no-untyped-def]
        sys.exit(commands.run(messages))

    @group.command("spec")
    def spec() -> None:
        """Print the SPEC message."""
        finish(commands.spec(connector))

    @group.command("check")
    @click.option("--config", "config_path", required=True)
    def check(config_path: str) -> None:
        """Print a CONNECTION_STATUS message (exit 0 even when FAILED, as Airbyte expects)."""
        finish(commands.check(connector, config_path, warn_unknown=True))

    if isinstance(connector, Source):
        @group.command("discover")
        @click.option("--config", "config_path", required=True)
        def discover(config_path: str) -> None:
            """Print the CATALOG message."""
            finish(commands.discover(connector, config_path, warn_unknown=True))

        @group.command("read")
        @click.option("--config", "config_path", required=True)
        @click.option("--catalog", "catalog_path", required=True)
        @click.option("--state", "state_path")
        def read(config_path: str, catalog_path: str, state_path: str | None) -> None:
            """Print records, states and traces."""
            finish(commands.read(connector, config_path, catalog_path, state_path,
                                 warn_unknown=True))

    if isinstance(connector, Destination):
        @group.command("write")
        @click.option("--config", "config_path", required=True)
        @click.option("--catalog", "catalog_path", required=True)
        def write(config_path: str, catalog_path: str) -> None:
            """Consume messages on stdin; print committed states."""
            finish(commands.write(connector, config_path, catalog_path, sys.stdin.buffer,
                                  warn_unknown=True))

    def main() -> None:
        commands.setup_logging()
        group(prog_name=group.name)

    return main
