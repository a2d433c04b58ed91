"""What a Brevo account holds, in memory: contacts, attributes, lists, events and the catalog.

Validation follows Brevo's documented rules (see ``../shared/reference/brevo-api.md``); where
Brevo does not document a rule or a message, the choice made is said next to the code.
"""

from __future__ import annotations

import csv
import io
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

# Brevo validates emails server side and documents no exact rule; a practical address check.
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
EVENT_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
ISO_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?"
                           r"(Z|[+-]\d{2}:\d{2})$")
PROPERTY_KEY = EVENT_NAME  # "Keys are limited to 255 characters, alphanumerical and - _ only"
BREVO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
ATTRIBUTE_TYPES = {"text", "date", "float", "boolean", "id", "category", "multiple-choice", "user"}
ATTRIBUTE_CATEGORIES = {"normal", "transactional", "category", "calculated", "global"}
# The SDK's rule: "id" only for transactional attributes, "category" only for category ones,
# "user" and "multiple-choice" only for normal ones.
TYPE_ONLY_IN = {"id": "transactional", "category": "category", "user": "normal",
                "multiple-choice": "normal"}
IDENTIFIER_TYPES = {"email_id", "contact_id", "ext_id", "phone_id", "whatsapp_id",
                    "landline_number_id"}
MAX_LIST_BATCH = 150
#: "up to 100" products or categories a batch; products "up to 1000 when updateEnabled is true
#: and the account has an increased limit" (brevo-python 5.1.0's batch docstrings).
MAX_CATALOG_BATCH = 100
MAX_RAISED_PRODUCT_BATCH = 1000
MAX_EVENTS_BATCH = 1000  # not documented by Brevo; the sandbox takes this many
MAX_EVENT_PROPERTIES = 50 * 1024
MAX_ORDER_BATCH = 1000  # "up to 1,000 orders per request" (docs/import-your-orders)


class BrevoError(Exception):
    """An error answered with Brevo's body ``{code, message}``."""

    def __init__(self, status: int, code: str, message: str,
                 metadata: dict[str, Any] | None = None) -> None:
        self.status, self.code, self.message, self.metadata = status, code, message, metadata

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.metadata:
            body["metadata"] = self.metadata
        return body


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@dataclass
class Contact:
    id: int
    email: str | None
    attributes: dict[str, Any] = field(default_factory=dict)
    list_ids: set[int] = field(default_factory=set)
    email_blacklisted: bool = False
    sms_blacklisted: bool = False
    whatsapp_blacklisted: bool = False
    ext_id: str | None = None
    created_at: str = field(default_factory=now_iso)
    modified_at: str = field(default_factory=now_iso)

    def as_api(self) -> dict[str, Any]:
        return {"id": self.id, "email": self.email, "emailBlacklisted": self.email_blacklisted,
                "smsBlacklisted": self.sms_blacklisted,
                "whatsappBlacklisted": self.whatsapp_blacklisted, "createdAt": self.created_at,
                "modifiedAt": self.modified_at, "attributes": dict(self.attributes),
                "listIds": sorted(self.list_ids), "statistics": {}}


@dataclass
class Process:
    id: int
    name: str
    rows: list[dict[str, Any]]
    options: dict[str, Any]
    status: str = "queued"
    invalid: list[dict[str, Any]] = field(default_factory=list)
    queued_at: float = field(default_factory=time.monotonic)
    ends_as: str = "completed"  # or "failed", "cancelled" (set by /_sandbox/imports)


