"""``runner storefront install|status|uninstall``: the storefront script on each store.

Like ``runner webhooks register``: idempotent (a second ``install`` changes nothing), and only
our script is touched, found again by its name among the API account's scripts. The script and
the Scripts API are BigCommerce's plugin's (``connectors/bigcommerce/scripts.py``); what it
sends is received by ``runner webhooks serve`` (``POST /storefront/bigcommerce``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import orjson

from app import sync
from app.webhooks_cli import AS_JSON, CONFIG, _each_store, _run, _source
from connectors.bigcommerce import scripts
from framework.errors import ConfigError
from framework.webhooks.spool import Spool

RESOURCE = "storefront_event"  # the spec's storefront.resource

LOOPBACK = re.compile(r"^(localhost|127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1)$")
DEFAULT_CONSENT = "targeting"
SOURCE = "bigcommerce"


def endpoint_of(url: str) -> str:
    """The events endpoint under the receiver's public URL: https (plain http only to a
    loopback address, for the sandbox), as shoppers' browsers must reach it."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not (parts.scheme == "https" and host) and not (parts.scheme == "http"
                                                       and LOOPBACK.match(host)):
        raise ConfigError(f"--url {url!r}: the receiver must be reached over https:// (a "
                          "storefront page is https, and browsers block a beacon to http); "
                          "plain http:// only to a loopback address, for the sandbox")
    return url.rstrip("/") + scripts.ENDPOINT


def settings(config: dict[str, Any]) -> dict[str, Any]:
    """The config's ``storefront`` section."""
    return dict(config.get("storefront") or {})


def _client_ids(source: Any, config: dict[str, Any]) -> dict[str, str | None]:
    return {source.account_key(a): a.get("client_id") or config.get("client_id")
            for a in source.accounts(config)}


def install_rows(client: Any, store: str, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Make one store's scripts hold ours as ``body`` says; one row per script touched."""
    mine = scripts.ours(scripts.listed(client))
    keep, extra = (mine[0], mine[1:]) if mine else (None, [])
    for script in extra:  # a second copy would send every event twice
        scripts.call(client, "DELETE", f"{scripts.PATH}/{script['uuid']}")
        yield {"store": store, "action": "removed", "uuid": script["uuid"]}
    if keep is None:
        made = scripts.call(client, "POST", scripts.PATH, body)["data"]
        yield {"store": store, "action": "created", "uuid": made["uuid"]}
    elif scripts.drifted(keep, body):
        changed = scripts.drifted(keep, body)
        scripts.call(client, "PUT", f"{scripts.PATH}/{keep['uuid']}",
                     {k: body[k] for k in changed})
        yield {"store": store, "action": "updated", "uuid": keep["uuid"], "fields": changed}
    else:
        yield {"store": store, "action": "unchanged", "uuid": keep["uuid"]}


def _line(row: dict[str, Any], as_json: bool) -> str:
    if as_json:
        return orjson.dumps(row).decode()
    fields = f" ({', '.join(row['fields'])})" if row.get("fields") else ""
    return f"{row['store']:<14} {row['action']:<10} {row.get('uuid') or '-'}{fields}"


@click.group("storefront")
def storefront() -> None:
    """Install the storefront script (product views, carts, checkouts) on each store."""


@storefront.command("install")
@CONFIG
@click.option("--url", required=True,
              help="The public https:// URL of `runner webhooks serve`; the script sends to "
                   f"URL{scripts.ENDPOINT}.")
@AS_JSON
def install_command(config_path: str, url: str, as_json: bool) -> None:
    """Create or update our script on each store (idempotent: a second run changes nothing)."""
    def body() -> Iterator[str]:
        source = _source(SOURCE)
        config = sync.webhook_setup(source, config_path).config
        endpoint = endpoint_of(url)
        consent = settings(config).get("consent_category") or DEFAULT_CONSENT
        client_ids = _client_ids(source, config)
        for store, client in _each_store(source, config):
            if not client_ids[store]:
                click.echo(f"warning: {store}: client_id is not set: logged-in shoppers "
                           "cannot be identified (the Current Customer API needs the app's "
                           "client id); only what a shopper does after giving an email at "
                           "checkout reaches Brevo", err=True)
            wanted = scripts.wanted(endpoint, store, client_ids[store], consent)
            for row in install_rows(client, store, wanted):
                yield _line(row, as_json)
    _run(body)


@storefront.command("uninstall")
@CONFIG
@AS_JSON
def uninstall_command(config_path: str, as_json: bool) -> None:
    """Remove our script from each store (other scripts are not touched)."""
    def body() -> Iterator[str]:
        source = _source(SOURCE)
        config = sync.webhook_setup(source, config_path).config
        for store, client in _each_store(source, config):
            mine = scripts.ours(scripts.listed(client))
            for script in mine:
                scripts.call(client, "DELETE", f"{scripts.PATH}/{script['uuid']}")
                yield _line({"store": store, "action": "removed", "uuid": script["uuid"]},
                            as_json)
            if not mine:
                yield _line({"store": store, "action": "absent", "uuid": None}, as_json)
    _run(body)


@storefront.command("status")
@CONFIG
@AS_JSON
def status_command(config_path: str, as_json: bool) -> None:
    """Whether each store has our script (enabled, its consent category, up to date) and
    the storefront events the receiver has spooled."""
    def body() -> Iterator[str]:
        source = _source(SOURCE)
        config = sync.webhook_setup(source, config_path).config
        received = _received(config.get("spool_path"))
        for store, client in _each_store(source, config):
            mine = scripts.ours(scripts.listed(client))
            row: dict[str, Any] = {"store": store, "installed": bool(mine),
                                   "received": received.get(store, {})}
            if mine:
                script = mine[0]
                row.update(uuid=script["uuid"], enabled=script.get("enabled"),
                           consent_category=script.get("consent_category"),
                           visibility=script.get("visibility"))
            yield orjson.dumps(row).decode() if as_json else _status_line(row)
    _run(body)


def _status_line(row: dict[str, Any]) -> str:
    events = ", ".join(f"{k} {v}" for k, v in sorted(row["received"].items())) or "none"
    if not row["installed"]:
        return (f"{row['store']:<14} NOT INSTALLED (run `runner storefront install`); "
                f"events received: {events}")
    state = "enabled" if row["enabled"] else "DISABLED"
    return (f"{row['store']:<14} installed, {state}, consent {row['consent_category']}, "
            f"{row['visibility']} pages; events received: {events}")


def _received(spool_path: str | None) -> dict[str, dict[str, int]]:
    """Storefront events in the spool, by store and type."""
    if not spool_path or not Path(spool_path).exists():
        return {}
    spool = Spool(spool_path)
    try:
        return spool.counts_by_scope(RESOURCE)
    finally:
        spool.close()
