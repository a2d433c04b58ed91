"""The Brevo destination's contact import and list membership (connectors/brevo/contacts.py,
lists.py), in-process against a fake Brevo client that holds each request to brevo-python's
models: one call each for a few, imports sized by bytes for many, a contact's rows merged while
they wait, imports in flight checked together (with growing pauses, or once the receiver heard
Brevo's call), failed imports and import reports refused row by row, attributes created once,
lists changed 150 at a time."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
import pytest
from brevo_fake import FakeBrevo

from connectors.brevo import contacts as contacts_module
from connectors.brevo.contacts import DIRECT, FIRST_PAUSE_S, ContactImporter
from connectors.brevo.lists import change_members
from framework.errors import ConnectorError

IMPORT = "/v3/contacts/import"
PROCESSES = "/v3/processes"


def rows(count: int) -> list[dict[str, Any]]:
    return [{"email": f"c{n:03}@example.com", "attributes": {"FIRSTNAME": f"C{n}"}}
            for n in range(count)]


class Notices:
    """The receiver's notices as the importer reads them: keys heard after ``after`` looks."""

    def __init__(self, after: int = 3) -> None:
        self.after, self.looks, self.asked = after, 0, []

    def url(self, key: str) -> str:
        return f"https://hooks.example.com/notify/brevo/s3cr3t/{key}"

    def seen(self, keys: Iterable[str]) -> set[str]:
        wanted = set(keys)
        self.looks += 1
        self.asked.append(wanted)
        return wanted if self.looks > self.after else set()

    def alive(self) -> bool:
        return True


def importer(brevo: FakeBrevo, **options: Any
             ) -> tuple[ContactImporter, list[tuple[str, str]], list[float]]:
    refused: list[tuple[str, str]] = []
    pauses: list[float] = []
    sender = ContactImporter(brevo, brevo, lambda row, why: refused.append((row["email"], why)),
                             sleep=pauses.append, **options)
    return sender, refused, pauses


def processes(*items: tuple[int, str]) -> tuple[int, dict[str, Any]]:
    """A page of ``GET /v3/processes`` (newest first)."""
    return 200, {"count": len(items), "processes": [
        {"id": pid, "name": "IMPORTUSER", "status": status} for pid, status in items]}


def test_a_few_contacts_go_one_call_each_and_a_refused_one_is_handed_back() -> None:
    brevo = FakeBrevo()
    brevo.answers[("POST", "/v3/contacts")] = [(201, {"id": 1}), (400, {
        "code": "invalid_parameter", "message": "bad"}), (204, None)]
    sender, refused, _ = importer(brevo)
    assert sender.send(rows(3), [7]) == {"c001@example.com"}
    bodies = brevo.posted("/v3/contacts")
    assert [b["listIds"] for b in bodies] == [[7]] * 3 and all(b["updateEnabled"] for b in bodies)
    assert refused == [("c001@example.com", "Brevo refused the contact (HTTP 400: "
                        "{'code': 'invalid_parameter', 'message': 'bad'})")]
    assert not any("Blacklisted" in key for b in bodies for key in b)


def test_a_missing_list_stops_the_run_with_what_to_do() -> None:
    brevo = FakeBrevo()
    brevo.answers[("POST", "/v3/contacts")] = [(404, {"code": "document_not_found",
                                                      "message": "List ID does not exist"})]
    sender, _, _ = importer(brevo)
    with pytest.raises(ConnectorError, match="check the list ids in lists") as caught:
        sender.send(rows(1), [99])
    assert caught.value.failure_type == "config_error"


