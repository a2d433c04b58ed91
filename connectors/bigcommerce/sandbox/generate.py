"""Deterministic generators of BigCommerce records: the same (seed, id) gives the same record."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from framework.declarative.formats import format_utc


def iso(ts: int) -> str:
    """Epoch seconds as BigCommerce V3 writes customer dates (ISO 8601, UTC)."""
    return format_utc(ts)


def iso_offset(ts: int) -> str:
    """Epoch seconds as the Catalog API writes dates (``2018-08-24T14:41:00+00:00``)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def rfc2822(ts: int) -> str:
    """Epoch seconds as V2 writes dates (``Tue, 20 Nov 2012 00:00:00 +0000``, always UTC)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")


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

#: A JSON object as the API returns it.
Row = dict[str, Any]

CUSTOMER_GROUPS: tuple[Row, ...] = (
    {"id": 1, "name": "Retail", "is_default": True},
    {"id": 2, "name": "Wholesale", "is_default": False},
    {"id": 3, "name": "VIP", "is_default": False},
)
CUSTOMER_ATTRIBUTES: tuple[Row, ...] = (
    {"id": 1, "name": "Shoe size", "type": "number"},
    {"id": 2, "name": "Favorite color", "type": "string"},
    {"id": 3, "name": "Loyalty tier", "type": "string"},
)
FORM_FIELDS = (
    ("How did you hear about us?", ("Instagram", "Friend", "Google", "Newsletter", "TikTok")),
    ("Birthday", None),
    ("Marketing consent", ("Yes", "No")),
)
CHANNELS: tuple[Row, ...] = ({"id": 1, "name": "Main storefront"},
                             {"id": 2, "name": "Wholesale storefront"})


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




CUSTOMER_GROUP_ROWS: tuple[Row, ...] = tuple({
    **group, "category_access": {"type": "all"},
    "discount_rules": ([{"type": "all", "method": "percent", "amount": "10.0000"}]
                       if group["name"] != "Retail" else []),
    "date_created": 1640995200 + group["id"] * 86400, "date_modified": 1672531200,
    "is_group_for_guests": False} for group in CUSTOMER_GROUPS)

ATTRIBUTE_ROWS: tuple[Row, ...] = tuple(
    {**attribute, "date_created": 1640995200, "date_modified": 1672531200}
    for attribute in CUSTOMER_ATTRIBUTES)

CHANNEL_ROWS: tuple[Row, ...] = tuple({
    "id": channel["id"], "external_id": "", "is_listable_from_ui": True, "is_enabled": True,
    "is_visible": True, "status": "active", "name": channel["name"], "type": "storefront",
    "platform": "bigcommerce", "date_created": 1640995200, "date_modified": 1640995200 + 3600 *
    channel["id"], "icon_url": ""} for channel in CHANNELS)

CATEGORY_NAMES = ("Apparel", "Shoes", "Bags", "Accessories", "Home", "Kitchen", "Beauty",
                  "Outdoor", "Kids", "Sale", "New Arrivals", "Gifts")
CATEGORY_ROWS: tuple[Row, ...] = tuple({
    "category_id": i + 1, "category_uuid": f"00000000-0000-4000-a000-{i + 1:012d}",
    "tree_id": 1, "parent_id": 0 if i < 8 else 1 + i % 4, "name": name,
    "description": f"<p>{name} for every day</p>", "views": 100 * (i + 1), "sort_order": i,
    "page_title": name, "meta_keywords": [name.lower()], "meta_description": "",
    "layout_file": "category.html", "image_url": "", "is_visible": True, "search_keywords": "",
    "default_product_sort": "use_store_settings",
    "url": {"path": f"/{name.lower().replace(' ', '-')}/", "is_customized": False},
} for i, name in enumerate(CATEGORY_NAMES))

LOCATION_ROWS: tuple[Row, ...] = (
    {"id": 1, "code": "DEFAULT", "label": "Main warehouse", "description": "",
     "managed_by_external_source": False, "type_id": "PHYSICAL", "enabled": True,
     "time_zone": "America/Chicago", "storefront_visibility": True,
     "address": {"address1": "1 Sandbox Way", "city": "Austin", "state": "Texas",
                 "zip": "78701", "country_code": "US", "email": "", "phone": ""}},
    {"id": 2, "code": "BKK-1", "label": "Bangkok store", "description": "",
     "managed_by_external_source": False, "type_id": "PHYSICAL", "enabled": True,
     "time_zone": "Asia/Bangkok", "storefront_visibility": True,
     "address": {"address1": "99 Silom Road", "city": "Bangkok", "state": "Bangkok",
                 "zip": "10500", "country_code": "TH", "email": "", "phone": ""}},
)

ORDER_STATUSES = {0: "Incomplete", 1: "Pending", 2: "Shipped", 3: "Partially Shipped",
                  4: "Refunded", 5: "Cancelled", 6: "Declined", 7: "Awaiting Payment",
                  8: "Awaiting Pickup", 9: "Awaiting Shipment", 10: "Completed",
                  11: "Awaiting Fulfillment", 12: "Manual Verification Required",
                  13: "Disputed", 14: "Partially Refunded"}
_STATUS_WEIGHTS = {10: 50, 11: 12, 2: 12, 9: 5, 7: 4, 5: 5, 4: 3, 14: 2, 6: 2, 1: 3, 0: 2}
ADJECTIVES = ("Classic", "Organic", "Vintage", "Everyday", "Premium", "Handmade", "Silk",
              "Bamboo", "Linen", "Ceramic", "Leather", "Recycled")
NOUNS = ("Tote Bag", "Sneakers", "T-Shirt", "Mug", "Candle", "Scarf", "Backpack", "Notebook",
         "Sunglasses", "Water Bottle", "Hoodie", "Face Serum", "Teapot", "Cap")
OPTION_VALUES = (("Size", ("S", "M", "L", "XL")), ("Color", ("Black", "White", "Sand", "Navy")))
MAX_EMBEDDED_LINES = 50
CAPPED_LINES_WARNING = ("Not all line items of this consignment are returned with this response, "
                        "only 50 are included. Please use the `/v2/orders/{order_id}/products` "
                        "endpoint to fetch all line items.")


def money(value: float) -> str:
    """V2 money: a string with four decimals."""
    return f"{value:.4f}"


def variant_count(seed: int, product_id: int) -> int:
    """How many variants a product has (1 = only the base variant)."""
    return _rng(seed, "variants", product_id).choice((1, 1, 2, 3, 4))


def product_basics(seed: int, product_id: int) -> tuple[str, float, str]:
    """Name, price and SKU of a product (shared by products and order lines)."""
    rng = _rng(seed, "product-basics", product_id)
    name = f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}"
    price = round(rng.choice((9.5, 14.0, 19.99, 24.5, 35.0, 49.0, 79.0, 120.0)), 2)
    return name, price, f"SKU-{product_id:05d}"


def make_product(seed: int, product_id: int, created: int, modified: int) -> dict[str, Any]:
    """A catalog product with its variants, images, custom fields and channels."""
    rng = _rng(seed, "product", product_id)
    name, price, sku = product_basics(seed, product_id)
    count = variant_count(seed, product_id)
    variants = []
    for k in range(count):
        option_name, values = OPTION_VALUES[product_id % 2]
        level = rng.choice((0, 0, 3, 12, 40, 100))
        variants.append({
            "id": product_id * 10 + k, "product_id": product_id,
            "sku": sku if count == 1 else f"{sku}-{values[k]}", "sku_id": product_id * 10 + k,
            "price": None if count == 1 else price, "calculated_price": price,
            "sale_price": None, "retail_price": None, "cost_price": round(price * 0.4, 2),
            "weight": 0.5, "purchasing_disabled": False, "purchasing_disabled_message": "",
            "image_url": "", "upc": "", "mpn": "", "gtin": "", "inventory_level": level,
            "inventory_warning_level": 2, "bin_picking_number": "",
            "option_values": [] if count == 1 else [
                {"id": 100 + k, "option_id": 10 + product_id % 2, "label": values[k],
                 "option_display_name": option_name}]})
    categories = sorted({rng.randrange(1, len(CATEGORY_NAMES) + 1) for _ in range(2)})
    slug = name.lower().replace(" ", "-")
    on_sale = rng.random() < 0.2
    return {
        "id": product_id, "name": f"{name} #{product_id}", "type": "physical", "sku": sku,
        "description": f"<p>{name}, made to last.</p>", "weight": 0.5, "width": 0, "depth": 0,
        "height": 0, "price": price, "cost_price": round(price * 0.4, 2),
        "retail_price": round(price * 1.2, 2), "sale_price": round(price * 0.8, 2) if on_sale
        else 0, "map_price": 0, "calculated_price": round(price * 0.8, 2) if on_sale else price,
        "tax_class_id": 0, "product_tax_code": "", "categories": categories,
        "brand_id": rng.randrange(0, 5), "inventory_level": sum(v["inventory_level"]
                                                                for v in variants),
        "inventory_warning_level": 2,
        "inventory_tracking": "product" if count == 1 else "variant",
        "is_free_shipping": False, "is_visible": rng.random() < 0.95, "is_featured": False,
        "availability": "available", "availability_description": "", "condition": "New",
        "sort_order": 0, "upc": "", "mpn": "", "gtin": "", "search_keywords": "",
        "page_title": "", "meta_description": "", "view_count": rng.randrange(0, 5000),
        "total_sold": rng.randrange(0, 900), "reviews_rating_sum": 0, "reviews_count": 0,
        "custom_url": {"url": f"/{slug}-{product_id}/", "is_customized": False},
        "base_variant_id": product_id * 10, "date_created": iso_offset(created),
        "date_modified": iso_offset(modified), "date_last_imported": None,
        "variants": variants,
        "images": [{"id": product_id * 10 + n, "product_id": product_id,
                    "is_thumbnail": n == 0, "sort_order": n, "description": "",
                    "image_file": f"p/{product_id}_{n}.jpg",
                    "url_standard": f"https://cdn.example.com/products/{product_id}/{n}.500.jpg",
                    "url_thumbnail": f"https://cdn.example.com/products/{product_id}/{n}.220.jpg",
                    "url_zoom": f"https://cdn.example.com/products/{product_id}/{n}.1280.jpg",
                    "url_tiny": f"https://cdn.example.com/products/{product_id}/{n}.44.jpg",
                    "date_modified": iso_offset(created)}
                   for n in range(rng.choice((0, 1, 1, 2)))],
        "custom_fields": [{"id": product_id * 10 + 1, "name": "Material",
                           "value": rng.choice(("Cotton", "Steel", "Glass", "Wool"))}]
        if rng.random() < 0.5 else [],
        "channels": rng.choice(([1], [1], [1, 2], [2])),
    }


def order_line_count(seed: int, order_id: int) -> int:
    """Lines in an order; a few orders exceed the 50 lines the orders list embeds."""
    rng = _rng(seed, "order-lines", order_id)
    return rng.randrange(51, 61) if rng.random() < 0.002 else rng.choice((1, 1, 1, 2, 2, 3, 4))


def make_order_products(seed: int, order_id: int, products: int) -> list[dict[str, Any]]:
    """The order's line items (``GET /v2/orders/{id}/products``)."""
    rng = _rng(seed, "order-products", order_id)
    lines = []
    for n in range(order_line_count(seed, order_id)):
        product_id = rng.randrange(1, max(products, 1) + 1)
        name, price, sku = product_basics(seed, product_id)
        variant = product_id * 10 + rng.randrange(variant_count(seed, product_id))
        quantity = rng.choice((1, 1, 1, 2, 3))
        lines.append({
            "id": order_id * 100 + n, "order_id": order_id, "product_id": product_id,
            "variant_id": variant, "order_address_id": order_id, "name": name,
            "name_customer": name, "name_merchant": name, "sku": sku, "upc": "",
            "type": "physical", "base_price": money(price), "price_ex_tax": money(price),
            "price_inc_tax": money(price), "price_tax": money(0), "base_total":
            money(price * quantity), "total_ex_tax": money(price * quantity),
            "total_inc_tax": money(price * quantity), "total_tax": money(0),
            "quantity": quantity, "quantity_shipped": 0, "quantity_refunded": 0,
            "is_refunded": False, "refund_amount": money(0), "weight": "0.5000",
            "product_options": [], "applied_discounts": [], "configurable_fields": [],
            "brand": "", "parent_order_product_id": None, "is_bundled_product": False})
    return lines


