"""The Brevo destination's record path at scale (issue 17): a batch of records costs the ledger a
few statements whatever its size and however many stores it comes from (it cost seven per record,
and many stores were quadratic), a phone number is parsed once, a contact Brevo already has as
it is is not mapped or sent again. In-process (the intake, the mapper, the ledger), and one
write against the Brevo sandbox (marked e2e)."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import phonenumbers
import pytest
from brevo_fake import FakeBrevo
from conftest import BrevoBox

from connectors.brevo import destination, mapping
from connectors.brevo.contacts import ContactImporter
from connectors.brevo.events import EventOutbox
from connectors.brevo.intake import Intake
from connectors.brevo.ledger import Ledger
from connectors.brevo.mapping import DEFAULT_MAPPING, ContactMapper
from connectors.brevo.orders import OrderSender
from framework.protocol import messages as p

LATER = "2099-01-01T00:00:00Z"  # connected after every record: the backfill fires nothing


def customer(account: str, i: int, **extra: Any) -> dict[str, Any]:
    unknown = {"state": "unknown"}
    return {"platform": "bigcommerce", "account": account, "id": str(i), "deleted": False,
            "email": f"c{i}@{account}.example.com", "first_name": f"F{i}", "last_name": "L",
            "phone": "", "group": None, "created_at": "2024-01-02T00:00:00Z",
            "updated_at": "2024-01-02T00:00:00Z", "custom_fields": [], "addresses": [],
            "consent": {"email": unknown, "sms": unknown, "abandoned_cart": unknown},
            "order_count": None, "amount_spent": None, **extra}


def order(account: str, i: int, customer_id: int | None, **extra: Any) -> dict[str, Any]:
    return {"platform": "bigcommerce", "account": account, "id": str(i), "deleted": False,
            "customer_id": str(customer_id) if customer_id else None,
            "email": "billing@example.com", "counts_as_purchase": True,
            "platform_status": {"id": "10", "name": "Completed"}, "total": 10.0,
            "refunded": 0.0, "billing_address": {}, "lines": [], "coupons": [],
            "created_at": "2024-03-01T10:00:00Z", "updated_at": "2024-03-01T10:00:00Z",
            **extra}


@pytest.fixture
def ledger(storage: Callable[[str], str]) -> Iterator[Ledger]:
    """A ledger on each backend (SQLite, PostgreSQL: tests/postgres_kit.py)."""
    opened = Ledger(storage("brevo"))
    yield opened
    opened.close()


def intake_of(ledger: Ledger, connected_at: str = LATER) -> Intake:
    outbox = EventOutbox(ledger, FakeBrevo(), FakeBrevo(), lambda *_: None)
    return Intake(ledger, outbox, connected_at, "store_hash")


def take_store(intake: Intake, account: str, customers: range) -> None:
    for i in customers:
        intake.take("customer", customer(account, i), f"c{i}@{account}.example.com")
    for i in customers:  # an order for each customer, another for a guest
        intake.take("order", order(account, 10_000 + i, i))
        intake.take("order", order(account, 20_000 + i, None))


def batch_statements(tmp_path: Path, stores: int, customers: int) -> int:
    ledger = Ledger(tmp_path / f"{stores}.db")
    intake = intake_of(ledger)
    per_store = customers // stores
    for n in range(stores):
        take_store(intake, f"store{n}", range(n * per_store, (n + 1) * per_store))
    before = ledger.statements
    intake.apply()
    ledger.close()
    return ledger.statements - before


def test_a_batch_costs_a_few_statements_whatever_its_stores(tmp_path: Path) -> None:
    """1,500 records (500 customers, 1,000 orders) from 1 store, then from 50: the same
    handful of statements (the record path ran seven per record, 10,500 here)."""
    one = batch_statements(tmp_path, 1, 500)
    fifty = batch_statements(tmp_path, 50, 500)
    assert one <= 25
    assert fifty <= one + 2


def test_a_batch_counts_and_versions_as_record_by_record(ledger: Ledger) -> None:
    """Within a batch, records go in the order they came: an order read before its
    customer counts for the customer; a customer seen twice makes one event per version; an
    order created then deleted does not count; ids made of digits are found again."""
    intake = intake_of(ledger, connected_at="2000-01-01T00:00:00Z")
    intake.take("order", order("s1", 7, 1))  # before its customer
    intake.take("customer", customer("s1", 1), "c1@s1.example.com")
    intake.take("order", order("s1", 8, 1))
    intake.take("order", {**order("s1", 8, 1), "deleted": True})
    work = intake.apply()
    assert work.touched == {"c1@s1.example.com"}
    assert ledger.totals_of(["c1@s1.example.com"]) == {"c1@s1.example.com": (1, 10.0)}
    assert work.deleted == {"orders": 1}
    changed = {**customer("s1", 1), "updated_at": "2024-05-01T00:00:00Z"}
    again = {**changed, "updated_at": "2024-06-01T00:00:00Z"}
    for record in (changed, changed, again):  # the same change twice: one event
        intake.take("customer", record, "c1@s1.example.com")
    intake.apply()
    keys = [key for key, _ in ledger.outbox(100) if ":customer:" in key]
    assert keys == ["s1:customer:1:2024-01-02T00:00:00Z:customer_created",
                    "s1:customer:1:2024-05-01T00:00:00Z:customer_updated",
                    "s1:customer:1:2024-06-01T00:00:00Z:customer_updated"]
    assert ledger.customer_emails({("s1", "1")}) == {("s1", "1"): "c1@s1.example.com"}


def test_a_phone_number_is_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[str] = []
    real = phonenumbers.parse

    def counting(raw: str, region: str | None = None, *args: Any, **kwargs: Any) -> Any:
        parsed.append(raw)
        return real(raw, region, *args, **kwargs)

    monkeypatch.setattr(mapping.phonenumbers, "parse", counting)
    mapping.international_phone.cache_clear()
    countries: list[str] = []
    mapper = ContactMapper(DEFAULT_MAPPING, lambda store: countries.append(store) or "TH")
    for i in range(3):
        attributes = mapper.contact(customer("s1", i, phone="081-234-5678"))[1]
        assert attributes["SMS"] == "+66812345678"
    assert parsed == ["081-234-5678"]


def test_rows_and_orders_waiting_for_their_batch_hold_about_their_size() -> None:
    """Contact rows and orders wait serialized for a whole import or batch; orjson's bytes
    hold a block of at least 4 KB however short, so 20,000 rows of 150 bytes held 80 MB (a
    sync of 20,000 customers peaked at 211 MB instead of 139)."""
    importer = ContactImporter(FakeBrevo(), FakeBrevo(), lambda *_: None)
    sender = OrderSender(FakeBrevo(), FakeBrevo(), lambda *_: None)
    tracemalloc.start()
    try:
        for i in range(900):  # under a whole batch: everything waits
            importer.add(f"c{i}@example.com", {"FIRSTNAME": f"F{i}"}, [40])
        sender.send(((order("s1", i, None), True) for i in range(900)), 0,
                    everything=False)
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(importer.buffer) == sender.waiting_count() == 900
    assert held < 900 * 1500  # a row is about 60 bytes, an order about 500


# --- the whole writer, against the Brevo sandbox ------------------------------------------

def write(config: dict[str, Any], records: list[tuple[str, dict[str, Any]]]
          ) -> destination.BrevoWriter:
    """One ``write`` run in this process; the writer, to look at its ledger after."""
    catalog = p.ConfiguredAirbyteCatalog(streams=[p.ConfiguredAirbyteStream(
        stream=p.AirbyteStream(name=name, json_schema={"type": "object"},
                               supported_sync_modes=["full_refresh"]),
        sync_mode="full_refresh", destination_sync_mode="append")
        for name in ("commerce_customers", "commerce_orders")])
    writer = destination.BrevoWriter(config, catalog)
    messages = [{"type": "RECORD", "record": {"stream": stream, "data": data,
                                              "emitted_at": 1}} for stream, data in records]
    messages += [p.state_message(stream, {"n": 1}).model_dump(mode="json", exclude_none=True)
                 for stream in ("commerce_customers", "commerce_orders")]
    echoed = [json.loads(line) for line in writer.write(iter(messages))]
    assert len(echoed) == 2
    return writer


def store_records(stores: int, customers: int) -> list[tuple[str, dict[str, Any]]]:
    per_store = customers // stores
    records: list[tuple[str, dict[str, Any]]] = []
    for n in range(stores):
        for i in range(n * per_store, (n + 1) * per_store):
            records.append(("commerce_customers",
                            customer(f"store{n}", i, phone="02-123-4567" if i % 2 else "")))
            records.append(("commerce_orders", order(f"store{n}", 10_000 + i, i)))
    return records


@pytest.mark.e2e
def test_a_write_costs_the_ledger_the_same_from_one_store_or_fifty(
        brevo: BrevoBox, tmp_path: Path) -> None:
    """600 customers and their orders, from 1 store and then from 50 (an agency's small
    stores): a fraction of a statement per record, the same for both but for a few per store
    (its key in the ledger, looked up once a run)."""
    counts = []
    for stores in (1, 50):
        config = {"api_url": brevo.url, "api_key": brevo.key, "lists": {"all_customers": 40,
                                                                          "buyers": 41},
                  "state_dir": str(tmp_path / f"state-{stores}")}
        writer = write(config, store_records(stores, 600))
        counts.append(writer.ledger.statements)
    assert counts[0] / 1200 < 0.2
    assert counts[1] <= counts[0] * 1.1 + 6 * 50


@pytest.mark.e2e
def test_a_contact_brevo_has_as_it_is_is_not_sent_again(brevo: BrevoBox,
                                                        tmp_path: Path) -> None:
    """The same records read again (a full re-read, a webhook and a poll): no contact goes.
    A customer whose record is the same but whose totals moved goes with its totals only; a
    changed record goes in full."""
    config = {"api_url": brevo.url, "api_key": brevo.key,
              "lists": {"all_customers": 40, "buyers": 41}, "state_dir": str(tmp_path / "s")}
    records = [("commerce_customers", customer("s1", i)) for i in range(30)]
    write(config, records)
    assert len(brevo.contacts()) == 30

    def contacts_sent() -> int:
        state = brevo.state()
        return (sum(process["rows"] for process in state["processes"])
                + state["requests"]["by_path"].get("/v3/contacts", 0))

    before = contacts_sent()
    write(config, records)
    assert contacts_sent() == before
    mapped: list[str] = []
    real = ContactMapper.contact

    def counting(self: ContactMapper, record: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        mapped.append(record["id"])
        return real(self, record)

    ContactMapper.contact = counting  # type: ignore[method-assign]
    try:
        renamed = {**customer("s1", 2), "first_name": "Renamed",
                   "updated_at": "2024-02-02T00:00:00Z"}
        write(config, [*records, ("commerce_customers", renamed),
                       ("commerce_orders", order("s1", 500, 1))])
    finally:
        ContactMapper.contact = real  # type: ignore[method-assign]
    assert mapped == ["2"]  # customer 1's record is as Brevo has it: only its totals went
    assert contacts_sent() == before + 2
    contacts = brevo.contacts()
    assert contacts["c1@s1.example.com"]["attributes"]["FIRSTNAME"] == "F1"
    assert contacts["c1@s1.example.com"]["attributes"]["ORDER_COUNT"] == 1
    assert 41 in contacts["c1@s1.example.com"]["listIds"]
    assert contacts["c2@s1.example.com"]["attributes"]["FIRSTNAME"] == "Renamed"


@pytest.mark.e2e
def test_the_ledger_commits_before_each_state_and_seldom_while_states_wait(
        brevo: BrevoBox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A commit writes every page its batch touched (the ledger of a 300,000-customer
    backfill wrote 7.1 GB, committed every 5,000 records): while STATEs wait anyway (batches
    that are not full), the ledger is committed every ``COMMIT_RECORDS`` only; a STATE still
    comes out only once everything before it is committed."""
    commits: list[int] = []
    real = Ledger.commit

    def counting(self: Ledger) -> None:
        commits.append(1)
        real(self)

    monkeypatch.setattr(Ledger, "commit", counting)
    config = {"api_url": brevo.url, "api_key": brevo.key, "lists": {"all_customers": 40},
              "state_dir": str(tmp_path / "s"), "import_batch": 50, "flush_seconds": 0}
    catalog = p.ConfiguredAirbyteCatalog(streams=[p.ConfiguredAirbyteStream(
        stream=p.AirbyteStream(name="commerce_customers", json_schema={"type": "object"},
                               supported_sync_modes=["full_refresh"]),
        sync_mode="full_refresh", destination_sync_mode="append")])
    writer = destination.BrevoWriter(config, catalog)
    messages: list[dict[str, Any]] = []
    for page in range(12):  # 12 flushes of 50 customers, each with its STATE
        messages += [{"type": "RECORD", "record": {"stream": "commerce_customers", "data":
                      customer("s1", i), "emitted_at": 1}} for i in range(page * 50,
                                                                         page * 50 + 50)]
        messages.append(p.state_message("commerce_customers", {"page": page}).model_dump(
            mode="json", exclude_none=True))
    before = len(commits)
    echoed = []
    for line in writer.write(iter(messages)):
        echoed.append(json.loads(line))
        assert not writer.ledger.db.in_transaction  # all before it is committed
    assert len(echoed) == 12 and len(brevo.contacts()) == 600
    assert len(commits) - before <= 3  # 12 when each flush committed


