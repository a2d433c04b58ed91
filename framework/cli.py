"""The framework's command line: list, run and wire connectors, whatever their platform.

    runner read SOURCE --config source.yaml | runner write DESTINATION --config dest.yaml

``runner`` itself is this group with the app's commands added (``app.cli``: ``sync``,
``status``, ``check --config tajo.yaml``, ``webhooks``); the framework names no app.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click
import orjson

from framework.errors import REDACT, ConnectorError

# The verbs and the plugin registry (pydantic models, jsonschema, the specs) are imported by the
# commands that use them, not here: ``runner --help`` and a typo answer in a tenth of a second.
if TYPE_CHECKING:
    from framework.plugins.connector import Connector

CONFIG = click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
                      help="Connector config, JSON or YAML; ${ENV_VAR} is replaced.")
CATALOG = click.option("--catalog", "catalog_path", type=click.Path(dir_okay=False),
                       help="ConfiguredAirbyteCatalog (default for read: the source's own, "
                            "every stream but its optional ones; for write: those of the "
                            "installed sources).")


def _finish(messages: Iterator[bytes]) -> None:
    from framework.plugins import commands

    sys.exit(commands.run(messages))


def _get(name: str, kind: str | None = None) -> Connector:
    from framework.plugins import connector as registry

    try:
        return registry.get(name, kind)
    except ConnectorError as exc:
        raise click.UsageError(exc.message) from None


class LazyGroup(click.Group):
    """A group whose heavier commands (``LAZY``: name -> (``module:attribute``, short help),
    e.g. a sync or a webhook server with its ASGI stack) are imported when called: ``runner
    read`` in a pipeline starts without them, and ``runner --help`` lists them by their short
    help without importing any (a test checks each one against its command's own)."""

    LAZY: dict[str, tuple[str, str]] = {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.LAZY])

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            limit = formatter.width - 6 - len(name)
            if name in self.LAZY:  # shortened as click shortens a command's own help
                short = click.Command(name, help=self.LAZY[name][1]).get_short_help_str(limit)
                rows.append((name, short))
                continue
            command = super().get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.LAZY:
            module, attr = self.LAZY[cmd_name][0].split(":")
            command: click.Command = getattr(importlib.import_module(module), attr)
            return command
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Debug logs on stderr.")
@click.option("--json-logs", is_flag=True, help="Logs as JSON lines on stderr (no progress bars).")
@click.pass_context
def cli(ctx: click.Context, verbose: bool, json_logs: bool) -> None:
    """Move data between stores and marketing tools with Airbyte-protocol connectors."""
    from framework.plugins.logs import setup_logging

    setup_logging(verbose, json_logs)
    ctx.obj = {"json_logs": json_logs}


@cli.command("connectors")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per connector.")
def list_connectors(as_json: bool) -> None:
    """List the installed connectors (built-in and plugins)."""
    from framework.plugins import connector as registry

    try:
        found = registry.connectors()
    except ConnectorError as exc:
        raise click.ClickException(exc.message) from None
    for name, conn in sorted(found.items()):
        row = {"name": name, "kind": conn.kind, "version": conn.version,
               "spec": str(conn.spec_file), "sandbox": conn.sandbox is not None}
        if as_json:
            click.echo(orjson.dumps(row).decode())
        else:
            click.echo(f"{name:<16} {conn.kind:<12} {conn.version:<8}"
                       f"{'  (sandbox)' if conn.sandbox else ''}")


@cli.command("spec")
@click.argument("name")
def spec_command(name: str) -> None:
    """Print the connector's SPEC message."""
    from framework.plugins import declared

    # Read from the spec file a package declares (a tenth of a second): loading the connector
    # imports its engine and pydantic (half a second); see framework/plugins/declared.py.
    path = declared.spec_file(name)
    message = declared.spec_message(path) if path is not None else None
    if message is not None:
        try:
            sys.stdout.buffer.write(message)
            sys.stdout.flush()
        except BrokenPipeError:
            sys.exit(1)  # the reader went away, as commands.run says
        return
    from framework.plugins import commands

    _finish(commands.spec(_get(name)))


@cli.command("check")
@click.argument("name")
@CONFIG
def check_command(name: str, config_path: str) -> None:
    """Check the config and the credentials; exit 1 when the check fails."""
    check_connector(name, config_path)


