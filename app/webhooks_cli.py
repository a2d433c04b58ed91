"""``runner webhooks``: register, list and receive a source's webhooks (and forward them)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import orjson

from app import sync
from app.events import subscribed
from connectors.brevo.notify import keep_beating, notify_route
from framework.engine.source import HttpSource
from framework.errors import ConfigError, ConnectorError
from framework.plugins import commands
from framework.plugins import connector as registry
from framework.storage import describe, is_postgres
from framework.webhooks import storefront
from framework.webhooks.guard import Limits, Proxies, RefusalLog, parse_proxy, serve
from framework.webhooks.receiver import MAX_BODY, STALE_AFTER_S, SpoolWriter, Verifier, build_app
from framework.webhooks.subscriptions import (
    api_of,
    check_destination,
    declared,
    register,
    secrets_of,
    shown,
)

CONFIG = click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
                      help="The sync config (tajo.yaml: the spool and, when webhook_secret is "
                           "not set, a secret made on first use are kept in its state_dir), or "
                           "the source's own config (stores, tokens, webhooks table, "
                           "webhook_secret, spool_path).")
SOURCE = click.option("--source", "source_name", default="bigcommerce", show_default=True,
                      help="The source connector whose webhooks these are.")
AS_JSON = click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")


def _source(name: str) -> HttpSource:
    conn = registry.get(name, "source")
    if not isinstance(conn, HttpSource):
        raise ConfigError(f"connector {name!r} is not an HTTP source with webhooks")
    declared(conn)
    return conn


def _run(body: Callable[[], Iterator[str]]) -> None:
    """Print each line ``body`` yields; errors become one line on stderr and an exit code."""
    def chunks() -> Iterator[bytes]:
        for line in body():
            yield (line + "\n").encode()
    sys.exit(commands.run(chunks()))


def _each_store(source: HttpSource, config: dict[str, Any]
                ) -> Iterator[tuple[str, Any]]:
    for account in source.accounts(config):
        client = source.client(account)
        try:
            yield source.account_key(account), client
        finally:
            client.close()


#: Shorter, the spool would forget events the receiver still takes deliveries of (up to three
#: days old): a re-delivery would be stored again, and an event no reader has read yet lost.
MIN_KEEP_DAYS = STALE_AFTER_S / 86400


LIMITS = Limits()


def _proxies(values: tuple[str, ...]) -> tuple[str, ...]:
    try:
        return tuple(parse_proxy(value) for value in values)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _keep_days(value: float) -> float:
    if not value >= MIN_KEEP_DAYS:  # NaN too
        raise click.BadParameter(
            f"{value:g} is too short: events stay at least {MIN_KEEP_DAYS:g} days (BigCommerce "
            "re-delivers for two, and the receiver takes deliveries up to three days old; "
            "fewer would delete events already acknowledged but not yet read)")
    return value


@click.group("webhooks")
def webhooks() -> None:
    """Subscribe to a store's webhooks, list them, and receive them."""


@webhooks.command("register")
@CONFIG
@SOURCE
@click.option("--url", required=True,
              help="Where the platform delivers: the public https:// URL of `runner webhooks "
                   "serve` (its path is /webhooks/SOURCE).")
@AS_JSON
def register_command(config_path: str, source_name: str, url: str, as_json: bool) -> None:
    """Create, update, reactivate or remove hooks so that each store has exactly the
    configured scopes (idempotent: a second run changes nothing)."""
    def body() -> Iterator[str]:
        source = _source(source_name)
        setup = sync.webhook_setup(source, config_path)
        config = setup.config
        spec, api = declared(source), api_of(source)
        wanted = subscribed(source, config)
        for warning in source.table_advice(wanted, setup.streams):
            click.echo(f"warning: {warning}", err=True)
        secrets = secrets_of(source, config)
        check_destination(url, spec)
        for store, client in _each_store(source, config):
            for row in register(client, api, wanted, url, secrets[store]):
                row = {"store": store, **row}
                yield (orjson.dumps(row).decode() if as_json else
                       f"{store:<14} {row['scope']:<40} {row['action']:<12} #{row['id']}")
    _run(body)


