"""Shopify's GraphQL Admin API as a source meets it, served from generated shops.

``POST /{shop}/admin/api/{version}/graphql.json`` with ``X-Shopify-Access-Token`` runs the
query against Shopify's own schema of that version (``connectors/shopify/schema.py``) with
graphql-core, so a query Shopify rejects is rejected here with the same validation messages
(HTTP 200, ``errors``, no ``data``). Before it runs, the query is priced (``cost.py``): over
1,000 points it is refused (MAX_COST_EXCEEDED); when the app's bucket cannot hold it, it is
THROTTLED (HTTP 200); otherwise it is charged, executed (``resolvers.py``, ``fields.py``) and
refunded what it did not use. Every answer carries ``extensions.cost`` (an answer refused
before pricing, for a syntax or validation error, with a cost of 0).

One app per shop holds its tokens (each with its scopes) and its bucket; ``/_sandbox/tokens``
makes a token of another app (its own bucket, its own webhook subscriptions). The admin API
(``/_sandbox/...``, any token of the shop, never throttled) changes the shop and reads its
counters (see ``admin.py``).
"""

from __future__ import annotations

import functools
import time
from collections import deque
from typing import Any

import orjson
from graphql import (
    FragmentDefinitionNode,
    GraphQLError,
    execute_sync,
    get_operation_ast,
    parse,
    validate,
)
from graphql.execution.values import get_variable_values
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.shopify import schema as shopify_schema
from connectors.shopify.sandbox.bulk import BulkOperations
from connectors.shopify.sandbox.cost import MAX_QUERY_COST, Bucket, Pricer
from connectors.shopify.sandbox.data import BUCKET_SECONDS, PLANS, Shop
from connectors.shopify.sandbox.fields import SPECIAL
from connectors.shopify.sandbox.hooks import Webhooks
from connectors.shopify.sandbox.resolvers import Context, Resolver, paginate, type_resolver
from framework.devkit.sandbox import Faults, RequestStats, delay, json_response

#: The scopes a new token has: every read scope the Shopify source needs.
DEFAULT_SCOPES = frozenset({"read_customers", "read_orders", "read_all_orders",
                            "read_products", "read_inventory", "read_locations"})
INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"
RATE_DOCS = "https://shopify.dev/api/usage/rate-limits"


@functools.lru_cache(maxsize=8)
def resolver_for(version: str) -> Resolver:
    return Resolver(shopify_schema.load(version), shopify_schema.scopes(version), SPECIAL)


