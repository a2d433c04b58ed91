"""The fields the default resolver cannot read off a record: root lists and lookups, what
Shopify computes (``numberOfOrders``, ``amountSpent``, ``inventoryQuantity``), the app's own
objects (``currentAppInstallation``, bulk operations, webhook subscriptions) and the mutations
the sandbox implements. Every other mutation answers null: the sandbox's shop is changed
through its admin API (``/_sandbox/...``), as a merchant changes a real one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphql import GraphQLError, GraphQLResolveInfo, get_named_type

from connectors.shopify.sandbox import generate as g
from connectors.shopify.sandbox.resolvers import (
    ROOT_LISTS,
    ROOT_ONE,
    Context,
    access_denied,
    paginate,
)

#: Each resolver takes the field's arguments it uses by name and the rest (the schema's
#: defaults, which graphql-core passes too) as ``**rest``.
Resolve = Callable[..., Any]
MAX_COUNT = 25_000  # Shopify's counts are exact up to here (API limits, "Pagination limits")
MAX_INPUT_ARRAY = 250  # the most items an array argument takes (API limits, "Input limits")


def _root_list(kind: str) -> Resolve:
    def resolve(_: Any, info: GraphQLResolveInfo, **args: Any) -> Any:
        ctx: Context = info.context
        named = get_named_type(info.return_type)
        return paginate(ctx, list(ctx.shop.records[kind].values()), args, named)
    return resolve


def _lookup(ctx: Context, record_id: Any, info: GraphQLResolveInfo) -> Any:
    record = ctx.shop.nodes.get(str(record_id))
    if record is None and ctx.app is not None:
        record = ctx.app.node(str(record_id), ctx.client)
    if record is None:
        return None
    needed = ctx.scope_data.get((record["__typename"], None))
    if needed and not ctx.granted(needed):
        raise access_denied(info.field_name, needed)
    return record if ctx.visible(record) else None


def _root_one(kind: str) -> Resolve:
    def resolve(_: Any, info: GraphQLResolveInfo, **args: Any) -> Any:
        record = _lookup(info.context, args.get("id"), info)
        return record if record is not None and record["__typename"] == kind else None
    return resolve


def node(_: Any, info: GraphQLResolveInfo, id: str, **rest: Any) -> Any:
    return _lookup(info.context, id, info)


def nodes(_: Any, info: GraphQLResolveInfo, ids: list[str], **rest: Any) -> list[Any]:
    if len(ids) > MAX_INPUT_ARRAY:  # Shopify's limit on every array argument
        raise GraphQLError(f"The input array size of {len(ids)} is greater than the maximum "
                           f"allowed of {MAX_INPUT_ARRAY}.", extensions={
                               "code": "MAX_INPUT_SIZE_EXCEEDED"})
    return [_lookup(info.context, i, info) for i in ids]


def shop(_: Any, info: GraphQLResolveInfo, **rest: Any) -> Any:
    return info.context.shop.shop_record


def count(kind: str) -> Resolve:
    def resolve(_: Any, info: GraphQLResolveInfo, **args: Any) -> Any:
        ctx: Context = info.context
        listed = paginate(Context(ctx.shop, ctx.scopes, ctx.version, bulk=True),
                          list(ctx.shop.records[kind].values()), {"query": args.get("query")},
                          get_named_type(info.schema.type_map["PageInfo"]))
        # Shopify counts exactly up to 25,000 and answers 25,001 "at least" past it.
        found = len(listed["nodes"])
        return {"__typename": "Count", "count": min(found, MAX_COUNT + 1),
                "precision": "EXACT" if found <= MAX_COUNT else "AT_LEAST"}
    return resolve


def _orders_of(ctx: Context, customer: dict[str, Any]) -> list[dict[str, Any]]:
    found = (ctx.shop.nodes.get(i) for i in ctx.shop.orders_of.get(customer["id"], []))
    return [o for o in found if o is not None]


def number_of_orders(source: dict[str, Any], info: GraphQLResolveInfo, **rest: Any) -> str:
    """Shopify's own count (UnsignedInt64: a string), every order of the customer."""
    return str(len(info.context.shop.orders_of.get(source["id"], [])))


def amount_spent(source: dict[str, Any], info: GraphQLResolveInfo, **rest: Any) -> dict[str, Any]:
    """What the customer has spent: orders' current totals (net of refunds), cancelled
    orders left out. Shopify does not say how it counts; this is the sandbox's reading."""
    total = sum(float(o["currentTotalPriceSet"]["shopMoney"]["amount"])
                for o in _orders_of(info.context, source) if not o.get("cancelledAt"))
    return g.money(total)


def customer_orders(source: dict[str, Any], info: GraphQLResolveInfo, **args: Any) -> Any:
    return paginate(info.context, _orders_of(info.context, source), args,
                    get_named_type(info.return_type))


