"""Webhook subscriptions: what a config asks for, and making an account's hooks match it.

The platform's subscriptions API is its plugin's (:class:`Subscriptions`); what its payloads
hold and where it delivers are its spec's (``webhooks``). ``register`` is idempotent: for each
account it lists the hooks (only the calling API account's are
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

from framework.declarative.spec import Webhooks
from framework.errors import ConfigError, ConnectorError

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
        ConfigError: a scope the connector does not know.
    """
    spec = declared(source)
    scopes: list[str] = []
    for index, row in enumerate(table_of(source, config)):
        scope = row["scope"]
        real = spec.aliases.get(scope, [scope])
        if scope in spec.aliases:
            log.info("webhooks[%d]: %s is not a %s scope; subscribing to %s instead",
                     index, scope, spec.platform, " and ".join(real))
        for name in real:
            if name not in spec.scopes:
                valid = ", ".join([*spec.scopes, *spec.aliases])
                raise ConfigError(f"webhooks[{index}].scope: unknown scope {scope!r}; "
                                  f"valid: {valid}")
            if name not in scopes:
                scopes.append(name)
    return scopes


def table_of(source: Any, config: dict[str, Any]) -> list[dict[str, Any]]:
    """The config's ``webhooks`` table, or the default its spec documents."""
    field = source.loaded.model.client.config.webhooks
    default = source.loaded.model.connectionSpecification["properties"][field]
    return list(config.get(field) or default.get("default", []))


def check_destination(url: str, spec: Webhooks | None = None) -> str:
    """The receiver's URL as the platform (``spec``) requires it: https, on one of its
    ``ports`` when it names them (plain http only to a loopback address, which only a sandbox
    delivers to)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "http" and LOOPBACK.match(host):
        return url
    if parts.scheme != "https" or not host:
        raise ConfigError(f"--url {url!r}: webhook destinations must be https:// URLs (plain "
                          "http:// only to a loopback address, for the sandbox)")
    if spec is not None and spec.ports and (parts.port or 443) not in spec.ports:
        where = " or ".join(map(str, spec.ports))
        raise ConfigError(f"--url {url!r}: {spec.platform} delivers webhooks to port {where} "
                          f"only; put the receiver behind a TLS proxy on {where}")
    return url


#: A secret travels in an HTTP header, whose value cannot begin or end with whitespace (parsers
#: drop it) and should be visible ASCII: anything else would register and then never match.
_SECRET = re.compile(r"[\x21-\x7e]{16,}")


def secret_of(account: dict[str, Any], who: str = "", field: str = "webhook_secret") -> str:
    """The webhook secret of one account's config (``who`` names it in errors, e.g. "store
    abc123"), in config ``field``: its own (an accounts list entry's) or the shared one.
    Whitespace around it is dropped (a file-mounted secret ends with a newline).

    Raises:
        ConfigError: none set, or one that no HTTP header can carry intact (what is wrong is
            said without the value).
    """
    text = str(account.get(field) or "").strip()
    of_store = f" for {who}" if who else ""
    # The errors name the field the connector's spec verifies with (``client.config.
    # webhook_secret``). Only the framework's own shared secret is one to make up; another
    # field (an app's client secret) is issued by the platform.
    make = ("make one with python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            if field == "webhook_secret" else "copy it from the platform, where it was issued")
    if not text:
        raise ConfigError(f"{field} is not set{of_store}: add a secret of at least 16 "
                          f"characters (e.g. {field}: ${{TAJO_{field.upper()}}}); {make}")
    if not _SECRET.fullmatch(text):
        raise ConfigError(f"{field}{of_store} must be at least 16 visible ASCII "
                          "characters (letters, digits, punctuation; no spaces or control "
                          f"characters); this one has {len(text)} characters{_flaw(text)}; "
                          f"{make}")
    return text


def secrets_of(source: Any, config: dict[str, Any]) -> dict[str, str]:
    """Every account's webhook secret, by account key."""
    noun = declared(source).account
    found = {}
    for account in source.accounts(config):
        key = source.account_key(account)
        found[key] = secret_of(account, f"{noun} {key}" if key else "",
                               source.loaded.model.client.config.webhook_secret)
    return found


