"""A generated Shopify shop: its records, their indexes, and the changes its merchant makes.

Records are generated at start (a shop of thousands of records takes a second and a few MB)
and kept as the API shapes them (``generate.py``). The history ends at ``history_end``
(default: the start of today, UTC), so that the last 60 days, which ``read_all_orders``
governs, hold orders; ``--history-end`` pins it for runs that must match across days.

Every change stamps ``updatedAt`` with the clock (to the second, as Shopify does) and calls
``emit(topic, record)``, which the webhook machinery turns into deliveries.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from connectors.shopify.sandbox import generate as g

#: Restore rate in points per second by plan (shopify-api.md, "Rate limits").
PLANS: dict[str, int] = {"standard": 100, "advanced": 200, "plus": 1000, "enterprise": 2000}
#: The bucket holds this many seconds of restore. Its size is in neither shopify-api.md nor
#: the rate-limits page's table (which gives restore rates only); Shopify's older page gave a
#: bucket of 1,000 points at 50 a second, 20 s of restore, and this sandbox keeps that ratio
#: (2,000 points for Standard). ``--bucket-seconds`` changes it.
BUCKET_SECONDS = 20
HISTORY_S = 2 * 365 * 86400
LOCATIONS = 2
#: Kinds whose records the root connections list (``customers``, ``orders``, ...).
KINDS = ("Customer", "Order", "Product", "ProductVariant", "InventoryItem", "Collection",
         "AbandonedCheckout", "Location")


def today_utc() -> int:
    now = int(time.time())
    return now - now % 86400


class Shop:
    """One shop's records (by kind, then by global id) and the merchant's changes to them."""

    def __init__(self, name: str, seed: int, plan: str, history_end: int) -> None:
        self.name, self.seed, self.plan = name, seed, plan
        self.history_end = history_end
        self.records: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in KINDS}
        self.nodes: dict[str, dict[str, Any]] = {}
        self.orders_of: dict[str, list[str]] = {}  # customer gid -> its orders' gids
        self.next_number: dict[str, int] = {}
        self.emit: Callable[[str, dict[str, Any]], Any] = lambda topic, record: None
        self.shop_record: dict[str, Any] = {
            "__typename": "Shop", "id": g.gid("Shop", 1000 + seed), "name": f"Sandbox {name}",
            "myshopifyDomain": f"{name}.myshopify.com", "email": f"owner@{name}.example.com",
            "contactEmail": f"owner@{name}.example.com", "currencyCode": g.CURRENCY,
            "ianaTimezone": "Etc/UTC", "timezoneAbbreviation": "UTC",
            "url": f"https://{name}.myshopify.com", "weightUnit": "KILOGRAMS",
            "primaryDomain": {"__typename": "Domain", "id": g.gid("Domain", 1),
                              "host": f"{name}.myshopify.com", "sslEnabled": True,
                              "url": f"https://{name}.myshopify.com"}}
        self.set_plan(plan)

    def set_plan(self, plan: str) -> None:
        self.plan = plan
        self.shop_record["plan"] = {
            "__typename": "ShopPlan", "displayName": {"standard": "Basic", "advanced":
                                                     "Advanced", "plus": "Shopify Plus",
                                                     "enterprise": "Commerce Components"}[plan],
            "publicDisplayName": plan.title(), "partnerDevelopment": False,
            "shopifyPlus": plan in ("plus", "enterprise")}

    # --- records ---------------------------------------------------------------------------

    def number(self, kind: str) -> int:
        value = self.next_number.get(kind, 1)
        self.next_number[kind] = value + 1
        return value

    def add(self, record: dict[str, Any]) -> dict[str, Any]:
        kind = record["__typename"]
        self.records[kind][record["id"]] = record
        self.nodes[record["id"]] = record
        number = int(record["legacyResourceId"])
        self.next_number[kind] = max(self.next_number.get(kind, 1), number + 1)
        if kind == "Order" and record.get("customer"):
            self.orders_of.setdefault(record["customer"], []).append(record["id"])
        for line in record.get("lineItems", []) if isinstance(record.get("lineItems"), list) \
                else []:
            self.nodes[line["id"]] = line
        for refund in record.get("refunds", []):
            self.nodes[refund["id"]] = refund
        return record

    def remove(self, kind: str, record_id: str) -> dict[str, Any]:
        record = self.records[kind].pop(record_id)
        self.nodes.pop(record_id, None)
        if kind == "Order" and record.get("customer"):
            self.orders_of.get(record["customer"], []).remove(record_id)
        return record

    def get(self, kind: str, record_id: str | int) -> dict[str, Any]:
        key = record_id if str(record_id).startswith("gid://") else g.gid(kind, int(record_id))
        found = self.records[kind].get(str(key))
        if found is None:
            raise KeyError(f"no {kind} {record_id} in shop {self.name}")
        return found

    def variants(self) -> list[dict[str, Any]]:
        return list(self.records["ProductVariant"].values())

    # --- generation ------------------------------------------------------------------------

    @classmethod
    def generate(cls, name: str, seed: int, plan: str, customers: int, orders: int,
                 products: int, checkouts: int | None = None,
                 history_end: int | None = None) -> Shop:
        shop = cls(name, seed, plan, history_end if history_end is not None else today_utc())
        end, start = shop.history_end, shop.history_end - HISTORY_S
        rng = random.Random(f"{seed}:shop")

        def dates() -> tuple[float, float]:
            created = rng.uniform(start, end - 3600)
            return created, rng.uniform(created, min(end, created + 200 * 86400))

        locations = [shop.add({"__typename": "Location", "id": g.gid("Location", n),
                               "legacyResourceId": str(n), "name": f"Warehouse {n}",
                               "isActive": True}) ["id"] for n in range(1, LOCATIONS + 1)]
        collections = [shop.add({"__typename": "Collection", "id": g.gid("Collection", n),
                                 "legacyResourceId": str(n), "title": f"{word} collection",
                                 "handle": f"{word.lower()}-collection", "products": [],
                                 "description": "", "sortOrder": "BEST_SELLING",
                                 "createdAt": g.iso(start), "updatedAt": g.iso(start)})
                       for n, word in enumerate(g.WORDS[:6], 1)]
        for number in range(1, products + 1):
            created, updated = dates()
            record, variants = g.product(rng, number, created, updated, name,
                                         shop.next_number.get("ProductVariant", 1))
            for collection in rng.sample(collections, rng.randrange(0, 3)):
                record["collections"].append(collection["id"])
                collection["products"].append(record["id"])
            shop.add(record)
            for variant in variants:
                shop.add(variant)
                shop.add(g.inventory_item(rng, variant, locations, updated))
        variants = shop.variants() or [_placeholder_variant()]
        people = list(shop.records["Customer"].values())
        for number in range(1, customers + 1):
            created, updated = dates()
            people.append(shop.add(g.customer(rng, number, created, updated, name)))
        for number in range(1, orders + 1):
            created, updated = dates()
            buyer = rng.choice(people) if people and rng.random() < 0.9 else None
            shop.add(g.order(rng, number, created, updated, buyer, variants))
        for number in range(1, (orders // 5 if checkouts is None else checkouts) + 1):
            created, updated = dates()
            buyer = rng.choice(people) if people and rng.random() < 0.8 else None
            shop.add(g.checkout(rng, number, created, updated, name, buyer, variants,
                                completed=rng.random() < 0.2))
        return shop

    # --- the merchant's changes ------------------------------------------------------------

    def touch(self, record: dict[str, Any], topic: str | None = None) -> dict[str, Any]:
        record["updatedAt"] = g.iso(time.time())
        if topic:
            self.emit(topic, record)
        return record

    def create(self, kind: str, fields: dict[str, Any], rng: random.Random) -> dict[str, Any]:
        """A new record of ``kind`` (Customer, Order, Product, AbandonedCheckout)."""
        now = time.time()
        number = self.number(kind)
        people = list(self.records["Customer"].values())
        buyer = (self.get("Customer", fields.pop("customer")) if fields.get("customer")
                 else rng.choice(people) if people else None)
        if kind == "Customer":
            record = g.customer(rng, number, now, now, self.name)
        elif kind == "Order":
            record = g.order(rng, number, now, now, buyer, self.variants())
        elif kind == "AbandonedCheckout":
            record = g.checkout(rng, number, now, now, self.name, buyer, self.variants(),
                                completed=False)
        elif kind == "Product":
            record, variants = g.product(rng, number, now, now, self.name,
                                         self.next_number.get("ProductVariant", 1))
            for variant in variants:
                self.add(variant)
                self.add(g.inventory_item(rng, variant, list(self.records["Location"]), now))
        else:
            raise KeyError(f"cannot create a {kind}; valid: Customer, Order, Product, "
                           "AbandonedCheckout")
        record.update(fields)
        if kind == "Customer":
            g.sync_email_address(record)
        self.add(record)
        self.emit(CREATE_TOPIC[kind], record)
        if kind == "Order" and record["displayFinancialStatus"] == "PAID":
            self.emit("orders/paid", record)
        if kind == "Order" and buyer is not None:
            self.touch(buyer, "customers/update")  # its numberOfOrders changed
        return record

    def update(self, kind: str, record_id: str | int, fields: dict[str, Any]
               ) -> dict[str, Any]:
        record = self.get(kind, record_id)
        for key, value in fields.items():
            if isinstance(value, dict) and isinstance(record.get(key), dict):
                record[key].update(value)  # e.g. one field of emailMarketingConsent
            else:
                record[key] = value
        if kind == "Customer":
            if "emailMarketingConsent" in fields:
                record["emailMarketingConsent"]["consentUpdatedAt"] = g.iso(time.time())
            g.sync_email_address(record)
        if kind == "ProductVariant":  # a variant's change is its product's (products/update)
            self.touch(record)
            self.touch(self.nodes[record["product"]], "products/update")
            return record
        self.touch(record, UPDATE_TOPIC[kind])
        # Consent has topics of its own (besides customers/update), as in Shopify.
        for key, topic in CONSENT_TOPICS.items():
            if kind == "Customer" and key in fields:
                self.emit(topic, record)
        return record

    def delete(self, kind: str, record_id: str | int) -> dict[str, Any]:
        record = self.remove(kind, self.get(kind, record_id)["id"])
        if kind == "Product":
            for variant_id in record["variants"]:
                self.remove("ProductVariant", variant_id)
                self.remove("InventoryItem", variant_id.replace("ProductVariant",
                                                                "InventoryItem"))
        # Shopify's delete payloads name the record and nothing else of it.
        self.emit(DELETE_TOPIC[kind], {key: record[key] for key in
                                       ("__typename", "id", "legacyResourceId")})
        return record

    def cancel(self, order_id: str | int) -> dict[str, Any]:
        record = self.get("Order", order_id)
        record.update(cancelledAt=g.iso(time.time()), cancelReason="CUSTOMER", closed=True)
        if record["displayFinancialStatus"] in ("PENDING", "AUTHORIZED"):
            record["displayFinancialStatus"] = "VOIDED"
        self.touch(record, "orders/cancelled")
        self.emit("orders/updated", record)
        if record.get("customer") in self.nodes:  # its amountSpent leaves the order out
            self.touch(self.nodes[record["customer"]], "customers/update")
        return record

    def refund(self, order_id: str | int, amount: float | None) -> dict[str, Any]:
        record = self.get("Order", order_id)
        left = float(record["currentTotalPriceSet"]["shopMoney"]["amount"])
        refund = g.add_refund(record, min(left, amount) if amount is not None else left,
                              time.time())
        self.nodes[refund["id"]] = refund
        self.emit("refunds/create", refund)
        self.touch(record, "orders/updated")
        if record.get("customer") in self.nodes:  # its amountSpent changed
            self.touch(self.nodes[record["customer"]], "customers/update")
        return refund

    def set_stock(self, variant_id: str | int, location: int, available: int
                  ) -> dict[str, Any]:
        variant = self.get("ProductVariant", variant_id)
        item = self.nodes[variant["inventoryItem"]]
        level = next((lv for lv in item["inventoryLevels"]
                      if lv["location"] == g.gid("Location", location)), None)
        if level is None:
            raise KeyError(f"no inventory level at location {location}")
        level["quantities"] = g.quantities(available)
        level["updatedAt"] = item["updatedAt"] = g.iso(time.time())
        self.emit("inventory_levels/update", level)
        self.touch(variant)
        self.touch(self.nodes[variant["product"]], "products/update")
        return level

    def complete_checkout(self, checkout_id: str | int) -> dict[str, Any]:
        record = self.get("AbandonedCheckout", checkout_id)
        record["completedAt"] = g.iso(time.time())
        return self.touch(record, "checkouts/update")


CREATE_TOPIC = {"Customer": "customers/create", "Order": "orders/create",
                "Product": "products/create", "AbandonedCheckout": "checkouts/create"}
UPDATE_TOPIC = {"Customer": "customers/update", "Order": "orders/updated",
                "Product": "products/update", "AbandonedCheckout": "checkouts/update",
                "ProductVariant": "products/update", "Collection": "collections/update"}
CONSENT_TOPICS = {"emailMarketingConsent": "customers_email_marketing_consent/update",
                  "smsMarketingConsent": "customers_marketing_consent/update"}
DELETE_TOPIC = {"Customer": "customers/delete", "Order": "orders/delete",
                "Product": "products/delete", "AbandonedCheckout": "checkouts/delete"}


def _placeholder_variant() -> dict[str, Any]:
    """Orders of a shop generated without products still have a line (an ad-hoc item)."""
    return {"id": None, "product": None, "price": "10.00", "title": "Default",
            "displayName": "Custom item - Default", "sku": None}