class ShopState:
    """One shop being served: its records, its app's tokens and bucket, webhooks, bulk."""

    def __init__(self, shop: Shop, access_token: str, client_secret: str, *,
                 retry_scale: float = 1.0, bucket_seconds: float = BUCKET_SECONDS,
                 bulk_delay_s: float = 0.2, latency_ms: int = 0) -> None:
        self.shop, self.access_token, self.client_secret = shop, access_token, client_secret
        self.tokens: dict[str, frozenset[str]] = {access_token: DEFAULT_SCOPES}
        self.token_app: dict[str, str] = {access_token: "sandbox-app"}
        self.bucket_seconds = bucket_seconds
        self.buckets: dict[str, Bucket] = {}
        self.hooks = Webhooks(shop.name, client_secret, retry_scale)
        shop.emit = self.hooks.emit
        self.bulk = BulkOperations(delay_s=bulk_delay_s)
        self.latency_ms = latency_ms
        self.stats = RequestStats()
        self.points = 0  # actual cost charged, in all
        self.log: deque[dict[str, Any]] = deque(maxlen=1000)
        self.faults = Faults()

    def bucket(self, token: str) -> Bucket:
        app = self.token_app.get(token, "sandbox-app")
        if app not in self.buckets:
            rate = PLANS[self.shop.plan]
            self.buckets[app] = Bucket(rate, rate * self.bucket_seconds)
        return self.buckets[app]

    # --- what fields.py asks the app ------------------------------------------------------

    def resolver(self, version: str) -> Resolver:
        return resolver_for(version)

    def node(self, record_id: str, client: str) -> dict[str, Any] | None:
        found = self.hooks.subscriptions.get(record_id)
        mine = found if found is not None and found["_client"] == client else None
        return self.bulk.operations.get(record_id) or mine

    def current_bulk(self, ctx: Context, info: Any, type: str = "QUERY", **_: Any) -> Any:
        return self.bulk.current(type)

    def bulk_by_id(self, ctx: Context, info: Any, id: str, **_: Any) -> Any:
        return self.bulk.operations.get(id)

    def bulk_list(self, ctx: Context, info: Any, **args: Any) -> dict[str, Any]:
        """``bulkOperations`` (2026-01 on), e.g. ``query: "status:RUNNING"``."""
        return paginate(ctx, list(self.bulk.operations.values()), args,
                        info.return_type.of_type)

    def run_bulk(self, ctx: Context, info: Any, query: str, groupObjects: bool | None = None
                 , **_: Any) -> dict[str, Any]:
        return self.bulk.run(ctx, info, query)

    def cancel_bulk(self, ctx: Context, info: Any, id: str, **_: Any) -> dict[str, Any]:
        return self.bulk.cancel(id)

    def bulk_finished(self, operation: dict[str, Any]) -> None:
        self.hooks.emit("bulk_operations/finish", {
            "id": operation["id"], "status": operation["status"].lower(),
            "errorCode": operation["errorCode"], "createdAt": operation["createdAt"],
            "completedAt": operation["completedAt"], "type": operation["type"].lower()})

    def subscriptions(self, ctx: Context, info: Any, **args: Any) -> dict[str, Any]:
        found = [s for s in self.hooks.mine(ctx.client)
                 if (not args.get("topics") or s["topic"] in args["topics"])
                 and (not (args.get("uri") or args.get("callbackUrl"))
                      or s["uri"] == (args.get("uri") or args.get("callbackUrl")))]
        return paginate(ctx, found, args, info.return_type.of_type)

    def subscription(self, ctx: Context, info: Any, id: str, **_: Any) -> Any:
        return self.node(id, ctx.client) if "WebhookSubscription" in id else None

    def create_subscription(self, ctx: Context, info: Any, topic: str,
                            webhookSubscription: dict[str, Any], **_: Any) -> dict[str, Any]:
        given = webhookSubscription
        created, errors = self.hooks.create(ctx.client, topic,
                                            given.get("uri") or given.get("callbackUrl"),
                                            ctx.version, given.get("includeFields") or [])
        return {"webhookSubscription": created, "userErrors": errors}

    def delete_subscription(self, ctx: Context, info: Any, id: str, **_: Any) -> dict[str, Any]:
        deleted, errors = self.hooks.delete(ctx.client, id)
        return {"deletedWebhookSubscriptionId": deleted, "userErrors": errors}


def _cost(requested: int, actual: int | None, bucket: Bucket) -> dict[str, Any]:
    return {"cost": {"requestedQueryCost": requested, "actualQueryCost": actual,
                     "throttleStatus": bucket.status()}}


def _errors(errors: list[GraphQLError], bucket: Bucket) -> dict[str, Any]:
    return {"errors": [e.formatted for e in errors], "extensions": _cost(0, 0, bucket)}