@pytest.mark.e2e
def test_rows_in_imports_brevo_has_not_ended_stay_bounded(
        brevo: BrevoBox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Imports go as the rows fill them and their ends are learned at the end of the run, so
    every row of the run was kept until then (a backfill of 1,000,000 customers, about 500
    MB): past ``ROWS_IN_FLIGHT``, the ends are learned before the next import goes."""
    monkeypatch.setattr(destination, "ROWS_IN_FLIGHT", 100)
    config = {"api_url": brevo.url, "api_key": brevo.key, "lists": {"all_customers": 40},
              "state_dir": str(tmp_path / "s"), "import_batch": 50, "flush_seconds": 0}
    catalog = p.ConfiguredAirbyteCatalog(streams=[p.ConfiguredAirbyteStream(
        stream=p.AirbyteStream(name="commerce_customers", json_schema={"type": "object"},
                               supported_sync_modes=["full_refresh"]),
        sync_mode="full_refresh", destination_sync_mode="append")])
    writer = destination.BrevoWriter(config, catalog)
    writer.contacts.import_bytes = 4000  # an import of about 40 rows
    in_flight: list[int] = []
    real = writer.flush

    def flush() -> None:
        real()
        in_flight.append(writer.rows_in_flight())

    writer.flush = flush  # type: ignore[method-assign]
    messages: list[dict[str, Any]] = []
    for page in range(12):
        messages += [{"type": "RECORD", "record": {"stream": "commerce_customers", "data":
                      customer("s1", i), "emitted_at": 1}} for i in range(page * 50,
                                                                         page * 50 + 50)]
        messages.append(p.state_message("commerce_customers", {"page": page}).model_dump(
            mode="json", exclude_none=True))
    echoed = [json.loads(line) for line in writer.write(iter(messages))]
    assert len(echoed) == 12 and len(brevo.contacts()) == 600
    assert max(in_flight[:-1]) < 200  # about 550 before the end, kept until then
    assert len(brevo.state()["processes"]) >= 12

