"""``runner sync``, ``runner status`` and ``runner check --config`` for a sync config."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import orjson

from app import sync
from framework.declarative.formats import format_utc
from framework.errors import REDACT, ConnectorError
from framework.plugins import commands
from framework.protocol.messages import AirbyteConnectionStatus
from framework.webhooks.subscriptions import LIMIT_FIX, declared

SANDBOX_LISTS = {"all_customers": 40, "buyers": 41, "abandoned_cart": 42}
DEMO_PLATFORMS = ("bigcommerce", "shopify", "both")


def _fail(exc: ConnectorError) -> None:
    click.echo(f"error: {REDACT(exc.message)}", err=True)
    sys.exit(2 if exc.failure_type == "config_error" else 1)


class Progress:
    """Progress bars per stream on a terminal (records, estimate from the API's totals, rate
    limit waits); nothing otherwise (the logs say it)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bars: dict[str, Any] = {}
        self.waits: dict[str, int] = {}

    def bar(self, stream: str) -> Any:
        if stream not in self.bars:
            from tqdm import tqdm
            self.bars[stream] = tqdm(desc=f"{stream:<20}", unit=" rec", file=sys.stderr,
                                     position=len(self.bars), leave=True, dynamic_ncols=True)
        return self.bars[stream]

    def __call__(self, message: dict[str, Any]) -> None:
        if message["type"] == "LOG":
            click.echo(message["log"]["message"])  # e.g. a dry run's summary
            return
        if not self.enabled:
            return
        kind = message["type"]
        if kind == "RECORD":
            self.bar(message["record"]["stream"]).update(1)
        elif kind == "TRACE":
            trace = message["trace"]
            if trace.get("type") == "ESTIMATE":
                bar = self.bar(trace["estimate"]["name"])
                bar.total = trace["estimate"].get("row_estimate")
                bar.refresh()
            elif trace.get("type") == "STREAM_STATUS":
                status = trace["stream_status"]
                name = status["stream_descriptor"]["name"]
                if any(r.get("type") == "RATE_LIMITED" for r in status.get("reasons") or []):
                    self.waits[name] = self.waits.get(name, 0) + 1
                    self.bar(name).set_postfix(rate_limit_waits=self.waits[name])

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


#: The storefront counts in the order a reader wants them: what Brevo got, then what was held
#: back and why (connectors/brevo/storefront.py counts them).
STOREFRONT_ORDER = ("product_viewed", "cart_updated", "checkout_started", "browse_abandoned",
                    "joined", "anonymous_held", "anonymous_dropped", "anonymous_expired",
                    "duplicate", "rate_limited")


def storefront_counts(counts: dict[str, int]) -> str:
    """``product_viewed 5, cart_updated 1, ...``: the known counts first, any other after."""
    names = [n for n in STOREFRONT_ORDER if n in counts] + sorted(
        n for n in counts if n not in STOREFRONT_ORDER)
    return ", ".join(f"{name} {counts[name]}" for name in names)


def print_status(report: dict[str, Any]) -> None:
    """The status report for people."""
    brevo = report["brevo"]
    click.echo(f"connected: {'yes' if report['connected'] else 'NO'}")
    click.echo(f"brevo: {'connected' if brevo['connected'] else 'FAILED: ' + str(brevo['error'])}")
    if brevo["connected"]:
        click.echo(f"  contacts {brevo.get('contacts')}, orders {brevo.get('orders')}, "
                   f"products {brevo.get('products')}; lists "
                   + ", ".join(f"{k} {v}" for k, v in (brevo.get("lists") or {}).items()))
        skipped = brevo.get("carts_skipped")
        if skipped is not None:
            click.echo(f"  carts skipped for lack of consent: {skipped['guest']} of guests, "
                       f"{skipped['no_consent']} of customers who did not accept abandoned-"
                       "cart emails")
        storefront = brevo.get("storefront")
        if storefront:
            click.echo(f"  storefront events: {storefront_counts(storefront)}")
    for name, source in report["connectors"].items():
        state = "connected" if source["connected"] else f"FAILED: {source['error']}"
        click.echo(f"{name}: {state}")
        for warning in source.get("warnings") or []:
            click.echo(f"  warning: {warning}")
        run = source["last_run"]
        if run:
            when = format_utc(run["started_at"])
            click.echo(f"  last run: {run['kind']} {run['status']} at {when}, "
                       f"{run['records']} records")
        if source["last_error"]:
            click.echo(f"  last error: {source['last_error']}")
        spool = source["spool"]
        click.echo(f"  webhook spool: {spool['events']} events, {spool['unread']} unread, "
                   f"{spool['dead_letters']} dead-lettered")
        for stream, info in source["streams"].items():
            click.echo(f"  {stream:<22} last sync {info['last_sync'] or 'never'}")
    letters = report["dead_letters"]
    click.echo("dead letters: " + (", ".join(f"{k} {v}" for k, v in sorted(letters.items()))
                                   if letters else "none"))


