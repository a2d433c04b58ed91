"""The Brevo API v3 as the destination meets it, served from an in-memory account.

Faithful where a client can tell: ``api-key`` auth and Brevo's 401 bodies, ``{code, message}``
error bodies, per-endpoint rate limits with the ``x-sib-ratelimit-*`` headers and 429s, contact
imports as asynchronous processes (queued, in_process, then completed, failed or cancelled),
the 150-contact list calls, batch sizes (100 products or categories, 1,000 orders and 5 MB an
order batch, 10 MB an import), event and order validation; each answer shaped as
brevo-python's models have it (``reference.py`` checks that in the tests). An import given a
``notifyUrl`` calls it when it ends, as Brevo does (a POST without a body). ``--tier`` picks
the rate-limit tier (``connectors/brevo/limits.py``); ``--window-ms`` scales every window: the
per-second limits use it as their second, the per-hour ones 3,600 of them.

``/_sandbox/...`` (same key, not rate limited): ``GET state`` (everything held, and request
counts), ``POST stats/reset``, ``POST blacklist`` (a contact unsubscribes in Brevo),
``POST imports`` (how the next imports end), ``POST account`` (become another account),
``POST refuse`` (the next requests of a route answer a 4xx).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import requests
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.brevo.limits import TIERS
from connectors.brevo.sandbox.store import (
    ATTRIBUTE_CATEGORIES,
    ATTRIBUTE_TYPES,
    MAX_EVENTS_BATCH,
    MAX_ORDER_BATCH,
    TYPE_ONLY_IN,
    Account,
    BrevoError,
)
from framework.devkit.sandbox import QuotaWindow, RequestStats, delay, json_response

log = logging.getLogger("tajo.sandbox.brevo")

#: Bodies Brevo documents a size limit for: an import's JSON "10MB" (brevo-python's
#: import_contacts; read as 10,000,000 bytes, the smaller reading), an order batch's "5 MB"
#: (developers.brevo.com/docs/import-your-orders). Larger ones get a 413, what a server says of
#: a body too large (Brevo documents no answer for it).
MAX_BODY_BYTES = {"/v3/contacts/import": 10_000_000, "/v3/orders/status/batch": 5_000_000}


def windows_of(tier: str, window_ms: int) -> dict[str, QuotaWindow]:
    """One window per bucket of ``tier``: a second's worth when the bucket has a per-second
    limit (its hourly one is 3,600 of them), else the hour's."""
    return {name: (QuotaWindow(limit.per_second, window_ms) if limit.per_second
                   else QuotaWindow(limit.per_hour, 3600 * window_ms))
            for name, limit in TIERS[tier].items()}


class BrevoSandbox:
    """The account, its key, per-endpoint windows, counters, and how long imports take."""

    def __init__(self, api_key: str, window_ms: int, latency_ms: int,
                 import_delay_ms: int, tier: str = "general",
                 product_batch_limit: int = 100) -> None:
        self.account = Account()
        self.account.product_batch_limit = product_batch_limit
        self.api_key = api_key
        self.window_ms = window_ms
        self.latency_ms = latency_ms
        self.import_delay_s = import_delay_ms / 1000
        self.stats = RequestStats()
        self.windows = windows_of(tier, window_ms)
        self.notified = 0  # notifyUrl calls made
        # (method, path) -> [status, answers left]: /_sandbox/refuse makes a route fail
        self.refusals: dict[tuple[str, str], list[int]] = {}


def _error(exc: BrevoError, headers: dict[str, str] | None = None) -> Response:
    return json_response(exc.body(), exc.status, headers)


