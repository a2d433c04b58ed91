"""The Brevo destination's orders and catalog senders (connectors/brevo/orders.py, catalog.py),
in-process against a fake Brevo client that holds each request to brevo-python's models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from brevo_fake import FakeBrevo

from connectors.brevo.catalog import CATALOG_BATCH, CatalogSender
from connectors.brevo.catalog import DIRECT as DIRECT_PRODUCTS
from connectors.brevo.ledger import Ledger
from connectors.brevo.orders import DIRECT as DIRECT_ORDERS
from connectors.brevo.orders import OrderSender

REFUSED = (400, {"code": "invalid_parameter", "message": "no"})


def order(n: int) -> dict[str, Any]:
    return {"id": f"s-{n}", "createdAt": "2026-01-01T00:00:00Z",
            "updatedAt": "2026-01-01T00:00:00Z", "status": "Shipped", "amount": 10.0,
            "products": [{"productId": "1", "price": 10.0, "quantity": 1}]}


def orders(brevo: FakeBrevo) -> tuple[OrderSender, list[tuple[str, str]]]:
    refused: list[tuple[str, str]] = []
    return OrderSender(brevo, brevo, lambda o, why: refused.append((o["id"], why))), refused


def test_a_few_live_orders_go_one_call_each_and_historical_ones_in_a_batch() -> None:
    brevo = FakeBrevo()
    sender, refused = orders(brevo)
    pairs = [(order(n), False) for n in range(DIRECT_ORDERS)] + [(order(99), True)]
    sender.send(iter(pairs), DIRECT_ORDERS)
    assert len(brevo.posted("/v3/orders/status")) == DIRECT_ORDERS
    assert brevo.posted("/v3/orders/status/batch") == [{"orders": [order(99)],
                                                        "historical": True}]
    assert refused == []


def test_many_orders_go_in_batches_apart_by_history() -> None:
    brevo = FakeBrevo()
    sender, _ = orders(brevo)
    pairs = [(order(n), n % 2 == 0) for n in range(2 * DIRECT_ORDERS + 2)]
    sender.send(iter(pairs), DIRECT_ORDERS + 1)
    batches = brevo.posted("/v3/orders/status/batch")
    assert brevo.posted("/v3/orders/status") == []
    assert sorted((b["historical"], len(b["orders"])) for b in batches) == [
        (False, DIRECT_ORDERS + 1), (True, DIRECT_ORDERS + 1)]


def test_refused_orders_are_handed_back_one_by_one() -> None:
    brevo = FakeBrevo()
    brevo.answers[("POST", "/v3/orders/status")] = [REFUSED]
    brevo.answers[("POST", "/v3/orders/status/batch")] = [REFUSED]
    sender, refused = orders(brevo)
    sender.send(iter([(order(1), False), (order(2), True), (order(3), True)]), 1)
    assert [o for o, _ in refused] == ["s-1", "s-2", "s-3"]
    assert "the order (HTTP 400" in refused[0][1] and "order batch (HTTP 400" in refused[1][1]


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    opened = Ledger(tmp_path / "brevo.db")
    yield opened
    opened.close()


def catalog(brevo: FakeBrevo, ledger: Ledger) -> tuple[CatalogSender, list[tuple[str, str]]]:
    refused: list[tuple[str, str]] = []
    return CatalogSender(brevo, brevo, ledger,
                         lambda kind, _, item: refused.append((kind, item["id"]))), refused


def product(n: int) -> dict[str, Any]:
    return {"id": f"s-{n}", "name": f"P{n}", "price": 1.0}


def test_a_few_products_go_one_call_each_more_in_batches_of_a_hundred(ledger: Ledger) -> None:
    brevo = FakeBrevo()
    sender, refused = catalog(brevo, ledger)
    sender.upsert("products", [product(n) for n in range(DIRECT_PRODUCTS)])
    assert len(brevo.posted("/v3/products")) == DIRECT_PRODUCTS
    sender.upsert("products", [product(n) for n in range(CATALOG_BATCH + 1)])
    sender.upsert("categories", [{"id": "s-1", "name": "Shoes", "isDeleted": False}])
    assert [len(b["products"]) for b in brevo.posted("/v3/products/batch")] == [100, 1]
    assert brevo.posted("/v3/categories/batch")[0]["updateEnabled"] is True
    assert refused == []


def test_refused_items_are_handed_back_with_their_kind(ledger: Ledger) -> None:
    brevo = FakeBrevo()
    brevo.answers[("POST", "/v3/products")] = [REFUSED]
    brevo.answers[("POST", "/v3/categories/batch")] = [REFUSED]
    sender, refused = catalog(brevo, ledger)
    sender.upsert("products", [product(1)])
    sender.upsert("categories", [{"id": "s-1", "name": "A"}, {"id": "s-2", "name": "B"}])
    assert refused == [("products", "s-1"), ("categories", "s-1"), ("categories", "s-2")]


def test_a_partial_update_carries_the_name_the_item_was_sent_with(ledger: Ledger) -> None:
    brevo = FakeBrevo()
    sender, _ = catalog(brevo, ledger)
    ledger.put_item_name("s-1", "Red shoe")
    assert sender.named({"id": "s-1", "stock": 3}) == {"id": "s-1", "stock": 3,
                                                      "name": "Red shoe"}
    assert sender.named({"id": "s-2", "stock": 3}) == {"id": "s-2", "stock": 3}