def last_order(source: dict[str, Any], info: GraphQLResolveInfo, **rest: Any) -> Any:
    visible = [o for o in _orders_of(info.context, source) if info.context.visible(o)]
    return max(visible, key=lambda o: o["createdAt"], default=None)


def _available(item: dict[str, Any]) -> int:
    return sum(q["quantity"] for level in item.get("inventoryLevels", [])
               for q in level["quantities"] if q["name"] == "available")


def inventory_quantity(source: dict[str, Any], info: GraphQLResolveInfo, **rest: Any) -> int:
    item = info.context.shop.nodes.get(source.get("inventoryItem") or "")
    return _available(item) if item else 0


def total_inventory(source: dict[str, Any], info: GraphQLResolveInfo, **rest: Any) -> int:
    shop = info.context.shop
    return sum(_available(shop.nodes[v.replace("ProductVariant", "InventoryItem")])
               for v in source.get("variants", [])
               if v.replace("ProductVariant", "InventoryItem") in shop.nodes)


def quantities(source: dict[str, Any], info: GraphQLResolveInfo, names: list[str],
               **rest: Any) -> Any:
    return [q for q in source.get("quantities", []) if q["name"] in names]


def inventory_level(source: dict[str, Any], info: GraphQLResolveInfo,
                    locationId: str, **rest: Any) -> Any:
    return next((lv for lv in source.get("inventoryLevels", [])
                 if lv["location"] == locationId), None)


def refunds(source: dict[str, Any], info: GraphQLResolveInfo, first: int | None = None,
            **rest: Any) -> Any:
    found = source.get("refunds", [])
    return found[:first] if first is not None else found


def variants_count(source: dict[str, Any], info: GraphQLResolveInfo, **rest: Any) -> Any:
    return {"__typename": "Count", "count": len(source.get("variants", [])),
            "precision": "EXACT"}


def access_scopes(source: Any, info: GraphQLResolveInfo, **rest: Any) -> list[dict[str, Any]]:
    return [{"__typename": "AccessScope", "handle": s, "description": s}
            for s in sorted(info.context.scopes)]


def current_installation(_: Any, info: GraphQLResolveInfo, **rest: Any) -> dict[str, Any]:
    ctx: Context = info.context
    return {"__typename": "AppInstallation", "id": g.gid("AppInstallation", 1),
            "launchUrl": f"https://{ctx.shop.name}.myshopify.com/admin/apps/sandbox",
            "app": {"__typename": "App", "id": g.gid("App", 1), "title": "Sandbox app",
                    "handle": "sandbox-app", "apiKey": "sandbox-app"}}


def _app(method: str) -> Resolve:
    """A field the app's state answers (bulk operations, webhook subscriptions)."""
    def resolve(source: Any, info: GraphQLResolveInfo, **args: Any) -> Any:
        ctx: Context = info.context
        if ctx.app is None:
            raise GraphQLError("not available here", extensions={"code": "BAD_REQUEST"})
        return getattr(ctx.app, method)(ctx, info, **args)
    return resolve


SPECIAL: dict[tuple[str, str], Resolve] = {
    **{("QueryRoot", name): _root_list(kind) for name, kind in ROOT_LISTS.items()},
    **{("QueryRoot", name): _root_one(kind) for name, kind in ROOT_ONE.items()},
    **{("QueryRoot", f"{name}Count"): count(kind) for name, kind in ROOT_LISTS.items()},
    ("QueryRoot", "node"): node, ("QueryRoot", "nodes"): nodes, ("QueryRoot", "shop"): shop,
    ("QueryRoot", "currentAppInstallation"): current_installation,
    ("AppInstallation", "accessScopes"): access_scopes,
    ("Customer", "numberOfOrders"): number_of_orders, ("Customer", "amountSpent"): amount_spent,
    ("Customer", "orders"): customer_orders, ("Customer", "lastOrder"): last_order,
    ("ProductVariant", "inventoryQuantity"): inventory_quantity,
    ("Product", "totalInventory"): total_inventory,
    ("Product", "variantsCount"): variants_count,
    ("InventoryLevel", "quantities"): quantities,
    ("InventoryItem", "inventoryLevel"): inventory_level,
    ("Order", "refunds"): refunds,
    ("QueryRoot", "currentBulkOperation"): _app("current_bulk"),
    ("QueryRoot", "bulkOperation"): _app("bulk_by_id"),
    ("QueryRoot", "bulkOperations"): _app("bulk_list"),
    ("QueryRoot", "webhookSubscriptions"): _app("subscriptions"),
    ("QueryRoot", "webhookSubscription"): _app("subscription"),
    ("Mutation", "bulkOperationRunQuery"): _app("run_bulk"),
    ("Mutation", "bulkOperationCancel"): _app("cancel_bulk"),
    ("Mutation", "webhookSubscriptionCreate"): _app("create_subscription"),
    ("Mutation", "webhookSubscriptionDelete"): _app("delete_subscription"),
}
