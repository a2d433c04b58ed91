"""A deterministic BigCommerce store: the same seed always gives the same store.

Records are generated on demand from (seed, id), so a store of any size starts at once and takes
little memory; only what changes (modification times, edits, deletions, new records) is kept.
Adding a resource means a ``make_*`` function in ``generate.py`` and a :class:`Collection`.
"""

from __future__ import annotations

import bisect
import hashlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from connectors.bigcommerce.sandbox import generate as g

#: Requests per quota window by plan (None: no quota).
PLANS: dict[str, int | None] = {"standard": 150, "plus": 150, "pro": 450, "enterprise": None}

EPOCH_CREATED = int(datetime(2022, 1, 1, tzinfo=UTC).timestamp())
EPOCH_LAST = int(datetime(2026, 6, 30, tzinfo=UTC).timestamp())


def store_hash_for(seed: int) -> str:
    """A store hash like BigCommerce's (lowercase letters and digits), derived from the seed."""
    return hashlib.sha1(f"tajo-sandbox-{seed}".encode()).hexdigest()[:10]


Maker = Callable[[int, int, int, int], dict[str, Any]]


@dataclass
class Collection:
    """Records of one kind: generated on demand, with what has changed kept aside.

    ``by_modified`` is the index every ``date_modified`` filter and sort uses.
    """

    seed: int
    make: Maker
    created: dict[int, int] = field(default_factory=dict)
    modified: dict[int, int] = field(default_factory=dict)
    edits: dict[int, dict[str, Any]] = field(default_factory=dict)
    by_modified: list[tuple[int, int]] = field(default_factory=list)  # sorted (modified, id)
    ids: list[int] = field(default_factory=list)  # sorted
    next_id: int = 1
    #: Serialized records by (id, variant), valid while ``modified`` is unchanged: a real
    #: server has its data ready, and generating it again for every read would make the
    #: sandbox, not the connector, what a benchmark measures.
    rendered: dict[tuple[int, str], tuple[int, bytes]] = field(default_factory=dict)
    #: Edits per record: two edits in one second share a date_modified, not a rendering.
    edit_count: dict[int, int] = field(default_factory=dict)

    def populate(self, count: int, kind: str) -> None:
        """Create ``count`` records with dates spread over the store's history."""
        rng = random.Random(f"{self.seed}:{kind}-dates")
        span = EPOCH_LAST - EPOCH_CREATED
        for _ in range(count):
            created = EPOCH_CREATED + rng.randrange(span - 86400)
            modified = created + rng.randrange(min(span - (created - EPOCH_CREATED), 86400 * 400))
            self._add(self.next_id, created, modified)
        self.by_modified.sort()

    def _add(self, record_id: int, created: int, modified: int) -> None:
        self.created[record_id] = created
        self.modified[record_id] = modified
        self.ids.append(record_id)
        self.next_id = max(self.next_id, record_id + 1)
        self.by_modified.append((modified, record_id))

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, record_id: int) -> bool:
        return record_id in self.modified

    def get(self, record_id: int) -> dict[str, Any]:
        """The record as it is now (generated, then edited)."""
        record = self.make(self.seed, record_id, self.created[record_id],
                           self.modified[record_id])
        record.update(self.edits.get(record_id, {}))
        return record

    def now(self) -> int:
        """The store's clock: wall time, never before the newest modification."""
        latest = self.by_modified[-1][0] if self.by_modified else 0
        return max(int(time.time()), latest)

    def touch(self, record_id: int, edit: dict[str, Any]) -> int:
        """Edit a record and bump its ``date_modified`` to now; returns the new time."""
        old = (self.modified[record_id], record_id)
        del self.by_modified[bisect.bisect_left(self.by_modified, old)]
        self.modified[record_id] = self.now()
        bisect.insort(self.by_modified, (self.modified[record_id], record_id))
        self.edits.setdefault(record_id, {}).update(edit)
        self.edit_count[record_id] = self.edit_count.get(record_id, 0) + 1
        return self.modified[record_id]

    def create(self) -> int:
        """Add a new record, created and modified now."""
        record_id, now = self.next_id, self.now()
        self._add(record_id, now, now)
        return record_id

    def delete(self, record_id: int) -> None:
        """Remove a record."""
        del self.by_modified[bisect.bisect_left(self.by_modified,
                                                (self.modified[record_id], record_id))]
        del self.ids[bisect.bisect_left(self.ids, record_id)]
        del self.created[record_id], self.modified[record_id]
        self.edits.pop(record_id, None)
        self.edit_count.pop(record_id, None)

    def modified_range(self, low: int | None, high: int | None) -> tuple[int, int]:
        """Positions in ``by_modified`` of the records with low <= modified <= high."""
        index = self.by_modified
        lo = bisect.bisect_left(index, (low, 0)) if low is not None else 0
        hi = bisect.bisect_right(index, (high, float("inf"))) if high is not None else len(index)
        return lo, hi


