"""The Brevo API v3 as the destination meets it, served from an in-memory account.

Faithful where a client can tell: ``api-key`` auth and Brevo's 401 bodies, ``{code, message}``
error bodies, per-endpoint rate limits with the ``x-sib-ratelimit-*`` headers and 429s, contact
imports as asynchronous processes (queued, in_process, completed), the 150-contact list calls,
100-item catalog batches, event and order validation. ``--window-ms`` scales every window: the
per-second limits use it as their second, the per-hour ones 3,600 of them.

``/_sandbox/...`` (same key, not rate limited): ``GET state`` (everything held, and request
counts), ``POST stats/reset``, ``POST blacklist`` (a contact unsubscribes in Brevo).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.brevo.sandbox.store import (
    ATTRIBUTE_CATEGORIES,
    ATTRIBUTE_TYPES,
    MAX_EVENTS_BATCH,
    Account,
    BrevoError,
)
from framework.sandbox import QuotaWindow, RequestStats, delay, json_response

# Limits of Brevo's general tier (developers.brevo.com/docs/api-limits; the "everything else"
# bucket from a third-party transcription): (requests, window in seconds).
LIMITS: dict[str, tuple[int, int]] = {
    "contacts": (10, 1), "events": (10, 1), "orders": (5, 1), "products": (2, 1),
    "other": (100, 3600),
}


class BrevoSandbox:
    """The account, its key, per-endpoint windows, counters, and how long imports take."""

    def __init__(self, api_key: str, window_ms: int, latency_ms: int,
                 import_delay_ms: int) -> None:
        self.account = Account()
        self.api_key = api_key
        self.window_ms = window_ms
        self.latency_ms = latency_ms
        self.import_delay_s = import_delay_ms / 1000
        self.stats = RequestStats()
        self.windows = {name: QuotaWindow(limit, seconds * window_ms)
                        for name, (limit, seconds) in LIMITS.items()}


def _error(exc: BrevoError, headers: dict[str, str] | None = None) -> Response:
    return json_response(exc.body(), exc.status, headers)


def _endpoint(sandbox: BrevoSandbox, template: str, bucket: str,
              handler: Callable[[BrevoSandbox, Request, Any], Any]
              ) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        await delay(sandbox.latency_ms)
        headers = {"sib-request-id": str(uuid.uuid4())}
        key = request.headers.get("api-key")
        if not key:
            sandbox.stats.count(template, 401)
            return json_response({"message": "authentication not found in headers",
                                  "code": "unauthorized"}, 401, headers)
        if key != sandbox.api_key:
            sandbox.stats.count(template, 401)
            return json_response({"message": "Key not found", "code": "unauthorized"}, 401,
                                 headers)
        window = sandbox.windows[bucket]
        allowed, left, reset_ms = window.take()
        headers.update({"x-sib-ratelimit-limit": str(window.quota),
                        "x-sib-ratelimit-remaining": str(left),
                        "x-sib-ratelimit-reset": str(math.ceil(reset_ms / 1000))})
        if not allowed:
            sandbox.stats.count(template, 429)
            # Brevo documents no 429 body; its error model's shape is kept.
            return json_response({"code": "too_many_requests", "message": "Too Many Requests"},
                                 429, headers)
        raw = await request.body()
        body: Any = None
        if raw:
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                sandbox.stats.count(template, 400)
                return _error(BrevoError(400, "bad_request", "Invalid JSON in the body"),
                              headers)
        try:
            status, payload = handler(sandbox, request, body if body is not None else {})
        except BrevoError as exc:
            sandbox.stats.count(template, exc.status)
            return _error(exc, headers)
        sandbox.stats.count(template, status)
        if payload is None:
            return Response(status_code=status, headers=headers)
        return json_response(payload, status, headers)

    return endpoint


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BrevoError(400, "bad_request", "The body must be a JSON object")
    return body


def create_contact(s: BrevoSandbox, r: Request, body: Any) -> tuple[int, Any]:
    return s.account.create_contact(_object(body))


def get_contact(s: BrevoSandbox, r: Request, body: Any) -> tuple[int, Any]:
    contact = s.account.find(r.path_params["identifier"])
    if contact is None:
        raise BrevoError(404, "document_not_found", "Contact does not exist")
    return 200, contact.as_api()


def update_contact(s: BrevoSandbox, r: Request, body: Any) -> tuple[int, Any]:
    s.account.update_contact(r.path_params["identifier"], _object(body))
    return 204, None


def import_contacts(s: BrevoSandbox, r: Request, body: Any) -> tuple[int, Any]:
    return 202, s.account.start_import(_object(body), len(orjson.dumps(body)))


def get_process(s: BrevoSandbox, r: Request, body: Any) -> tuple[int, Any]:
    process = s.account.processes.get(r.path_params["process_id"])
    if process is None:
        raise BrevoError(404, "invalid_parameter", "processId is invalid")
    s.account.advance(process, s.import_delay_s)
    return 200, {"id": process.id, "status": process.status, "name": process.name}


def get_attributes(s: BrevoSandbox, r: Request, body: Any) -> tuple[int, Any]:
    return 200, {"attributes": list(s.account.attributes.values())}


def create_attribute(s: BrevoSandbox, r: Request, body: Any) -> tuple[int, Any]:
    category, name = r.path_params["category"], r.path_params["name"].upper()
    kind = _object(body).get("type", "text")
    if category not in ATTRIBUTE_CATEGORIES:
        raise BrevoError(400, "invalid_parameter", "Invalid attribute category")
    if kind not in ATTRIBUTE_TYPES:
        raise BrevoError(400, "invalid_parameter", "Invalid attribute type")
    if name in s.account.attributes:
        # Brevo's wording for an existing attribute is not documented.
        raise BrevoError(400, "invalid_parameter", "Attribute name must be unique")
    s.account.attributes[name] = {"name": name, "category": category, "type": kind}
    return 201, None


def get_lists(s: BrevoSandbox, r: Request, body: Any) -> tuple[int, Any]:
    lists = list(s.account.lists.values())
    return 200, {"lists": lists, "count": len(lists)}


def _window(r: Request, default: int, most: int) -> tuple[int, int]:
    try:
        limit = int(r.query_params.get("limit", default))
        offset = int(r.query_params.get("offset", 0))
    except ValueError:
        raise BrevoError(400, "invalid_parameter", "limit and offset must be integers") from None
    if not 0 <= limit <= most or offset < 0:
        raise BrevoError(400, "out_of_range", f"limit must be between 0 and {most}")
    return limit, offset


def get_contacts(s: BrevoSandbox, r: Request, body: Any) -> tuple[int, Any]:
    """``GET /v3/contacts``: a page of contacts and the total ``count`` (limit up to 1000)."""
    limit, offset = _window(r, 50, 1000)
    contacts = list(s.account.contacts.values())
    return 200, {"contacts": [c.as_api() for c in contacts[offset:offset + limit]],
                 "count": len(contacts)}


def get_list(s: BrevoSandbox, r: Request, body: Any) -> tuple[int, Any]:
    """``GET /v3/contacts/lists/{id}``: the list with its subscriber counts."""
    list_id = r.path_params["list_id"]
    if list_id not in s.account.lists:
        raise BrevoError(404, "document_not_found", "List ID does not exist")
    members = [c for c in s.account.contacts.values() if list_id in c.as_api()["listIds"]]
    blacklisted = sum(1 for c in members if c.as_api()["emailBlacklisted"])
    return 200, {**s.account.lists[list_id], "totalSubscribers": len(members),
                 "uniqueSubscribers": len(members), "totalBlacklisted": blacklisted}


def get_products(s: BrevoSandbox, r: Request, body: Any) -> tuple[int, Any]:
    """``GET /v3/products``: a page of products and the total ``count`` (limit up to 1000)."""
    limit, offset = _window(r, 50, 1000)
    products = list(s.account.products.values())
    return 200, {"products": products[offset:offset + limit], "count": len(products)}


def create_list(s: BrevoSandbox, r: Request, body: Any) -> tuple[int, Any]:
    body = _object(body)
    if not body.get("name") or body.get("folderId") is None:
        raise BrevoError(400, "missing_parameter", "name and folderId are required")
    if body["folderId"] not in s.account.folders:
        raise BrevoError(404, "document_not_found", "Folder ID not found")
    list_id = max([*s.account.lists, s.account.next_list - 1]) + 1
    s.account.lists[list_id] = {"id": list_id, "name": body["name"],
                                "folderId": body["folderId"]}
    return 201, {"id": list_id}


def get_folders(s: BrevoSandbox, r: Request, body: Any) -> tuple[int, Any]:
    folders = [{"id": i, "name": n} for i, n in s.account.folders.items()]
    return 200, {"folders": folders, "count": len(folders)}


def create_folder(s: BrevoSandbox, r: Request, body: Any) -> tuple[int, Any]:
    name = _object(body).get("name")
    if not name:
        raise BrevoError(400, "missing_parameter", "name is required")
    folder_id = max(s.account.folders) + 1
    s.account.folders[folder_id] = name
    return 201, {"id": folder_id}


def add_to_list(s: BrevoSandbox, r: Request, body: Any) -> tuple[int, Any]:
    return 201, s.account.list_members(r.path_params["list_id"], _object(body), add=True)


def remove_from_list(s: BrevoSandbox, r: Request, body: Any) -> tuple[int, Any]:
    return 201, s.account.list_members(r.path_params["list_id"], _object(body), add=False)


def create_event(s: BrevoSandbox, r: Request, body: Any) -> tuple[int, Any]:
    s.account.events.append(s.account.check_event(body))
    return 204, None


def create_events(s: BrevoSandbox, r: Request, body: Any) -> tuple[int, Any]:
    events = _object(body).get("events")
    if not isinstance(events, list) or not events:
        raise BrevoError(400, "missing_parameter", "events is required")
    if len(events) > MAX_EVENTS_BATCH:
        raise BrevoError(400, "out_of_range", f"At most {MAX_EVENTS_BATCH} events per batch")
    failed = []
    for index, event in enumerate(events):
        try:
            s.account.events.append(s.account.check_event(event))
        except BrevoError as exc:
            failed.append({"index": index, "code": exc.code, "message": exc.message})
    if failed:  # Brevo answers 207 with a breakdown; its exact schema is not documented
        return 207, {"successCount": len(events) - len(failed), "failed": failed}
    return 202, {"message": "all events have been added to the processing queue",
                 "count": len(events)}


def get_events(s: BrevoSandbox, r: Request, body: Any) -> tuple[int, Any]:
    """``GET /v3/events``: filters event_name, contact_id, startDate/endDate (event dates,
    inclusive days), limit (at most 10,000) and offset. The answer's shape is not in the
    OpenAPI file we have (only the query is documented); ``{"events": [...], "count"}``
    follows Brevo's other list endpoints."""
    query = r.query_params
    limit = _int_param(query.get("limit"), 100, "limit")
    if not 0 < limit <= 10_000:
        raise BrevoError(400, "out_of_range", "limit must be between 1 and 10000")
    offset = _int_param(query.get("offset"), 0, "offset")
    name, start, end = query.get("event_name"), query.get("startDate"), query.get("endDate")
    found = [e for e in s.account.events
             if (not name or e["event_name"] == name)
             and (not start or str(e["event_date"])[:10] >= start)
             and (not end or str(e["event_date"])[:10] <= end)]
    return 200, {"events": found[offset:offset + limit], "count": len(found)}


