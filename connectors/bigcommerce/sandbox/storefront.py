"""A storefront for the sandbox's first store, shaped like a Stencil theme (Cornerstone), so
that the storefront script runs in a real browser against it.

Pages: ``/`` (categories and products), ``/categories/{id}/`` (``data-category-id``),
``/products/{id}/`` (``var BCData = {"product_attributes": ...}``, an add-to-cart
``form[data-cart-item-add]`` with ``input[name=product_id]``), ``/cart.php`` (a "Check out" link
to ``/checkout``), ``/checkout`` (where storefront-visibility scripts do not render),
``/login.php``. APIs: the Storefront Cart API (``GET|POST /api/storefront/carts``,
``POST /api/storefront/carts/{id}/items``, camelCase as carts.sf.yml), the Current Customer
API (``/customer/current.jwt?app_client_id=``: a JWT signed with ``--client-secret``, 404 for a
guest), and the cookie-consent API (``POST /api/storefront/consent {allow, deny}``).

Scripts installed through the Scripts API are rendered in ``head`` or before ``</body>``
(``location``) on pages their ``visibility`` covers, as BigCommerce renders them: with the
consent banner on (it is, here), a script of category ``essential`` always, one of
``analytics`` (1), ``functional`` (2) or ``targeting`` (3) only once the shopper has allowed that
category, one of unknown category never.

The sandbox's choices where BigCommerce's reference is silent: any password logs a customer in
by email; the session is the ``SHOP_SESSION_TOKEN`` cookie; consent is kept in the
``tajo_sandbox_consent`` cookie (BigCommerce's own cookie is undocumented); a cart made on the
storefront is the store's cart too (``GET /v3/carts/{id}``, its webhooks).
"""

from __future__ import annotations

import html
import secrets
import time
from typing import Any
from urllib.parse import parse_qs

import jwt
import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from connectors.bigcommerce.sandbox import generate as g

CONSENT_IDS = {"analytics": 1, "functional": 2, "targeting": 3}
PAGES = 12  # products and categories shown


