"""The store API's endpoints: query parsing, filtering, sorting and pagination per resource.

Each handler takes the store, the query parameters and the path parameters and returns the body
(``None`` for 204 No Content) or raises :class:`ApiError`.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import orjson

from connectors.bigcommerce.sandbox import generate as g
from connectors.bigcommerce.sandbox.data import Collection, Store
from framework.declarative.formats import parse_datetime

MAX_LIMIT = 250
STATUS_DOCS = "https://developer.bigcommerce.com/api-docs/getting-started/api-status-codes"


class ApiError(Exception):
    """An error answered with BigCommerce's error body."""

    def __init__(self, status: int, title: str, errors: dict[str, str] | None = None):
        self.status, self.title, self.errors = status, title, errors or {}


# --- query parameters ---------------------------------------------------------------------

def _int(params: Any, name: str, default: int, low: int, high: int | None = None) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(422, f"The field '{name}' must be an integer", {name: raw}) from None
    if value < low or (high is not None and value > high):
        # The real API's answer to an out-of-range limit is undocumented; 422 is the safe
        # reading (clients must not rely on silent clamping).
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ApiError(422, f"The field '{name}' must be {bound}", {name: raw})
    return value


def _timestamp(params: Any, name: str) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    try:
        return int(parse_datetime(raw).timestamp())
    except (ValueError, TypeError, IndexError):
        raise ApiError(422, f"The field '{name}' is not a valid date", {name: raw}) from None


def _id_list(params: Any, name: str) -> set[int] | None:
    raw = params.get(name)
    if raw is None:
        return None
    try:
        return {int(v) for v in raw.split(",") if v.strip()}
    except ValueError:
        raise ApiError(422, f"The field '{name}' must be a list of integers", {name: raw}) from None


def _includes(params: Any, valid: tuple[str, ...]) -> set[str]:
    includes = {i for i in (params.get("include") or "").split(",") if i}
    for include in includes:
        if include not in valid:
            raise ApiError(422, f"Invalid include value '{include}'",
                           {"include": f"valid: {', '.join(valid)}"})
    return includes


# --- selecting records --------------------------------------------------------------------

def memo(items: Collection) -> Callable[[int], dict[str, Any]]:
    """Records for one request, each generated at most once (filters and rendering share)."""
    cache: dict[int, dict[str, Any]] = {}

    def get(i: int) -> dict[str, Any]:
        if i not in cache:
            cache[i] = items.get(i)
        return cache[i]
    return get


def cached(items: Collection, variant: str, render: Callable[[int], dict[str, Any]]
           ) -> Callable[[int], Any]:
    """``render`` memoized as JSON per record version (``orjson.Fragment`` embeds it)."""
    def render_cached(i: int) -> Any:
        hit = items.rendered.get((i, variant))
        version = items.edit_count.get(i, 0)
        if hit is None or hit[0] != version:
            hit = (version, orjson.dumps(render(i)))
            items.rendered[(i, variant)] = hit
        return orjson.Fragment(hit[1])
    return render_cached


@dataclass
class Selection:
    """Ids in response order: ``total`` of them, read a window at a time."""

    total: int
    window: Callable[[int, int], list[tuple[tuple[Any, ...], int]]]  # (offset, limit) -> keyed


