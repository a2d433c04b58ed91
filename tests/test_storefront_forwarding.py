"""The forwarder and the storefront's timed event: ``browse_abandoned`` falls due at a write of
the Brevo destination, so the forwarder runs a cycle at least every ``due_every`` with no new
event (app/forward.py, app/sync.py); and a spool that fails to answer does not stop it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from app.forward import Forwarder, model_catalog
from app.sync import DUE_EVERY_S, due_every
from connectors.bigcommerce import connector
from framework.protocol import messages as p


def storefront_catalog() -> p.ConfiguredAirbyteCatalog:
    return p.ConfiguredAirbyteCatalog(streams=[
        s for s in model_catalog(connector).streams
        if s.stream.name == "commerce_storefront_events"])


class Destination:
    """Counts the writes (each is a cycle the destination sees: its timed events' chance)."""

    def __init__(self) -> None:
        self.writes = 0
        self.lock = threading.Lock()

    def write(self, config: dict[str, Any], catalog: p.ConfiguredAirbyteCatalog,
              messages: Iterable[dict[str, Any]]) -> Iterator[bytes]:
        for _ in messages:
            pass
        with self.lock:
            self.writes += 1
        yield from ()


def forwarding(tmp_path: Path, seconds: float, **options: Any) -> tuple[Destination, Forwarder]:
    """A forwarder of the storefront's events (which read no API) run for ``seconds`` with
    no event arriving and no poll due after the first."""
    destination = Destination()
    config = {"store_hash": "abc123", "access_token": "t" * 20,
              "api_url": "http://127.0.0.1:9", "spool_path": str(tmp_path / "spool.db")}
    forwarder = Forwarder(connector, config, destination, {},  # type: ignore[arg-type]
                          tmp_path / "state.db", poll_every_s=3600,
                          catalog=storefront_catalog(), **options)
    forwarder.start()
    time.sleep(seconds)
    forwarder.stop()
    return destination, forwarder


def test_without_events_the_forwarder_still_wakes_the_destination(tmp_path: Path) -> None:
    destination, _ = forwarding(tmp_path, 2.0, due_every_s=0.3)
    # the catch-up poll, then a cycle each 0.3 s (each waits settle_s, 1 s, for events)
    assert destination.writes >= 2
    idle, _ = forwarding(tmp_path / "idle", 2.0)
    assert idle.writes == 1  # the catch-up poll only: nothing else asked for a cycle


def test_a_spool_that_fails_to_answer_does_not_stop_the_forwarder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    failed = []

    def spool_end(self: Forwarder) -> int:
        if not failed:
            failed.append(1)
            raise OSError("disk I/O error")
        return 0

    monkeypatch.setattr(Forwarder, "_spool_end", spool_end)
    destination, forwarder = forwarding(tmp_path, 2.5)
    assert failed and forwarder.failures == 1
    assert destination.writes == 1  # after the pause, the catch-up poll ran


@pytest.mark.parametrize(("streams", "settings", "expected"), [
    ({"commerce_customers"}, {}, None),  # storefront events not forwarded
    ({"commerce_storefront_events"}, {}, DUE_EVERY_S),  # the default window, an hour
    ({"commerce_storefront_events"}, {"browse_abandoned_minutes": 120}, DUE_EVERY_S),
    ({"commerce_storefront_events"}, {"browse_abandoned_minutes": 1}, 30.0),
    ({"commerce_storefront_events"}, {"browse_abandoned_minutes": 0.05}, 1.5),
    ({"commerce_storefront_events"}, {"browse_abandoned_minutes": 0.001}, 1.0),
    ({"commerce_storefront_events"}, {"browse_abandoned_minutes": 0}, None),  # off
])
def test_the_forwarder_wakes_often_enough_for_browse_abandoned(
        streams: set[str], settings: dict[str, Any], expected: float | None) -> None:
    catalog = p.ConfiguredAirbyteCatalog(streams=[
        s for s in model_catalog(connector).streams if s.stream.name in streams])
    found = due_every(catalog, {"storefront": settings})
    assert found == expected
    if found is not None:  # sent within a minute of its due time
        assert found <= 60


def test_runner_status_prints_the_storefront_counts(capsys: pytest.CaptureFixture[str]) -> None:
    from app.sync_cli import print_status

    report = {"connected": True, "connectors": {}, "dead_letters": {}, "brevo": {
        "connected": True, "error": None, "contacts": 2, "orders": 1, "products": 3,
        "lists": {}, "storefront": {"duplicate": 7, "product_viewed": 4, "joined": 1,
                                    "cart_updated": 2, "browse_abandoned": 1}}}
    print_status(report)
    assert ("  storefront events: product_viewed 4, cart_updated 2, browse_abandoned 1, "
            "joined 1, duplicate 7\n") in capsys.readouterr().out
    report["brevo"]["storefront"] = {}  # no storefront event yet: no line
    print_status(report)
    assert "storefront" not in capsys.readouterr().out


def test_storefront_events_need_no_webhook() -> None:
    """Only webhooks bring carts, so a store without a cart hook is warned about; storefront
    events come from the storefront script, which no webhook replaces: no warning that
    sends the reader to `runner webhooks register` for them."""
    from types import SimpleNamespace

    from app.sync import hook_warnings

    job = SimpleNamespace(source=connector, name="bigcommerce",
                          streams={"carts", "storefront_events"})
    warnings = hook_warnings(job, {"abc123": []})  # type: ignore[arg-type]
    assert [w.split(":")[1].split()[0] for w in warnings] == ["carts"]