@webhooks.command("list")
@CONFIG
@SOURCE
@AS_JSON
def list_command(config_path: str, source_name: str, as_json: bool) -> None:
    """The hooks of each store (header values, which hold secrets, are not shown)."""
    def body() -> Iterator[str]:
        source = _source(source_name)
        config = sync.webhook_setup(source, config_path).config
        spec, api = declared(source), api_of(source)
        for store, client in _each_store(source, config):
            hooks = api.list(client)
            for hook in hooks:
                row = {"store": store, **shown(hook)}
                yield (orjson.dumps(row).decode() if as_json else
                       f"{store:<14} #{row['id']:<6} {row['scope']:<40} "
                       f"{'active' if row['is_active'] else 'INACTIVE':<9} {row['destination']}")
            if not as_json:
                yield (f"{store:<14} {len(hooks)} of {spec.max_total} hooks "
                       f"(at most {spec.max_per_scope} per scope)")
    _run(body)


@webhooks.command("serve")
@CONFIG
@SOURCE
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (put a TLS proxy in front: the platform sends to "
                   "https on port 443).")
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--max-body", default=MAX_BODY, show_default=True, type=int,
              help="Largest body accepted, in bytes.")
@click.option("--forward", "forward_config", type=click.Path(dir_okay=False),
              help="Keep a destination current from the spool: its config, or the sync "
                   "config (tajo.yaml, whose sync switches, destination and state_dir apply).")
@click.option("--to", "destination_name", default="brevo", show_default=True,
              help="The destination connector for --forward.")
@click.option("--state-dir", default=".tajo", show_default=True, type=click.Path(),
              help="Where --forward keeps its state (SOURCE.state.db, shared with runner "
                   "sync); a sync config's state_dir takes its place.")
@click.option("--keep-days", default=30.0, show_default=True, type=float,
              callback=lambda _ctx, _param, value: _keep_days(value),
              help=f"Spooled events older than this are deleted (checked hourly); at least "
                   f"{MIN_KEEP_DAYS:g}.")
@click.option("--poll-every", default=3600.0, show_default=True, type=float,
              help="With --forward: seconds between full polls that catch what no webhook "
                   "announced (one runs at start).")
@click.option("--max-header-bytes", default=LIMITS.max_header_bytes, show_default=True,
              type=click.IntRange(1024), help="Largest request line and headers (431 over).")
@click.option("--max-headers", default=LIMITS.max_headers, show_default=True,
              type=click.IntRange(8), help="Most headers in a request (431 over).")
@click.option("--header-timeout", default=LIMITS.header_timeout, show_default=True,
              type=click.FloatRange(0.1), help="Seconds from connecting (or a request's first "
                                               "byte) to the end of its headers (408 after).")
@click.option("--body-timeout", default=LIMITS.body_timeout, show_default=True,
              type=click.FloatRange(0.1), help="Seconds to send a body (408 after).")
@click.option("--idle-timeout", default=LIMITS.idle_timeout, show_default=True,
              type=click.FloatRange(1), help="Seconds a kept-alive connection may sit idle.")
@click.option("--max-connections", default=LIMITS.max_connections, show_default=True,
              type=click.IntRange(1), help="Open connections at most; past it, the oldest idle "
                                           "one is closed.")
@click.option("--refusal-log-lines", default=LIMITS.refusal_log_lines, show_default=True,
              type=click.IntRange(0), help="Refusals logged at most per --refusal-log-interval "
                                           "(the next line counts the rest).")
@click.option("--refusal-log-interval", default=LIMITS.refusal_log_interval,
              show_default=True, type=click.FloatRange(0.1), help="Seconds.")
@click.option("--trusted-proxy", "trusted_proxies", multiple=True,
              callback=lambda _ctx, _param, values: _proxies(values),
              help="Address or network of a proxy whose X-Forwarded-For names the client in "
                   "logs and the storefront endpoint's per-address limit (repeatable; "
                   "default: none, the peer address is used).")
