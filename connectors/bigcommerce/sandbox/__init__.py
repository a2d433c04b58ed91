"""``runner sandbox bigcommerce``: a local BigCommerce API serving generated stores.

The ASGI app is imported when the command runs: every ``runner`` command loads the
connectors, and only this one needs a web server."""

from __future__ import annotations

import secrets

import click

from connectors.bigcommerce.sandbox.data import PLANS
from framework.devkit.faults import fault_options, with_faults


@click.command("bigcommerce")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=0, show_default=True, help="Port (0: any free port).")
@click.option("--seed", default=1, show_default=True, help="Same seed, same store.")
@click.option("--customers", default=1000, show_default=True, help="Customers per store.")
@click.option("--orders", default=2000, show_default=True, help="Orders per store.")
@click.option("--products", default=200, show_default=True, help="Products per store.")
@click.option("--stores", default=1, show_default=True,
              help="How many stores to serve (seeds SEED, SEED+1, ...), each with its own "
                   "token and quota.")
@click.option("--plan", type=click.Choice(list(PLANS)), default="standard", show_default=True,
              help="Quota per window: standard and plus 150, pro 450, enterprise unlimited.")
@click.option("--window-ms", default=30_000, show_default=True,
              help="Length of the quota window (shorten it for fast tests).")
@click.option("--latency-ms", default=0, show_default=True, help="Added to every response.")
@click.option("--access-token", default=None,
              help="Token of the first store (default: a random one).")
@click.option("--client-id", default="sandbox-app", show_default=True,
              help="The API account the tokens belong to (hooks are listed per account).")
@click.option("--client-secret", default=None,
              help="Sign webhook deliveries the Standard Webhooks way with this secret.")
@click.option("--webhook-retry-scale", default=1.0, show_default=True,
              help="Multiplies BigCommerce's retry delays (60 s, 180 s, ...): 0.001 retries "
                   "after 60 ms.")
@fault_options
def sandbox_command(host: str, port: int, seed: int, customers: int, orders: int,
                    products: int, stores: int, plan: str, window_ms: int, latency_ms: int,
                    access_token: str | None, client_id: str, client_secret: str | None,
                    webhook_retry_scale: float, faults: str, faults_seed: int,
                    faults_slow_ms: int) -> None:
    """Serve BigCommerce stores on loopback.

    Prints {"url", "store_hash", "access_token", "stores": [...]} once ready.
    """
    from connectors.bigcommerce.sandbox.app import Sandbox, build_app
    from connectors.bigcommerce.sandbox.data import Store
    from connectors.bigcommerce.sandbox.hooks import Hooks
    from framework.devkit.sandbox import serve

    served = []
    for n in range(stores):
        store = Store.generate(seed + n, plan, customers, orders, products)
        token = (access_token if n == 0 and access_token else secrets.token_hex(16))
        hooks = Hooks(store.store_hash, 1_000_000 + store.seed, webhook_retry_scale,
                      client_secret)
        served.append(Sandbox(store, token, window_ms, latency_ms, client_id=client_id,
                              hooks=hooks))
    listing = [{"store_hash": s.store.store_hash, "access_token": s.access_token}
               for s in served]
    app = with_faults(build_app(served), faults, faults_seed, faults_slow_ms)
    serve(app, host, port, {**listing[0], "stores": listing})
