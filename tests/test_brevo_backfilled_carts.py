"""A platform whose carts are read, not only sent by webhook (Shopify's abandoned checkouts),
backfills them on its first sync: like the backfill's orders, such a cart fires no automation
(it was left before the destination's first run), while a cart left later does. In-process:
the intake and the ledger, on each ledger backend."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from brevo_fake import FakeBrevo

from connectors.brevo.events import EventOutbox
from connectors.brevo.intake import Intake
from connectors.brevo.ledger import Ledger

CONNECTED = "2026-06-01T00:00:00Z"  # the destination's first run
EMAIL = "ada@example.com"


@pytest.fixture
def ledger(storage: Callable[[str], str]) -> Iterator[Ledger]:
    opened = Ledger(storage("brevo"))
    yield opened
    opened.close()


def shopper() -> dict[str, Any]:
    yes = {"state": "subscribed"}
    return {"platform": "shopify", "account": "shop1", "id": "1", "deleted": False,
            "email": EMAIL, "first_name": "Ada", "last_name": "L", "phone": "",
            "group": None, "created_at": "2024-01-02T00:00:00Z",
            "updated_at": "2024-01-02T00:00:00Z", "custom_fields": [], "addresses": [],
            "consent": {"email": yes, "sms": {"state": "unknown"}, "abandoned_cart": yes},
            "order_count": 0, "amount_spent": 0.0}


def cart(cart_id: str, updated_at: str) -> dict[str, Any]:
    return {"platform": "shopify", "account": "shop1", "id": cart_id, "deleted": False,
            "state": "abandoned", "customer_id": "1", "email": EMAIL, "currency": "USD",
            "total": 20.0, "items": [], "created_at": updated_at, "updated_at": updated_at,
            "recovery_url": f"https://shop1.myshopify.com/{cart_id}/recover", "cart_url": None}


def sent(ledger: Ledger) -> list[tuple[str, str]]:
    return [(event["event_name"], event["event_properties"]["cart_id"])
            for _, event in ledger.outbox(100)]


def test_a_cart_left_before_the_first_run_joins_the_list_but_fires_no_event(
        ledger: Ledger) -> None:
    intake = Intake(ledger, EventOutbox(ledger, FakeBrevo(), FakeBrevo(), lambda *_: None),
                    CONNECTED, "store_hash")
    intake.take("customer", shopper(), EMAIL)
    intake.apply()
    intake.take("cart", cart("old", "2025-03-02T03:05:56Z"))
    intake.take("cart", cart("new", "2026-06-02T10:00:00Z"))
    work = intake.apply()
    assert work.cart_add == {EMAIL}  # on the abandoned-cart list all the same
    assert sent(ledger) == [("cart_abandoned", "new")]
    # Read again (an incremental read starts at its cursor's second): still no event.
    intake.take("cart", cart("old", "2025-03-02T03:05:56Z"))
    intake.apply()
    assert sent(ledger) == [("cart_abandoned", "new")]
