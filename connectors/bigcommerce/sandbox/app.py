"""The BigCommerce REST API as a connector meets it, served from generated stores.

Faithful where a connector can tell: ``X-Auth-Token`` auth and OAuth scopes (401/403 bodies),
the four ``X-Rate-Limit-*`` headers on every response and a real 429 once the plan's quota for
the window is used (per store: stores do not share quotas), V3 ``meta.pagination`` and V2 bare
arrays with 204 for an empty page, filters, sorting, includes, limits and error bodies. Where the
real API is not documented, the choice made here is stated next to the code (``routes.py``).

``/_sandbox/...`` (a store's token, not rate limited) lets tests change that store while it runs
and read its request counts.
"""

from __future__ import annotations

import math
import random
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.bigcommerce.sandbox import generate as g
from connectors.bigcommerce.sandbox.data import PLANS, Collection, Store
from connectors.bigcommerce.sandbox.hooks import Hooks
from connectors.bigcommerce.sandbox.routes import ROUTES, STATUS_DOCS, ApiError
from connectors.bigcommerce.sandbox.scripts import Scripts
from connectors.bigcommerce.sandbox.storefront import routes as storefront_routes
from framework.devkit.sandbox import Faults, QuotaWindow, RequestStats, delay, json_response

ALL_SCOPES = frozenset({"store_v2_customers", "store_v2_information", "store_v2_orders",
                        "store_v2_products", "store_cart", "store_v2_content"})


def v3_error(status: int, title: str, errors: dict[str, str] | None = None) -> dict[str, Any]:
    """The V3 error body (``error_Base`` in BigCommerce's specs)."""
    return {"status": status, "title": title, "type": STATUS_DOCS, "errors": errors or {}}


def v2_error(status: int, message: str) -> list[dict[str, Any]]:
    """The V2 error body. Not documented in BigCommerce's specs; this array of
    ``{status, message}`` is what V2 clients in the wild parse."""
    return [{"status": status, "message": message}]


class Sandbox:
    """One store being served: the store, its tokens, quota window, counters and faults."""

    def __init__(self, store: Store, access_token: str, window_ms: int, latency_ms: int,
                 *, client_id: str = "sandbox-app", hooks: Hooks | None = None) -> None:
        self.store = store
        self.access_token = access_token
        self.tokens: dict[str, frozenset[str]] = {access_token: ALL_SCOPES}
        self.clients: dict[str, str] = {access_token: client_id}  # token -> API account
        self.window = QuotaWindow(PLANS[store.plan], window_ms)
        self.latency_ms = latency_ms
        self.stats = RequestStats()
        self.faults = Faults()
        self.hooks = hooks or Hooks(store.store_hash, 1_000_000 + store.seed)
        self.scripts = Scripts()  # /v3/content/scripts


def _has_scope(granted: frozenset[str], scope: str, modify: bool = False) -> bool:
    return scope in granted or (not modify and f"{scope}_read_only" in granted)


def _store_endpoint(sandbox: Sandbox, template: str, scope: str, version: str,
                    handler: Callable[..., Any], *, reads_request: bool = False
                    ) -> Callable[[Request], Awaitable[Response]]:
    def error(status: int, title: str, errors: dict[str, str] | None = None,
              headers: dict[str, str] | None = None) -> Response:
        body = v3_error(status, title, errors) if version == "v3" else v2_error(status, title)
        sandbox.stats.count(template, status)
        return json_response(body, status, headers)

    async def endpoint(request: Request) -> Response:
        await delay(sandbox.latency_ms)
        token = request.headers.get("x-auth-token", "")
        granted = sandbox.tokens.get(token)
        if granted is None:  # unauthenticated requests do not use the quota
            return error(401, "You are not authorized to access this resource. Check that the "
                              "X-Auth-Token header holds a valid access token")
        allowed, left, reset_ms = sandbox.window.take()
        quota = sandbox.window.quota
        headers = {"X-Rate-Limit-Requests-Left": str(left),
                   "X-Rate-Limit-Time-Reset-Ms": str(reset_ms),
                   "X-Rate-Limit-Requests-Quota": str(quota if quota else 10**9),
                   "X-Rate-Limit-Time-Window-Ms": str(sandbox.window.window_ms)}
        if not allowed:
            headers["X-Retry-After"] = str(math.ceil(reset_ms / 1000))
            return error(429, "Too many requests", headers=headers)
        if scope and not _has_scope(granted, scope, request.method != "GET"):
            return error(403, "You don't have a required scope to access the endpoint",
                         headers=headers)
        fault = sandbox.faults.next()
        if fault is not None:
            status = int(fault.get("status", 503))
            if "body" in fault:  # an answer of the wrong shape (an API change, a proxy)
                sandbox.stats.count(template, status)
                return json_response(fault["body"], status, headers)
            if fault.get("html"):
                sandbox.stats.count(template, status)
                return Response("<html><body><h1>502 Bad Gateway</h1></body></html>", status,
                                media_type="text/html")
            return error(status, {429: "Too many requests", 503: "Service Unavailable"}.get(
                status, "Internal error"), headers=None if fault.get("bare") else headers)
        try:
            if reads_request:  # the hooks API: it reads the request and its body
                body = handler(sandbox, request, await request.body(), granted, token)
            else:
                body = handler(sandbox.store, request.query_params, request.path_params)
        except ApiError as exc:
            return error(exc.status, exc.title, exc.errors, headers)
        status = 200 if body is not None else 204
        sandbox.stats.count(template, status)
        if body is None:
            return Response(status_code=204, headers=headers)
        return json_response(body, 200, headers)

    return endpoint


