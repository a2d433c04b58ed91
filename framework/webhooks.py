"""Webhook subscriptions: what a config asks for, and making a store's hooks match it.

``register`` is idempotent: for each store it lists the hooks (only the calling API account's are
listed), keeps one hook of ours per configured scope, creates what is missing, updates what
drifted (destination, secret, an inactive hook is reactivated) and removes hooks of ours whose
scope is no longer configured. "Ours" means: the hook sends our secret header. Hooks of other
apps are never touched. Limits are checked before anything is created.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from framework.errors import ConfigError, ConnectorError
from framework.spec import Webhooks

log = logging.getLogger("tajo.webhooks")

LOOPBACK = re.compile(r"^(localhost|127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1)$")
LIMIT_FIX = ("the store has reached its webhook limit ({limit}); list them with `runner webhooks "
             "list` and delete hooks that are no longer used")


def declared(source: Any) -> Webhooks:
    """The webhooks section of a source's spec (an error if the connector has none)."""
    hooks = source.loaded.model.webhooks
    if hooks is None:
        raise ConfigError(f"connector {source.name!r} declares no webhooks")
    return hooks


def subscriptions(source: Any, config: dict[str, Any]) -> list[str]:
    """The platform scopes the config's ``webhooks`` table asks for, aliases expanded.

    Raises:
        ConfigError: a scope the connector does not know, or an event name that is not the
            one this connector sends for the scope.
    """
    spec = declared(source)
    table = config.get("webhooks") or source.loaded.model.connectionSpecification[
        "properties"]["webhooks"].get("default", [])
    scopes: list[str] = []
    for index, row in enumerate(table):
        scope, destination = row["scope"], row.get("destination")
        real = spec.aliases.get(scope, [scope])
        if scope in spec.aliases:
            log.info("webhooks[%d]: %s is not a BigCommerce scope; subscribing to %s instead",
                     index, scope, " and ".join(real))
        for name in real:
            if name not in spec.scopes:
                valid = ", ".join([*spec.scopes, *spec.aliases])
                raise ConfigError(f"webhooks[{index}].scope: unknown scope {scope!r}; "
                                  f"valid: {valid}")
            event = spec.scopes[name].event
            if destination and destination != event:
                raise ConfigError(f"webhooks[{index}].destination: {scope} is sent to Brevo as "
                                  f"{event!r}, not {destination!r}; write destination: {event}")
            if name not in scopes:
                scopes.append(name)
    return scopes


