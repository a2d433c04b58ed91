"""The BigCommerce REST API as a connector meets it, served from a generated store.

Faithful where a connector can tell: ``X-Auth-Token`` auth and OAuth scopes (401/403 bodies),
the four ``X-Rate-Limit-*`` headers on every response and a real 429 when the plan's quota for
the window is used, V3 ``meta.pagination`` with links and ``after``/``before`` cursors, filters,
sorting, includes, limits and V3 error bodies. Where the real API is not documented, the choice
made here is stated next to the code.

``/_sandbox/...`` (same token, not rate limited) lets tests change the store while it runs and
read request counts.
"""

from __future__ import annotations

import base64
import bisect
import math
import random
import secrets
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.bigcommerce.sandbox.data import Store
from framework.formats import parse_datetime
from framework.sandbox import Faults, QuotaWindow, RequestStats, delay, json_response

PLANS: dict[str, int | None] = {"standard": 150, "plus": 150, "pro": 450, "enterprise": None}
ALL_SCOPES = frozenset({"store_v2_customers", "store_v2_information", "store_v2_orders",
                        "store_v2_products", "store_cart", "store_v2_content"})
STATUS_DOCS = "https://developer.bigcommerce.com/api-docs/getting-started/api-status-codes"
CUSTOMER_INCLUDES = {"addresses": "addresses", "attributes": "attributes",
                     "formfields": "form_fields", "storecredit": "store_credit_amounts",
                     "shopper_profile_id": None, "segment_ids": None}
CUSTOMER_SORTS = {"date_created", "last_name", "date_modified"}
MAX_LIMIT = 250


class ApiError(Exception):
    """An error answered with BigCommerce's error body."""

    def __init__(self, status: int, title: str, errors: dict[str, str] | None = None):
        self.status, self.title, self.errors = status, title, errors or {}


def v3_error(status: int, title: str, errors: dict[str, str] | None = None) -> dict[str, Any]:
    """The V3 error body (``error_Base`` in BigCommerce's specs)."""
    return {"status": status, "title": title, "type": STATUS_DOCS, "errors": errors or {}}


def v2_error(status: int, message: str) -> list[dict[str, Any]]:
    """The V2 error body. Not documented in BigCommerce's specs; this array of
    ``{status, message}`` is what V2 clients in the wild parse."""
    return [{"status": status, "message": message}]


class Sandbox:
    """State of one running sandbox: the store, tokens, quota window, counters and faults."""

    def __init__(self, store: Store, access_token: str, window_ms: int, latency_ms: int) -> None:
        self.store = store
        self.tokens: dict[str, frozenset[str]] = {access_token: ALL_SCOPES}
        self.window = QuotaWindow(PLANS[store.plan], window_ms)
        self.latency_ms = latency_ms
        self.stats = RequestStats()
        self.faults = Faults()


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


def _encode_cursor(key: tuple[int, ...]) -> str:
    return base64.b64encode(":".join(map(str, key)).encode()).decode()


def _decode_cursor(raw: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in base64.b64decode(raw).decode().split(":"))
    except (ValueError, UnicodeDecodeError):
        raise ApiError(422, "The cursor is not valid", {"after": raw}) from None


