"""The Shopify source plugin: its queries against Shopify's published schema, its spec, its
record schemas, its scope check and its mapping to the commerce model."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import LISTS, RUNNER, messages, run_cli
from jsonschema import Draft7Validator

from connectors.shopify import queries_check, schema
from connectors.shopify.source import (
    COMMERCE,
    ShopifySource,
    all_orders_problem,
    commerce_hooks,
    connector,
    numeric_ids,
)
from framework.devkit.testing import source_tests
from framework.engine.source import HttpSource
from framework.errors import ConfigError
from framework.protocol import messages as p

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "shopify.json"
MODEL = ROOT / "specs" / "schemas" / "commerce" / "v1"
STREAMS = ["customers", "orders", "products", "collections", "inventory_levels",
           "abandoned_checkouts", "shop"]


def _files() -> list[str]:
    return sorted({name for names in connector.query_files().values() for name in names})


# --- the queries against Shopify's schema -------------------------------------------------


@pytest.mark.parametrize("version", schema.VERSIONS)
@pytest.mark.parametrize("name", queries_check.names())
def test_every_query_validates_against_every_supported_version(name: str, version: str
                                                               ) -> None:
    assert schema.validate(version, queries_check.query(name)) == []


def test_the_spec_offers_exactly_the_versions_the_queries_validate_against() -> None:
    offered = connector.loaded.model.connectionSpecification["properties"]["api_version"]
    assert offered["enum"] == list(schema.VERSIONS)
    assert offered["default"] == schema.DEFAULT_VERSION
    assert queries_check.versions_with(queries_check.names()) == list(schema.VERSIONS)


def test_every_stream_query_the_spec_names_is_a_query_file_here() -> None:
    files = _files()
    assert files and all(f.startswith("connectors.shopify:queries/") for f in files)
    stems = {f.removeprefix("connectors.shopify:queries/").removesuffix(".graphql")
             for f in files}
    assert stems <= set(queries_check.names())
    assert set(STREAMS) <= set(connector.query_files())


def _spec_copy(tmp_path: Path, query: str) -> Path:
    """The spec in a folder of its own whose inventory_levels stream reads ``query``."""
    raw = json.loads(SPEC.read_text())
    for stream in raw["streams"]:
        if stream["name"] == "inventory_levels":
            stream["request"]["query"] = "queries/inventory_levels.graphql"
    (tmp_path / "queries").mkdir()
    (tmp_path / "queries" / "inventory_levels.graphql").write_text(query)
    shutil.copytree(SPEC.parent / "schemas" / "shopify", tmp_path / "schemas" / "shopify")
    path = tmp_path / "shopify.json"
    path.write_text(json.dumps(raw))
    return path


def test_a_version_that_lacks_a_field_fails_before_any_request(tmp_path: Path) -> None:
    # InventoryLevel.isActive came in 2026-04: a query asking for it cannot run on 2026-01.
    query = queries_check.query("inventory_levels").replace(
        "          updatedAt\n          location", "          isActive\n          updatedAt\n"
        "          location")
    assert "isActive" in query
    source = ShopifySource(_spec_copy(tmp_path, query))
    config = {"shop": "acme", "access_token": "shpat_x", "api_version": "2026-01",
              "api_url": "http://127.0.0.1:9"}  # nothing listens: a request would fail else
    status = source.check(config)
    assert status.status == "FAILED"
    assert status.message == (
        "Shopify Admin API version 2026-01 lacks what the source's queries need: "
        "inventory_levels.graphql: Cannot query field 'isActive' on type 'InventoryLevel'.; "
        "set api_version to one that has it (2026-04, 2026-07, 2026-10)")
    catalog = source.configured_catalog()
    with pytest.raises(ConfigError, match=r"version 2026-01 lacks .* 'isActive'"):
        list(source.read(config, catalog, {}))
    assert source.version_problem("2026-04") is None


# --- the spec and the record schemas ------------------------------------------------------


@pytest.mark.parametrize("stream", STREAMS)
def test_record_schemas_are_the_queries_fields(stream: str) -> None:
    committed = json.loads((ROOT / "specs/schemas/shopify" / f"{stream}.json").read_text())
    made = queries_check.record_schema(schema.DEFAULT_VERSION, queries_check.query(stream))
    # Made again by ``python -m connectors.shopify.queries_check specs/schemas/shopify``.
    added = set(queries_check.ADDED)  # the source's fields, not the query's
    assert {k: v for k, v in committed["properties"].items() if k not in added} == \
        made["properties"]
    Draft7Validator.check_schema(committed)


@pytest.mark.parametrize("stream", STREAMS)
def test_each_stream_states_the_scopes_its_queries_need(stream: str) -> None:
    needs = connector.needed_scopes(schema.DEFAULT_VERSION)[stream]
    declared = connector.loaded.streams[stream].scope
    assert declared == (", ".join(queries_check.describe(n) for n in needs) or "none")


def test_scopes_come_from_the_schema_scope_data() -> None:
    needs = connector.needed_scopes(schema.DEFAULT_VERSION)
    assert needs["customers"] == [("read_customers",)]
    assert ("read_orders", "read_marketplace_orders") in needs["orders"]
    assert needs["abandoned_checkouts"] == [("read_customers",), ("read_orders",),
                                            ("read_products",)]
    assert needs["shop"] == []
    assert queries_check.granted("read_orders", {"write_orders"})
    assert not queries_check.granted("read_orders", {"read_customers"})


def _config(path: Path, config: dict[str, Any]) -> dict[str, Any]:
    path.write_text(json.dumps(config))
    return connector.load_config(path)


def test_config_one_shop_several_shops_and_the_flat_layout(tmp_path: Path) -> None:
    one = _config(tmp_path / "a.json", {"shop_setup": {"mode": "one_shop", "shop": "acme",
                                                        "access_token": "shpat_1"}})
    assert [a["shop"] for a in connector.accounts(one)] == ["acme"]
    assert one["api_version"] == schema.DEFAULT_VERSION
    flat = _config(tmp_path / "b.json", {"shop": "acme.myshopify.com",
                                         "access_token": "shpat_1"})
    assert connector.accounts(flat)[0]["shop"] == "acme"
    several = _config(tmp_path / "c.json", {"shop_setup": {"mode": "several_shops", "shops": [
        {"shop": "one", "access_token": "shpat_1"},
        {"shop": "two", "access_token": "shpat_2", "client_secret": "own"}]},
        "client_secret": "shared"})
    accounts = connector.accounts(several)
    assert [(a["shop"], a["client_secret"]) for a in accounts] == [("one", "shared"),
                                                                   ("two", "own")]


@pytest.mark.parametrize(("config", "message"), [
    ({"shop": "Acme Shop", "access_token": "x"}, "must be the shop's myshopify.com name"),
    ({"shop": "acme.example.com", "access_token": "x"}, "must be the shop's myshopify.com"),
    ({"shop": "acme", "access_token": "x", "api_version": "2023-01"},
     "'api_version' must be one of 2025-10, 2026-01"),
    ({"shop": "acme", "access_token": "x", "api_url": "http://shop.example.com"},
     "plain http:// only for loopback"),
])
def test_bad_configs_say_what_is_wrong(tmp_path: Path, config: dict[str, Any],
                                       message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        _config(tmp_path / "c.json", config)


def test_the_shop_address_is_shopify_unless_an_api_url_is_given() -> None:
    real = connector.accounts({"shop": "acme.myshopify.com", "access_token": "x"})[0]
    client = connector.client(real)
    assert client.base_url == f"https://acme.myshopify.com/admin/api/{schema.DEFAULT_VERSION}"
    client.close()
    local = connector.accounts({"shop": "acme", "access_token": "x", "api_version": "2026-04",
                                "api_url": "http://127.0.0.1:8123"})[0]
    client = connector.client(local)
    assert client.base_url == "http://127.0.0.1:8123/acme/admin/api/2026-04"
    client.close()


# --- check: scopes and read_all_orders ----------------------------------------------------


ALL = {"read_customers", "read_orders", "read_products", "read_inventory", "read_locations",
       "read_all_orders"}


def _check(monkeypatch: pytest.MonkeyPatch, granted: set[str], **config: Any
           ) -> p.AirbyteConnectionStatus:
    monkeypatch.setattr(ShopifySource, "granted_scopes", lambda self, client: granted)
    # The engine's own check (one record per stream) is the sandbox tests' to run.
    monkeypatch.setattr(HttpSource, "check", lambda self, config: p.AirbyteConnectionStatus(
        status="SUCCEEDED"))
    return connector.check({"shop": "acme", "access_token": "x", **config})


def test_check_passes_with_every_scope(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _check(monkeypatch, ALL).status == "SUCCEEDED"
    writes = {s.replace("read_", "write_") for s in ALL - {"read_all_orders"}}
    assert _check(monkeypatch, writes | {"read_all_orders"}).status == "SUCCEEDED"


def test_check_names_the_missing_scopes_and_the_streams(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    status = _check(monkeypatch, ALL - {"read_orders", "read_inventory"})
    assert status.status == "FAILED"
    assert status.message.startswith("the app lacks access scopes the streams need: ")
    for need in ("read_inventory (for inventory_levels)", "read_orders (for "
                 "abandoned_checkouts)", "read_orders or read_marketplace_orders (for orders)"):
        assert need in status.message
    assert "read_customers" not in status.message


def test_check_says_when_read_all_orders_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    status = _check(monkeypatch, ALL - {"read_all_orders"})
    assert status.status == "FAILED"
    assert "orders older than 60 days are wanted (no start_date is set" in status.message
    assert "lacks the read_all_orders scope" in status.message
    recent = datetime.now(UTC).strftime("%Y-%m-%d")
    assert _check(monkeypatch, ALL - {"read_all_orders"},
                  start_date=recent).status == "SUCCEEDED"


def test_read_all_orders_rule() -> None:
    now = datetime(2026, 11, 30, tzinfo=UTC)
    assert all_orders_problem("2026-10-15", set(), True, now) is None  # within 60 days
    problem = all_orders_problem("2024-01-01", set(), True, now)
    assert problem is not None and "start_date 2024-01-01 is before 2026-10-01" in problem
    assert all_orders_problem("2024-01-01", {"read_all_orders"}, True, now) is None
    assert all_orders_problem(None, set(), False, now) is None  # orders are not read


# --- the mapping to the commerce model ----------------------------------------------------


def _validator(kind: str) -> Draft7Validator:
    return Draft7Validator(json.loads((MODEL / f"{kind}.json").read_text()))


def _map(kind: str, record: dict[str, Any]) -> dict[str, Any]:
    hook = commerce_hooks()[f"commerce.{kind}"]
    [out] = hook(record, None)
    errors = [e.message for e in _validator(kind).iter_errors(out)]
    assert errors == []
    return out


def _money(amount: str, currency: str | None = None) -> dict[str, Any]:
    money = {"amount": amount, **({"currencyCode": currency} if currency else {})}
    return {"shopMoney": money}


def customer(state: str | None = "SUBSCRIBED", sms: str | None = "NOT_SUBSCRIBED"
             ) -> dict[str, Any]:
    return {"shop": "acme", "id": "gid://shopify/Customer/7365453201593",
            "legacyResourceId": "7365453201593", "createdAt": "2025-01-02T03:04:05Z",
            "updatedAt": "2026-01-02T03:04:05Z", "firstName": "Ada", "lastName": "Lovelace",
            "note": None, "defaultEmailAddress": {"emailAddress": "ada@example.com"},
            "defaultPhoneNumber": {"phoneNumber": "+15555550100"},
            "emailMarketingConsent": None if state is None else {
                "marketingState": state, "marketingOptInLevel": "SINGLE_OPT_IN",
                "consentUpdatedAt": "2025-06-01T00:00:00Z"},
            "smsMarketingConsent": None if sms is None else {
                "marketingState": sms, "marketingOptInLevel": "SINGLE_OPT_IN",
                "consentUpdatedAt": None, "consentCollectedFrom": "SHOPIFY"},
            "numberOfOrders": "3", "amountSpent": {"amount": "120.50", "currencyCode": "EUR"},
            "defaultAddress": {"firstName": "Ada", "lastName": "Lovelace", "company": "AE",
                               "address1": "1 Main St", "address2": None, "city": "London",
                               "province": None, "zip": "N1", "country": "United Kingdom",
                               "countryCodeV2": "GB", "phone": None}}


@pytest.mark.parametrize(("shopify", "model"), [
    ("SUBSCRIBED", "subscribed"), ("UNSUBSCRIBED", "unsubscribed"),
    ("NOT_SUBSCRIBED", "not_subscribed"), ("PENDING", "pending"),
    ("REDACTED", "unsubscribed"), ("INVALID", "not_subscribed"), ("SOMETHING_NEW", "unknown"),
    (None, "unknown"),
])
def test_email_consent_in_every_state(shopify: str | None, model: str) -> None:
    out = _map("customer", customer(shopify))
    assert out["consent"]["email"]["state"] == model
    # Shopify asks no separate consent to abandoned-checkout reminders: the email one says.
    assert out["consent"]["abandoned_cart"]["state"] == model


@pytest.mark.parametrize(("shopify", "model"), [
    ("SUBSCRIBED", "subscribed"), ("UNSUBSCRIBED", "unsubscribed"), ("REDACTED", "unsubscribed"),
    ("PENDING", "pending"), ("NOT_SUBSCRIBED", "not_subscribed"), (None, "unknown")])
def test_sms_consent(shopify: str | None, model: str) -> None:
    assert _map("customer", customer(sms=shopify))["consent"]["sms"]["state"] == model


def test_a_customer_with_shopify_s_own_totals() -> None:
    out = _map("customer", customer())
    assert out["platform"] == "shopify" and out["account"] == "acme"
    assert out["id"] == "7365453201593"  # Shopify's number, as webhooks name it
    assert (out["email"], out["phone"]) == ("ada@example.com", "+15555550100")
    assert (out["order_count"], out["amount_spent"], out["amount_spent_currency"]) == \
        (3, 120.5, "EUR")
    assert out["addresses"][0]["country_code"] == "GB"
    assert out["consent"]["email"]["at"] == "2025-06-01T00:00:00Z"
    assert out["consent"]["sms"]["source"] == "SHOPIFY"


def order(financial: str = "PAID", fulfillment: str = "FULFILLED",
          cancel: str | None = None, refunded: str = "0.00") -> dict[str, Any]:
    return {"shop": "acme", "id": "gid://shopify/Order/5001", "name": "#1001",
            "createdAt": "2026-01-01T10:00:00Z", "updatedAt": "2026-01-03T10:00:00Z",
            "cancelledAt": "2026-01-02T10:00:00Z" if cancel else None, "cancelReason": cancel,
            "email": "Ada@Example.com", "customer": {"id": "gid://shopify/Customer/42"},
            "customerAcceptsMarketing": True, "displayFinancialStatus": financial,
            "displayFulfillmentStatus": fulfillment, "currencyCode": "EUR",
            "paymentGatewayNames": ["shopify_payments"], "sourceName": "web",
            "discountCodes": ["WELCOME10"],
            "totalPriceSet": _money("100.00", "EUR"), "subtotalPriceSet": _money("90.00"),
            "totalTaxSet": _money("15.00"), "totalShippingPriceSet": _money("10.00"),
            "totalDiscountsSet": _money("9.00"), "totalRefundedSet": _money(refunded),
            "currentTotalPriceSet": _money("100.00"), "billingAddress": None, "refunds": [],
            "lineItems": [{"id": "gid://shopify/LineItem/9", "sku": "TEE-M", "name": "Tee - M",
                           "quantity": 3, "currentQuantity": 2,
                           "product": {"id": "gid://shopify/Product/77"},
                           "variant": {"id": "gid://shopify/ProductVariant/78"},
                           "originalUnitPriceSet": _money("30.00"),
                           "discountedTotalSet": _money("81.00")}]}


@pytest.mark.parametrize(("financial", "fulfillment", "cancel", "status", "purchase"), [
    ("PAID", "FULFILLED", None, "shipped", True),
    ("PAID", "PARTIALLY_FULFILLED", None, "shipped", True),
    ("PAID", "UNFULFILLED", None, "processing", True),
    ("PAID", "RESTOCKED", None, "cancelled", True),
    ("PENDING", "UNFULFILLED", None, "pending", True),
    ("AUTHORIZED", "UNFULFILLED", None, "pending", True),
    ("PARTIALLY_REFUNDED", "FULFILLED", None, "partially_refunded", True),
    ("REFUNDED", "FULFILLED", None, "refunded", False),
    ("VOIDED", "UNFULFILLED", "CUSTOMER", "cancelled", False),
    ("PAID", "UNFULFILLED", "FRAUD", "cancelled", False),
    ("EXPIRED", "UNFULFILLED", None, "cancelled", False),
])
def test_order_statuses(financial: str, fulfillment: str, cancel: str | None, status: str,
                        purchase: bool) -> None:
    out = _map("order", order(financial, fulfillment, cancel))
    assert (out["status"], out["counts_as_purchase"]) == (status, purchase)
    assert out["platform_status"] == {"id": financial, "name": f"{financial}, {fulfillment}"}


def test_a_test_order_is_no_purchase() -> None:
    placed = _map("order", {**order(), "test": True})
    assert (placed["status"], placed["counts_as_purchase"]) == ("shipped", False)
    assert _map("order", {**order(), "test": False})["counts_as_purchase"] is True


def test_an_order_s_money_lines_coupons_and_refunds() -> None:
    out = _map("order", order("PARTIALLY_REFUNDED", refunded="30.00"))
    assert (out["id"], out["customer_id"], out["email"]) == ("5001", "42", "Ada@Example.com")
    assert (out["currency"], out["total"], out["subtotal"], out["tax"], out["shipping"],
            out["discount"], out["refunded"]) == ("EUR", 100, 90, 15, 10, 9, 30)
    assert out["lines"] == [{"id": "9", "product_id": "77", "variant_id": "78", "sku": "TEE-M",
                             "name": "Tee - M", "quantity": 3, "price": 30, "total": 81,
                             "refunded_quantity": 1}]
    assert out["coupons"] == [{"code": "WELCOME10"}]
    assert (out["channel"], out["payment_method"], out["marketing_opt_in"]) == \
        ("web", "shopify_payments", True)


def checkout(completed: str | None = None) -> dict[str, Any]:
    return {"shop": "acme", "id": "gid://shopify/AbandonedCheckout/31",
            "createdAt": "2026-01-01T10:00:00Z", "updatedAt": "2026-01-01T11:00:00Z",
            "completedAt": completed,
            "abandonedCheckoutUrl": "https://acme.myshopify.com/1/checkouts/ab/recover?key=k",
            "customer": {"id": "gid://shopify/Customer/42",
                         "defaultEmailAddress": {"emailAddress": "ada@example.com"}},
            "totalPriceSet": _money("50.00", "EUR"), "subtotalPriceSet": _money("45.00"),
            "totalDiscountSet": _money("0.00"),
            "lineItems": [{"id": "gid://shopify/AbandonedCheckoutLineItem/1", "sku": "TEE-M",
                           "title": "Tee", "quantity": 1,
                           "product": {"id": "gid://shopify/Product/77",
                                       "onlineStoreUrl": "https://acme.example/products/tee"},
                           "variant": {"id": "gid://shopify/ProductVariant/78"},
                           "image": {"url": "https://cdn.example/tee.png"},
                           "discountedUnitPriceSet": _money("45.00")}]}


def test_an_abandoned_checkout_carries_its_recovery_link() -> None:
    out = _map("cart", checkout())
    assert (out["id"], out["state"], out["customer_id"], out["email"]) == \
        ("31", "abandoned", "42", "ada@example.com")
    assert out["recovery_url"].endswith("/recover?key=k")
    assert out["items"][0] == {"product_id": "77", "variant_id": "78", "sku": "TEE-M",
                               "name": "Tee", "quantity": 1, "price": 45,
                               "url": "https://acme.example/products/tee",
                               "image_url": "https://cdn.example/tee.png"}
    assert _map("cart", checkout("2026-01-02T00:00:00Z"))["state"] == "recovered"


def test_products_collections_stock_and_the_shop() -> None:
    product = {"shop": "acme", "id": "gid://shopify/Product/77", "title": "Tee",
               "handle": "tee", "status": "DRAFT", "createdAt": "2025-01-01T00:00:00Z",
               "updatedAt": "2026-01-01T00:00:00Z", "onlineStoreUrl": None,
               "totalInventory": 12,
               "featuredMedia": {"preview": {"image": {"url": "https://cdn.example/t.png"}}},
               "collections": [{"id": "gid://shopify/Collection/5"}],
               "variants": [{"id": "gid://shopify/ProductVariant/78", "sku": "TEE-M",
                             "title": "M", "price": "30.00", "inventoryQuantity": 12,
                             "selectedOptions": [{"name": "Size", "value": "M"}],
                             "inventoryItem": {"id": "gid://shopify/InventoryItem/79"}}]}
    out = _map("product", product)
    assert (out["id"], out["visible"], out["price"], out["sku"], out["category_ids"]) == \
        ("77", False, 30, "TEE-M", ["5"])
    assert out["variants"] == [{"id": "78", "sku": "TEE-M", "price": 30, "stock": 12,
                                "options": [{"name": "Size", "value": "M"}]}]
    assert _map("product", {**product, "status": "ACTIVE"})["visible"] is True
    item = {"shop": "acme", "id": "gid://shopify/InventoryItem/79", "sku": "TEE-M",
            "updatedAt": "2026-01-01T00:00:00Z",
            "variant": {"id": "gid://shopify/ProductVariant/78",
                        "product": {"id": "gid://shopify/Product/77"}},
            "inventoryLevels": [
                {"id": "gid://shopify/InventoryLevel/1?inventory_item_id=79",
                 "location": {"id": "gid://shopify/Location/1", "name": "Warehouse 1"},
                 "quantities": [{"name": "available", "quantity": 5}]},
                {"id": "gid://shopify/InventoryLevel/2?inventory_item_id=79",
                 "location": {"id": "gid://shopify/Location/2", "name": "Warehouse 2"},
                 "quantities": [{"name": "available", "quantity": 7}]}]}
    stock = _map("stock_level", item)
    assert (stock["id"], stock["product_id"], stock["available"]) == ("78", "77", 12)
    assert [loc["id"] for loc in stock["locations"]] == ["1", "2"]
    category = _map("category", {"shop": "acme", "id": "gid://shopify/Collection/5",
                                 "title": "Summer", "updatedAt": "2026-01-01T00:00:00Z"})
    assert (category["id"], category["name"]) == ("5", "Summer")
    shop = _map("store", {"shop": "acme", "id": "gid://shopify/Shop/1", "name": "Acme",
                          "currencyCode": "EUR", "ianaTimezone": "Europe/Paris",
                          "primaryDomain": {"host": "acme.example",
                                            "url": "https://acme.example"},
                          "billingAddress": {"countryCodeV2": "FR"}})
    assert (shop["id"], shop["url"], shop["country_code"], shop["currency"]) == \
        ("acme", "https://acme.example", "FR", "EUR")


def test_global_ids_become_shopify_s_numbers_only_under_id() -> None:
    record = {"id": "gid://shopify/Order/1", "note": "gid://shopify/Order/2",
              "lines": [{"id": "gid://shopify/LineItem/3"}]}
    assert numeric_ids(record) == {"id": "1", "note": "gid://shopify/Order/2",
                                   "lines": [{"id": "3"}]}
    assert record["id"] == "gid://shopify/Order/1"  # the stream's record is left as it is


def test_the_mapping_covers_every_model_kind_it_has_a_stream_for() -> None:
    assert set(COMMERCE.kinds) == {"customer", "order", "product", "category", "cart",
                                   "stock_level", "store", "erasure"}
    streams = {kind.stream for kind in COMMERCE.kinds.values()}
    assert streams == {*STREAMS, "customer_erasures"}


def test_a_redacted_shopper_is_an_erasure_of_the_model() -> None:
    """customers/redact, read by id from the spool: the customer's record, or the tombstone of
    one the shop has already forgotten; either is the model's request to forget them."""
    gone = {"shop": "acme", "id": "gid://shopify/Customer/191167", "is_deleted": True,
            "webhook_scope": "customers/redact"}
    erasure = _map("erasure", gone)
    assert erasure == {"platform": "shopify", "account": "acme", "id": "191167",
                       "deleted": False, "updated_at": None, "subject": "customer",
                       "email": None, "phone": None}
    still = _map("erasure", {**customer(), "webhook_scope": "customers/redact"})
    assert (still["id"], still["email"], still["deleted"]) == \
        ("7365453201593", "ada@example.com", False)
    declared = connector.loaded.streams["customer_erasures"]
    assert declared.live is not None and declared.live.only
    assert declared.live.resource == "customer_redaction" and declared.optional


