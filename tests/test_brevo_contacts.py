"""The Brevo destination's contact import and list membership (connectors/brevo/contacts.py,
lists.py), in-process against a fake Brevo client that holds each request to brevo-python's
models: one call each for a few, imports in chunks for many, failed imports and import reports
refused row by row, attributes created once, lists changed 150 at a time."""

from __future__ import annotations

from typing import Any

import pytest
from brevo_fake import FakeBrevo

from connectors.brevo import contacts as contacts_module
from connectors.brevo.contacts import DIRECT, ContactImporter
from connectors.brevo.lists import change_members
from framework.errors import ConnectorError

IMPORT = "/v3/contacts/import"


def rows(count: int) -> list[dict[str, Any]]:
    return [{"email": f"c{n:03}@example.com", "attributes": {"FIRSTNAME": f"C{n}"}}
            for n in range(count)]


def importer(brevo: FakeBrevo, batch: int = 5000
             ) -> tuple[ContactImporter, list[tuple[str, str]]]:
    refused: list[tuple[str, str]] = []
    return ContactImporter(brevo, brevo, lambda row, why: refused.append((row["email"], why)),
                           batch), refused


def test_a_few_contacts_go_one_call_each_and_a_refused_one_is_handed_back() -> None:
    brevo = FakeBrevo()
    brevo.answers[("POST", "/v3/contacts")] = [(201, {"id": 1}), (400, {
        "code": "invalid_parameter", "message": "bad"}), (204, None)]
    sender, refused = importer(brevo)
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
    sender, _ = importer(brevo)
    with pytest.raises(ConnectorError, match="check the list ids in lists") as caught:
        sender.send(rows(1), [99])
    assert caught.value.failure_type == "config_error"


def test_many_contacts_are_imported_in_chunks_each_polled_to_its_end() -> None:
    brevo = FakeBrevo()
    brevo.answers[("POST", IMPORT)] = [(202, {"processId": 11}), (202, {"processId": 12})]
    brevo.answers[("GET", "/v3/processes/11")] = [(200, {"id": 11, "status": "in_process",
                                                         "name": "import"}),
                                                  (200, {"id": 11, "status": "completed",
                                                         "name": "import"})]
    brevo.answers[("GET", "/v3/processes/12")] = [(200, {"id": 12, "status": "completed",
                                                         "name": "import"})]
    sender, refused = importer(brevo, batch=30)
    assert sender.send(rows(DIRECT + 25), [3, 4]) == set()
    imports = brevo.posted(IMPORT)
    assert [len(b["jsonBody"]) for b in imports] == [30, 15]
    assert imports[0]["listIds"] == [3, 4] and imports[0]["updateExistingContacts"]
    assert imports[0]["emptyContactsAttributes"] is False and refused == []
    polls = [p for m, p, _, _ in brevo.calls if m == "GET"]
    assert polls == ["/v3/processes/11", "/v3/processes/11", "/v3/processes/12"]


def test_a_failed_import_refuses_its_rows_and_the_others_go_on() -> None:
    brevo = FakeBrevo()
    brevo.answers[("POST", IMPORT)] = [(202, {"processId": 1}), (202, {"processId": 2})]
    brevo.answers[("GET", "/v3/processes/1")] = [(200, {"id": 1, "status": "failed",
                                                        "name": "import"})]
    brevo.answers[("GET", "/v3/processes/2")] = [(200, {"id": 2, "status": "completed",
                                                        "name": "import"})]
    sender, refused = importer(brevo, batch=21)
    given = rows(42)
    assert sender.send(given, [3]) == {r["email"] for r in given[:21]}
    assert len(refused) == 21 and "ended failed" in refused[0][1]


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
    brevo.answers[("GET", "/v3/processes/5")] = [(200, {
        "id": 5, "status": "completed", "name": "import",
        "info": {"import": {"invalid_emails": "https://files.example/r.csv"}}})]
    sender, refused = importer(brevo)
    assert sender.send(rows(DIRECT + 1), [3]) == {"c005@example.com"}
    assert refused == [("c005@example.com", "Brevo's import listed it in invalid_emails")]
    assert asked == ["https://files.example/r.csv"]


def test_attributes_are_created_when_missing_and_asked_for_once() -> None:
    brevo = FakeBrevo()
    brevo.answers[("GET", "/v3/contacts/attributes")] = [(200, {"attributes": [
        {"name": "FIRSTNAME", "category": "normal", "type": "text"}]})]
    sender, _ = importer(brevo)
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
    sender, _ = importer(brevo)
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
