"""Field resolution over a shop's records, for graphql-core's ``execute``.

One default resolver serves every field of the schema: it checks the token's access scopes
(Shopify's ``offline_scopes`` data), reads the record's key, follows global ids to the
records they name, pages connections, and, for a field the sandbox does not model, answers a
plausible value rather than an error (see :func:`fallback`). The few fields Shopify computes
(``numberOfOrders``, ``inventoryQuantity``, ``node``...) have their own resolvers in ``SPECIAL``
(the app adds the mutations and app-level fields to it).

Fallbacks for fields not modelled: a nullable field answers null; a non-null list ``[]``; a
non-null connection an empty page; a non-null object an object whose fields fall back in
turn; a non-null enum its ``UNKNOWN``/``OTHER``/``NONE`` value if it has one, else its first;
a non-null scalar 0, false, "" or, for a DateTime, the record's ``createdAt``. So a query the
schema accepts never fails for want of data, and a test of the source can tell modelled data
(real values) from fallbacks (zeros and empties).
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import orjson
from graphql import (
    GraphQLEnumType,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLScalarType,
    GraphQLUnionType,
    get_named_type,
)

from connectors.shopify.sandbox.cost import is_connection
from connectors.shopify.sandbox.data import Shop

MAX_PAGE = 250
RECENT_ORDERS_S = 60 * 86400  # older orders need read_all_orders
ACCESS_DOCS = "https://shopify.dev/api/usage/access-scopes"
#: Root connections over a kind of record.
ROOT_LISTS = {"customers": "Customer", "orders": "Order", "products": "Product",
              "productVariants": "ProductVariant", "collections": "Collection",
              "abandonedCheckouts": "AbandonedCheckout", "locations": "Location",
              "inventoryItems": "InventoryItem"}
ROOT_ONE = {"customer": "Customer", "order": "Order", "product": "Product",
            "productVariant": "ProductVariant", "collection": "Collection",
            "location": "Location", "inventoryItem": "InventoryItem", "refund": "Refund"}
#: ``query:`` filter names and the record keys they compare.
SEARCH_FIELDS = {"updated_at": "updatedAt", "created_at": "createdAt",
                 "processed_at": "processedAt", "email": "email", "status": "status",
                 "financial_status": "displayFinancialStatus", "sku": "sku",
                 "fulfillment_status": "displayFulfillmentStatus", "title": "title",
                 "handle": "handle", "tag": "tags", "customer_id": "customer",
                 "operation_type": "type"}
SORT_FIELDS = {"UPDATED_AT": "updatedAt", "CREATED_AT": "createdAt",
               "PROCESSED_AT": "processedAt", "TITLE": "title", "NAME": "displayName"}
TERM = re.compile(r"""(-?)(\w+):(>=|<=|>|<|=)?('[^']*'|"[^"]*"|\S+)""")


@dataclass
class Context:
    """What a request's resolvers need: the shop, the token's scopes, and the app's state."""

    shop: Shop
    scopes: frozenset[str]
    version: str
    app: Any = None  # the app's ShopState (subscriptions, bulk operations)
    bulk: bool = False  # a bulk query: connections list everything, without ``first``
    base_url: str = ""
    #: The version's scope data (schema.scopes), for records whose type is known late.
    scope_data: dict[tuple[str, str | None], list[str]] = field(default_factory=dict)
    client: str = "sandbox-app"  # the app the token belongs to

    def __post_init__(self) -> None:
        self._granted: dict[tuple[str, ...], bool] = {}
        self._recent = _iso(time.time() - RECENT_ORDERS_S)

    def granted(self, needed: Iterable[str]) -> bool:
        """Whether the token has one of ``needed`` (a write scope includes its read)."""
        key = tuple(needed)
        if key not in self._granted:
            self._granted[key] = any(
                s in self.scopes or s.replace("read_", "write_", 1) in self.scopes for s in key)
        return self._granted[key]

    def visible(self, record: dict[str, Any] | None) -> bool:
        """Orders older than 60 days are hidden from a token without read_all_orders."""
        if record is None or record.get("__typename") != "Order" \
                or "read_all_orders" in self.scopes:
            return True
        return bool(record["createdAt"] >= self._recent)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def access_denied(name: str, needed: list[str]) -> GraphQLError:
    required = " or ".join(f"`{s}` access scope" for s in needed) + "."
    return GraphQLError(f"Access denied for {name} field. Required access: {required}",
                        extensions={"code": "ACCESS_DENIED", "documentation": ACCESS_DOCS,
                                    "requiredAccess": required})


