"""The commerce model (specs/schemas/commerce/v1) and BigCommerce's mapping to it.

Two halves: every record the BigCommerce sandbox yields (two stores, carts and deletions from
webhooks included), mapped by the source's ``commerce_*`` streams, validates against the
model's schemas and has its model record; then the tricky parts of the mapping, in-process
(statuses and purchases, consent, URLs, consignments to lines, stock sums, tombstones), and
the engine's refusals of a bad mapping file.
"""

from __future__ import annotations

import copy
import json
import re
import sqlite3
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Sandbox, start_sandbox
from jsonschema import Draft7Validator

from connectors.bigcommerce import COMMERCE, COMMERCE_FUNCTIONS, connector
from connectors.sqlite import connector as sqlite
from framework.declarative.mapping import Mapping, MappingError
from framework.protocol import messages as p
from framework.webhooks.spool import Spool

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "specs" / "schemas" / "commerce" / "v1"
MAPPING_FILE = ROOT / "connectors" / "bigcommerce" / "commerce.json"
ENGINE = [ROOT / "framework" / "declarative" / "mapping.py",
          ROOT / "framework" / "declarative" / "mapping_expressions.py"]
KINDS = {"customer", "order", "product", "category", "cart", "stock_level", "store"}
SCHEMAS = {kind: json.loads((MODEL / f"{kind}.json").read_text()) for kind in KINDS}
STORE = {"secure_url": "https://shop.example.com/", "currency": "EUR"}


def stream_kinds() -> dict[str, str]:
    """Model stream -> kind, from the spec (hook ``commerce.<kind>``)."""
    return {s.name: s.parent.hook.removeprefix("commerce.")
            for s in connector.loaded.model.streams
            if s.parent is not None and s.parent.hook.startswith("commerce.")}


def valid(kind: str, record: dict[str, Any]) -> None:
    errors = list(Draft7Validator(SCHEMAS[kind]).iter_errors(record))
    assert not errors, f"{kind}: {errors[0].message} at {list(errors[0].absolute_path)}"


# --- every record of the sandbox -----------------------------------------------------------

def _spool(box: Sandbox, spool: Path) -> dict[str, Any]:
    """Carts in every state, and a deleted customer, order and product, spooled as their
    webhooks would be."""
    store = box.stores[0]
    made = box.admin("POST", "carts", {"create": 4})["created"]
    box.admin("POST", "carts", {"abandon": [made[0]], "convert": [made[1]],
                                "delete": [made[2]]})
    events = [("store/cart/abandoned", "cart", made[0]), ("store/cart/converted", "cart", made[1]),
              ("store/cart/deleted", "cart", made[2]), ("store/cart/created", "cart", made[3])]
    gone = {}
    for resource, scope in (("customers", "store/customer/deleted"),
                            ("orders", "store/order/archived"),
                            ("products", "store/product/deleted")):
        deleted = box.admin("POST", "mutate", {"resource": resource, "delete": 1,
                                               "seed": 3})["deleted"]
        gone[resource] = deleted[0]
        events.append((scope, resource[:-1], deleted[0]))
    queue = Spool(spool)
    for n, (scope, resource, resource_id) in enumerate(events):
        queue.append(store["store_hash"], scope, resource, str(resource_id),
                     {"data": {"id": resource_id}}, f"model-{n}")
    queue.close()
    time.sleep(1.1)  # spooled events are read once a second old
    return {"carts": made, **gone}


