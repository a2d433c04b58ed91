"""The Brevo destination's event outbox (connectors/brevo/events.py), in-process against a fake
Brevo client that holds each request to brevo-python's models: claimed once, sent in batches,
207 answers with and without indexes, answers that never came, events left in doubt by a run
that died."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from brevo_fake import FakeBrevo

from connectors.brevo.events import EVENT_BATCH, EventOutbox
from connectors.brevo.ledger import Ledger
from framework.errors import ConnectorError

BATCH = "/v3/events/batch"


class Brevo(FakeBrevo):
    """Keeps the events it takes, and lists them as ``GET /v3/events`` does."""

    def __init__(self) -> None:
        super().__init__()
        self.held: list[dict[str, Any]] = []
        self.handlers[("POST", BATCH)] = self.take
        self.handlers[("GET", "/v3/events")] = self.listing

    def take(self, body: Any, _: dict[str, Any]) -> tuple[int, Any]:
        self.held += body["events"]
        return 204, None

    def listing(self, _: Any, params: dict[str, Any]) -> tuple[int, Any]:
        found = [e for e in self.held if e["event_name"] == params["event_name"]]
        return 200, {"events": [{"event_name": e["event_name"],
                                 "event_properties": e["event_properties"]} for e in found]}

    def keys(self) -> list[str]:
        return sorted(e["event_properties"]["event_key"] for e in self.held)


@pytest.fixture
def ledger(storage: Callable[[str], str]) -> Iterator[Ledger]:
    """A ledger on each backend (SQLite, PostgreSQL: tests/postgres_kit.py)."""
    opened = Ledger(storage("brevo"))
    yield opened
    opened.close()


def outbox(ledger: Ledger, brevo: FakeBrevo) -> tuple[EventOutbox, list[tuple[str, str]]]:
    refused: list[tuple[str, str]] = []
    box = EventOutbox(ledger, brevo, brevo, lambda key, _, reason: refused.append((key, reason)))
    return box, refused


def event(name: str = "order_placed", **properties: Any) -> dict[str, Any]:
    return {"event_name": name, "identifiers": {"email_id": "ann@example.com"},
            "event_date": "2026-01-02T03:04:05Z", "event_properties": properties}


def test_an_event_is_queued_once_and_its_empty_properties_left_out(ledger: Ledger) -> None:
    brevo = Brevo()
    box, refused = outbox(ledger, brevo)
    box.queue("a:1", event(amount=3.5, currency=None))
    box.queue("a:1", event(amount=9.0))  # the same change seen again
    box.send()
    assert brevo.held == [{**event(amount=3.5), "event_properties": {
        "amount": 3.5, "event_key": "a:1"}}]
    assert refused == [] and ledger.outbox(10) == [] and ledger.events_in_doubt() == []


def test_events_go_in_batches_of_at_most_a_hundred(ledger: Ledger) -> None:
    brevo = Brevo()
    box, _ = outbox(ledger, brevo)
    for n in range(EVENT_BATCH * 2 + 5):
        box.queue(f"k:{n:04}", event(n=n))
    box.send()
    assert [len(b["events"]) for b in brevo.posted(BATCH)] == [100, 100, 5]
    assert len(set(brevo.keys())) == 205


def test_a_207_refuses_the_events_it_names_and_releases_them(ledger: Ledger) -> None:
    brevo = Brevo()
    brevo.answers[("POST", BATCH)] = [lambda body: (207, {
        "processed_events": 2, "failed_events": 1,
        "errors": [{"eventIndex": [1], "message": "bad identifier"}]})]
    box, refused = outbox(ledger, brevo)
    for key in ("k:1", "k:2", "k:3"):
        box.queue(key, event())
    box.send()
    assert refused == [("k:2", "Brevo refused the event: bad identifier")]
    assert ledger.events_in_doubt() == []
    assert ledger.claim_event("k:2", "now") and not ledger.claim_event("k:1", "now")


def test_a_207_without_indexes_refuses_the_events_brevo_lacks(ledger: Ledger) -> None:
    brevo = Brevo()

    def half(body: Any) -> tuple[int, Any]:
        brevo.held += body["events"][:1]  # took the first, not the second
        return 207, {"processed_events": 1, "failed_events": 1,
                     "errors": [{"message": "invalid property"}]}

    brevo.answers[("POST", BATCH)] = [half]
    box, refused = outbox(ledger, brevo)
    box.queue("k:1", event())
    box.queue("k:2", event())
    box.send()
    assert refused == [("k:2", "Brevo refused the event: invalid property")]


def test_an_answer_that_never_came_sends_only_what_brevo_lacks(ledger: Ledger) -> None:
    brevo = Brevo()

    def lost(body: Any) -> tuple[int, Any]:
        brevo.held += body["events"]  # Brevo took them; the answer was lost on the way
        raise ConnectorError("Brevo did not answer: timeout", "transient_error")

    brevo.answers[("POST", BATCH)] = [lost]
    box, refused = outbox(ledger, brevo)
    box.queue("k:1", event())
    box.queue("k:2", event("order_updated"))
    box.send()
    assert brevo.keys() == ["k:1", "k:2"]  # once each
    assert len(brevo.posted(BATCH)) == 1 and refused == []


def test_events_left_in_doubt_by_a_dead_run_are_looked_up_then_sent(ledger: Ledger) -> None:
    brevo = Brevo()
    brevo.held.append({**event(), "event_properties": {"event_key": "k:1"}})
    box, _ = outbox(ledger, brevo)
    box.queue("k:1", event())
    box.queue("k:2", event())
    ledger.doubt_events(ledger.outbox(10))  # the dead run got as far as posting them
    ledger.commit()
    box.send()
    assert brevo.keys() == ["k:1", "k:2"]
    assert [e["event_properties"]["event_key"] for b in brevo.posted(BATCH)
            for e in b["events"]] == ["k:2"]


def test_a_refused_batch_refuses_each_event(ledger: Ledger) -> None:
    brevo = Brevo()
    brevo.answers[("POST", BATCH)] = [(400, {"code": "invalid_parameter", "message": "no"})]
    box, refused = outbox(ledger, brevo)
    box.queue("k:1", event())
    box.queue("k:2", event())
    box.send()
    assert [key for key, _ in refused] == ["k:1", "k:2"]
    assert "HTTP 400" in refused[0][1]
