"""``customer_mapping`` against the commerce model (connectors/brevo/mapping.py), in-process: a
key that names no field of the model's customer is refused with the fields there are (it would
fill its attribute with nothing, on every contact, without a word), the product page's keys
pass once the app has put them in the model's paths, and ``check`` says so before any call."""

from __future__ import annotations

import pytest

from app.sync import model_mapping
from connectors.brevo import connector as brevo
from connectors.brevo.mapping import DEFAULT_MAPPING, ContactMapper, check_mapping
from framework.errors import ConfigError

#: The product page's customer_mapping, as it is written there (BigCommerce's field names).
PRODUCT_PAGE = {
    "email": "email", "first_name": "FIRSTNAME", "last_name": "LASTNAME", "phone": "SMS",
    "company": "COMPANY", "addresses[0].city": "CITY", "addresses[0].state": "STATE",
    "addresses[0].country": "COUNTRY", "addresses[0].zip": "ZIP", "orders_count": "ORDER_COUNT",
    "total_spent": "TOTAL_SPENT", "date_created": "SIGNUP_DATE",
    "customer_group_id": "CUSTOMER_GROUP"}


def test_the_default_and_the_product_pages_mapping_name_fields_of_the_model() -> None:
    check_mapping(DEFAULT_MAPPING)
    check_mapping(model_mapping(PRODUCT_PAGE))
    check_mapping({"custom_fields.shoe_size": "SHOE", "addresses[1].line1": "STREET2",
                   "consent.email.state": "OPT_IN", "group.name": "GROUP"})


@pytest.mark.parametrize("key", ["date_of_birth", "addresses.city", "addresses[0].town",
                                 "custom_fields.", "group..name", "consent.fax"])
def test_a_key_that_names_nothing_is_refused_with_the_fields_there_are(key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        ContactMapper({key: "X"}, lambda store: None)
    message = caught.value.message
    assert message.startswith(f"customer_mapping: {key!r} is not a field of the commerce model")
    assert "first_name" in message and "custom_fields.<name>" in message
    assert "\n" not in message


def test_check_fails_on_such_a_key_before_calling_brevo() -> None:
    config = {"api_url": "http://127.0.0.1:9", "api_key": "xkeysib-secret",
              "customer_mapping": {"birthday": "BIRTHDAY"}, "lists": {"all_customers": 2}}
    status = brevo.check(config)
    assert status.status == "FAILED"
    assert status.message is not None and "'birthday' is not a field" in status.message