def list_customers(sandbox: Sandbox, params: Any) -> dict[str, Any]:
    """``GET /v3/customers``."""
    customers = sandbox.store.customers
    limit = _int(params, "limit", 50, 1, MAX_LIMIT)
    page = _int(params, "page", 1, 1)
    includes = [i for i in (params.get("include") or "").split(",") if i]
    for include in includes:
        if include not in CUSTOMER_INCLUDES:
            raise ApiError(422, f"Invalid include value '{include}'",
                           {"include": f"valid: {', '.join(CUSTOMER_INCLUDES)}"})
    sort = params.get("sort")
    field, _, direction = (sort or "id:asc").partition(":")
    if sort and (field not in CUSTOMER_SORTS or direction not in ("asc", "desc")):
        raise ApiError(422, f"Invalid sort value '{sort}'",
                       {"sort": "valid: " + ", ".join(f"{f}:asc|desc" for f in CUSTOMER_SORTS)})
    low_mod, high_mod = _timestamp(params, "date_modified:min"), _timestamp(params,
                                                                            "date_modified:max")
    exact_mod = _timestamp(params, "date_modified")
    if exact_mod is not None:
        low_mod = high_mod = exact_mod
    low_new, high_new = _timestamp(params, "date_created:min"), _timestamp(params,
                                                                          "date_created:max")
    ids_in = _id_list(params, "id:in")
    groups_in = _id_list(params, "customer_group_id:in")
    emails = params.get("email:in")
    emails_in = {e.strip().lower() for e in emails.split(",")} if emails else None

    after, before = params.get("after"), params.get("before")
    # Candidates in sort order, as (sort key, id). The ``date_modified`` bounds are inclusive
    # (the docs do not say; inclusive is what makes ``:min`` with the last seen value safe).
    plain = not (ids_in or emails_in or groups_in or after or before or low_new or high_new)
    if field == "date_modified" and direction == "asc" and plain:
        # The incremental read's request: a range of the index, sliced without copying it.
        index = customers.by_modified
        lo = bisect.bisect_left(index, (low_mod, 0)) if low_mod is not None else 0
        hi = (bisect.bisect_right(index, (high_mod, math.inf)) if high_mod is not None
              else len(index))
        start = lo + (page - 1) * limit
        keyed = [((m, i), i) for m, i in index[start:min(hi, start + limit)]]
        return _customer_page(customers, params, keyed, hi - lo, page, limit, includes,
                              {}, False)
    if field == "date_modified" and not (ids_in or emails_in):
        index = customers.by_modified
        lo = bisect.bisect_left(index, (low_mod, 0)) if low_mod is not None else 0
        hi = (bisect.bisect_right(index, (high_mod, math.inf)) if high_mod is not None
              else len(index))
        keyed = [((m, i), i) for m, i in index[lo:hi]]
    else:
        candidates = sorted(ids_in) if ids_in is not None else customers.ids
        keyed = [((customers.modified[i], i) if field == "date_modified"
                  else (customers.created[i], i) if field == "date_created" else (i,), i)
                 for i in candidates if i in customers.modified]
        if field in ("date_created", "date_modified"):
            keyed.sort()
        if low_mod is not None or high_mod is not None:
            keyed = [k for k in keyed if (low_mod is None or customers.modified[k[1]] >= low_mod)
                     and (high_mod is None or customers.modified[k[1]] <= high_mod)]
    if low_new is not None or high_new is not None:
        keyed = [k for k in keyed if (low_new is None or customers.created[k[1]] >= low_new)
                 and (high_new is None or customers.created[k[1]] <= high_new)]
    need_records = bool(emails_in or groups_in or field == "last_name")
    records: dict[int, dict[str, Any]] = {}
    if need_records:
        for _, i in keyed:
            records[i] = customers.get(i)
        keyed = [k for k in keyed
                 if (not emails_in or records[k[1]]["email"].lower() in emails_in)
                 and (not groups_in or records[k[1]]["customer_group_id"] in groups_in)]
        if field == "last_name":
            keyed = sorted(((records[i]["last_name"], i), i) for _, i in keyed)
    if direction == "desc":
        keyed.reverse()

    total = len(keyed)
    if after or before:
        # Cursors are opaque to clients; here they encode the sort key of the edge record,
        # which keeps them valid under any sort (the docs show ``id:N`` for the default sort).
        mark = _decode_cursor(after or before)
        keys = [k for k, _ in keyed]
        if direction == "desc":
            keys = [tuple(-x for x in k) for k in keys]
            mark = tuple(-x for x in mark)
        if after:
            start = bisect.bisect_right(keys, mark)
            window = keyed[start:start + limit]
        else:
            end = bisect.bisect_left(keys, mark)
            window = keyed[max(0, end - limit):end]
        page = 1
    else:
        window = keyed[(page - 1) * limit:page * limit]
    return _customer_page(customers, params, window, total, page, limit, includes, records,
                          bool(after or before))


def _customer_page(customers: Any, params: Any, window: list[tuple[tuple[Any, ...], int]],
                   total: int, page: int, limit: int, includes: list[str],
                   records: dict[int, dict[str, Any]], by_cursor: bool) -> dict[str, Any]:
    """The response body for the customers in ``window`` (already in order)."""
    data = []
    dropped = [key for include, key in CUSTOMER_INCLUDES.items()
               if key and include not in includes]
    for _, i in window:
        record = records.get(i) or customers.get(i)
        for key in dropped:
            record.pop(key, None)
        data.append(record)

    query = {k: v for k, v in params.items() if k not in ("page", "after", "before")}
    total_pages = max(1, math.ceil(total / limit))

    def link(page_number: int) -> str:
        return "?" + urlencode({**query, "page": page_number, "limit": limit})

    links = {"current": link(page)}
    if page > 1:
        links["previous"] = link(page - 1)
    if page < total_pages:
        links["next"] = link(page + 1)
    meta: dict[str, Any] = {"pagination": {
        "total": total, "count": len(data), "per_page": limit, "current_page": page,
        "total_pages": total_pages, "links": links}}
    if by_cursor or page == 1:
        start_cursor = _encode_cursor(window[0][0]) if window else None
        end_cursor = _encode_cursor(window[-1][0]) if window else None
        cursor_links = {"current": "?" + urlencode({**query, "limit": limit})}
        if end_cursor and len(window) == limit:
            cursor_links["next"] = "?" + urlencode({**query, "limit": limit, "after": end_cursor})
        if start_cursor and by_cursor:
            cursor_links["previous"] = "?" + urlencode({**query, "limit": limit,
                                                         "before": start_cursor})
        meta["cursor_pagination"] = {"count": len(data), "per_page": limit,
                                     "start_cursor": start_cursor, "end_cursor": end_cursor,
                                     "links": cursor_links}
    return {"data": data, "meta": meta}


