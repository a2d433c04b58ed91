"""The Brevo sandbox answers like Brevo: auth, errors, limits, imports, lists, events, catalog."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

KEY = "xkeysib-test-0123456789"


class Brevo:
    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()
        self.session.headers["api-key"] = KEY

    def call(self, method: str, path: str, body: Any = None, **kw: Any) -> requests.Response:
        return self.session.request(method, self.url + path, json=body, timeout=10, **kw)

    def patient(self, method: str, path: str, body: Any = None, **kw: Any
                ) -> requests.Response:
        """``call``, waiting out the rate limit."""
        while (answer := self.call(method, path, body, **kw)).status_code == 429:
            time.sleep(0.2)
        return answer

    def state(self) -> dict[str, Any]:
        return self.call("GET", "/_sandbox/state").json()


@pytest.fixture
def brevo() -> Iterator[Brevo]:
    process = subprocess.Popen(
        [sys.executable, "-m", "connectors.brevo.sandbox", "--port", "0", "--api-key", KEY,
         "--lists", "40,41,42", "--import-delay-ms", "100", "--window-ms", "1000"],
        stdout=subprocess.PIPE, text=True)
    ready = json.loads(process.stdout.readline())
    assert ready["api_key"] == KEY
    yield Brevo(ready["url"])
    process.terminate()
    process.wait(timeout=10)


def test_auth_errors_carry_brevos_bodies(brevo: Brevo) -> None:
    missing = requests.post(brevo.url + "/v3/contacts", json={}, timeout=10)
    assert missing.status_code == 401
    assert missing.json() == {"message": "authentication not found in headers",
                              "code": "unauthorized"}
    wrong = requests.post(brevo.url + "/v3/contacts", json={}, headers={"api-key": "nope"},
                          timeout=10)
    assert wrong.json() == {"message": "Key not found", "code": "unauthorized"}
    assert wrong.headers["sib-request-id"]


def test_contacts_create_update_and_duplicates(brevo: Brevo) -> None:
    created = brevo.call("POST", "/v3/contacts", {"email": "ann@example.com", "attributes": {
        "FIRSTNAME": "Ann", "SMS": "+66812345678", "UNKNOWN": 1}, "listIds": [40]})
    assert created.status_code == 201 and created.json() == {"id": 1}
    again = brevo.call("POST", "/v3/contacts", {"email": "ANN@example.com"})
    assert again.status_code == 400
    assert again.json() == {"code": "duplicate_parameter", "message": "Unable to create contact, "
                            "email is already associated with another Contact",
                            "metadata": {"duplicate_identifiers": ["email"]}}
    updated = brevo.call("POST", "/v3/contacts", {"email": "ann@example.com", "updateEnabled":
                                                  True, "attributes": {"LASTNAME": "Lee"}})
    assert updated.status_code == 204 and updated.content == b""
    sms = brevo.call("POST", "/v3/contacts", {"email": "bob@example.com",
                                              "attributes": {"SMS": "+66812345678"}})
    assert sms.status_code == 400 and sms.json()["code"] == "duplicate_parameter"
    bad = brevo.call("POST", "/v3/contacts", {"email": "not-an-email"})
    assert bad.json() == {"code": "invalid_parameter", "message": "Invalid email address"}
    contact = brevo.call("GET", "/v3/contacts/ann@example.com").json()
    assert contact["attributes"] == {"FIRSTNAME": "Ann", "SMS": "+66812345678",
                                     "LASTNAME": "Lee"}
    assert contact["listIds"] == [40]
    missing = brevo.call("PUT", "/v3/contacts/zed@example.com", {"attributes": {}})
    assert missing.status_code == 404 and missing.json()["code"] == "document_not_found"


def test_import_is_an_asynchronous_process_that_never_clears_a_blacklist(brevo: Brevo) -> None:
    brevo.call("POST", "/v3/contacts", {"email": "gone@example.com"})
    brevo.call("POST", "/_sandbox/blacklist", {"email": "gone@example.com"})
    rows = [{"email": f"c{i}@example.com", "attributes": {"FIRSTNAME": f"C{i}"}}
            for i in range(5)]
    rows += [{"email": "gone@example.com", "attributes": {"FIRSTNAME": "Back"}},
             {"email": "broken", "attributes": {}}]
    started = brevo.call("POST", "/v3/contacts/import", {
        "jsonBody": rows, "listIds": [40], "emailBlacklist": False, "smsBlacklist": False,
        "updateExistingContacts": True, "emptyContactsAttributes": False})
    assert started.status_code == 202
    process_id = started.json()["processId"]
    statuses = []
    for _ in range(50):
        status = brevo.call("GET", f"/v3/processes/{process_id}").json()["status"]
        statuses.append(status)
        if status == "completed":
            break
        time.sleep(0.03)
    assert statuses[0] == "queued" and "in_process" in statuses and statuses[-1] == "completed"
    state = brevo.state()
    contacts = {c["email"]: c for c in state["contacts"]}
    assert {f"c{i}@example.com" for i in range(5)} <= set(contacts)
    assert contacts["gone@example.com"]["emailBlacklisted"] is True  # still unsubscribed
    assert contacts["gone@example.com"]["attributes"]["FIRSTNAME"] == "Back"
    assert state["processes"][0]["invalid"] == [{"row": 6, "reason": "Invalid email address",
                                                 "file": "invalid_emails", "email": "broken"}]
    assert brevo.call("GET", "/v3/processes/999").json() == {
        "code": "invalid_parameter", "message": "processId is invalid"}


def test_list_calls_take_150_contacts_at_most(brevo: Brevo) -> None:
    brevo.call("POST", "/v3/contacts", {"email": "a@example.com"})
    too_many = brevo.call("POST", "/v3/contacts/lists/41/contacts/add",
                          {"emails": [f"x{i}@example.com" for i in range(151)]})
    assert too_many.status_code == 400 and too_many.json()["code"] == "out_of_range"
    added = brevo.call("POST", "/v3/contacts/lists/41/contacts/add",
                       {"emails": ["a@example.com", "nobody@example.com"]})
    assert added.status_code == 201
    assert added.json()["contacts"]["success"] == ["a@example.com"]
    assert added.json()["contacts"]["failure"] == ["nobody@example.com"]
    unknown = brevo.call("POST", "/v3/contacts/lists/99/contacts/add", {"emails": []})
    assert unknown.status_code == 404 and unknown.json()["message"] == "List ID not found"


def test_events_are_validated_singly_and_in_batches(brevo: Brevo) -> None:
    ok = {"event_name": "order_placed", "identifiers": {"email_id": "a@example.com"},
          "event_properties": {"order_id": 7}}
    assert brevo.call("POST", "/v3/events", ok).status_code == 204
    assert brevo.call("POST", "/v3/events", {**ok, "identifiers": {}}).status_code == 400
    huge = {**ok, "event_properties": {"blob": "x" * 60_000}}
    assert brevo.call("POST", "/v3/events", huge).json()["message"] == \
        "event_properties exceeds 50KB"
    batch = brevo.call("POST", "/v3/events/batch",
                       {"events": [ok, {**ok, "event_name": "bad name"}, ok,
                                   {**ok, "event_name": "bad name too"}]})
    # Brevo's BatchEventsResponse: events refused for one reason share an error.
    assert batch.status_code == 207 and batch.json() == {
        "status": "partial_success", "total_events": 4, "successful_events": 2,
        "failed_events": 2, "errors": [{
            "eventIndex": [1, 3],
            "message": "event_name is required: up to 255 letters, digits, - and _"}]}
    assert len(brevo.state()["events"]) == 3


def test_catalog_batches_upsert_and_reject_duplicates(brevo: Brevo) -> None:
    products = [{"id": str(i), "name": f"P{i}", "price": 9.5} for i in range(3)]
    first = brevo.call("POST", "/v3/products/batch", {"products": products, "updateEnabled": True})
    assert first.status_code == 201 and first.json() == {"createdCount": 3, "updatedCount": 0}
    second = brevo.call("POST", "/v3/products/batch", {
        "products": [products[0], {"id": "9", "name": "P9"}], "updateEnabled": True})
    assert second.json() == {"createdCount": 1, "updatedCount": 1}
    dup = brevo.call("POST", "/v3/products/batch", {"products": [products[0], products[0]]})
    assert dup.status_code == 400 and "Duplicate" in dup.json()["message"]
    big = brevo.call("POST", "/v3/categories/batch", {"categories": [
        {"id": str(i), "name": "c"} for i in range(101)]})
    assert big.status_code == 400 and big.json()["code"] == "out_of_range"


def test_order_batches_keep_the_historical_flag(brevo: Brevo) -> None:
    order = {"id": "1001", "createdAt": "2024-01-01T10:00:00Z",
             "updatedAt": "2024-01-02T10:00:00Z", "status": "completed", "amount": 30.5,
             "products": [{"productId": "5", "quantity": 2, "price": 15.25}]}
    done = brevo.call("POST", "/v3/orders/status/batch", {"orders": [order], "historical": True})
    assert done.status_code == 202 and done.json()["count"] == 1
    assert brevo.state()["orders"][0]["historical"] is True
    bad = brevo.call("POST", "/v3/orders/status/batch", {"orders": [
        {**order, "createdAt": "2024-01-01 10:00"}]})
    assert bad.status_code == 400 and "createdAt" in bad.json()["message"]


def test_per_endpoint_rate_limit_headers_and_429(brevo: Brevo) -> None:
    remaining = []
    statuses = []
    for i in range(12):
        response = brevo.call("POST", "/v3/contacts", {"email": f"r{i}@example.com"})
        statuses.append(response.status_code)
        remaining.append(int(response.headers["x-sib-ratelimit-remaining"]))
        assert response.headers["x-sib-ratelimit-limit"] == "10"
    assert 429 in statuses and statuses.index(429) == 10
    assert remaining[:10] == list(range(9, -1, -1))
    # Events have their own bucket: still open.
    event = {"event_name": "x", "identifiers": {"email_id": "r0@example.com"}}
    assert brevo.call("POST", "/v3/events", event).status_code == 204
    assert brevo.state()["requests"]["throttled"] >= 1


def test_attributes_are_created_once(brevo: Brevo) -> None:
    made = brevo.call("POST", "/v3/contacts/attributes/normal/order_count", {"type": "float"})
    assert made.status_code == 201
    names = {a["name"]: a for a in brevo.call("GET", "/v3/contacts/attributes").json()[
        "attributes"]}
    assert names["ORDER_COUNT"] == {"name": "ORDER_COUNT", "category": "normal",
                                    "type": "float"}
    assert brevo.call("POST", "/v3/contacts/attributes/normal/ORDER_COUNT",
                      {"type": "float"}).status_code == 400


# --- as brevo-python's models have it (the reference checks every answer, too) ------------

ON_PURPOSE = {"x-reference": "invalid-on-purpose"}  # a request the SDK refuses, sent to see it


def test_lists_are_paged_50_at_most_newest_first(brevo: Brevo) -> None:
    for n in range(57):
        assert brevo.patient("POST", "/v3/contacts/lists",
                             {"name": f"L{n}", "folderId": 1}).status_code == 201
    too_many = brevo.patient("GET", "/v3/contacts/lists", params={"limit": 51})
    assert too_many.status_code == 400 and too_many.json()["code"] == "out_of_range"
    first = brevo.patient("GET", "/v3/contacts/lists", params={"limit": 50}).json()
    rest = brevo.patient("GET", "/v3/contacts/lists", params={"limit": 50, "offset": 50}).json()
    assert first["count"] == rest["count"] == 60
    ids = [item["id"] for item in first["lists"] + rest["lists"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 60 and ids[-1] == 40
    assert {"totalBlacklisted", "totalSubscribers", "uniqueSubscribers", "folderId"} <= set(
        first["lists"][0])
    default = brevo.patient("GET", "/v3/contacts/lists").json()["lists"]
    assert [item["id"] for item in default] == ids[:10]  # 10 by default
    assert "createdAt" in brevo.patient("GET", "/v3/contacts/lists/40").json()


def wait_for(brevo: Brevo, process_id: int) -> dict[str, Any]:
    for _ in range(100):
        answer = brevo.call("GET", f"/v3/processes/{process_id}").json()
        if answer["status"] not in ("queued", "in_process", "processing"):
            return dict(answer)
        time.sleep(0.03)
    raise AssertionError("the import never ended")


def test_imports_can_fail_and_report_the_rows_they_did_not_take(brevo: Brevo) -> None:
    rows = [{"email": "a@example.com"}, {"email": "broken"}]
    requests.post(brevo.url + "/_sandbox/imports", json={"end_as": ["failed", "cancelled"]},
                  headers={"api-key": KEY}, timeout=10).raise_for_status()
    for ending in ("failed", "cancelled"):
        started = brevo.call("POST", "/v3/contacts/import", {"jsonBody": rows, "listIds": [40]})
        answer = wait_for(brevo, started.json()["processId"])
        assert answer["status"] == ending and answer["name"] == "IMPORTUSER"
        assert "info" not in answer
    assert brevo.state()["contacts"] == []
    started = brevo.call("POST", "/v3/contacts/import", {"jsonBody": rows, "listIds": [40]})
    answer = wait_for(brevo, started.json()["processId"])
    assert answer["status"] == "completed"
    report = requests.get(answer["info"]["import"]["invalid_emails"], timeout=10)  # no key
    assert report.text == "EMAIL;REASON\nbroken;Invalid email address\n"


def test_csv_file_body_imports(brevo: Brevo) -> None:
    csv_body = "EMAIL;FIRSTNAME;LASTNAME\nann@example.com;Ann;Lee\nbob@example.com;Bob;\n"
    started = brevo.call("POST", "/v3/contacts/import", {"fileBody": csv_body, "listIds": [40]})
    assert started.status_code == 202
    assert wait_for(brevo, started.json()["processId"])["status"] == "completed"
    contacts = {c["email"]: c for c in brevo.state()["contacts"]}
    assert contacts["ann@example.com"]["attributes"] == {"FIRSTNAME": "Ann", "LASTNAME": "Lee"}
    assert contacts["bob@example.com"]["attributes"] == {"FIRSTNAME": "Bob"}


def test_answers_carry_the_fields_the_sdk_requires(brevo: Brevo) -> None:
    brevo.call("POST", "/v3/contacts", {"email": "ann@example.com"})
    assert brevo.call("GET", "/v3/contacts/ann@example.com").json()[
        "whatsappBlacklisted"] is False
    brevo.call("POST", "/v3/products/batch", {"products": [
        {"id": "p1", "name": "Mug", "imageUrl": "https://shop.example.com/mug.jpg"},
        {"id": "p2", "name": "Tea"}]})
    products = {p["id"]: p for p in brevo.call("GET", "/v3/products").json()["products"]}
    assert {"createdAt", "modifiedAt", "s3ThumbAnalytics", "s3ThumbEditor"} <= set(
        products["p1"]) and products["p1"]["s3ThumbEditor"].endswith("-600x400.jpg")
    assert products["p2"]["s3ThumbAnalytics"] == ""  # no image, nothing on S3
    event = {"event_name": "viewed", "identifiers": {"email_id": "ann@example.com"},
             "event_date": "2024-05-01T10:00:00Z"}
    brevo.call("POST", "/v3/events", event)
    brevo.call("POST", "/v3/events", {**event, "identifiers": {"email_id": "zed@example.com"},
                                      "event_date": "2024-05-02T10:00:00Z"})
    found = brevo.call("GET", "/v3/events").json()["events"]
    assert [e.get("contact_id") for e in found] == [None, 1]  # newest first; zed unknown
    assert "identifiers" not in found[0]  # not a field of the SDK's answer


def test_requests_brevo_refuses_are_refused(brevo: Brevo) -> None:
    order = {"id": "1", "createdAt": "2024-01-01T10:00:00Z", "updatedAt": "2024-01-01T10:00:00Z",
             "status": "paid", "amount": 30.5,
             "products": [{"productId": "5", "quantity": 1, "price": 30.5}]}
    as_text = brevo.call("POST", "/v3/orders/status", {**order, "amount": "30.5"},
                         headers=ON_PURPOSE)
    assert as_text.status_code == 400 and as_text.json()["message"] == "amount must be a number"
    number_id = brevo.call("POST", "/v3/orders/status", {**order, "products": [
        {"productId": 5, "quantity": 1, "price": 30.5}]}, headers=ON_PURPOSE)
    assert number_id.json()["message"] == "products[0].productId must be a string"
    assert brevo.call("POST", "/v3/orders/status", order).status_code == 204
    spaced = brevo.call("POST", "/v3/events", {
        "event_name": "viewed", "identifiers": {"email_id": "a@example.com"},
        "event_properties": {"page": {"item id": 3}}})
    assert spaced.status_code == 400 and "'item id'" in spaced.json()["message"]
    id_type = brevo.call("POST", "/v3/contacts/attributes/normal/LOYALTY_ID", {"type": "id"})
    assert id_type.status_code == 400 and "transactional" in id_type.json()["message"]
    assert brevo.call("POST", "/v3/contacts/attributes/transactional/ORDER_ID",
                      {"type": "id"}).status_code == 201


def test_requests_brevo_accepts_are_accepted(brevo: Brevo) -> None:
    brevo.call("POST", "/v3/contacts", {"email": "ann@example.com", "ext_id": "shop-7"})
    updated = brevo.call("PUT", "/v3/contacts/shop-7", {"attributes": {"FIRSTNAME": "Ann"}},
                         params={"identifierType": "ext_id"})
    assert updated.status_code == 204
    assert brevo.call("GET", "/v3/contacts/ann@example.com").json()["attributes"] == {
        "FIRSTNAME": "Ann"}
    account = brevo.call("GET", "/v3/account")
    assert account.status_code == 200
    assert account.json()["organization_id"] == "sandbox-organization"


def test_events_are_found_by_rfc_3339_dates(brevo: Brevo) -> None:
    for date in ("2024-05-01T23:30:00+00:00", "2024-05-02T08:00:00Z"):
        assert brevo.call("POST", "/v3/events", {
            "event_name": "viewed", "identifiers": {"email_id": "a@example.com"},
            "event_date": date}).status_code == 204

    def dates(start: str, end: str) -> list[str]:
        answer = brevo.call("GET", "/v3/events", params={"startDate": start, "endDate": end})
        assert answer.status_code == 200, answer.text
        return [e["event_date"] for e in answer.json()["events"]]

    assert dates("2024-05-01T23:00:00Z", "2024-05-02T09:00:00+00:00") == [
        "2024-05-02T08:00:00Z", "2024-05-01T23:30:00+00:00"]
    assert dates("2024-05-02T07:00:00+02:00", "2024-05-02T12:00:00Z") == [
        "2024-05-02T08:00:00Z"]
    assert dates("2024-05-01", "2024-05-01") == ["2024-05-01T23:30:00+00:00"]  # the whole day
    half = brevo.call("GET", "/v3/events", params={"startDate": "2024-05-01"})
    assert half.status_code == 400


def test_a_refused_key_still_gets_the_rate_limit_headers(brevo: Brevo) -> None:
    refused = requests.get(brevo.url + "/v3/contacts", headers={"api-key": "nope"}, timeout=10)
    assert refused.status_code == 401
    assert refused.headers["x-sib-ratelimit-limit"] == "10"
    assert {"x-sib-ratelimit-remaining", "x-sib-ratelimit-reset"} <= set(refused.headers)