@dataclass
class Account:
    """One Brevo account."""

    contacts: dict[int, Contact] = field(default_factory=dict)
    by_email: dict[str, int] = field(default_factory=dict)
    by_sms: dict[str, int] = field(default_factory=dict)
    # Default attributes of a new account: Brevo's docs do not list them; integrations
    # (and the seed's mapping) use FIRSTNAME, LASTNAME and SMS.
    attributes: dict[str, dict[str, Any]] = field(default_factory=lambda: {
        name: {"name": name, "category": "normal", "type": "text"}
        for name in ("FIRSTNAME", "LASTNAME", "SMS")})
    folders: dict[int, str] = field(default_factory=lambda: {1: "Your first folder"})
    lists: dict[int, dict[str, Any]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    products: dict[str, dict[str, Any]] = field(default_factory=dict)
    categories: dict[str, dict[str, Any]] = field(default_factory=dict)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    order_batches: list[dict[str, Any]] = field(default_factory=list)
    processes: dict[int, Process] = field(default_factory=dict)
    next_contact: int = 1
    next_list: int = 1
    next_process: int = 1
    imports_end_as: list[str] = field(default_factory=list)  # how the next imports end
    product_batch_limit: int = MAX_CATALOG_BATCH  # 1,000: an account with the raised limit
    # Who the account is (GET /v3/account); /_sandbox/account changes it.
    organization_id: str = "sandbox-organization"
    company_name: str = "Sandbox Store"
    owner_email: str = "owner@sandbox.example.com"

    # --- contacts -------------------------------------------------------------------------

    def find(self, identifier: str, kind: str | None = None) -> Contact | None:
        """The contact an identifier names: by ``kind`` (an ``identifierType``), else an id
        when it is all digits and an email otherwise (Brevo's default)."""
        if kind not in (None, *IDENTIFIER_TYPES):
            raise BrevoError(400, "invalid_parameter", "identifierType is invalid")
        if kind == "contact_id" or (kind is None and identifier.isdigit()):
            return self.contacts.get(int(identifier)) if identifier.isdigit() else None
        if kind == "ext_id":
            return next((c for c in self.contacts.values() if c.ext_id == identifier), None)
        if kind == "phone_id":
            found = self.by_sms.get(identifier)
        else:
            found = self.by_email.get(identifier.lower())
        return self.contacts.get(found) if found else None

    def add_list(self, list_id: int, name: str, folder_id: int) -> None:
        self.lists[list_id] = {"id": list_id, "name": name, "folderId": folder_id,
                               "createdAt": now_iso()}

    def list_view(self, list_id: int, one: bool = True) -> dict[str, Any]:
        """A list as Brevo shows it, with its subscriber counts; ``createdAt`` only when it
        is shown alone (the SDK's list of lists has no such field)."""
        members = [c for c in self.contacts.values() if list_id in c.list_ids]
        blacklisted = sum(1 for c in members if c.email_blacklisted)
        shown = {k: v for k, v in self.lists[list_id].items() if one or k != "createdAt"}
        return {**shown, "totalSubscribers": len(members), "uniqueSubscribers": len(members),
                "totalBlacklisted": blacklisted}

    def _check_sms(self, sms: Any, contact: Contact | None, action: str) -> None:
        owner = self.by_sms.get(str(sms))
        if owner is not None and (contact is None or owner != contact.id):
            # The SMS wording is inferred from the email one (see the reference notes).
            raise BrevoError(400, "duplicate_parameter",
                             f"Unable to {action} contact, SMS is already associated with "
                             "another Contact", {"duplicate_identifiers": ["SMS"]})

    def _apply(self, contact: Contact, attributes: dict[str, Any] | None,
               list_ids: list[int] | None, unlink: list[int] | None,
               email_blacklisted: bool | None, sms_blacklisted: bool | None) -> None:
        for name, value in (attributes or {}).items():
            name = name.upper()
            if name == "EMAIL":
                self._rekey(contact, str(value))
                continue
            if name not in self.attributes:
                continue  # unknown attributes are ignored (as Brevo does at import)
            if name == "SMS":
                if contact.attributes.get("SMS"):
                    self.by_sms.pop(str(contact.attributes["SMS"]), None)
                if value:
                    self.by_sms[str(value)] = contact.id
            contact.attributes[name] = value
        for list_id in list_ids or []:
            if list_id not in self.lists:
                raise BrevoError(404, "document_not_found", "List ID not found")
            contact.list_ids.add(list_id)
        for list_id in unlink or []:
            contact.list_ids.discard(list_id)
        if email_blacklisted is not None:
            contact.email_blacklisted = email_blacklisted
        if sms_blacklisted is not None:
            contact.sms_blacklisted = sms_blacklisted
        contact.modified_at = now_iso()

    def _rekey(self, contact: Contact, email: str) -> None:
        if not EMAIL.match(email):
            raise BrevoError(400, "invalid_parameter", "Invalid email address")
        if contact.email:
            self.by_email.pop(contact.email.lower(), None)
        contact.email = email
        self.by_email[email.lower()] = contact.id

    def create_contact(self, body: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
        """``POST /v3/contacts``: 201 with the id, or 204 when ``updateEnabled`` updated one."""
        email = body.get("email")
        attributes = body.get("attributes") or {}
        if not email and not attributes.get("SMS") and not body.get("ext_id"):
            raise BrevoError(400, "missing_parameter", "email is missing")
        if email is not None and (not isinstance(email, str) or not EMAIL.match(email)):
            raise BrevoError(400, "invalid_parameter", "Invalid email address")
        existing = self.find(email) if email else None
        if existing is not None:
            if not body.get("updateEnabled"):
                raise BrevoError(400, "duplicate_parameter",
                                 "Unable to create contact, email is already associated with "
                                 "another Contact", {"duplicate_identifiers": ["email"]})
            self._check_sms(attributes.get("SMS"), existing, "update")
            self._apply(existing, attributes, body.get("listIds"), None,
                        body.get("emailBlacklisted"), body.get("smsBlacklisted"))
            return 204, None
        if attributes.get("SMS"):
            self._check_sms(attributes["SMS"], None, "create")
        contact = Contact(self.next_contact, None, ext_id=body.get("ext_id"))
        if email:
            self._rekey(contact, email)
        self.next_contact += 1
        self.contacts[contact.id] = contact
        self._apply(contact, attributes, body.get("listIds"), None,
                    body.get("emailBlacklisted"), body.get("smsBlacklisted"))
        return 201, {"id": contact.id}

    def update_contact(self, identifier: str, body: dict[str, Any],
                       kind: str | None = None) -> None:
        """``PUT /v3/contacts/{identifier}`` (``?identifierType=`` says what it is)."""
        contact = self.find(identifier, kind)
        if contact is None:
            raise BrevoError(404, "document_not_found", "Contact does not exist")
        if isinstance(body.get("ext_id"), str):
            contact.ext_id = body["ext_id"]
        attributes = body.get("attributes") or {}
        self._check_sms(attributes.get("SMS"), contact, "update")
        self._apply(contact, attributes, body.get("listIds"), body.get("unlinkListIds"),
                    body.get("emailBlacklisted"), body.get("smsBlacklisted"))

    def delete_contact(self, identifier: str, kind: str | None = None) -> None:
        """``DELETE /v3/contacts/{identifier}``: the contact, its list memberships and its
        identifiers go (204); an unknown one is Brevo's 404 ``document_not_found``."""
        contact = self.find(identifier, kind)
        if contact is None:
            raise BrevoError(404, "document_not_found", "Contact does not exist")
        del self.contacts[contact.id]
        if contact.email:
            self.by_email.pop(contact.email.lower(), None)
        for sms in [sms for sms, owner in self.by_sms.items() if owner == contact.id]:
            del self.by_sms[sms]

    def start_import(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /v3/contacts/import`` with ``jsonBody`` or ``fileBody`` (CSV): queued,
        processed later (its size is checked before: ``app.MAX_BODY_BYTES``)."""
        rows = body.get("jsonBody")
        if isinstance(body.get("fileBody"), str) and rows is None:
            rows = csv_rows(body["fileBody"])
        if not isinstance(rows, list):
            raise BrevoError(400, "missing_parameter",
                             "One of fileUrl, fileBody or jsonBody is required")
        if not body.get("listIds") and not body.get("newList"):
            raise BrevoError(400, "missing_parameter", "listIds or newList is required")
        for list_id in body.get("listIds") or []:
            if list_id not in self.lists:
                raise BrevoError(404, "document_not_found", "List ID not found")
        # The SDK names processes by kind: an import is IMPORTUSER.
        process = Process(self.next_process, "IMPORTUSER", rows, body)
        if self.imports_end_as:
            process.ends_as = self.imports_end_as.pop(0)
        self.processes[process.id] = process
        self.next_process += 1
        return {"processId": process.id}

    def advance(self, process: Process, delay_s: float) -> None:
        """Move an import along: queued, then in process, then completed (rows applied), or
        failed or cancelled (nothing applied) when the sandbox was told so."""
        age = time.monotonic() - process.queued_at
        if process.status == "queued" and age >= delay_s:
            process.status = "in_process"
        if process.status == "in_process" and age >= 2 * delay_s:
            if process.ends_as == "completed":
                self._run_import(process)
            process.status = process.ends_as

    def _run_import(self, process: Process) -> None:
        options = process.options
        update = options.get("updateExistingContacts", True)
        empty = options.get("emptyContactsAttributes", False)
        for index, row in enumerate(process.rows):
            email = row.get("email") if isinstance(row, dict) else None
            if not isinstance(email, str) or not EMAIL.match(email):
                process.invalid.append({"row": index, "reason": "Invalid email address",
                                        "file": "invalid_emails", "email": email})
                continue
            contact = self.find(email)
            attributes = {k.upper(): v for k, v in (row.get("attributes") or {}).items()
                          if v is not None and (v != "" or empty)}
            try:
                if contact is None:
                    self._check_sms(attributes.get("SMS"), None, "create")
                    contact = Contact(self.next_contact, None)
                    self._rekey(contact, email)
                    self.next_contact += 1
                    self.contacts[contact.id] = contact
                elif not update:
                    continue
                else:
                    self._check_sms(attributes.get("SMS"), contact, "update")
            except BrevoError as exc:  # an SMS another contact has
                process.invalid.append({"row": index, "reason": exc.message,
                                        "file": "duplicate_phone_id", "email": email})
                continue
            # The import's blacklist options only ever add a blacklist; false changes nothing.
            self._apply(contact, attributes, options.get("listIds"), None,
                        True if options.get("emailBlacklist") else None,
                        True if options.get("smsBlacklist") else None)

    def list_members(self, list_id: int, body: dict[str, Any], add: bool) -> dict[str, Any]:
        """``POST /v3/contacts/lists/{id}/contacts/add|remove`` (150 per call)."""
        if list_id not in self.lists:
            raise BrevoError(404, "document_not_found", "List ID not found")
        if not add and body.get("all"):
            for member in self.contacts.values():
                member.list_ids.discard(list_id)
            return {"contacts": {"processId": 0}}
        keys = [k for k in ("emails", "ids", "extIds") if k in body]
        if len(keys) != 1 or not isinstance(body[keys[0]], list):
            raise BrevoError(400, "invalid_parameter",
                             "Exactly one of emails, ids or extIds is expected")
        values = body[keys[0]]
        if len(values) > MAX_LIST_BATCH:
            raise BrevoError(400, "out_of_range",
                             f"A maximum of {MAX_LIST_BATCH} contacts can be sent at once")
        success, failure = [], []
        for value in values:
            contact = self.find(str(value))
            if contact is None or (not add and list_id not in contact.list_ids):
                failure.append(value)
                continue
            (contact.list_ids.add if add else contact.list_ids.discard)(list_id)
            success.append(value)
        return {"contacts": {"success": success, "failure": failure, "total": len(values)}}

    # --- events and catalog ---------------------------------------------------------------

    def check_event(self, event: Any) -> dict[str, Any]:
        if not isinstance(event, dict):
            raise BrevoError(400, "invalid_parameter", "event must be an object")
        name = event.get("event_name")
        if not isinstance(name, str) or not EVENT_NAME.match(name):
            raise BrevoError(400, "invalid_parameter",
                             "event_name is required: up to 255 letters, digits, - and _")
        identifiers = event.get("identifiers")
        if not isinstance(identifiers, dict) or not IDENTIFIER_TYPES & set(identifiers):
            raise BrevoError(400, "missing_parameter", "identifiers is required")
        email = identifiers.get("email_id")
        if email is not None and not (isinstance(email, str) and EMAIL.match(email)):
            raise BrevoError(400, "invalid_parameter", "Invalid email address")
        properties = event.get("event_properties") or {}
        if len(orjson.dumps(properties)) > MAX_EVENT_PROPERTIES:
            raise BrevoError(400, "invalid_parameter", "event_properties exceeds 50KB")
        bad = next(bad_keys(properties), None)
        if bad is not None:
            raise BrevoError(400, "invalid_parameter", f"event_properties key {bad!r} is "
                             "invalid: up to 255 letters, digits, - and _")
        date = event.get("event_date")
        if date is not None and not ISO_DATE_TIME.match(str(date)):
            raise BrevoError(400, "invalid_parameter", "event_date must be an ISO 8601 "
                             "date-time, e.g. 2024-01-24T17:39:57+01:00")
        checked = {**event, "event_date": date or now_iso()}
        contact = self._event_contact(identifiers)
        if contact is not None:  # the SDK's answer has contact_id (optional: when known)
            checked["contact_id"] = contact.id
        return checked

    def _event_contact(self, identifiers: dict[str, Any]) -> Contact | None:
        for kind in ("contact_id", "email_id", "ext_id", "phone_id"):
            if identifiers.get(kind) not in (None, ""):
                return self.find(str(identifiers[kind]), kind)
        return None

    def upsert_catalog(self, table: dict[str, dict[str, Any]], items: Any, kind: str,
                       update: bool) -> dict[str, int]:
        """``POST /v3/products/batch`` and ``/v3/categories/batch`` (100 per call)."""
        if not isinstance(items, list) or not items:
            raise BrevoError(400, "missing_parameter", f"{kind} is required")
        most = (self.product_batch_limit if kind == "products" and update
                else MAX_CATALOG_BATCH)
        if len(items) > most:
            raise BrevoError(400, "out_of_range",
                             f"A maximum of {most} {kind} can be sent at once")
        ids = [str(item.get("id")) for item in items if isinstance(item, dict)]
        if len(ids) != len(items) or "None" in ids:
            raise BrevoError(400, "missing_parameter", "id is required for every item")
        if len(set(ids)) != len(ids):
            raise BrevoError(400, "invalid_parameter", f"Duplicate {kind} ids in the payload")
        created = updated = 0
        for item in items:
            key = str(item["id"])
            if key in table:
                if not update:
                    raise BrevoError(400, "duplicate_parameter", f"{kind} id {key} exists")
                table[key] = {**table[key], **item, "modifiedAt": now_iso()}
                updated += 1
            else:
                if not item.get("name"):
                    raise BrevoError(400, "missing_parameter", "name is required on create")
                table[key] = {**item, "createdAt": now_iso(), "modifiedAt": now_iso()}
                created += 1
        return {"createdCount": created, "updatedCount": updated}

    def check_order(self, order: Any) -> dict[str, Any]:
        if not isinstance(order, dict):
            raise BrevoError(400, "invalid_parameter", "order must be an object")
        for name in ("id", "createdAt", "updatedAt", "status", "amount", "products"):
            if order.get(name) in (None, ""):
                raise BrevoError(400, "missing_parameter", f"{name} is required")
        for name in ("createdAt", "updatedAt"):
            if not BREVO_DATE.match(str(order[name])):
                raise BrevoError(400, "invalid_parameter",
                                 f"{name} must be a UTC date-time YYYY-MM-DDTHH:mm:ssZ")
        # Types as the SDK's Order model has them: strings are not numbers, nor numbers ids.
        expect(order, {"id": str, "status": str, "amount": NUMBER, "storeId": str}, "")
        if not isinstance(order["products"], list):
            raise BrevoError(400, "invalid_parameter", "products must be an array")
        for index, product in enumerate(order["products"]):
            if not isinstance(product, dict) or "productId" not in product or (
                    "price" not in product) or not ("quantity" in product
                                                    or "quantityFloat" in product):
                raise BrevoError(400, "missing_parameter",
                                 "products need productId, price and quantity")
            expect(product, {"productId": str, "variantId": str, "price": NUMBER,
                             "quantity": int, "quantityFloat": NUMBER}, f"products[{index}].")
        return order

    def snapshot(self) -> dict[str, Any]:
        """Everything the account holds (for tests)."""
        return {
            "contacts": [{**c.as_api(), **({"ext_id": c.ext_id} if c.ext_id else {})}
                         for c in self.contacts.values()],
            "attributes": list(self.attributes.values()),
            "lists": list(self.lists.values()),
            "folders": [{"id": i, "name": n} for i, n in self.folders.items()],
            "events": self.events, "products": list(self.products.values()),
            "categories": list(self.categories.values()), "orders": list(self.orders.values()),
            "order_batches": self.order_batches,
            "account": {"organization_id": self.organization_id},
            "processes": [{"id": p.id, "status": p.status, "rows": len(p.rows),
                           "invalid": p.invalid} for p in self.processes.values()],
        }


def csv_rows(text: str) -> list[dict[str, Any]]:
    """A ``fileBody``: CSV, attributes separated by semicolons, a header row naming them
    (``EMAIL`` the contact's email); rows as ``jsonBody`` holds them."""
    reader = csv.reader(io.StringIO(text), delimiter=";")
    header = [name.strip().upper() for name in next(reader, [])]
    rows = []
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue
        values = dict(zip(header, cells, strict=False))
        rows.append({"email": values.pop("EMAIL", None),
                     "attributes": {k: v for k, v in values.items() if v != ""}})
    return rows


NUMBER = (int, float)


def expect(item: dict[str, Any], types: dict[str, Any], where: str) -> None:
    """Refuse a field of the wrong JSON type (booleans are not numbers)."""
    for name, kind in types.items():
        value = item.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, kind):
            wanted = {str: "a string", int: "an integer"}.get(kind, "a number")
            raise BrevoError(400, "invalid_parameter", f"{where}{name} must be {wanted}")


def bad_keys(properties: Any) -> Any:
    """Event property keys (nested ones too) Brevo refuses."""
    if isinstance(properties, dict):
        for key, value in properties.items():
            if not PROPERTY_KEY.match(str(key)):
                yield key
            yield from bad_keys(value)
    elif isinstance(properties, list):
        for value in properties:
            yield from bad_keys(value)