class Resolver:
    """The default field resolver of one schema version (see the module's docstring)."""

    def __init__(self, schema: Any, scopes: dict[tuple[str, str | None], list[str]],
                 special: dict[tuple[str, str], Callable[..., Any]]) -> None:
        self.schema, self.scopes, self.special = schema, scopes, special
        self._plans: dict[tuple[str, str], tuple[Any, Any, list[str], list[str]]] = {}

    def plan(self, parent: Any, name: str) -> tuple[Any, Any, list[str], list[str]]:
        """(field type, named type, scopes the field needs, scopes its type needs), cached."""
        key = (parent.name, name)
        if key not in self._plans:
            type_ = parent.fields[name].type
            named = get_named_type(type_)
            subject = _node_type(named) if is_connection(named) else named
            self._plans[key] = (type_, named, self.scopes.get(key) or [],
                                self.scopes.get((subject.name, None)) or [])
        return self._plans[key]

    def __call__(self, source: Any, info: GraphQLResolveInfo, **args: Any) -> Any:
        ctx: Context = info.context
        type_, named, field_scopes, type_scopes = self.plan(info.parent_type, info.field_name)
        for needed in (field_scopes, type_scopes):
            if needed and not ctx.granted(needed):
                raise access_denied(info.field_name, needed)
        special = self.special.get((info.parent_type.name, info.field_name))
        if special is not None:
            value = special(source, info, **args)
        else:
            value = source.get(info.field_name) if isinstance(source, dict) else None
            if isinstance(named, (GraphQLObjectType, GraphQLInterfaceType, GraphQLUnionType)):
                value = deref(ctx, value)
            if is_connection(named):
                value = paginate(ctx, value or [], args, named, keyed=False)
        if value is None and isinstance(type_, GraphQLNonNull):
            return fallback(type_, source)
        return value


def _node_type(connection: Any) -> Any:
    return get_named_type(connection.fields["nodes"].type) if "nodes" in connection.fields \
        else connection


def deref(ctx: Context, value: Any) -> Any:
    """A global id (or a list of them) in a record's field: the records it names."""
    if isinstance(value, str) and value.startswith("gid://"):
        record = ctx.shop.nodes.get(value)
        return record if ctx.visible(record) else None
    if isinstance(value, list) and value and isinstance(value[0], str):
        records = (ctx.shop.nodes.get(v) for v in value)
        return [r for r in records if r is not None and ctx.visible(r)]
    return value


def type_resolver(value: Any, info: GraphQLResolveInfo, abstract: Any) -> str | None:
    """The concrete type of a record in an interface or union field (its ``__typename``)."""
    name = value.get("__typename") if isinstance(value, dict) else None
    concrete = info.schema.type_map.get(name) if name else None
    if concrete is not None and info.schema.is_sub_type(abstract, concrete):
        return str(name)
    possible = info.schema.get_possible_types(abstract)
    return possible[0].name if possible else None


SCALAR_FALLBACK: dict[str, Any] = {"Int": 0, "Float": 0.0, "Boolean": False, "String": "",
                                   "ID": "gid://shopify/Unknown/0", "UnsignedInt64": "0",
                                   "Decimal": "0.0", "Money": "0.0", "URL": "", "HTML": "",
                                   "JSON": {}, "FormattedString": "", "ARN": "",
                                   "UtcOffset": "+00:00", "Color": "#000000", "BigInt": "0"}


def fallback(type_: Any, source: Any) -> Any:
    """A plausible value for a non-null field the sandbox does not model."""
    inner = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
    if isinstance(inner, GraphQLList):
        return []
    if isinstance(inner, GraphQLEnumType):
        values = list(inner.values)
        return next((v for v in ("UNKNOWN", "OTHER", "NONE") if v in values), values[0])
    if isinstance(inner, GraphQLScalarType):
        if inner.name in ("DateTime", "Date"):
            created = source.get("createdAt") if isinstance(source, dict) else None
            return created or "1970-01-01T00:00:00Z"
        return SCALAR_FALLBACK.get(inner.name, "")
    if is_connection(inner):
        return {"__typename": inner.name, "edges": [], "nodes": [],
                "pageInfo": {"hasNextPage": False, "hasPreviousPage": False,
                             "startCursor": None, "endCursor": None}}
    return {"__typename": inner.name}


# --- connections --------------------------------------------------------------------------

def _id_number(record: dict[str, Any]) -> int:
    tail = str(record.get("id", "")).rsplit("/", 1)[-1].split("?", 1)[0]
    return int(tail) if tail.isdigit() else 0


def sort_key(name: str | None) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """Records in ``sortKey`` order, ties by id. Sort keys the sandbox does not model (such as
    RELEVANCE or TOTAL_PRICE) order by id."""
    column = SORT_FIELDS.get(name or "ID")
    if column is None:
        return lambda r: (_id_number(r),)
    return lambda r: (r.get(column) or "", _id_number(r))


def encode_cursor(key: tuple[Any, ...]) -> str:
    """An opaque cursor, as Shopify's are (base64 of JSON: the last value and id)."""
    return base64.b64encode(orjson.dumps({"last_value": key[0], "last_id": key[-1]})).decode()


def decode_cursor(cursor: str, width: int) -> tuple[Any, ...]:
    try:
        body = orjson.loads(base64.b64decode(cursor, validate=True))
        key = (body["last_value"], body["last_id"])
        # A cursor of another sort order cannot be compared with this one's keys.
        if not isinstance(key[1], int) or (width == 2) != isinstance(key[0], str):
            raise TypeError(cursor)
    except (ValueError, KeyError, TypeError):
        raise GraphQLError(f"Invalid cursor for current pagination sort: {cursor}",
                           extensions={"code": "BAD_REQUEST"}) from None
    return key if width == 2 else (key[1],)


