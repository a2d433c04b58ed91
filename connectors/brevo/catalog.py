"""Brevo's product catalog: products, variants and categories upserted, a few one call each
and more in batches; partial updates (stock, deletion) carry the name the item was sent with."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connectors.brevo.events import Api
from connectors.brevo.ledger import Ledger

CATALOG_BATCH = 100  # Brevo's limit for product and category batches
# Up to this many products go one call each (2 a second on the general tier) rather than in
# batches, which share the 100-an-hour bucket: the live path sends a few at a time, all day.
DIRECT = 4


class CatalogSender:
    """Upserts ``products`` and ``categories`` (Brevo's names for the two kinds)."""

    def __init__(self, products_api: Api, batch_api: Api, ledger: Ledger,
                 refused: Callable[[str, str, dict[str, Any]], None]) -> None:
        self.products_api = products_api  # POST /v3/products (its own rate bucket)
        self.batch_api = batch_api  # POST /v3/{kind}/batch
        self.ledger = ledger  # the names items were sent with
        self.refused = refused  # (kind, reason, item) of an item Brevo did not take

    def named(self, item: dict[str, Any]) -> dict[str, Any]:
        """A partial product update with the name it was sent with: the SDK's product
        models require ``name`` on every write (its description says "mandatory in case of
        creation"; the type is what a client is held to). A ledger older than these names
        has none for items not sent since: those go without one."""
        name = self.ledger.item_name(item["id"])
        return {**item, "name": name} if name is not None else item

    def upsert(self, kind: str, items: list[dict[str, Any]]) -> None:
        """Create or update ``items`` of ``kind``; each refused item is handed back."""
        if kind == "products" and len(items) <= DIRECT:
            for item in items:
                status, answer = self.products_api.send("POST", "/v3/products",
                                                        json={**item, "updateEnabled": True})
                if status not in (201, 204):
                    self.refused(kind, f"Brevo refused the product (HTTP {status}: {answer})",
                                 item)
            return
        for start in range(0, len(items), CATALOG_BATCH):
            part = items[start:start + CATALOG_BATCH]
            status, answer = self.batch_api.send("POST", f"/v3/{kind}/batch",
                                                 json={kind: part, "updateEnabled": True})
            if status not in (200, 201, 204):
                for item in part:
                    self.refused(kind, f"Brevo refused the batch (HTTP {status}: {answer})",
                                 item)
