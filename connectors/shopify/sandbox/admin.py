"""The sandbox's admin API (``/_sandbox/...``): change a shop as its merchant and shoppers
would, and read what the sandbox saw. Authenticated by any access token of the shop
(``X-Shopify-Access-Token``), never throttled. Changes fire the webhooks Shopify would fire.

Errors are ``{"errors": "one line"}`` with 4xx, like Shopify's REST errors.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from connectors.shopify.sandbox.app import DEFAULT_SCOPES, ShopState
from connectors.shopify.sandbox.data import PLANS
from connectors.shopify.sandbox.hooks import PRIVACY_TOPICS
from connectors.shopify.schema import DEFAULT_VERSION
from framework.devkit.sandbox import RequestStats, json_response

#: What ``mutate`` changes (variants: update only; a product is created with its variants).
RESOURCES = {"customers": "Customer", "orders": "Order", "products": "Product",
             "checkouts": "AbandonedCheckout", "variants": "ProductVariant"}


class AdminError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _kind(body: dict[str, Any]) -> str:
    resource = body.get("resource", "customers")
    if resource not in RESOURCES:
        raise AdminError(422, f"unknown resource {resource!r}; valid: {', '.join(RESOURCES)}")
    return RESOURCES[resource]


def _random_edit(kind: str, rng: random.Random) -> dict[str, Any]:
    tag = f"edited {rng.randrange(10**6)}"
    return {"Customer": {"note": tag}, "Order": {"note": tag},
            "Product": {"description": tag}, "AbandonedCheckout": {"note": tag},
            "ProductVariant": {"price": f"{rng.randrange(100, 10000) / 100:.2f}"}}[kind]


def mutate(state: ShopState, body: dict[str, Any]) -> dict[str, Any]:
    """``{resource, create: n, update: n | ids: [...], set: {...}, delete: n | [ids], seed}``:
    records created, edited (``set`` fields, else a random note) and deleted."""
    shop, kind = state.shop, _kind(body)
    if kind == "ProductVariant" and (body.get("create") or body.get("delete")):
        raise AdminError(422, "variants are created and deleted with their product; "
                              "variants can only be updated")
    rng = random.Random(body.get("seed"))
    known = [int(r["legacyResourceId"]) for r in shop.records[kind].values()]
    if "ids" in body:
        updated = [int(i) for i in body["ids"]]
        missing = sorted(set(updated) - set(known))
        if missing:
            raise AdminError(404, f"no {kind} with id {', '.join(map(str, missing))}")
    else:
        updated = rng.sample(known, min(int(body.get("update", 0)), len(known)))
    for number in updated:
        shop.update(kind, number, body.get("set") or _random_edit(kind, rng))
    try:
        created = [int(shop.create(kind, dict(body.get("fields") or {}), rng)[
            "legacyResourceId"]) for _ in range(int(body.get("create", 0)))]
    except KeyError as exc:
        raise AdminError(422, str(exc.args[0])) from None
    doomed = body.get("delete", 0)
    if isinstance(doomed, list):
        deleted = [int(i) for i in doomed]
    else:
        pool = sorted(set(known) - set(updated))
        deleted = rng.sample(pool, min(int(doomed), len(pool)))
    for number in deleted:
        try:
            shop.delete(kind, number)
        except KeyError as exc:
            raise AdminError(404, str(exc.args[0])) from None
    return {"updated": sorted(updated), "created": created, "deleted": sorted(deleted)}


def _one(action: Callable[[], Any]) -> Any:
    """``action``'s answer; a record it does not find is a 404."""
    try:
        return action()
    except KeyError as exc:
        raise AdminError(404, str(exc.args[0])) from None


def refund(state: ShopState, body: dict[str, Any]) -> dict[str, Any]:
    """``{id, amount?}``: refund the order (all that is left when no amount is given)."""
    amount = float(body["amount"]) if body.get("amount") is not None else None
    made = _one(lambda: state.shop.refund(body["id"], amount))
    return {"refund": made["id"], "amount": made["totalRefundedSet"]["shopMoney"]["amount"]}


def cancel(state: ShopState, body: dict[str, Any]) -> dict[str, Any]:
    order = _one(lambda: state.shop.cancel(body["id"]))
    return {"order": order["id"], "cancelledAt": order["cancelledAt"]}