def select(items: Collection, *, sort: str = "id", descending: bool = False,
           modified: tuple[int | None, int | None] = (None, None),
           created: tuple[int | None, int | None] = (None, None),
           ids: set[int] | None = None,
           keep: Callable[[int], bool] | None = None) -> Selection:
    """Filter and sort a collection. Date bounds are inclusive (the docs do not say; inclusive
    is what makes ``:min`` with the last value seen safe for clients)."""
    low, high = modified
    if sort == "date_modified" and not descending and ids is None and keep is None \
            and created == (None, None):
        # The incremental read's request: a range of the index, sliced without copying it.
        lo, hi = items.modified_range(low, high)
        index = items.by_modified
        return Selection(hi - lo, lambda offset, limit: [
            ((m, i), i) for m, i in index[lo + offset:min(hi, lo + offset + limit)]])
    candidates = sorted(ids) if ids is not None else items.ids
    keyed = []
    for i in candidates:
        if i not in items:
            continue
        m, c = items.modified[i], items.created[i]
        if (low is not None and m < low) or (high is not None and m > high):
            continue
        if (created[0] is not None and c < created[0]) or (created[1] is not None
                                                            and c > created[1]):
            continue
        if keep is not None and not keep(i):
            continue
        keyed.append(((m, i) if sort == "date_modified" else (c, i)
                      if sort == "date_created" else (i,), i))
    if sort in ("date_modified", "date_created"):
        keyed.sort()
    if descending:
        keyed.reverse()
    return Selection(len(keyed), lambda offset, limit: keyed[offset:offset + limit])


def v3_page(params: Any, selection: Selection, render: Callable[[int], dict[str, Any]],
            default_limit: int = 50) -> dict[str, Any]:
    """A V3 list body: ``data`` and ``meta.pagination`` with links."""
    limit = _int(params, "limit", default_limit, 1, MAX_LIMIT)
    page = _int(params, "page", 1, 1)
    window = selection.window((page - 1) * limit, limit)
    return {"data": [render(i) for _, i in window],
            "meta": {"pagination": _pagination(params, selection.total, len(window), page,
                                               limit)}}


def _pagination(params: Any, total: int, count: int, page: int, limit: int) -> dict[str, Any]:
    query = {k: v for k, v in params.items() if k not in ("page", "after", "before")}
    total_pages = max(1, math.ceil(total / limit))

    def link(number: int) -> str:
        return "?" + urlencode({**query, "page": number, "limit": limit})

    links = {"current": link(page)}
    if page > 1:
        links["previous"] = link(page - 1)
    if page < total_pages:
        links["next"] = link(page + 1)
    return {"total": total, "count": count, "per_page": limit, "current_page": page,
            "total_pages": total_pages, "links": links}


def v2_page(params: Any, selection: Selection, render: Callable[[int], dict[str, Any]]
            ) -> list[dict[str, Any]] | None:
    """A V2 list body: a bare array, or ``None`` (HTTP 204) when the page is empty."""
    limit = _int(params, "limit", 50, 1, MAX_LIMIT)
    page = _int(params, "page", 1, 1)
    rows = [render(i) for _, i in selection.window((page - 1) * limit, limit)]
    return rows or None


def static_v3(params: Any, rows: tuple[dict[str, Any], ...], key: str = "id"
              ) -> dict[str, Any]:
    """A V3 list of a small fixed resource, with ``{key}:in`` filtering."""
    wanted = _id_list(params, f"{key}:in")
    rows = tuple(r for r in rows if wanted is None or r[key] in wanted)
    limit = _int(params, "limit", 50, 1, MAX_LIMIT)
    page = _int(params, "page", 1, 1)
    window = rows[(page - 1) * limit:page * limit]
    return {"data": list(window),
            "meta": {"pagination": _pagination(params, len(rows), len(window), page, limit)}}


# --- customers ----------------------------------------------------------------------------

CUSTOMER_INCLUDES = {"addresses": "addresses", "attributes": "attributes",
                     "formfields": "form_fields", "storecredit": "store_credit_amounts",
                     "shopper_profile_id": None, "segment_ids": None}
CUSTOMER_SORTS = ("date_created", "last_name", "date_modified")


def _encode_cursor(key: tuple[Any, ...]) -> str:
    return base64.b64encode(":".join(map(str, key)).encode()).decode()


def _decode_cursor(raw: str) -> tuple[Any, ...]:
    try:
        return tuple(int(v) if v.lstrip("-").isdigit() else v
                     for v in base64.b64decode(raw).decode().split(":"))
    except (ValueError, UnicodeDecodeError):
        raise ApiError(422, "The cursor is not valid", {"after": raw}) from None


