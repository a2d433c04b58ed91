"""The Brevo destination's storefront part (connectors/brevo/storefront.py), in this process:
who gets an event, held and joined visitors, deduplication, the per-contact rate, and
browse_abandoned after the configured window; on both of the ledger's backends (SQLite,
PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from connectors.brevo.events import EventOutbox
from connectors.brevo.ledger import Ledger
from connectors.brevo.storefront import StorefrontEvents, epoch, storefront_counts

T0 = "2026-03-01T10:00:00Z"


def at(minutes: float) -> str:
    from framework.declarative.formats import format_utc

    return format_utc(epoch(T0) + minutes * 60)


def event(kind: str, minutes: float = 0, visitor: str = "v1", email: str | None = None,
          product: str = "111", **extra: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"platform": "shop", "account": "s1",
                              "id": f"{visitor}:{kind}:{minutes}:{product}", "type": kind,
                              "occurred_at": at(minutes), "updated_at": at(minutes),
                              "visitor_id": visitor, "email": email,
                              "customer_id": "7" if email else None,
                              "url": "https://shop.example.com/p"}
    if kind == "product_viewed":
        record["product"] = {"id": product, "name": f"Product {product}", "price": 9.5,
                             "currency": "USD"}
    if kind in ("cart_updated", "checkout_started"):
        record["cart"] = {"id": "c1", "total": 9.5, "currency": "USD",
                          "items": extra.get("items", [{"product_id": product, "quantity": 1}])}
    return record


class Part:
    def __init__(self, location: str, **settings: Any) -> None:
        self.ledger = Ledger(location)  # SQLite or PostgreSQL: the storage fixture
        outbox = EventOutbox(self.ledger, None, None, lambda *a: None)  # type: ignore[arg-type]
        self.part = StorefrontEvents(self.ledger, outbox, settings, "store_hash")

    def sent(self) -> list[tuple[str, str]]:
        return [(e["event_name"], e["identifiers"]["email_id"])
                for _, e in self.ledger.outbox(1000)]


@pytest.fixture
def part(storage: Callable[[str], str]) -> Part:
    return Part(storage("brevo"))


def test_nothing_goes_out_for_a_visitor_nobody_named(part: Part) -> None:
    part.part.record("s1", event("product_viewed"), epoch(T0))
    part.part.record("s1", event("cart_updated", 1), epoch(T0))
    assert part.sent() == []
    assert storefront_counts(part.ledger.db) == {"anonymous_held": 2}


def test_a_visitor_named_later_gets_what_they_did_before(part: Part) -> None:
    part.part.record("s1", event("product_viewed", 0, product="1"), epoch(T0))
    part.part.record("s1", event("product_viewed", 1, product="2"), epoch(T0))
    part.part.record("s1", event("checkout_started", 3, email="ann@example.com"), epoch(T0))
    assert part.sent() == [("product_viewed", "ann@example.com")] * 2 + [
        ("checkout_started", "ann@example.com")]
    # the visitor stays linked: a later anonymous event of theirs is theirs
    part.part.record("s1", event("cart_updated", 4, items=[]), epoch(T0))
    assert part.sent()[-1] == ("cart_updated", "ann@example.com")
    assert storefront_counts(part.ledger.db)["joined"] == 2


def test_duplicates_are_one_event_and_cost_no_rate(storage: Callable[[str], str]) -> None:
    part = Part(storage("brevo"), events_per_contact_per_hour=2)
    for minutes in (0, 5, 10):  # the same product, within the hour
        part.part.record("s1", event("product_viewed", minutes, email="b@example.com"),
                         epoch(T0))
    part.part.record("s1", event("product_viewed", 11, email="b@example.com", product="2"),
                     epoch(T0))
    part.part.record("s1", event("product_viewed", 12, email="b@example.com", product="3"),
                     epoch(T0))
    assert len(part.sent()) == 2
    assert storefront_counts(part.ledger.db) == {"product_viewed": 2, "duplicate": 2,
                                                 "rate_limited": 1}


def test_browse_abandoned_after_the_window_once(storage: Callable[[str], str]) -> None:
    part = Part(storage("brevo"), browse_abandoned_minutes=30)
    part.part.record("s1", event("product_viewed", 0, email="c@example.com", product="1"),
                     epoch(T0))
    part.part.record("s1", event("product_viewed", 10, email="c@example.com", product="2"),
                     epoch(T0))
    assert part.part.due(epoch(at(39))) == 0  # 30 minutes after the last view
    assert part.part.due(epoch(at(41))) == 1
    assert part.part.due(epoch(at(90))) == 0
    [(_, abandoned)] = [(k, e) for k, e in part.ledger.outbox(100)
                        if e["event_name"] == "browse_abandoned"]
    assert [p["product_id"] for p in abandoned["event_properties"]["products"]] == ["1", "2"]
    assert abandoned["event_properties"]["first_viewed_at"] == T0


@pytest.mark.parametrize("closing", [
    lambda p: p.part.record("s1", event("cart_updated", 5, email="d@example.com"), epoch(T0)),
    lambda p: p.part.record("s1", event("checkout_started", 5, email="d@example.com"),
                            epoch(T0)),
    lambda p: p.part.bought("s1", "D@example.com"),
])
def test_no_browse_abandoned_after_a_cart_checkout_or_order(storage: Callable[[str], str],
                                                            closing: Any) -> None:
    part = Part(storage("brevo"), browse_abandoned_minutes=30)
    part.part.record("s1", event("product_viewed", 0, email="d@example.com"), epoch(T0))
    closing(part)
    assert part.part.due(epoch(at(200))) == 0


def test_an_emptied_cart_does_not_close_the_browse(storage: Callable[[str], str]) -> None:
    part = Part(storage("brevo"), browse_abandoned_minutes=30)
    part.part.record("s1", event("product_viewed", 0, email="e@example.com"), epoch(T0))
    part.part.record("s1", event("cart_updated", 1, email="e@example.com", items=[]),
                     epoch(T0))
    assert part.part.due(epoch(at(200))) == 1


def test_held_events_are_bounded_and_expire(part: Part) -> None:
    for n in range(60):
        part.part.record("s1", event("product_viewed", n, product=str(n)), epoch(T0))
    counts = storefront_counts(part.ledger.db)
    assert counts["anonymous_held"] == 50 and counts["anonymous_dropped"] == 10
    part.part.due(epoch(T0) + 8 * 86400)
    assert storefront_counts(part.ledger.db)["anonymous_expired"] == 50
