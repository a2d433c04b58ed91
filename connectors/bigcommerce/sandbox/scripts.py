"""The Scripts API in the sandbox (``/v3/content/scripts``), as BigCommerce's OpenAPI file
(scripts.v3.yml, kept in tests/reference/bigcommerce/) describes it: ``script_Post`` and
``script_Put`` bodies, ``script_Full`` answers, the enums, 422 with ``{status, title, type,
errors}`` for missing or invalid fields, 404 for a script that is not the caller's.

Rules from the reference and its article (docs/integrations/scripts.mdx): ``name`` is required
(1 to 255 characters); ``kind: src`` takes ``src`` and no ``html``, ``kind: script_tag`` takes
``html`` (at most 65,536 characters) and no ``src``, with ``load_method: default``; each app
(API account) has at most 10 scripts, each channel at most 50; an API account sees, changes and
deletes only its own scripts; ``visibility`` ``checkout``, ``all_pages`` and
``order_confirmation`` need the Checkout Content scope.

Where the reference is loose, the choices made here:

- ``html`` "containing exactly one script tag", while the article allows "up to five <script>
  tags" inline: 1 to 5 ``<script`` tags are taken;
- ``consent_category`` "defaults to unknown", a value its enum lacks: an unset category is
  kept as ``unknown`` (such a script is not rendered on a store with the consent banner) and
  left out of answers, which then stay within the enum;
- ``kind`` is not required: without it, ``src`` makes it ``src`` and ``html`` ``script_tag``;
  neither is a 422;
- a visibility the token's scopes do not allow is a 403 (the reference says only that the
  scope is needed);
- ``api_client_id`` is read-only: the caller's API account, whatever the body says.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import orjson

from connectors.bigcommerce.sandbox.routes import ApiError
from framework.declarative.formats import format_utc

MAX_PER_APP = 10
MAX_PER_CHANNEL = 50
MAX_HTML = 65536
MAX_SCRIPT_TAGS = 5
CHECKOUT_SCOPE = "store_content_checkout"
ENUMS = {"load_method": ("default", "async", "defer"), "location": ("head", "footer"),
         "visibility": ("storefront", "all_pages", "checkout", "order_confirmation"),
         "kind": ("src", "script_tag"),
         "consent_category": ("essential", "functional", "analytics", "targeting")}
STRINGS = ("name", "description", "html", "src")
BOOLEANS = ("auto_uninstall", "enabled")
SORTS = ("name", "description", "date_created", "date_modified")
_SCRIPT_TAG = re.compile(r"<script\b", re.IGNORECASE)


class Scripts:
    """One store's scripts, by uuid."""

    def __init__(self) -> None:
        self.scripts: dict[str, dict[str, Any]] = {}

    def mine(self, client_id: str) -> list[dict[str, Any]]:
        return [s for s in self.scripts.values() if s["api_client_id"] == client_id]

    def rendered(self, channel_id: int = 1) -> list[dict[str, Any]]:
        """The enabled scripts of a channel, oldest first (what a storefront page renders)."""
        return [s for s in self.scripts.values()
                if s["enabled"] and s["channel_id"] == channel_id]

    def handle(self, method: str, script_uuid: str | None, params: Any, raw: bytes,
               granted: frozenset[str], client_id: str) -> dict[str, Any] | None:
        """One request of the API; the answer's body (None: 204)."""
        script = None
        if script_uuid is not None:
            script = self.scripts.get(script_uuid)
            if script is None or script["api_client_id"] != client_id:
                raise ApiError(404, "The script was not found")
        if method == "GET":
            if script is not None:
                return {"data": shown(script), "meta": {}}
            return self._list(params, client_id)
        if method == "DELETE":
            assert script is not None
            del self.scripts[script["uuid"]]
            return None
        body = _body(raw)
        if method == "PUT":
            assert script is not None
            merged = {**script, **body}
            _check(merged, granted, creating=False)
            merged["date_modified"] = format_utc(time.time())
            script.update(merged, api_client_id=client_id)
            return {"data": shown(script), "meta": {}}
        _check(body, granted, creating=True)
        self._check_limits(client_id, int(body.get("channel_id", 1)))
        now = format_utc(time.time())
        script = {"uuid": str(uuid.uuid4()), "date_created": now, "date_modified": now,
                  "description": "", "auto_uninstall": False, "load_method": "default",
                  "location": "footer", "visibility": "storefront", "enabled": True,
                  "channel_id": 1, "consent_category": "unknown", "integrity_hashes": [],
                  **{k: v for k, v in body.items() if k != "api_client_id"},
                  "api_client_id": client_id}
        script.setdefault("kind", "src" if "src" in body else "script_tag")
        self.scripts[script["uuid"]] = script
        return {"data": shown(script), "meta": {}}

    def _check_limits(self, client_id: str, channel_id: int) -> None:
        if len(self.mine(client_id)) >= MAX_PER_APP:
            raise ApiError(422, f"Each app can have {MAX_PER_APP} scripts installed",
                           {"scripts": f"limit of {MAX_PER_APP} per app reached"})
        if sum(1 for s in self.scripts.values() if s["channel_id"] == channel_id) \
                >= MAX_PER_CHANNEL:
            raise ApiError(422, f"A channel can have {MAX_PER_CHANNEL} scripts",
                           {"channel_id": f"limit of {MAX_PER_CHANNEL} per channel reached"})

    def _list(self, params: Any, client_id: str) -> dict[str, Any]:
        found = self.mine(client_id)
        channels = params.get("channel_id:in")
        errors = {}
        if channels:
            try:
                wanted = {int(c) for c in channels.split(",")}
            except ValueError:
                errors["channel_id:in"] = "must be a list of integers"
            else:
                found = [s for s in found if s["channel_id"] in wanted]
        sort, direction = params.get("sort"), params.get("direction", "asc")
        if sort is not None and sort not in SORTS:
            errors["sort"] = f"must be one of {', '.join(SORTS)}"
        if direction not in ("asc", "desc"):
            errors["direction"] = "must be asc or desc"
        try:
            page = max(int(params.get("page") or 1), 1)
            limit = min(max(int(params.get("limit") or 50), 1), 250)
        except ValueError:
            errors["page"] = "page and limit must be integers"
            page, limit = 1, 50
        if errors:
            raise ApiError(422, "Invalid query parameters", errors)
        if sort:
            found.sort(key=lambda s: str(s.get(sort) or ""), reverse=direction == "desc")
        data = found[(page - 1) * limit:page * limit]
        pages = max(1, -(-len(found) // limit))
        return {"data": [shown(s) for s in data], "meta": {"pagination": {
            "total": len(found), "count": len(data), "per_page": limit, "current_page": page,
            "total_pages": pages, "links": {"current": f"?page={page}&limit={limit}"}}}}


def shown(script: dict[str, Any]) -> dict[str, Any]:
    """A script as the API answers it (``script_Full``: an unset consent category, which the
    enum lacks, left out)."""
    return {k: v for k, v in script.items()
            if not (k == "consent_category" and v not in ENUMS["consent_category"])}


def _body(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError:
        raise ApiError(400, "The request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(422, "The request body must be an object")
    return body


def _check(body: dict[str, Any], granted: frozenset[str], *, creating: bool) -> None:
    """422 with every invalid field (403 for a visibility the scopes do not allow)."""
    errors: dict[str, str] = {}
    if creating and "name" not in body:
        errors["name"] = "name is required"
    for name in STRINGS:
        if name in body and not isinstance(body[name], str):
            errors[name] = f"{name} must be a string"
    given = body.get("name")
    if isinstance(given, str) and not 1 <= len(given) <= 255:
        errors["name"] = "name must be 1 to 255 characters"
    for field in BOOLEANS:
        if field in body and not isinstance(body[field], bool):
            errors[field] = f"{field} must be a boolean"
    for field, values in ENUMS.items():
        if field in body and body[field] not in values and not (
                field == "consent_category" and body[field] == "unknown" and not creating):
            errors[field] = f"{field} must be one of {', '.join(values)}"
    channel = body.get("channel_id", 1)
    if isinstance(channel, bool) or not isinstance(channel, int) or channel < 1:
        errors["channel_id"] = "channel_id must be an integer of at least 1"
    hashes = body.get("integrity_hashes", [])
    if not isinstance(hashes, list) or len(hashes) > 5 or not all(
            isinstance(h, str) for h in hashes):
        errors["integrity_hashes"] = "integrity_hashes must be at most 5 strings"
    errors.update(_kind_errors(body))
    if errors:
        raise ApiError(422, "Invalid script", errors)
    if body.get("visibility") in ("all_pages", "checkout", "order_confirmation") and \
            CHECKOUT_SCOPE not in granted:
        raise ApiError(403, f"visibility {body['visibility']} needs the Checkout Content "
                            f"scope ({CHECKOUT_SCOPE})")


def _kind_errors(body: dict[str, Any]) -> dict[str, str]:
    kind = body.get("kind") or ("src" if "src" in body else
                                "script_tag" if "html" in body else None)
    if kind is None:
        return {"kind": "kind is required: src (with src) or script_tag (with html)"}
    if kind == "src":
        if not isinstance(body.get("src"), str) or not body["src"]:
            return {"src": "src is required when kind is src"}
        if body.get("html"):
            return {"html": "html must not be given when kind is src"}
        return {}
    if kind != "script_tag":
        return {}  # refused by the enum already
    html = body.get("html")
    if not isinstance(html, str) or not html:
        return {"html": "html is required when kind is script_tag"}
    if body.get("src"):
        return {"src": "src must not be given when kind is script_tag"}
    if len(html) > MAX_HTML:
        return {"html": f"html must be at most {MAX_HTML} characters"}
    if not 1 <= len(_SCRIPT_TAG.findall(html)) <= MAX_SCRIPT_TAGS:
        return {"html": f"html must hold 1 to {MAX_SCRIPT_TAGS} script tags"}
    if body.get("load_method", "default") != "default":
        return {"load_method": "load_method must be default when kind is script_tag"}
    return {}