def _int_param(value: str | None, default: int, name: str) -> int:
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise BrevoError(400, "invalid_parameter", f"{name} must be an integer") from None


def catalog(kind: str) -> Callable[[BrevoSandbox, Request, Any], tuple[int, Any]]:
    def handler(s: BrevoSandbox, r: Request, body: Any) -> tuple[int, Any]:
        body = _object(body)
        table = s.account.products if kind == "products" else s.account.categories
        return 201, s.account.upsert_catalog(table, body.get(kind), kind,
                                             bool(body.get("updateEnabled")))
    return handler


def product(s: BrevoSandbox, r: Request, body: Any) -> tuple[int, Any]:
    """``POST /v3/products``: one product; 201 with its id when created, 204 when updated."""
    body = _object(body)
    item = {k: v for k, v in body.items() if k != "updateEnabled"}
    result = s.account.upsert_catalog(s.account.products, [item], "products",
                                      bool(body.get("updateEnabled")))
    return (201, {"id": item.get("id")}) if result["createdCount"] else (204, None)


def order_status(s: BrevoSandbox, r: Request, body: Any) -> tuple[int, Any]:
    order = s.account.check_order(_object(body))
    s.account.orders[str(order["id"])] = {**order, "historical": False}
    return 204, None


def order_batch(s: BrevoSandbox, r: Request, body: Any) -> tuple[int, Any]:
    body = _object(body)
    orders = body.get("orders")
    if not isinstance(orders, list) or not orders:
        raise BrevoError(400, "missing_parameter", "orders is required")
    checked = [s.account.check_order(order) for order in orders]
    historical = bool(body.get("historical"))
    for order in checked:
        s.account.orders[str(order["id"])] = {**order, "historical": historical}
    batch_id = len(s.account.order_batches) + 1
    s.account.order_batches.append({"batch_id": batch_id, "count": len(checked),
                                    "historical": historical})
    return 202, {"count": len(checked), "batch_id": batch_id}


