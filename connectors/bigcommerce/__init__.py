"""The BigCommerce source: declared in specs/bigcommerce.json, run by the framework's engine.

The only Python here is what JSON cannot say: how an order's line items and coupons come out of
the orders page (and when they must be fetched separately), an abandoned cart's recovery link,
and the sandbox.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from connectors.bigcommerce.sandbox import sandbox_command
from framework.airbyte import airbyte_cli
from framework.catalog import data_path
from framework.source import HttpSource

log = logging.getLogger("tajo.bigcommerce")

ORDER_PRODUCTS_PAGE = 250


def _consignment_groups(consignments: Any) -> list[dict[str, Any]]:
    """Every consignment of an order, whichever ``consignment_structure`` the API used."""
    groups: list[dict[str, Any]] = []
    for block in consignments if isinstance(consignments, list) else [consignments]:
        if not isinstance(block, dict):
            continue
        for kind in ("shipping", "pickups", "downloads"):
            groups.extend(g for g in block.get(kind) or [] if isinstance(g, dict))
        email = block.get("email") or {}
        groups.extend(g for g in email.get("gift_certificates") or [] if isinstance(g, dict))
    return groups


def order_line_items(order: dict[str, Any], fetch: Callable[..., Any]) -> list[dict[str, Any]]:
    """An order's line items, embedded in the orders page (one request for 250 orders).

    The orders list embeds at most 50 lines per consignment and flags the rest with a
    ``__warning__``; only such an order costs a ``GET /v2/orders/{id}/products`` (paged).
    """
    groups = _consignment_groups(order.get("consignments"))
    lines = [dict(line) for group in groups for line in group.get("line_items") or []
             if isinstance(line, dict) and "id" in line]
    if not any("__warning__" in group for group in groups):
        return lines
    fetched: list[dict[str, Any]] = []
    page = 1
    while True:
        batch = fetch(f"/v2/orders/{order['id']}/products",
                      {"page": page, "limit": ORDER_PRODUCTS_PAGE})
        if batch is None and page == 1:  # 404: the order vanished since the page was read
            log.warning("order %s: its products are gone (404); keeping the %d embedded lines",
                        order["id"], len(lines))
            return lines
        fetched.extend(batch or [])
        if not batch or len(batch) < ORDER_PRODUCTS_PAGE:
            return fetched
        page += 1


def order_coupons(order: dict[str, Any], fetch: Callable[..., Any]) -> list[dict[str, Any]]:
    """The coupons of an order: orders pages do not embed them, so only an order with a
    coupon discount costs a ``GET /v2/orders/{id}/coupons``."""
    if not order.get("coupon_discount"):
        return []
    return [dict(coupon) for coupon in fetch(f"/v2/orders/{order['id']}/coupons") or []]


def cart_recovery(cart: dict[str, Any], fetch: Callable[..., Any]) -> list[dict[str, Any]]:
    """The recovery links of an abandoned cart, put on the cart record: one
    ``POST /v3/carts/{id}/redirect_urls`` per abandoned cart (it needs the ``store_cart``
    scope with modify access; a read-only token fails with that fix)."""
    if cart.get("webhook_scope") == "store/cart/abandoned":
        answer = fetch(f"/v3/carts/{cart['id']}/redirect_urls", method="POST")
        cart["redirect_urls"] = (answer or {}).get("data")
    return []


connector = HttpSource(data_path("specs/bigcommerce.json"), sandbox=sandbox_command,
                       hooks={"order_line_items": order_line_items,
                              "order_coupons": order_coupons,
                              "cart_recovery": cart_recovery})

#: ``source-bigcommerce``: the Airbyte CLI (spec, check, discover, read).
main = airbyte_cli(connector)