@pytest.fixture(scope="module")
def sandbox_reads(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Two stores read whole (every stream, the model's included), then the first store's
    webhooks read (deletions become tombstones)."""
    box = start_sandbox("--stores", "2", "--customers", "30", "--orders", "60", "--products",
                        "8", "--seed", "21", "--plan", "enterprise")
    try:
        spool = tmp_path_factory.mktemp("model") / "spool.db"
        made = _spool(box, spool)
        stores = [{"store_hash": s["store_hash"], "access_token": s["access_token"]}
                  for s in box.stores]
        config = {"api_url": box.url, "stores": stores, "page_size": 50,
                  "spool_path": str(spool)}
        catalog = connector.configured_catalog(everything=True)
        polled = b"".join(connector.read(config, catalog, {}))
        hooks = b"".join(connector.read({**config, "stores": stores[:1],
                                         "read_mode": "webhooks"}, catalog, {}))
        yield {"polled": [json.loads(x) for x in polled.splitlines()],
               "webhooks": [json.loads(x) for x in hooks.splitlines()], "made": made,
               "stores": [s["store_hash"] for s in stores], "catalog": catalog,
               "config": config}
    finally:
        box.stop()


def records(messages: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for message in messages:
        if message["type"] == "RECORD":
            out[message["record"]["stream"]].append(message["record"]["data"])
    return out


def test_every_model_record_of_the_sandbox_validates(sandbox_reads: dict[str, Any]) -> None:
    kinds = stream_kinds()
    counted: dict[str, int] = defaultdict(int)
    for read in ("polled", "webhooks"):
        for stream, rows in records(sandbox_reads[read]).items():
            if stream in kinds:
                for row in rows:
                    valid(kinds[stream], row)
                    counted[kinds[stream]] += 1
    assert set(counted) == KINDS, counted  # every kind had records
    assert COMMERCE.skipped == 0


def test_every_api_record_has_its_model_record(sandbox_reads: dict[str, Any]) -> None:
    """Each record of a mapped API stream comes out once in its model stream, keyed by
    platform, store and id (two stores' records side by side), tombstones as tombstones."""
    kinds = stream_kinds()
    by_kind = {kind: spec.stream for kind, spec in COMMERCE.kinds.items()}
    ids = {"categories": "category_id", "inventory": "variant_id", "store": "store_hash"}
    for read in ("polled", "webhooks"):
        found = records(sandbox_reads[read])
        for model_stream, kind in kinds.items():
            source = by_kind[kind]
            field = ids.get(source, "id")
            expected = {(r["store_hash"], str(r[field]), bool(r.get("is_deleted")))
                        for r in found.get(source, [])}
            mapped = [(r["account"], r["id"], r["deleted"]) for r in found.get(model_stream, [])]
            assert all(r["platform"] == "bigcommerce" for r in found.get(model_stream, []))
            assert len(mapped) == len(set(mapped)), f"{model_stream}: a record twice"
            assert set(mapped) == expected, f"{read}: {model_stream} differs from {source}"
    polled = records(sandbox_reads["polled"])
    assert {r["account"] for r in polled["commerce_customers"]} == set(sandbox_reads["stores"])


def test_deletions_and_cart_endings_from_webhooks(sandbox_reads: dict[str, Any]) -> None:
    made = sandbox_reads["made"]
    found = records(sandbox_reads["webhooks"])
    tombstones = {stream: {r["id"] for r in rows if r["deleted"]}
                  for stream, rows in found.items() if stream.startswith("commerce_")}
    assert str(made["customers"]) in tombstones["commerce_customers"]
    assert str(made["orders"]) in tombstones["commerce_orders"]
    assert str(made["products"]) in tombstones["commerce_products"]
    carts = {r["id"]: r for r in found["commerce_carts"]}
    abandoned, converted, deleted, active = (carts[c] for c in made["carts"])
    assert (abandoned["state"], abandoned["deleted"]) == ("abandoned", False)
    assert abandoned["recovery_url"].startswith("https://")  # minted by the source's hook
    assert (converted["state"], converted["deleted"]) == ("recovered", True)
    assert (deleted["state"], deleted["deleted"]) == ("gone", True)
    assert (active["state"], active["deleted"]) == ("active", False)
    assert converted["updated_at"]  # when the end was seen: the newest version wins


def test_model_states_resume_on_their_own_cursor(sandbox_reads: dict[str, Any]) -> None:
    """A model stream's state is keyed by its own cursor (updated_at), per store, holds the
    newest record's, and a run given it reads only what is newer."""
    polled = sandbox_reads["polled"]
    final = [m["state"]["stream"]["stream_state"] for m in polled if m["type"] == "STATE"
             and m["state"]["stream"]["stream_descriptor"]["name"] == "commerce_orders"][-1]
    newest = max(r["updated_at"] for r in records(polled)["commerce_orders"])
    assert set(final["stores"]) == set(sandbox_reads["stores"])
    assert max(s["updated_at"] for s in final["stores"].values()) >= newest
    assert all("updated_at" in s and "date_modified" not in s for s in final["stores"].values())
    catalog = p.ConfiguredAirbyteCatalog(streams=[
        s for s in sandbox_reads["catalog"].streams if s.stream.name == "commerce_orders"])
    again = b"".join(connector.read(sandbox_reads["config"], catalog,
                                    {"commerce_orders": final}))
    orders = records([json.loads(x) for x in again.splitlines()]).get("commerce_orders", [])
    first = len(records(polled)["commerce_orders"])
    assert len(orders) < 5 < first  # at most the records at the cursor itself, read again


def test_model_streams_mirror_into_sqlite(sandbox_reads: dict[str, Any], tmp_path: Path
                                          ) -> None:
    """A destination that knows nothing of the model stores it by its keys (what ``runner
    read bigcommerce | runner write sqlite`` does with a catalog of model streams)."""
    catalog = p.ConfiguredAirbyteCatalog(streams=[
        s for s in sandbox_reads["catalog"].streams if s.stream.name.startswith("commerce_")])
    wanted = {s.stream.name for s in catalog.streams}
    messages = [m for m in sandbox_reads["polled"] if
                (m["type"] == "RECORD" and m["record"]["stream"] in wanted)
                or (m["type"] == "STATE"
                    and m["state"]["stream"]["stream_descriptor"]["name"] in wanted)]
    database = tmp_path / "mirror.db"
    echoed = list(sqlite.write({"path": str(database)}, catalog, messages))
    assert echoed
    db = sqlite3.connect(database)
    customers = len(records(sandbox_reads["polled"])["commerce_customers"])
    assert db.execute("SELECT COUNT(*) FROM commerce_customers").fetchone() == (customers,)


# --- the tricky parts, in-process ----------------------------------------------------------

def order(**fields: Any) -> dict[str, Any]:
    return {"id": 7, "store_hash": "abc", "date_created": "Tue, 20 Nov 2012 00:00:00 +0000",
            "date_modified": "Tue, 20 Nov 2012 01:00:00 +0000", "status_id": 11,
            "status": "Awaiting Fulfillment", "customer_id": 0, "currency_code": "USD",
            "total_inc_tax": "12.5000", "billing_address": {"email": "a@example.com",
                                                           "street_1": "1 Main St",
                                                           "country_iso2": "US"},
            "consignments": [], **fields}


def offline(path: str, *args: Any, **kwargs: Any) -> Any:
    raise AssertionError(f"no request expected ({path})")


@pytest.mark.parametrize("status_id", [*range(15), 99, None])
def test_status_table_and_purchase_rule(status_id: int | None) -> None:
    """The purchase rule is the one the Brevo ledger applies today: every status but
    Incomplete, Refunded, Cancelled and Declined counts (an unknown one too)."""
    # The rule the Brevo destination's ledger applied before it read the model.
    not_counted = {0, 4, 5, 6}  # Incomplete, Refunded, Cancelled, Declined

    mapped = COMMERCE.map("order", order(status_id=status_id), fetch=offline,
                          context={"store": STORE})
    assert mapped is not None
    valid("order", mapped)
    assert mapped["counts_as_purchase"] is (status_id not in not_counted)
    assert mapped["platform_status"]["id"] == (None if status_id is None else str(status_id))
    expected = {0: "incomplete", 4: "refunded", 5: "cancelled", 6: "cancelled", 10: "completed",
                11: "processing", 14: "partially_refunded", 99: "unknown", None: "unknown"}
    if status_id in expected:
        assert mapped["status"] == expected[status_id]


def test_order_money_guest_and_dates() -> None:
    mapped = COMMERCE.map("order", order(), fetch=offline)
    assert mapped is not None
    assert (mapped["customer_id"], mapped["email"]) == (None, "a@example.com")  # a guest
    assert (mapped["total"], mapped["currency"]) == (12.5, "USD")
    assert (mapped["created_at"], mapped["updated_at"]) == ("2012-11-20T00:00:00Z",
                                                            "2012-11-20T01:00:00Z")
    assert mapped["billing_address"]["line1"] == "1 Main St"
    assert mapped["billing_address"]["country_code"] == "US"


@pytest.mark.parametrize(("given", "state"), [(True, "subscribed"), (False, "not_subscribed"),
                                              (None, "unknown")])
def test_consent(given: bool | None, state: str) -> None:
    customer = {"id": 3, "store_hash": "abc", "email": "x@example.com", "customer_group_id": 0}
    if given is not None:
        customer["accepts_product_review_abandoned_cart_emails"] = given
    mapped = COMMERCE.map("customer", customer, context={})
    assert mapped is not None
    valid("customer", mapped)
    assert mapped["consent"]["abandoned_cart"]["state"] == state
    # BigCommerce's customer says nothing of email or SMS marketing: never invented.
    assert mapped["consent"]["email"]["state"] == mapped["consent"]["sms"]["state"] == "unknown"
    assert mapped["group"] is None  # group 0: none
    assert mapped["order_count"] is None and mapped["amount_spent"] is None


def test_group_and_custom_field_names_come_from_their_contexts() -> None:
    customer = {"id": 3, "store_hash": "abc", "email": "x@example.com", "customer_group_id": 2,
                "form_fields": [{"name": "Newsletter source", "value": "friend"}],
                "attributes": [{"attribute_id": 5, "attribute_value": "gold"},
                               {"attribute_id": 6, "attribute_value": "x"}]}
    context = {"groups": {"2": {"id": 2, "name": "Wholesale"}},
               "attributes": {"5": {"id": 5, "name": "Tier"}}}
    mapped = COMMERCE.map("customer", customer, context=context)
    assert mapped is not None
    valid("customer", mapped)
    assert mapped["group"] == {"id": "2", "name": "Wholesale"}
    assert mapped["custom_fields"] == [{"name": "Newsletter source", "value": "friend"},
                                       {"name": "Tier", "value": "gold"},
                                       {"name": "attribute 6", "value": "x"}]


def test_contexts_are_fetched_once_per_store() -> None:
    mapping = Mapping(MAPPING_FILE, functions=COMMERCE_FUNCTIONS)
    calls: list[str] = []

    def fetch(path: str, params: Any = None, **kwargs: Any) -> Any:
        calls.append(path)
        return {"secure_url": "https://a.example.com", "currency": "USD"}

    for n in range(5):
        for store in ("a", "b"):
            mapping.map("category", {"category_id": n, "store_hash": store, "name": "c",
                                     "url": {"path": "/c/"}}, fetch=fetch)
    assert calls == ["/v2/store", "/v2/store"]


@pytest.mark.parametrize(("base", "path", "url"), [
    ("https://shop.example.com/", "/shoes/", "https://shop.example.com/shoes/"),
    ("https://shop.example.com", "/shoes/", "https://shop.example.com/shoes/"),
    (None, "/shoes/", None),  # no store address: no URL rather than a relative one
    ("https://shop.example.com", None, None)])
def test_urls_are_made_of_the_store_address(base: str | None, path: str | None,
                                            url: str | None) -> None:
    product = {"id": 1, "store_hash": "abc", "name": "Shoe", "variants": [],
               "custom_url": {"url": path}, "images": [
                   {"url_standard": "https://cdn/1.jpg"},
                   {"url_standard": "https://cdn/2.jpg", "is_thumbnail": True}]}
    context = {"store": {"secure_url": base, "currency": "EUR"}}
    mapped = COMMERCE.map("product", product, context=context)
    assert mapped is not None
    valid("product", mapped)
    assert mapped["url"] == url
    assert mapped["image_url"] == "https://cdn/2.jpg"  # the thumbnail, not the first image
    category = COMMERCE.map("category", {"category_id": 4, "store_hash": "abc", "name": "S",
                                         "url": {"path": path}, "parent_id": 0},
                            context=context)
    assert category is not None and category["url"] == url and category["parent_id"] is None


def test_cart_links_and_the_store_cart_page() -> None:
    cart = {"id": "c-1", "store_hash": "abc", "customer_id": 4, "email": "s@example.com",
            "webhook_scope": "store/cart/abandoned", "currency": {"code": "USD"},
            "cart_amount": 30, "updated_time": "2024-05-01T10:00:00+00:00",
            "line_items": {"physical_items": [{"product_id": 1, "variant_id": 2, "quantity": 1,
                                               "sale_price": 10}],
                           "digital_items": [{"product_id": 3, "quantity": 2,
                                              "sale_price": 10}]}}
    without = COMMERCE.map("cart", cart, context={"store": STORE})
    assert without is not None
    valid("cart", without)
    assert (without["recovery_url"], without["cart_url"]) == (
        None, "https://shop.example.com/cart.php")
    assert [i["product_id"] for i in without["items"]] == ["1", "3"]
    links = {"checkout_url": "https://shop/checkout?t=1", "cart_url": "https://shop/cart?t=1"}
    with_links = COMMERCE.map("cart", {**cart, "redirect_urls": links}, context={"store": STORE})
    assert with_links is not None
    assert (with_links["recovery_url"], with_links["cart_url"]) == (
        links["checkout_url"], links["cart_url"])
    assert with_links["updated_at"] == "2024-05-01T10:00:00Z"


def test_consignments_become_lines_and_overflow_is_fetched() -> None:
    line = {"id": 1, "product_id": 9, "variant_id": 0, "quantity": "2", "price_inc_tax": "0.0000",
            "base_price": "5.0000", "name": "Pen"}
    consignments = [{"shipping": [{"line_items": [line]}],
                     "pickups": [{"line_items": [{**line, "id": 2, "variant_id": 90,
                                                  "price_inc_tax": "6.0000"}]}],
                     "downloads": [], "email": {"gift_certificates": []}}]
    mapped = COMMERCE.map("order", order(consignments=consignments), fetch=offline)
    assert mapped is not None
    valid("order", mapped)
    assert [(x["id"], x["variant_id"], x["quantity"], x["price"]) for x in mapped["lines"]] == [
        ("1", None, 2, 5.0), ("2", "90", 2, 6.0)]
    # More than 50 lines: the page flags the consignment, and the lines are fetched.
    flagged = [{"shipping": [{"line_items": [line], "__warning__": "50 of 60"}]}]
    pages = {1: [{**line, "id": n} for n in range(250)], 2: [{**line, "id": 999}]}
    asked: list[Any] = []

    def fetch(path: str, params: Any = None, **kwargs: Any) -> Any:
        asked.append((path, params))
        return pages.get(params["page"], []) if path.endswith("/products") else []

    fetched = COMMERCE.map("order", order(consignments=flagged), fetch=fetch)
    assert fetched is not None and len(fetched["lines"]) == 251
    assert asked[0] == ("/v2/orders/7/products", {"page": 1, "limit": 250})


def test_coupons_are_fetched_only_for_an_order_with_a_coupon_discount() -> None:
    asked: list[str] = []

    def fetch(path: str, params: Any = None, **kwargs: Any) -> Any:
        asked.append(path)
        return [{"code": "SPRING", "discount": "3.0000"}]

    plain = COMMERCE.map("order", order(), fetch=fetch)
    assert plain is not None and plain["coupons"] == [] and asked == []
    coupon = COMMERCE.map("order", order(coupon_discount="3.0000"), fetch=fetch)
    assert coupon is not None and coupon["coupons"] == [{"code": "SPRING", "amount": 3.0}]
    assert asked == ["/v2/orders/7/coupons"]


def test_stock_is_summed_over_the_enabled_locations() -> None:
    """The sum the Brevo destination makes today: a location disabled does not sell; one
    that does not say is counted."""
    locations = [{"location_id": 1, "available_to_sell": 4, "location_enabled": True},
                 {"location_id": 2, "available_to_sell": 7, "location_enabled": False},
                 {"location_id": 3, "available_to_sell": 2},
                 {"location_id": 4, "available_to_sell": None, "location_enabled": True}]
    item = {"store_hash": "abc", "variant_id": 41, "identity": {"product_id": 4, "sku": "S-4"},
            "locations": locations}
    mapped = COMMERCE.map("stock_level", item, context={})
    assert mapped is not None
    valid("stock_level", mapped)
    today = sum(loc.get("available_to_sell") or 0 for loc in locations
                if loc.get("location_enabled", True))
    assert mapped["available"] == today == 6
    assert (mapped["id"], mapped["product_id"], mapped["sku"]) == ("41", "4", "S-4")


@pytest.mark.parametrize(("kind", "record"), [
    ("customer", {"id": 3, "store_hash": "abc", "is_deleted": True,
                  "date_modified": "2024-05-01T10:00:00Z"}),
    ("order", {"id": 7, "store_hash": "abc", "is_deleted": True}),
    ("product", {"id": 1, "store_hash": "abc", "is_deleted": True}),
    ("stock_level", {"variant_id": 1, "store_hash": "abc", "is_deleted": True}),
    ("cart", {"id": "c-1", "store_hash": "abc", "is_deleted": True,
              "webhook_scope": "store/cart/converted", "updated_time": "2024-05-01T10:00:00Z"})])
def test_tombstones_carry_keys_and_nothing_made_up(kind: str, record: dict[str, Any]) -> None:
    mapped = COMMERCE.map(kind, record, context={})
    assert mapped is not None
    valid(kind, mapped)
    extra = {"cart": {"state"}}.get(kind, set())
    assert set(mapped) - {"updated_at"} == {"platform", "account", "id", "deleted"} | extra
    assert mapped["deleted"] is True and mapped["account"] == "abc"
    if kind == "cart":
        assert mapped["state"] == "recovered"
        return
    # A live record must carry what its kind requires: the schema tells a tombstone apart.
    assert list(Draft7Validator(SCHEMAS[kind]).iter_errors({**mapped, "deleted": False}))


def test_a_record_without_its_keys_is_left_out_and_counted() -> None:
    mapping = Mapping(MAPPING_FILE, functions=COMMERCE_FUNCTIONS)
    assert mapping.map("store", {"name": "no hash"}, context={}) is None
    assert mapping.map("category", {"store_hash": "abc", "name": "no id"}, context={}) is None
    assert mapping.skipped == 2


# --- the mapping file and the engine ---------------------------------------------------------

def test_the_spec_and_the_mapping_agree() -> None:
    """Each model stream reads the API stream its kind maps from, with that kind's schema."""
    kinds = stream_kinds()
    # storefront events are spooled beacons, not records the sandbox's API serves
    assert set(kinds.values()) == set(COMMERCE.kinds) == KINDS | {"storefront_event"}
    for name, kind in kinds.items():
        declared = connector.loaded.streams[name]
        assert declared.parent is not None and declared.parent.stream == \
            COMMERCE.kinds[kind].stream
        assert declared.parent.whole and declared.optional
        assert declared.schema_file == f"schemas/commerce/v1/{kind}.json"
        assert declared.primary_key == ["platform", "account", "id"]
    # Optional: the packaged catalog (and every existing connection) is unchanged.
    assert not {s.stream.name for s in connector.configured_catalog().streams} & set(kinds)


BREVO_NAMES = re.compile(r"(?i:brevo|sendinblue|x-sib|blacklist|listIds)|FIRSTNAME|LASTNAME|"
                         r"ORDER_COUNT|TOTAL_SPENT|SIGNUP_DATE|CUSTOMER_GROUP")
PLATFORM_NAMES = re.compile(r"bigcommerce|shopify|store_hash|status_id|secure_url|custom_url|"
                            r"inventory_level|consignment|accepts_product_review|brevo",
                            re.IGNORECASE)


def test_no_brevo_name_in_the_model_or_the_mapping() -> None:
    files = [*MODEL.glob("*.json"), MAPPING_FILE, *ENGINE]
    for path in files:
        found = BREVO_NAMES.search(path.read_text())
        assert found is None, f"{path.name} names {found.group(0)!r}"


def test_the_model_and_the_engine_name_no_platform() -> None:
    for path in [*MODEL.glob("*.json"), *ENGINE]:
        found = PLATFORM_NAMES.search(path.read_text())
        assert found is None, f"{path.name} names {found.group(0)!r}"


def test_shared_shapes_are_the_same_in_every_schema() -> None:
    """Each schema is whole (a destination gets it in the catalog, with no $ref to follow):
    the address and the keys are written out in each, and must not drift apart."""
    address = SCHEMAS["customer"]["properties"]["addresses"]["items"]["properties"]
    assert SCHEMAS["order"]["properties"]["billing_address"]["properties"] == address
    keys = {k: SCHEMAS["customer"]["properties"][k]
            for k in ("platform", "account", "id", "deleted")}
    for kind, schema in SCHEMAS.items():
        assert {k: schema["properties"][k] for k in keys} == keys, kind
        assert schema["required"] == ["platform", "account", "id", "deleted"], kind
        assert schema["$id"] == f"urn:tajo:commerce:v1:{kind}"
        Draft7Validator.check_schema(schema)


#: What the Brevo destination reads today (BigCommerce fields) and where the model has it:
#: the destination's switch to the model reads these instead.
DESTINATION_READS = {
    "customers.email": "customer.email",
    "customers.first_name": "customer.first_name",
    "customers.addresses[0].city": "customer.addresses.city",
    "customers.addresses[0].country_code": "customer.addresses.country_code",
    "customers.customer_group_id (name)": "customer.group.name",
    "customers.form_fields / attributes (by name)": "customer.custom_fields.name",
    "customers.accepts_product_review_abandoned_cart_emails": "customer.consent.abandoned_cart",
    "customers.date_created": "customer.created_at",
    "customers.date_modified": "customer.updated_at",
    "customers.is_deleted": "customer.deleted",
    "orders.status_id not in NOT_COUNTED": "order.counts_as_purchase",
    "orders.status / status_id": "order.platform_status.name",
    "orders.total_inc_tax": "order.total",
    "orders.refunded_amount": "order.refunded",
    "orders.currency_code": "order.currency",
    "orders.customer_id": "order.customer_id",
    "orders.billing_address.email": "order.email",
    "orders.billing_address.street_1": "order.billing_address.line1",
    "orders.billing_address.zip": "order.billing_address.postal_code",
    "orders.payment_method": "order.payment_method",
    "orders.date_created": "order.created_at",
    "order_products (product_id, variant_id, quantity, price)": "order.lines.price",
    "order_coupons.code": "order.coupons.code",
    "products.custom_url.url + store.secure_url": "product.url",
    "products.images[thumbnail].url_standard": "product.image_url",
    "products.calculated_price or price": "product.price",
    "products.categories": "product.category_ids",
    "products.is_visible": "product.visible",
    "products.variants[].option_values[].label": "product.variants.options.value",
    "products.variants[].inventory_level": "product.variants.stock",
    "categories.url.path + store.secure_url": "category.url",
    "inventory.locations (enabled, summed)": "stock_level.available",
    "carts.webhook_scope / is_deleted": "cart.state",
    "carts.redirect_urls.checkout_url": "cart.recovery_url",
    "store.secure_url + /cart.php": "cart.cart_url",
    "carts.line_items.*_items[]": "cart.items.price",
    "carts.cart_amount": "cart.total",
    "carts.currency.code": "cart.currency",
    "store.country_code (phone region)": "store.country_code",
}


@pytest.mark.parametrize("today", sorted(DESTINATION_READS))
def test_the_model_carries_what_the_brevo_destination_reads(today: str) -> None:
    kind, *path = DESTINATION_READS[today].split(".")
    node = SCHEMAS[kind]
    for name in path:
        node = node.get("items", node)
        assert name in node.get("properties", {}), f"{today}: {kind} has no {name}"
        node = node["properties"][name]


def write_mapping(tmp_path: Path, change: Any) -> Path:
    raw = json.loads(MAPPING_FILE.read_text())
    change(raw)
    path = tmp_path / "mapping.json"
    path.write_text(json.dumps(raw))
    return path


def kind(raw: dict[str, Any], name: str = "order") -> dict[str, Any]:
    fields: dict[str, Any] = raw["kinds"][name]["fields"]
    return fields


BAD_MAPPINGS = [
    (lambda r: kind(r).update(shipped_on="date_shipped"),
     "at $.kinds.order.fields.shipped_on: 'shipped_on' is not a field of the model"),
    (lambda r: kind(r).update({"platform_status.code": "status_id"}),
     "at $.kinds.order.fields.platform_status.code: 'code' is not a field of the model; "
     "valid: id, name"),
    (lambda r: kind(r)["lines"]["fields"].update(colour="colour"),
     "at $.kinds.order.fields.lines.fields.colour: 'colour' is not a field of the model"),
    (lambda r: kind(r).update(status={"path": "status_id", "table": "statuses"}),
     "at $.kinds.order.fields.status.path.table: no table 'statuses'"),
    (lambda r: kind(r).update(status={"path": "status_id", "lookup": "x"}),
     "at $.kinds.order.fields.status: unknown key 'lookup' for path; valid: default, none_if, "
     "pick, table"),
    (lambda r: kind(r).update(status={"path": "a", "const": 1}),
     "at $.kinds.order.fields.status: give exactly one of"),
    (lambda r: kind(r).update(lines={"each": {"function": "lines"}, "fields": {"id": "id"}}),
     "at $.kinds.order.fields.lines.each.function: the plugin has no mapping function 'lines'"),
    (lambda r: kind(r).update(currency="@shop.currency"),
     "at $.kinds.order.fields.currency: no context 'shop'; valid: attributes, groups, store"),
    (lambda r: kind(r).pop("id"), "at $.kinds.order.fields: map the record's id"),
    (lambda r: kind(r).update(platform={"const": "x"}),
     "at $.kinds.order.fields.platform: set by the engine"),
    (lambda r: r["kinds"].update(invoice=r["kinds"]["order"]),
     "at $.kinds.invoice: the model commerce/v1 has no kind 'invoice'; valid: cart, category"),
    (lambda r: r.pop("account"), "at $: missing 'account'"),
]


@pytest.mark.parametrize(("change", "error"), BAD_MAPPINGS, ids=[e for _, e in BAD_MAPPINGS])
def test_a_bad_mapping_file_names_the_file_and_the_key(change: Any, error: str,
                                                       tmp_path: Path) -> None:
    path = write_mapping(tmp_path, change)
    functions = {"order_lines": lambda item, scope: [], "order_coupons": lambda i, s: []}
    with pytest.raises(MappingError) as caught:
        Mapping(path, functions=functions)
    message = str(caught.value)
    assert message.startswith(str(path)) and error in message, message


def test_the_engine_maps_a_made_up_platform(tmp_path: Path) -> None:
    """Nothing in the engine is BigCommerce's: a platform whose API is shaped otherwise maps
    with its own file (Shopify-like ids, consent and money)."""
    path = tmp_path / "shoplike.json"
    path.write_text(json.dumps({
        "model": "commerce/v1", "platform": "shoplike", "account": "shop",
        "tables": {"consent": {"values": {"SUBSCRIBED": "subscribed",
                                          "UNSUBSCRIBED": "unsubscribed"},
                               "default": "unknown"}},
        "kinds": {"customer": {"stream": "customers", "fields": {
            "id": "legacyResourceId", "email": "defaultEmailAddress.emailAddress",
            "updated_at": "updatedAt",
            "consent.email.state": {"path": "emailMarketingConsent.marketingState",
                                    "table": "consent"},
            "consent.email.at": "emailMarketingConsent.consentUpdatedAt",
            "consent.sms.state": {"path": "smsMarketingConsent.marketingState",
                                  "table": "consent"},
            "consent.abandoned_cart.state": {"const": "unknown"},
            "order_count": "numberOfOrders", "amount_spent": "amountSpent.amount",
            "amount_spent_currency": "amountSpent.currencyCode"}}}}))
    mapping = Mapping(path)
    record = {"shop": "demo.example", "legacyResourceId": "123", "updatedAt":
              "2024-05-01T10:00:00Z", "defaultEmailAddress": {"emailAddress": "q@example.com"},
              "emailMarketingConsent": {"marketingState": "SUBSCRIBED",
                                        "consentUpdatedAt": "2024-04-01T09:00:00Z"},
              "numberOfOrders": "4", "amountSpent": {"amount": "99.50", "currencyCode": "EUR"}}
    mapped = mapping.map("customer", record)
    assert mapped is not None
    valid("customer", mapped)
    assert mapped["consent"]["email"] == {"state": "subscribed", "at": "2024-04-01T09:00:00Z"}
    assert mapped["consent"]["sms"]["state"] == "unknown"
    assert (mapped["order_count"], mapped["amount_spent"]) == (4, 99.5)
    deep = copy.deepcopy(record)
    assert mapping.map("customer", deep) == mapped and deep == record  # the input is kept