def test_imports_are_sized_by_bytes_up_to_the_limit_not_by_rows() -> None:
    brevo = FakeBrevo()
    brevo.handlers[("POST", IMPORT)] = lambda body, _: (202, {"processId": len(
        brevo.posted(IMPORT))})
    brevo.handlers[("GET", PROCESSES)] = lambda _, __: processes(
        *((n, "completed") for n in range(len(brevo.posted(IMPORT)), 0, -1)))
    limit = 4000
    sender, refused, _ = importer(brevo, import_bytes=limit)
    given = rows(150)
    assert sender.send(given, [3, 4]) == set() and refused == []
    imports = brevo.posted(IMPORT)
    sizes = [len(orjson.dumps(body)) for body in imports]
    assert len(imports) > 1 and all(size <= limit for size in sizes)
    row_size = len(orjson.dumps(given[0])) + 1
    # Each import but the last is full: one more row would have gone over the limit.
    assert all(size + row_size > limit for size in sizes[:-1])
    assert [r["email"] for body in imports for r in body["jsonBody"]] == [
        r["email"] for r in given]
    assert imports[0]["listIds"] == [3, 4] and imports[0]["updateExistingContacts"]
    assert imports[0]["emptyContactsAttributes"] is False and "notifyUrl" not in imports[0]


def test_the_default_limit_is_under_brevos_advice() -> None:
    # Brevo: 10 MB at most, "a safe limit of around 8 MB" (read as decimal megabytes).
    assert contacts_module.IMPORT_BYTES == 8_000_000


def test_a_contacts_rows_are_merged_while_they_wait() -> None:
    brevo = FakeBrevo()
    brevo.answers[("POST", IMPORT)] = [(202, {"processId": 4}), (202, {"processId": 5})]
    brevo.answers[("GET", PROCESSES)] = [processes((5, "completed"), (4, "completed"))]
    sender, _, _ = importer(brevo)
    for row in rows(DIRECT + 1):
        sender.add(row["email"], row["attributes"], [3], None)
    # An order changes c000's totals after its row was queued: one row, the latest values,
    # in the lists of a buyer.
    sender.add("c000@example.com", {"ORDER_COUNT": 2, "TOTAL_SPENT": 30.5}, [3, 4], (2, 30.5))
    sender.submit()
    assert brevo.posted(IMPORT) == []  # not an import's worth yet
    sender.submit(everything=True)
    outcome = sender.settle()
    by_lists = {tuple(body["listIds"]): body for body in brevo.posted(IMPORT)}
    assert len(by_lists[(3,)]["jsonBody"]) == DIRECT
    buyer = by_lists[(3, 4)]
    assert buyer["jsonBody"] == [{
        "email": "c000@example.com",
        "attributes": {"FIRSTNAME": "C0", "ORDER_COUNT": 2, "TOTAL_SPENT": 30.5}}]
    assert ("c000@example.com", (2, 30.5)) in outcome.taken and len(outcome.taken) == DIRECT + 1


def test_imports_in_flight_are_checked_together_with_growing_pauses() -> None:
    brevo = FakeBrevo()
    brevo.answers[("POST", IMPORT)] = [(202, {"processId": 11}), (202, {"processId": 12})]
    brevo.answers[("GET", PROCESSES)] = [
        processes((12, "queued"), (11, "in_process")),
        processes((12, "in_process"), (11, "completed")),
        processes((12, "in_process"), (11, "completed")),
        processes((12, "completed"), (11, "completed"))]
    sender, refused, pauses = importer(brevo, import_bytes=1500)
    assert sender.send(rows(DIRECT + 20), [3]) == set() and refused == []
    checks = [(p, q) for m, p, _, q in brevo.calls if m == "GET"]
    assert len(brevo.posted(IMPORT)) == 2 and len(checks) == 4  # one check for both
    assert {p for p, _ in checks} == {PROCESSES}
    assert checks[0][1] == {"limit": 50, "offset": 0, "sort": "desc"}
    assert pauses == [FIRST_PAUSE_S, 2 * FIRST_PAUSE_S, 4 * FIRST_PAUSE_S]


