"""Deterministic Shopify records, shaped as the Admin GraphQL API answers them.

Every record is a dict keyed by the schema's field names (camelCase) with a ``__typename``, so
the executor's default resolver reads it as it is. A reference to another record is its global
id (``"gid://shopify/Customer/12"``): the executor looks it up when the field's type is an
object, so an edit to a customer shows in every order that points at it. Values Shopify
computes (a customer's ``numberOfOrders`` and ``amountSpent``, a variant's
``inventoryQuantity``) are computed when asked (``resolvers.py``), never stored.

The same seed gives the same records: every choice comes from ``random.Random(f"{seed}:...")``.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

FIRST = ("Ada", "Ben", "Chloé", "Dmitri", "Eve", "Farid", "Greta", "Hiro", "Inès", "Jon",
         "Kemal", "Lena", "Mateo", "Noor", "Olga", "Pia", "Quinn", "Rosa", "Sven", "Tomás")
LAST = ("Adler", "Bauer", "Costa", "Dubois", "Evans", "Fischer", "García", "Hansen", "Ito",
        "Jensen", "Kowalski", "López", "Müller", "Novak", "Okafor", "Petit", "Rossi", "Sato")
WORDS = ("Linen", "Wool", "Cedar", "Amber", "Slate", "Coral", "Moss", "Indigo", "Oak", "Sand")
THINGS = ("Shirt", "Scarf", "Mug", "Lamp", "Candle", "Tote", "Notebook", "Cap", "Vase", "Rug")
CITIES = (("Paris", "FR", "75001"), ("Berlin", "DE", "10115"), ("Austin", "US", "73301"),
          ("Lisbon", "PT", "1100-148"), ("Toronto", "CA", "M5H 2N2"))
#: Every consent state of the schema's enums, so a sync meets each of them.
EMAIL_STATES = ("SUBSCRIBED", "NOT_SUBSCRIBED", "PENDING", "UNSUBSCRIBED", "REDACTED", "INVALID")
SMS_STATES = ("SUBSCRIBED", "NOT_SUBSCRIBED", "PENDING", "UNSUBSCRIBED", "REDACTED")
OPT_IN_LEVELS = ("SINGLE_OPT_IN", "CONFIRMED_OPT_IN", "UNKNOWN")
CURRENCY = "USD"


def gid(kind: str, number: int) -> str:
    return f"gid://shopify/{kind}/{number}"


def iso(epoch: float) -> str:
    """Shopify's DateTime: ISO 8601 in UTC, to the second."""
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def money(amount: float) -> dict[str, Any]:
    return {"__typename": "MoneyV2", "amount": f"{amount:.2f}", "currencyCode": CURRENCY}


def money_bag(amount: float) -> dict[str, Any]:
    return {"__typename": "MoneyBag", "shopMoney": money(amount),
            "presentmentMoney": money(amount)}


def address(rng: random.Random, number: int, first: str, last: str) -> dict[str, Any]:
    city, country, zip_code = rng.choice(CITIES)
    return {"__typename": "MailingAddress", "id": gid("MailingAddress", number),
            "firstName": first, "lastName": last, "name": f"{first} {last}",
            "address1": f"{rng.randrange(1, 200)} Main Street", "address2": None,
            "city": city, "countryCodeV2": country, "country": country, "zip": zip_code,
            "phone": None, "company": None, "province": None, "provinceCode": None}