def check_connector(name: str, config_path: str) -> None:
    """``runner check NAME``: the CONNECTION_STATUS message; exit 1 when it failed."""
    from framework.plugins import commands

    conn = _get(name)
    output: list[bytes] = []

    def collect() -> Iterator[bytes]:
        for chunk in commands.check(conn, config_path):
            output.append(chunk)
            yield chunk

    code = commands.run(collect())
    failed = any(b'"status":"FAILED"' in chunk for chunk in output)
    sys.exit(code or (1 if failed else 0))


@cli.command("discover")
@click.argument("name")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Connector config (optional: the streams are declared in the spec).")
@click.option("--configured", is_flag=True,
              help="Print a ConfiguredAirbyteCatalog instead of a CATALOG message.")
@click.option("--all", "everything", is_flag=True,
              help="With --configured: include the optional streams too.")
def discover_command(name: str, config_path: str | None, configured: bool,
                     everything: bool) -> None:
    """Print the streams the source offers."""
    from framework.plugins import commands
    from framework.plugins.connector import Source

    conn = _get(name, "source")
    assert isinstance(conn, Source)
    if configured:
        catalog = conn.configured_catalog(everything)
        click.echo(orjson.dumps(catalog.model_dump(mode="json", exclude_none=True),
                                option=orjson.OPT_INDENT_2).decode())
        return
    _finish(commands.discover(conn, config_path))


@cli.command("read")
@click.argument("name")
@CONFIG
@CATALOG
@click.option("--state", "state_path", type=click.Path(dir_okay=False),
              help="State to resume from: Airbyte state JSON or a previous run's output lines.")
def read_command(name: str, config_path: str, catalog_path: str | None,
                 state_path: str | None) -> None:
    """Read records from a source; Airbyte messages on stdout."""
    from framework.plugins import commands
    from framework.plugins.connector import Source

    conn = _get(name, "source")
    assert isinstance(conn, Source)
    _finish(commands.read(conn, config_path, catalog_path, state_path))


@cli.command("write")
@click.argument("name")
@CONFIG
@CATALOG
def write_command(name: str, config_path: str, catalog_path: str | None) -> None:
    """Write Airbyte messages from stdin to a destination; committed states on stdout."""
    from framework.plugins import commands
    from framework.plugins.connector import Destination

    conn = _get(name, "destination")
    assert isinstance(conn, Destination)
    _finish(commands.write(conn, config_path, catalog_path, sys.stdin.buffer))


class SandboxGroup(click.Group):
    """``runner sandbox NAME``: the sandboxes that connectors ship, found through the plugins."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        from framework.plugins import connector as registry

        return sorted(n for n, c in registry.connectors().items() if c.sandbox)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        from framework.plugins import connector as registry

        conn = registry.connectors().get(cmd_name)
        return conn.sandbox if conn else None


@cli.group("sandbox", cls=SandboxGroup)
def sandbox() -> None:
    """Serve a local emulator of a connector's API (for tests, benchmarks and demos)."""


@cli.command("new-connector")
@click.argument("name")
@click.option("--dir", "where", default=".", show_default=True, type=click.Path(file_okay=False),
              help="Where to create the tajo-NAME folder.")
def new_connector_command(name: str, where: str) -> None:
    """Create a source plugin folder (spec, schema, sandbox, standard tests) that passes the
    standard connector suite as it is."""
    from framework.devkit.scaffold import scaffold  # lazy: see LazyGroup

    try:
        root = scaffold(name, Path(where))
    except ConnectorError as exc:
        raise click.UsageError(exc.message) from None
    click.echo(f"created {root}: cd {root} && pip install -e '.[test]' && pytest")


def main(group: click.Group = cli) -> None:
    """Console script entry point (``app.cli`` passes its ``runner``). An error no command
    caught is one line on stderr (exit 2 when the user's input is wrong, else 1); an
    unexpected one also prints its stack trace, secrets redacted (Python's own handler would
    print them as they are)."""
    try:
        group(prog_name="runner")
    except ConnectorError as exc:
        click.echo(f"error: {REDACT(exc.message)}", err=True)
        sys.exit(2 if exc.failure_type == "config_error" else 1)
    except Exception as exc:
        from framework.plugins import commands

        commands.report_bug(exc)
        sys.exit(1)