def _endpoint(sandbox: BrevoSandbox, template: str, bucket: str,
              handler: Callable[[BrevoSandbox, Request, Any], Any]
              ) -> Callable[[Request], Awaitable[Response]]:
    max_bytes = MAX_BODY_BYTES.get(template)

    async def endpoint(request: Request) -> Response:
        await delay(sandbox.latency_ms)
        headers = {"sib-request-id": str(uuid.uuid4())}
        window = sandbox.windows[bucket]
        key = request.headers.get("api-key")
        if key != sandbox.api_key:
            # Brevo sends its rate-limit headers on every answer of a limited endpoint, a
            # refused key's too (the window is shown, not spent: the key owns no quota).
            headers.update(_limit_headers(window, *_peek(window)))
            sandbox.stats.count(template, 401)
            message = "Key not found" if key else "authentication not found in headers"
            return json_response({"message": message, "code": "unauthorized"}, 401, headers)
        allowed, left, reset_ms = window.take()
        headers.update(_limit_headers(window, left, reset_ms))
        if not allowed:
            sandbox.stats.count(template, 429)
            # Brevo documents no 429 body; its error model's shape is kept.
            return json_response({"code": "too_many_requests", "message": "Too Many Requests"},
                                 429, headers)
        raw = await request.body()
        if max_bytes is not None and len(raw) > max_bytes:
            sandbox.stats.count(template, 413)
            return _error(BrevoError(413, "out_of_range", f"The request body is over "
                                     f"{max_bytes} bytes"), headers)
        body: Any = None
        if raw:
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                sandbox.stats.count(template, 400)
                return _error(BrevoError(400, "bad_request", "Invalid JSON in the body"),
                              headers)
        refusal = sandbox.refusals.get((request.method, request.url.path))
        if refusal and refusal[1] > 0:
            refusal[1] -= 1
            sandbox.stats.count(template, refusal[0])
            return _error(BrevoError(refusal[0], "bad_request", "refused as the test asked"),
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


def _limit_headers(window: QuotaWindow, left: int, reset_ms: int) -> dict[str, str]:
    return {"x-sib-ratelimit-limit": str(window.quota), "x-sib-ratelimit-remaining": str(left),
            "x-sib-ratelimit-reset": str(math.ceil(reset_ms / 1000))}


def _peek(window: QuotaWindow) -> tuple[int, int]:
    """(requests left, ms until the reset) of a window, without counting a request."""
    now = time.monotonic()
    if now - window.started >= window.window_ms / 1000:
        return window.quota or 0, window.window_ms
    reset_ms = max(1, int((window.started + window.window_ms / 1000 - now) * 1000))
    return max(0, (window.quota or 0) - window.used), reset_ms


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BrevoError(400, "bad_request", "The body must be a JSON object")
    return body


def create_contact(s: BrevoSandbox, r: Request, body: Any) -> tuple[int, Any]:
    return s.account.create_contact(_object(body))


def get_contact(s: BrevoSandbox, r: Request, body: Any) -> tuple[int, Any]:
    contact = s.account.find(r.path_params["identifier"], r.query_params.get("identifierType"))
    if contact is None:
        raise BrevoError(404, "document_not_found", "Contact does not exist")
    return 200, contact.as_api()


def update_contact(s: BrevoSandbox, r: Request, body: Any) -> tuple[int, Any]:
    s.account.update_contact(r.path_params["identifier"], _object(body),
                             r.query_params.get("identifierType"))
    return 204, None


def delete_contact(s: BrevoSandbox, r: Request, body: Any) -> tuple[int, Any]:
    s.account.delete_contact(r.path_params["identifier"], r.query_params.get("identifierType"))
    return 204, None


def import_contacts(s: BrevoSandbox, r: Request, body: Any) -> tuple[int, Any]:
    answer = s.account.start_import(_object(body))
    url = body.get("notifyUrl")
    if isinstance(url, str) and url:
        # Brevo calls the notify URL once the process has ended (brevo-python: "on completion
        # calls the notify URL"); what it sends is not documented (a third party's receiver
        # says the body is empty): a POST without a body, once the import has run.
        loop = asyncio.get_running_loop()
        process = s.account.processes[answer["processId"]]
        loop.call_later(2 * s.import_delay_s + 0.005, _notify, s, process, url, loop)
    return 202, answer


def _notify(s: BrevoSandbox, process: Any, url: str, loop: asyncio.AbstractEventLoop) -> None:
    s.account.advance(process, s.import_delay_s)  # on the loop: the account's one thread

    def call() -> None:
        try:
            requests.post(url, timeout=10)
            s.notified += 1
        except requests.RequestException as exc:  # Brevo does not say it retries
            log.warning("the notify URL of import %s did not answer: %s", process.id,
                        type(exc).__name__)

    loop.run_in_executor(None, call)


def _process_view(s: BrevoSandbox, r: Request, process: Any) -> dict[str, Any]:
    s.account.advance(process, s.import_delay_s)
    answer: dict[str, Any] = {"id": process.id, "status": process.status, "name": process.name}
    files = sorted({row["file"] for row in process.invalid})
    if process.status == "completed" and files:
        # Brevo links CSV reports of the rows it did not take (the SDK's info.import); the
        # sandbox serves them, like a signed file link, without the api-key.
        answer["info"] = {"import": {name: f"{str(r.base_url).rstrip('/')}/_sandbox/files/"
                                           f"{process.id}/{name}.csv" for name in files}}
    return answer


def get_process(s: BrevoSandbox, r: Request, body: Any) -> tuple[int, Any]:
    process = s.account.processes.get(r.path_params["process_id"])
    if process is None:
        raise BrevoError(404, "invalid_parameter", "processId is invalid")
    return 200, _process_view(s, r, process)


def get_processes(s: BrevoSandbox, r: Request, body: Any) -> tuple[int, Any]:
    """``GET /v3/processes``: a page (limit 10 by default, at most 50; offset) of the
    account's processes, newest first unless ``sort=asc``, with the total ``count``."""
    limit, offset = _window(r, 10, 50)
    ids = sorted(s.account.processes, reverse=r.query_params.get("sort", "desc") != "asc")
    page = [_process_view(s, r, s.account.processes[i]) for i in ids[offset:offset + limit]]
    return 200, {"processes": page, "count": len(ids)}


def get_attributes(s: BrevoSandbox, r: Request, body: Any) -> tuple[int, Any]:
    return 200, {"attributes": list(s.account.attributes.values())}


def create_attribute(s: BrevoSandbox, r: Request, body: Any) -> tuple[int, Any]:
    category, name = r.path_params["category"], r.path_params["name"].upper()
    kind = _object(body).get("type", "text")
    if category not in ATTRIBUTE_CATEGORIES:
        raise BrevoError(400, "invalid_parameter", "Invalid attribute category")
    if kind not in ATTRIBUTE_TYPES:
        raise BrevoError(400, "invalid_parameter", "Invalid attribute type")
    if TYPE_ONLY_IN.get(kind, category) != category:
        raise BrevoError(400, "invalid_parameter", f"Attribute type {kind} is only available "
                         f"for the {TYPE_ONLY_IN[kind]} category")
    if name in s.account.attributes:
        # Brevo's wording for an existing attribute is not documented.
        raise BrevoError(400, "invalid_parameter", "Attribute name must be unique")
    s.account.attributes[name] = {"name": name, "category": category, "type": kind}
    return 201, None


def get_lists(s: BrevoSandbox, r: Request, body: Any) -> tuple[int, Any]:
    """``GET /v3/contacts/lists``: a page (limit 10 by default, at most 50; offset), newest
    first unless ``sort=asc``. Brevo's wording for a limit over 50 is not documented."""
    limit, offset = _window(r, 10, 50)
    ids = sorted(s.account.lists, reverse=r.query_params.get("sort", "desc") != "asc")
    page = [s.account.list_view(i, one=False) for i in ids[offset:offset + limit]]
    return 200, {"lists": page, "count": len(ids)}


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
    # The SDK's contacts of a list (GetContactDetails) carry no statistics.
    page = [{k: v for k, v in c.as_api().items() if k != "statistics"}
            for c in contacts[offset:offset + limit]]
    return 200, {"contacts": page, "count": len(contacts)}


def get_list(s: BrevoSandbox, r: Request, body: Any) -> tuple[int, Any]:
    """``GET /v3/contacts/lists/{id}``: the list with its subscriber counts."""
    list_id = r.path_params["list_id"]
    if list_id not in s.account.lists:
        raise BrevoError(404, "document_not_found", "List ID does not exist")
    return 200, s.account.list_view(list_id)


def get_products(s: BrevoSandbox, r: Request, body: Any) -> tuple[int, Any]:
    """``GET /v3/products``: a page of products and the total ``count`` (limit up to 1000)."""
    limit, offset = _window(r, 50, 1000)
    products = list(s.account.products.values())
    return 200, {"products": [_product_view(r, p) for p in products[offset:offset + limit]],
                 "count": len(products)}


def _product_view(r: Request, product: dict[str, Any]) -> dict[str, Any]:
    """A product as Brevo shows it: with the thumbnails it made of the image on its S3 (the
    SDK requires both; empty when the product has no image, which the SDK leaves open)."""
    base = f"{str(r.base_url).rstrip('/')}/_sandbox/s3/{product['id']}"
    image = product.get("imageUrl")
    return {**product, "s3ThumbAnalytics": f"{base}-120x120.jpg" if image else "",
            "s3ThumbEditor": f"{base}-600x400.jpg" if image else ""}


def create_list(s: BrevoSandbox, r: Request, body: Any) -> tuple[int, Any]:
    body = _object(body)
    if not body.get("name") or body.get("folderId") is None:
        raise BrevoError(400, "missing_parameter", "name and folderId are required")
    if body["folderId"] not in s.account.folders:
        raise BrevoError(404, "document_not_found", "Folder ID not found")
    list_id = max([*s.account.lists, s.account.next_list - 1]) + 1
    s.account.add_list(list_id, body["name"], body["folderId"])
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
    failed: dict[str, list[int]] = {}  # message -> indexes of the events it refused
    for index, event in enumerate(events):
        try:
            s.account.events.append(s.account.check_event(event))
        except BrevoError as exc:
            failed.setdefault(exc.message, []).append(index)
    if failed:
        # The SDK's BatchEventsResponse; the value of ``status`` is not documented.
        count = sum(len(v) for v in failed.values())
        return 207, {"status": "partial_success", "total_events": len(events),
                     "successful_events": len(events) - count, "failed_events": count,
                     "errors": [{"eventIndex": indexes, "message": message}
                                for message, indexes in failed.items()]}
    return 202, {"message": "all events have been added to the processing queue",
                 "count": len(events)}


EVENT_FIELDS = ("contact_id", "event_date", "event_name", "object_type", "event_properties",
                "contact_properties")


def get_events(s: BrevoSandbox, r: Request, body: Any) -> tuple[int, Any]:
    """``GET /v3/events`` as the SDK has it (``GetEventsList``): filters event_name (and
    contact_id), startDate/endDate (both or neither; a day ``YYYY-MM-DD``, the end day
    included, or an RFC 3339 instant), limit (1 to 10,000, default 100) and offset; newest
    first, each event with the fields of ``GetEventsListEventsItem`` only."""
    query = r.query_params
    limit = _int_param(query.get("limit"), 100, "limit")
    if not 0 < limit <= 10_000:
        raise BrevoError(400, "out_of_range", "limit must be between 1 and 10000")
    offset = _int_param(query.get("offset"), 0, "offset")
    start, end = query.get("startDate"), query.get("endDate")
    if bool(start) != bool(end):
        raise BrevoError(400, "invalid_parameter", "startDate and endDate go together")
    since = _instant(start, "startDate", end_of_day=False) if start else None
    until = _instant(end, "endDate", end_of_day=True) if end else None
    if since and until and since > until:
        raise BrevoError(400, "invalid_parameter", "startDate must be before endDate")
    names = set(query.getlist("event_name"))
    contacts = {_int_param(v, 0, "contact_id") for v in query.getlist("contact_id")}
    found = [e for e in s.account.events
             if (not names or e["event_name"] in names)
             and (not contacts or e.get("contact_id") in contacts)
             and (since is None or until is None  # given together (checked above)
                  or since <= _instant(e["event_date"], "event_date", False) <= until)]
    found.sort(key=lambda e: _instant(e["event_date"], "event_date", False), reverse=True)
    return 200, {"events": [{k: e[k] for k in EVENT_FIELDS if k in e}
                            for e in found[offset:offset + limit]], "count": len(found)}


def _instant(value: str, name: str, end_of_day: bool) -> datetime:
    """A day (its first or last instant, UTC) or an RFC 3339 date-time, as an aware time."""
    text = str(value)
    try:
        if len(text) == 10:
            day = datetime.fromisoformat(text).replace(tzinfo=UTC)
            return day + timedelta(days=1, microseconds=-1) if end_of_day else day
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BrevoError(400, "invalid_parameter", f"{name} must be YYYY-MM-DD or an RFC 3339 "
                         "date-time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


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
    if len(orders) > MAX_ORDER_BATCH:
        # Brevo documents the limit, not its answer past it: its error model's shape.
        raise BrevoError(400, "out_of_range",
                         f"A maximum of {MAX_ORDER_BATCH} orders can be sent at once")
    checked = [s.account.check_order(order) for order in orders]
    historical = bool(body.get("historical"))
    for order in checked:
        s.account.orders[str(order["id"])] = {**order, "historical": historical}
    batch_id = len(s.account.order_batches) + 1
    s.account.order_batches.append({"batch_id": batch_id, "count": len(checked),
                                    "historical": historical})
    return 202, {"count": len(checked), "batch_id": batch_id}


def get_account(s: BrevoSandbox, r: Request, body: Any) -> tuple[int, Any]:
    """``GET /v3/account``: who the account is, with the fields the SDK requires."""
    account = s.account
    return 200, {"organization_id": account.organization_id, "user_id": 1, "enterprise": False,
                 "companyName": account.company_name, "email": account.owner_email,
                 "firstName": "Sandbox", "lastName": "Owner",
                 "plan": [{"type": "free", "credits": 300.0, "creditsType": "sendLimit"}],
                 "relay": {"enabled": True, "data": {"userName": account.owner_email,
                                                     "relay": "smtp-relay.brevo.com",
                                                     "port": 587}}}


ROUTES: list[tuple[str, str, str, Callable[..., tuple[int, Any]]]] = [
    ("GET", "/v3/account", "other", get_account),
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
    ("DELETE", "/v3/contacts/{identifier}", "contacts", delete_contact),
    ("GET", "/v3/processes", "other", get_processes),
    ("GET", "/v3/processes/{process_id:int}", "other", get_process),
    ("POST", "/v3/events", "events", create_event),
    # Brevo's rate-limit page names POST /v3/events only: the batch is "all other endpoints".
    ("POST", "/v3/events/batch", "other", create_events),
    ("GET", "/v3/events", "other", get_events),
    ("POST", "/v3/products", "products", product),
    ("GET", "/v3/products", "other", get_products),
    ("POST", "/v3/products/batch", "other", catalog("products")),
    ("POST", "/v3/categories/batch", "other", catalog("categories")),
    ("POST", "/v3/orders/status", "orders", order_status),
    ("POST", "/v3/orders/status/batch", "other", order_batch),
]


def _test_controls(sandbox: BrevoSandbox, admin: Callable[..., Any]) -> list[Route]:
    """Admin routes that make the account behave as a test needs, and the import reports
    Brevo links (served as a signed file link is: without the api-key)."""

    def imports(body: dict[str, Any]) -> dict[str, Any]:
        """How the next imports end: ``{"end_as": ["failed", "cancelled", ...]}``."""
        ends = list(body["end_as"])
        if not set(ends) <= {"completed", "failed", "cancelled"}:
            raise BrevoError(400, "invalid_parameter", "end_as: completed, failed, cancelled")
        sandbox.account.imports_end_as.extend(ends)
        return {"ok": True}

    def refuse(body: dict[str, Any]) -> dict[str, Any]:
        """The next ``count`` requests of ``method`` on ``path`` are answered ``status``
        (a 4xx: what Brevo refuses in a way this account cannot make it)."""
        status = int(body["status"])
        if not 400 <= status < 500:
            raise BrevoError(400, "invalid_parameter", "status: a 4xx")
        sandbox.refusals[(str(body["method"]).upper(), str(body["path"]))] = [
            status, int(body.get("count", 1))]
        return {"ok": True}

    def identity(body: dict[str, Any]) -> dict[str, Any]:
        """Become another Brevo account (``organization_id``, ``company_name``)."""
        sandbox.account.organization_id = str(body["organization_id"])
        sandbox.account.company_name = str(body.get("company_name")
                                           or sandbox.account.company_name)
        return {"ok": True}

    async def report(request: Request) -> Response:
        """An import's CSV report (semicolons, a header): the rows Brevo did not take."""
        process = sandbox.account.processes.get(request.path_params["process_id"])
        name = request.path_params["name"]
        rows = [row for row in (process.invalid if process else []) if row["file"] == name]
        if not rows:
            return json_response({"message": "Not found", "code": "document_not_found"}, 404)
        text = "EMAIL;REASON\n" + "".join(f"{row['email'] or ''};{row['reason']}\n"
                                           for row in rows)
        return Response(text, media_type="text/csv")

    return [Route("/_sandbox/imports", admin(imports), methods=["POST"]),
            Route("/_sandbox/refuse", admin(refuse), methods=["POST"]),
            Route("/_sandbox/account", admin(identity), methods=["POST"]),
            Route("/_sandbox/files/{process_id:int}/{name}.csv", report, methods=["GET"])]


def build_app(sandbox: BrevoSandbox, reference: Any = None) -> Starlette:
    """The ASGI app serving ``sandbox``; with a ``reference`` (``reference.Reference``), each
    route's requests and answers are checked against Brevo's SDK."""
    routes = []
    for method, path, bucket, handler in ROUTES:
        template = path.replace(":int", "")
        endpoint = _endpoint(sandbox, template, bucket, handler)
        if reference is not None:
            endpoint = reference.checking((method, template), endpoint)
        routes.append(Route(path, endpoint, methods=[method]))

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
        return {**sandbox.account.snapshot(), "requests": sandbox.stats.as_dict(),
                "notified": sandbox.notified}

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
               Route("/_sandbox/blacklist", admin(blacklist), methods=["POST"]),
               *_test_controls(sandbox, admin)]
    return Starlette(routes=routes)
