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
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.bigcommerce.sandbox.data import Collection, Store
from connectors.bigcommerce.sandbox.routes import ROUTES, STATUS_DOCS, ApiError
from framework.sandbox import Faults, QuotaWindow, RequestStats, delay, json_response

PLANS: dict[str, int | None] = {"standard": 150, "plus": 150, "pro": 450, "enterprise": None}
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

    def __init__(self, store: Store, access_token: str, window_ms: int, latency_ms: int) -> None:
        self.store = store
        self.access_token = access_token
        self.tokens: dict[str, frozenset[str]] = {access_token: ALL_SCOPES}
        self.window = QuotaWindow(PLANS[store.plan], window_ms)
        self.latency_ms = latency_ms
        self.stats = RequestStats()
        self.faults = Faults()


def _has_scope(granted: frozenset[str], scope: str) -> bool:
    return scope in granted or f"{scope}_read_only" in granted


def _store_endpoint(sandbox: Sandbox, template: str, scope: str, version: str,
                    handler: Callable[..., Any]) -> Callable[[Request], Awaitable[Response]]:
    def error(status: int, title: str, errors: dict[str, str] | None = None,
              headers: dict[str, str] | None = None) -> Response:
        body = v3_error(status, title, errors) if version == "v3" else v2_error(status, title)
        sandbox.stats.count(template, status)
        return json_response(body, status, headers)

    async def endpoint(request: Request) -> Response:
        await delay(sandbox.latency_ms)
        granted = sandbox.tokens.get(request.headers.get("x-auth-token", ""))
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
        if not _has_scope(granted, scope):
            return error(403, "You don't have a required scope to access the endpoint",
                         headers=headers)
        fault = sandbox.faults.next()
        if fault is not None:
            status = int(fault.get("status", 503))
            if fault.get("html"):
                sandbox.stats.count(template, status)
                return Response("<html><body><h1>502 Bad Gateway</h1></body></html>", status,
                                media_type="text/html")
            return error(status, {429: "Too many requests", 503: "Service Unavailable"}.get(
                status, "Internal error"), headers=None if fault.get("bare") else headers)
        try:
            body = handler(sandbox.store, request.query_params, request.path_params)
        except ApiError as exc:
            return error(exc.status, exc.title, exc.errors, headers)
        status = 200 if body is not None else 204
        sandbox.stats.count(template, status)
        if body is None:
            return Response(status_code=204, headers=headers)
        return json_response(body, 200, headers)

    return endpoint


def _mutate(store: Store, body: dict[str, Any]) -> dict[str, Any]:
    """Change a store the way its merchant and shoppers would."""
    resource = body.get("resource", "customers")
    collections: dict[str, Collection] = {"customers": store.customers, "orders": store.orders,
                                          "products": store.products}
    if resource not in collections:
        raise ApiError(422, "Unknown resource", {"resource": f"valid: {', '.join(collections)}"})
    items = collections[resource]
    rng = random.Random(body.get("seed"))
    updated = rng.sample(items.ids, min(int(body.get("update", 0)), len(items.ids)))
    versions = {}
    for record_id in updated:
        tag = f"edited {rng.randrange(10**6)}"
        edit = {"customers": {"notes": tag}, "orders": {"staff_notes": tag},
                "products": {"search_keywords": tag}}[resource]
        if resource == "orders":
            edit["status_id"] = rng.choice((2, 5, 10, 11))
            edit["status"] = {2: "Shipped", 5: "Cancelled", 10: "Completed",
                              11: "Awaiting Fulfillment"}[edit["status_id"]]
        versions[str(record_id)] = [items.touch(record_id, edit), tag]
    created = [items.create() for _ in range(int(body.get("create", 0)))]
    pool = [i for i in items.ids if i not in set(updated) | set(created)]
    deleted = rng.sample(pool, min(int(body.get("delete", 0)), len(pool)))
    for record_id in deleted:
        items.delete(record_id)
    return {"updated": sorted(updated), "created": created, "deleted": sorted(deleted),
            "versions": versions}


def build_app(sandboxes: list[Sandbox]) -> Starlette:
    """The ASGI app serving every store of ``sandboxes`` under ``/stores/{hash}``."""
    routes = []
    for sandbox in sandboxes:
        prefix = f"/stores/{sandbox.store.store_hash}"
        for template, (scope, version, handler) in ROUTES.items():
            routes.append(Route(prefix + template, _store_endpoint(
                sandbox, template.replace(":int", ""), scope, version, handler),
                methods=["GET"]))
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
        return {"access_token": token}

    def faults(sandbox: Sandbox, body: dict[str, Any]) -> dict[str, Any]:
        fault = {"status": int(body.get("status", 503)), "bare": bool(body.get("bare")),
                 "html": bool(body.get("html"))}
        sandbox.faults.add(fault, int(body.get("count", 1)))
        return {"queued": len(sandbox.faults.queue)}

    def carts(sandbox: Sandbox, body: dict[str, Any]) -> dict[str, Any]:
        store = sandbox.store
        # customer_id 0 is a guest's cart; without customer_id, a random customer's.
        made = [store.create_cart(body["customer_id"] if "customer_id" in body else
                                  random.Random(n).randrange(1, len(store.customers) + 1)
                                  if len(store.customers) else None)["id"]
                for n in range(int(body.get("create", 0)))]
        for cart_id in body.get("delete", []):
            store.carts.pop(cart_id, None)
        return {"created": made, "carts": sorted(store.carts)}

    def inventory(sandbox: Sandbox, body: dict[str, Any]) -> dict[str, Any]:
        key = (int(body["variant_id"]), int(body.get("location_id", 1)))
        sandbox.store.inventory_edits[key] = int(body["level"])
        product_id = key[0] // 10
        if product_id in sandbox.store.products:
            sandbox.store.products.touch(product_id, {})
        return {"ok": True}

    def snapshot(sandbox: Sandbox, _: dict[str, Any]) -> dict[str, Any]:
        store = sandbox.store
        return {name: [[i, items.modified[i]] for i in items.ids]
                for name, items in (("customers", store.customers), ("orders", store.orders),
                                    ("products", store.products))}

    for path, handler, method in (
            ("stats", stats, "GET"), ("stats/reset", reset_stats, "POST"),
            ("mutate", lambda s, b: _mutate(s.store, b), "POST"), ("tokens", tokens, "POST"),
            ("faults", faults, "POST"), ("carts", carts, "POST"),
            ("inventory", inventory, "POST"), ("snapshot", snapshot, "GET")):
        routes.append(Route(f"/_sandbox/{path}", admin(handler), methods=[method]))
    return Starlette(routes=routes)