def customers(store: Store, params: Any, _: dict[str, Any]) -> dict[str, Any]:
    """``GET /v3/customers``: filters, sorts, includes, page and ``after``/``before`` cursors."""
    items = store.customers
    includes = _includes(params, tuple(CUSTOMER_INCLUDES))
    sort = params.get("sort")
    field, _sep, direction = (sort or "id:asc").partition(":")
    if sort and (field not in CUSTOMER_SORTS or direction not in ("asc", "desc")):
        raise ApiError(422, f"Invalid sort value '{sort}'",
                       {"sort": "valid: " + ", ".join(f"{f}:asc|desc" for f in CUSTOMER_SORTS)})
    exact = _timestamp(params, "date_modified")
    modified = ((exact, exact) if exact is not None else
                (_timestamp(params, "date_modified:min"), _timestamp(params, "date_modified:max")))
    created = (_timestamp(params, "date_created:min"), _timestamp(params, "date_created:max"))
    ids = _id_list(params, "id:in")
    groups = _id_list(params, "customer_group_id:in")
    emails_raw = params.get("email:in")
    emails = {e.strip().lower() for e in emails_raw.split(",")} if emails_raw else None
    record = memo(items)

    keep = None
    if emails or groups:
        def keep(i: int) -> bool:
            r = record(i)
            return ((not emails or r["email"].lower() in emails)
                    and (not groups or r["customer_group_id"] in groups))
    selection = select(items, sort="date_created" if field == "last_name" else field,
                       descending=direction == "desc", modified=modified, created=created,
                       ids=ids, keep=keep)
    if field == "last_name":
        keyed = sorted(((record(i)["last_name"], i), i)
                       for _, i in selection.window(0, selection.total))
        if direction == "desc":
            keyed.reverse()
        selection = Selection(len(keyed), lambda offset, limit: keyed[offset:offset + limit])
    dropped = [key for include, key in CUSTOMER_INCLUDES.items()
               if key and include not in includes]

    def render_record(i: int) -> dict[str, Any]:
        r = record(i)
        for key in dropped:
            r.pop(key, None)
        return r

    render = cached(items, ",".join(sorted(includes)), render_record)
    after, before = params.get("after"), params.get("before")
    if not (after or before):
        body = v3_page(params, selection, render)
        if body["meta"]["pagination"]["current_page"] == 1:
            body["meta"]["cursor_pagination"] = _cursor_meta(params, selection.window(
                0, body["meta"]["pagination"]["per_page"]), len(body["data"]), False)
        return body
    # Cursors are opaque to clients; here they encode the sort key of the edge record, which
    # keeps them valid under any sort (the docs show ``id:N`` for the default sort).
    limit = _int(params, "limit", 50, 1, MAX_LIMIT)
    keyed = selection.window(0, selection.total)
    keys = [k for k, _ in keyed]
    mark = _decode_cursor(after or before)
    if direction == "desc":
        keys = keys[::-1]
    if after:
        start = (bisect.bisect_right(keys, mark) if direction != "desc"
                 else len(keys) - bisect.bisect_left(keys, mark))
        window = keyed[start:start + limit]
    else:
        end = (bisect.bisect_left(keys, mark) if direction != "desc"
               else len(keys) - bisect.bisect_right(keys, mark))
        window = keyed[max(0, end - limit):end]
    data = [render(i) for _, i in window]
    return {"data": data, "meta": {
        "pagination": _pagination(params, selection.total, len(data), 1, limit),
        "cursor_pagination": _cursor_meta(params, window, len(data), True)}}


