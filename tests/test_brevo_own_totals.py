"""A platform that keeps its customers' totals (Shopify's numberOfOrders and amountSpent)
counts by its own rule: a cancelled order still counts for Shopify, not for this destination's.
When only a customer's orders change, Brevo keeps the platform's figures (the platform changes
them with the customer record), whether the customer's row went in an earlier run or is still
in flight in this one. The writer in process, against the Brevo sandbox."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import BrevoBox

from connectors.brevo import destination
from framework.protocol import messages as p

pytestmark = pytest.mark.e2e

STREAMS = ("commerce_customers", "commerce_orders")
EMAIL = "ada@example.com"


def customer() -> dict[str, Any]:
    unknown = {"state": "unknown"}
    return {"platform": "shopify", "account": "shop1", "id": "1", "deleted": False,
            "email": EMAIL, "first_name": "Ada", "last_name": "L", "phone": "",
            "group": None, "created_at": "2024-01-02T00:00:00Z",
            "updated_at": "2024-01-02T00:00:00Z", "custom_fields": [], "addresses": [],
            "consent": {"email": unknown, "sms": unknown, "abandoned_cart": unknown},
            "order_count": 2, "amount_spent": 80.0}  # Shopify's: one order cancelled


def order(i: int, counts: bool, updated_at: str) -> dict[str, Any]:
    return {"platform": "shopify", "account": "shop1", "id": str(i), "deleted": False,
            "customer_id": "1", "email": EMAIL, "counts_as_purchase": counts,
            "platform_status": {"id": "PAID", "name": "PAID, FULFILLED"}, "total": 40.0,
            "refunded": 0.0, "billing_address": {}, "lines": [], "coupons": [],
            "created_at": "2024-03-01T10:00:00Z", "updated_at": updated_at}


def write(config: dict[str, Any], pages: list[list[tuple[str, dict[str, Any]]]]) -> None:
    """One ``write`` run in this process, a STATE after each page (a flush each)."""
    catalog = p.ConfiguredAirbyteCatalog(streams=[p.ConfiguredAirbyteStream(
        stream=p.AirbyteStream(name=name, json_schema={"type": "object"},
                               supported_sync_modes=["full_refresh"]),
        sync_mode="full_refresh", destination_sync_mode="append") for name in STREAMS])
    messages: list[dict[str, Any]] = []
    for n, page in enumerate(pages):
        messages += [{"type": "RECORD", "record": {"stream": stream, "data": data,
                                                   "emitted_at": 1}} for stream, data in page]
        messages += [p.state_message(stream, {"page": n}).model_dump(mode="json",
                                                                     exclude_none=True)
                     for stream in STREAMS]
    echoed = [json.loads(line) for line in destination.BrevoWriter(config, catalog).write(
        iter(messages))]
    assert len(echoed) == 2 * len(pages)


def figures(brevo: BrevoBox) -> tuple[Any, Any]:
    attributes = brevo.contacts()[EMAIL]["attributes"]
    return attributes.get("ORDER_COUNT"), attributes.get("TOTAL_SPENT")


def test_a_change_of_orders_alone_leaves_the_platform_s_totals(brevo: BrevoBox,
                                                                tmp_path: Path) -> None:
    config = {"api_url": brevo.url, "api_key": brevo.key,
              "lists": {"all_customers": 40, "buyers": 41}, "flush_seconds": 0,
              "state_dir": str(tmp_path / "state")}
    # In one run: the customer, then (a later flush, its row maybe still in flight) its
    # orders, one of them cancelled.
    write(config, [[("commerce_customers", customer())],
                   [("commerce_orders", order(10, True, "2024-03-01T10:00:00Z")),
                    ("commerce_orders", order(11, False, "2024-03-02T10:00:00Z"))]])
    assert figures(brevo) == (2, 80.0)
    # A later run: another order is cancelled; the customer record does not come.
    write(config, [[("commerce_orders", order(10, False, "2024-04-01T10:00:00Z"))]])
    assert figures(brevo) == (2, 80.0)
    assert 41 not in brevo.contacts()[EMAIL]["listIds"]  # no order counts by the rule
