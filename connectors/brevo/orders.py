"""Brevo e-commerce orders: a few live orders one call each, the rest in batches as large as
Brevo takes, historical ones (older than the first sync, which must fire no automation) in
batches of their own.

``POST /v3/orders/status/batch`` takes "up to 1,000 orders per request, or a maximum payload
size of 5 MB" (developers.brevo.com/docs/import-your-orders); it spends the 100-an-hour bucket
(general tier), so a batch that is not full waits for more orders (``send``) unless told to
go. ``POST /v3/orders/status`` has a bucket of its own (5 a second) but no ``historical`` flag
(brevo-python 5.1.0's ``create_order``): a historical order can only go in a batch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from connectors.brevo.events import Api

log = logging.getLogger("tajo.brevo")

ORDER_BATCH = 1000  # orders a batch holds at most (Brevo's limit)
#: Bytes of a batch's body at most: Brevo's 5 MB read as 5,000,000 bytes (the smaller
#: reading of a megabyte).
ORDER_BATCH_BYTES = 5_000_000
# Up to this many live orders go one call each (5 a second on the general tier) rather than in
# a batch from the 100-an-hour bucket: the live path sends a few at a time, all day long.
DIRECT = 10


class OrderSender:
    """Sends order payloads (the SDK's ``Order``), handing back each one Brevo refused.
    Orders that do not fill a batch wait in it for the next ``send``."""

    def __init__(self, orders_api: Api, batch_api: Api,
                 refused: Callable[[dict[str, Any], str], None]) -> None:
        self.orders_api = orders_api  # POST /v3/orders/status (its own rate bucket)
        self.batch_api = batch_api  # POST /v3/orders/status/batch
        self.refused = refused  # (order, reason)
        # Orders waiting for their batch, by historical flag: id -> serialized order.
        self.waiting: dict[bool, dict[str, bytes]] = {True: {}, False: {}}
        self.waiting_bytes = {True: 0, False: 0}

    def waiting_count(self) -> int:
        return len(self.waiting[True]) + len(self.waiting[False])

    def send(self, orders: Iterable[tuple[dict[str, Any], bool]], live: int,
             everything: bool = True) -> None:
        """Send (payload, historical) pairs, consumed one at a time (payloads may be built
        as they are asked for); ``live`` counts those that are not historical. Full batches
        go; the rest waits unless ``everything``."""
        direct = 0 < live <= DIRECT and not self.waiting[False]
        for order, historical in orders:
            if direct and not historical:
                self.one(order)
                continue
            self._queue(order, historical)
        if everything:
            for historical in (False, True):
                if self.waiting[historical]:
                    self._batch(historical)

    def _queue(self, order: dict[str, Any], historical: bool) -> None:
        body = bytes(memoryview(orjson.dumps(order)))  # orjson's bytes hold 4 KB at least
        waiting = self.waiting[historical]
        before = waiting.pop(str(order["id"]), None)  # a newer version of a waiting order
        if before is not None:
            self.waiting_bytes[historical] -= len(before) + 1
        if waiting and (len(waiting) >= ORDER_BATCH or self.waiting_bytes[historical]
                        + len(body) + _envelope(historical) > ORDER_BATCH_BYTES):
            self._batch(historical)
        waiting[str(order["id"])] = body
        self.waiting_bytes[historical] += len(body) + 1
        if len(waiting) >= ORDER_BATCH:
            self._batch(historical)

    def one(self, order: dict[str, Any]) -> None:
        status, answer = self.orders_api.send("POST", "/v3/orders/status", json=order)
        if status not in (200, 201, 204):
            self.refused(order, f"Brevo refused the order (HTTP {status}: {answer})")

    def _batch(self, historical: bool) -> None:
        orders = list(self.waiting[historical].values())
        self.waiting[historical].clear()
        self.waiting_bytes[historical] = 0
        self.batch(orders, historical)

    def batch(self, orders: list[bytes], historical: bool) -> None:
        body = {"orders": [orjson.Fragment(order) for order in orders],
                "historical": historical}
        status, answer = self.batch_api.send("POST", "/v3/orders/status/batch", json=body)
        if status == 413 and len(orders) > 1:
            log.warning("Brevo refused a batch of %d orders as too large (HTTP 413); sending "
                        "it in two", len(orders))
            self.batch(orders[:len(orders) // 2], historical)
            self.batch(orders[len(orders) // 2:], historical)
            return
        if status not in (200, 201, 202, 204):
            for order in orders:
                self.refused(orjson.loads(order),
                             f"Brevo refused the order batch (HTTP {status}: {answer})")


def _envelope(historical: bool) -> int:
    """Bytes of a batch's body besides its orders."""
    return len(orjson.dumps({"orders": [], "historical": historical}))
