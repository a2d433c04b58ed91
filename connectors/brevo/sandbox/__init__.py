"""``runner sandbox brevo``: a local Brevo API serving an in-memory account."""

from __future__ import annotations

import secrets

import click

from framework.faults import fault_options, with_faults


@click.command("brevo")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=0, show_default=True, help="Port (0: any free port).")
@click.option("--window-ms", default=1000, show_default=True,
              help="Length of a rate-limit second; hourly limits scale with it.")
@click.option("--latency-ms", default=0, show_default=True, help="Added to every response.")
@click.option("--import-delay-ms", default=200, show_default=True,
              help="Time an import process spends queued, then in process.")
@click.option("--lists", default="", help="List ids to create, e.g. 40,41,42.")
@click.option("--api-key", default=None, help="Key to accept (default: a random one).")
@fault_options
def sandbox_command(host: str, port: int, window_ms: int, latency_ms: int,
                    import_delay_ms: int, lists: str, api_key: str | None, faults: str,
                    faults_seed: int, faults_slow_ms: int) -> None:
    """Serve a Brevo account on loopback; prints {"url", "api_key"} once ready."""
    key = api_key or f"xkeysib-{secrets.token_hex(32)}-{secrets.token_hex(8)}"
    from connectors.brevo.sandbox.app import BrevoSandbox, build_app  # with the server
    from framework.sandbox import serve

    sandbox = BrevoSandbox(key, window_ms, latency_ms, import_delay_ms)
    for list_id in (int(v) for v in lists.split(",") if v.strip()):
        sandbox.account.lists[list_id] = {"id": list_id, "name": f"List {list_id}",
                                          "folderId": 1}
    app = with_faults(build_app(sandbox), faults, faults_seed, faults_slow_ms)
    serve(app, host, port, {"api_key": key})


def main() -> None:
    """``python -m connectors.brevo.sandbox``."""
    sandbox_command()