ROUTES: list[tuple[str, str, str, Callable[..., tuple[int, Any]]]] = [
    ("POST", "/v3/contacts", "contacts", create_contact),
    ("GET", "/v3/contacts", "contacts", get_contacts),
    ("GET", "/v3/contacts/attributes", "contacts", get_attributes),
    ("POST", "/v3/contacts/attributes/{category}/{name}", "contacts", create_attribute),
    ("GET", "/v3/contacts/lists", "contacts", get_lists),
    ("GET", "/v3/contacts/lists/{list_id:int}", "contacts", get_list),
    ("POST", "/v3/contacts/lists", "contacts", create_list),
    ("GET", "/v3/contacts/folders", "contacts", get_folders),
    ("POST", "/v3/contacts/folders", "contacts", create_folder),
    ("POST", "/v3/contacts/lists/{list_id:int}/contacts/add", "contacts", add_to_list),
    ("POST", "/v3/contacts/lists/{list_id:int}/contacts/remove", "contacts", remove_from_list),
    ("POST", "/v3/contacts/import", "contacts", import_contacts),
    ("GET", "/v3/contacts/{identifier}", "contacts", get_contact),
    ("PUT", "/v3/contacts/{identifier}", "contacts", update_contact),
    ("GET", "/v3/processes/{process_id:int}", "other", get_process),
    ("POST", "/v3/events", "events", create_event),
    ("POST", "/v3/events/batch", "events", create_events),
    ("GET", "/v3/events", "other", get_events),
    ("POST", "/v3/products", "products", product),
    ("GET", "/v3/products", "other", get_products),
    ("POST", "/v3/products/batch", "other", catalog("products")),
    ("POST", "/v3/categories/batch", "other", catalog("categories")),
    ("POST", "/v3/orders/status", "orders", order_status),
    ("POST", "/v3/orders/status/batch", "other", order_batch),
]