def _flaw(text: str) -> str:
    """What keeps a secret out of a header, without showing it."""
    if any(c.isspace() for c in text):
        return ", with whitespace inside"
    if not text.isascii():
        return ", not all ASCII"
    if any(not c.isprintable() for c in text):
        return ", with control characters"
    return ""


class Subscriptions:
    """A platform's webhook subscriptions API, implemented by its plugin (e.g.
    ``connectors/NAME/webhooks.py``) and given to its source (``HttpSource(...,
    subscriptions=...)``). The framework plans and applies changes over hooks in one shape:
    ``{"id", "scope", "destination", "is_active", "headers"}``.
    """

    def __init__(self, spec: Webhooks) -> None:
        self.spec = spec

    def list(self, client: Any) -> list[dict[str, Any]]:
        """Every hook the API account sees."""
        raise NotImplementedError

    def create(self, client: Any, scope: str, url: str, headers: dict[str, str]
               ) -> dict[str, Any] | None:
        raise NotImplementedError

    def update(self, client: Any, hook: dict[str, Any], url: str, headers: dict[str, str]
               ) -> dict[str, Any] | None:
        """Point ``hook`` at ``url`` with ``headers``, active."""
        raise NotImplementedError

    def delete(self, client: Any, hook: dict[str, Any]) -> None:
        raise NotImplementedError

    def detail(self, answer: Any) -> str:
        """What an error answer says (the platform's error fields), or "" for nothing."""
        return ""

    def call(self, client: Any, method: str, path: str, body: dict[str, Any] | None,
             scope: str) -> Any:
        """One request of the API; an error answer is a ConnectorError with its detail (a
        refused limit: the fix for it)."""
        status, answer = client.send(method, path, json=body, idempotent=method != "POST")
        if status >= 400:
            detail = self.detail(answer)
            if status == 422 and "limit" in detail.lower():
                raise ConnectorError(LIMIT_FIX.format(limit=detail), "config_error")
            raise ConnectorError(f"{method} {path} for {scope} failed with HTTP {status}: "
                                 f"{detail or answer}", "config_error" if status < 500 else
                                 "system_error")
        return answer


def api_of(source: Any) -> Subscriptions:
    """The subscriptions API of a source's platform (an error if its plugin has none)."""
    api = getattr(source, "subscriptions", None)
    if api is None:
        raise ConfigError(f"connector {source.name!r} has no webhook subscriptions API")
    return api


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


def register(client: Any, api: Subscriptions, wanted: list[str], url: str, secret: str
             ) -> Iterator[dict[str, Any]]:
    """Make one account's hooks match ``wanted``; yields one row per hook and what was done."""
    spec = api.spec
    existing = api.list(client)
    actions = plan(existing, wanted, url, spec, secret)
    creates = [scope for action, scope, _ in actions if action == "created"]
    removes = sum(1 for action, _, _ in actions if action == "removed")
    if len(existing) - removes + len(creates) > spec.max_total:
        raise ConnectorError(LIMIT_FIX.format(limit=f"{spec.max_total} hooks per "
                                                    f"{spec.account}"), "config_error")
    for scope in creates:
        if sum(1 for h in existing if h["scope"] == scope) >= spec.max_per_scope:
            raise ConnectorError(LIMIT_FIX.format(limit=f"{spec.max_per_scope} hooks for "
                                                        f"{scope}"), "config_error")
    headers = {spec.secret_header: secret}
    for action, scope, hook in sorted(actions, key=lambda a: a[0] != "removed"):
        if action == "removed":
            assert hook is not None
            api.delete(client, hook)
        elif action == "created":
            hook = api.create(client, scope, url, headers)
        elif action in ("updated", "reactivated"):
            assert hook is not None
            hook = api.update(client, hook, url, headers) or hook
        assert hook is not None
        yield {"scope": scope, "action": action, "id": hook.get("id"),
               "destination": url if action != "removed" else hook.get("destination"),
               "is_active": action != "removed"}


def shown(hook: dict[str, Any]) -> dict[str, Any]:
    """A hook as printed: header values hidden (they hold secrets)."""
    return {"id": hook.get("id"), "scope": hook.get("scope"),
            "destination": hook.get("destination"), "is_active": hook.get("is_active"),
            "headers": sorted(hook.get("headers") or {})}
