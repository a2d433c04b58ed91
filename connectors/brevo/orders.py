"""Brevo e-commerce orders: a few live orders one call each, the rest in batches, historical
ones (older than the first sync, which must fire no automation) in batches of their own."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from connectors.brevo.events import Api

# Brevo documents no maximum for /v3/orders/status/batch; it allows 100 calls an hour there
# (general tier), so batches are as large as is reasonable.
ORDER_BATCH = 1000
# Up to this many live orders go one call each (5 a second on the general tier) rather than in
# a batch from the 100-an-hour bucket: the live path sends a few at a time, all day long.
DIRECT = 10


class OrderSender:
    """Sends order payloads (the SDK's ``Order``), handing back each one Brevo refused."""

    def __init__(self, orders_api: Api, batch_api: Api,
                 refused: Callable[[dict[str, Any], str], None]) -> None:
        self.orders_api = orders_api  # POST /v3/orders/status (its own rate bucket)
        self.batch_api = batch_api  # POST /v3/orders/status/batch
        self.refused = refused  # (order, reason)

    def send(self, orders: Iterable[tuple[dict[str, Any], bool]], live: int) -> None:
        """Send (payload, historical) pairs, consumed one at a time (payloads may be built
        as they are asked for); ``live`` counts those that are not historical."""
        direct = 0 < live <= DIRECT
        batches: dict[bool, list[dict[str, Any]]] = {True: [], False: []}
        for order, historical in orders:
            if direct and not historical:
                self.one(order)
                continue
            batches[historical].append(order)
            if len(batches[historical]) >= ORDER_BATCH:
                self.batch(batches[historical], historical)
                batches[historical] = []
        for historical, rest in batches.items():
            if rest:
                self.batch(rest, historical)

    def one(self, order: dict[str, Any]) -> None:
        status, answer = self.orders_api.send("POST", "/v3/orders/status", json=order)
        if status not in (200, 201, 204):
            self.refused(order, f"Brevo refused the order (HTTP {status}: {answer})")

    def batch(self, orders: list[dict[str, Any]], historical: bool) -> None:
        body = {"orders": orders, "historical": historical}
        status, answer = self.batch_api.send("POST", "/v3/orders/status/batch", json=body)
        if status not in (200, 201, 202, 204):
            for order in orders:
                self.refused(order, f"Brevo refused the order batch (HTTP {status}: {answer})")
