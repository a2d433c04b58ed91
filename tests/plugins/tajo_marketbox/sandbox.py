"""``runner sandbox marketbox``: Marketbox, a made-up shop platform, served on loopback.

Marketbox is shaped unlike BigCommerce on purpose, so that its plugin proves the framework and
the Brevo destination assume neither: ``Authorization: Bearer`` auth, an opaque page cursor
(``paging.next`` sent back as ``cursor``), ``updated_since`` filters, dates in local time with an
offset, money as text, text customer ids, one address per customer, its own status words
(``open``, ``paid``, ``fulfilled``...) and carts that can be listed. ``POST /_sandbox/change``
lets a test change the shop while it runs.
"""

from __future__ import annotations

import base64
import secrets
from datetime import datetime, timedelta, timezone
from typing import Any

import click
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from framework.declarative.formats import parse_datetime
from framework.devkit.sandbox import json_response, serve

BERLIN = timezone(timedelta(hours=2))  # Marketbox writes the shop's local time
START = datetime(2024, 3, 1, 9, 0, tzinfo=BERLIN)
FIRST = ("Ada", "Bruno", "Chloe", "Dmitri", "Eunji", "Farah", "Goran", "Hana", "Ines", "Jonas",
         "Kofi", "Lena")
LAST = ("Abara", "Berg", "Costa", "Dahl", "Eze", "Fink", "Grau", "Holm", "Ito", "Jung", "Kern",
        "Lund")
TIERS = ({"code": "std", "label": "Standard"}, {"code": "vip", "label": "VIP"})
NEWSLETTER = ("opted_in", "opted_out", "pending", None)
STATUSES = ("paid", "fulfilled", "open", "cancelled", "refunded", "partially_refunded")
COUNTED = {"paid", "fulfilled", "partially_refunded"}  # what the sandbox's stats count
CART_STATES = ("abandoned", "abandoned", "open", "converted", "abandoned")
MAX_PAGE = 100


def stamp(when: datetime) -> str:
    return when.astimezone(BERLIN).isoformat(timespec="seconds")


def money(amount: float) -> str:
    return f"{amount:.2f}"


class Shop:
    """One generated shop: customers, orders, products, carts (every field as Marketbox has it)."""

    def __init__(self, slug: str, customers: int, orders: int) -> None:
        self.info = {"slug": slug, "title": "Acme Outdoor", "country": "DE", "currency": "EUR",
                     "storefront": f"https://{slug}.marketbox.example", "tz": "Europe/Berlin",
                     "locale": "de", "modified": stamp(START)}
        self.products = [self._product(n) for n in range(1, 5)]
        self.customers = [self._customer(n) for n in range(1, customers + 1)]
        self.orders = [self._order(n) for n in range(1, orders + 1)]
        self.carts = [self._cart(n) for n in range(1, len(CART_STATES) + 1)]
        self.recount()

    def _product(self, n: int) -> dict[str, Any]:
        sizes = ["M"] if n == 1 else ["S", "M", "L"]
        variants = [{"id": f"{n}-{size}", "sku": f"MB-{n}-{size}", "stock": (n + k) % 4 * 3,
                     "attributes": [{"label": "Size", "option": size}],
                     "price": {"amount": money(10 * n + k), "currency": "EUR"}}
                    for k, size in enumerate(sizes)]
        return {"id": n, "title": f"Trail item {n}", "handle": f"trail-item-{n}",
                "image": {"src": f"https://cdn.marketbox.example/{n}.jpg"} if n != 4 else None,
                "price": {"amount": money(10 * n), "currency": "EUR"}, "published": n != 4,
                "collections": ["outdoor"], "variants": variants,
                "modified": stamp(START + timedelta(hours=n)), "deleted_at": None}

    def _customer(self, n: int) -> dict[str, Any]:
        first, last = FIRST[(n - 1) % len(FIRST)], LAST[(n - 1) % len(LAST)]
        created = START + timedelta(days=n)
        return {"id": f"cus_{n:04d}", "email_address": f"{first.lower()}.{n}@marketbox.example",
                "given_name": first, "family_name": last,
                "mobile": f"030 123456{n:02d}" if n % 3 else None, "tier": TIERS[n % 2],
                "newsletter": NEWSLETTER[n % 4],
                "newsletter_at": stamp(created) if NEWSLETTER[n % 4] else None,
                "sms": n % 2 == 0, "cart_reminders": "no" if n % 3 == 2 else "yes",
                "address": {"street": f"{n} Lindenweg", "town": "Berlin", "postcode": "10115",
                            "region": "BE", "country_iso": "DE"},
                "traits": [{"key": "Shoe size", "value": str(36 + n % 10)}],
                "stats": {"orders": 0, "spent": "0.00"},
                "created": stamp(created), "modified": stamp(created), "archived": False}

    def _order(self, n: int) -> dict[str, Any]:
        guest = n % 6 == 0
        customer = None if guest else self.customers[(n - 1) % len(self.customers)]
        product = self.products[n % 4]
        variant = product["variants"][n % len(product["variants"])]
        quantity = 1 + n % 2
        price = float(variant["price"]["amount"])
        status = STATUSES[n % len(STATUSES)]
        total = price * quantity + 4.9
        refunded = {"refunded": total, "partially_refunded": price}.get(status, 0.0)
        when = START + timedelta(days=20, hours=n)
        return {"id": n, "number": f"MB-{1000 + n}", "customer": customer and customer["id"],
                "contact_email": customer["email_address"] if customer
                else f"guest.{n}@marketbox.example", "status": status, "currency": "EUR",
                "amounts": {"total": money(total), "subtotal": money(price * quantity),
                            "tax": money(total * 0.19 / 1.19), "shipping": "4.90",
                            "discount": "0.00", "refunded": money(refunded)},
                "items": [{"id": f"li_{n}", "product": product["id"], "variant": variant["id"],
                           "sku": variant["sku"], "title": product["title"], "qty": quantity,
                           "unit_price": variant["price"]["amount"],
                           "line_total": money(price * quantity), "returned": 0}],
                "discounts": [{"code": "SPRING10", "value": "0.00"}] if n % 5 == 0 else [],
                "sales_channel": "web", "bill_to": {"street": "1 Marktplatz", "town": "Berlin",
                                                    "postcode": "10117", "country_iso": "DE"},
                "newsletter_box": n % 2 == 0, "created": stamp(when), "modified": stamp(when)}

    def _cart(self, n: int) -> dict[str, Any]:
        customer = None if n == 5 else self.customers[(n - 1) % len(self.customers)]
        product = self.products[n % 4]
        variant = product["variants"][0]
        when = START + timedelta(days=30, hours=n)
        return {"id": f"cart_{n}", "customer": customer and customer["id"],
                "email": customer["email_address"] if customer else "guest.cart@marketbox.example",
                "state": CART_STATES[n - 1],
                "lines": [{"product": product["id"], "variant": variant["id"], "qty": 1,
                           "sku": variant["sku"], "title": product["title"],
                           "unit_price": variant["price"]["amount"]}],
                "total": {"amount": variant["price"]["amount"], "currency": "EUR"},
                "checkout_url": f"{self.info['storefront']}/checkout/{n}",
                "created": stamp(when), "modified": stamp(when)}

    def recount(self) -> None:
        """Each customer's ``stats``: Marketbox keeps the order count and amount spent."""
        for customer in self.customers:
            mine = [o for o in self.orders
                    if o["customer"] == customer["id"] and o["status"] in COUNTED]
            spent = sum(float(o["amounts"]["total"]) - float(o["amounts"]["refunded"])
                        for o in mine)
            customer["stats"] = {"orders": len(mine), "spent": money(spent)}

    def change(self, body: dict[str, Any]) -> dict[str, Any]:
        """Refund orders, rename and archive customers; each changed record is modified now."""
        now = stamp(datetime.now(BERLIN))
        orders = {o["id"]: o for o in self.orders}
        customers = {c["id"]: c for c in self.customers}
        for order_id in body.get("refund", []):
            order = orders[order_id]
            order.update(status="refunded", modified=now)
            order["amounts"]["refunded"] = order["amounts"]["total"]
            customers.get(order["customer"], {})["modified"] = now
        for customer_id in body.get("rename", []):
            customers[customer_id].update(family_name="Renamed", modified=now)
        for customer_id in body.get("archive", []):
            customers[customer_id].update(archived=True, modified=now)
        self.recount()
        return {"changed": now}


