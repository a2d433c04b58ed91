"""A second platform reaches Brevo through the commerce model, with no change to the framework or
to the Brevo destination: Marketbox, a made-up shop platform (``tests/plugins/tajo_marketbox``),
loaded as an installed plugin is (an entry point in a dist-info folder on the import path), read
from its own sandbox by ``runner read marketbox | runner write brevo`` with real pipes, and judged
by what the Brevo sandbox holds; then BigCommerce and Marketbox side by side in one Brevo.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import BUILTINS, LISTS, RUNNER, BrevoBox, messages

from framework.devkit.testing import source_tests

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = ROOT / "tests" / "plugins"
PLUGIN = PLUGINS / "tajo_marketbox"
sys.path.insert(0, str(PLUGINS))  # in this process too: the standard suite reads in-process
import tajo_marketbox  # noqa: E402

#: Marketbox's purchase rule, as its mapping (commerce.json) declares it.
PURCHASES = {"paid", "fulfilled", "partially_refunded"}


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a machine where the Marketbox plugin is installed: its package on the
    import path and its entry point in a dist-info folder, which ``importlib.metadata`` finds
    there as it finds those pip writes (no install, no TAJO_PLUGINS)."""
    site = tmp_path_factory.mktemp("site")
    dist = site / "tajo_marketbox-0.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tajo-marketbox\n"
                                   "Version: 0.1.0\n")
    (dist / "entry_points.txt").write_text("[tajo.connectors]\n"
                                           "marketbox = tajo_marketbox:connector\n")
    path = os.pathsep.join(filter(None, [str(site), str(PLUGINS), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "TAJO_CONNECTORS": f"{BUILTINS},marketbox"}


class TestMarketboxPassesTheStandardSuite(source_tests(
        tajo_marketbox.connector, sandbox_args=[],
        config=lambda ready: {"api_url": ready["url"], "api_key": ready["api_key"],
                              "shop": ready["shop"], "page_size": 5})):
    """The standard suite every source passes, against ``runner sandbox marketbox``."""

    @pytest.fixture(scope="class", autouse=True)
    @staticmethod
    def installed(plugin_env: dict[str, str]) -> Iterator[None]:
        with pytest.MonkeyPatch.context() as patch:  # the suite's sandbox finds the plugin
            for name in ("PYTHONPATH", "TAJO_CONNECTORS"):
                patch.setenv(name, plugin_env[name])
            yield


class Server:
    """A ``runner sandbox NAME`` subprocess and its ready line."""

    def __init__(self, env: dict[str, str], name: str, *args: str) -> None:
        self.process = subprocess.Popen([RUNNER, "sandbox", name, "--port", "0", *args],
                                        stdout=subprocess.PIPE, text=True, env=env)
        line = self.process.stdout.readline() if self.process.stdout else ""
        assert line, f"runner sandbox {name} did not start"
        self.ready: dict[str, Any] = json.loads(line)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def servers(plugin_env: dict[str, str]) -> Iterator[Any]:
    started: list[Server] = []

    def start(name: str, *args: str) -> Server:
        started.append(Server(plugin_env, name, *args))
        return started[-1]

    yield start
    for server in started:
        server.stop()


class Marketbox:
    """The Marketbox sandbox seen from outside: its API (to know what Brevo must hold) and
    the source config that reads it."""

    def __init__(self, server: Server, tmp_path: Path) -> None:
        self.url, self.key, self.shop = (server.ready[k] for k in ("url", "api_key", "shop"))
        self.config = tmp_path / f"marketbox-{self.shop}.json"
        self.config.write_text(json.dumps({"api_url": self.url, "api_key": self.key,
                                           "shop": self.shop, "page_size": 5}))

    def get(self, resource: str) -> Any:
        body = requests.get(f"{self.url}/api/v1/{self.shop}/{resource}",
                            params={"per_page": 100}, timeout=10,
                            headers={"Authorization": f"Bearer {self.key}"}).json()
        return body.get("results", body.get("shop"))

    def change(self, body: dict[str, Any]) -> None:
        requests.post(f"{self.url}/_sandbox/{self.shop}/change", json=body, timeout=10,
                      headers={"Authorization": f"Bearer {self.key}"}).raise_for_status()


def model_catalog(source: str, env: dict[str, str], folder: Path) -> Path:
    """The source's commerce model streams as a configured catalog (the README's jq line)."""
    found = subprocess.run([RUNNER, "discover", source, "--configured", "--all"], env=env,
                           capture_output=True, timeout=60)
    assert found.returncode == 0, found.stderr.decode()
    catalog = json.loads(found.stdout)
    catalog["streams"] = [s for s in catalog["streams"]
                          if s["stream"]["name"].startswith("commerce_")]
    path = folder / f"{source}-model.json"
    path.write_text(json.dumps(catalog))
    return path


def pipe(source: str, config: Path, brevo_config: Path, env: dict[str, str],
         state: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """``runner read SOURCE | runner write brevo`` through a real pipe; the echoed states."""
    catalog = model_catalog(source, env, config.parent)
    extra: list[str] = []
    if state is not None:
        saved = config.parent / f"{source}-state.jsonl"
        saved.write_text("\n".join(json.dumps(m) for m in state))
        extra = ["--state", str(saved)]
    read = subprocess.Popen([RUNNER, "read", source, "--config", str(config), "--catalog",
                             str(catalog), *extra], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    write = subprocess.run([RUNNER, "write", "brevo", "--config", str(brevo_config),
                            "--catalog", str(catalog)], stdin=read.stdout, env=env,
                           capture_output=True, timeout=180)
    assert read.stdout is not None and read.stderr is not None
    read.stdout.close()
    assert write.returncode == 0, write.stderr.decode()
    assert read.wait(timeout=60) == 0, read.stderr.read().decode()
    return messages(write.stdout)


MAPPING = {"email": "email", "first_name": "FIRSTNAME", "last_name": "LASTNAME",
           "phone": "SMS", "group.name": "CUSTOMER_GROUP", "order_count": "ORDER_COUNT",
           "amount_spent": "TOTAL_SPENT", "addresses[0].city": "CITY",
           "consent.email.state": "NEWSLETTER", "custom_fields.Shoe size": "SHOE_SIZE"}
NEWSLETTER = {"opted_in": "subscribed", "opted_out": "unsubscribed", "pending": "pending",
              None: "unknown"}


@pytest.fixture
def brevo_config(brevo: BrevoBox, tmp_path: Path) -> Path:
    path = tmp_path / "brevo.json"
    path.write_text(json.dumps({"api_url": brevo.url, "api_key": brevo.key, "lists": LISTS,
                                "state_dir": str(tmp_path / "state"),
                                "customer_mapping": MAPPING}))
    return path


def stats(echoed: list[dict[str, Any]], stream: str) -> tuple[float, float]:
    """(records, rejections) the destination counted for ``stream`` in its echoed states."""
    found = [m["state"]["destinationStats"] for m in echoed if m["type"] == "STATE"
             and m["state"]["stream"]["stream_descriptor"]["name"] == stream]
    return (sum(s["recordCount"] for s in found), sum(s["rejectedRecordCount"] for s in found))


def test_marketbox_syncs_into_brevo_through_the_model(
        servers: Any, brevo: BrevoBox, brevo_config: Path, plugin_env: dict[str, str],
        tmp_path: Path) -> None:
    listed = subprocess.run([RUNNER, "connectors"], env=plugin_env, capture_output=True,
                            timeout=60).stdout.decode()
    assert "marketbox" in listed.split()  # found through its entry point, sandbox and all
    shop = Marketbox(servers("marketbox"), tmp_path)
    customers, orders = shop.get("customers"), shop.get("orders")
    carts, products, info = shop.get("carts"), shop.get("products"), shop.get("shop")
    echoed = pipe("marketbox", shop.config, brevo_config, plugin_env)
    assert stats(echoed, "commerce_customers") == (len(customers), 0)
    assert stats(echoed, "commerce_orders") == (len(orders), 0)
    held = brevo.state()

    # Contacts: the mapped attributes, consent among them, the platform's own totals.
    contacts = brevo.contacts()
    assert len(contacts) == len(customers)
    for customer in customers:
        contact = contacts[customer["email_address"]]
        attributes = contact["attributes"]
        assert attributes["FIRSTNAME"] == customer["given_name"]
        assert attributes["LASTNAME"] == customer["family_name"]
        assert attributes["CUSTOMER_GROUP"] == customer["tier"]["label"]
        assert attributes["CITY"] == customer["address"]["town"]
        assert attributes["SHOE_SIZE"] == customer["traits"][0]["value"]
        assert attributes["NEWSLETTER"] == NEWSLETTER[customer["newsletter"]]
        assert attributes["ORDER_COUNT"] == customer["stats"]["orders"]
        assert attributes["TOTAL_SPENT"] == pytest.approx(float(customer["stats"]["spent"]))
        # A national number, made international with the address's country (DE).
        expected_sms = ("+49" + customer["mobile"].replace(" ", "")[1:]
                        if customer["mobile"] else None)
        assert attributes.get("SMS") == expected_sms
        assert contact["emailBlacklisted"] is False  # consent is never written as a blacklist

    # Lists: everyone, the buyers by Marketbox's purchase rule, the abandoned carts of those
    # who accept reminders (not a guest's, not one of a customer who said no).
    def members(list_id: int) -> set[str]:
        return {email for email, c in contacts.items() if list_id in c["listIds"]}

    email_of = {c["id"]: c["email_address"] for c in customers}
    buyers = {email_of[o["customer"]] for o in orders
              if o["customer"] and o["status"] in PURCHASES}
    reminded = {c["id"] for c in customers if c["cart_reminders"] == "yes"}
    abandoned = {email_of[c["customer"]] for c in carts
                 if c["state"] == "abandoned" and c["customer"] in reminded}
    assert members(LISTS["all_customers"]) == set(email_of.values())
    assert members(LISTS["buyers"]) == buyers and 0 < len(buyers) < len(customers)
    assert members(LISTS["abandoned_cart"]) == abandoned
    assert len(abandoned) < sum(c["state"] == "abandoned" for c in carts)  # others left out

    # Orders: keyed by the shop, the platform's status word, amounts and lines.
    sent = {o["id"]: o for o in held["orders"]}
    assert set(sent) == {f"{shop.shop}-{o['id']}" for o in orders}
    for order in orders:
        brevo_order = sent[f"{shop.shop}-{order['id']}"]
        assert brevo_order["status"] == order["status"]
        assert brevo_order["storeId"] == shop.shop
        assert brevo_order["amount"] == pytest.approx(float(order["amounts"]["total"]))
        assert brevo_order["identifiers"] == {"email_id": order["contact_email"]}
        assert [(line["productId"], line["variantId"], line["quantity"])
                for line in brevo_order["products"]] == [
            (str(i["product"]), i["variant"], i["qty"]) for i in order["items"]]

    # Products: URLs on the storefront (a context), variants under their parent, stock.
    catalog = {p["id"]: p for p in held["products"]}
    for product in products:
        parent = catalog[f"{shop.shop}-{product['id']}"]
        assert parent["url"] == f"{info['storefront']}/products/{product['handle']}"
        assert parent["isDeleted"] is (not product["published"])
        assert parent["stock"] == sum(v["stock"] for v in product["variants"])
        if len(product["variants"]) > 1:
            for variant in product["variants"]:
                item = catalog[f"{shop.shop}-{product['id']}-{variant['id']}"]
                assert item["parentId"] == parent["id"] and item["stock"] == variant["stock"]

    # Cart events: the carts this first run finds were left before it (a backfill of
    # listable carts): the abandoned ones join the list (above) but, as the backfill's
    # orders, fire no automation.
    assert [c for c in carts if c["customer"] in reminded and c["state"] in ("open",
                                                                            "abandoned")]
    assert not [e for e in held["events"] if e["event_name"].startswith("cart_")]

    # A second run reads only what changed (its cursor, its pages) and Brevo follows.
    refunded = next(o for o in orders if o["status"] == "fulfilled" and o["customer"])
    archived = next(c["id"] for c in customers if email_of[c["id"]] in buyers
                    and c["id"] != refunded["customer"])
    shop.change({"refund": [refunded["id"]], "rename": [customers[0]["id"]],
                 "archive": [archived]})
    again = pipe("marketbox", shop.config, brevo_config, plugin_env, state=echoed)
    assert stats(again, "commerce_orders")[0] < len(orders)
    held = brevo.state()
    contacts = brevo.contacts()
    assert {o["id"]: o for o in held["orders"]}[f"{shop.shop}-{refunded['id']}"][
        "status"] == "refunded"
    changed = [e for e in held["events"] if e["event_name"] == "order_status_changed"]
    assert [(e["event_properties"]["previous_status"], e["event_properties"]["new_status"])
            for e in changed] == [("fulfilled", "refunded")]
    owner = next(c for c in shop.get("customers") if c["id"] == refunded["customer"])
    assert contacts[email_of[owner["id"]]]["attributes"]["ORDER_COUNT"] == \
        owner["stats"]["orders"]
    assert contacts[email_of[customers[0]["id"]]]["attributes"]["LASTNAME"] == "Renamed"
    assert contacts[email_of[archived]]["listIds"] == []  # gone from the shop: off the lists


def test_bigcommerce_and_marketbox_share_one_brevo(
        servers: Any, brevo: BrevoBox, brevo_config: Path, plugin_env: dict[str, str],
        tmp_path: Path) -> None:
    """Two platforms' stores in one Brevo, the Marketbox shop named exactly as the BigCommerce
    store: the destination keys a (platform, account) pair, the first comer by its account
    and the other by ``{platform}-{account}``, so the order and product ids both platforms
    number from 1 land side by side."""
    store = servers("bigcommerce", "--customers", "15", "--orders", "30", "--products", "4",
                    "--seed", "5", "--plan", "enterprise").ready
    shop = Marketbox(servers("marketbox", "--shop", store["store_hash"]), tmp_path)
    assert store["store_hash"] == shop.shop
    bigcommerce = tmp_path / "bigcommerce.json"
    bigcommerce.write_text(json.dumps({"api_url": store["url"], "access_token":
                                       store["access_token"], "store_hash": store["store_hash"]}))
    first = pipe("bigcommerce", bigcommerce, brevo_config, plugin_env)
    before = brevo.state()
    second = pipe("marketbox", shop.config, brevo_config, plugin_env)
    after = brevo.state()
    assert stats(first, "commerce_orders")[1] == stats(second, "commerce_orders")[1] == 0
    orders = {o["id"]: o for o in after["orders"]}
    assert len(orders) == len(before["orders"]) + len(shop.get("orders"))
    assert orders[f"{store['store_hash']}-1"] == {o["id"]: o for o in before["orders"]}[
        f"{store['store_hash']}-1"]  # BigCommerce's order 1 untouched by Marketbox's
    assert orders[f"marketbox-{shop.shop}-1"]["storeId"] == f"marketbox-{shop.shop}"
    products = {p["id"] for p in after["products"]}
    assert {f"{store['store_hash']}-1", f"marketbox-{shop.shop}-1"} <= products
    assert len(after["contacts"]) == len(before["contacts"]) + len(shop.get("customers"))
    old = {c["email"]: c for c in before["contacts"]}
    assert all(c == old[c["email"]] for c in after["contacts"] if c["email"] in old)
    # A second BigCommerce run finds its own store's records as they were: nothing to send.
    pipe("bigcommerce", bigcommerce, brevo_config, plugin_env)
    assert {o["id"]: o for o in brevo.state()["orders"]} == orders


def test_the_plugin_imports_nothing_of_the_brevo_destination_or_the_app(
        plugin_env: dict[str, str]) -> None:
    """Loaded alone (a fresh process), the plugin brings in the framework and nothing of the
    built-in connectors or the app; its files import only the framework."""
    loaded = subprocess.run(
        [str(Path(RUNNER).parent / "python"), "-c",
         "import sys, tajo_marketbox; print(sorted(m for m in sys.modules "
         "if m.split('.')[0] in ('connectors', 'app')))"],
        env=plugin_env, capture_output=True, timeout=60)
    assert loaded.returncode == 0, loaded.stderr.decode()
    assert loaded.stdout.decode().strip() == "[]"
    for path in PLUGIN.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level
                     else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            assert not [n for n in names if n.split(".")[0] in ("connectors", "app")], path
