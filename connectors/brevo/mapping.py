"""BigCommerce customers as Brevo contact attributes, through the user's ``customer_mapping``.

A mapping key is a path in the customer record (``first_name``, ``addresses[0].city``), a value the
Brevo attribute it fills. Besides plain paths:

- ``form_fields.<name>`` and ``attributes.<name>`` pick a sign-up form field or a customer
  attribute by its name (BigCommerce gives attribute ids; the ``customer_attributes`` stream
  gives their names);
- ``customer_group_id`` fills the group's *name* (from the ``customer_groups`` stream);
- ``orders_count`` and ``total_spent`` are computed from the orders (BigCommerce has neither);
- the seed document's address names ``state`` and ``zip`` mean BigCommerce's
  ``state_or_province`` and ``postal_code``.

Phones go to ``SMS`` in international form (region from the customer's address, else the
store's country); a phone that cannot be made valid is left out, counted and reported with a
warning, and the contact still syncs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import phonenumbers

#: The seed document's mapping, used when the config gives none.
DEFAULT_MAPPING: dict[str, str] = {
    "email": "email", "first_name": "FIRSTNAME", "last_name": "LASTNAME", "phone": "SMS",
    "company": "COMPANY", "addresses[0].city": "CITY", "addresses[0].state": "STATE",
    "addresses[0].country": "COUNTRY", "addresses[0].zip": "ZIP",
    "orders_count": "ORDER_COUNT", "total_spent": "TOTAL_SPENT",
    "date_created": "SIGNUP_DATE", "customer_group_id": "CUSTOMER_GROUP",
}
ALIASES = {"state": "state_or_province", "zip": "postal_code"}
COMPUTED = {"orders_count", "total_spent"}
#: Brevo attribute types for the computed and dated fields; everything else is text.
TYPES = {"orders_count": "float", "total_spent": "float", "date_created": "date"}
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def path_value(record: dict[str, Any], path: str) -> Any:
    """The value at ``a.b[0].c`` in a record (``None`` where it stops)."""
    node: Any = record
    for name, index in _STEP.findall(path):
        if index:
            node = node[int(index)] if isinstance(node, list) and len(node) > int(index) else None
        else:
            node = node.get(ALIASES.get(name, name)) if isinstance(node, dict) else None
        if node is None:
            return None
    return node


def international_phone(raw: str, region: str | None) -> str | None:
    """``raw`` in E.164 when it is a valid number (national forms need the region)."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


class ContactMapper:
    """Turns customer records into (email, attributes); lookups come from the ledger."""

    def __init__(self, mapping: dict[str, str], group_name: Callable[[str, int], str | None],
                 attribute_name: Callable[[str, int], str | None],
                 store_country: Callable[[str], str | None]) -> None:
        self.mapping = {k: v.upper() for k, v in mapping.items() if k != "email"}
        self.group_name = group_name
        self.attribute_name = attribute_name
        self.store_country = store_country
        self.phones_left_out: list[str] = []  # "store/id" of customers whose phone was invalid

    def attribute_types(self) -> dict[str, str]:
        """Brevo attributes this mapping writes, with the type each must have."""
        return {name: TYPES.get(path, "text") for path, name in self.mapping.items()}

    def computed(self) -> dict[str, str]:
        """Computed fields (``orders_count``, ``total_spent``) and their attributes."""
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
        store = customer.get("store_hash", "")
        attributes: dict[str, Any] = {}
        for path, name in self.mapping.items():
            if path in COMPUTED:
                continue
            value = self._value(customer, path, store)
            if name == "SMS" and value:
                value = self._phone(customer, str(value))
            if value not in (None, "", []):
                attributes[name] = value[:10] if TYPES.get(path) == "date" else value
        return email, attributes

    def _value(self, customer: dict[str, Any], path: str, store: str) -> Any:
        if path == "customer_group_id":
            group = customer.get("customer_group_id")
            return self.group_name(store, group) if group else None
        if path.startswith("form_fields."):
            wanted = path.removeprefix("form_fields.")
            return next((f.get("value") for f in customer.get("form_fields") or []
                         if f.get("name") == wanted), None)
        if path.startswith("attributes."):
            wanted = path.removeprefix("attributes.")
            return next((a.get("attribute_value") for a in customer.get("attributes") or []
                         if self.attribute_name(store, a.get("attribute_id")) == wanted), None)
        return path_value(customer, path)

    def _phone(self, customer: dict[str, Any], raw: str) -> str | None:
        """The region of a national number: the first address's country, else the store's."""
        region = (path_value(customer, "addresses[0].country_code")
                  or self.store_country(str(customer.get("store_hash", ""))))
        phone = international_phone(raw, region)
        if phone is None:
            self.phones_left_out.append(f"{customer.get('store_hash')}/{customer.get('id')}")
        return phone
