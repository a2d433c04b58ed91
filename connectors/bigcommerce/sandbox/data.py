"""A deterministic BigCommerce store: the same seed always gives the same store.

Records are generated on demand from (seed, id), so a store of any size starts at once and takes
little memory; only what changes (modification times, edits, deletions, new records) is kept.
Adding a resource means a ``make_*`` function and an index like ``customers`` below.
"""

from __future__ import annotations

import bisect
import hashlib
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

EPOCH_CREATED = int(datetime(2022, 1, 1, tzinfo=UTC).timestamp())
EPOCH_LAST = int(datetime(2026, 6, 30, tzinfo=UTC).timestamp())


def iso(ts: int) -> str:
    """Epoch seconds as BigCommerce V3 writes dates (ISO 8601, UTC)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Country:
    code: str
    name: str
    weight: int
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    cities: tuple[tuple[str, str, str], ...]  # city, state, postal code pattern (# = digit)
    phones: tuple[str, ...]  # local patterns, # = digit


COUNTRIES = (
    Country("US", "United States", 40,
            ("James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda",
             "David", "Elizabeth", "Maria", "Carlos", "Aisha", "Wei", "Emily", "Noah"),
            ("Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis",
             "Rodriguez", "Martinez", "Nguyen", "Kim", "O'Brien", "Anderson"),
            (("Austin", "Texas", "787##"), ("New York", "New York", "100##"),
             ("San Francisco", "California", "941##"), ("Chicago", "Illinois", "606##"),
             ("Seattle", "Washington", "981##"), ("Boston", "Massachusetts", "021##")),
            ("(512) 3##-####", "212-4##-####", "+1 415 6## ####", "312.7##.####")),
    Country("GB", "United Kingdom", 12,
            ("Oliver", "Amelia", "George", "Isla", "Harry", "Ava", "Jack", "Freya", "Priya"),
            ("Taylor", "Wilson", "Evans", "Thomas", "Roberts", "Patel", "Hughes", "Walker"),
            (("London", "Greater London", "SW1A #AA"), ("Manchester", "Greater Manchester",
                                                       "M# #AB"), ("Leeds", "West Yorkshire",
                                                                   "LS# #CD")),
            ("07700 9#####", "+44 7911 ######", "020 7946 0###")),
    Country("TH", "Thailand", 12,
            ("Somchai", "Suda", "Anan", "Kanya", "Niran", "Ploy", "สมชาย", "สุดา", "Malee"),
            ("Saetang", "Wongsakul", "Chaiyaporn", "Srisuk", "Thongdee", "ใจดี", "รักไทย"),
            (("Bangkok", "Bangkok", "10###"), ("Chiang Mai", "Chiang Mai", "50###"),
             ("Phuket", "Phuket", "83###")),
            ("081-###-####", "+66 89 ### ####", "02-###-####", "095 ### ####")),
    Country("DE", "Germany", 8,
            ("Lukas", "Mia", "Leon", "Hannah", "Finn", "Emma", "Jürgen", "Lea"),
            ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner"),
            (("Berlin", "Berlin", "10###"), ("München", "Bayern", "80###"),
             ("Hamburg", "Hamburg", "20###")),
            ("0151 ########", "+49 30 #######", "0170 #######")),
    Country("FR", "France", 6,
            ("Lucas", "Léa", "Hugo", "Chloé", "Louis", "Manon", "Élodie"),
            ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Lefèvre"),
            (("Paris", "Île-de-France", "750##"), ("Lyon", "Auvergne-Rhône-Alpes", "690##")),
            ("06 ## ## ## ##", "+33 1 ## ## ## ##")),
    Country("AU", "Australia", 8,
            ("Jack", "Charlotte", "William", "Olivia", "Thomas", "Mia"),
            ("Smith", "Jones", "Williams", "Brown", "Wilson", "Taylor"),
            (("Sydney", "New South Wales", "2###"), ("Melbourne", "Victoria", "3###")),
            ("0412 ### ###", "+61 2 #### ####")),
    Country("CA", "Canada", 8,
            ("Liam", "Olivia", "Ethan", "Emma", "Benjamin", "Chloé"),
            ("Tremblay", "Gagnon", "Roy", "Côté", "Campbell", "Lee"),
            (("Toronto", "Ontario", "M5V ###"), ("Vancouver", "British Columbia", "V6B ###"),
             ("Montréal", "Quebec", "H2X ###")),
            ("(416) 5##-####", "604-6##-####")),
    Country("JP", "Japan", 6,
            ("Haruto", "Yui", "Sota", "Hina", "Yuto", "Sakura"),
            ("Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe"),
            (("Tokyo", "Tokyo", "1##-####"), ("Osaka", "Osaka", "5##-####")),
            ("090-####-####", "+81 3-####-####")),
)
_COUNTRY_WEIGHTS = [c.weight for c in COUNTRIES]
ROMAN = {"สมชาย": "somchai", "สุดา": "suda", "ใจดี": "jaidee", "รักไทย": "rakthai"}
EMAIL_DOMAINS = ("example.com", "mail.example.org", "shop.example.net", "example.co.th",
                 "example.co.uk", "example.de")
BAD_PHONES = ("12345", "n/a", "+1 555", "call me")
STREETS = ("Main Street", "High Street", "Sukhumvit Road", "Hauptstraße", "Rue de Rivoli",
           "George Street", "Queen Street West", "Chuo-dori", "Market Street", "Silom Road")
COMPANIES = ("Acme Retail", "Blue Lotus Co.", "Nordwind GmbH", "Maple & Co", "Sakura Trading",
             "Le Petit Atelier", "Outback Supplies")

CUSTOMER_GROUPS = (
    {"id": 1, "name": "Retail", "is_default": True},
    {"id": 2, "name": "Wholesale", "is_default": False},
    {"id": 3, "name": "VIP", "is_default": False},
)
CUSTOMER_ATTRIBUTES = (
    {"id": 1, "name": "Shoe size", "type": "number"},
    {"id": 2, "name": "Favorite color", "type": "string"},
    {"id": 3, "name": "Loyalty tier", "type": "string"},
)
FORM_FIELDS = (
    ("How did you hear about us?", ("Instagram", "Friend", "Google", "Newsletter", "TikTok")),
    ("Birthday", None),
    ("Marketing consent", ("Yes", "No")),
)
CHANNELS = ({"id": 1, "name": "Main storefront"}, {"id": 2, "name": "Wholesale storefront"})


def _digits(rng: random.Random, pattern: str) -> str:
    return "".join(str(rng.randrange(10)) if ch == "#" else ch for ch in pattern)


def _rng(seed: int, kind: str, record_id: int) -> random.Random:
    return random.Random(f"{seed}:{kind}:{record_id}")


def make_customer(seed: int, customer_id: int, created: int, modified: int) -> dict[str, Any]:
    """The customer ``customer_id`` of store ``seed``, with every include expanded."""
    rng = _rng(seed, "customer", customer_id)
    country = rng.choices(COUNTRIES, _COUNTRY_WEIGHTS)[0]
    first, last = rng.choice(country.first_names), rng.choice(country.last_names)
    local = f"{ROMAN.get(first, first)}.{ROMAN.get(last, last)}".lower()
    local = "".join(ch for ch in local if ch.isascii() and (ch.isalnum() or ch == "."))
    email = f"{local}{customer_id}@{rng.choice(EMAIL_DOMAINS)}"
    phone = _digits(rng, rng.choice(country.phones))
    roll = rng.random()
    if roll < 0.03:
        phone = rng.choice(BAD_PHONES)
    elif roll < 0.10:
        phone = ""
    company = rng.choice(COMPANIES) if rng.random() < 0.15 else ""
    addresses = []
    for n in range(rng.choice((0, 1, 1, 1, 2))):
        city, state, postal = rng.choice(country.cities)
        addresses.append({
            "id": customer_id * 10 + n, "customer_id": customer_id, "first_name": first,
            "last_name": last, "company": company,
            "address1": f"{rng.randrange(1, 999)} {rng.choice(STREETS)}",
            "address2": f"Apt {rng.randrange(1, 60)}" if rng.random() < 0.2 else "",
            "city": city, "state_or_province": state, "postal_code": _digits(rng, postal),
            "country_code": country.code, "country": country.name, "phone": phone,
            "address_type": "commercial" if company else "residential", "form_fields": []})
    attributes = []
    for attribute in CUSTOMER_ATTRIBUTES:
        if rng.random() < 0.4:
            value = (str(rng.randrange(36, 46)) if attribute["type"] == "number"
                     else rng.choice(("red", "blue", "green", "black", "gold", "silver")))
            attributes.append({"id": customer_id * 10 + attribute["id"],
                               "attribute_id": attribute["id"], "attribute_value": value,
                               "customer_id": customer_id, "date_created": iso(created),
                               "date_modified": iso(created)})
    form_fields = []
    for name, choices in FORM_FIELDS:
        if rng.random() < 0.5:
            value = (rng.choice(choices) if choices else
                     f"{rng.randrange(1950, 2006)}-{rng.randrange(1, 13):02d}-"
                     f"{rng.randrange(1, 29):02d}")
            form_fields.append({"name": name, "value": value, "customer_id": customer_id})
    channels = rng.choice((None, None, [1], [1], [2], [1, 2]))
    return {
        "id": customer_id, "email": email, "first_name": first, "last_name": last,
        "company": company, "phone": phone,
        "registration_ip_address": f"203.0.113.{rng.randrange(1, 255)}",
        "notes": "", "tax_exempt_category": "",
        "customer_group_id": rng.choice((0, 0, 1, 1, 2, 3)),
        "date_created": iso(created), "date_modified": iso(modified),
        "address_count": len(addresses), "attribute_count": len(attributes),
        "authentication": {"force_password_reset": False},
        "accepts_product_review_abandoned_cart_emails": rng.random() < 0.7,
        "origin_channel_id": channels[0] if channels else 1, "channel_ids": channels,
        "addresses": addresses, "attributes": attributes, "form_fields": form_fields,
        "store_credit_amounts": [{"amount": float(rng.choice((0, 0, 0, 5, 10, 25)))}],
    }


def store_hash_for(seed: int) -> str:
    """A store hash like BigCommerce's (lowercase letters and digits), derived from the seed."""
    return hashlib.sha1(f"tajo-sandbox-{seed}".encode()).hexdigest()[:10]


