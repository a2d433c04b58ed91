"""``runner sandbox brevo``: a local Brevo API serving an in-memory account."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import click

from framework.devkit.faults import fault_options, with_faults

REFERENCE_ENV = "TAJO_BREVO_REFERENCE"  # a file: check traffic against brevo-python's models


@click.command("brevo")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=0, show_default=True, help="Port (0: any free port).")
@click.option("--window-ms", default=1000, show_default=True,
              help="Length of a rate-limit second; hourly limits scale with it.")
@click.option("--latency-ms", default=0, show_default=True, help="Added to every response.")
@click.option("--import-delay-ms", default=200, show_default=True,
              help="Time an import process spends queued, then in process.")
@click.option("--lists", default="", help="List ids to create, e.g. 40,41,42.")
@click.option("--tier", type=click.Choice(["general", "advanced", "extended"]),
              default="general", show_default=True,
              help="Brevo's rate-limit tier (general: every plan; advanced: Professional and "
                   "Enterprise; extended: Enterprise).")
@click.option("--limit", "limits", multiple=True, metavar="BUCKET=N",
              help="A bucket's size in its window instead of the tier's (e.g. other=5, to see "
                   "a run paced by the hourly bucket in seconds with --window-ms).")
@click.option("--product-batch-limit", type=click.Choice(["100", "1000"]), default="100",
              show_default=True, help="Products a batch takes with updateEnabled (1000: an "
                                      "account whose limit Brevo raised).")
@click.option("--api-key", default=None, help="Key to accept (default: a random one).")
@click.option("--organization-id", default="sandbox-organization", show_default=True,
              help="The account's organization_id (GET /v3/account).")
@fault_options
def sandbox_command(host: str, port: int, window_ms: int, latency_ms: int,
                    import_delay_ms: int, lists: str, tier: str, limits: tuple[str, ...],
                    product_batch_limit: str, api_key: str | None,
                    organization_id: str, faults: str,
                    faults_seed: int, faults_slow_ms: int) -> None:
    """Serve a Brevo account on loopback; prints {"url", "api_key"} once ready."""
    key = api_key or f"xkeysib-{secrets.token_hex(32)}-{secrets.token_hex(8)}"
    from connectors.brevo.sandbox.app import BrevoSandbox, build_app  # with the server
    from framework.devkit.sandbox import serve

    sandbox = BrevoSandbox(key, window_ms, latency_ms, import_delay_ms, tier,
                           int(product_batch_limit))
    for given in limits:
        bucket, _, size = given.partition("=")
        if bucket not in sandbox.windows or not size.isdigit():
            raise click.BadParameter(f"{given!r}: give BUCKET=N, BUCKET one of "
                                     f"{', '.join(sandbox.windows)}", param_hint="--limit")
        sandbox.windows[bucket].quota = int(size)
    sandbox.account.organization_id = organization_id
    for list_id in (int(v) for v in lists.split(",") if v.strip()):
        sandbox.account.add_list(list_id, f"List {list_id}", 1)
    reference = None
    if os.environ.get(REFERENCE_ENV):  # the tests: traffic checked against Brevo's SDK
        from connectors.brevo.sandbox.reference import Reference
        reference = Reference(Path(os.environ[REFERENCE_ENV]))
    # Faults wrap the checked app: what they inject is meant to be wrong.
    app = with_faults(build_app(sandbox, reference), faults, faults_seed, faults_slow_ms)
    serve(app, host, port, {"api_key": key})


def main() -> None:
    """``python -m connectors.brevo.sandbox``."""
    sandbox_command()
