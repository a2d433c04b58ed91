"""The Brevo destination reads only the commerce model: no platform's field or stream name in
``connectors/brevo/``.

The names looked for are BigCommerce's that the destination read before it read the model
(``DESTINATION_READS`` in test_commerce_model.py lists them with the model field of each) and
the other names of its API streams. Words Brevo and the model share with BigCommerce
(``customers``, ``orders``, ``products``, ``categories``, ``email``, ``billing_address``,
``payment_method``) are Brevo's own nouns too, and ``store`` is a kind of the model, so they
are not looked for. A name is found as a whole word (``category_ids``, the model's, is not
``category_id``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import BrevoBox, run_cli

from framework.protocol import messages as p

ROOT = Path(__file__).resolve().parents[1]
BREVO = sorted((ROOT / "connectors" / "brevo").rglob("*.py"))

#: BigCommerce's field names (records, webhooks) and stream names the destination used to read.
BIGCOMMERCE_NAMES = (
    # fields
    "store_hash", "status_id", "NOT_COUNTED", "total_inc_tax", "refunded_amount",
    "currency_code", "date_created", "date_modified", "is_deleted", "customer_group_id",
    "accepts_product_review_abandoned_cart_emails", "form_fields", "attribute_id",
    "attribute_value", "state_or_province", "country_iso2", "street_1", "secure_url",
    "custom_url", "url_standard", "is_thumbnail", "calculated_price", "is_visible",
    "inventory_level", "option_values", "available_to_sell", "location_enabled",
    "consignments", "price_inc_tax", "base_price", "webhook_scope", "redirect_urls",
    "checkout_url", "line_items", "physical_items", "digital_items", "cart_amount",
    "updated_time", "category_id", "store/cart",
    # streams
    "customer_groups", "customer_attributes", "order_products", "order_coupons",
    "inventory_locations", "\"inventory\"", "\"carts\"", "\"channels\"",
    # the platform itself
    "bigcommerce", "BigCommerce",
)


@pytest.mark.parametrize("path", BREVO, ids=[p.name for p in BREVO])
def test_no_bigcommerce_name_in_the_brevo_destination(path: Path) -> None:
    text = path.read_text()
    found = sorted({name for name in BIGCOMMERCE_NAMES if re.search(
        rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", text)})
    assert not found, f"{path.relative_to(ROOT)} names {found}"


def test_the_list_catches_what_it_is_for() -> None:
    """The check is not vacuous: the destination before the switch fails it."""
    before = ('store = str(data.get("store_hash", ""))\n'
              'counted = order.get("status_id") not in NOT_COUNTED\n'
              'elif stream == "order_products":\n')
    assert {n for n in BIGCOMMERCE_NAMES if re.search(
        rf"(?<![A-Za-z0-9_]){re.escape(n)}(?![A-Za-z0-9_])", before)} == {
        "store_hash", "status_id", "NOT_COUNTED", "order_products"}


def test_records_of_an_api_stream_are_not_sent_and_say_why(brevo: BrevoBox,
                                                          destination: Path) -> None:
    """A pipe without the model's catalog reads the API streams: the destination says, once
    per stream, that their records are not sent and what to ask the source for."""
    record = {"store_hash": "abc", "id": 1, "email": "ann@example.com", "first_name": "Ann"}
    stdin = p.record_line("customers", record, 1) * 2 + p.dump(
        p.state_message("customers", {"stores": {}}))
    result = run_cli("runner", "write", "brevo", "--config", str(destination), stdin=stdin)
    assert result.returncode == 0, result.stderr.decode()
    warned = [line for line in result.stderr.decode().splitlines()
              if "is not one of the commerce model's" in line]
    assert len(warned) == 1 and "stream customers" in warned[0], result.stderr.decode()
    assert brevo.contacts() == {}