def _hooks_api(sandbox: Sandbox, request: Request, raw: bytes, granted: frozenset[str],
               token: str) -> dict[str, Any] | None:
    """``/v3/hooks`` and ``/v3/hooks/{id}``: only the calling API account's hooks."""
    hooks, client_id = sandbox.hooks, sandbox.clients.get(token, "sandbox-app")
    hook_id: int | None = request.path_params.get("hook_id")  # the route's int converter
    if hook_id is not None:
        return _hook_api(hooks, request, raw, granted, client_id, hook_id)
    if request.method == "GET":
        params = request.query_params
        found = [h for h in hooks.mine(client_id)
                 if all(params.get(k) is None or str(h[k]).lower() == params[k].lower()
                        for k in ("scope", "destination", "is_active"))]
        limit = min(max(int(params.get("limit") or 50), 1), 250)
        page = max(int(params.get("page") or 1), 1)
        data = found[(page - 1) * limit:page * limit]
        return {"data": data, "meta": {"pagination": {
            "total": len(found), "count": len(data), "per_page": limit, "current_page": page,
            "total_pages": max(1, math.ceil(len(found) / limit))}}}
    body = _hook_body(raw)  # POST
    missing = {k: f"{k} is required" for k in ("scope", "destination") if k not in body}
    errors = missing or hooks.validate(body, granted)
    if errors:
        raise ApiError(422, "Invalid webhook", errors)
    refusal = hooks.limit_error(client_id, body["scope"], body["destination"])
    if refusal:
        raise ApiError(422, refusal)
    return {"data": hooks.create(client_id, body), "meta": {}}


def _hook_api(hooks: Hooks, request: Request, raw: bytes, granted: frozenset[str],
              client_id: str, hook_id: int) -> dict[str, Any]:
    """``/v3/hooks/{id}``: GET, PUT or DELETE one of the calling API account's hooks."""
    hook = hooks.hooks.get(hook_id)
    if hook is None or hook["client_id"] != client_id:
        raise ApiError(404, "Webhook not found")
    if request.method == "DELETE":
        del hooks.hooks[hook_id]
    if request.method != "PUT":
        return {"data": hook, "meta": {}}
    body = _hook_body(raw)
    merged = {**hook, **{k: v for k, v in body.items()
                         if k in ("scope", "destination", "is_active", "headers")}}
    errors = hooks.validate(merged, granted)
    if errors:
        raise ApiError(422, "Invalid webhook", errors)
    hook.update(merged, updated_at=int(time.time()))
    return {"data": hook, "meta": {}}


