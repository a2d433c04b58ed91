/* Tajo storefront events for a BigCommerce (Stencil) storefront; no dependencies.
 * Installed by `runner storefront install`, which calls this function with its settings:
 * {endpoint, store, clientId}. BigCommerce renders it only once the shopper has accepted its
 * cookie-consent category, so nothing here runs (or is stored) before consent.
 * It sends, with navigator.sendBeacon (text/plain: no CORS preflight):
 *   product_viewed   on a product page: BCData.product_attributes and input[name=product_id]
 *   category_viewed  on a category page: [data-category-id]
 *   cart_updated     when the Storefront Cart API's cart (/api/storefront/carts) changed
 *   checkout_started when the shopper follows a link or form to /checkout
 * A logged-in shopper is named by the Current Customer API's JWT
 * (/customer/current.jwt?app_client_id=...), which only the receiver can verify; a visitor
 * has a first-party id (localStorage "tajo_vid"). Any failure leaves the page as it was. */
(function (settings) {
  "use strict";
  var w = window, d = document, nav = w.navigator;
  try {
    if (!settings || !settings.endpoint || !nav.sendBeacon || !w.fetch || w.__tajoEvents) {
      return;
    }
    w.__tajoEvents = true;
  } catch (e) { return; }

  function storage(kind) { try { return w[kind] || null; } catch (e) { return null; } }
  function get(kind, key) { try { var s = storage(kind); return s && s.getItem(key); } catch (e) { return null; } }
  function put(kind, key, value) { try { var s = storage(kind); if (s) { s.setItem(key, value); } } catch (e) { /* full or blocked */ } }
  function randomId(bytes) {
    var a = new Uint8Array(bytes), out = "";
    w.crypto.getRandomValues(a);
    for (var i = 0; i < a.length; i++) { out += ("0" + a[i].toString(16)).slice(-2); }
    return out;
  }
  function text(value, max) { return value == null || value === "" ? null : String(value).slice(0, max || 300); }
  function num(value) { var n = Number(value); return isFinite(n) && n >= 0 ? n : null; }
  function id(value) { var t = text(value, 64); return t && /^[A-Za-z0-9._:-]+$/.test(t) ? t : null; }
  function here() { return text(w.location.origin + w.location.pathname, 2000); }

  var visitor = get("localStorage", "tajo_vid");
  if (!visitor || !/^[A-Za-z0-9_-]{16,64}$/.test(visitor)) {
    visitor = "v" + randomId(12);
    put("localStorage", "tajo_vid", visitor);
  }
  var token = null, identified = false, waiting = [];

  function send(events) {
    if (!identified) { waiting = waiting.concat(events); return; }
    try {
      var beacon = {v: 1, account: settings.store, visitor: visitor, events: events};
      if (token) { beacon.token = token; }
      nav.sendBeacon(settings.endpoint, JSON.stringify(beacon));
    } catch (e) { /* the page goes on */ }
  }
  function event(type, fields) {
    var e = {id: randomId(8), type: type, at: Date.now(), url: here()};
    for (var k in fields) { if (Object.prototype.hasOwnProperty.call(fields, k)) { e[k] = fields[k]; } }
    return e;
  }
  function identify() {
    identified = true;
    if (waiting.length) { var events = waiting; waiting = []; send(events); }
  }

  // Who the shopper is: a guest gets 404, a logged-in customer a JWT (valid 15 minutes).
  try {
    if (settings.clientId) {
      var timer = w.setTimeout(identify, 3000);
      w.fetch("/customer/current.jwt?app_client_id=" + encodeURIComponent(settings.clientId),
              {credentials: "same-origin"})
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (jwt) { if (jwt && jwt.length < 4096) { token = jwt.trim(); } })
        .catch(function () { /* a guest, or offline */ })
        .then(function () { w.clearTimeout(timer); identify(); });
    } else {
      identify();
    }
  } catch (e) { identify(); }

  function productViewed() {
    var data = w.BCData && w.BCData.product_attributes;
    var input = d.querySelector('form[data-cart-item-add] input[name="product_id"], input[name="product_id"]');
    var productId = id(input && input.value);
    if (!data || !productId) { return; }
    var price = (data.price && (data.price.without_tax || data.price.with_tax)) || {};
    var title = d.querySelector('meta[property="og:title"]');
    var name = title ? title.getAttribute("content") : (d.querySelector(".productView-title") || {}).textContent;
    send([event("product_viewed", {product: {
      id: productId, variant_id: id(data.v3_variant_id), sku: text(data.sku),
      name: text(name), price: num(price.value), currency: id(price.currency) && /^[A-Z]{3}$/.test(price.currency) ? price.currency : null,
      url: here()}})]);
  }

  function categoryViewed() {
    var el = d.querySelector("[data-category-id]");
    var categoryId = id(el && el.getAttribute("data-category-id"));
    if (!categoryId) { return; }
    var heading = d.querySelector("h1.page-heading, h1");
    send([event("category_viewed", {category: {id: categoryId, name: text(heading && heading.textContent.trim())}})]);
  }

  // The cart as the Storefront Cart API gives it, in the beacon's shape.
  function cartOf(cart) {
    var items = [], groups = ["physicalItems", "digitalItems"];
    for (var g = 0; g < groups.length; g++) {
      var list = (cart.lineItems && cart.lineItems[groups[g]]) || [];
      for (var i = 0; i < list.length && items.length < 100; i++) {
        var it = list[i];
        items.push({product_id: id(it.productId) || "0", variant_id: id(it.variantId), sku: text(it.sku),
                    name: text(it.name), quantity: num(it.quantity) || 0, price: num(it.salePrice),
                    url: text(it.url, 2000), image_url: text(it.imageUrl, 2000)});
      }
    }
    return {id: id(cart.id), currency: cart.currency && /^[A-Z]{3}$/.test(cart.currency.code) ? cart.currency.code : null,
            total: num(cart.cartAmount), email: text(cart.email, 254), items: items};
  }
  function digest(cart) {
    return cart ? cart.id + "|" + cart.items.map(function (i) { return i.product_id + ":" + i.variant_id + ":" + i.quantity; }).join(",") : "";
  }
  var lastCart = null;
  function checkCart() {
    try {
      w.fetch("/api/storefront/carts", {credentials: "same-origin"})
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (carts) {
          if (!carts || !carts.length || !id(carts[0].id)) { return; }
          var cart = cartOf(carts[0]);
          lastCart = cart;
          put("sessionStorage", "tajo_cart", JSON.stringify(cart));
          var seen = digest(cart) + "|" + (cart.email || "");
          if (seen !== get("localStorage", "tajo_cart_seen")) {
            put("localStorage", "tajo_cart_seen", seen);
            send([event("cart_updated", {cart: cart})]);
          }
        })
        .catch(function () { /* no cart, or offline */ });
    } catch (e) { /* the page goes on */ }
  }
  function checkCartSoon() { w.setTimeout(checkCart, 800); w.setTimeout(checkCart, 2500); }

  function checkoutStarted() {
    try {
      var cart = lastCart || JSON.parse(get("sessionStorage", "tajo_cart") || "null");
      if (!cart || !cart.id) { return; }
      var once = "tajo_checkout:" + digest(cart);
      if (get("sessionStorage", once)) { return; }
      put("sessionStorage", once, "1");
      send([event("checkout_started", {cart: cart})]);
    } catch (e) { /* the page goes on */ }
  }
  function toCheckout(target) {
    var link = target && target.closest && target.closest("a[href], form[action]");
    var href = link && (link.getAttribute("href") || link.getAttribute("action")) || "";
    return /\/checkout(\.php)?(\/|\?|#|$)/.test(href);
  }

  try {
    // Leaving before the token came: what waits is sent as it is (a visitor's id only,
    // which the receiver's side joins to the shopper once a later event names them).
    w.addEventListener("pagehide", identify);
    productViewed();
    categoryViewed();
    checkCart();
    if (/^\/checkout(\.php)?\/?$/.test(w.location.pathname)) { checkoutStarted(); }
    d.addEventListener("submit", function (e) {
      try {
        if (e.target && e.target.matches && e.target.matches("form[data-cart-item-add]")) { checkCartSoon(); }
        if (toCheckout(e.target)) { checkoutStarted(); }
      } catch (err) { /* the page goes on */ }
    }, true);
    d.addEventListener("click", function (e) {
      try {
        if (toCheckout(e.target)) { checkoutStarted(); }
        else if (e.target && e.target.closest && e.target.closest("[data-cart-add], #form-action-addToCart, [data-cart-item-add] [type=submit]")) { checkCartSoon(); }
      } catch (err) { /* the page goes on */ }
    }, true);
  } catch (e) { /* the page goes on */ }
})