@dataclass
class Store:
    """One sandbox store: customers, orders, products, carts and the small lists."""

    seed: int
    store_hash: str
    plan: str
    customers: Collection
    orders: Collection
    products: Collection
    carts: dict[str, dict[str, Any]] = field(default_factory=dict)
    inventory_edits: dict[tuple[int, int], int] = field(default_factory=dict)
    carts_made: int = 0  # cart ids stay unique after carts are deleted

    @classmethod
    def generate(cls, seed: int, plan: str, customers: int, orders: int = 0,
                 products: int = 0) -> Store:
        """The store ``seed`` with that many customers, orders and products."""
        store = cls(seed, store_hash_for(seed), plan, Collection(seed, g.make_customer),
                    Collection(seed, g.make_customer), Collection(seed, g.make_product))
        store.orders.make = partial(_order_maker, store)
        store.customers.populate(customers, "customer")
        store.orders.populate(orders, "order")
        store.products.populate(products, "product")
        return store

    def order_products(self, order_id: int) -> list[dict[str, Any]]:
        """All line items of an order."""
        return self.orders.get(order_id)["_lines"]

    def inventory_level(self, variant_id: int, location_id: int, default: int) -> int:
        """Stock of a variant at a location (location 1 is what the Catalog API shows)."""
        return self.inventory_edits.get((variant_id, location_id), default)

    def create_cart(self, customer_id: int | None) -> dict[str, Any]:
        """A new cart for a customer (or a guest), as a shopper would make it."""
        customer = (self.customers.get(customer_id)
                    if customer_id and customer_id in self.customers else None)
        self.carts_made += 1
        cart = g.make_cart(self.seed, self.carts_made, customer, len(self.products),
                           self.customers.now())
        self.carts[cart["id"]] = cart
        return cart

    def info(self) -> dict[str, Any]:
        """``GET /v2/store``."""
        return {
            "id": self.store_hash, "account_uuid": f"00000000-0000-4000-8000-{self.seed:012d}",
            "domain": f"sandbox-{self.store_hash}.mybigcommerce.com",
            "secure_url": f"https://sandbox-{self.store_hash}.mybigcommerce.com",
            "control_panel_base_url": f"https://store-{self.store_hash}.mybigcommerce.com",
            "status": "live", "name": f"Sandbox Store {self.seed}", "first_name": "Sandbox",
            "last_name": "Owner", "address": "1 Sandbox Way, Austin TX", "country": "United States",
            "country_code": "US", "phone": "", "admin_email": "owner@example.com",
            "order_email": "orders@example.com", "favicon_url": "",
            "timezone": {"name": "America/Chicago", "raw_offset": -21600, "dst_offset": -18000,
                         "dst_correction": True,
                         "date_format": {"display": "jS M Y", "export": "M jS Y",
                                         "extended_display": "M jS Y @ g:i A"}},
            "language": "en", "currency": "USD", "currency_symbol": "$",
            "decimal_separator": ".", "thousands_separator": ",", "decimal_places": 2,
            "currency_symbol_location": "left", "weight_units": "LBS", "dimension_units": "Inches",
            "plan_name": self.plan.title(), "plan_level": self.plan.title(),
            "plan_is_trial": False, "industry": "Retail", "logo": [],
            "is_price_entered_with_tax": False, "store_id": 1_000_000 + self.seed,
            "default_channel_id": 1, "default_site_id": 1,
            "features": {"stencil_enabled": True, "sitewidehttps_enabled": True,
                         "checkout_type": "optimized", "wishlists_enabled": True,
                         "graphql_storefront_api_enabled": True,
                         "multi_storefront_enabled": True,
                         "storefront_limits": {"active": 2, "total_including_inactive": 2}},
        }


def _order_maker(store: Store, seed: int, order_id: int, created: int,
                 modified: int) -> dict[str, Any]:
    order = g.make_order(seed, order_id, created, modified, customers=len(store.customers),
                         products=len(store.products))
    customer_id = order["customer_id"]
    if customer_id and customer_id in store.customers:  # a registered shopper's own details
        customer = store.customers.get(customer_id)
        order["billing_address"].update(email=customer["email"],
                                        first_name=customer["first_name"],
                                        last_name=customer["last_name"])
    return order
