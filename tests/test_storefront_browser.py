"""The storefront script in a real browser: headless Chromium (Debian's ``chromium``, driven by
playwright with the system browser as its executable; nothing is downloaded) on the sandbox's
storefront, the script installed with ``runner storefront install``, the receiver with its
forwarder into the Brevo sandbox. A shopper accepts cookies, logs in, views products, adds
one to the cart, starts a checkout and leaves: Brevo holds the events. Another declines
cookies: nothing is sent."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import LISTS, RUNNER, BrevoBox, run_cli, start_sandbox

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed "
                                "(.ci/run installs it: apt-get install -y chromium)")
SECRET = "client-secret-of-the-tajo-app-0123456789"


class Setup:
    def __init__(self, tmp_path: Path, brevo: BrevoBox) -> None:
        self.brevo = brevo
        self.store = start_sandbox("--customers", "30", "--orders", "5", "--products", "12",
                                   "--plan", "enterprise", "--client-id", "tajo-app",
                                   "--client-secret", SECRET)
        config = {"connectors": {"bigcommerce": {
            "store_hash": self.store.store_hash, "access_token": self.store.access_token,
            "api_url": self.store.url, "client_id": "tajo-app", "client_secret": SECRET,
            "lists": LISTS,
            "sync": {"customers": True, "orders": False, "products": False, "carts": False,
                     "inventory": False, "storefront": True},
            "storefront": {"origins": [self.store.url], "consent_category": "targeting"}}},
            "brevo": {"api_key": brevo.key, "api_url": brevo.url,
                      "storefront": {"browse_abandoned_minutes": 0.05}},
            "state_dir": str(tmp_path / "state")}
        self.config = tmp_path / "tajo.json"
        self.config.write_text(json.dumps(config))
        # Its log goes to a file: a pipe nobody reads would fill and stop the receiver.
        # No poll after the first: events wake the forwarder, and browse_abandoned goes out
        # because it wakes the destination on its own, as often as the window asks.
        self.log = tmp_path / "receiver.log"
        self.receiver = subprocess.Popen(
            [RUNNER, "webhooks", "serve", "--config", str(self.config), "--port", "0",
             "--forward", str(self.config), "--poll-every", "3600"],
            stdout=subprocess.PIPE, stderr=self.log.open("w"), text=True)
        assert self.receiver.stdout is not None
        line = self.receiver.stdout.readline()
        assert line, self.log.read_text()
        self.receiver_url = json.loads(line)["url"]
        installed = run_cli("runner", "storefront", "install", "--config", str(self.config),
                            "--url", self.receiver_url)
        assert installed.returncode == 0, installed.stderr.decode()
        customers = requests.get(f"{self.store.url}/stores/{self.store.store_hash}/v3/customers",
                                 params={"limit": 2}, timeout=10,
                                 headers={"X-Auth-Token": self.store.access_token}).json()
        self.emails = [c["email"].lower() for c in customers["data"]]

    def events(self, email: str) -> list[dict[str, Any]]:
        return [e for e in self.brevo.state().get("events", [])
                if (e.get("identifiers") or {}).get("email_id", "").lower() == email]

    def stop(self) -> None:
        self.receiver.terminate()
        try:
            self.receiver.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.receiver.kill()
        self.store.stop()


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp("storefront")
    process = subprocess.Popen([RUNNER, "sandbox", "brevo", "--lists", "40,41,42",
                                "--import-delay-ms", "30"], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    ready = json.loads(process.stdout.readline())
    made = Setup(tmp, BrevoBox(process, ready["url"], ready["api_key"]))
    yield made
    made.stop()
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=["--no-sandbox"])
        yield launched
        launched.close()


def wait_for(check: Any, timeout: float = 25.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.3)


def test_a_shopper_who_accepts_cookies_reaches_brevo(setup: Setup, browser: Any) -> None:
    url, email = setup.store.url, setup.emails[0]
    page = browser.new_context().new_page()
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.url.startswith(setup.receiver_url)
            else None)
    page.goto(f"{url}/")
    with page.expect_navigation():  # the banner reloads the page with the choice
        page.click("#consent-accept")
    page.goto(f"{url}/login.php")
    page.fill("input[name=login_email]", email)
    page.fill("input[name=login_pass]", "anything")
    page.click("#login-submit")
    page.wait_for_url(f"{url}/")
    beacon = lambda r: r.url.startswith(setup.receiver_url)  # noqa: E731
    for path in ("/categories/2/", "/products/1/", "/products/2/"):
        with page.expect_request(beacon):
            page.goto(f"{url}{path}")
    page.click("#form-action-addToCart")
    page.wait_for_selector("#added:has-text('Added')")
    page.goto(f"{url}/cart.php")
    page.wait_for_timeout(800)  # the script reads the cart as the page loads
    page.click("a[href='/checkout']")
    page.wait_for_url(f"{url}/checkout")
    page.context.close()  # and leaves
    assert sent  # beacons went to the receiver

    def arrived() -> dict[str, list[dict[str, Any]]]:
        names: dict[str, list[dict[str, Any]]] = {}
        for event in setup.events(email):
            names.setdefault(event["event_name"], []).append(event)
        wanted = ("product_viewed", "cart_updated", "checkout_started")
        return names if all(n in names for n in wanted) and len(
            names["product_viewed"]) >= 2 else {}

    names = wait_for(arrived)
    assert names, f"Brevo holds {[e['event_name'] for e in setup.events(email)]}"
    viewed = {e["event_properties"]["product_id"] for e in names["product_viewed"]}
    assert viewed == {"1", "2"}
    [cart] = names["cart_updated"]
    assert [i["product_id"] for i in cart["event_properties"]["items"]] == ["2"]
    assert names["checkout_started"][0]["event_properties"]["cart_id"] == \
        cart["event_properties"]["cart_id"]
    assert "browse_abandoned" not in names  # the shopper carted
    status = run_cli("runner", "storefront", "status", "--config", str(setup.config), "--json")
    received = json.loads(status.stdout.splitlines()[0])["received"]
    assert received["storefront/product_viewed"] >= 2


def test_a_browse_without_a_cart_is_abandoned(setup: Setup, browser: Any) -> None:
    url, email = setup.store.url, setup.emails[1]
    page = browser.new_context().new_page()
    page.goto(f"{url}/")
    with page.expect_navigation():  # the banner reloads the page with the choice
        page.click("#consent-accept")
    beacon = lambda r: r.url.startswith(setup.receiver_url)  # noqa: E731
    with page.expect_request(beacon):
        page.goto(f"{url}/products/3/")  # before logging in: held, joined at login
    page.goto(f"{url}/login.php")
    page.fill("input[name=login_email]", email)
    page.fill("input[name=login_pass]", "anything")
    page.click("#login-submit")
    page.wait_for_url(f"{url}/")
    with page.expect_request(beacon):  # once the script knows who is there
        page.goto(f"{url}/products/4/")
    page.context.close()
    abandoned = wait_for(lambda: [e for e in setup.events(email)
                                  if e["event_name"] == "browse_abandoned"])
    assert abandoned, f"Brevo holds {[e['event_name'] for e in setup.events(email)]}"
    products = [p["product_id"] for p in abandoned[0]["event_properties"]["products"]]
    assert products == ["3", "4"]  # the view before the login was joined to the shopper


def test_a_shopper_who_declines_cookies_sends_nothing(setup: Setup, browser: Any) -> None:
    url = setup.store.url
    before = len(setup.brevo.state().get("events", []))
    page = browser.new_context().new_page()
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.url.startswith(setup.receiver_url)
            or "current.jwt" in r.url else None)
    page.goto(f"{url}/")
    with page.expect_navigation():  # the banner reloads the page with the choice
        page.click("#consent-decline")
    page.goto(f"{url}/products/5/")
    page.click("#form-action-addToCart")
    page.wait_for_selector("#added:has-text('Added')")
    page.goto(f"{url}/cart.php")
    assert "Tajo storefront events" not in page.content()
    page.wait_for_timeout(1500)
    page.context.close()
    assert sent == []
    time.sleep(2.5)  # a forwarder cycle
    assert len(setup.brevo.state().get("events", [])) == before