def search(text: str | None) -> Callable[[dict[str, Any]], bool]:
    """Shopify's search syntax, the part sources use: ``field:value`` terms joined by spaces
    or AND, comparisons ``>= <= > <`` on dates and ids, ``-field:`` to negate. Dates compare
    to the second (Shopify keeps them so); a term on a field the sandbox does not know is
    ignored, as Shopify ignores it; OR is not modelled. Parsed once per request: the
    predicate it returns is run on every record."""
    tests: list[Callable[[dict[str, Any]], bool]] = []
    for negate, name, op, raw in TERM.findall(text or ""):
        column, want = SEARCH_FIELDS.get(name), raw.strip("'\"")
        if name == "id":
            number = int(want) if want.isdigit() else -1
            tests.append(_term(_id_number, op or "=", number, bool(negate)))
        elif column == "customer":
            tests.append(_term(_customer_number, op or "=", want, bool(negate)))
        elif column is not None:
            value = _normal_date(want) if column.endswith("At") else want
            tests.append(_term(partial(_read, column), op or "=", value, bool(negate)))
    return lambda record: all(test(record) for test in tests)


def _customer_number(record: dict[str, Any]) -> str:
    return str(record.get("customer") or "").rsplit("/", 1)[-1]


def _read(column: str, record: dict[str, Any]) -> Any:
    return record.get(column)


def _term(read: Callable[[dict[str, Any]], Any], op: str, want: Any, negate: bool
          ) -> Callable[[dict[str, Any]], bool]:
    return lambda record: _compare(read(record), op, want) != negate


def _normal_date(text: str) -> str:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise GraphQLError(f"Invalid date in search query: {text!r}",
                           extensions={"code": "BAD_REQUEST"}) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _compare(have: Any, op: str, want: Any) -> bool:
    if isinstance(have, list):
        return op == "=" and any(str(h).lower() == str(want).lower() for h in have)
    if have is None:
        return False
    if op == "=":
        return str(have).lower() == str(want).lower()
    return {">=": have >= want, "<=": have <= want, ">": have > want, "<": have < want}[op]


def paginate(ctx: Context, items: list[dict[str, Any]], args: dict[str, Any], named: Any,
             *, keyed: bool = True) -> dict[str, Any]:
    """A page of ``items`` per ``first``/``last``/``after``/``before``/``reverse``/``sortKey``/
    ``query``. ``keyed``: a root list, ordered by its sort key; otherwise a record's own list
    (line items, variants), kept in its order."""
    first, last = args.get("first"), args.get("last")
    if not ctx.bulk:
        if first is None and last is None:
            raise GraphQLError("you must provide one of first or last",
                               extensions={"code": "BAD_REQUEST"})
        for name, size in (("first", first), ("last", last)):
            if size is not None and not 0 <= size <= MAX_PAGE:
                raise GraphQLError(f"The `{name}` argument must be between 0 and {MAX_PAGE}; "
                                   f"it was {size}.", extensions={"code": "BAD_REQUEST"})
    wanted = search(args.get("query"))
    items = [r for r in items if ctx.visible(r) and wanted(r)]
    if keyed or args.get("sortKey"):
        order = sort_key(args.get("sortKey"))
        width = 1 if SORT_FIELDS.get(args.get("sortKey") or "ID") is None else 2
        keys = [order(r) for r in items]
    else:
        width, keys = 1, [(n,) for n in range(len(items))]
    pairs = sorted(zip(keys, range(len(items)), strict=True), reverse=bool(args.get("reverse")))
    ahead = (lambda k, c: k < c) if args.get("reverse") else (lambda k, c: k > c)
    before_all = False  # whether records come before the page (hasPreviousPage)
    if args.get("after"):
        mark = decode_cursor(args["after"], width)
        kept = [p for p in pairs if ahead(p[0], mark)]
        before_all, pairs = len(kept) < len(pairs), kept
    if args.get("before"):
        mark = decode_cursor(args["before"], width)
        pairs = [p for p in pairs if ahead(mark, p[0])]
    more_next = more_previous = False
    if not ctx.bulk and first is not None:
        more_next, pairs = len(pairs) > first, pairs[:first]
    if not ctx.bulk and last is not None:
        more_previous, pairs = len(pairs) > last, pairs[len(pairs) - last:] if last else []
    edges = [{"cursor": encode_cursor(key if width == 2 else (None, key[0])),
              "node": items[index]} for key, index in pairs]
    return {"__typename": named.name, "edges": edges, "nodes": [e["node"] for e in edges],
            "pageInfo": {"__typename": "PageInfo", "hasNextPage": more_next,
                         "hasPreviousPage": more_previous or before_all,
                         "startCursor": edges[0]["cursor"] if edges else None,
                         "endCursor": edges[-1]["cursor"] if edges else None}}
