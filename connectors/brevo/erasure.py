"""Erasures (the commerce model's ``erasure``): a shopper, or a whole store, to be forgotten.

A customer's erasure (``subject: customer``) removes what the ledger holds of the shopper in
that store (their customer row, their orders' rows, versions) and, when no other store or
platform feeding this Brevo account still has them as a customer, everything keyed by their
email: totals sent, consent, SMS number, abandoned carts, events waiting or in doubt, the
storefront's visitor links, held events and open browses, the dead letters naming them, and
the contact in Brevo, deleted
or anonymized as ``erasure`` says. The contact is shared by every store that has the
shopper: while another still has them, it stays, with this store's data gone from the
ledger (a log line says so).

An account's erasure (``subject: account``, e.g. a store that uninstalled the platform's app
some time ago) removes the store's rows from the ledger, and the email-keyed rows
of shoppers no other store has. Brevo's contacts stay: they are the Brevo account owner's
marketing data, which the store leaving this connector does not withdraw.

Erasures run at a flush that sends everything (after the imports that could bring a contact
back have ended). One that fails is dead-lettered and counted; the others go on.

Every statement is plain SQL that SQLite and PostgreSQL (``framework.storage.session``) both
run; a pattern bound as a parameter keeps PostgreSQL's ``%`` out of the statement text.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from connectors.brevo.ledger import DEAD_LETTER_FILE, Ledger

log = logging.getLogger("tajo.brevo")

#: What ``erasure`` may be. ``delete`` (the default) removes the contact: the shopper asked
#: to be forgotten, and their email, which names the contact, is personal data too.
#: ``anonymize`` keeps the contact (its email, its unsubscribed state, its campaign
#: statistics) with the mapped attributes emptied and out of this destination's lists, for
#: an account that must keep a suppression record.
MODES = ("delete", "anonymize")


def _like(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere (``!`` escapes the wildcards an email may
    hold: ``_`` would match any character)."""
    escaped = text.replace("!", "!!").replace("%", "!%").replace("_", "!_")
    return f"%{escaped}%"