def _hook_body(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError:
        raise ApiError(400, "The request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(422, "The request body must be an object")
    return body


def _scripts_api(sandbox: Sandbox, request: Request, raw: bytes, granted: frozenset[str],
                 token: str) -> dict[str, Any] | None:
    """``/v3/content/scripts`` and ``/v3/content/scripts/{uuid}`` (``sandbox/scripts.py``)."""
    return sandbox.scripts.handle(request.method, request.path_params.get("uuid"),
                                  request.query_params, raw, granted,
                                  sandbox.clients.get(token, "sandbox-app"))


def _mutate(sandbox: Sandbox, body: dict[str, Any]) -> dict[str, Any]:
    """Change a store the way its merchant and shoppers would (and fire its webhooks)."""
    store, emit = sandbox.store, sandbox.hooks.emit
    resource = body.get("resource", "customers")
    collections: dict[str, Collection] = {"customers": store.customers, "orders": store.orders,
                                          "products": store.products}
    if resource not in collections:
        raise ApiError(422, "Unknown resource", {"resource": f"valid: {', '.join(collections)}"})
    items, kind = collections[resource], resource[:-1]
    rng = random.Random(body.get("seed"))
    if "ids" in body:  # these records, rather than ``update`` random ones
        updated = [int(i) for i in body["ids"]]
        missing = [str(i) for i in updated if i not in items]
        if missing:
            raise ApiError(404, "Not found", {"ids": ", ".join(missing)})
    else:
        updated = rng.sample(items.ids, min(int(body.get("update", 0)), len(items.ids)))
    versions = {}
    for record_id in updated:
        tag = f"edited {rng.randrange(10**6)}"
        edit: dict[str, Any] = {"customers": {"notes": tag}, "orders": {"staff_notes": tag},
                                "products": {"search_keywords": tag}}[resource]
        before = items.get(record_id).get("status_id") if resource == "orders" else None
        if resource == "orders":
            edit["status_id"] = rng.choice((2, 5, 10, 11))
            edit["status"] = {2: "Shipped", 5: "Cancelled", 10: "Completed",
                              11: "Awaiting Fulfillment"}[edit["status_id"]]
        versions[str(record_id)] = [items.touch(record_id, edit), tag]
        emit(f"store/{kind}/updated", {"type": kind, "id": record_id})
        if resource == "orders" and before != edit["status_id"]:
            emit("store/order/statusUpdated", {"type": "order", "id": record_id, "status": {
                "previous_status_id": before, "new_status_id": edit["status_id"]}})
    created = [items.create() for _ in range(int(body.get("create", 0)))]
    for record_id in created:
        emit(f"store/{kind}/created", {"type": kind, "id": record_id})
    pool = [i for i in items.ids if i not in set(updated) | set(created)]
    deleted = rng.sample(pool, min(int(body.get("delete", 0)), len(pool)))
    for record_id in deleted:
        items.delete(record_id)
        # BigCommerce archives a deleted order (store/order/archived).
        emit(f"store/{kind}/{'archived' if kind == 'order' else 'deleted'}",
             {"type": kind, "id": record_id})
    return {"updated": sorted(updated), "created": created, "deleted": sorted(deleted),
            "versions": versions}


def build_app(sandboxes: list[Sandbox]) -> Starlette:
    """The ASGI app serving every store of ``sandboxes`` under ``/stores/{hash}``."""
    routes = []
    for sandbox in sandboxes:
        prefix = f"/stores/{sandbox.store.store_hash}"
        for template, (scope, version, handler, *method) in ROUTES.items():
            routes.append(Route(prefix + template, _store_endpoint(
                sandbox, template.replace(":int", ""), scope, version, handler),
                methods=method or ["GET"]))
        for template, methods in (("/v3/hooks", ["GET", "POST"]),
                                  ("/v3/hooks/{hook_id:int}", ["GET", "PUT", "DELETE"])):
            routes.append(Route(prefix + template, _store_endpoint(
                sandbox, template.replace(":int", ""), "", "v3", _hooks_api,
                reads_request=True), methods=methods))
        for template, methods in (("/v3/content/scripts", ["GET", "POST"]),
                                  ("/v3/content/scripts/{uuid}", ["GET", "PUT", "DELETE"])):
            routes.append(Route(prefix + template, _store_endpoint(
                sandbox, template, "store_v2_content", "v3", _scripts_api,
                reads_request=True), methods=methods))
    by_token = {s.access_token: s for s in sandboxes}

    def owner(request: Request) -> Sandbox | None:
        token = request.headers.get("x-auth-token", "")
        return by_token.get(token) or next((s for s in sandboxes if token in s.tokens), None)

    def admin(handler: Callable[[Sandbox, dict[str, Any]], Any]
              ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            sandbox = owner(request)
            if sandbox is None:
                return json_response(v3_error(401, "Unauthorized"), 401)
            raw = await request.body() if request.method == "POST" else b""
            try:
                body = orjson.loads(raw) if raw.strip() else {}
            except orjson.JSONDecodeError:
                return json_response(v3_error(400, "The body is not JSON"), 400)
            try:
                return json_response(handler(sandbox, body if isinstance(body, dict) else {}))
            except ApiError as exc:
                return json_response(v3_error(exc.status, exc.title, exc.errors), exc.status)
        return endpoint

    def stats(sandbox: Sandbox, _: dict[str, Any]) -> dict[str, Any]:
        return sandbox.stats.as_dict()

    def reset_stats(sandbox: Sandbox, body: dict[str, Any]) -> dict[str, Any]:
        """Zero the counters and start a fresh quota window (of another plan if given)."""
        plan = body.get("plan", sandbox.store.plan)
        if plan not in PLANS:
            raise ApiError(422, "Unknown plan", {"plan": f"valid: {', '.join(PLANS)}"})
        sandbox.store.plan = plan
        sandbox.stats = RequestStats()
        sandbox.window = QuotaWindow(PLANS[plan], sandbox.window.window_ms)
        return {"ok": True, "plan": plan}

    def tokens(sandbox: Sandbox, body: dict[str, Any]) -> dict[str, Any]:
        token = secrets.token_hex(16)
        sandbox.tokens[token] = frozenset(body.get("scopes", []))
        # Another API account when client_id is given (its hooks are its own).
        sandbox.clients[token] = str(body.get("client_id") or sandbox.clients[
            sandbox.access_token])
        return {"access_token": token}

    def faults(sandbox: Sandbox, body: dict[str, Any]) -> dict[str, Any]:
        fault = {"status": int(body.get("status", 503)), "bare": bool(body.get("bare")),
                 "html": bool(body.get("html"))}
        if "body" in body:
            fault["body"] = body["body"]
        sandbox.faults.add(fault, int(body.get("count", 1)))
        return {"queued": len(sandbox.faults.queue)}

    def carts(sandbox: Sandbox, body: dict[str, Any]) -> dict[str, Any]:
        """Shoppers' carts: create, update, abandon (an hour without changes, in BigCommerce),
        convert (checkout: the cart becomes an order and is deleted) and delete."""
        store, emit = sandbox.store, sandbox.hooks.emit
        # customer_id 0 is a guest's cart; without customer_id, a random customer's.
        made = [store.create_cart(body["customer_id"] if "customer_id" in body else
                                  random.Random(n).randrange(1, len(store.customers) + 1)
                                  if len(store.customers) else None)["id"]
                for n in range(int(body.get("create", 0)))]
        for cart_id in made:
            emit("store/cart/created", {"type": "cart", "id": cart_id})
        unknown = [c for key in ("update", "abandon", "convert", "delete")
                   for c in body.get(key, []) if c not in store.carts]
        if unknown:
            raise ApiError(404, "Cart not found", {"cart_id": ", ".join(unknown)})
        for cart_id in body.get("update", []):
            cart = store.carts[cart_id]
            cart["version"] += 1
            cart["updated_time"] = g.iso(store.customers.now())
            emit("store/cart/updated", {"type": "cart", "id": cart_id})
        for cart_id in body.get("abandon", []):
            emit("store/cart/abandoned", {"type": "cart", "id": cart_id})
        orders = []
        for cart_id in body.get("convert", []):
            del store.carts[cart_id]
            order_id = store.orders.create()
            orders.append(order_id)
            emit("store/order/created", {"type": "order", "id": order_id})
            emit("store/cart/converted", {"type": "cart", "id": cart_id, "orderId": order_id})
        for cart_id in body.get("delete", []):
            del store.carts[cart_id]
            emit("store/cart/deleted", {"type": "cart", "id": cart_id})
        return {"created": made, "orders": orders, "carts": sorted(store.carts)}

    def inventory(sandbox: Sandbox, body: dict[str, Any]) -> dict[str, Any]:
        store = sandbox.store
        key = (int(body["variant_id"]), int(body.get("location_id", 1)))
        product_id = key[0] // 10
        if product_id not in store.products:
            raise ApiError(404, "Product not found", {"variant_id": str(key[0])})
        variants = {v["id"]: v for v in store.products.get(product_id)["variants"]}
        if key[0] not in variants:
            raise ApiError(404, "Variant not found", {"variant_id": str(key[0])})
        store.inventory_edits[key] = int(body["level"])
        store.products.touch(product_id, {})
        sandbox.hooks.emit("store/sku/inventory/updated", {
            "type": "sku", "id": variants[key[0]]["sku_id"],
            "inventory": {"product_id": product_id, "variant_id": key[0],
                          "method": "absolute", "value": int(body["level"])}})
        return {"ok": True}

    def hooks(sandbox: Sandbox, _: dict[str, Any]) -> dict[str, Any]:
        """Subscriptions, delivery counters, deliveries waiting, and what was delivered."""
        return {"hooks": list(sandbox.hooks.hooks.values()), "stats": dict(sandbox.hooks.stats),
                "pending": sandbox.hooks.pending(), "delivered": sandbox.hooks.log}

    def snapshot(sandbox: Sandbox, _: dict[str, Any]) -> dict[str, Any]:
        store = sandbox.store
        return {name: [[i, items.modified[i]] for i in items.ids]
                for name, items in (("customers", store.customers), ("orders", store.orders),
                                    ("products", store.products))}

    for path, handler, verb in (
            ("stats", stats, "GET"), ("stats/reset", reset_stats, "POST"),
            ("mutate", _mutate, "POST"), ("tokens", tokens, "POST"), ("hooks", hooks, "GET"),
            ("faults", faults, "POST"), ("carts", carts, "POST"),
            ("inventory", inventory, "POST"), ("snapshot", snapshot, "GET")):
        routes.append(Route(f"/_sandbox/{path}", admin(handler), methods=[verb]))
    # The first store's storefront (pages, Storefront Cart API, current.jwt) at the root.
    routes.extend(storefront_routes(sandboxes[0]))
    return Starlette(routes=routes)
