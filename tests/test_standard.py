"""The standard suite, generated for every built-in connector."""

from __future__ import annotations

from pathlib import Path

from connectors.bigcommerce import connector as bigcommerce
from connectors.sqlite import connector as sqlite
from framework.devkit.testing import destination_tests, source_tests

TestBigCommerce = source_tests(
    bigcommerce, sandbox_args=["--customers", "120", "--orders", "300", "--products", "40",
                               "--seed", "21", "--plan", "enterprise"],
    config=lambda ready: {"api_url": ready["url"], "store_hash": ready["store_hash"],
                          "access_token": ready["access_token"], "page_size": 50},
    # known only from spooled webhooks and beacons (tests/test_airbyte_standard.py spools some)
    empty=frozenset({"carts", "commerce_carts", "storefront_events",
                     "commerce_storefront_events"}))

TestSqlite = destination_tests(
    sqlite, config=lambda tmp: {"path": str(Path(tmp) / "standard.db")},
    catalog=bigcommerce.configured_catalog())