def _cursor_meta(params: Any, window: list[tuple[tuple[Any, ...], int]], count: int,
                 by_cursor: bool) -> dict[str, Any]:
    query = {k: v for k, v in params.items() if k not in ("page", "after", "before")}
    limit = _int(params, "limit", 50, 1, MAX_LIMIT)
    start = _encode_cursor(window[0][0]) if window else None
    end = _encode_cursor(window[-1][0]) if window else None
    links = {"current": "?" + urlencode({**query, "limit": limit})}
    if end and len(window) == limit:
        links["next"] = "?" + urlencode({**query, "limit": limit, "after": end})
    if start and by_cursor:
        links["previous"] = "?" + urlencode({**query, "limit": limit, "before": start})
    return {"count": count, "per_page": limit, "start_cursor": start, "end_cursor": end,
            "links": links}


def customer_groups(store: Store, params: Any, _: dict[str, Any]) -> list[dict[str, Any]] | None:
    """``GET /v2/customer_groups``: a bare array; dates in RFC 2822 like the rest of V2 (the
    spec's example, ``2023-07-17 06:30:41``, is unquoted and unconfirmed)."""
    rows = [{**row, "date_created": g.rfc2822(row["date_created"]),
             "date_modified": g.rfc2822(row["date_modified"])} for row in g.CUSTOMER_GROUP_ROWS]
    limit = _int(params, "limit", 50, 1, MAX_LIMIT)
    page = _int(params, "page", 1, 1)
    return rows[(page - 1) * limit:page * limit] or None


def customer_attributes(store: Store, params: Any, _: dict[str, Any]) -> dict[str, Any]:
    """``GET /v3/customers/attributes``: the names behind attribute ids."""
    rows = tuple({**row, "date_created": g.iso(row["date_created"]),
                  "date_modified": g.iso(row["date_modified"])} for row in g.ATTRIBUTE_ROWS)
    return static_v3(params, rows)


# --- orders -------------------------------------------------------------------------------

ORDER_SORTS = ("id", "customer_id", "date_created", "date_modified", "status_id", "channel_id",
               "external_id")


def _consignments(order: dict[str, Any], with_lines: bool) -> dict[str, Any]:
    """``consignments`` with ``consignment_structure=object``; embedded lines stop at 50, with
    the ``__warning__`` the real API adds (bigcommerce/docs issue #960)."""
    lines = order["_lines"]
    address = order["billing_address"]
    shipping: dict[str, Any] = {
        "id": order["id"], **{k: address[k] for k in ("first_name", "last_name", "company",
                                                       "street_1", "street_2", "city", "zip",
                                                       "country", "country_iso2", "state",
                                                       "email", "phone")},
        "form_fields": [], "shipping_method": "Flat Rate", "items_total": order["items_total"],
        "items_shipped": 0, "base_cost": float(order["base_shipping_cost"]),
        "cost_ex_tax": float(order["shipping_cost_ex_tax"]),
        "cost_inc_tax": float(order["shipping_cost_inc_tax"]), "cost_tax": 0,
        "shipping_zone_id": 1, "shipping_zone_name": address["country"]}
    if with_lines:
        shipping["line_items"] = lines[:g.MAX_EMBEDDED_LINES]
        if len(lines) > g.MAX_EMBEDDED_LINES:
            shipping["__warning__"] = {"message": g.CAPPED_LINES_WARNING}
    else:
        shipping["line_items"] = [{"url": f"/v2/orders/{order['id']}/products/{line['id']}",
                                   "resource": f"/orders/{order['id']}/products/{line['id']}"}
                                  for line in lines]
    return {"pickups": [], "shipping": [shipping], "downloads": [],
            "email": {"gift_certificates": []}}


def _public(order: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in order.items() if not k.startswith("_")}


