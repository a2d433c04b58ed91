"""The commerce model's records in the shapes Brevo's e-commerce endpoints take: orders,
categories, products."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any


def brevo_order_id(store: str, order_id: int) -> str:
    """Brevo order ids are unique per account: several stores feed one, so the store leads."""
    return f"{store}-{order_id}"


def order_line(line: dict[str, Any]) -> dict[str, Any]:
    """A line as the SDK's ``OrderProductsItem``: ids are strings, ``quantity`` an integer
    (a fractional quantity goes in ``quantityFloat``)."""
    item: dict[str, Any] = {"productId": str(line["productId"]), "price": float(line["price"])}
    if line.get("variantId") not in (None, "None", ""):
        item["variantId"] = str(line["variantId"])
    quantity = float(line.get("quantity") or 0)
    if quantity.is_integer():
        item["quantity"] = int(quantity)
    else:
        item["quantityFloat"] = quantity
    return item


# --- the commerce model (specs/schemas/commerce/v1) -----------------------------------------

def model_order(order: dict[str, Any], email: str | None) -> dict[str, Any]:
    """A model order as ``/v3/orders/status`` takes it (see ``brevo_order``): its lines and
    coupons are in the record. Raises ValueError when it lacks the dates Brevo requires."""
    account = str(order.get("account", ""))
    created = order.get("created_at") or order.get("updated_at")
    if not created:
        raise ValueError("the order has no created_at nor updated_at, which Brevo requires "
                         "(createdAt, updatedAt)")
    billing = order.get("billing_address") or {}
    address = {"address": billing.get("line1"), "city": billing.get("city"),
               "countryCode": billing.get("country_code"), "phone": billing.get("phone"),
               "postCode": billing.get("postal_code"), "region": billing.get("region"),
               "paymentMethod": order.get("payment_method")}
    status = order.get("platform_status") or {}
    payload: dict[str, Any] = {
        "id": brevo_order_id(account, order["id"]), "createdAt": created,
        "updatedAt": order.get("updated_at") or created,
        "status": str(status.get("name") or status.get("id") or order.get("status")),
        "amount": round(float(order.get("total") or 0), 2), "storeId": account,
        "products": [order_line({"productId": line.get("product_id"),
                                 "variantId": line.get("variant_id"),
                                 "quantity": line.get("quantity"),
                                 "price": line.get("price") or 0})
                     for line in order.get("lines") or []],
        "billing": {k: str(v) for k, v in address.items() if v not in (None, "")},
    }
    coupons = sorted({c["code"] for c in order.get("coupons") or [] if c.get("code")})
    if coupons:
        payload["coupons"] = coupons
    if email:
        payload["identifiers"] = {"email_id": email}
    return payload


def model_category(category: dict[str, Any]) -> dict[str, Any]:
    """A model category as ``/v3/categories/batch`` takes it (its URL is absolute)."""
    item = {"id": f"{category.get('account', '')}-{category['id']}",
            "name": category.get("name") or "", "isDeleted": False}
    if category.get("url"):
        item["url"] = category["url"]
    return item


def model_products(product: dict[str, Any], stock: Callable[[str, str], float | None]
                   ) -> Iterator[tuple[dict[str, Any], str | None]]:
    """A model product (and, when it has several, its variants with ``parentId``) as
    ``/v3/products/batch`` takes them, each with the variant whose stock it carries."""
    account = str(product.get("account", ""))
    parent = f"{account}-{product['id']}"
    base: dict[str, Any] = {
        "name": product.get("name") or "", "sku": product.get("sku"),
        "price": product.get("price"),
        "categories": [f"{account}-{c}" for c in product.get("category_ids") or []],
        "isDeleted": not product.get("visible", True)}
    if product.get("url"):
        base["url"] = product["url"]
    if product.get("image_url"):
        base["imageUrl"] = product["image_url"]
    variants = product.get("variants") or []

    def level(variant: dict[str, Any]) -> float | None:
        known = stock(account, str(variant["id"]))
        return known if known is not None else variant.get("stock")

    if len(variants) <= 1:
        item = {"id": parent, **base}
        variant_id = str(variants[0]["id"]) if variants else None
        if variants and level(variants[0]) is not None:
            item["stock"] = level(variants[0])
        yield item, variant_id
        return
    yield {"id": parent, **base, "stock": sum(level(v) or 0 for v in variants)}, None
    for variant in variants:
        labels = " / ".join(str(o.get("value") or "") for o in variant.get("options") or [])
        item = {**base, "id": f"{parent}-{variant['id']}", "parentId": parent,
                "name": f"{base['name']} ({labels})" if labels else base["name"],
                "sku": variant.get("sku") or base["sku"],
                "price": variant.get("price") or base["price"]}
        if variant.get("image_url"):
            item["imageUrl"] = variant["image_url"]
        if level(variant) is not None:
            item["stock"] = level(variant)
        yield item, str(variant["id"])