def test_processes_are_paged_when_other_processes_came_between() -> None:
    brevo = FakeBrevo()
    brevo.answers[("POST", IMPORT)] = [(202, {"processId": 3})]
    others = [(n, "completed") for n in range(60, 10, -1)]  # another app's exports
    brevo.answers[("GET", PROCESSES)] = [
        (200, {"count": 53, "processes": [{"id": pid, "name": "EXPORT", "status": s}
                                          for pid, s in others]}),
        (200, {"count": 53, "processes": [{"id": 3, "name": "IMPORTUSER",
                                           "status": "completed"}]})]
    sender, _, _ = importer(brevo)
    assert sender.send(rows(DIRECT + 1), [3]) == set()
    offsets = [q["offset"] for m, _, _, q in brevo.calls if m == "GET"]
    assert offsets == [0, 50]


def test_with_the_receiver_brevo_is_asked_once_it_called() -> None:
    brevo = FakeBrevo()
    brevo.answers[("POST", IMPORT)] = [(202, {"processId": 21}), (202, {"processId": 22})]
    brevo.answers[("GET", PROCESSES)] = [processes((22, "completed"), (21, "completed"))]
    notices = Notices(after=5)
    sender, refused, pauses = importer(brevo, import_bytes=1600, notices=notices)
    assert sender.send(rows(DIRECT + 20), [3]) == set() and refused == []
    imports = brevo.posted(IMPORT)
    keys = [body["notifyUrl"].rsplit("/", 1)[1] for body in imports]
    assert all(body["notifyUrl"].startswith("https://hooks.example.com/notify/brevo/s3cr3t/")
               for body in imports)
    assert len(set(keys)) == 2 and all(len(key) == 32 for key in keys)
    assert notices.asked[0] == set(keys)
    # Nothing asked of Brevo while the calls were awaited (local reads only), then one check.
    assert [p for m, p, _, _ in brevo.calls if m == "GET"] == [PROCESSES]
    assert pauses == [contacts_module.NOTICE_TICK_S] * 5


def test_an_import_brevo_finds_too_large_goes_in_two() -> None:
    brevo = FakeBrevo()
    brevo.answers[("POST", IMPORT)] = [(413, {"code": "out_of_range", "message": "too big"}),
                                       (202, {"processId": 1}), (202, {"processId": 2})]
    brevo.answers[("GET", PROCESSES)] = [processes((2, "completed"), (1, "completed"))]
    sender, refused, _ = importer(brevo)
    assert sender.send(rows(DIRECT + 10), [3]) == set() and refused == []
    assert [len(b["jsonBody"]) for b in brevo.posted(IMPORT)] == [DIRECT + 10, 15, 15]


def test_a_failed_import_refuses_its_rows_and_the_others_go_on() -> None:
    brevo = FakeBrevo()
    brevo.answers[("POST", IMPORT)] = [(202, {"processId": 1}), (202, {"processId": 2})]
    brevo.answers[("GET", PROCESSES)] = [processes((2, "completed"), (1, "failed"))]
    sender, refused, _ = importer(brevo, import_bytes=1500)
    refused_emails = sender.send(rows(DIRECT + 20), [3])
    first, second = ([row["email"] for row in body["jsonBody"]]
                     for body in brevo.posted(IMPORT))
    assert refused_emails == set(first) and not refused_emails & set(second)
    assert len(refused) == len(first) and "ended failed" in refused[0][1]


def test_rows_a_completed_import_reports_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    class Report:
        text = "EMAIL;ERROR\nc005@example.com;invalid\n"

        def raise_for_status(self) -> None:
            pass

    asked: list[str] = []
    monkeypatch.setattr(contacts_module.requests, "get",
                        lambda url, timeout: asked.append(url) or Report())
    brevo = FakeBrevo()
    brevo.answers[("POST", IMPORT)] = [(202, {"processId": 5})]
    brevo.answers[("GET", PROCESSES)] = [(200, {"count": 1, "processes": [{
        "id": 5, "status": "completed", "name": "IMPORTUSER",
        "info": {"import": {"invalid_emails": "https://files.example/r.csv"}}}]})]
    sender, refused, _ = importer(brevo)
    assert sender.send(rows(DIRECT + 1), [3]) == {"c005@example.com"}
    assert refused == [("c005@example.com", "Brevo's import listed it in invalid_emails")]
    assert asked == ["https://files.example/r.csv"]