def check_destination(url: str) -> str:
    """The receiver's URL as BigCommerce requires it: https on port 443 (plain http only to a
    loopback address, which only the sandbox delivers to)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "http" and LOOPBACK.match(host):
        return url
    if parts.scheme != "https" or not host:
        raise ConfigError(f"--url {url!r}: webhook destinations must be https:// URLs (plain "
                          "http:// only to a loopback address, for the sandbox)")
    if parts.port not in (None, 443):
        raise ConfigError(f"--url {url!r}: BigCommerce delivers webhooks to port 443 only; "
                          "put the receiver behind a TLS proxy on 443")
    return url


#: A secret travels in an HTTP header, whose value cannot begin or end with whitespace (parsers
#: drop it) and should be visible ASCII: anything else would register and then never match.
_SECRET = re.compile(r"[\x21-\x7e]{16,}")


def secret_of(account: dict[str, Any]) -> str:
    """The webhook secret of one store's config: its own (``stores[].webhook_secret``) or the
    shared one. Whitespace around it is dropped (a file-mounted secret ends with a newline).

    Raises:
        ConfigError: none set, or one that no HTTP header can carry intact (what is wrong is
            said without the value).
    """
    text = str(account.get("webhook_secret") or "").strip()
    store = account.get("store_hash")
    of_store = f" for store {store}" if store else ""
    make = "make one with python -c 'import secrets; print(secrets.token_urlsafe(32))'"
    if not text:
        raise ConfigError(f"webhook_secret is not set{of_store}: add a secret of at least 16 "
                          f"characters (e.g. webhook_secret: ${{TAJO_WEBHOOK_SECRET}}); {make}")
    if not _SECRET.fullmatch(text):
        raise ConfigError(f"webhook_secret{of_store} must be at least 16 visible ASCII "
                          "characters (letters, digits, punctuation; no spaces or control "
                          f"characters); this one has {len(text)} characters{_flaw(text)}; "
                          f"{make}")
    return text


def _flaw(text: str) -> str:
    """What keeps a secret out of a header, without showing it."""
    if any(c.isspace() for c in text):
        return ", with whitespace inside"
    if not text.isascii():
        return ", not all ASCII"
    if any(not c.isprintable() for c in text):
        return ", with control characters"
    return ""


def list_hooks(client: Any, spec: Webhooks) -> list[dict[str, Any]]:
    """Every hook the API account sees, page after page."""
    hooks: list[dict[str, Any]] = []
    page = 1
    while True:
        body = client.get(spec.path, {"page": page, "limit": 250}) or {}
        hooks.extend(body.get("data") or [])
        pagination = (body.get("meta") or {}).get("pagination") or {}
        if page >= int(pagination.get("total_pages") or 1):
            return hooks
        page += 1


def _ours(hook: dict[str, Any], header: str) -> bool:
    return header.lower() in {k.lower() for k in (hook.get("headers") or {})}


def _secret_matches(hook: dict[str, Any], header: str, secret: str) -> bool:
    headers = {k.lower(): v for k, v in (hook.get("headers") or {}).items()}
    return headers.get(header.lower()) == secret


def plan(existing: list[dict[str, Any]], wanted: list[str], url: str, spec: Webhooks,
         secret: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    """What to do: (action, scope, hook) with action created, updated, reactivated,
    unchanged or removed; ``hook`` is the existing one (None for created)."""
    header = spec.secret_header
    ours: dict[str, list[dict[str, Any]]] = {}
    for hook in existing:
        if _ours(hook, header):
            ours.setdefault(hook["scope"], []).append(hook)
    actions: list[tuple[str, str, dict[str, Any] | None]] = []
    for scope in wanted:
        mine = sorted(ours.pop(scope, []), key=lambda h: (h.get("destination") != url, h["id"]))
        if not mine:
            actions.append(("created", scope, None))
            continue
        keep, extra = mine[0], mine[1:]
        actions.extend(("removed", scope, h) for h in extra)
        if not keep.get("is_active", True):
            actions.append(("reactivated", scope, keep))
        elif keep.get("destination") != url or not _secret_matches(keep, header, secret):
            actions.append(("updated", scope, keep))
        else:
            actions.append(("unchanged", scope, keep))
    for scope, hooks in ours.items():  # no longer configured
        actions.extend(("removed", scope, h) for h in hooks)
    return actions


def register(client: Any, spec: Webhooks, wanted: list[str], url: str, secret: str
             ) -> Iterator[dict[str, Any]]:
    """Make one store's hooks match ``wanted``; yields one row per hook and what was done."""
    existing = list_hooks(client, spec)
    actions = plan(existing, wanted, url, spec, secret)
    creates = [scope for action, scope, _ in actions if action == "created"]
    removes = sum(1 for action, _, _ in actions if action == "removed")
    if len(existing) - removes + len(creates) > spec.max_total:
        raise ConnectorError(LIMIT_FIX.format(limit=f"{spec.max_total} hooks per store"),
                             "config_error")
    for scope in creates:
        if sum(1 for h in existing if h["scope"] == scope) >= spec.max_per_scope:
            raise ConnectorError(LIMIT_FIX.format(limit=f"{spec.max_per_scope} hooks for "
                                                        f"{scope}"), "config_error")
    body = {"destination": url, "is_active": True, "headers": {spec.secret_header: secret}}
    for action, scope, hook in sorted(actions, key=lambda a: a[0] != "removed"):
        if action == "removed":
            assert hook is not None
            _call(client, "DELETE", f"{spec.path}/{hook['id']}", None, scope)
        elif action == "created":
            hook = _call(client, "POST", spec.path, {"scope": scope, **body}, scope)
        elif action in ("updated", "reactivated"):
            assert hook is not None
            hook = _call(client, "PUT", f"{spec.path}/{hook['id']}", body, scope) or hook
        assert hook is not None
        yield {"scope": scope, "action": action, "id": hook.get("id"),
               "destination": url if action != "removed" else hook.get("destination"),
               "is_active": action != "removed"}


def _call(client: Any, method: str, path: str, body: dict[str, Any] | None, scope: str
          ) -> dict[str, Any] | None:
    status, answer = client.send(method, path, json=body, idempotent=method != "POST")
    if status >= 400:
        detail = ""
        if isinstance(answer, dict):
            detail = answer.get("title") or ""
            errors = answer.get("errors")
            if isinstance(errors, dict) and errors:
                detail += " (" + "; ".join(f"{k}: {v}" for k, v in errors.items()) + ")"
        if status == 422 and "limit" in detail.lower():
            raise ConnectorError(LIMIT_FIX.format(limit=detail), "config_error")
        raise ConnectorError(f"{method} {path} for {scope} failed with HTTP {status}: "
                             f"{detail or answer}", "config_error" if status < 500 else
                             "system_error")
    return (answer or {}).get("data") if isinstance(answer, dict) else None


def shown(hook: dict[str, Any]) -> dict[str, Any]:
    """A hook as printed: header values hidden (they hold secrets)."""
    return {"id": hook.get("id"), "scope": hook.get("scope"),
            "destination": hook.get("destination"), "is_active": hook.get("is_active"),
            "headers": sorted(hook.get("headers") or {})}