def run_query(state: ShopState, token: str, version: str, payload: dict[str, Any],
              base_url: str) -> dict[str, Any]:
    """One GraphQL request: validate, price, charge, execute, refund."""
    schema = shopify_schema.load(version)
    bucket = state.bucket(token)
    try:
        document = parse(payload["query"])
    except GraphQLError as exc:
        return _errors([exc], bucket)
    errors = validate(schema, document)
    if errors:
        return _errors(errors, bucket)
    operation = get_operation_ast(document, payload.get("operationName"))
    if operation is None:
        return _errors([GraphQLError("An operation name is required when the document holds "
                                     "several operations")], bucket)
    coerced = get_variable_values(schema, operation.variable_definitions or (),
                                  payload.get("variables") or {})
    if isinstance(coerced, list):
        return _errors(coerced, bucket)
    fragments = {d.name.value: d for d in document.definitions
                 if isinstance(d, FragmentDefinitionNode)}
    pricer = Pricer(schema, fragments, coerced)
    requested = pricer.operation(operation)
    if requested > MAX_QUERY_COST:
        return {"errors": [{
            "message": f"Query cost is {requested}, which exceeds the single query max cost "
                       f"limit ({MAX_QUERY_COST}). To query larger amounts of data with fewer "
                       "limits, bulk operations should be used instead.",
            "extensions": {"code": "MAX_COST_EXCEEDED", "cost": requested,
                           "maxCost": MAX_QUERY_COST, "documentation": RATE_DOCS}}],
            "extensions": _cost(requested, None, bucket)}
    if not bucket.take(requested):
        state.stats.throttled += 1
        return {"errors": [{"message": "Throttled", "extensions": {
            "code": "THROTTLED", "documentation": RATE_DOCS}}],
            "extensions": _cost(requested, None, bucket)}
    ctx = Context(state.shop, state.tokens[token], version, app=state, base_url=base_url,
                  scope_data=shopify_schema.scopes(version),
                  client=state.token_app.get(token, "sandbox-app"))
    result = execute_sync(schema, document, context_value=ctx, variable_values=payload.get(
        "variables") or {}, operation_name=payload.get("operationName"),
        field_resolver=resolver_for(version), type_resolver=type_resolver)
    actual = min(requested, pricer.operation(operation, result.data or {}))
    bucket.refund(requested - actual)
    state.points += actual
    answer: dict[str, Any] = {"data": result.data}
    if result.errors:
        answer["errors"] = [e.formatted for e in result.errors]
    answer["extensions"] = _cost(requested, actual, bucket)
    return answer


def _payload(request: Request, raw: bytes) -> dict[str, Any] | None:
    if request.headers.get("content-type", "").startswith("application/graphql"):
        return {"query": raw.decode("utf-8", "replace")}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        return None
    return body


def graphql_endpoint(shops: dict[str, ShopState]) -> Any:
    async def endpoint(request: Request) -> Response:
        # The shop's name, with or without its .myshopify.com domain.
        state = shops.get(request.path_params["shop"].removesuffix(".myshopify.com"))
        version = request.path_params["version"]
        if state is None or (version not in shopify_schema.VERSIONS and version != "unstable"):
            return json_response({"errors": "Not Found"}, 404)
        token = request.headers.get("x-shopify-access-token", "")
        if token not in state.tokens:
            state.stats.count("graphql", 401)
            return json_response({"errors": INVALID_TOKEN}, 401)
        await delay(state.latency_ms)
        fault = state.faults.next()
        if fault is not None:
            status = int(fault.get("status", 503))
            state.stats.count("graphql", status)
            return json_response(fault.get("body", {"errors": "Service Unavailable"}), status)
        payload = _payload(request, await request.body())
        if payload is None:
            state.stats.count("graphql", 400)
            return json_response({"errors": {"query": "Required parameter missing or invalid"}},
                                 400)
        started = time.perf_counter()
        answer = run_query(state, token, version, payload, str(request.base_url).rstrip("/"))
        state.stats.count("graphql", 200)
        cost = answer["extensions"]["cost"]
        state.log.append({"at": time.time(), "version": version,
                          "ms": round((time.perf_counter() - started) * 1000, 1),
                          "requested": cost["requestedQueryCost"],
                          "actual": cost["actualQueryCost"],
                          "codes": [e.get("extensions", {}).get("code")
                                    for e in answer.get("errors", [])]})
        return json_response(answer, 200, {"X-Shopify-API-Version": version})
    return endpoint


def build_app(states: list[ShopState]) -> Starlette:
    from connectors.shopify.sandbox.admin import admin_routes

    shops = {s.shop.name: s for s in states}
    routes = [Route("/{shop}/admin/api/{version}/graphql.json", graphql_endpoint(shops),
                    methods=["POST"]), *admin_routes(states)]
    return Starlette(routes=routes)
