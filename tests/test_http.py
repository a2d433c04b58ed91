"""The HTTP client against the BigCommerce sandbox: quota pacing, 429s, retries, 401 and 403."""

from __future__ import annotations

import time

import pytest
import requests

from connectors.bigcommerce import connector
from framework.engine.http import HttpClient
from framework.errors import ConnectorError

RATE = connector.loaded.model.client.rate_limit
ERRORS = connector.loaded.model.client.errors


def client_for(sandbox, token: str | None = None, **options) -> HttpClient:
    return HttpClient(f"{sandbox.url}/stores/{sandbox.store_hash}",
                      {"X-Auth-Token": token or sandbox.access_token},
                      rate_limit=RATE, errors=ERRORS, **options)


def test_pacing_reads_the_quota_headers_and_never_meets_a_429(make_sandbox) -> None:
    sandbox = make_sandbox("--customers", "10", "--window-ms", "1000")
    client = client_for(sandbox)
    started = time.monotonic()
    for _ in range(400):  # 150 per window: this needs three windows
        client.get("/v3/customers", {"limit": 1})
    elapsed = time.monotonic() - started
    stats = sandbox.admin("GET", "stats")
    assert stats["throttled"] == 0 and client.stats.throttled == 0
    assert stats["requests"] == 400
    assert elapsed >= 2.0, "the client must have waited for two window resets"
    # It waited rather than met a 429; how long depends on how fast the 400 requests went
    # (on a loaded machine they fill most of each window themselves).
    assert client.stats.waited_s > 0
    assert client.quota.quota == 150 and client.quota.window_ms == 1000


def test_a_429_from_another_app_waits_for_the_reset_and_retries(make_sandbox) -> None:
    sandbox = make_sandbox("--customers", "10", "--window-ms", "1500")
    other = requests.Session()
    other.headers["X-Auth-Token"] = sandbox.access_token
    url = f"{sandbox.url}/stores/{sandbox.store_hash}/v3/customers"
    while other.get(url).status_code != 429:  # another app drains the shared quota
        pass
    client = client_for(sandbox)
    body = client.get("/v3/customers", {"limit": 2})
    assert len(body["data"]) == 2
    assert client.stats.throttled == 1
    assert client.stats.waited_s > 0


def test_5xx_is_retried_with_backoff(make_sandbox) -> None:
    sandbox = make_sandbox("--customers", "10")
    sandbox.admin("POST", "faults", {"status": 503, "count": 2})
    client = client_for(sandbox, backoff_s=0.01)
    assert len(client.get("/v3/customers")["data"]) == 10
    assert client.stats.retries == 2
    assert client.stats.by_status == {503: 2, 200: 1}


def test_5xx_beyond_the_retries_is_a_transient_error(make_sandbox) -> None:
    sandbox = make_sandbox("--customers", "10")
    sandbox.admin("POST", "faults", {"status": 500, "count": 5})
    client = client_for(sandbox, backoff_s=0.01, max_retries=2)
    with pytest.raises(ConnectorError) as caught:
        client.get("/v3/customers")
    assert caught.value.failure_type == "transient_error"
    assert (f"GET {sandbox.url}/stores/{sandbox.store_hash}/v3/customers failed with HTTP 500"
            in caught.value.message)


def test_401_says_how_to_fix_it_without_the_token(make_sandbox) -> None:
    sandbox = make_sandbox("--customers", "10")
    client = client_for(sandbox, token="wrong-token-ABCDEF")
    with pytest.raises(ConnectorError) as caught:
        client.get("/v3/customers")
    assert caught.value.failure_type == "config_error"
    assert caught.value.message.startswith("BigCommerce rejected the access token (HTTP 401 on "
                                           "/v3/customers): create new API credentials in the "
                                           "BigCommerce control panel")
    assert "wrong-token-ABCDEF" not in caught.value.message
    assert sandbox.admin("GET", "stats")["by_status"] == {"401": 1}


def test_403_names_the_missing_scope(make_sandbox) -> None:
    sandbox = make_sandbox("--customers", "10")
    token = sandbox.admin("POST", "tokens", {"scopes": ["store_v2_orders"]})["access_token"]
    status = connector.check(sandbox.config(access_token=token))
    assert status.status == "FAILED"
    assert status.message == (
        "BigCommerce refused /v3/customers (HTTP 403): the API account lacks the OAuth scope "
        "store_v2_customers (read-only); add that scope to the API account in the BigCommerce "
        "control panel (Settings > API > Store-level API accounts)")
    scopes = ["store_v2_customers", "store_v2_orders", "store_v2_products",
              "store_v2_information", "store_cart"]
    read_only = sandbox.admin("POST", "tokens", {"scopes": [f"{s}_read_only" for s in scopes]}
                              )["access_token"]
    assert connector.check(sandbox.config(access_token=read_only)).status == "SUCCEEDED"


def test_connection_refused_is_retried_then_reported() -> None:
    client = HttpClient("http://127.0.0.1:9", {}, backoff_s=0.01, max_retries=2)
    with pytest.raises(ConnectorError, match=r"GET http://127.0.0.1:9/v3/customers failed "
                                             r"after 3 attempts: ConnectionError"):
        client.get("/v3/customers")
    assert client.stats.retries == 2


@pytest.mark.parametrize("size", [80, 200])
def test_an_answer_echoing_a_secret_is_redacted_before_it_is_cut(size: int) -> None:
    """An answer cut for an error message used to be cut first: a secret straddling the cut
    was left half-spelled, which the redactor no longer recognizes."""
    from framework.engine.http import _snippet
    from framework.errors import REDACT

    secret = "echoed-secret-5b1c9e0d7a"
    REDACT.add([secret])
    try:
        for at in range(size - len(secret), size + 1):
            text = "x" * at + secret + " and more"
            got = _snippet(text, size)
            assert len(got) <= size
            assert not any(secret[:n] in got for n in range(8, len(secret) + 1)), (at, got)
    finally:
        REDACT.clear()


def test_the_sandbox_dates_each_answer_by_its_clock(make_sandbox) -> None:
    """A read's horizon is the server's ``Date``: a real API's is its clock. uvicorn's own
    header is refreshed once a second on its loop's tick, so an answer could be dated before
    records it lists were changed, and a read left them out (seen under load in CI)."""
    from email.utils import parsedate_to_datetime

    box = make_sandbox("--customers", "5")
    url = f"{box.url}/stores/{box.store_hash}/v3/customers"
    for _ in range(30):
        before = int(time.time())
        response = requests.get(url, headers={"X-Auth-Token": box.access_token}, timeout=10)
        dates = response.raw.headers.getlist("Date")
        assert len(dates) == 1
        assert parsedate_to_datetime(dates[0]).timestamp() >= before
        time.sleep(0.05)