def orders(store: Store, params: Any, _: dict[str, Any]) -> list[dict[str, Any]] | None:
    """``GET /v2/orders``: a bare array (204 when empty), RFC 2822 dates, money as strings."""
    items = store.orders
    includes = _includes(params, ("consignments", "consignments.line_items", "fees"))
    structure = params.get("consignment_structure")
    if structure not in (None, "object"):
        raise ApiError(400, "consignment_structure must be 'object'")
    sort = params.get("sort") or "id:asc"
    field, _sep, direction = sort.partition(":")
    if field not in ORDER_SORTS or direction not in ("", "asc", "desc"):
        raise ApiError(400, f"Invalid sort value '{sort}'")
    if field not in ("id", "date_created", "date_modified"):
        field = "id"  # the other sorts work on the real API; the sandbox orders them by id
    filters = {name: params.get(name) for name in ("customer_id", "status_id", "channel_id")}
    filters = {k: int(v) for k, v in filters.items() if v is not None}
    min_id, max_id = _int(params, "min_id", 0, 0), _int(params, "max_id", 10**12, 0)
    order = memo(items)

    keep = None
    if filters or min_id or max_id < 10**12:
        def keep(i: int) -> bool:
            return min_id <= i <= max_id and all(order(i)[k] == v for k, v in filters.items())

    selection = select(items, sort=field, descending=direction == "desc",
                       modified=(_timestamp(params, "min_date_modified"),
                                 _timestamp(params, "max_date_modified")),
                       created=(_timestamp(params, "min_date_created"),
                                _timestamp(params, "max_date_created")), keep=keep)
    lines = "consignments.line_items" in includes

    def render(i: int) -> dict[str, Any]:
        row = order(i)
        out = _public(row)
        if lines or "consignments" in includes:
            consignments = _consignments(row, lines)
            out["consignments"] = consignments if structure == "object" else [consignments]
        return out

    return v2_page(params, selection, cached(items, f"{sorted(includes)}{structure}", render))


def order(store: Store, params: Any, path: dict[str, Any]) -> dict[str, Any]:
    """``GET /v2/orders/{id}``: one order, with the same ``include`` options as the list."""
    includes = _includes(params, ("consignments", "consignments.line_items", "fees"))
    if params.get("consignment_structure") not in (None, "object"):
        raise ApiError(400, "consignment_structure must be 'object'")
    if path["order_id"] not in store.orders:
        raise ApiError(404, "The requested resource was not found.")
    row = store.orders.get(path["order_id"])
    out = _public(row)
    if includes & {"consignments", "consignments.line_items"}:
        consignments = _consignments(row, "consignments.line_items" in includes)
        out["consignments"] = (consignments if params.get("consignment_structure") == "object"
                               else [consignments])
    return out


def order_products(store: Store, params: Any, path: dict[str, Any]
                   ) -> list[dict[str, Any]] | None:
    """``GET /v2/orders/{id}/products``: every line of one order (404 if the order is gone)."""
    order_id = int(path["order_id"])
    if order_id not in store.orders:
        raise ApiError(404, "The requested resource was not found.")
    lines = store.order_products(order_id)
    limit = _int(params, "limit", 50, 1, MAX_LIMIT)
    page = _int(params, "page", 1, 1)
    return lines[(page - 1) * limit:page * limit] or None


def order_coupons(store: Store, params: Any, path: dict[str, Any]
                  ) -> list[dict[str, Any]] | None:
    """``GET /v2/orders/{id}/coupons``: the coupons used (204 when none)."""
    order_id = int(path["order_id"])
    if order_id not in store.orders:
        raise ApiError(404, "The requested resource was not found.")
    coupon = store.orders.get(order_id)["_coupon"]
    if not coupon:
        return None
    return [{"id": order_id, "coupon_id": order_id % 97, "order_id": order_id,
             "code": coupon["code"], "amount": f"{coupon['amount']:.4f}", "type": 1,
             "discount": coupon["amount"]}]


# --- catalog ------------------------------------------------------------------------------

PRODUCT_INCLUDES = ("bulk_pricing_rules", "channels", "custom_fields", "images", "modifiers",
                    "options", "parent_relations", "primary_image", "reviews", "variants",
                    "videos")
