"""The receiver's storefront endpoint (framework/webhooks/storefront.py), in this process: the
webhook path's hostile cases replayed against it (oversized, forged or expired tokens, wrong
origin, floods), and what it stores."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jwt
import orjson
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from connectors.bigcommerce import connector
from framework.webhooks import storefront
from framework.webhooks.guard import Proxies, RefusalLog
from framework.webhooks.receiver import SpoolWriter
from framework.webhooks.spool import Spool

STORE, ORIGIN, SECRET, CLIENT = ("abc123", "https://shop.example.com",
                                  "s3cret-of-the-app-32-characters-long", "app-1")


def token(**changes: Any) -> str:
    """A Current Customer JWT as BigCommerce makes it (current_customer.yml's example)."""
    now = int(time.time())
    claims = {"customer": {"id": 4927, "email": "John.Doe@example.com", "group_id": "6"},
              "iss": "bc/apps", "sub": STORE, "iat": now, "exp": now + 900, "version": 1,
              "aud": CLIENT, "application_id": "x", "store_hash": STORE,
              "operation": "current_customer"}
    key = changes.pop("key", SECRET)
    claims.update(changes)
    return jwt.encode(claims, key, algorithm="HS256")


class Endpoint:
    def __init__(self, tmp_path: Path, **limits: Any) -> None:
        spec = connector.loaded.model.storefront
        assert spec is not None
        self.spool_path = tmp_path / "spool.db"
        self.writer = SpoolWriter(self.spool_path)
        self.beacons = storefront.Beacons(spec, [storefront.Account(
            STORE, {ORIGIN}, SECRET, CLIENT)], storefront.Limits(**limits))
        app = Starlette(routes=storefront.routes(self.beacons, self.writer,
                                                 "/storefront/bigcommerce", 5.0,
                                                 RefusalLog(5, 60), Proxies(())))
        self.http = TestClient(app)

    def post(self, body: Any, origin: str | None = ORIGIN, raw: bytes | None = None) -> Any:
        headers = {"content-type": "text/plain;charset=UTF-8"}
        if origin:
            headers["origin"] = origin
        return self.http.post("/storefront/bigcommerce", headers=headers,
                              content=raw if raw is not None else orjson.dumps(body))

    def stored(self) -> list[dict[str, Any]]:
        spool = Spool(self.spool_path)
        try:
            return [p for *_, p in spool.payloads(STORE, "storefront_event", 0, 10**9, 1000)]
        finally:
            spool.close()


@pytest.fixture
def endpoint(tmp_path: Path) -> Any:
    made = Endpoint(tmp_path)
    yield made
    made.writer.close()


def beacon(**changes: Any) -> dict[str, Any]:
    body = {"v": 1, "account": STORE, "visitor": "v0123456789abcdef0123",
            "events": [{"id": "e1", "type": "product_viewed", "at": int(time.time() * 1000),
                        "url": f"{ORIGIN}/shirt/",
                        "product": {"id": "111", "variant_id": "1110", "price": 12.5,
                                    "currency": "USD", "name": "Shirt"}}]}
    body.update(changes)
    return body


def test_a_logged_in_shoppers_event_is_spooled_with_the_tokens_identity(endpoint: Any) -> None:
    answer = endpoint.post(beacon(token=token()))
    assert answer.status_code == 200 and answer.json() == {"stored": 1, "duplicate": 0}
    assert answer.headers["access-control-allow-origin"] == ORIGIN
    [event] = endpoint.stored()
    assert event["customer_id"] == "4927" and event["email"] == "john.doe@example.com"
    assert event["type"] == "product_viewed" and event["visitor_id"] == "v0123456789abcdef0123"
    assert event["product"]["price"] == 12.5
    # the same beacon again (a retry): acknowledged, stored once
    assert endpoint.post(beacon(token=token())).json() == {"stored": 0, "duplicate": 1}


def test_an_anonymous_visitor_is_stored_with_no_identity(endpoint: Any) -> None:
    assert endpoint.post(beacon()).status_code == 200
    [event] = endpoint.stored()
    assert event["customer_id"] is None and event["email"] is None


@pytest.mark.parametrize(("forged", "why"), [
    (lambda: token(key="not-the-secret-but-32-characters-long"), "Signature verification failed"),
    (lambda: token(aud="another-app"), "Audience"),
    (lambda: token(store_hash="zzz999"), "another account's"),
    (lambda: token(operation="customer_login"), "operation"),
    (lambda: token(iss="someone"), "issuer"),
    (lambda: token(exp=int(time.time()) - 3600, iat=int(time.time()) - 4000), "expired"),
    (lambda: token(iat=int(time.time()) - 2000, exp=int(time.time()) + 900), "older than 900"),
    (lambda: token(customer={"id": 0}), "no customer"),
    (lambda: jwt.encode({"store_hash": STORE}, SECRET, algorithm="HS256"), "exp"),
    (lambda: "not.a.jwt", "not valid"),
])
def test_a_forged_or_stale_token_is_401_and_nothing_is_stored(endpoint: Any, forged: Any,
                                                              why: str) -> None:
    answer = endpoint.post(beacon(token=forged()))
    assert answer.status_code == 401 and why in answer.json()["error"]
    assert endpoint.stored() == []


def test_none_algorithm_tokens_are_refused(endpoint: Any) -> None:
    unsigned = jwt.encode({"store_hash": STORE, "customer": {"id": 1}, "iat": 1, "exp": 2**31},
                          None, algorithm="none")
    assert endpoint.post(beacon(token=unsigned)).status_code == 401


@pytest.mark.parametrize("origin", [None, "https://evil.example.com", "http://shop.example.com",
                                    "https://shop.example.com.evil.example", "null"])
def test_a_page_of_no_store_is_403_without_cors_headers(endpoint: Any, origin: Any) -> None:
    answer = endpoint.post(beacon(), origin=origin)
    assert answer.status_code == 403
    assert "access-control-allow-origin" not in answer.headers
    assert endpoint.stored() == []
    preflight = endpoint.http.options("/storefront/bigcommerce",
                                      headers={"origin": origin} if origin else {})
    assert preflight.status_code == 403


def test_the_preflight_allows_the_stores_origin_only(endpoint: Any) -> None:
    answer = endpoint.http.options("/storefront/bigcommerce", headers={"origin": ORIGIN})
    assert answer.status_code == 204
    assert answer.headers["access-control-allow-origin"] == ORIGIN
    assert answer.headers["access-control-allow-methods"] == "POST"


def test_an_account_the_origin_does_not_serve_is_403(endpoint: Any) -> None:
    assert endpoint.post(beacon(account="zzz999")).status_code == 403


@pytest.mark.parametrize(("body", "where"), [
    (beacon(v=2), "v"),
    ({"v": 1}, "the beacon"),
    (beacon(visitor="short"), "visitor"),
    (beacon(events=[]), "events"),
    (beacon(events=[{"id": "e", "type": "order_paid", "at": 1}]), "events/0/type"),
    (beacon(events=[{"id": "e" * 65, "type": "cart_updated", "at": 1}]), "events/0/id"),
    (beacon(extra=1), "the beacon"),
    (beacon(events=[{"id": "e", "type": "cart_updated", "at": 1,
                     "cart": {"id": "c", "items": [{"quantity": -1}]}}]), "events/0/cart"),
    (beacon(events=[{"id": f"e{n}", "type": "category_viewed", "at": 1,
                     "category": {"id": "1"}} for n in range(21)]), "events"),
    (beacon(events=[{"id": "e", "type": "product_viewed", "at": 1,
                     "product": {"id": "1", "name": "x" * 301}}]), "events/0/product/name"),
])
def test_a_beacon_of_the_wrong_shape_is_400(endpoint: Any, body: Any, where: str) -> None:
    answer = endpoint.post(body)
    assert answer.status_code == 400 and answer.json()["error"].startswith(where)


def test_not_json_and_old_events_are_400(endpoint: Any) -> None:
    assert endpoint.post(None, raw=b"{nope").status_code == 400
    old = beacon(events=[{"id": "e", "type": "category_viewed", "at": 1000,
                          "category": {"id": "1"}}])
    assert endpoint.post(old).status_code == 400


def test_an_oversized_body_is_413_before_it_is_read(endpoint: Any) -> None:
    answer = endpoint.post(None, raw=b"x" * (storefront.MAX_BODY + 1))
    assert answer.status_code == 413
    assert endpoint.stored() == []


def test_floods_from_one_address_or_one_visitor_are_429(tmp_path: Path) -> None:
    flood = Endpoint(tmp_path, per_ip=40.0, per_visitor=1000.0)
    try:
        codes = [flood.post(beacon(visitor=f"v{n:020d}",
                                   events=[{**beacon()["events"][0], "id": f"e{n}"}])
                            ).status_code for n in range(30)]
        assert codes.count(200) == 10 and set(codes[10:]) == {429}  # the burst, then none
    finally:
        flood.writer.close()
    one = Endpoint(tmp_path / "b", per_ip=10_000.0, per_visitor=20.0)
    try:
        events = [{**beacon()["events"][0], "id": f"e{n}"} for n in range(5)]
        codes = [one.post(beacon(events=[{**e, "id": f"{e['id']}-{k}"} for e in events])
                          ).status_code for k in range(4)]
        assert codes == [200, 200, 429, 429]  # 10 events of burst, 5 a beacon
        other = one.post(beacon(visitor="w0123456789abcdef0123"))
        assert other.status_code == 200  # another visitor is not held back
    finally:
        one.writer.close()


def test_origins_come_from_the_stores_record_and_the_config() -> None:
    class Client:
        def get(self, path: str) -> dict[str, Any]:
            assert path == "/v2/store"
            return {"secure_url": "https://Shop.Example.com/", "domain": "www.shop.example.com"}

        def close(self) -> None:
            pass

    class Source:
        loaded = connector.loaded

        def accounts(self, config: dict[str, Any]) -> list[dict[str, Any]]:
            return [{"store_hash": STORE, "client_id": "own-app"}]

        def account_key(self, account: dict[str, Any]) -> str:
            return str(account["store_hash"])

        def client(self, account: dict[str, Any]) -> Client:
            return Client()

    [account] = storefront.accounts_of(Source(), {"client_secret": SECRET, "client_id": "x"},
                                       ["http://127.0.0.1:8000"])
    assert account.origins == {"https://shop.example.com", "https://www.shop.example.com",
                               "http://127.0.0.1:8000"}
    assert (account.secret, account.audience) == (SECRET, "own-app")


def test_a_token_without_a_configured_secret_is_refused(tmp_path: Path) -> None:
    spec = connector.loaded.model.storefront
    assert spec is not None
    beacons = storefront.Beacons(spec, [storefront.Account(STORE, {ORIGIN})])
    with pytest.raises(Exception, match="no secret to verify it"):
        beacons.events(ORIGIN, orjson.dumps(beacon(token=token())))


def read_storefront(state: dict[str, Any], spool_path: Path) -> tuple[int, dict[str, Any]]:
    """One forwarder cycle's read of the storefront events (webhooks mode, the model's stream
    as the Brevo destination reads it): how many records, and the streams' last states."""
    from app.forward import model_catalog
    from framework.protocol import messages as p

    catalog = p.ConfiguredAirbyteCatalog(streams=[
        s for s in model_catalog(connector).streams
        if s.stream.name == "commerce_storefront_events"])
    config = {"store_hash": STORE, "access_token": "t" * 20, "api_url": "http://127.0.0.1:9",
              "spool_path": str(spool_path), "read_mode": "webhooks"}
    time.sleep(connector.settle_s + 0.1)  # spooled events are read once settle_s old
    records, states = 0, dict(state)
    for line in b"".join(connector.read(config, catalog, state)).splitlines():
        message = orjson.loads(line)
        if message["type"] == "RECORD":
            records += 1
        elif message["type"] == "STATE":
            stream = message["state"]["stream"]
            states[stream["stream_descriptor"]["name"]] = stream["stream_state"]
    return records, states


def test_the_storefront_stream_reads_each_spooled_event_once(endpoint: Any) -> None:
    """The stream whose records are the spooled events (live.payload) resumes from its saved
    spool offset: the forwarder's next poll reads nothing it read before."""
    for number in range(3):
        events = [{**beacon()["events"][0], "id": f"e{number}"}]
        assert endpoint.post(beacon(token=token(), events=events)).status_code == 200
    first, state = read_storefront({}, endpoint.spool_path)
    assert first == 3
    again, state = read_storefront(state, endpoint.spool_path)
    assert again == 0
    events = [{**beacon()["events"][0], "id": "e3"}]
    assert endpoint.post(beacon(token=token(), events=events)).status_code == 200
    assert read_storefront(state, endpoint.spool_path)[0] == 1