class Shop:
    """The storefront of one sandboxed store: sessions and pages."""

    def __init__(self, sandbox: Any) -> None:
        self.sandbox = sandbox
        self.sessions: dict[str, dict[str, Any]] = {}

    # --- sessions and carts ---------------------------------------------------------------

    def session(self, request: Request) -> tuple[str, dict[str, Any]]:
        token = request.cookies.get("SHOP_SESSION_TOKEN", "")
        if token not in self.sessions:
            token = secrets.token_hex(16)
            self.sessions[token] = {"customer_id": None, "cart_id": None}
        return token, self.sessions[token]

    def cart(self, session: dict[str, Any]) -> dict[str, Any] | None:
        return self.sandbox.store.carts.get(session.get("cart_id") or "")

    def add(self, session: dict[str, Any], product_id: int, quantity: int) -> dict[str, Any]:
        store, emit = self.sandbox.store, self.sandbox.hooks.emit
        cart = self.cart(session)
        product = store.products.get(product_id)
        item = {"id": f"{secrets.token_hex(4)}-0000-4000-8000-{secrets.token_hex(6)}",
                "parent_id": None, "variant_id": product["variants"][0]["id"],
                "product_id": product_id, "sku": product["sku"], "name": product["name"],
                "url": f"/products/{product_id}/", "quantity": quantity, "taxable": True,
                "image_url": "", "discounts": [], "coupons": [], "discount_amount": 0,
                "coupon_amount": 0, "original_price": product["price"],
                "list_price": product["price"], "sale_price": product["price"],
                "extended_list_price": round(product["price"] * quantity, 2),
                "extended_sale_price": round(product["price"] * quantity, 2),
                "is_require_shipping": True, "is_mutable": True, "added_by_promotion": False}
        if cart is None:
            cart = store.create_cart(session["customer_id"] or 0)
            cart["line_items"]["physical_items"] = []
            session["cart_id"] = cart["id"]
            emit("store/cart/created", {"type": "cart", "id": cart["id"]})
        else:
            emit("store/cart/updated", {"type": "cart", "id": cart["id"]})
        cart["line_items"]["physical_items"].append(item)
        amount = round(sum(i["extended_sale_price"]
                           for i in cart["line_items"]["physical_items"]), 2)
        cart.update(base_amount=amount, cart_amount=amount, version=cart["version"] + 1,
                    updated_time=g.iso(store.customers.now()))
        return cart

    # --- what a page renders --------------------------------------------------------------

    def scripts(self, request: Request, visibility: str) -> dict[str, str]:
        """The installed scripts a page shows, by location (``head``, ``footer``)."""
        allowed = _consented(request)
        shown = {"head": "", "footer": ""}
        for script in self.sandbox.scripts.rendered():
            if script["visibility"] not in (visibility, "all_pages"):
                continue
            category = script.get("consent_category")
            if category != "essential" and CONSENT_IDS.get(category) not in allowed:
                continue
            tag = (script["html"] if script["kind"] == "script_tag" else
                   f'<script src="{html.escape(script["src"])}"'
                   f'{" " + script["load_method"] if script["load_method"] != "default" else ""}'
                   "></script>")
            shown[script.get("location") or "footer"] += tag + "\n"
        return shown

    def page(self, request: Request, title: str, body: str, *, data: dict[str, Any] | None = None,
             visibility: str = "storefront") -> HTMLResponse:
        token, session = self.session(request)
        scripts = self.scripts(request, visibility)
        customer = session["customer_id"]
        who = (f'Signed in as customer {customer} · <a href="/login.php?action=logout">Sign out'
               '</a>' if customer else '<a href="/login.php">Sign in</a>')
        banner = "" if "tajo_sandbox_consent" in request.cookies else BANNER
        bcdata = orjson.dumps({"csrf_token": token[:16], **(data or {})}).decode()
        answer = HTMLResponse(
            f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><meta property='og:title' content='{html.escape(title)}'>"
            f"<script>var BCData = {bcdata};</script>{scripts['head']}</head><body>"
            f"<header><a href='/'>{html.escape(self.sandbox.store.info()['name'])}</a> · "
            f"<a href='/cart.php'>Cart</a> · {who}</header><main>{body}</main>{banner}"
            f"{scripts['footer']}</body></html>")
        answer.set_cookie("SHOP_SESSION_TOKEN", token, httponly=True, samesite="lax")
        return answer


BANNER = """<div id="consent-banner">This store uses cookies.
<button id="consent-accept">Accept all</button> <button id="consent-decline">Decline</button>
<script>
function tajoConsent(allow) {
  fetch('/api/storefront/consent', {method: 'POST', headers: {'Content-Type': 'application/json'},
    body: JSON.stringify(allow ? {allow: [1, 2, 3], deny: []} : {allow: [], deny: [1, 2, 3]})})
    .then(function () { location.reload(); });
}
document.getElementById('consent-accept').onclick = function () { tajoConsent(true); };
document.getElementById('consent-decline').onclick = function () { tajoConsent(false); };
</script></div>"""

ADD_TO_CART = """<script>
document.querySelector('form[data-cart-item-add]').addEventListener('submit', function (e) {
  e.preventDefault();
  var id = Number(this.querySelector('input[name=product_id]').value);
  var api = '/api/storefront/carts';
  fetch(api, {credentials: 'same-origin'}).then(function (r) { return r.json(); })
    .then(function (carts) {
      var body = JSON.stringify({lineItems: [{productId: id, quantity: 1}]});
      var url = carts.length ? api + '/' + carts[0].id + '/items' : api;
      return fetch(url, {method: 'POST', credentials: 'same-origin', body: body,
                         headers: {'Content-Type': 'application/json'}});
    })
    .then(function () { document.getElementById('added').textContent = 'Added to your cart'; });
});
</script>"""


def _consented(request: Request) -> set[int]:
    try:
        consent = orjson.loads(request.cookies.get("tajo_sandbox_consent") or "{}")
        return {int(c) for c in consent.get("allow") or []}
    except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError):
        return set()