def make_order(seed: int, order_id: int, created: int, modified: int, *, customers: int,
               products: int, status_id: int | None = None) -> dict[str, Any]:
    """An order as ``GET /v2/orders`` returns it (without consignments)."""
    rng = _rng(seed, "order", order_id)
    customer_id = rng.randrange(1, customers + 1) if customers and rng.random() < 0.85 else 0
    country = rng.choices(COUNTRIES, _COUNTRY_WEIGHTS)[0]
    first, last = rng.choice(country.first_names), rng.choice(country.last_names)
    city, state, postal = rng.choice(country.cities)
    lines = make_order_products(seed, order_id, products)
    subtotal = sum(float(line["total_inc_tax"]) for line in lines)
    shipping = rng.choice((0.0, 5.0, 9.95))
    coupon = round(subtotal * 0.1, 2) if rng.random() < 0.15 else 0.0
    total = round(subtotal + shipping - coupon, 2)
    if status_id is None:
        status_id = rng.choices(list(_STATUS_WEIGHTS), list(_STATUS_WEIGHTS.values()))[0]
    local = "".join(ch for ch in f"{first}.{last}".lower() if (ch.isascii() and ch.isalnum())
                    or ch == ".")
    email = f"{local or 'guest'}{customer_id or order_id}@example.com"
    return {
        "id": order_id, "customer_id": customer_id, "date_created": rfc2822(created),
        "date_modified": rfc2822(modified),
        "date_shipped": rfc2822(modified) if status_id in (2, 10) else "",
        "status_id": status_id, "status": ORDER_STATUSES[status_id],
        "cart_id": f"c{order_id:07d}-0000-4000-8000-000000000000",
        "channel_id": rng.choice((1, 1, 1, 2)), "external_source": None, "external_id": None,
        "subtotal_ex_tax": money(subtotal), "subtotal_inc_tax": money(subtotal),
        "subtotal_tax": money(0), "base_shipping_cost": money(shipping),
        "shipping_cost_ex_tax": money(shipping), "shipping_cost_inc_tax": money(shipping),
        "shipping_cost_tax": money(0), "handling_cost_ex_tax": money(0),
        "handling_cost_inc_tax": money(0), "wrapping_cost_ex_tax": money(0),
        "wrapping_cost_inc_tax": money(0), "total_ex_tax": money(total),
        "total_inc_tax": money(total), "total_tax": money(0),
        "items_total": sum(line["quantity"] for line in lines), "items_shipped": 0,
        "payment_method": rng.choice(("Credit Card", "PayPal", "Cash on Delivery")),
        "payment_provider_id": None,
        "payment_status": "captured" if status_id in (2, 9, 10, 11) else "",
        "refunded_amount": money(total if status_id == 4 else 0),
        "order_is_digital": False, "store_credit_amount": money(0),
        "gift_certificate_amount": money(0), "ip_address": f"198.51.100.{order_id % 250 + 1}",
        "geoip_country": country.name, "geoip_country_iso2": country.code,
        "currency_id": 1, "currency_code": "USD", "currency_exchange_rate": "1.0000000000",
        "default_currency_id": 1, "default_currency_code": "USD", "staff_notes": "",
        "customer_message": "", "discount_amount": money(0), "coupon_discount": money(coupon),
        "shipping_address_count": 1, "is_deleted": False, "is_email_opt_in": rng.random() < 0.6,
        "order_source": "www", "customer_locale": "en",
        "billing_address": {
            "first_name": first, "last_name": last, "company": "",
            "street_1": f"{rng.randrange(1, 999)} {rng.choice(STREETS)}", "street_2": "",
            "city": city, "state": state, "zip": _digits(rng, postal), "country": country.name,
            "country_iso2": country.code, "phone": _digits(rng, rng.choice(country.phones)),
            "email": email, "form_fields": []},
        "products": {"url": f"/v2/orders/{order_id}/products",
                     "resource": f"/orders/{order_id}/products"},
        "shipping_addresses": {"url": f"/v2/orders/{order_id}/shippingaddresses",
                               "resource": f"/orders/{order_id}/shippingaddresses"},
        "coupons": {"url": f"/v2/orders/{order_id}/coupons",
                    "resource": f"/orders/{order_id}/coupons"},
        "_lines": lines,
        "_coupon": {"code": f"SAVE10-{order_id % 97}", "amount": coupon} if coupon else None,
    }