def build_app(sandbox: BrevoSandbox) -> Starlette:
    """The ASGI app serving ``sandbox``."""
    routes = [Route(path, _endpoint(sandbox, path.replace(":int", ""), bucket, handler),
                    methods=[method]) for method, path, bucket, handler in ROUTES]

    def admin(handler: Callable[[dict[str, Any]], Any]) -> Callable[[Request], Awaitable[Any]]:
        async def endpoint(request: Request) -> Response:
            if request.headers.get("api-key") != sandbox.api_key:
                return json_response({"message": "Key not found", "code": "unauthorized"}, 401)
            raw = await request.body()
            try:
                return json_response(handler(orjson.loads(raw) if raw.strip() else {}))
            except (orjson.JSONDecodeError, BrevoError, KeyError) as exc:
                return json_response({"code": "bad_request", "message": str(exc)}, 400)
        return endpoint

    def state(_: dict[str, Any]) -> dict[str, Any]:
        for process in sandbox.account.processes.values():
            sandbox.account.advance(process, sandbox.import_delay_s)
        return {**sandbox.account.snapshot(), "requests": sandbox.stats.as_dict()}

    def reset(_: dict[str, Any]) -> dict[str, Any]:
        sandbox.stats = RequestStats()
        return {"ok": True}

    def blacklist(body: dict[str, Any]) -> dict[str, Any]:
        contact = sandbox.account.find(body["email"])
        if contact is None:
            raise BrevoError(404, "document_not_found", "Contact does not exist")
        contact.email_blacklisted = True
        return {"ok": True}

    routes += [Route("/_sandbox/state", admin(state), methods=["GET"]),
               Route("/_sandbox/stats/reset", admin(reset), methods=["POST"]),
               Route("/_sandbox/blacklist", admin(blacklist), methods=["POST"])]
    return Starlette(routes=routes)
