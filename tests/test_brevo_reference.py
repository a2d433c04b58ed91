"""The reference itself: every route the Brevo sandbox serves is mapped to the brevo-python
method that calls it (and the SDK agrees on its verb and path), the checks refuse what the
SDK refuses, and a sandbox records what it saw refused (which fails the test it ran in)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import requests

from connectors.brevo.sandbox import REFERENCE_ENV
from connectors.brevo.sandbox.app import ROUTES as SANDBOX_ROUTES
from connectors.brevo.sandbox.reference import ROUTES, Reference

ORDER = {"id": "s1-1", "createdAt": "2024-01-01T10:00:00Z", "updatedAt": "2024-01-01T10:00:00Z",
         "status": "paid", "amount": 30.5, "identifiers": {"email_id": "a@example.com"},
         "products": [{"productId": "5", "quantity": 1, "price": 30.5}]}


def shape(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path.replace(":int", ""))


def test_every_sandbox_route_is_an_sdk_operation(tmp_path: Path) -> None:
    served = {(method, path.replace(":int", "")) for method, path, _, _ in SANDBOX_ROUTES}
    assert served == set(ROUTES), "map each sandbox route to the SDK method that calls it"
    reference = Reference(tmp_path / "report.jsonl")
    for (method, path), operation in reference.operations.items():
        assert (operation.verb, shape(operation.path)) == (method, shape(path)), ROUTES[
            (method, path)]


def test_the_checks_refuse_what_the_sdk_refuses(tmp_path: Path) -> None:
    reference = Reference(tmp_path / "report.jsonl")
    order = ("POST", "/v3/orders/status")
    assert reference.request_problems(order, {}, ORDER) == []
    assert reference.request_problems(order, {}, {**ORDER, "amount": "30.5"}) == [
        "amount: Input should be a valid number (got '30.5')"]
    assert reference.request_problems(order, {}, {**ORDER, "email": "a@example.com"}) == [
        "email: not a field the SDK sends"]
    missing = {k: v for k, v in ORDER.items() if k != "status"}
    assert reference.request_problems(order, {}, missing) == [
        "status: required by the SDK, missing"]
    assert reference.request_problems(("GET", "/v3/contacts/lists"), {"page": "2"}, None) == [
        "query parameter 'page' is not one the SDK sends"]
    batch = ("POST", "/v3/orders/status/batch")
    nested = {"orders": [{**ORDER, "email": "a@example.com"}]}
    assert reference.request_problems(batch, {}, nested) == [
        "orders[0].email: not a field of Order"]
    contact = {"id": 1, "email": "a@example.com", "emailBlacklisted": False,
               "smsBlacklisted": False, "createdAt": "x", "modifiedAt": "x", "attributes": {},
               "listIds": [], "statistics": {}}
    info = ("GET", "/v3/contacts/{identifier}")
    assert reference.answer_problems(info, 200, {**contact, "whatsappBlacklisted": False}) == []
    assert reference.answer_problems(info, 200, contact) == [
        "whatsappBlacklisted: Field required (got "
        + repr(contact)[:80] + ")"]
    process = ("GET", "/v3/processes/{process_id}")
    assert reference.answer_problems(process, 200, {"id": 1, "name": "IMPORTUSER",
                                                    "status": "done"}) == [
        "body.status: 'done' is not one of ['queued', 'in_process', 'processing', "
        "'completed', 'failed', 'cancelled']"]
    events = ("POST", "/v3/events/batch")
    assert reference.answer_problems(events, 207, {"successCount": 1, "failed": []})
    assert reference.answer_problems(events, 207, {
        "status": "partial_success", "total_events": 2, "successful_events": 1,
        "failed_events": 1, "errors": [{"eventIndex": [1], "message": "bad"}]}) == []
    assert reference.answer_problems(events, 401, {"code": "unauthorized",
                                                   "message": "Key not found"}) == []


def test_a_sandbox_records_what_the_sdk_refuses(tmp_path: Path) -> None:
    """What the sandbox takes but the SDK cannot send is recorded, with the route; the
    tests' fixture (``brevo_reference``) fails a test that leaves any."""
    report = tmp_path / "report.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-m", "connectors.brevo.sandbox", "--port", "0", "--api-key", "k"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, REFERENCE_ENV: str(report)})
    try:
        url = json.loads(process.stdout.readline())["url"]
        taken = requests.post(f"{url}/v3/orders/status", headers={"api-key": "k"},
                              json={**ORDER, "email": "a@example.com"}, timeout=10)
        assert taken.status_code == 204
        assert requests.get(f"{url}/v3/account", headers={"api-key": "k"},
                            timeout=10).status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=10)
    recorded = [json.loads(line) for line in report.read_text().splitlines()]
    assert recorded == [{"route": "POST /v3/orders/status", "side": "request accepted",
                         "status": 204, "problem": "email: not a field the SDK sends"}]