def stock(state: ShopState, body: dict[str, Any]) -> dict[str, Any]:
    """``{variant_id, location_id (default 1), available}``."""
    level = _one(lambda: state.shop.set_stock(
        body["variant_id"], int(body.get("location_id", 1)), int(body["available"])))
    return {"inventoryLevel": level["id"], "updatedAt": level["updatedAt"]}


def checkouts(state: ShopState, body: dict[str, Any]) -> dict[str, Any]:
    """``{create: n, customer?, complete: [ids]}``: shoppers leaving or finishing checkouts."""
    rng = random.Random(body.get("seed"))
    fields = {"customer": body["customer"]} if body.get("customer") else {}
    made = [int(_one(lambda: state.shop.create(
        "AbandonedCheckout", dict(fields), rng))["legacyResourceId"])
        for _ in range(int(body.get("create", 0)))]
    for number in body.get("complete", []):
        _one(partial(state.shop.complete_checkout, number))
    return {"created": made, "completed": body.get("complete", [])}


def privacy(state: ShopState, body: dict[str, Any]) -> dict[str, Any]:
    """``{topic, customer_id?}``: Shopify's mandatory privacy webhooks, as Shopify sends them
    to the app's compliance URL."""
    topic, shop = body.get("topic"), state.shop
    if topic not in PRIVACY_TOPICS:
        raise AdminError(422, f"unknown topic {topic!r}; valid: {', '.join(PRIVACY_TOPICS)}")
    if body.get("uri"):
        state.hooks.compliance_uri = body["uri"]
    payload: dict[str, Any] = {"shop_id": int(shop.shop_record["id"].rsplit("/", 1)[1]),
                               "shop_domain": f"{shop.name}.myshopify.com"}
    if topic != "shop/redact":
        customer = _one(lambda: shop.get("Customer", body["customer_id"]))
        orders = [int(o.rsplit("/", 1)[1]) for o in shop.orders_of.get(customer["id"], [])]
        payload["customer"] = {"id": int(customer["legacyResourceId"]),
                               "email": customer["email"], "phone": customer["phone"]}
        if topic == "customers/redact":
            payload["orders_to_redact"] = orders
        else:
            payload["orders_requested"] = orders
            payload["data_request"] = {"id": secrets.randbelow(10**6)}
    sent = state.hooks.privacy(topic, payload, DEFAULT_VERSION)
    if not sent:
        raise AdminError(422, "no compliance URL: give uri, or set it with /_sandbox/compliance")
    return {"queued": sent, "payload": payload}


def compliance(state: ShopState, body: dict[str, Any]) -> dict[str, Any]:
    state.hooks.compliance_uri = body.get("uri")
    return {"uri": state.hooks.compliance_uri}


def scopes(state: ShopState, body: dict[str, Any], token: str) -> dict[str, Any]:
    """``{scopes: [...], token?}``: the scopes of a token (the caller's by default)."""
    target = body.get("token", token)
    if target not in state.tokens:
        raise AdminError(404, "no such token in this shop")
    state.tokens[target] = frozenset(body.get("scopes", DEFAULT_SCOPES))
    return {"token_scopes": sorted(state.tokens[target])}


def tokens(state: ShopState, body: dict[str, Any], _: str) -> dict[str, Any]:
    """``{scopes?, app?}``: a new token (of another app, with its own bucket, if ``app``)."""
    token = f"shpat_{secrets.token_hex(16)}"
    state.tokens[token] = frozenset(body.get("scopes", DEFAULT_SCOPES))
    state.token_app[token] = str(body.get("app") or "sandbox-app")
    return {"access_token": token}


def plan(state: ShopState, body: dict[str, Any]) -> dict[str, Any]:
    """``{plan?, bucket_seconds?}``: change the plan, zero the counters, fill the buckets."""
    name = body.get("plan", state.shop.plan)
    if name not in PLANS:
        raise AdminError(422, f"unknown plan {name!r}; valid: {', '.join(PLANS)}")
    state.shop.set_plan(name)
    state.bucket_seconds = float(body.get("bucket_seconds", state.bucket_seconds))
    state.buckets.clear()
    state.stats, state.points = RequestStats(), 0
    state.log.clear()
    return {"plan": name, "restore_rate": PLANS[name],
            "bucket": PLANS[name] * state.bucket_seconds}


