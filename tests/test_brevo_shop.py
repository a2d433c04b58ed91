"""The Brevo destination's orders and catalog senders (connectors/brevo/orders.py, catalog.py),
in-process against a fake Brevo client that holds each request to brevo-python's models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from brevo_fake import FakeBrevo

from connectors.brevo import orders as orders_module
from connectors.brevo.catalog import CATALOG_BATCH, CatalogSender
from connectors.brevo.catalog import DIRECT as DIRECT_PRODUCTS
from connectors.brevo.ledger import Ledger
from connectors.brevo.orders import DIRECT as DIRECT_ORDERS
from connectors.brevo.orders import ORDER_BATCH, ORDER_BATCH_BYTES, OrderSender

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
    # A full batch; the one left over goes on its own (the products bucket, not the
    # 100-an-hour one that batches spend).
    assert [len(b["products"]) for b in brevo.posted("/v3/products/batch")] == [100]
    assert len(brevo.posted("/v3/products")) == DIRECT_PRODUCTS + 1
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


def test_order_batches_are_as_large_as_brevo_takes_and_wait_to_fill() -> None:
    # Brevo: "up to 1,000 orders per request, or a maximum payload size of 5 MB".
    assert (ORDER_BATCH, ORDER_BATCH_BYTES) == (1000, 5_000_000)
    brevo = FakeBrevo()
    sender, refused = orders(brevo)
    sender.send(((order(n), True) for n in range(1500)), 0, everything=False)
    assert [len(b["orders"]) for b in brevo.posted("/v3/orders/status/batch")] == [1000]
    assert sender.waiting_count() == 500  # not a batch's worth: waits for the next send
    # A newer version of a waiting order takes its place in the batch.
    sender.send(iter([({**order(1400), "status": "Refunded"}, True)]), 0, everything=False)
    assert sender.waiting_count() == 500
    sender.send(iter([]), 0)  # everything
    last = brevo.posted("/v3/orders/status/batch")[-1]
    assert len(last["orders"]) == 500 and last["historical"] is True
    assert [o["status"] for o in last["orders"] if o["id"] == "s-1400"] == ["Refunded"]
    assert refused == [] and sender.waiting_count() == 0


def test_order_batches_stay_under_the_byte_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    limit = 20_000  # Brevo's 5 MB, scaled down (the fake checks every order against the SDK)
    monkeypatch.setattr(orders_module, "ORDER_BATCH_BYTES", limit)
    brevo = FakeBrevo()
    sender, _ = orders(brevo)
    lines = [{"productId": str(n), "price": 1.5, "quantity": 1} for n in range(20)]
    big = [{**order(n), "products": lines} for n in range(100)]
    sender.send(((o, True) for o in big), 0)
    batches = brevo.posted("/v3/orders/status/batch")
    sizes = [len(orjson.dumps(b)) for b in batches]
    assert len(batches) > 1 and [o["id"] for b in batches for o in b["orders"]] == [
        o["id"] for o in big]
    assert all(size <= limit for size in sizes)
    one = len(orjson.dumps(big[0])) + 1
    assert all(size + one > limit for size in sizes[:-1])


def test_an_order_batch_brevo_finds_too_large_goes_in_two() -> None:
    brevo = FakeBrevo()
    brevo.answers[("POST", "/v3/orders/status/batch")] = [
        (413, {"code": "out_of_range", "message": "too big"})]
    sender, refused = orders(brevo)
    sender.send(((order(n), True) for n in range(40)), 0)
    assert [len(b["orders"]) for b in brevo.posted("/v3/orders/status/batch")] == [40, 20, 20]
    assert refused == []


def test_catalog_batches_wait_to_fill_and_say_which_products_went(ledger: Ledger) -> None:
    brevo = FakeBrevo()
    went: list[str] = []
    sender = CatalogSender(brevo, brevo, ledger, lambda *_: None,
                           sent=lambda items: went.extend(i["id"] for i in items))
    sender.upsert("products", [product(n) for n in range(150)], everything=False)
    assert [len(b["products"]) for b in brevo.posted("/v3/products/batch")] == [100]
    assert sender.waiting_count() == 50 and len(went) == 100
    # A stock change of a waiting product is merged into it (Brevo refuses an id twice).
    sender.upsert("products", [{"id": "s-120", "stock": 0}], everything=False)
    sender.upsert("products", [], everything=True)
    last = brevo.posted("/v3/products/batch")[-1]["products"]
    assert len(last) == 50 and [p for p in last if p["id"] == "s-120"] == [
        {"id": "s-120", "name": "P120", "price": 1.0, "stock": 0}]
    assert len(went) == 150


def test_a_raised_product_limit_is_used_and_falls_back_when_brevo_refuses(
        ledger: Ledger) -> None:
    brevo = FakeBrevo()
    sender = CatalogSender(brevo, brevo, ledger, lambda *_: None, product_batch=1000)
    sender.upsert("products", [product(n) for n in range(1000)])
    assert [len(b["products"]) for b in brevo.posted("/v3/products/batch")] == [1000]
    brevo.answers[("POST", "/v3/products/batch")] = [
        (400, {"code": "out_of_range", "message": "A maximum of 100 products"})]
    sender.upsert("products", [product(n) for n in range(1000, 2000)])
    sizes = [len(b["products"]) for b in brevo.posted("/v3/products/batch")]
    assert sizes == [1000, 1000] + [100] * 10 and sender.sizes["products"] == 100