PRODUCT_SORTS = ("id", "name", "sku", "price", "date_modified", "date_last_imported",
                 "inventory_level", "is_visible", "total_sold", "calculated_price")


def products(store: Store, params: Any, _: dict[str, Any]) -> dict[str, Any]:
    """``GET /v3/catalog/products``: ``sort`` and ``direction`` are separate parameters here."""
    items = store.products
    includes = _includes(params, PRODUCT_INCLUDES)
    sort, direction = params.get("sort") or "id", params.get("direction") or "asc"
    if sort not in PRODUCT_SORTS or direction not in ("asc", "desc"):
        raise ApiError(422, "Invalid sort or direction",
                       {"sort": f"valid: {', '.join(PRODUCT_SORTS)}", "direction": "asc|desc"})
    channels = _id_list(params, "channel_id:in")
    visible = params.get("is_visible")
    product = memo(items)

    keep = None
    if channels or visible is not None:
        def keep(i: int) -> bool:
            p = product(i)
            return ((not channels or bool(channels & set(p["channels"])))
                    and (visible is None or p["is_visible"] == (visible in ("true", "1"))))

    exact = _timestamp(params, "date_modified")
    modified = ((exact, exact) if exact is not None else
                (_timestamp(params, "date_modified:min"), _timestamp(params, "date_modified:max")))
    selection = select(items, sort="date_modified" if sort == "date_modified" else "id",
                       descending=direction == "desc", modified=modified,
                       ids=_id_list(params, "id:in"), keep=keep)
    dropped = [k for k in ("variants", "images", "custom_fields", "channels")
               if k not in includes]

    def render(i: int) -> dict[str, Any]:
        p = product(i)
        for variant in p["variants"]:
            variant["inventory_level"] = store.inventory_level(variant["id"], 1,
                                                               variant["inventory_level"])
        p["inventory_level"] = sum(v["inventory_level"] for v in p["variants"])
        for key in dropped:
            p.pop(key, None)
        return p

    return v3_page(params, selection, cached(items, ",".join(sorted(includes)), render))


def categories(store: Store, params: Any, _: dict[str, Any]) -> dict[str, Any]:
    """``GET /v3/catalog/trees/categories``."""
    return static_v3(params, g.CATEGORY_ROWS, key="category_id")


def channels(store: Store, params: Any, _: dict[str, Any]) -> dict[str, Any]:
    """``GET /v3/channels`` (no sort parameter; ``date_modified:min`` filters)."""
    low = _timestamp(params, "date_modified:min")
    rows = tuple({**row, "date_created": g.iso(row["date_created"]),
                  "date_modified": g.iso(row["date_modified"])} for row in g.CHANNEL_ROWS
                 if low is None or row["date_modified"] >= low)
    return static_v3(params, rows)


def locations(store: Store, params: Any, _: dict[str, Any]) -> dict[str, Any]:
    """``GET /v3/inventory/locations``."""
    return static_v3(params, g.LOCATION_ROWS, key="id")