def page(rows: list[dict[str, Any]], request: Request) -> dict[str, Any]:
    """Rows modified since ``updated_since``, oldest first, ``per_page`` at a time after the
    opaque ``cursor`` of the previous page."""
    query = request.query_params
    since = query.get("updated_since")
    if since:
        bound = parse_datetime(since)
        rows = [r for r in rows if parse_datetime(r["modified"]) >= bound]
    rows = sorted(rows, key=lambda r: (parse_datetime(r["modified"]), str(r["id"])))
    start = orjson.loads(base64.urlsafe_b64decode(query["cursor"]))["at"] \
        if query.get("cursor") else 0
    size = min(max(int(query.get("per_page", 20)), 1), MAX_PAGE)
    end = start + size
    token = base64.urlsafe_b64encode(orjson.dumps({"at": end})).decode() \
        if end < len(rows) else None
    return {"results": rows[start:end], "paging": {"next": token}}


def build_app(shop: Shop, api_key: str) -> Starlette:
    def authorized(request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Bearer {api_key}":
            return json_response({"error": {"code": "unauthenticated",
                                            "message": "missing or wrong bearer token"}}, 401)
        if request.path_params["shop"] != shop.info["slug"]:
            return json_response({"error": {"code": "not_found", "message": "no such shop"}},
                                 404)
        return None

    def listing(rows_of: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            return authorized(request) or json_response(page(rows_of(), request))
        return endpoint

    async def shop_info(request: Request) -> Response:
        return authorized(request) or json_response({"shop": shop.info})

    async def change(request: Request) -> Response:
        return authorized(request) or json_response(shop.change(await request.json()))

    base = "/api/v1/{shop}"
    return Starlette(routes=[
        Route(f"{base}/shop", shop_info),
        Route(f"{base}/customers", listing(lambda: shop.customers)),
        Route(f"{base}/orders", listing(lambda: shop.orders)),
        Route(f"{base}/products", listing(lambda: shop.products)),
        Route(f"{base}/carts", listing(lambda: shop.carts)),
        Route("/_sandbox/{shop}/change", change, methods=["POST"]),
    ])


@click.command("marketbox")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=0, show_default=True, help="0: any free port.")
@click.option("--shop", default="acme-outdoor", show_default=True, help="The shop's slug.")
@click.option("--customers", default=12, show_default=True, type=click.IntRange(1))
@click.option("--orders", default=24, show_default=True, type=click.IntRange(0))
def sandbox_command(host: str, port: int, shop: str, customers: int, orders: int) -> None:
    """Serve a Marketbox shop; prints {"url", "api_key", "shop"} once ready."""
    api_key = secrets.token_hex(16)
    serve(build_app(Shop(shop, customers, orders), api_key), host, port,
          {"api_key": api_key, "shop": shop})
