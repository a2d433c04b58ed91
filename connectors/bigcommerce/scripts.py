"""The storefront script on a BigCommerce store: its Scripts API (``/v3/content/scripts``),
the script itself (``storefront.js``, inlined with its settings) and the check of the scope
the API needs.

The script is installed inline (``kind: script_tag``): the page needs no second request, and
the receiver need not be up for pages to load. BigCommerce renders it on storefront pages
(``visibility: storefront``: not checkout, which needs the Checkout Content scope), in the
footer, only once the shopper has consented to ``consent_category`` when the store shows its
cookie-consent banner. ``auto_uninstall`` lets BigCommerce remove it with the app.

Ours is found again by its name among the API account's scripts (the API lists no other
account's), so installing twice changes nothing and other apps' scripts are never touched.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import orjson

from framework.errors import ConnectorError

PATH = "/v3/content/scripts"
NAME = "Tajo storefront events"
SCRIPT = Path(__file__).with_name("storefront.js")
MAX_HTML = 65536  # script_Base.html maxLength
#: The OAuth scope the Scripts API needs (scripts.v3.yml: Content, modify).
CONTENT_SCOPE = "store_v2_content"
CONTENT_FIX = ("the storefront script cannot be installed: the Scripts API (/v3/content/scripts)"
               " needs the OAuth scope store_v2_content (Content: modify), which this API "
               "account lacks; set Content to modify on the API account (Settings > API > "
               "Store-level API accounts), then run `runner storefront install`")
#: The events path of the receiver, under the URL given to ``install``.
ENDPOINT = "/storefront/bigcommerce"


def script_html(endpoint: str, store_hash: str, client_id: str | None) -> str:
    """The ``html`` of our script: storefront.js called with its settings."""
    settings = orjson.dumps({"endpoint": endpoint, "store": store_hash,
                             "clientId": client_id or ""}).decode()
    # "</" cannot end the inline script early: JSON may escape "/" as "\/".
    settings = settings.replace("</", "<\\/")
    html = f"<script>\n{SCRIPT.read_text().strip()}({settings});\n</script>"
    if len(html) > MAX_HTML:
        raise ConnectorError(f"the storefront script is {len(html)} characters; the Scripts "
                             f"API takes at most {MAX_HTML}", "system_error")
    return html


def wanted(endpoint: str, store_hash: str, client_id: str | None,
           consent_category: str) -> dict[str, Any]:
    """The body of our script (``script_Post``)."""
    html = script_html(endpoint, store_hash, client_id)
    version = hashlib.sha256(html.encode()).hexdigest()[:12]
    return {"name": NAME, "kind": "script_tag", "html": html, "load_method": "default",
            "location": "footer", "visibility": "storefront", "auto_uninstall": True,
            "enabled": True, "consent_category": consent_category, "channel_id": 1,
            "description": f"Sends product views, carts and checkouts to Tajo ({version})"}


def drifted(script: dict[str, Any], body: dict[str, Any]) -> list[str]:
    """The fields of an installed script that differ from ``body``."""
    return [k for k, v in body.items() if k != "name" and script.get(k) != v]


def _error(method: str, status: int, answer: Any) -> ConnectorError:
    detail = ""
    if isinstance(answer, dict):
        detail = str(answer.get("title") or "")
        errors = answer.get("errors")
        if isinstance(errors, dict) and errors:
            detail += " (" + "; ".join(f"{k}: {v}" for k, v in errors.items()) + ")"
    if status == 403:
        return ConnectorError(CONTENT_FIX, "config_error")
    return ConnectorError(f"{method} {PATH} failed with HTTP {status}: {detail or answer}",
                          "config_error" if status < 500 else "system_error")


def call(client: Any, method: str, path: str, body: dict[str, Any] | None = None,
         params: dict[str, Any] | None = None) -> Any:
    """One Scripts API request; an error answer is a ConnectorError with the fix."""
    try:
        status, answer = client.send(method, path, params=params, json=body,
                                     scope=f"{CONTENT_SCOPE} (modify)",
                                     idempotent=method != "POST")
    except ConnectorError as exc:
        if exc.failure_type == "config_error" and "403" in exc.message:
            raise ConnectorError(CONTENT_FIX, "config_error") from None
        raise
    if status >= 400:
        raise _error(method, status, answer)
    return answer


def listed(client: Any) -> list[dict[str, Any]]:
    """Every script of this API account, page after page."""
    scripts: list[dict[str, Any]] = []
    page = 1
    while True:
        answer = call(client, "GET", PATH, params={"page": page, "limit": 250}) or {}
        scripts.extend(answer.get("data") or [])
        pagination = (answer.get("meta") or {}).get("pagination") or {}
        if page >= int(pagination.get("total_pages") or 1):
            return scripts
        page += 1


def ours(scripts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for s in scripts if s.get("name") == NAME]


#: A script uuid no store has: the check's request changes nothing (404 with the scope, 403
#: without).
PROBE = "00000000-0000-4000-8000-000000000000"


def content_scope_check(account: dict[str, Any], client: Any) -> str | None:
    """Whether the token may install the script: an update of a script that does not exist
    (404 with modify access, 403 without; nothing changes), as the recovery links' check."""
    try:
        client.send("PUT", f"{PATH}/{PROBE}", json={"enabled": True}, scope=CONTENT_SCOPE)
    except ConnectorError as exc:
        if exc.failure_type == "config_error":
            return CONTENT_FIX
        raise
    return None