@click.command("sync")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="The sync config (the seed document's layout), JSON or YAML.")
@click.option("--sandbox", is_flag=True,
              help="Start both sandboxes with a demo store, sync, show the status, stop them.")
@click.option("--keep", is_flag=True,
              help="With --sandbox: then keep them up, with a receiver forwarding into Brevo "
                   "and the storefront script installed, until Enter: click through the "
                   "storefront and see its events arrive.")
@click.option("--platform", type=click.Choice(DEMO_PLATFORMS), default="bigcommerce",
              show_default=True,
              help="With --sandbox: the demo's store platform (both: one store of each, into "
                   "one Brevo).")
@click.option("--dry-run", is_flag=True, help="Say what would change in Brevo; write nothing.")
@click.pass_context
def sync_command(ctx: click.Context, config_path: str | None, sandbox: bool, keep: bool,
                 platform: str, dry_run: bool) -> None:
    """Sync every enabled store into Brevo, resuming from the state kept in state_dir."""
    if sandbox == bool(config_path):
        raise click.UsageError("give --config FILE, or --sandbox for the demo")
    if keep and not sandbox:
        raise click.UsageError("--keep keeps the demo's sandboxes up: give it with --sandbox")
    if keep and platform == "shopify":
        # The kept demo installs the storefront script, which is BigCommerce's (Scripts API).
        raise click.UsageError("--keep needs the BigCommerce store's storefront: use "
                               "--platform bigcommerce or both")
    progress = Progress(sys.stderr.isatty() and not (ctx.obj or {}).get("json_logs"))
    if sandbox:
        with demo(platform) as path:
            _sync(path, dry_run, progress)
            click.echo("")
            print_status(sync.status(sync.load(path)))
            if keep:
                explore(path)
        return
    assert config_path is not None
    _sync(config_path, dry_run, progress)


def _sync(path: str | Path, dry_run: bool, progress: Progress) -> None:
    started = time.monotonic()
    commands.tune_memory()
    try:
        jobs = sync.load(path, dry_run=dry_run)
        records = sync.run(jobs, observe=progress)
    except ConnectorError as exc:
        progress.close()
        _fail(exc)
    progress.close()
    click.echo(f"synced {records} records from {', '.join(j.name for j in jobs)} in "
               f"{time.monotonic() - started:.1f}s" + (" (dry run)" if dry_run else ""))