def make_cart(seed: int, cart_number: int, customer: dict[str, Any] | None, products: int,
              created: int) -> dict[str, Any]:
    """A cart (``GET /v3/carts/{id}``) of a shopper, with physical line items."""
    rng = _rng(seed, "cart", cart_number)
    items: list[Row] = []
    for n in range(rng.randrange(1, 4)):
        product_id = rng.randrange(1, max(products, 1) + 1)
        name, price, sku = product_basics(seed, product_id)
        quantity = rng.choice((1, 1, 2))
        items.append({
            "id": f"{cart_number:08d}-{n:04d}-4000-8000-000000000000", "parent_id": None,
            "variant_id": product_id * 10, "product_id": product_id, "sku": sku, "name": name,
            "url": f"https://store.example.com/{name.lower().replace(' ', '-')}-{product_id}/",
            "quantity": quantity, "taxable": True,
            "image_url": f"https://cdn.example.com/products/{product_id}/0.500.jpg",
            "discounts": [], "coupons": [], "discount_amount": 0, "coupon_amount": 0,
            "original_price": price, "list_price": price, "sale_price": price,
            "extended_list_price": round(price * quantity, 2),
            "extended_sale_price": round(price * quantity, 2), "is_require_shipping": True,
            "is_mutable": True, "added_by_promotion": False})
    amount = round(sum(i["extended_sale_price"] for i in items), 2)
    return {
        "id": f"{rng.getrandbits(32):08x}-{cart_number:04x}-4{rng.getrandbits(12):03x}-8"
              f"{rng.getrandbits(12):03x}-{rng.getrandbits(48):012x}",
        "customer_id": customer["id"] if customer else 0, "channel_id": 1,
        "email": customer["email"] if customer else "", "currency": {"code": "USD"},
        "tax_included": False, "base_amount": amount, "discount_amount": 0,
        "manual_discount_amount": 0, "cart_amount": amount, "coupons": [], "discounts": [],
        "line_items": {"physical_items": items, "digital_items": [], "gift_certificates": [],
                       "custom_items": []},
        "created_time": iso(created), "updated_time": iso(created), "locale": "en",
        "version": 1,
    }