@dataclass
class Customers:
    """The customers of a store: generated on demand, with what has changed kept aside."""

    seed: int
    created: dict[int, int] = field(default_factory=dict)
    modified: dict[int, int] = field(default_factory=dict)
    edits: dict[int, dict[str, Any]] = field(default_factory=dict)
    by_modified: list[tuple[int, int]] = field(default_factory=list)  # sorted (modified, id)
    ids: list[int] = field(default_factory=list)  # sorted
    next_id: int = 1

    def populate(self, count: int) -> None:
        """Create ``count`` customers with dates spread over the store's history."""
        rng = random.Random(f"{self.seed}:customer-dates")
        span = EPOCH_LAST - EPOCH_CREATED
        for _ in range(count):
            created = EPOCH_CREATED + rng.randrange(span - 86400)
            modified = created + rng.randrange(min(span - (created - EPOCH_CREATED), 86400 * 400))
            self._add(self.next_id, created, modified)
        self.by_modified.sort()

    def _add(self, customer_id: int, created: int, modified: int) -> None:
        self.created[customer_id] = created
        self.modified[customer_id] = modified
        self.ids.append(customer_id)
        self.next_id = max(self.next_id, customer_id + 1)
        self.by_modified.append((modified, customer_id))

    def get(self, customer_id: int) -> dict[str, Any]:
        """The customer as it is now (generated, then edited)."""
        record = make_customer(self.seed, customer_id, self.created[customer_id],
                               self.modified[customer_id])
        record.update(self.edits.get(customer_id, {}))
        return record

    def now(self) -> int:
        """The store's clock: wall time, never before the newest modification."""
        latest = self.by_modified[-1][0] if self.by_modified else 0
        return max(int(time.time()), latest)

    def touch(self, customer_id: int, edit: dict[str, Any]) -> None:
        """Edit a customer and bump its ``date_modified`` to now."""
        old = (self.modified[customer_id], customer_id)
        del self.by_modified[bisect.bisect_left(self.by_modified, old)]
        self.modified[customer_id] = self.now()
        bisect.insort(self.by_modified, (self.modified[customer_id], customer_id))
        self.edits.setdefault(customer_id, {}).update(edit)

    def create(self) -> int:
        """Add a new customer, created and modified now."""
        customer_id, now = self.next_id, self.now()
        self._add(customer_id, now, now)
        return customer_id

    def delete(self, customer_id: int) -> None:
        """Remove a customer."""
        del self.by_modified[bisect.bisect_left(self.by_modified,
                                                (self.modified[customer_id], customer_id))]
        del self.ids[bisect.bisect_left(self.ids, customer_id)]
        del self.created[customer_id], self.modified[customer_id]
        self.edits.pop(customer_id, None)


@dataclass
class Store:
    """One sandbox store."""

    seed: int
    store_hash: str
    plan: str
    customers: Customers

    @classmethod
    def generate(cls, seed: int, customers: int, plan: str) -> Store:
        """The store ``seed`` with ``customers`` customers."""
        store = cls(seed, store_hash_for(seed), plan, Customers(seed))
        store.customers.populate(customers)
        return store

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