def explore(path: Path) -> None:
    """The demo kept up (``--keep``): a receiver forwarding into the Brevo sandbox and the
    storefront script installed on the sandbox's store, until a line (Enter) on stdin."""
    runner = str(Path(sys.executable).parent / "runner")
    config = orjson.loads(path.read_bytes())
    log = path.with_name("receiver.log")
    with log.open("w") as errors:  # a file: a pipe nobody reads would fill and stop it
        receiver = subprocess.Popen(
            [runner, "webhooks", "serve", "--config", str(path), "--port", "0",
             "--forward", str(path)], stdout=subprocess.PIPE, stderr=errors, text=True)
    try:
        assert receiver.stdout is not None
        line = receiver.stdout.readline()
        if not line:
            raise click.ClickException(f"the receiver did not start: {log.read_text()[-500:]}")
        url = json.loads(line)["url"]
        installed = subprocess.run([runner, "storefront", "install", "--config", str(path),
                                    "--url", url], capture_output=True, text=True)
        if installed.returncode != 0:
            raise click.ClickException(f"the storefront script was not installed: "
                                       f"{installed.stderr.strip()[-500:]}")
        store = config["connectors"]["bigcommerce"]["api_url"]
        click.echo(f"\nstorefront: {store}/ (the script installed, sending to {url})\n"
                   "  accept the cookies, sign in with a customer's email (any password), view"
                   " products, add one to the cart:\n"
                   f"  Brevo's sandbox holds the events ({config['brevo']['api_url']}"
                   "/_sandbox/state), and a browse without a cart becomes browse_abandoned "
                   "after 2 minutes\n"
                   f"  runner status --config {path}\n"
                   "press Enter to stop the sandboxes")
        sys.stdin.readline()
    finally:
        receiver.terminate()
        try:
            receiver.wait(timeout=15)
        except subprocess.TimeoutExpired:
            receiver.kill()


