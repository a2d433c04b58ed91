"""``runner sandbox shopify``: a local Shopify GraphQL Admin API serving generated shops.

Built on Shopify's published schema (``connectors/shopify/schema.py``), executed by
graphql-core. The web app is imported when the command runs: every ``runner`` command loads
the connectors, and only this one needs a web server. ``python -m connectors.shopify.sandbox``
runs the same command without the runner.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import click

from framework.devkit.faults import fault_options, with_faults

PLAN_NAMES = ("standard", "advanced", "plus", "enterprise")


def _history_end(text: str | None) -> int | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a date; give e.g. 2026-06-30") from None
    return int((when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp())


@click.command("shopify")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=0, show_default=True, help="Port (0: any free port).")
@click.option("--seed", default=1, show_default=True, help="Same seed, same shop.")
@click.option("--shops", default=1, show_default=True,
              help="How many shops to serve (seeds SEED, SEED+1, ...), each with its own "
                   "token and bucket.")
@click.option("--customers", default=1000, show_default=True, help="Customers per shop.")
@click.option("--orders", default=2000, show_default=True, help="Orders per shop.")
@click.option("--products", default=200, show_default=True, help="Products per shop.")
@click.option("--checkouts", default=None, type=int,
              help="Abandoned checkouts per shop (default: orders / 5).")
@click.option("--plan", type=click.Choice(PLAN_NAMES), default="standard", show_default=True,
              help="Restore rate: standard 100 points/s, advanced 200, plus 1,000, "
                   "enterprise 2,000.")
@click.option("--bucket-seconds", default=20.0, show_default=True,
              help="The bucket holds this many seconds of restore (Shopify: 20).")
@click.option("--history-end", default=None,
              help="Last day of the generated history (default: today, UTC).")
@click.option("--latency-ms", default=0, show_default=True, help="Added to every response.")
@click.option("--access-token", default=None,
              help="Token of the first shop (default: a random one).")
@click.option("--client-secret", default=None,
              help="The app's secret, signing webhooks (default: a random one, printed).")
@click.option("--webhook-retry-scale", default=1.0, show_default=True,
              help="Multiplies the retry delays (60 s, 120 s, ... 128 min): 0.001 retries "
                   "after 60 ms.")
@click.option("--bulk-delay-ms", default=200, show_default=True,
              help="Time between a bulk operation's statuses (CREATED, RUNNING, COMPLETED).")
@fault_options
def sandbox_command(host: str, port: int, seed: int, shops: int, customers: int, orders: int,
                    products: int, checkouts: int | None, plan: str, bucket_seconds: float,
                    history_end: str | None, latency_ms: int, access_token: str | None,
                    client_secret: str | None, webhook_retry_scale: float,
                    bulk_delay_ms: int, faults: str, faults_seed: int,
                    faults_slow_ms: int) -> None:
    """Serve Shopify shops on loopback.

    Prints {"url", "shop", "access_token", "client_secret", "plan", "shops": [...]} once
    ready; the GraphQL endpoint is {url}/{shop}/admin/api/{version}/graphql.json.
    ``--faults`` injects network faults on GraphQL requests as the other sandboxes do.
    """
    from connectors.shopify import schema
    from connectors.shopify.sandbox.app import ShopState, build_app, resolver_for
    from connectors.shopify.sandbox.data import Shop
    from framework.devkit.sandbox import serve

    end = _history_end(history_end)
    secret = client_secret or secrets.token_hex(16)
    resolver_for(schema.DEFAULT_VERSION)  # fetches and loads the schema before "ready"
    served = []
    for n in range(shops):
        shop = Shop.generate(f"sandbox-{seed + n}", seed + n, plan, customers, orders,
                             products, checkouts, end)
        token = access_token if n == 0 and access_token else f"shpat_{secrets.token_hex(16)}"
        served.append(ShopState(shop, token, secret, retry_scale=webhook_retry_scale,
                                bucket_seconds=bucket_seconds,
                                bulk_delay_s=bulk_delay_ms / 1000, latency_ms=latency_ms))
    listing = [{"shop": s.shop.name, "access_token": s.access_token} for s in served]
    app = with_faults(build_app(served), faults, faults_seed, faults_slow_ms)
    serve(app, host, port, {**listing[0], "client_secret": secret, "plan": plan,
                            "versions": list(schema.VERSIONS), "shops": listing})
