"""Brevo's product catalog: products, variants and categories upserted, a few one call each
and more in batches as large as Brevo takes; partial updates (stock, deletion) carry the name
the item was sent with.

``POST /v3/products/batch`` and ``/v3/categories/batch`` take "up to 100" items; products "up
to 1000 when updateEnabled is true and the account has an increased limit" (brevo-python
5.1.0's docstrings), which ``product_batch`` may say. Both spend the 100-an-hour bucket
(general tier), so a batch that is not full waits for more items (``upsert``) unless told to
go; an item waiting is replaced by a later change of the same id (Brevo refuses a batch that
names an id twice).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from connectors.brevo.events import Api
from connectors.brevo.ledger import Ledger

log = logging.getLogger("tajo.brevo")

CATALOG_BATCH = 100  # Brevo's limit for product and category batches
RAISED_PRODUCT_BATCH = 1000  # products, on an account whose limit Brevo raised
# Up to this many products go one call each (2 a second on the general tier) rather than in
# batches, which share the 100-an-hour bucket: the live path sends a few at a time, all day.
DIRECT = 4


class CatalogSender:
    """Upserts ``products`` and ``categories`` (Brevo's names for the two kinds)."""

    def __init__(self, products_api: Api, batch_api: Api, ledger: Ledger,
                 refused: Callable[[str, str, dict[str, Any]], None],
                 product_batch: int = CATALOG_BATCH,
                 sent: Callable[[list[dict[str, Any]]], None] | None = None) -> None:
        self.products_api = products_api  # POST /v3/products (its own rate bucket)
        self.batch_api = batch_api  # POST /v3/{kind}/batch
        self.ledger = ledger  # the names items were sent with
        self.refused = refused  # (kind, reason, item) of an item Brevo did not take
        self.sent = sent  # products Brevo took
        self.sizes = {"products": product_batch, "categories": CATALOG_BATCH}
        self.waiting: dict[str, dict[str, dict[str, Any]]] = {"products": {},
                                                                "categories": {}}

    def waiting_count(self) -> int:
        return sum(len(items) for items in self.waiting.values())

    def named(self, item: dict[str, Any]) -> dict[str, Any]:
        """A partial product update with the name it was sent with: the SDK's product
        models require ``name`` on every write (its description says "mandatory in case of
        creation"; the type is what a client is held to). A ledger older than these names
        has none for items not sent since: those go without one."""
        name = self.ledger.item_name(item["id"])
        return {**item, "name": name} if name is not None else item

    def upsert(self, kind: str, items: list[dict[str, Any]], everything: bool = True) -> None:
        """Create or update ``items`` of ``kind``: whole batches go, the rest waits for the
        next call unless ``everything``. Each refused item is handed back."""
        waiting = self.waiting[kind]
        for item in items:
            key = str(item["id"])
            waiting[key] = {**waiting[key], **item} if key in waiting else item
            if len(waiting) >= self.sizes[kind]:
                self._batch(kind, list(waiting.values()))
                waiting.clear()
        if not everything or not waiting:
            return
        rest = list(waiting.values())
        waiting.clear()
        if kind == "products" and len(rest) <= DIRECT:
            for item in rest:
                status, answer = self.products_api.send("POST", "/v3/products",
                                                        json={**item, "updateEnabled": True})
                if status not in (201, 204):
                    self.refused(kind, f"Brevo refused the product (HTTP {status}: {answer})",
                                 item)
                elif self.sent is not None:
                    self.sent([item])
            return
        self._batch(kind, rest)

    def _batch(self, kind: str, part: list[dict[str, Any]]) -> None:
        status, answer = self.batch_api.send("POST", f"/v3/{kind}/batch",
                                             json={kind: part, "updateEnabled": True})
        if status == 400 and len(part) > CATALOG_BATCH:
            # product_batch says the account's limit was raised; Brevo says otherwise.
            log.warning("Brevo refused a batch of %d %s (HTTP 400: %s); sending %d at a time "
                        "(set product_batch to 100 unless Brevo raised the account's limit)",
                        len(part), kind, answer, CATALOG_BATCH)
            self.sizes[kind] = CATALOG_BATCH
            for start in range(0, len(part), CATALOG_BATCH):
                self._batch(kind, part[start:start + CATALOG_BATCH])
            return
        if status not in (200, 201, 204):
            for item in part:
                self.refused(kind, f"Brevo refused the batch (HTTP {status}: {answer})", item)
        elif kind == "products" and self.sent is not None:
            self.sent(part)
