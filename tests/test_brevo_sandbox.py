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