def test_an_import_that_never_ends_stops_the_run_after_the_wait_limit() -> None:
    brevo = FakeBrevo()
    brevo.answers[("POST", IMPORT)] = [(202, {"processId": 9})]
    brevo.handlers[("GET", PROCESSES)] = lambda _, __: processes((9, "in_process"))
    sender, _, pauses = importer(brevo)
    with pytest.raises(ConnectorError, match="have not ended") as caught:
        sender.send(rows(DIRECT + 1), [3])
    assert caught.value.failure_type == "transient_error"
    assert max(pauses) == contacts_module.LAST_PAUSE_S
    assert sum(pauses) > contacts_module.WAIT_LIMIT_S


def test_attributes_are_created_when_missing_and_asked_for_once() -> None:
    brevo = FakeBrevo()
    brevo.answers[("GET", "/v3/contacts/attributes")] = [(200, {"attributes": [
        {"name": "FIRSTNAME", "category": "normal", "type": "text"}]})]
    sender, _, _ = importer(brevo)
    sender.ensure_attributes({"FIRSTNAME": "text", "ORDER_COUNT": "float"})
    sender.ensure_attributes({"FIRSTNAME": "text", "ORDER_COUNT": "float"})
    created = [(p, b) for m, p, b, _ in brevo.calls if m == "POST"]
    assert created == [("/v3/contacts/attributes/normal/ORDER_COUNT", {"type": "float"})]


def test_an_attribute_brevo_will_not_create_is_a_config_error() -> None:
    brevo = FakeBrevo()
    brevo.answers[("GET", "/v3/contacts/attributes")] = [(200, {"attributes": []}),
                                                         (200, {"attributes": []})]
    brevo.answers[("POST", "/v3/contacts/attributes/normal/SIGNUP_DATE")] = [
        (400, {"code": "invalid_parameter", "message": "no"})]
    sender, _, _ = importer(brevo)
    with pytest.raises(ConnectorError, match="create it in Brevo"):
        sender.ensure_attributes({"SIGNUP_DATE": "date"})


def test_list_members_change_150_at_a_time() -> None:
    brevo = FakeBrevo()
    emails = [f"m{n}@example.com" for n in range(320)]
    change_members(brevo, 9, emails, "add")
    change_members(brevo, 9, [], "remove")
    bodies = brevo.posted("/v3/contacts/lists/9/contacts/add")
    assert [len(b["emails"]) for b in bodies] == [150, 150, 20]
    assert len(brevo.calls) == 3
    brevo.answers[("POST", "/v3/contacts/lists/9/contacts/remove")] = [
        (400, {"code": "invalid_parameter", "message": "no"})]
    with pytest.raises(ConnectorError, match="did not remove contacts of list 9"):
        change_members(brevo, 9, emails[:1], "remove")


def test_the_next_import_is_first_asked_about_when_the_last_one_took_to_end() -> None:
    now = [100.0]
    pauses: list[float] = []

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        now[0] += seconds

    brevo = FakeBrevo()
    brevo.handlers[("POST", IMPORT)] = lambda body, _: (202, {"processId": len(
        brevo.posted(IMPORT))})
    ends_at: dict[int, float] = {}

    def listing(*_: Any) -> tuple[int, Any]:
        return processes(*((pid, "completed" if now[0] >= at else "in_process")
                           for pid, at in sorted(ends_at.items(), reverse=True)))

    brevo.handlers[("GET", PROCESSES)] = listing
    sender = ContactImporter(brevo, brevo, lambda *_: None, sleep=sleep, clock=lambda: now[0])
    for run in range(2):
        for row in rows(DIRECT + 5):
            sender.add(f"{run}-{row['email']}", row["attributes"], [3])
        sender.submit(everything=True)
        ends_at[len(brevo.posted(IMPORT))] = now[0] + 7.0  # Brevo takes 7 s over each
        checks_before = len([c for c in brevo.calls if c[0] == "GET"])
        sender.settle()
        checks = len([c for c in brevo.calls if c[0] == "GET"]) - checks_before
        if run == 0:  # asked at once, then after 0.5, 1, 2 and 4 s
            assert checks == 5 and pauses == [0.5, 1.0, 2.0, 4.0]
        else:  # asked once, after about as long as the first took
            assert checks == 1 and 7.0 <= pauses[-1] <= 8.0