def inventory_items(store: Store, params: Any, _: dict[str, Any]) -> dict[str, Any]:
    """``GET /v3/inventory/items``: one entry per variant, with its stock at every location."""
    limit = _int(params, "limit", 50, 1, MAX_LIMIT)
    page = _int(params, "page", 1, 1)
    wanted = _id_list(params, "product_id:in")
    product_ids = [i for i in store.products.ids if wanted is None or i in wanted]
    # Variants are enumerated without generating products: ids follow product_id * 10 + k.
    variants = [(p, p * 10 + k) for p in product_ids for k in range(g.variant_count(store.seed, p))]
    window = variants[(page - 1) * limit:page * limit]
    cache: dict[int, dict[str, Any]] = {}
    data = []
    for product_id, variant_id in window:
        if product_id not in cache:
            cache[product_id] = store.products.get(product_id)
        variant = next(v for v in cache[product_id]["variants"] if v["id"] == variant_id)
        stock = {1: store.inventory_level(variant_id, 1, variant["inventory_level"]),
                 2: store.inventory_level(variant_id, 2, variant["inventory_level"] // 2)}
        data.append({
            "identity": {"sku": variant["sku"], "variant_id": variant_id,
                         "product_id": product_id, "sku_id": variant["sku_id"]},
            "locations": [{
                "location_id": loc["id"], "location_code": loc["code"],
                "location_name": loc["label"], "available_to_sell": stock[loc["id"]],
                "total_inventory_onhand": stock[loc["id"]], "location_enabled": True,
                "settings": {"safety_stock": 0, "is_in_stock": stock[loc["id"]] > 0,
                             "warning_level": 2, "bin_picking_number": ""}}
                for loc in g.LOCATION_ROWS]})
    return {"data": data,
            "meta": {"pagination": _pagination(params, len(variants), len(data), page, limit)}}


def store_info(store: Store, params: Any, _: dict[str, Any]) -> dict[str, Any]:
    """``GET /v2/store``."""
    return store.info()


def cart(store: Store, params: Any, path: dict[str, Any]) -> dict[str, Any]:
    """``GET /v3/carts/{cart_id}``; 404 once the cart is converted, deleted or expired."""
    found = store.carts.get(path["cart_id"])
    if found is None:
        raise ApiError(404, "Cart not found")
    return {"data": found, "meta": {}}


def cart_redirect_urls(store: Store, params: Any, path: dict[str, Any]) -> dict[str, Any]:
    """``POST /v3/carts/{cart_id}/redirect_urls``: links that bring the shopper back to the
    cart and to checkout (a new token each time, as the real API mints them)."""
    if path["cart_id"] not in store.carts:
        raise ApiError(404, "Cart not found")
    token = hashlib.sha1(f"{path['cart_id']}{time.time_ns()}".encode()).hexdigest()[:32]
    base = f"https://sandbox-{store.store_hash}.mybigcommerce.com"
    return {"data": {"cart_url": f"{base}/cart.php?action=load&id={path['cart_id']}"
                                 f"&token={token}",
                     "checkout_url": f"{base}/cart.php?action=loadInCheckout&id="
                                     f"{path['cart_id']}&token={token}",
                     "embedded_checkout_url": f"{base}/cart.php?embedded=1&action="
                                              f"loadInCheckout&id={path['cart_id']}"
                                              f"&token={token}"},
            "meta": {}}


# path template -> (OAuth scope, API version, handler[, method]). A token with the scope or
# its ``_read_only`` variant may GET; other methods need the scope itself.
ROUTES: dict[str, tuple[Any, ...]] = {
    "/v3/customers": ("store_v2_customers", "v3", customers),
    "/v3/customers/attributes": ("store_v2_customers", "v3", customer_attributes),
    "/v2/customer_groups": ("store_v2_customers", "v2", customer_groups),
    "/v2/orders": ("store_v2_orders", "v2", orders),
    "/v2/orders/{order_id:int}": ("store_v2_orders", "v2", order),
    "/v2/orders/{order_id:int}/products": ("store_v2_orders", "v2", order_products),
    "/v2/orders/{order_id:int}/coupons": ("store_v2_orders", "v2", order_coupons),
    "/v3/catalog/products": ("store_v2_products", "v3", products),
    "/v3/catalog/trees/categories": ("store_v2_products", "v3", categories),
    "/v3/inventory/items": ("store_v2_products", "v3", inventory_items),
    "/v3/inventory/locations": ("store_v2_products", "v3", locations),
    "/v3/channels": ("store_v2_information", "v3", channels),
    "/v2/store": ("store_v2_information", "v2", store_info),
    "/v3/carts/{cart_id}": ("store_cart", "v3", cart),
    "/v3/carts/{cart_id}/redirect_urls": ("store_cart", "v3", cart_redirect_urls, "POST"),
}
