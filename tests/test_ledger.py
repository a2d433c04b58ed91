"""The Brevo ledger on both backends (connectors/brevo/ledger.py over SQLite, or PostgreSQL
through framework/storage/session.py): the same writes read back the same, dead letters kept
beside it; in PostgreSQL, writers of different stores sharing one ledger neither wait for
each other nor take the same events; ``runner storage migrate`` copies a state_dir's ledger
and dead letters there."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from app.storage_cli import migrate
from connectors.brevo.ledger import (
    AccountMismatch,
    Ledger,
    dead_letter_counts,
    dead_letter_sink,
    ledger_location,
)
from connectors.brevo.storefront import SCHEMA as STOREFRONT_SCHEMA
from connectors.brevo.storefront import storefront_counts
from framework.errors import ConfigError, ConnectorError
from framework.storage import located


def test_what_a_run_writes_reads_back_the_same_on_either_backend(
        storage: Callable[[str], str]) -> None:
    ledger = Ledger(storage("brevo"))
    try:
        # Ids as the model gives them: text, digits or not.
        ledger.put_customers([("s1", "7", "ann@x.io"), ("s1", "A-8", "bob@x.io")])
        ledger.put_orders([("s1", "100", "billing@x.io", 1, 10.0, "7"),
                           ("s1", "O-2", "bob@x.io", 1, 2.5, "A-8"),
                           ("s2", "100", "ann@x.io", 1, 5.0, None)])
        assert ledger.customer_emails({("s1", "7"), ("s1", "A-8"), ("s1", "9")}) == {
            ("s1", "7"): "ann@x.io", ("s1", "A-8"): "bob@x.io"}
        # An order seen before its customer counts for the customer's email (IS NOT).
        assert ledger.rehome_orders_of({("s1", "7"): "ann@x.io"}) == {"billing@x.io"}
        assert ledger.totals_of(["ann@x.io", "bob@x.io", "nobody@x.io"]) == {
            "ann@x.io": (2, 15.0), "bob@x.io": (1, 2.5)}
        # INSERT OR REPLACE is an upsert; a None fingerprint keeps the one before.
        ledger.mark_sent_many([("ann@x.io", 1, 10.0, "f1")])
        ledger.mark_sent_many([("ann@x.io", 2, 15.0, None)])
        assert ledger.sent_of(["ann@x.io"]) == {"ann@x.io": (2, 15.0, "f1")}
        ledger.put_customer_versions([("s1", "7", "2026-01-01T00:00:00Z")])
        ledger.put_customer_versions([("s1", "7", "2026-01-02T00:00:00Z")])
        assert ledger.customer_versions({("s1", "7")}) == {("s1", "7"): "2026-01-02T00:00:00Z"}
        ledger.claim_sms_many([("+33600000001", "ann@x.io")])
        assert ledger.sms_owners({"+33600000001", "+33600000002"}) == {
            "+33600000001": "ann@x.io"}
        ledger.put_item("s1", "v1", "s1-p1-v1")
        ledger.set_stocks([("s1", "v1", 3.0), ("s1", "v2", 0.0)])
        assert ledger.stocks({("s1", "v1"), ("s1", "v2")}) == {("s1", "v1"): 3.0,
                                                               ("s1", "v2"): 0.0}
        assert ledger.product_items("s1", "p1") == ["s1-p1-v1", "s1-p1"]
        assert ledger.stale_stock() == [("s1", "v1", "s1-p1-v1", 3.0)]
        ledger.skip_cart("s1", "c1", "guest")
        assert ledger.skipped_carts() == {"guest": 1}
        assert ledger.claim_event("s1:7:2026:customer_created", "now")
        assert not ledger.claim_event("s1:7:2026:customer_created", "now")
        assert ledger.account_key("bigcommerce", "s1") == "s1"
        assert ledger.account_key("marketbox", "s1") == "marketbox-s1"
        # The storefront's tables, and the check that they exist (sqlite_master).
        assert storefront_counts(ledger.db) == {}
        ledger.db.executescript(STOREFRONT_SCHEMA)
        ledger.db.execute("INSERT INTO storefront_counts VALUES ('joined', 1)")
        assert storefront_counts(ledger.db) == {"joined": 1}
        ledger.commit()
        assert ledger.orders_sent() == 3
    finally:
        ledger.close()


def test_what_was_not_committed_is_gone_on_either_backend(
        storage: Callable[[str], str]) -> None:
    ledger = Ledger(storage("brevo"))
    ledger.put_customers([("s1", "1", "kept@x.io")])
    ledger.commit()
    ledger.put_customers([("s1", "2", "lost@x.io")])
    ledger.rollback()  # the run died before Brevo had it
    ledger.close()
    again = Ledger(storage("brevo"))
    try:
        assert again.customer_emails({("s1", "1"), ("s1", "2")}) == {("s1", "1"): "kept@x.io"}
    finally:
        again.close()


def test_a_batch_costs_the_same_statements_on_either_backend(
        storage: Callable[[str], str]) -> None:
    """Lookups go 400 keys to a statement, writes one executemany: 1,000 customers are
    one write and three lookups, in SQLite as in PostgreSQL."""
    ledger = Ledger(storage("brevo"))
    try:
        rows = [("s1", str(i), f"c{i}@x.io") for i in range(1000)]
        before = ledger.statements
        ledger.put_customers(rows)
        found = ledger.customer_emails({(store, cid) for store, cid, _ in rows})
        assert len(found) == 1000
        assert ledger.statements - before == 4
    finally:
        ledger.close()


def test_dead_letters_are_kept_beside_the_ledger_and_counted(
        storage: Callable[[str], str], tmp_path: Path) -> None:
    location = storage("brevo")
    config = {"state_dir": str(tmp_path / "state")}
    if location.startswith("postgresql://"):
        config["storage"] = location
    ledger = Ledger(ledger_location(config))
    sink = dead_letter_sink(config, ledger)
    for stream in ("contacts", "contacts", "orders"):
        sink.write(orjson.dumps({"stream": stream, "reason": "bad", "at": 1,
                                 "record": {"id": "1"}}) + b"\n")
    sink.flush()
    ledger.commit()
    sink.close()
    ledger.close()
    assert dead_letter_counts(config) == {"contacts": 2, "orders": 1}
    # The file only beside a SQLite ledger; in PostgreSQL, the ledger's table.
    assert (tmp_path / "state" / "dead-letter.jsonl").exists() == ("storage" not in config)


# --- one ledger shared in PostgreSQL -------------------------------------------------------

def event(n: int) -> dict[str, object]:
    return {"event_name": "order_placed", "identifiers": {"email_id": f"c{n}@x.io"},
            "event_properties": {"event_key": f"s1:{n}"}}


@pytest.mark.e2e
def test_two_writers_of_one_ledger_never_take_the_same_events(postgres_url: str) -> None:
    location = located(postgres_url, "brevo")
    one, other = Ledger(location), Ledger(location)
    try:
        for n in range(3):
            one.claim_event(f"s1:{n}", "now")
            one.outbox_event(f"s1:{n}", event(n))
        one.commit()
        claimed = one.outbox(10)
        assert [key for key, _ in claimed] == ["s1:0", "s1:1", "s1:2"]
        assert other.outbox(10) == []  # claimed by the first: skipped, not sent twice
        one.doubt_events(claimed)
        one.commit()  # posted now: in doubt, and locked until Brevo answers
        assert other.outbox(10) == [] and other.events_in_doubt() == []
        other.commit()
        one.db.close()  # the first writer dies before Brevo answered
        # Its batch is in doubt with nobody on it once the server has ended its session: the
        # other looks it up (and sends only what Brevo lacks, connectors/brevo/events.py).
        deadline = time.monotonic() + 10
        while not (found := other.events_in_doubt()):
            assert time.monotonic() < deadline, "the dead writer's batch stayed held"
            other.commit()
            time.sleep(0.05)
        assert [key for key, _ in found] == ["s1:0", "s1:1", "s1:2"]
        # Taken by this writer until its commit: a third one does not look them up too.
        third = Ledger(location)
        try:
            assert third.events_in_doubt() == []
        finally:
            third.close()
    finally:
        other.close()


@pytest.mark.e2e
def test_writers_of_different_stores_do_not_wait_for_each_other(postgres_url: str) -> None:
    """Rows are keyed by store or email and written with ON CONFLICT: a writer's uncommitted
    rows of its store never hold up another store's writer, and two stores' orders for one
    contact both count."""
    location = located(postgres_url, "brevo")
    one, other = Ledger(location), Ledger(location)
    try:
        other.db.conn.execute("SET lock_timeout = '2s'")  # a wait would fail, not hang
        one.connected_at("2026-01-01T00:00:00Z")
        assert other.connected_at("2026-01-02T00:00:00Z") == "2026-01-01T00:00:00Z"
        one.put_customers([("s1", "1", "ann@x.io")])
        one.put_orders([("s1", "1", "ann@x.io", 1, 10.0, "1")])
        one.claim_event("s1:1:2026:customer_created", "now")
        other.put_customers([("s2", "1", "ann@x.io")])
        other.put_orders([("s2", "1", "ann@x.io", 1, 5.0, "1")])
        other.claim_event("s2:1:2026:customer_created", "now")
        other.commit()
        one.commit()
        assert other.totals_of(["ann@x.io"]) == {"ann@x.io": (2, 15.0)}
    finally:
        one.close()
        other.close()


@pytest.mark.e2e
def test_two_writers_counting_one_contact_count_each_others_orders(postgres_url: str) -> None:
    """Two stores' writers each write an order of the same customer, uncommitted: the
    second to count waits for the first's commit, and counts both (each counting only its
    own would send Brevo ORDER_COUNT 1, twice)."""
    location = located(postgres_url, "brevo")
    one, other = Ledger(location), Ledger(location)
    try:
        one.put_orders([("s1", "1", "ann@x.io", 1, 10.0, "1")])
        other.put_orders([("s2", "1", "ann@x.io", 1, 5.0, "1")])
        assert one.totals_of(["ann@x.io"]) == {"ann@x.io": (1, 10.0)}  # its own so far
        counted: list[dict[str, tuple[int, float]]] = []
        waiting = threading.Thread(target=lambda: counted.append(
            other.totals_of(["ann@x.io"])))
        waiting.start()
        waiting.join(0.5)
        assert waiting.is_alive() and counted == []  # held until the first one commits
        one.commit()
        waiting.join(10)
        assert counted == [{"ann@x.io": (2, 15.0)}]
        other.commit()
    finally:
        one.close()
        other.close()


@pytest.mark.e2e
def test_a_ledger_whose_server_is_down_says_so_in_one_line_without_its_password() -> None:
    with pytest.raises(ConnectorError) as caught:
        Ledger("postgresql://tajo:s3cret-pw@127.0.0.1:9/tajo#brevo")
    message = str(caught.value.message)
    assert "cannot connect to PostgreSQL at postgresql://tajo@127.0.0.1:9/tajo" in message
    assert "s3cret-pw" not in message and "\n" not in message


# --- runner storage migrate ----------------------------------------------------------------

@pytest.mark.e2e
def test_migrate_copies_the_ledger_and_its_dead_letters(postgres_url: str,
                                                       tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    ledger = Ledger(state_dir / "brevo.db")
    ledger.bind_account("42", "Acme")
    ledger.put_customers([("s1", "7", "ann@x.io"), ("s1", "A-8", "bob@x.io")])
    ledger.put_orders([("s1", "100", "ann@x.io", 1, 10.0, "7")])
    ledger.mark_sent_many([("ann@x.io", 1, 10.0, "f1")])
    ledger.account_key("bigcommerce", "s1")
    for n in range(2):
        ledger.claim_event(f"s1:{n}", "now")
        ledger.outbox_event(f"s1:{n}", event(n))
    ledger.commit()
    ledger.close()
    (state_dir / "dead-letter.jsonl").write_bytes(
        b'{"stream":"contacts","reason":"bad email","at":1,"record":{}}\n'
        b'{"stream":"orders","reason":"no lines","at":2,"record":{}}\n')

    lines = migrate(state_dir, postgres_url)
    assert lines == [f"brevo.db, dead-letter.jsonl -> {postgres_url}#brevo: 2 customers, "
                     "1 orders, 2 events sent, 2 dead letters"]
    with pytest.raises(ConfigError, match="already holds"):
        migrate(state_dir, postgres_url)  # into an empty ledger only

    config = {"storage": postgres_url, "state_dir": str(tmp_path / "elsewhere")}
    copied = Ledger(ledger_location(config))
    try:
        assert copied.customer_emails({("s1", "7"), ("s1", "A-8")}) == {
            ("s1", "7"): "ann@x.io", ("s1", "A-8"): "bob@x.io"}
        assert copied.totals_of(["ann@x.io"]) == {"ann@x.io": (1, 10.0)}
        assert copied.sent_of(["ann@x.io"]) == {"ann@x.io": (1, 10.0, "f1")}
        assert copied.account_key("marketbox", "s1") == "marketbox-s1"  # s1 is taken
        assert not copied.claim_event("s1:0", "now")  # sent before: not again
        copied.bind_account("42", "Acme")  # the same Brevo account
        with pytest.raises(AccountMismatch):
            copied.bind_account("43", "Other")
        # New events queue after the copied ones.
        copied.claim_event("s1:9", "now")
        copied.outbox_event("s1:9", event(9))
        assert [key for key, _ in copied.outbox(10)] == ["s1:0", "s1:1", "s1:9"]
    finally:
        copied.close()
    assert dead_letter_counts(config) == {"contacts": 1, "orders": 1}