def sf_cart(cart: dict[str, Any]) -> dict[str, Any]:
    """A cart as the Storefront Cart API answers it (carts.sf.yml ``responseCart``)."""
    items = [{"id": i["id"], "parentId": i["parent_id"], "variantId": i["variant_id"],
              "productId": i["product_id"], "sku": i["sku"], "name": i["name"], "url": i["url"],
              "quantity": i["quantity"], "isTaxable": True, "imageUrl": i["image_url"],
              "discounts": [], "discountAmount": 0, "couponAmount": 0,
              "originalPrice": i["original_price"], "listPrice": i["list_price"],
              "salePrice": i["sale_price"], "extendedListPrice": i["extended_list_price"],
              "extendedSalePrice": i["extended_sale_price"], "isShippingRequired": True,
              "type": "physical", "isMutable": True, "giftWrapping": None}
             for i in cart["line_items"]["physical_items"]]
    return {"id": cart["id"], "customerId": cart["customer_id"], "email": cart["email"],
            "currency": {"name": "US Dollars", "code": "USD", "symbol": "$", "decimalPlaces": 2},
            "isTaxIncluded": False, "baseAmount": cart["base_amount"], "discountAmount": 0,
            "cartAmount": cart["cart_amount"], "coupons": [], "discounts": [],
            "lineItems": {"physicalItems": items, "digitalItems": [], "giftCertificates": [],
                          "customItems": []},
            "createdTime": cart["created_time"], "updatedTime": cart["updated_time"],
            "locale": "en", "version": cart["version"]}