def stats(state: ShopState, _: dict[str, Any]) -> dict[str, Any]:
    return {**state.stats.as_dict(), "points": state.points, "plan": state.shop.plan,
            "buckets": {app: b.status() for app, b in state.buckets.items()}}


def log(state: ShopState, _: dict[str, Any]) -> dict[str, Any]:
    return {"requests": list(state.log)}


def hooks(state: ShopState, _: dict[str, Any]) -> dict[str, Any]:
    return {"subscriptions": list(state.hooks.subscriptions.values()),
            "stats": dict(state.hooks.stats), "pending": state.hooks.pending(),
            "delivered": state.hooks.log, "compliance_uri": state.hooks.compliance_uri}


def faults(state: ShopState, body: dict[str, Any]) -> dict[str, Any]:
    fault = {"status": int(body.get("status", 503))}
    if "body" in body:
        fault["body"] = body["body"]
    state.faults.add(fault, int(body.get("count", 1)))
    return {"queued": len(state.faults.queue)}


def snapshot(state: ShopState, _: dict[str, Any]) -> dict[str, Any]:
    return {resource: [[int(r["legacyResourceId"]), r["updatedAt"]]
                       for r in state.shop.records[kind].values()]
            for resource, kind in RESOURCES.items()}


def admin_routes(states: list[ShopState]) -> list[Route]:
    by_token = {}
    for state in states:
        by_token.update(dict.fromkeys(state.tokens, state))

    def owner(token: str) -> ShopState | None:
        return by_token.get(token) or next((s for s in states if token in s.tokens), None)

    def endpoint(handler: Callable[..., Any], with_token: bool
                 ) -> Callable[[Request], Awaitable[Response]]:
        async def serve(request: Request) -> Response:
            token = request.headers.get("x-shopify-access-token", "")
            state = owner(token)
            if state is None:
                return json_response({"errors": "give a token of the shop in "
                                                "X-Shopify-Access-Token"}, 401)
            raw = await request.body()
            try:
                body = orjson.loads(raw) if raw.strip() else {}
            except orjson.JSONDecodeError:
                return json_response({"errors": "the body is not JSON"}, 400)
            if not isinstance(body, dict):
                return json_response({"errors": "the body must be a JSON object"}, 400)
            try:
                answer = handler(state, body, token) if with_token else handler(state, body)
            except AdminError as exc:
                return json_response({"errors": exc.message}, exc.status)
            except (KeyError, ValueError, TypeError) as exc:
                return json_response({"errors": f"bad request: {exc}"}, 422)
            by_token.update(dict.fromkeys(state.tokens, state))
            return json_response(answer)
        return serve

    async def bulk_file(request: Request) -> Response:
        """A bulk result (its ``url``: like Shopify's signed URL, no token needed)."""
        shop, name = request.path_params["shop"], request.path_params["name"]
        for state in states:
            chunks = state.bulk.read(f"{shop}/{name}")
            if chunks is not None:
                return StreamingResponse(chunks, media_type="application/jsonl")
        return json_response({"errors": "Not Found"}, 404)

    table: list[tuple[str, Callable[..., Any], str, bool]] = [
        ("stats", stats, "GET", False), ("log", log, "GET", False),
        ("plan", plan, "POST", False), ("stats/reset", plan, "POST", False),
        ("scopes", scopes, "POST", True), ("tokens", tokens, "POST", True),
        ("mutate", mutate, "POST", False), ("orders/refund", refund, "POST", False),
        ("orders/cancel", cancel, "POST", False), ("inventory", stock, "POST", False),
        ("checkouts", checkouts, "POST", False), ("privacy", privacy, "POST", False),
        ("compliance", compliance, "POST", False), ("hooks", hooks, "GET", False),
        ("faults", faults, "POST", False), ("snapshot", snapshot, "GET", False)]
    routes = [Route(f"/_sandbox/{path}", endpoint(handler, with_token), methods=[verb])
              for path, handler, verb, with_token in table]
    routes.append(Route("/_sandbox/bulk/{shop}/{name}", bulk_file, methods=["GET"]))
    return routes