def test_rows_go_in_the_order_of_their_emails_whatever_order_they_came_in() -> None:
    # Brevo numbers new contacts as it creates them: two runs over the same records, read in
    # a different order (concurrent reads), give the same numbers.
    brevo = FakeBrevo()
    brevo.answers[("POST", IMPORT)] = [(202, {"processId": 1}), (202, {"processId": 2})]
    brevo.answers[("GET", PROCESSES)] = [processes((2, "completed"), (1, "completed"))]
    sender, _, _ = importer(brevo)
    given = rows(DIRECT + 5)
    for n, row in enumerate(reversed(given)):
        sender.add(row["email"], row["attributes"], [3, 4] if n % 2 else [3])
    sender.submit(everything=True)
    sender.settle()
    imports = brevo.posted(IMPORT)
    assert [body["listIds"] for body in imports] == [[3], [3, 4]]
    for body in imports:
        emails = [row["email"] for row in body["jsonBody"]]
        assert emails == sorted(emails)
    few = FakeBrevo()
    sender, _, _ = importer(few)
    for row in reversed(rows(3)):
        sender.add(row["email"], row["attributes"], [3])
    sender.submit(everything=True)
    assert [b["email"] for b in few.posted("/v3/contacts")] == [r["email"] for r in rows(3)]


def test_rows_in_flight_keep_their_bodies_packed_and_a_refusal_gives_them_back() -> None:
    """An import in flight keeps its rows' notes, not a body each (30,000 rows of an 8 MB
    import held 10 MB): the bodies are compressed together, and the rows Brevo refuses go to
    the dead-letter file as they were posted."""
    brevo = FakeBrevo()
    brevo.answers[("POST", IMPORT)] = [(202, {"processId": 1}), (202, {"processId": 2})]
    brevo.answers[("GET", PROCESSES)] = [processes((2, "completed"), (1, "failed"))]
    dead: list[dict[str, Any]] = []
    sender = ContactImporter(brevo, brevo, lambda row, why: dead.append(row),
                             import_bytes=1500, sleep=lambda s: None)
    for row in rows(DIRECT + 20):
        sender.add(row["email"], row["attributes"], [3], note=row["email"])
    sender.submit()
    assert sender.in_flight and all(w.body == b"" and w.note == email
                                    for process in sender.in_flight
                                    for email, w in process.rows.items())
    sender.submit(everything=True)
    outcome = sender.settle()
    first = brevo.posted(IMPORT)[0]["jsonBody"]
    assert dead == first  # byte for byte what went, from the packed bodies
    assert {email for email, _ in outcome.taken} == {
        row["email"] for body in brevo.posted(IMPORT)[1:] for row in body["jsonBody"]}


def test_rows_of_two_list_combinations_wait_one_imports_worth_in_all() -> None:
    """Each combination of lists is an import of its own; the buffer holds, after a submit,
    less than one import's worth of rows in all (it held nearly one per combination): the
    largest combination goes, though not full."""
    brevo = FakeBrevo()
    brevo.answers[("POST", IMPORT)] = [(202, {"processId": n}) for n in range(1, 40)]
    sender = ContactImporter(brevo, brevo, lambda row, why: None, import_bytes=3000,
                             sleep=lambda s: None)
    for n, row in enumerate(rows(200)):
        sender.add(row["email"], row["attributes"], [3] if n % 3 else [3, 4])
        sender.submit()
        assert sender.buffered_bytes < sender.import_bytes
    posted = brevo.posted(IMPORT)
    assert {tuple(body["listIds"]) for body in posted} == {(3,), (3, 4)}
    sizes = [len(orjson.dumps(body)) for body in posted]
    assert max(sizes) <= 3000 and min(sizes) >= 3000 // 2 - 200  # at least about half