class Erasures:
    """The erasures of a run, applied to the ledger and Brevo at a flush."""

    def __init__(self, ledger: Ledger, api: Any, mode: str, attributes: dict[str, str],
                 lists: list[int], refuse: Callable[[str, dict[str, Any], str], None]
                 ) -> None:
        self.ledger, self.db, self.api = ledger, ledger.db, api
        self.mode = mode if mode in MODES else "delete"
        self.attributes = attributes  # name -> Brevo type, of the mapped attributes
        self.lists = lists
        self.refuse = refuse  # (stream, record, why): dead-letter and count it
        self.waiting: list[tuple[str, dict[str, Any]]] = []  # (stream, record)
        self.done = 0

    def take(self, stream: str, record: dict[str, Any]) -> None:
        self.waiting.append((stream, record))

    def apply(self) -> None:
        """Every waiting erasure; one that fails is refused (dead-lettered), not retried."""
        waiting, self.waiting = self.waiting, []
        for stream, record in waiting:
            try:
                if record.get("subject") == "account":
                    self.forget_account(str(record["account"]))
                else:
                    self.forget_customer(record)
                self.done += 1
            except (OSError, ValueError, RuntimeError) as exc:
                self.refuse(stream, record, f"erasure failed: {exc}")

    # --- a customer --------------------------------------------------------------------

    def forget_customer(self, record: dict[str, Any]) -> None:
        store, customer = str(record["account"]), str(record["id"])
        emails = {row[0] for row in self.db.execute(
            "SELECT email FROM customers WHERE store = ? AND id = ? UNION SELECT email FROM "
            "orders WHERE store = ? AND customer_id = ?", (store, customer, store, customer))
            if row[0]}
        if record.get("email"):
            emails.add(str(record["email"]).strip().lower())
        orders = [row[0] for row in self.db.execute(
            "SELECT id FROM orders WHERE store = ? AND customer_id = ?", (store, customer))]
        self.db.executemany("DELETE FROM orders_seen WHERE store = ? AND id = ?",
                            [(store, order) for order in orders])
        self.db.execute("DELETE FROM orders WHERE store = ? AND customer_id = ?",
                        (store, customer))
        self.db.execute("DELETE FROM customers WHERE store = ? AND id = ?", (store, customer))
        self.db.execute("DELETE FROM customers_seen WHERE store = ? AND id = ?",
                        (store, customer))
        for email in sorted(emails):
            self.db.execute("DELETE FROM orders WHERE store = ? AND email = ?", (store, email))
            self.db.execute("DELETE FROM abandoned_carts WHERE store = ? AND email = ?",
                            (store, email))
            self._forget_in_storefront(email, store)
            if self._still_a_customer(email):
                log.info("erasure of customer %s of %s: the contact stays in Brevo (another "
                         "store still has the shopper as a customer); this store's data is "
                         "gone from the ledger", customer, store)
                continue
            self._forget_email(email)
            self._erase_contact(email)

    def _still_a_customer(self, email: str) -> bool:
        return self.db.execute("SELECT 1 FROM customers WHERE email = ? LIMIT 1",
                               (email,)).fetchone() is not None

    def _forget_email(self, email: str) -> None:
        """Everything keyed by the email, in every store (no store has the shopper now)."""
        for table in ("sent_totals", "consents", "sms_owners", "abandoned_carts"):
            self.db.execute(f"DELETE FROM {table} WHERE email = ?", (email,))
        # Orders other stores took from the shopper as a guest: kept (they are those
        # stores' records), no longer naming them.
        self.db.execute("UPDATE orders SET email = NULL WHERE email = ?", (email,))
        pattern = _like(email)
        for table, column in (("events_outbox", "event"), ("events_in_doubt", "event"),
                              ("events_outbox", "key"), ("events_in_doubt", "key"),
                              ("events_sent", "key")):
            self.db.execute(f"DELETE FROM {table} WHERE {column} LIKE ? ESCAPE '!'",
                            (pattern,))
        if self.ledger.pg:
            self.db.execute("DELETE FROM dead_letters WHERE LOWER(letter) LIKE ? ESCAPE '!'",
                            (pattern,))
        else:
            self._forget_in_dead_letter_file(email)
        self._forget_in_storefront(email, None)
        self.db.execute("DELETE FROM storefront_rate WHERE email = ?", (email,))

    def _forget_in_dead_letter_file(self, email: str) -> None:
        """The dead letters naming the shopper, out of the file beside a SQLite ledger.
        Rewritten in place (the writer's handle appends to the same file: O_APPEND writes at
        its end, whatever its length now)."""
        path = Path(str(self.ledger.path)).parent / DEAD_LETTER_FILE
        if not path.exists():
            return
        needle = email.encode()
        with path.open("r+b") as letters:
            lines = letters.readlines()
            kept = [line for line in lines if needle not in line.lower()]
            if len(kept) != len(lines):
                letters.seek(0)
                letters.writelines(kept)
                letters.truncate()

    def _forget_in_storefront(self, email: str, store: str | None) -> None:
        """The visitors linked to the email (in ``store``, or every store), the events held
        for them and their open browses."""
        where, args = ("email = ?", (email,)) if store is None else (
            "email = ? AND account = ?", (email, store))
        self.db.execute("DELETE FROM storefront_held WHERE EXISTS (SELECT 1 FROM "
                        "storefront_visitors v WHERE v.account = storefront_held.account AND "
                        f"v.visitor_id = storefront_held.visitor_id AND v.{where})", args)
        self.db.execute(f"DELETE FROM storefront_visitors WHERE {where}", args)
        self.db.execute(f"DELETE FROM storefront_browse WHERE {where}", args)

    def _erase_contact(self, email: str) -> None:
        """The contact deleted, or emptied and out of the lists (404: Brevo has none)."""
        path = f"/v3/contacts/{quote(email, safe='@')}"
        if self.mode == "delete":
            status, answer = self.api.send("DELETE", path, params={"identifierType": "email_id"})
        else:
            # Brevo's SDK types an attribute value as float | int | str | bool | list[str]:
            # no null to clear one with. Text gets "", numbers 0; whether Brevo empties a
            # date attribute given "" (its docs say a value of the wrong type is ignored)
            # the reference leaves open: the sandbox empties it.
            empty = {name: 0 if kind == "float" else "" for name, kind in
                     self.attributes.items()}
            status, answer = self.api.send("PUT", path, params={"identifierType": "email_id"},
                                           json={"attributes": empty,
                                                 "unlinkListIds": self.lists})
        if status != 404 and not 200 <= status < 300:
            message = answer.get("message") if isinstance(answer, dict) else None
            raise RuntimeError(f"Brevo answered HTTP {status} to the contact's "
                               f"{'deletion' if self.mode == 'delete' else 'update'}"
                               + (f": {message}" if message else ""))

    # --- an account --------------------------------------------------------------------

    def forget_account(self, store: str) -> None:
        emails = {row[0] for row in self.db.execute(
            "SELECT email FROM customers WHERE store = ? UNION SELECT email FROM orders "
            "WHERE store = ? UNION SELECT email FROM abandoned_carts WHERE store = ?",
            (store, store, store)) if row[0]}
        for table in ("customers", "orders", "orders_seen", "customers_seen", "accounts",
                      "catalog_items", "abandoned_carts", "skipped_carts", "carts_seen"):
            self.db.execute(f"DELETE FROM {table} WHERE store = ?", (store,))
        for table in ("storefront_held", "storefront_visitors", "storefront_browse"):
            self.db.execute(f"DELETE FROM {table} WHERE account = ?", (store,))
        prefix = store.replace("!", "!!").replace("%", "!%").replace("_", "!_") + ":%"
        for table in ("events_outbox", "events_in_doubt", "events_sent"):
            self.db.execute(f"DELETE FROM {table} WHERE key LIKE ? ESCAPE '!'", (prefix,))
        kept = 0
        for email in sorted(emails):
            if self._still_a_customer(email):
                kept += 1
                continue
            for table in ("sent_totals", "consents", "sms_owners", "storefront_rate"):
                self.db.execute(f"DELETE FROM {table} WHERE email = ?", (email,))
        self.ledger.countries = None  # read again without the store
        log.info("erasure of account %s: its rows are gone from the ledger (%d of its "
                 "shoppers are customers of another store too); Brevo's contacts stay",
                 store, kept)
