"""Customers of the commerce model as Brevo contact attributes, through ``customer_mapping``.

A mapping key is a path in the model's customer record (``first_name``,
``addresses[0].city``, ``group.name``), a value the Brevo attribute it fills. Besides plain paths:

- ``custom_fields.<name>`` picks a custom field (a sign-up form field, a customer attribute)
  by its name;
- ``order_count`` and ``amount_spent`` are the platform's when the record has them, else
  computed from the orders this destination has seen.

Phones go to ``SMS`` in international form (region from the customer's first address, else the
store's country); a phone that cannot be made valid is left out, counted and reported with a
warning, and the contact still syncs.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

import phonenumbers

from framework.errors import ConfigError
from framework.protocol.catalog import data_path

#: The seed document's mapping, used when the config gives none.
DEFAULT_MAPPING: dict[str, str] = {
    "email": "email", "first_name": "FIRSTNAME", "last_name": "LASTNAME", "phone": "SMS",
    "company": "COMPANY", "addresses[0].city": "CITY", "addresses[0].region": "STATE",
    "addresses[0].country": "COUNTRY", "addresses[0].postal_code": "ZIP",
    "order_count": "ORDER_COUNT", "amount_spent": "TOTAL_SPENT",
    "created_at": "SIGNUP_DATE", "group.name": "CUSTOMER_GROUP",
}
COMPUTED = {"order_count", "amount_spent"}
#: Brevo attribute types for the computed and dated fields; everything else is text.
TYPES = {"order_count": "float", "amount_spent": "float", "created_at": "date"}
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
PHONE_CACHE = 8192  # numbers kept parsed (about 1 MB)
_PATH = re.compile(r"[^.\[\]]+(?:\.[^.\[\]]+|\[\d+\])*")


@functools.lru_cache(maxsize=256)
def _steps(path: str) -> tuple[tuple[str, str], ...]:
    return tuple(_STEP.findall(path))


def path_value(record: dict[str, Any], path: str) -> Any:
    """The value at ``a.b[0].c`` in a record (``None`` where it stops)."""
    node: Any = record
    for name, index in _steps(path):
        if index:
            node = node[int(index)] if isinstance(node, list) and len(node) > int(index) else None
        else:
            node = node.get(name) if isinstance(node, dict) else None
        if node is None:
            return None
    return node


@functools.lru_cache(maxsize=PHONE_CACHE)
def international_phone(raw: str, region: str | None) -> str | None:
    """``raw`` in E.164 when it is a valid number (national forms need the region). Parsed
    once per distinct (number, region) among the last ``PHONE_CACHE``: the parse and the check
    cost about 0.1 ms, and a contact is mapped again when its totals or its record change."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _customer_schema() -> dict[str, Any]:
    import json

    path = data_path("specs") / "schemas" / "commerce" / "v1" / "customer.json"
    schema: dict[str, Any] = json.loads(path.read_text())
    return schema


def check_mapping(mapping: dict[str, str]) -> None:
    """Every key is a path of the model's customer (or a custom field by name): a key that
    names nothing would fill its attribute with nothing, silently, on every contact."""
    schema = _customer_schema()
    for key in mapping:
        if key.startswith("custom_fields.") and key.removeprefix("custom_fields."):
            continue
        node: Any = schema
        for name, index in _STEP.findall(key):
            node = (node.get("items") if index else (node.get("properties") or {}).get(name))
            if not isinstance(node, dict):
                break
        if not isinstance(node, dict) or not _PATH.fullmatch(key):
            fields = ", ".join(sorted(schema["properties"]))
            raise ConfigError(
                f"customer_mapping: {key!r} is not a field of the commerce model's customer "
                f"(fields: {fields}; addresses[0].city and the like for an address, "
                "custom_fields.<name> for a form field or attribute); fix or remove the key")


class ContactMapper:
    """Turns customer records into (email, attributes); lookups come from the ledger."""

    def __init__(self, mapping: dict[str, str],
                 store_country: Callable[[str], str | None]) -> None:
        check_mapping(mapping)
        self.mapping = {k: v.upper() for k, v in mapping.items() if k != "email"}
        # (path, attribute, is a date) of what a record fills, worked out once
        self.fields = [(path, name, TYPES.get(path) == "date")
                       for path, name in self.mapping.items() if path not in COMPUTED]
        self.store_country = store_country
        self.phones_left_out: list[str] = []  # "store/id" of customers whose phone was invalid

    def attribute_types(self) -> dict[str, str]:
        """Brevo attributes this mapping writes, with the type each must have."""
        return {name: TYPES.get(path, "text") for path, name in self.mapping.items()}

    def computed(self) -> dict[str, str]:
        """Computed fields (``order_count``, ``amount_spent``) and their attributes."""
        return {path: name for path, name in self.mapping.items() if path in COMPUTED}

    @staticmethod
    def email(customer: dict[str, Any]) -> str | None:
        """The customer's email, normalized, or None when it cannot identify a contact."""
        email = customer.get("email")
        if not isinstance(email, str) or not EMAIL.match(email.strip()):
            return None
        return email.strip().lower()

    def contact(self, customer: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """(email, attributes) of a customer; raises ValueError when it cannot be a contact."""
        email = self.email(customer)
        if email is None:
            raise ValueError(f"invalid email {customer.get('email')!r}")
        attributes: dict[str, Any] = {}
        for path, name, is_date in self.fields:
            value = self._value(customer, path)
            if name == "SMS" and value:
                value = self._phone(customer, str(value))
            if value not in (None, "", []):
                attributes[name] = value[:10] if is_date else value
        return email, attributes

    @staticmethod
    def _value(customer: dict[str, Any], path: str) -> Any:
        if path.startswith("custom_fields."):
            wanted = path.removeprefix("custom_fields.")
            return next((f.get("value") for f in customer.get("custom_fields") or []
                         if f.get("name") == wanted), None)
        return path_value(customer, path)

    def _phone(self, customer: dict[str, Any], raw: str) -> str | None:
        """The region of a national number: the first address's country, else the store's."""
        region = (path_value(customer, "addresses[0].country_code")
                  or self.store_country(str(customer.get("account", ""))))
        phone = international_phone(raw, region)
        if phone is None:
            self.phones_left_out.append(f"{customer.get('account')}/{customer.get('id')}")
        return phone