@contextmanager
def demo(platform: str = "bigcommerce") -> Iterator[Path]:
    """The store's sandbox (``platform``: bigcommerce, shopify or both) and Brevo's, as
    subprocesses, and a sync config for them, in a temporary directory."""
    runner = str(Path(sys.executable).parent / "runner")
    started: list[subprocess.Popen[str]] = []

    def start(*args: str) -> dict[str, Any]:
        process = subprocess.Popen([runner, "sandbox", *args, "--port", "0"],
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        started.append(process)
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise click.ClickException(f"the {args[0]} sandbox did not start")
        return dict(json.loads(line))

    with tempfile.TemporaryDirectory(prefix="tajo-demo-") as tmp:
        try:
            connectors: dict[str, Any] = {}
            if platform in ("bigcommerce", "both"):
                connectors["bigcommerce"] = _bigcommerce_demo(start)
            if platform in ("shopify", "both"):
                connectors["shopify"] = _shopify_demo(start)
            brevo = start("brevo", "--lists", "40,41,42", "--import-delay-ms", "50")
            config = {
                "connectors": connectors,
                "brevo": {"api_key": brevo["api_key"], "api_url": brevo["url"],
                          "storefront": {"browse_abandoned_minutes": 2}},
                "state_dir": str(Path(tmp) / "state")}
            path = Path(tmp) / "tajo.json"
            path.write_bytes(orjson.dumps(config, option=orjson.OPT_INDENT_2))
            click.echo(f"demo: Brevo sandbox {brevo['url']}")
            yield path
        finally:
            for process in started:
                process.terminate()
            for process in started:
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()


def _bigcommerce_demo(start: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """A BigCommerce sandbox store and its block of the demo's config."""
    # The app's client secret signs the storefront's Current Customer JWT.
    secret = secrets.token_urlsafe(24)
    store = start("bigcommerce", "--customers", "500", "--orders", "800", "--products",
                  "60", "--plan", "enterprise", "--client-id", "demo",
                  "--client-secret", secret)
    # The sandbox serves its (first) store's storefront at the root of its URL.
    click.echo(f"demo: BigCommerce sandbox {store['url']} (store {store['store_hash']}), "
               f"its storefront {store['url']}/ (with --keep it stays up)")
    return {"enabled": True, "store_hash": store["store_hash"],
            "access_token": store["access_token"], "client_id": "demo",
            "client_secret": secret, "api_url": store["url"],
            "sync": {"customers": True, "orders": True, "products": True,
                     "carts": True, "inventory": True, "storefront": True},
            "storefront": {"origins": [store["url"]]},
            "lists": SANDBOX_LISTS}


def _shopify_demo(start: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """A Shopify sandbox shop (the Plus plan's query budget) and its block of the config."""
    shop = start("shopify", "--customers", "500", "--orders", "800", "--products", "60",
                 "--checkouts", "40", "--plan", "plus")
    click.echo(f"demo: Shopify sandbox {shop['url']} (shop {shop['shop']})")
    return {"enabled": True,
            "shop_setup": {"shop": shop["shop"], "access_token": shop["access_token"]},
            "client_secret": shop["client_secret"], "api_url": shop["url"],
            "lists": SANDBOX_LISTS}


@click.command("status")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="The sync config.")
@click.option("--json", "as_json", is_flag=True, help="The report as one JSON object.")
def status_command(config_path: str, as_json: bool) -> None:
    """Connected? Last sync per stream, what Brevo holds, spool depth, errors, dead letters."""
    try:
        report = sync.status(sync.load(config_path))
    except ConnectorError as exc:
        _fail(exc)
    if as_json:
        click.echo(orjson.dumps(report).decode())
    else:
        print_status(report)
    sys.exit(0 if report["connected"] else 1)


def check_sync(config_path: str) -> None:
    """``runner check --config tajo.yaml``: both sides, with the fix for each failure."""
    try:
        jobs = sync.load(config_path)
    except ConnectorError as exc:
        _fail(exc)
    failed = False
    # A check's message may quote an answer that echoed a secret: each is redacted.
    destination = _redacted(jobs[0].destination.check(jobs[0].destination_config))
    click.echo(f"brevo: {'OK' if destination.status == 'SUCCEEDED' else destination.message}")
    failed |= destination.status != "SUCCEEDED"
    for job in jobs:
        result = _redacted(job.source.check(job.source_config))
        click.echo(f"{job.name}: {'OK' if result.status == 'SUCCEEDED' else result.message}")
        failed |= result.status != "SUCCEEDED"
        if result.status != "SUCCEEDED":
            continue
        hooks = None
        if job.source.loaded.model.webhooks:
            hooks, ok = _check_hooks(job)
            failed |= not ok
        try:
            warnings = sync.setup_warnings(job, hooks)
        except ConnectorError as exc:
            warnings = [f"could not check the setup: {exc.message}"]
        for warning in warnings:  # the run goes on without what they name: not a failure
            click.echo(f"{job.name} warning: {REDACT(warning)}")
    sys.exit(1 if failed else 0)


def _redacted(status: AirbyteConnectionStatus) -> AirbyteConnectionStatus:
    if status.message:
        status.message = REDACT(status.message)
    return status


def _check_hooks(job: sync.Job) -> tuple[dict[str, list[dict[str, Any]]] | None, bool]:
    """Each store's webhook count against the platform's limits (a full store takes no new
    hook: the product page's "webhooks not working" row); the hooks, and whether all is well.

    BigCommerce lists an API account's own hooks only, so other apps' hooks, which count
    toward the store's 100 too (the sandbox's reading of the product page), cannot be
    counted: the line says so rather than "0 of 100", and `runner webhooks register` reports
    the limit if the store turns out to be full.
    """
    spec = declared(job.source)
    try:
        hooks = sync.store_hooks(job)
    except ConnectorError as exc:
        click.echo(f"{job.name} webhooks: {exc.message}")
        return None, False
    ok = True
    for store, registered in hooks.items():
        per_scope: dict[str, int] = {}
        for hook in registered:
            per_scope[hook["scope"]] = per_scope.get(hook["scope"], 0) + 1
        full = sorted(scope for scope, n in per_scope.items() if n >= spec.max_per_scope)
        if len(registered) >= spec.max_total or full:
            ok = False
            limit = (f"{len(registered)} of {spec.max_total} hooks; at {spec.max_per_scope}: "
                     f"{', '.join(full) or 'none'}")
            click.echo(f"{job.name} webhooks ({store}): {LIMIT_FIX.format(limit=limit)}")
        else:
            active = sum(1 for h in registered if h.get("is_active"))
            click.echo(f"{job.name} webhooks ({store}): {len(registered)} hooks of this API "
                       f"account, {active} active; the store's limit of {spec.max_total} "
                       "counts other apps' hooks too, which this API account cannot list")
    return hooks, ok
