"""The Shopify source: declared in specs/shopify.json (GraphQL streams, queries in
``queries/``), run by the framework's engine; the package, ``connectors.shopify``, hands out
this module's names.

The Python here is what JSON cannot say:

- the shop's address: Shopify itself (``https://{shop}.myshopify.com``) unless ``api_url``
  names a local emulator, which serves every shop under ``/{shop}/``;
- the API version: every query is validated against the configured version's published
  schema before the first request, so a version that lacks a field fails at once with the
  field, the stream and the versions that have it (not at the 50th page);
- ``check``: the token works, the app's access scopes cover what the queries need (worked out
  from the schema's scope data, ``queries_check.needed_scopes``), and ``read_all_orders`` is
  granted when orders older than 60 days are wanted;
- three mapping functions (a line's removed quantity, an order's discount codes, a checkout's
  state) and Shopify's global ids made numbers before mapping (``numeric_ids``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from connectors.shopify import SPEC_FILE, queries_check, schema
from connectors.shopify.sandbox import sandbox_command
from connectors.shopify.webhooks import ShopifyHooks, ShopifyVerifier, signs_with
from framework.declarative.formats import parse_datetime
from framework.declarative.graphql import query_text
from framework.declarative.mapping import Mapping, Scope
from framework.engine.graphql import api_for
from framework.engine.http import HttpClient
from framework.engine.source import HttpSource
from framework.errors import ConfigError, ConnectorError
from framework.plugins.airbyte import airbyte_cli
from framework.protocol import messages as p

SHOP_SUFFIX = ".myshopify.com"
#: Without ``read_all_orders`` Shopify serves the orders of the last 60 days only.
RECENT_ORDERS = timedelta(days=60)
ALL_ORDERS = "read_all_orders"
_GID = re.compile(r"^gid://shopify/[A-Za-z]+/(\d+)")


def shop_name(value: str) -> str:
    """``acme`` of ``acme`` or ``acme.myshopify.com`` (the config takes either)."""
    return value.strip().lower().removesuffix(SHOP_SUFFIX)


def numeric_id(value: Any) -> Any:
    """Shopify's number of a global id (``gid://shopify/Order/123`` -> ``"123"``; an
    inventory level's ``...InventoryLevel/7?inventory_item_id=9`` -> ``"7"``); anything else
    as it is."""
    if isinstance(value, str) and (found := _GID.match(value)):
        return found.group(1)
    return value


def numeric_ids(record: Any) -> Any:
    """A copy of a record whose ``id`` values are Shopify's numbers, not global ids: the
    model's ids are the ones a webhook's payload and the shop's admin use."""
    if isinstance(record, dict):
        return {k: numeric_id(v) if k == "id" else numeric_ids(v) for k, v in record.items()}
    if isinstance(record, list):
        return [numeric_ids(v) for v in record]
    return record


def removed_quantity(line: dict[str, Any], scope: Scope) -> float | None:
    """Units of a line refunded or removed since the order was placed."""
    ordered, current = line.get("quantity"), line.get("currentQuantity")
    if not isinstance(ordered, int | float) or not isinstance(current, int | float):
        return None
    return ordered - current


def discount_codes(order: dict[str, Any], scope: Scope) -> list[dict[str, Any]]:
    """An order's discount codes (a list of text) as items with a ``code``."""
    return [{"code": code} for code in order.get("discountCodes") or [] if code]


def checkout_state(checkout: dict[str, Any], scope: Scope) -> str:
    """An abandoned checkout is recovered once it is completed (it became an order)."""
    return "recovered" if checkout.get("completedAt") else "abandoned"


COMMERCE_FUNCTIONS = {"removed_quantity": removed_quantity, "discount_codes": discount_codes,
                      "checkout_state": checkout_state}
#: Shopify records as the commerce model (specs/schemas/commerce/v1).
COMMERCE = Mapping(Path(__file__).with_name("commerce.json"), functions=COMMERCE_FUNCTIONS)