Handler = Callable[[Sandbox, Request], Awaitable[Response]]

# Store API routes: path template -> (scopes that grant read access, API version, handler).
# A token with the read-only or the modify variant of a scope may read.


async def customers_route(sandbox: Sandbox, request: Request) -> Response:
    return json_response(list_customers(sandbox, request.query_params))


async def store_route(sandbox: Sandbox, request: Request) -> Response:
    return json_response(sandbox.store.info())


STORE_ROUTES: dict[str, tuple[str, str, Handler]] = {
    "/v3/customers": ("store_v2_customers", "v3", customers_route),
    "/v2/store": ("store_v2_information", "v2", store_route),
}


def _has_scope(granted: frozenset[str], scope: str) -> bool:
    return scope in granted or f"{scope}_read_only" in granted


def build_app(sandbox: Sandbox) -> Starlette:
    """The ASGI app serving ``sandbox``."""
    prefix = f"/stores/{sandbox.store.store_hash}"

    def make_store_endpoint(template: str, scope: str, version: str, handler: Handler
                            ) -> Callable[[Request], Awaitable[Response]]:
        def error(status: int, title: str, errors: dict[str, str] | None = None,
                  headers: dict[str, str] | None = None) -> Response:
            body = v3_error(status, title, errors) if version == "v3" else v2_error(status, title)
            sandbox.stats.count(template, status)
            return json_response(body, status, headers)

        async def endpoint(request: Request) -> Response:
            await delay(sandbox.latency_ms)
            granted = sandbox.tokens.get(request.headers.get("x-auth-token", ""))
            if granted is None:
                # Unauthenticated requests do not use the quota.
                return error(401, "You are not authorized to access this resource. Check that "
                                  "the X-Auth-Token header holds a valid access token")
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
                return error(fault, "Service Unavailable" if fault == 503 else "Internal error",
                             headers=headers)
            try:
                response = await handler(sandbox, request)
            except ApiError as exc:
                return error(exc.status, exc.title, exc.errors, headers)
            response.headers.update(headers)
            sandbox.stats.count(template, response.status_code)
            return response

        return endpoint

    routes = [Route(prefix + template, make_store_endpoint(template, *spec), methods=["GET"])
              for template, spec in STORE_ROUTES.items()]

    def admin(handler: Callable[[dict[str, Any]], Any]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            if sandbox.tokens.get(request.headers.get("x-auth-token", "")) is None:
                return json_response(v3_error(401, "Unauthorized"), 401)
            body = await request.json() if request.method == "POST" else {}
            try:
                return json_response(handler(body if isinstance(body, dict) else {}))
            except ApiError as exc:
                return json_response(v3_error(exc.status, exc.title, exc.errors), exc.status)
        return endpoint

    def stats(_: dict[str, Any]) -> dict[str, Any]:
        return sandbox.stats.as_dict()

    def reset_stats(_: dict[str, Any]) -> dict[str, Any]:
        sandbox.stats = RequestStats()
        return {"ok": True}

    def mutate(body: dict[str, Any]) -> dict[str, Any]:
        if body.get("resource", "customers") != "customers":
            raise ApiError(422, "Unknown resource", {"resource": "valid: customers"})
        customers = sandbox.store.customers
        rng = random.Random(body.get("seed"))
        updated = rng.sample(customers.ids, min(int(body.get("update", 0)), len(customers.ids)))
        for customer_id in updated:
            customers.touch(customer_id, {"notes": f"edited {rng.randrange(10**6)}"})
        created = [customers.create() for _ in range(int(body.get("create", 0)))]
        pool = [i for i in customers.ids if i not in set(updated) | set(created)]
        deleted = rng.sample(pool, min(int(body.get("delete", 0)), len(pool)))
        for customer_id in deleted:
            customers.delete(customer_id)
        return {"updated": sorted(updated), "created": created, "deleted": sorted(deleted)}

    def tokens(body: dict[str, Any]) -> dict[str, Any]:
        token = secrets.token_hex(16)
        sandbox.tokens[token] = frozenset(body.get("scopes", []))
        return {"access_token": token}

    def faults(body: dict[str, Any]) -> dict[str, Any]:
        sandbox.faults.add(int(body.get("status", 503)), int(body.get("count", 1)))
        return {"queued": len(sandbox.faults.queue)}

    def snapshot(_: dict[str, Any]) -> dict[str, Any]:
        customers = sandbox.store.customers
        return {"customers": [[i, customers.modified[i]] for i in customers.ids]}

    for path, handler, method in (("stats", stats, "GET"), ("stats/reset", reset_stats, "POST"),
                                  ("mutate", mutate, "POST"), ("tokens", tokens, "POST"),
                                  ("faults", faults, "POST"), ("snapshot", snapshot, "GET")):
        routes.append(Route(f"/_sandbox/{path}", admin(handler), methods=[method]))
    return Starlette(routes=routes)
