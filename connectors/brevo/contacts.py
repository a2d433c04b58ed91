"""Contacts into Brevo: the attributes they need, then imports (or, for a few, one call each),
polled until Brevo has completed them.

Up to ``DIRECT`` contacts go one by one (``POST /v3/contacts``, limited per second), more go as
imports (``POST /v3/contacts/import``, which shares the 100-an-hour bucket with its polls) in
chunks under Brevo's size advice. A row Brevo did not take (refused, in a failed or cancelled
import, or named in a completed import's reports) is handed to ``refused`` with the reason; the
others go on.

Marketing safety: no blacklist option and no blacklist field is ever sent, so a contact
unsubscribed in Brevo stays unsubscribed whatever the store says.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import orjson
import requests

from connectors.brevo.events import Api
from framework.errors import ConnectorError

log = logging.getLogger("tajo.brevo")

IMPORT_BYTES = 8 * 1024 * 1024  # Brevo allows 10 MB of JSON and advises about 8
POLL_LIMIT_S = 1800
# How an import process ends (the SDK's statuses; queued, in_process and processing go on).
PROCESS_ENDED = frozenset({"completed", "failed", "cancelled"})
DIRECT = 20  # up to this many contacts, one call each (contacts: 10 a second)


class ContactImporter:
    """Sends contact rows (``{"email", "attributes"}``) into lists."""

    def __init__(self, contacts_api: Api, process_api: Api,
                 refused: Callable[[dict[str, Any], str], None], batch_size: int) -> None:
        self.contacts_api = contacts_api  # /v3/contacts... (10 a second)
        self.process_api = process_api  # imports' polls (100 an hour, with the imports)
        self.refused = refused  # (row, reason) of a row Brevo did not take
        self.batch_size = batch_size  # rows an import holds at most
        self.attributes_ready = False

    def ensure_attributes(self, types: dict[str, str]) -> None:
        """Create the Brevo attributes (name -> type) that the account lacks (asked once)."""
        if self.attributes_ready:
            return
        existing = self._attribute_names()
        for name, kind in types.items():
            if name in existing:
                continue
            status, body = self.contacts_api.send(
                "POST", f"/v3/contacts/attributes/normal/{name}", json={"type": kind})
            if status not in (200, 201, 204) and name in self._attribute_names():
                # Created after all: a retry of a request whose answer was lost (Brevo then
                # says the name is taken), or someone else at the same time.
                continue
            if status not in (200, 201, 204):
                raise ConnectorError(f"Brevo refused to create the contact attribute {name} "
                                     f"({kind}): {body}; create it in Brevo (Contacts > "
                                     "Settings > Contact attributes)", "config_error")
            log.info("created the Brevo contact attribute %s (%s)", name, kind)
        self.attributes_ready = True

    def _attribute_names(self) -> set[str]:
        status, body = self.contacts_api.send("GET", "/v3/contacts/attributes")
        if status != 200:
            raise ConnectorError(f"Brevo did not list the contact attributes (HTTP {status}): "
                                 f"{body}", "system_error")
        return {a["name"].upper() for a in (body or {}).get("attributes", [])}

    def send(self, rows: list[dict[str, Any]], list_ids: list[int]) -> set[str]:
        """Import rows in chunks under Brevo's size advice, each polled to its end (a few
        rows go one by one instead). Returns the emails of the rows Brevo did not take
        (each dead-lettered and counted)."""
        if len(rows) <= DIRECT:
            return {row["email"] for row in rows if not self._upsert_contact(row, list_ids)}
        refused: set[str] = set()
        chunk: list[dict[str, Any]] = []
        size = 0
        for row in rows:
            row_size = len(orjson.dumps(row)) + 1
            if chunk and (len(chunk) >= self.batch_size or size + row_size > IMPORT_BYTES):
                refused |= self._import_chunk(chunk, list_ids)
                chunk, size = [], 0
            chunk.append(row)
            size += row_size
        if chunk:
            refused |= self._import_chunk(chunk, list_ids)
        return refused

    def _upsert_contact(self, row: dict[str, Any], list_ids: list[int]) -> bool:
        """``POST /v3/contacts`` with ``updateEnabled`` (no blacklist field: see above)."""
        body = {**row, "listIds": list_ids, "updateEnabled": True}
        status, answer = self.contacts_api.send("POST", "/v3/contacts", json=body)
        if status == 404:  # a list that does not exist: every contact would fail the same way
            raise ConnectorError(f"Brevo refused a contact (HTTP 404: {answer}); check the "
                                 "list ids in lists (runner check says which are missing)",
                                 "config_error")
        if status not in (201, 204):
            self.refused(row, f"Brevo refused the contact (HTTP {status}: {answer})")
            return False
        return True

    def _import_chunk(self, rows: list[dict[str, Any]], list_ids: list[int]) -> set[str]:
        # No blacklist option and no blacklist field is ever sent: Brevo keeps a contact's
        # unsubscription whatever the store says.
        body = {"jsonBody": rows, "listIds": list_ids, "updateExistingContacts": True,
                "emptyContactsAttributes": False, "disableNotification": True}
        status, answer = self.contacts_api.send("POST", "/v3/contacts/import", json=body)
        if status != 202 or not isinstance(answer, dict) or "processId" not in answer:
            raise ConnectorError(f"Brevo refused a contact import (HTTP {status}): {answer}",
                                 "config_error" if status in (400, 404) else "system_error")
        process_id = answer["processId"]
        process = self._wait_for(process_id)
        if process.get("status") != "completed":
            # Failed or cancelled: Brevo applied none of it. Its rows are dead-lettered (the
            # sync goes on; their contacts' totals are sent again with their next change).
            reason = (f"Brevo's import process {process_id} ended {process.get('status')}"
                      f" ({orjson.dumps(process).decode()})")
            log.warning("%s: its %d contacts are in the dead-letter file", reason, len(rows))
            for row in rows:
                self.refused(row, reason)
            return {row["email"] for row in rows}
        refused = self._rows_not_taken(process, rows)
        log.info("Brevo imported %d contacts (process %s)", len(rows) - len(refused),
                 process_id)
        return refused

    def _rows_not_taken(self, process: dict[str, Any], rows: list[dict[str, Any]]
                        ) -> set[str]:
        """The rows a completed import lists in its reports (``info.import``: links to CSV
        files of invalid emails, duplicate identifiers...), dead-lettered with the report's
        name. The links are Brevo's signed file links: fetched without the api-key."""
        reports = ((process.get("info") or {}).get("import") or {})
        by_email = {row["email"].lower(): row for row in rows}
        refused: set[str] = set()
        for name, url in sorted(reports.items()):
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                continue
            try:
                response = requests.get(url, timeout=30)
                response.raise_for_status()
            except requests.RequestException as exc:
                log.warning("could not read Brevo's import report %s (%s): its rows are not "
                            "known", name, type(exc).__name__)
                continue
            cells = {cell.strip().lower() for line in response.text.splitlines()
                     for cell in line.split(";")}
            for email in sorted(cells & set(by_email) - refused):
                refused.add(email)
                self.refused(by_email[email], f"Brevo's import listed it in {name}")
        return refused

    def _wait_for(self, process_id: int) -> dict[str, Any]:
        """Poll an import until it ends (sparingly: the endpoint allows 100 an hour on the
        general tier); returns Brevo's last answer about it."""
        started, pause = time.monotonic(), 0.2
        while True:
            status, answer = self.process_api.send("GET", f"/v3/processes/{process_id}")
            state = (answer or {}).get("status") if status == 200 else None
            if state in PROCESS_ENDED:
                return dict(answer)
            if status != 200:
                raise ConnectorError(f"Brevo lost import process {process_id} (HTTP {status}: "
                                     f"{answer})", "transient_error")
            if time.monotonic() - started > POLL_LIMIT_S:
                raise ConnectorError(f"Brevo import process {process_id} still {state} after "
                                     f"{POLL_LIMIT_S} s; run again later", "transient_error")
            time.sleep(pause)
            pause = min(pause * 2, 30.0)