@click.option("--storefront-max-body", default=storefront.MAX_BODY, show_default=True,
              type=click.IntRange(1024), help="Largest storefront beacon, in bytes (413 over).")
@click.option("--storefront-per-ip", default=storefront.Limits.per_ip, show_default=True,
              type=click.FloatRange(1), help="Storefront beacons a minute from one address "
                                             "(429 over).")
@click.option("--storefront-per-visitor", default=storefront.Limits.per_visitor,
              show_default=True, type=click.FloatRange(1),
              help="Storefront events a minute for one visitor (429 over).")
def serve_command(config_path: str, source_name: str, host: str, port: int, max_body: int,
                  forward_config: str | None, destination_name: str, state_dir: str,
                  keep_days: float, poll_every: float, storefront_max_body: int,
                  storefront_per_ip: float, storefront_per_visitor: float,
                  **limits: Any) -> None:
    """Receive webhooks on POST /webhooks/SOURCE: verify, spool, acknowledge."""
    bounds = Limits(**limits)
    refusals = RefusalLog(bounds.refusal_log_lines, bounds.refusal_log_interval)
    try:
        source = _source(source_name)
        setup = sync.webhook_setup(source, config_path)
        config = setup.config
        spec = declared(source)
        if not config.get("spool_path"):
            raise ConfigError("spool_path is not set: add the SQLite file the receiver spools "
                              "events to (e.g. spool_path: .tajo/spool.db)")
        if not is_postgres(config["spool_path"]):  # (a PostgreSQL spool has no folder)
            Path(config["spool_path"]).parent.mkdir(parents=True, exist_ok=True)
        accounts = {spec.producer.format(**a): source.account_key(a)
                    for a in source.accounts(config)}
        secrets = secrets_of(source, config)
        # A platform that signs and addresses deliveries its own way gives its verifier.
        make = getattr(source, "verifier", None) or Verifier
        verifier = make(spec, accounts, subscribed(source, config), secrets,
                        config.get("client_secret"))
        forwarder = None
        if forward_config:
            commands.tune_memory()
            # A destination's config, or the sync config (its destination, sync switches and
            # state_dir then apply).
            forwarder = sync.forwarder(setup, source, forward_config, destination_name,
                                       state_dir, poll_every)
        writer = SpoolWriter(config["spool_path"],
                             on_stored=forwarder.wake if forwarder else None,
                             keep_days=keep_days)
        beacons = None
        if source.loaded.model.storefront is not None:
            origins = (config.get("storefront") or {}).get("origins") or []
            beacons = storefront.Beacons(
                source.loaded.model.storefront,
                storefront.accounts_of(source, config, origins),
                storefront.Limits(storefront_max_body, storefront_per_ip,
                                  storefront_per_visitor))
    except ConnectorError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(2 if exc.failure_type == "config_error" else 1)
    path = f"/webhooks/{source_name}"
    more = (storefront.routes(beacons, writer, f"/storefront/{source_name}",
                              bounds.body_timeout, refusals, Proxies(bounds.trusted_proxies))
            if beacons is not None else [])
    beating = threading.Event()
    brevo = setup.job.destination_config if setup.job is not None else {}
    if brevo.get("notify_url"):
        # Brevo's "import finished" calls: the brevo section's notify_url is this receiver.
        route, board = notify_route(brevo["state_dir"])
        more.append(route)
        keep_beating(board, beating)
    app = build_app(verifier, writer, path, max_body, bounds, refusals, more)
    if forwarder:
        forwarder.start()
    try:
        serve(app, host, port, {"path": path, "spool": describe(config["spool_path"]),
                                "forwarding": bool(forwarder),
                                "brevo_notices": bool(brevo.get("notify_url"))},
              bounds, refusals)
    finally:
        beating.set()
        writer.close()
        if forwarder:
            forwarder.stop()