# --- against the sandbox (runner sandbox shopify) -----------------------------------------


class ShopifySandbox:
    """A running ``runner sandbox shopify`` and what it printed when ready."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen([RUNNER, "sandbox", "shopify", "--port", "0", *args],
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                        text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.process.kill()
            raise RuntimeError("runner sandbox shopify did not start")
        self.ready = json.loads(line)

    def config(self, **extra: Any) -> dict[str, Any]:
        return {"shop": self.ready["shop"], "access_token": self.ready["access_token"],
                "api_url": self.ready["url"], **extra}

    def admin(self, path: str, body: dict[str, Any] | None = None, method: str = "POST"
              ) -> Any:
        answer = requests.request(method, f"{self.ready['url']}/_sandbox/{path}", json=body,
                                  headers={"X-Shopify-Access-Token":
                                           self.ready["access_token"]}, timeout=30)
        answer.raise_for_status()
        return answer.json()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def shopify_sandbox() -> Iterator[Callable[..., ShopifySandbox]]:
    started: list[ShopifySandbox] = []

    def start(*args: str) -> ShopifySandbox:
        started.append(ShopifySandbox(*args))
        return started[-1]

    yield start
    for box in started:
        box.stop()


def _catalog(tmp_path: Path, names: set[str]) -> Path:
    catalog = connector.configured_catalog(everything=True)
    catalog.streams = [s for s in catalog.streams if s.stream.name in names]
    path = tmp_path / f"catalog-{len(list(tmp_path.iterdir()))}.json"
    path.write_text(json.dumps(catalog.model_dump(mode="json", exclude_none=True)))
    return path


def _read(tmp_path: Path, config: dict[str, Any], names: set[str],
          state: Path | None = None) -> tuple[list[dict[str, Any]], Path]:
    """``runner read shopify`` of the streams ``names``; its messages and the file they are
    in (a state for the next read)."""
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    args = ["runner", "read", "shopify", "--config", str(config_path), "--catalog",
            str(_catalog(tmp_path, names))]
    if state is not None:
        args += ["--state", str(state)]
    done = run_cli(*args, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    out = tmp_path / f"out-{len(list(tmp_path.iterdir()))}.jsonl"
    out.write_bytes(done.stdout)
    return messages(done.stdout), out


def _records(output: list[dict[str, Any]], stream: str) -> list[dict[str, Any]]:
    return [m["record"]["data"] for m in output
            if m["type"] == "RECORD" and m["record"]["stream"] == stream]


def _cursor(output: list[dict[str, Any]], stream: str, shop: str) -> str:
    states = [m["state"]["stream"]["stream_state"] for m in output if m["type"] == "STATE"
              and m["state"]["stream"]["stream_descriptor"]["name"] == stream]
    return str(states[-1]["shops"][shop]["updatedAt"])


@pytest.mark.e2e
def test_a_read_then_an_incremental_read_of_what_changed(shopify_sandbox: Any,
                                                         tmp_path: Path) -> None:
    box = shopify_sandbox("--customers", "80", "--orders", "150", "--products", "12",
                          "--checkouts", "20", "--seed", "7", "--plan", "plus")
    shop = box.ready["shop"]
    names = {"customers", "orders", "commerce_customers", "commerce_orders"}
    first, state = _read(tmp_path, box.config(), names)
    assert len(_records(first, "customers")) == 80
    assert len(_records(first, "orders")) == 150
    assert len(_records(first, "commerce_orders")) == 150
    lines = [r for o in _records(first, "orders") for r in o["lineItems"]]
    assert lines and all("id" in line for line in lines)
    time.sleep(1.1)  # updatedAt is to the second: the changes come after the saved cursor
    changed = box.admin("mutate", {"resource": "customers", "update": 4, "seed": "s1"})
    made = box.admin("mutate", {"resource": "orders", "create": 2, "seed": "s2"})
    second, _ = _read(tmp_path, box.config(), names, state)
    customers = {r["legacyResourceId"] for r in _records(second, "customers")}
    orders = {r["legacyResourceId"] for r in _records(second, "orders")}
    assert {str(i) for i in changed["updated"]} <= customers
    assert {str(i) for i in made["created"]} <= orders
    # Incremental: what changed (and the new orders' buyers, whose totals moved), not all.
    assert len(customers) < 20 and len(orders) < 10
    assert _cursor(second, "customers", shop) > _cursor(first, "customers", shop)


@pytest.mark.e2e
def test_changes_during_a_read_are_not_skipped(shopify_sandbox: Any, tmp_path: Path) -> None:
    """As tests/test_consistency.py does for BigCommerce: the shop changes all through the
    read; every record last changed before the cursor the read saved arrives in that
    version (one of the cursor's own second may wait for the next read, which reads that
    second again), and the next read brings every later one."""
    box = shopify_sandbox("--customers", "600", "--orders", "600", "--products", "5",
                          "--checkouts", "5", "--seed", "41", "--plan", "enterprise",
                          "--latency-ms", "15")
    shop = box.ready["shop"]
    stop = threading.Event()
    rounds = [0]

    def mutate() -> None:
        while not stop.is_set():
            for resource in ("customers", "orders"):
                box.admin("mutate", {"resource": resource, "update": 5,
                                     "seed": f"{resource}-{rounds[0]}"})
            rounds[0] += 1
            time.sleep(0.05)

    mutator = threading.Thread(target=mutate)
    mutator.start()
    time.sleep(1.0)
    try:
        first, state = _read(tmp_path, box.config(), {"customers", "orders"})
    finally:
        stop.set()
        mutator.join()
    assert rounds[0] > 10, "the shop must really change during the read"
    time.sleep(1.1)
    final = box.admin("snapshot", method="GET")
    second, _ = _read(tmp_path, box.config(), {"customers", "orders"}, state)
    for stream, resource in (("customers", "customers"), ("orders", "orders")):
        cursor = _cursor(first, stream, shop)
        in_first = {r["legacyResourceId"]: r["updatedAt"] for r in _records(first, stream)}
        seen = {**in_first,
                **{r["legacyResourceId"]: r["updatedAt"] for r in _records(second, stream)}}
        late = 0
        for number, updated in final[resource]:
            # Dates are whole seconds: a change in the cursor's own second may land behind
            # the read's position, and the next read starts at that second again (>=).
            if updated < cursor:  # covered by the first read: in its last version
                assert in_first.get(str(number)) == updated, (stream, number, updated, cursor)
            else:
                late += 1
            assert seen.get(str(number)) == updated, (stream, number, updated, cursor)
        assert late > 0, f"no {stream} changed after the first read's cursor"


@pytest.mark.e2e
def test_check_against_the_sandbox_names_what_the_token_lacks(shopify_sandbox: Any) -> None:
    box = shopify_sandbox("--customers", "5", "--orders", "5", "--products", "2",
                          "--seed", "3")
    assert connector.check(box.config()).status == "SUCCEEDED"
    box.admin("scopes", {"scopes": ["read_customers", "read_orders", "read_products",
                                    "read_inventory", "read_locations"]})
    status = connector.check(box.config())
    assert status.status == "FAILED" and "lacks the read_all_orders scope" in status.message
    box.admin("scopes", {"scopes": ["read_orders", "read_all_orders", "read_products",
                                    "read_inventory", "read_locations"]})
    status = connector.check(box.config())
    assert status.status == "FAILED"
    assert ("read_customers (for customers, orders, abandoned_checkouts, customer_erasures)"
            in status.message)
    bad = connector.check({**box.config(), "access_token": "shpat_not-the-token"})
    assert bad.status == "FAILED" and "Shopify rejected the access token" in bad.message


TestShopifyStandard = source_tests(
    connector, sandbox_args=["--customers", "60", "--orders", "120", "--products", "15",
                             "--checkouts", "20", "--seed", "21", "--plan", "enterprise"],
    config=lambda ready: {"shop": ready["shop"], "access_token": ready["access_token"],
                          "api_url": ready["url"]},
    # Erasures are known only from spooled customers/redact webhooks
    # (tests/test_shopify_webhooks.py and tests/test_privacy.py have them).
    empty=frozenset({"customer_erasures", "commerce_erasures", "shop_erasures",
                     "commerce_account_erasures"}))
TestShopifyStandard = pytest.mark.e2e(TestShopifyStandard)


MODEL_STREAMS = {"commerce_customers", "commerce_orders", "commerce_products",
                 "commerce_categories", "commerce_stock_levels", "commerce_carts"}


@pytest.mark.e2e
def test_a_shop_syncs_into_brevo_with_no_change_to_the_destination(
        shopify_sandbox: Any, brevo: Any, tmp_path: Path) -> None:
    """The model streams of a shop, piped into the Brevo sandbox: a contact per customer with
    an email, Shopify's own totals, the buyers list, and the abandoned-checkout list holding
    only shoppers subscribed to email marketing (no one unsubscribed is put on a list)."""
    box = shopify_sandbox("--customers", "60", "--orders", "120", "--products", "10",
                          "--checkouts", "30", "--seed", "12", "--plan", "enterprise")
    destination = tmp_path / "brevo.json"
    destination.write_text(json.dumps({"api_url": brevo.url, "api_key": brevo.key,
                                       "lists": LISTS, "state_dir": str(tmp_path / "state")}))
    output, out = _read(tmp_path, box.config(), MODEL_STREAMS | {"customers"})
    customers = {r["defaultEmailAddress"]["emailAddress"].lower(): r
                 for r in _records(output, "customers") if r.get("defaultEmailAddress")}
    model = _records(output, "commerce_customers")
    # Only the model goes to the destination.
    piped = b"".join(line + b"\n" for line in out.read_bytes().splitlines()
                     if b'"stream": "customers"' not in line
                     and b'"name": "customers"' not in line)
    written = run_cli("runner", "write", "brevo", "--config", str(destination), stdin=piped,
                      timeout=300)
    assert written.returncode == 0, written.stderr.decode()[-2000:]
    contacts = brevo.contacts()
    assert set(contacts) == set(customers) and len(model) == len(customers)
    for email, record in customers.items():
        attributes = contacts[email]["attributes"]
        assert attributes["ORDER_COUNT"] == int(record["numberOfOrders"])
        assert attributes["TOTAL_SPENT"] == pytest.approx(float(record["amountSpent"]["amount"]))
        assert 40 in contacts[email]["listIds"]
    # The buyers list is the destination's rule: an order that counts as a purchase (Shopify's
    # numberOfOrders counts cancelled orders too).
    bought = {o["customer_id"] for o in _records(output, "commerce_orders")
              if o["counts_as_purchase"] and o["customer_id"]}
    for email, record in customers.items():
        assert (41 in contacts[email]["listIds"]) == (record["legacyResourceId"] in bought)
    on_cart_list = {e for e, c in contacts.items() if 42 in c["listIds"]}
    assert on_cart_list, "some subscribed shopper has an abandoned checkout"
    for email in on_cart_list:
        assert customers[email]["emailMarketingConsent"]["marketingState"] == "SUBSCRIBED"
    states = {c["emailMarketingConsent"]["marketingState"] for c in customers.values()}
    assert {"SUBSCRIBED", "UNSUBSCRIBED"} <= states  # the shop has consent in several states


def test_the_shopify_plugin_names_no_brevo_name() -> None:
    plugin = [SPEC, *(ROOT / "connectors" / "shopify").glob("*.py"),
              *(ROOT / "connectors" / "shopify").glob("*.json"),
              *(ROOT / "connectors" / "shopify" / "queries").glob("*.graphql")]
    assert [path.name for path in plugin if "brevo" in path.read_text().lower()] == []


def _bulk_spec(tmp_path: Path, min_records: int) -> Path:
    """The spec with its bulk threshold at ``min_records`` (a sandbox shop is small)."""
    raw = json.loads(SPEC.read_text())
    for stream in raw["streams"]:
        if stream.get("request", {}).get("bulk"):
            stream["request"]["bulk"]["min_records"] = min_records
    shutil.copytree(SPEC.parent / "schemas" / "shopify", tmp_path / "schemas" / "shopify")
    path = tmp_path / "shopify.json"
    path.write_text(json.dumps(raw))
    return path


def _read_in_process(source: ShopifySource, config: dict[str, Any], names: set[str]
                     ) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    catalog = source.configured_catalog()
    catalog.streams = [c for c in catalog.streams if c.stream.name in names]
    output = [json.loads(line) for line in
              b"".join(source.read(config, catalog, {})).splitlines()]
    records: dict[str, dict[str, Any]] = {name: {} for name in names}
    for m in output:
        if m["type"] == "RECORD":
            records[m["record"]["stream"]][m["record"]["data"]["id"]] = m["record"]["data"]
    return records, output


@pytest.mark.e2e
def test_a_backfill_by_bulk_operation_brings_what_pages_bring(shopify_sandbox: Any,
                                                              tmp_path: Path) -> None:
    """Over the spec's size, a first read is one bulk operation per stream (JSONL, children
    joined to their parents by __parentId): the same records, field for field, as the paged
    read."""
    box = shopify_sandbox("--customers", "40", "--orders", "80", "--products", "10",
                          "--checkouts", "5", "--seed", "5", "--plan", "enterprise",
                          "--bulk-delay-ms", "50")
    names = {"customers", "orders", "products"}
    bulk = ShopifySource(_bulk_spec(tmp_path, 10), hooks=commerce_hooks())
    by_bulk, output = _read_in_process(bulk, box.config(), names)
    by_pages, _ = _read_in_process(connector, box.config(), names)
    assert {n: len(r) for n, r in by_pages.items()} == {"customers": 40, "orders": 80,
                                                         "products": 10}
    assert by_bulk == by_pages
    assert any(o["lineItems"] for o in by_bulk["orders"].values())
    operations = {m["state"]["stream"]["stream_descriptor"]["name"] for m in output
                  if m["type"] == "STATE" and "bulk_operation" in
                  m["state"]["stream"]["stream_state"]["shops"][box.ready["shop"]]}
    assert operations == names  # each was read by a bulk operation, not by pages


@pytest.mark.e2e
def test_read_mode_webhooks_fetches_what_webhooks_named(shopify_sandbox: Any,
                                                        tmp_path: Path) -> None:
    """``read_mode: webhooks`` (the forwarder's): only the records the spooled webhooks name
    are read, by id (``nodes(ids:)``); one the shop no longer has is a tombstone, and its
    model record says deleted."""
    from framework.webhooks.spool import Spool

    box = shopify_sandbox("--customers", "30", "--orders", "30", "--products", "5",
                          "--checkouts", "5", "--seed", "17", "--plan", "enterprise")
    shop = box.ready["shop"]
    spool = Spool(tmp_path / "spool.db")
    for n, (topic, resource, number) in enumerate([
            ("customers/update", "customer", "3"), ("customers/update", "customer", "5"),
            ("customers/delete", "customer", "999999"), ("refunds/create", "order", "7")]):
        spool.append(shop, topic, resource, number, {"id": int(number)}, f"event-{n}")
    spool.close()
    time.sleep(1.1)  # spooled events are read once they are a second old
    config = box.config(spool_path=str(tmp_path / "spool.db"), read_mode="webhooks")
    output, _ = _read(tmp_path, config, {"customers", "orders", "commerce_customers"})
    customers = {r["id"]: r for r in _records(output, "customers")}
    assert sorted(customers) == ["gid://shopify/Customer/3", "gid://shopify/Customer/5",
                                 "gid://shopify/Customer/999999"]
    assert customers["gid://shopify/Customer/999999"]["is_deleted"] is True
    assert customers["gid://shopify/Customer/3"]["defaultEmailAddress"]["emailAddress"]
    assert [r["id"] for r in _records(output, "orders")] == ["gid://shopify/Order/7"]
    model = {r["id"]: r for r in _records(output, "commerce_customers")}
    assert model["999999"]["deleted"] is True and model["3"]["deleted"] is False


def test_every_query_s_requested_cost_fits_shopify_s_1000_point_limit() -> None:
    """Per Shopify's cost rules (the sandbox's pricer): a page query at its page size, a
    nested query at its, a by-id query at its batch: each asks at most 1,000 points, the
    most one query may cost."""
    from graphql import OperationDefinitionNode, parse
    from graphql.execution.values import get_variable_values

    from connectors.shopify.sandbox.cost import MAX_QUERY_COST, Pricer

    graphql = schema.load(schema.DEFAULT_VERSION)

    def cost(name: str, variables: dict[str, Any]) -> int:
        operation = parse(queries_check.query(name)).definitions[0]
        assert isinstance(operation, OperationDefinitionNode)
        values = get_variable_values(graphql, operation.variable_definitions or [], variables)
        assert not isinstance(values, list), values  # a list: the variables' errors
        return Pricer(graphql, {}, values).operation(operation)

    def stem(file: str) -> str:
        return file.rpartition("/")[2].removesuffix(".graphql")

    checked = {}
    for stream in connector.loaded.model.streams:
        request = stream.request
        if request is None:
            continue
        page = {"first": request.page_size} if request.connection != "shop" else {}
        checked[stream.name] = cost(stem(request.query), page)
        for nested in request.nested:
            checked[stem(nested.query)] = cost(stem(nested.query),
                                               {"id": "gid://shopify/Order/1",
                                                "first": nested.page_size})
        if request.by_ids is not None and stream.live is not None:
            ids = [f"gid://shopify/Node/{n}" for n in range(stream.live.batch)]
            checked[stem(request.by_ids.query)] = cost(stem(request.by_ids.query),
                                                       {"ids": ids})
    assert len(checked) == 19
    assert max(checked.values()) <= MAX_QUERY_COST, checked
    assert checked["orders"] > 500  # the page sizes use the room there is