def customer(rng: random.Random, number: int, created: float, updated: float,
             shop: str) -> dict[str, Any]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    email = f"{first.lower()}.{last.lower()}.{number}@example.com".encode(
        "ascii", "ignore").decode()
    # About one customer in four has no phone, so no SMS consent either (Shopify: null).
    phone = f"+1555{number % 10_000_000:07d}" if rng.random() < 0.75 else None
    state = EMAIL_STATES[number % len(EMAIL_STATES)]
    consent_at = iso(updated) if state != "NOT_SUBSCRIBED" else None
    addresses = [address(rng, number * 10 + n, first, last) for n in range(rng.randrange(0, 3))]
    record = {
        "__typename": "Customer", "id": gid("Customer", number),
        "legacyResourceId": str(number), "firstName": first, "lastName": last,
        "displayName": f"{first} {last}", "email": email, "phone": phone,
        "emailMarketingConsent": {
            "__typename": "CustomerEmailMarketingConsentState", "marketingState": state,
            "marketingOptInLevel": rng.choice(OPT_IN_LEVELS), "consentUpdatedAt": consent_at},
        "smsMarketingConsent": None, "addresses": addresses,
        "defaultAddress": addresses[0] if addresses else None,
        "tags": sorted(rng.sample(("vip", "newsletter", "wholesale", "returning"),
                                  rng.randrange(0, 3))),
        "createdAt": iso(created), "updatedAt": iso(updated), "state": "ENABLED",
        "verifiedEmail": state != "INVALID", "validEmailAddress": state != "INVALID",
        "locale": rng.choice(("en", "fr", "de")), "note": None, "taxExempt": False,
        "unsubscribeUrl": f"https://{shop}.myshopify.com/unsubscribe?c={number}",
    }
    if phone:
        record["smsMarketingConsent"] = {
            "__typename": "CustomerSmsMarketingConsentState",
            "marketingState": SMS_STATES[(number // len(EMAIL_STATES)) % len(SMS_STATES)],
            "marketingOptInLevel": rng.choice(OPT_IN_LEVELS), "consentUpdatedAt": consent_at,
            "consentCollectedFrom": "SHOPIFY"}
    sync_email_address(record)
    return record


def sync_email_address(record: dict[str, Any]) -> None:
    """``defaultEmailAddress`` (the newer versions' place for the email) mirrors ``email``
    and ``emailMarketingConsent``: the same data, as Shopify serves both. Its state enum has
    no REDACTED: a redacted consent shows there as UNSUBSCRIBED (the sandbox's reading)."""
    consent = record.get("emailMarketingConsent") or {}
    state = consent.get("marketingState", "NOT_SUBSCRIBED")
    record["defaultEmailAddress"] = None if not record.get("email") else {
        "__typename": "CustomerEmailAddress", "emailAddress": record["email"],
        "marketingState": "UNSUBSCRIBED" if state == "REDACTED" else state,
        "marketingOptInLevel": consent.get("marketingOptInLevel"),
        "marketingUpdatedAt": consent.get("consentUpdatedAt"),
        "validFormat": True, "openTrackingLevel": "UNKNOWN",
        "marketingUnsubscribeUrl": record.get("unsubscribeUrl", ""), "openTrackingUrl": ""}


def product(rng: random.Random, number: int, created: float, updated: float, shop: str,
            first_variant: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A product and its variants (1 to 4), each variant with its inventory item."""
    title = f"{rng.choice(WORDS)} {rng.choice(THINGS)} {number}"
    handle = title.lower().replace(" ", "-")
    sizes = ("S", "M", "L", "XL")[:rng.randrange(1, 5)]
    base = round(rng.uniform(5, 150), 2)
    variants = []
    for n, size in enumerate(sizes):
        vid = first_variant + n
        variants.append({
            "__typename": "ProductVariant", "id": gid("ProductVariant", vid),
            "legacyResourceId": str(vid), "title": size, "displayName": f"{title} - {size}",
            "sku": f"SKU-{number}-{size}", "price": f"{base + n * 2:.2f}",
            "compareAtPrice": None, "position": n + 1, "availableForSale": True,
            "barcode": None, "product": gid("Product", number),
            "inventoryItem": gid("InventoryItem", vid),
            "selectedOptions": [{"__typename": "SelectedOption", "name": "Size",
                                 "value": size}],
            "createdAt": iso(created), "updatedAt": iso(updated)})
    record = {
        "__typename": "Product", "id": gid("Product", number), "legacyResourceId": str(number),
        "title": title, "handle": handle, "status": "ACTIVE", "vendor": "Sandbox Goods",
        "productType": rng.choice(THINGS), "tags": [rng.choice(WORDS).lower()],
        "description": f"The {title}.", "descriptionHtml": f"<p>The {title}.</p>",
        "onlineStoreUrl": f"https://{shop}.myshopify.com/products/{handle}",
        "featuredMedia": {
            "__typename": "MediaImage", "id": gid("MediaImage", number),
            "alt": title, "mediaContentType": "IMAGE", "status": "READY",
            "image": {"__typename": "Image", "url": f"https://cdn.example.com/{handle}.jpg",
                      "altText": title},
            "preview": {"__typename": "MediaPreviewImage", "status": "READY",
                        "image": {"__typename": "Image", "altText": title,
                                  "url": f"https://cdn.example.com/{handle}.jpg"}}},
        "variants": [v["id"] for v in variants], "collections": [],
        "createdAt": iso(created), "updatedAt": iso(updated), "publishedAt": iso(created),
    }
    return record, variants


def inventory_item(rng: random.Random, variant: dict[str, Any], locations: list[str],
                   updated: float) -> dict[str, Any]:
    number = int(variant["legacyResourceId"])
    levels = []
    for location in locations:
        available = rng.randrange(0, 40)
        levels.append({
            "__typename": "InventoryLevel",
            "id": f"gid://shopify/InventoryLevel/{location.rsplit('/', 1)[1]}"
                  f"?inventory_item_id={number}",
            "location": location, "item": gid("InventoryItem", number), "isActive": True,
            "quantities": quantities(available), "createdAt": iso(updated),
            "updatedAt": iso(updated)})
    return {"__typename": "InventoryItem", "id": gid("InventoryItem", number),
            "legacyResourceId": str(number), "sku": variant["sku"], "tracked": True,
            "variant": variant["id"], "inventoryLevels": levels,
            "createdAt": variant["createdAt"], "updatedAt": iso(updated)}


def quantities(available: int) -> list[dict[str, Any]]:
    """The named quantities of an inventory level (``available`` is what a shopper can buy)."""
    return [{"__typename": "InventoryQuantity", "id": f"gid://shopify/InventoryQuantity/{n}",
             "name": name, "quantity": value}
            for n, (name, value) in enumerate((("available", available), ("committed", 0),
                                               ("incoming", 0), ("on_hand", available)))]


def line_items(rng: random.Random, number: int, variants: list[dict[str, Any]],
               kind: str) -> tuple[list[dict[str, Any]], float]:
    """1 to 4 line items (``kind``: LineItem or AbandonedCheckoutLineItem) and their total."""
    items, total = [], 0.0
    for n, variant in enumerate(rng.sample(variants, min(len(variants), rng.randrange(1, 5)))):
        quantity = rng.randrange(1, 4)
        price = float(variant["price"])
        total += price * quantity
        items.append({
            "__typename": kind, "id": gid(kind, number * 10 + n), "quantity": quantity,
            "currentQuantity": quantity, "title": variant["displayName"].rsplit(" - ", 1)[0],
            "name": variant["displayName"], "variantTitle": variant["title"],
            "sku": variant["sku"], "variant": variant["id"], "product": variant["product"],
            "vendor": "Sandbox Goods", "requiresShipping": True, "taxable": True,
            "originalUnitPriceSet": money_bag(price),
            "discountedUnitPriceSet": money_bag(price),
            "originalTotalSet": money_bag(price * quantity),
            "originalTotalPriceSet": money_bag(price * quantity),
            "discountedTotalSet": money_bag(price * quantity),
            "discountedTotalPriceSet": money_bag(price * quantity)})
    return items, total


#: (financial status, fulfillment status, cancelled, refunded share) and how often, so every
#: status a marketing sync cares about is in a generated shop.
ORDER_KINDS = ((("PAID", "FULFILLED", False, 0.0), 50), (("PAID", "UNFULFILLED", False, 0.0), 15),
               (("PENDING", "UNFULFILLED", False, 0.0), 6),
               (("AUTHORIZED", "UNFULFILLED", False, 0.0), 5),
               (("PARTIALLY_REFUNDED", "FULFILLED", False, 0.5), 8),
               (("REFUNDED", "FULFILLED", False, 1.0), 6),
               (("REFUNDED", "UNFULFILLED", True, 1.0), 6),
               (("VOIDED", "UNFULFILLED", True, 0.0), 4))


def order(rng: random.Random, number: int, created: float, updated: float,
          customer_record: dict[str, Any] | None, variants: list[dict[str, Any]]
          ) -> dict[str, Any]:
    (financial, fulfillment, cancelled, refunded_share), = rng.choices(
        [k for k, _ in ORDER_KINDS], [w for _, w in ORDER_KINDS])
    items, total = line_items(rng, number, variants, "LineItem")
    record = {
        "__typename": "Order", "id": gid("Order", number), "legacyResourceId": str(number),
        "name": f"#{1000 + number}", "email": customer_record["email"] if customer_record
        else f"guest.{number}@example.com", "phone": None,
        "customer": customer_record["id"] if customer_record else None,
        "createdAt": iso(created), "updatedAt": iso(updated), "processedAt": iso(created),
        "cancelledAt": iso(updated) if cancelled else None,
        "cancelReason": "CUSTOMER" if cancelled else None, "closed": fulfillment == "FULFILLED",
        "closedAt": iso(updated) if fulfillment == "FULFILLED" else None,
        "displayFinancialStatus": financial, "displayFulfillmentStatus": fulfillment,
        "currencyCode": CURRENCY, "presentmentCurrencyCode": CURRENCY, "test": False,
        "confirmed": True, "sourceName": "web", "tags": [], "note": None,
        "lineItems": items, "subtotalPriceSet": money_bag(total),
        "totalPriceSet": money_bag(total), "totalTaxSet": money_bag(0),
        "totalShippingPriceSet": money_bag(0), "totalDiscountsSet": money_bag(0),
        "refunds": [], "customerAcceptsMarketing": False,
    }
    set_totals(record, 0.0)
    if refunded_share:
        add_refund(record, round(total * refunded_share, 2), updated)
    return record


def set_totals(record: dict[str, Any], refunded: float) -> None:
    total = float(record["totalPriceSet"]["shopMoney"]["amount"])
    record["totalRefundedSet"] = money_bag(refunded)
    record["currentTotalPriceSet"] = money_bag(max(0.0, total - refunded))


def add_refund(record: dict[str, Any], amount: float, when: float) -> dict[str, Any]:
    """Refund ``amount`` of an order (its statuses and totals follow)."""
    number = int(record["legacyResourceId"]) * 100 + len(record["refunds"]) + 1
    refund = {"__typename": "Refund", "id": gid("Refund", number),
              "legacyResourceId": str(number), "createdAt": iso(when), "processedAt": iso(when),
              "updatedAt": iso(when), "note": None, "order": record["id"],
              "totalRefundedSet": money_bag(amount), "totalRefunded": money(amount),
              "refundLineItems": []}
    record["refunds"].append(refund)
    refunded = sum(float(r["totalRefundedSet"]["shopMoney"]["amount"]) for r in record["refunds"])
    set_totals(record, refunded)
    total = float(record["totalPriceSet"]["shopMoney"]["amount"])
    record["displayFinancialStatus"] = ("REFUNDED" if refunded >= total - 0.005
                                        else "PARTIALLY_REFUNDED")
    return refund


def checkout(rng: random.Random, number: int, created: float, updated: float, shop: str,
             customer_record: dict[str, Any] | None, variants: list[dict[str, Any]],
             completed: bool) -> dict[str, Any]:
    items, total = line_items(rng, number, variants, "AbandonedCheckoutLineItem")
    token = f"{rng.getrandbits(128):032x}"
    return {
        "__typename": "AbandonedCheckout", "id": gid("AbandonedCheckout", number),
        "legacyResourceId": str(number), "name": f"#{number}", "note": "",
        "abandonedCheckoutUrl": f"https://{shop}.myshopify.com/{number}/checkouts/ac/"
                                f"{token}/recover?key={token[:16]}",
        "createdAt": iso(created), "updatedAt": iso(updated),
        "completedAt": iso(updated) if completed else None,
        "customer": customer_record["id"] if customer_record else None,
        "lineItems": items, "lineItemsQuantity": sum(i["quantity"] for i in items),
        "subtotalPriceSet": money_bag(total), "totalPriceSet": money_bag(total),
        "totalLineItemsPriceSet": money_bag(total), "totalDiscountSet": money_bag(0),
        "taxesIncluded": False, "discountCodes": [], "customAttributes": [], "taxLines": []}
