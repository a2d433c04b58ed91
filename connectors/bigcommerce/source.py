"""The BigCommerce source: declared in specs/bigcommerce.json, run by the framework's engine
(the package, ``connectors.bigcommerce``, hands out this module's names).

The only Python here is what JSON cannot say: how an order's line items and coupons come out of
the orders page (and when they must be fetched separately), an abandoned cart's recovery link
(and the check of the scope it needs), what a webhooks table misses, and the sandbox. Its
mapping to the commerce model is data (commerce.json, read by
``framework.declarative.mapping``); the
model streams (``commerce_*``, optional) are its records mapped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from connectors.bigcommerce import SPEC_FILE
from connectors.bigcommerce.sandbox import sandbox_command
from connectors.bigcommerce.scripts import content_scope_check
from connectors.bigcommerce.webhooks import BigCommerceHooks
from framework.declarative.mapping import Mapping, Scope
from framework.engine.http import HttpClient
from framework.engine.source import HttpSource
from framework.errors import ConnectorError
from framework.plugins.airbyte import airbyte_cli

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


ABANDONED = "store/cart/abandoned"
CONVERTED = "store/cart/converted"

#: What ``POST /v3/carts/{id}/redirect_urls`` needs, as the 403's fix names it: the scope with
#: the access level needed (the product page lists store_cart read-only, which reads carts but
#: cannot mint their links).
RECOVERY_SCOPE = "store_cart with modify access"
RECOVERY_FIX = ("abandoned carts are synced without a recovery link: POST "
                "/v3/carts/{id}/redirect_urls needs the OAuth scope store_cart with modify "
                "access, which this API account lacks (read-only is not enough); set Carts to "
                "modify on the API account (Settings > API > Store-level API accounts); until "
                "then a cart event carries the store's cart page (cart_url), no recovery_url")
#: After a refusal, a store's links are asked for again after this long (a long-running
#: forwarder sees the scope once it is granted); the warning is said once a process.
RETRY_RECOVERY_S = 3600.0
#: A cart id no store has: the check's request changes nothing (404 with the scope, 403
#: without).
PROBE_CART = "00000000-0000-4000-8000-000000000000"

_refused: dict[str, float] = {}  # store -> when its links were refused (monotonic)
_refused_lock = threading.Lock()


def cart_recovery(cart: dict[str, Any], fetch: Callable[..., Any]) -> list[dict[str, Any]]:
    """The recovery links of an abandoned cart, put on the cart record: one
    ``POST /v3/carts/{id}/redirect_urls`` per abandoned cart.

    A link is an enrichment: a token without modify access on carts (403) leaves the cart
    without one, says once what to grant, and every cart, customer and order still goes out.
    """
    if cart.get("webhook_scope") != ABANDONED:
        return []
    store = str(cart.get("store_hash") or "")
    with _refused_lock:
        refused_at = _refused.get(store)
    if refused_at is not None and time.monotonic() - refused_at < RETRY_RECOVERY_S:
        return []
    try:
        answer = fetch(f"/v3/carts/{cart['id']}/redirect_urls", method="POST",
                       scope=RECOVERY_SCOPE)
    except ConnectorError as exc:
        if exc.failure_type != "config_error":  # an outage: the stream is read again later
            raise
        with _refused_lock:
            first = store not in _refused
            _refused[store] = time.monotonic()
        if first:
            log.warning("store %s: %s", store or "?", RECOVERY_FIX)
        return []
    with _refused_lock:
        _refused.pop(store, None)
    cart["redirect_urls"] = (answer or {}).get("data")
    return []


def recovery_link_check(account: dict[str, Any], client: HttpClient) -> str | None:
    """Whether the token may mint recovery links (asked about a cart that does not exist,
    which changes nothing)."""
    try:
        client.send("POST", f"/v3/carts/{PROBE_CART}/redirect_urls", scope=RECOVERY_SCOPE)
    except ConnectorError as exc:
        if exc.failure_type == "config_error":
            return RECOVERY_FIX
        raise
    return None


def webhook_advice(scopes: list[str], streams: set[str]) -> list[str]:
    """What a webhooks table misses for the carts stream, which reads only what webhooks name:
    without ``store/cart/converted`` a cart bought after it was abandoned (BigCommerce then
    deletes it and sends nothing else) stays in the abandoned-cart list for good."""
    if "carts" not in streams:
        return []
    if not any(scope.startswith("store/cart/") for scope in scopes):
        return ["carts is synced but the webhooks table has no store/cart/ scope: carts are "
                "read only from the webhooks they send, so none will reach the destination; add "
                "store/cart/created, store/cart/updated, store/cart/abandoned and "
                "store/cart/converted to webhooks (or set sync.carts: false)"]
    if ABANDONED in scopes and CONVERTED not in scopes:
        return ["webhooks has store/cart/abandoned but not store/cart/converted: a cart "
                "bought after it was abandoned is never taken off the abandoned-cart list "
                "(BigCommerce deletes a converted cart and sends no other event); add "
                '{scope: "store/cart/converted", destination: "cart_converted"} to webhooks '
                "and run `runner webhooks register` again"]
    return []


def storefront_identity(event: dict[str, Any], fetch: Callable[..., Any]) -> list[Any]:
    """A storefront event of a shopper the page could not name (a guest) whose cart holds an
    email, given at checkout: the email is believed only once the Carts API's cart has it
    (``GET /v3/carts/{id}``; the page's word alone could name anyone), and then names the
    shopper, as a logged-in customer's verified token does."""
    cart = event.get("cart") or {}
    claimed = str(cart.get("email") or "").strip().lower()
    if event.get("email") or not claimed or not cart.get("id"):
        return []
    try:
        answer = fetch(f"/v3/carts/{cart['id']}")
    except ConnectorError as exc:
        if exc.failure_type != "config_error":  # an outage: the stream is read again later
            raise
        return []  # no read access to carts: the guest stays unnamed
    found = (answer or {}).get("data") or {}
    if str(found.get("email") or "").strip().lower() == claimed:
        event["email"] = claimed
        event["customer_id"] = str(found["customer_id"]) if found.get("customer_id") else None
        event["identified_by"] = "checkout_email"
    return []


def _order_lines(order: dict[str, Any], scope: Scope) -> list[dict[str, Any]]:
    """The commerce model's order lines: the consignments' line items (fetched when the
    orders page left some out)."""
    return order_line_items(order, scope.fetch or _offline)


def _order_coupons(order: dict[str, Any], scope: Scope) -> list[dict[str, Any]]:
    return order_coupons(order, scope.fetch or _offline)


def _offline(path: str, *args: Any, **kwargs: Any) -> Any:
    raise ConnectorError(f"mapping this order needs GET {path} (it was mapped without the "
                         "API)", "system_error")


#: The functions commerce.json names (what its data cannot say).
COMMERCE_FUNCTIONS = {"order_lines": _order_lines, "order_coupons": _order_coupons}
#: BigCommerce records as the commerce model (specs/schemas/commerce/v1).
COMMERCE = Mapping(Path(__file__).with_name("commerce.json"), functions=COMMERCE_FUNCTIONS)

connector = HttpSource(SPEC_FILE, sandbox=sandbox_command,
                       hooks={"order_line_items": order_line_items,
                              "order_coupons": order_coupons,
                              "cart_recovery": cart_recovery,
                              "storefront_identity": storefront_identity,
                              **COMMERCE.hooks("commerce")},
                       checks={"carts": recovery_link_check,
                               "storefront_events": content_scope_check},
                       advice=webhook_advice,
                       subscriptions=BigCommerceHooks)

#: ``source-bigcommerce``: the Airbyte CLI (spec, check, discover, read).
main = airbyte_cli(connector)
