"""The Brevo destination's connector (it writes with ``destination.py``), its check and its
counts; the package, ``connectors.brevo``, hands it out."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

from connectors.brevo import SPEC_FILE, destination
from connectors.brevo.ledger import Ledger, ledger_location
from connectors.brevo.mapping import check_mapping
from connectors.brevo.sandbox import sandbox_command
from connectors.brevo.storefront import storefront_counts
from framework.engine.http import HttpClient
from framework.errors import ConnectorError
from framework.plugins.airbyte import airbyte_cli
from framework.plugins.connector import Destination
from framework.protocol import messages as p

LISTS_PAGE = 50  # GET /v3/contacts/lists: limit at most 50


def _no_long_wait(seconds: float) -> None:
    if seconds > 5:
        raise ConnectorError(f"rate limited for {seconds:.0f}s", "transient_error")
    time.sleep(seconds)


class BrevoDestination(Destination):
    """Keeps a Brevo account in step with the records it reads."""

    def check(self, config: dict[str, Any]) -> p.AirbyteConnectionStatus:
        """The mapping names fields of the model, the key works and every configured list
        exists."""
        try:
            check_mapping(config.get("customer_mapping") or {})
        except ConnectorError as exc:
            return p.AirbyteConnectionStatus(status="FAILED", message=exc.message)
        client = HttpClient(config["api_url"].rstrip("/"), {"api-key": config["api_key"]},
                            rate_limit=destination.RATE_LIMIT, errors=destination.ERRORS)
        try:
            have: set[int] = set()
            offset = 0
            while True:  # paged: at most 50 a page (Brevo refuses more), newest first
                status, body = client.send("GET", "/v3/contacts/lists",
                                           params={"limit": LISTS_PAGE, "offset": offset})
                if status != 200:
                    return p.AirbyteConnectionStatus(status="FAILED", message=f"Brevo answered"
                                                     f" HTTP {status} listing lists: {body}")
                page = [item["id"] for item in (body or {}).get("lists") or []]
                have.update(page)
                offset += len(page)
                if len(page) < LISTS_PAGE or offset >= int((body or {}).get("count") or 0):
                    break
            missing = {k: v for k, v in (config.get("lists") or {}).items() if v not in have}
            if missing:
                return p.AirbyteConnectionStatus(status="FAILED", message=(
                    "these lists do not exist in Brevo: " + ", ".join(
                        f"{k}={v}" for k, v in sorted(missing.items()))
                    + "; create them (Contacts > Lists) or fix the ids in lists"))
        except ConnectorError as exc:
            return p.AirbyteConnectionStatus(status="FAILED", message=exc.message)
        finally:
            client.close()
        return p.AirbyteConnectionStatus(status="SUCCEEDED")

    def counts(self, config: dict[str, Any]) -> dict[str, Any]:
        """What Brevo holds: contacts and products (its own counts), the configured lists'
        members, the orders sent (Brevo has no endpoint that lists orders: the ledger's
        count of orders Brevo accepted) and the carts skipped for lack of consent."""
        def ask(path: str, params: dict[str, Any] | None = None) -> Any:
            # One client per call: Brevo limits endpoint groups apart (contacts 10/s,
            # products 100/h), and a status must not wait out an hourly window.
            client = HttpClient(config["api_url"].rstrip("/"), {"api-key": config["api_key"]},
                                rate_limit=destination.RATE_LIMIT, errors=destination.ERRORS)
            client.sleep = _no_long_wait
            try:
                status, body = client.send("GET", path, params=params)
                return body if status == 200 else None
            except ConnectorError:
                return None  # rate limited, or down: shown as unknown
            finally:
                client.close()

        contacts = ask("/v3/contacts", {"limit": 1}) or {}
        products = ask("/v3/products", {"limit": 1}) or {}
        lists = {name: (ask(f"/v3/contacts/lists/{list_id}") or {}).get("uniqueSubscribers")
                 for name, list_id in sorted((config.get("lists") or {}).items())}
        ledger = Ledger(ledger_location(config))  # state_dir's brevo.db, or storage's
        try:
            orders = ledger.orders_sent()
            skipped = ledger.skipped_carts()
            storefront = storefront_counts(ledger.db)
        finally:
            ledger.close()
        # Carts never sent for lack of consent: guests, and customers who did not accept
        # abandoned-cart emails (an empty abandoned-cart list then has its reason).
        return {"contacts": contacts.get("count"), "products": products.get("count"),
                "orders": orders, "lists": lists,
                "carts_skipped": {"guest": skipped.get("guest", 0),
                                  "no_consent": skipped.get("no_consent", 0)},
                # The storefront script's events: sent by type, joined, held, dropped.
                "storefront": storefront}

    def write(self, config: dict[str, Any], catalog: p.ConfiguredAirbyteCatalog,
              messages: Iterable[dict[str, Any]]) -> Iterator[bytes]:
        return destination.write(config, catalog, messages)


connector = BrevoDestination(SPEC_FILE, sandbox=sandbox_command)

#: ``destination-brevo``: the Airbyte CLI (spec, check, write).
main = airbyte_cli(connector)