def routes(sandbox: Any) -> list[Route]:
    """The storefront's pages and APIs (served at the root of the sandbox's URL)."""
    shop = Shop(sandbox)
    store = sandbox.store

    def product_ids() -> list[int]:
        return list(store.products.ids[:PAGES])

    async def home(request: Request) -> Response:
        links = "".join(f"<li><a href='/products/{p}/'>{html.escape(store.products.get(p)['name'])}"
                        f"</a></li>" for p in product_ids())
        cats = "".join(f"<li><a href='/categories/{c}/'>Category {c}</a></li>"
                       for c in range(1, 4))
        return shop.page(request, "Home", f"<h1>Welcome</h1><ul>{cats}</ul><ul>{links}</ul>")

    async def category(request: Request) -> Response:
        category_id = request.path_params["id"]
        links = "".join(f"<li><a href='/products/{p}/'>{html.escape(store.products.get(p)['name'])}"
                        f"</a></li>" for p in product_ids())
        return shop.page(request, f"Category {category_id}",
                         f"<div data-category-id='{category_id}'><h1 class='page-heading'>"
                         f"Category {category_id}</h1><ul>{links}</ul></div>")

    async def product(request: Request) -> Response:
        product_id = request.path_params["id"]
        if product_id not in store.products:
            return Response("Not found", 404)
        item = store.products.get(product_id)
        price = {"value": item["price"], "currency": "USD", "formatted": f"${item['price']:.2f}"}
        attributes = {"sku": item["sku"], "v3_variant_id": item["variants"][0]["id"],
                      "price": {"without_tax": price}, "purchasable": True, "instock": True}
        body = (f"<h1 class='productView-title'>{html.escape(item['name'])}</h1>"
                f"<p class='price'>{price['formatted']}</p>"
                "<form class='form' method='post' action='/cart.php' data-cart-item-add>"
                "<input type='hidden' name='action' value='add'>"
                f"<input type='hidden' name='product_id' value='{product_id}'>"
                "<input id='form-action-addToCart' type='submit' value='Add to Cart'></form>"
                f"<p id='added'></p>{ADD_TO_CART}")
        return shop.page(request, item["name"], body, data={"product_attributes": attributes})

    async def cart_page(request: Request) -> Response:
        _, session = shop.session(request)
        cart = shop.cart(session)
        lines = "".join(f"<li>{html.escape(i['name'])} x {i['quantity']}</li>"
                        for i in (cart["line_items"]["physical_items"] if cart else []))
        return shop.page(request, "Your Cart", f"<h1>Your Cart</h1><ul>{lines}</ul>"
                         "<a class='button' href='/checkout'>Check out</a>")

    async def checkout(request: Request) -> Response:
        return shop.page(request, "Checkout", "<h1>Checkout</h1>", visibility="checkout")

    async def login(request: Request) -> Response:
        token, session = shop.session(request)
        if request.method == "GET":
            if request.query_params.get("action") == "logout":
                session["customer_id"] = None
                return _redirect("/", token)
            return shop.page(request, "Sign in", "<form method='post' action='/login.php'>"
                             "<input name='login_email' type='email'>"
                             "<input name='login_pass' type='password'>"
                             "<input id='login-submit' type='submit' value='Sign in'></form>")
        form = parse_qs((await request.body()).decode(errors="replace"))
        email = (form.get("login_email") or [""])[0].strip().lower()
        found = next((c for c in store.customers.ids[:2000]
                      if store.customers.get(c)["email"].lower() == email), None)
        if found is None:
            return shop.page(request, "Sign in", "<p>Your email or password is incorrect.</p>")
        session["customer_id"] = found
        return _redirect("/", token)

    async def current_jwt(request: Request) -> Response:
        _, session = shop.session(request)
        secret, client_id = sandbox.hooks.client_secret, sandbox.clients[sandbox.access_token]
        if request.query_params.get("app_client_id") != client_id or not secret:
            return Response("Unknown app_client_id", 400)
        if not session["customer_id"]:
            return Response("Not Found", 404)  # a guest
        customer = store.customers.get(session["customer_id"])
        now = int(time.time())
        claims = {"customer": {"id": customer["id"], "email": customer["email"],
                               "group_id": str(customer.get("customer_group_id") or 0)},
                  "iss": "bc/apps", "sub": store.store_hash, "iat": now, "exp": now + 900,
                  "version": 1, "aud": client_id, "application_id": client_id,
                  "store_hash": store.store_hash, "operation": "current_customer"}
        return Response(jwt.encode(claims, secret, algorithm="HS256"),
                        media_type="application/json")

    async def carts(request: Request) -> Response:
        _, session = shop.session(request)
        if request.method == "GET":
            cart = shop.cart(session)
            return Response(orjson.dumps([sf_cart(cart)] if cart else []),
                            media_type="application/json")
        cart_id = request.path_params.get("cart_id")
        if cart_id is not None and cart_id != session.get("cart_id"):
            return Response(orjson.dumps({"status": 404, "title": "Cart not found"}), 404,
                            media_type="application/json")
        body = orjson.loads(await request.body() or b"{}")
        for line in body.get("lineItems") or []:
            if int(line.get("productId", 0)) not in store.products:
                return Response(orjson.dumps({"status": 422, "title": "Product not found"}),
                                422, media_type="application/json")
        cart = None
        for line in body.get("lineItems") or []:
            cart = shop.add(session, int(line["productId"]), int(line.get("quantity") or 1))
        return Response(orjson.dumps(sf_cart(cart) if cart else {}),
                        media_type="application/json")

    async def consent(request: Request) -> Response:
        body = orjson.loads(await request.body() or b"{}")
        answer = Response(status_code=200)
        answer.set_cookie("tajo_sandbox_consent", orjson.dumps(
            {"allow": body.get("allow") or [], "deny": body.get("deny") or []}).decode(),
            samesite="lax")
        return answer

    return [Route("/", home), Route("/categories/{id:int}/", category),
            Route("/products/{id:int}/", product), Route("/cart.php", cart_page),
            Route("/checkout", checkout), Route("/login.php", login, methods=["GET", "POST"]),
            Route("/customer/current.jwt", current_jwt),
            Route("/api/storefront/carts", carts, methods=["GET", "POST"]),
            Route("/api/storefront/carts/{cart_id}/items", carts, methods=["POST"]),
            Route("/api/storefront/consent", consent, methods=["POST"])]


def _redirect(to: str, token: str) -> Response:
    answer = RedirectResponse(to, status_code=303)
    answer.set_cookie("SHOP_SESSION_TOKEN", token, httponly=True, samesite="lax")
    return answer
