"""``runner sandbox bigcommerce``: a local BigCommerce API serving a generated store."""

from __future__ import annotations

import secrets

import click

from connectors.bigcommerce.sandbox.app import PLANS, Sandbox, build_app
from connectors.bigcommerce.sandbox.data import Store
from framework.sandbox import serve


@click.command("bigcommerce")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=0, show_default=True, help="Port (0: any free port).")
@click.option("--seed", default=1, show_default=True, help="Same seed, same store.")
@click.option("--customers", default=1000, show_default=True, help="Customers in the store.")
@click.option("--plan", type=click.Choice(list(PLANS)), default="standard", show_default=True,
              help="Quota per window: standard and plus 150, pro 450, enterprise unlimited.")
@click.option("--window-ms", default=30_000, show_default=True,
              help="Length of the quota window (shorten it for fast tests).")
@click.option("--latency-ms", default=0, show_default=True, help="Added to every response.")
@click.option("--access-token", default=None, help="Token to accept (default: a random one).")
def sandbox_command(host: str, port: int, seed: int, customers: int, plan: str, window_ms: int,
                    latency_ms: int, access_token: str | None) -> None:
    """Serve a BigCommerce store on loopback; prints {"url", "store_hash", "access_token"}."""
    store = Store.generate(seed, customers, plan)
    token = access_token or secrets.token_hex(16)
    app = build_app(Sandbox(store, token, window_ms, latency_ms))
    serve(app, host, port, {"store_hash": store.store_hash, "access_token": token})