def _numbered(hook: Callable[..., list[dict[str, Any]]]) -> Callable[..., list[dict[str, Any]]]:
    def mapped(record: dict[str, Any], fetch: Callable[..., Any]) -> list[dict[str, Any]]:
        return hook(numeric_ids(record), fetch)
    return mapped


def account_erasure(record: dict[str, Any], fetch: Callable[..., Any]) -> list[dict[str, Any]]:
    """A shop/redact request (``shop_erasures``) as the model's erasure of the whole account:
    a destination forgets what it holds of the shop."""
    shop = str(record.get("shop") or "")
    if not shop:
        return []
    return [{"platform": COMMERCE.platform, "account": shop,
             "id": str(record.get("shop_id") or shop), "deleted": False, "subject": "account",
             "email": None, "phone": None, "updated_at": None}]


def commerce_hooks() -> dict[str, Any]:
    """The model streams' hooks: each kind's mapping, of the record with numeric ids; and
    the erasure of an account, which no API record maps from."""
    return {**{name: _numbered(hook) for name, hook in COMMERCE.hooks("commerce").items()},
            "commerce.account_erasure": account_erasure}


class ShopifySource(HttpSource):
    """The declared GraphQL streams, with Shopify's address, version and scope checks."""

    #: How the webhook receiver verifies and reads Shopify's deliveries.
    verifier = ShopifyVerifier

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        client = self.loaded.model.client
        if isinstance(self.subscriptions, ShopifyHooks) and client and client.graphql:
            self.subscriptions.graphql = client.graphql

    def accounts(self, config: dict[str, Any]) -> list[dict[str, Any]]:
        """One config per shop, its name without ``.myshopify.com`` (the key of its state,
        its records and its sandbox path), the API version filled in."""
        version = config.get("api_version") or self.default_version
        return [{**account, "shop": shop_name(str(account.get("shop", ""))),
                 "api_version": account.get("api_version") or version,
                 "api_url": account.get("api_url") or ""}
                for account in super().accounts(config)]

    @property
    def default_version(self) -> str:
        spec = self.loaded.model.connectionSpecification
        return str(spec["properties"]["api_version"]["default"])

    def client(self, config: dict[str, Any], resets: list[int] | None = None) -> HttpClient:
        """The shop's client: Shopify's own address unless ``api_url`` names another."""
        client = super().client(config, resets)
        if not config.get("api_url"):
            client.base_url = (f"https://{config['shop']}{SHOP_SUFFIX}/admin/api/"
                               f"{config['api_version']}")
        signs_with(client, config.get("client_secret"))  # what its subscriptions "send"
        return client

    # --- the API version -------------------------------------------------------------------

    def query_files(self) -> dict[str, list[str]]:
        """Each GraphQL stream's query files (its page query and nested queries)."""
        return {s.name: s.request.files() for s in self.loaded.model.streams if s.request}

    def version_problem(self, version: str) -> str | None:
        """Why ``version`` cannot serve every stream's queries (None: it can)."""
        files = {name for names in self.query_files().values() for name in names}

        def text(name: str) -> str:
            return query_text(self.spec_file, name)

        errors = [f"{Path(name.rpartition(':')[2]).name}: {message}" for name in sorted(files)
                  for message in schema.validate(version, text(name))]
        if not errors:
            return None
        fits = ", ".join(queries_check.versions_with(sorted(files), text)) or "none pinned"
        shown = "; ".join(errors[:3])
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        return (f"Shopify Admin API version {version} lacks what the source's queries need: "
                f"{shown}{more}; set api_version to one that has it ({fits})")

    def check_version(self, config: dict[str, Any]) -> None:
        versions = {a["api_version"] for a in self.accounts(config)}
        for version in sorted(versions):
            problem = self.version_problem(version)
            if problem:
                raise ConfigError(problem)

    def read(self, config: dict[str, Any], catalog: p.ConfiguredAirbyteCatalog,
             state: dict[str, dict[str, Any]]) -> Iterator[bytes]:
        self.check_version(config)
        yield from super().read(config, catalog, state)

    # --- check ----------------------------------------------------------------------------

    def needed_scopes(self, version: str) -> dict[str, list[tuple[str, ...]]]:
        """The access scopes each GraphQL stream's queries need, by stream."""
        return {stream: sorted({need for name in files for need in queries_check.needed_scopes(
                    version, query_text(self.spec_file, name))})
                for stream, files in self.query_files().items()}

    def check(self, config: dict[str, Any]) -> p.AirbyteConnectionStatus:
        """The API version takes every query; then, for every shop, the token works, its
        access scopes cover every stream, ``read_all_orders`` is granted when orders older
        than 60 days are wanted, and (the engine's check) each stream's query reads a
        record."""
        accounts = self.accounts(config)
        try:
            self.check_version(config)
        except ConnectorError as exc:
            return p.AirbyteConnectionStatus(status="FAILED", message=exc.message)
        for account in accounts:
            try:
                problem = self._check_shop(account)
            except ConnectorError as exc:
                problem = exc.message
            if problem:
                prefix = f"{account['shop']}: " if len(accounts) > 1 else ""
                return p.AirbyteConnectionStatus(status="FAILED", message=prefix + problem)
        return super().check(config)  # each stream's query, for one record

    def _check_shop(self, account: dict[str, Any]) -> str | None:
        client = self.client(account)
        try:
            handles = self.granted_scopes(client)
        finally:
            client.close()
        version = account["api_version"]
        missing: dict[str, list[str]] = {}
        for stream, needs in self.needed_scopes(version).items():
            for need in queries_check.missing_scopes(needs, handles):
                missing.setdefault(need, []).append(stream)
        if missing:
            shown = "; ".join(f"{need} (for {', '.join(streams)})"
                              for need, streams in sorted(missing.items()))
            return (f"the app lacks access scopes the streams need: {shown}; add them to the "
                    "app's scopes (its configuration's access_scopes) and have the merchant "
                    "approve the update")
        return all_orders_problem(account.get("start_date"), handles, "orders" in
                                  self.query_files())

    def granted_scopes(self, client: HttpClient) -> set[str]:
        """The app's access scopes in the shop (``currentAppInstallation``): one query,
        which also proves the token."""
        spec = self.loaded.model.client
        assert spec is not None
        api = api_for(client, spec.graphql)
        data = api.run(queries_check.query("app_scopes"), {}, what="the check of access scopes")
        scopes = ((data or {}).get("currentAppInstallation") or {}).get("accessScopes") or []
        return {str(s.get("handle")) for s in scopes if isinstance(s, dict)}


def all_orders_problem(start_date: str | None, handles: set[str], reads_orders: bool,
                       now: datetime | None = None) -> str | None:
    """What is wrong when orders older than 60 days are wanted without ``read_all_orders``
    (None: nothing): Shopify then serves the last 60 days only, without an error."""
    if not reads_orders or queries_check.granted(ALL_ORDERS, handles):
        return None
    now = now or datetime.now(UTC)
    horizon = now - RECENT_ORDERS
    if start_date and parse_datetime(start_date) >= horizon:
        return None
    wanted = (f"start_date {start_date} is before" if start_date
              else "no start_date is set, so every order is wanted, also those before")
    return (f"orders older than 60 days are wanted ({wanted} {horizon:%Y-%m-%d}) but the app "
            f"lacks the {ALL_ORDERS} scope, without which Shopify serves only the last 60 "
            f"days of orders; request {ALL_ORDERS} for the app (Partner Dashboard: API "
            "access) and add it to its scopes, or set start_date within the last 60 days")


connector = ShopifySource(SPEC_FILE, sandbox=sandbox_command, hooks=commerce_hooks(),
                          subscriptions=ShopifyHooks)

#: ``source-shopify``: the Airbyte CLI (spec, check, discover, read).
main = airbyte_cli(connector)
