"""The events the app sends Brevo for BigCommerce's webhook scopes.

A webhooks table row of the product page's layout names the event its scope becomes in Brevo
(``{scope: store/order/created, destination: order_placed}``). Which event that is belongs to
the pairing of the two platforms, so it is here, not in BigCommerce's spec (which names no
Brevo event) nor in the framework: a row that names another event is a one-line error.
"""

from __future__ import annotations

from typing import Any

from framework.errors import ConfigError
from framework.webhooks.subscriptions import declared, subscriptions, table_of

#: BigCommerce scope -> the Brevo event it is sent as.
EVENTS = {
    "store/customer/created": "customer_created",
    "store/customer/updated": "customer_updated",
    "store/customer/deleted": "customer_deleted",
    "store/order/created": "order_placed",
    "store/order/updated": "order_updated",
    "store/order/statusUpdated": "order_status_changed",
    "store/order/archived": "order_archived",
    "store/product/created": "product_created",
    "store/product/updated": "product_updated",
    "store/product/deleted": "product_deleted",
    "store/product/inventory/updated": "inventory_changed",
    "store/product/inventory/order/updated": "inventory_changed",
    "store/sku/inventory/updated": "inventory_changed",
    "store/sku/inventory/order/updated": "inventory_changed",
    "store/cart/created": "cart_created",
    "store/cart/updated": "cart_updated",
    "store/cart/abandoned": "cart_abandoned",
    "store/cart/converted": "cart_converted",
    "store/cart/deleted": "cart_deleted",
}


def subscribed(source: Any, config: dict[str, Any]) -> list[str]:
    """The scopes the config's webhooks table subscribes to
    (``framework.webhooks.subscriptions``), each row's ``destination`` checked against the event
    its scope is sent as."""
    scopes = subscriptions(source, config)
    spec = declared(source)
    for index, row in enumerate(table_of(source, config)):
        wanted = row.get("destination")
        if not wanted:
            continue
        for name in spec.aliases.get(row["scope"], [row["scope"]]):
            event = EVENTS.get(name)
            if event is not None and wanted != event:
                raise ConfigError(f"webhooks[{index}].destination: {row['scope']} is sent to "
                                  f"Brevo as {event!r}, not {wanted!r}; write destination: "
                                  f"{event}")
    return scopes
