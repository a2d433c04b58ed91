"""The Brevo destination (see ``destination.py``) and its sandbox."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from connectors.brevo import destination
from connectors.brevo.ledger import Ledger
from connectors.brevo.sandbox import sandbox_command
from framework import protocol as p
from framework.airbyte import airbyte_cli
from framework.catalog import data_path
from framework.connector import Destination
from framework.errors import ConnectorError
from framework.http import HttpClient


class BrevoDestination(Destination):
    """Keeps a Brevo account in step with the records it reads."""

    def check(self, config: dict[str, Any]) -> p.AirbyteConnectionStatus:
        """The key works and every configured list exists."""
        client = HttpClient(config["api_url"].rstrip("/"), {"api-key": config["api_key"]},
                            rate_limit=destination.RATE_LIMIT, errors=destination.ERRORS)
        try:
            status, body = client.send("GET", "/v3/contacts/lists", params={"limit": 50})
            if status != 200:
                return p.AirbyteConnectionStatus(status="FAILED", message=f"Brevo answered "
                                                 f"HTTP {status} listing lists: {body}")
            have = {item["id"] for item in (body or {}).get("lists", [])}
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
        members, and the orders sent (Brevo has no endpoint that lists orders: the ledger's
        count of orders Brevo accepted)."""
        client = HttpClient(config["api_url"].rstrip("/"), {"api-key": config["api_key"]},
                            rate_limit=destination.RATE_LIMIT, errors=destination.ERRORS)
        try:
            _, contacts = client.send("GET", "/v3/contacts", params={"limit": 1})
            _, products = client.send("GET", "/v3/products", params={"limit": 1})
            lists = {}
            for name, list_id in sorted((config.get("lists") or {}).items()):
                _, body = client.send("GET", f"/v3/contacts/lists/{list_id}")
                lists[name] = (body or {}).get("uniqueSubscribers")
        finally:
            client.close()
        ledger = Ledger(Path(config.get("state_dir") or ".tajo") / "brevo.db")
        try:
            orders = ledger.orders_sent()
        finally:
            ledger.close()
        return {"contacts": (contacts or {}).get("count"),
                "products": (products or {}).get("count"), "orders": orders, "lists": lists}

    def write(self, config: dict[str, Any], catalog: p.ConfiguredAirbyteCatalog,
              messages: Iterable[dict[str, Any]]) -> Iterator[bytes]:
        return destination.write(config, catalog, messages)


connector = BrevoDestination(data_path("specs/brevo.json"), sandbox=sandbox_command)

#: ``destination-brevo``: the Airbyte CLI (spec, check, write).
main = airbyte_cli(connector)
