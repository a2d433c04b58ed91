"""Contacts into Brevo: the attributes they need, then imports sized by bytes, several in
flight, their ends learned together.

Rows (``{"email", "attributes"}`` and the lists they go to) wait in a buffer keyed by email:
a later row for a contact already waiting (its totals after an order, a newer version of the
customer) is merged into the waiting one, so a contact goes to Brevo once with its latest
values. The buffer goes as imports (``POST /v3/contacts/import``, contacts bucket) of at most
``IMPORT_BYTES``: Brevo takes 10 MB of JSON and advises "a safe limit of around 8 MB"
(brevo-python 5.1.0, ``import_contacts``'s ``json_body``). Up to ``DIRECT`` rows go one call each
(``POST /v3/contacts``) when nothing else waits: no process to check.

An import is a process that Brevo ends later. Its end is learned, for every import in flight
at once, from ``GET /v3/processes`` (50 a page, newest first: the SDK's ``get_processes``),
which spends the 100-an-hour bucket: checked with growing pauses, and, when the webhook
receiver takes Brevo's ``notifyUrl`` calls (``notify.py``), only once the receiver heard that
each import finished (Brevo's call says nothing more: its body is empty). A row Brevo did not
take (refused, in a failed or cancelled import, or named in a completed import's reports) is
handed to ``refused`` with the reason; the others go on.

Marketing safety: no blacklist option and no blacklist field is ever sent, so a contact
unsubscribed in Brevo stays unsubscribed whatever the store says.
"""

from __future__ import annotations

import logging
import secrets
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
import requests

from connectors.brevo.events import Api
from framework.errors import ConnectorError

log = logging.getLogger("tajo.brevo")

#: Bytes of an import's body at most: under Brevo's advice of "around 8 MB" (read as 8,000,000
#: bytes, the smaller of the two readings of a megabyte) and its 10 MB limit.
IMPORT_BYTES = 8_000_000
#: Seconds spent waiting for imports (pauses between checks, not time waiting for the rate
#: limit) before the run gives up on them.
WAIT_LIMIT_S = 1800
#: Pauses between checks of imports in flight: growing, from the first to the last.
FIRST_PAUSE_S, LAST_PAUSE_S = 0.5, 60.0
#: With the receiver taking Brevo's calls, Brevo is asked this rarely while a call is awaited
#: (a call that never comes: the receiver was down, or Brevo did not make it).
NOTIFIED_PAUSE_S = 300.0
NOTICE_TICK_S = 0.1  # how often the receiver's notices are looked at (a local read)
ALIVE_EVERY = 50  # ticks between looks at whether the receiver is still up
PROCESSES_PAGE = 50  # GET /v3/processes: at most 50 a page (the SDK)
# How an import process ends (the SDK's statuses; queued, in_process and processing go on).
PROCESS_ENDED = frozenset({"completed", "failed", "cancelled"})
DIRECT = 20  # up to this many contacts, one call each (contacts: 10 a second)
KEY_LENGTH = 32  # an import's key in its notifyUrl: 16 random bytes in hex
OPTIONS = {"updateExistingContacts": True, "emptyContactsAttributes": False,
           "disableNotification": True}


class Notices(Protocol):
    """Brevo's "import finished" calls as the receiver took them (``notify.NoticeBoard``)."""

    def url(self, key: str) -> str: ...

    def seen(self, keys: Iterable[str]) -> set[str]: ...

    def alive(self) -> bool: ...


@dataclass(slots=True)
class Waiting:
    """A row waiting to go: its lists, its body, and what the caller keeps for when it went.
    Slotted (no ``__dict__``, about 100 bytes less a row): an import's rows and those in
    flight are tens of thousands."""

    list_ids: tuple[int, ...]
    body: bytes
    note: Any = None


@dataclass
class Import:
    """An import Brevo is working on. Its rows keep their notes; their bodies, needed only
    for the dead-letter file when Brevo refuses some, are kept compressed together in
    ``packed`` (an 8 MB import's 30,000 rows held 10 MB as bodies of their own)."""

    process_id: int
    rows: dict[str, Waiting]
    key: str  # the notifyUrl's last segment (Brevo's call names no process)
    sent_at: float = 0.0
    open_at: float | None = None  # when a check last saw it not yet ended
    notified: bool = False
    packed: bytes = b""

    def pack(self) -> None:
        """Keep the rows' bodies compressed together (one per line, in the rows' order)."""
        self.packed = zlib.compress(b"\n".join(w.body for w in self.rows.values()), 1)
        for waiting in self.rows.values():
            waiting.body = b""

    def bodies(self) -> dict[str, dict[str, Any]]:
        """The rows as they were sent (email -> row), unpacked."""
        if not self.packed:
            return {email: orjson.loads(w.body) for email, w in self.rows.items()}
        lines = zlib.decompress(self.packed).split(b"\n")
        return {email: orjson.loads(line) for email, line in zip(self.rows, lines, strict=True)}


@dataclass
class Outcome:
    """What became of the rows sent since the last settle: the notes of those Brevo took."""

    taken: list[tuple[str, Any]] = field(default_factory=list)
    refused: set[str] = field(default_factory=set)


class ContactImporter:
    """Buffers contact rows, sends them as imports, and learns how the imports ended."""

    def __init__(self, contacts_api: Api, process_api: Api,
                 refused: Callable[[dict[str, Any], str], None], *,
                 import_bytes: int = IMPORT_BYTES, notices: Notices | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.contacts_api = contacts_api  # /v3/contacts... (10 a second)
        self.process_api = process_api  # GET /v3/processes (100 an hour, general tier)
        self.refused = refused  # (row, reason) of a row Brevo did not take
        self.import_bytes = import_bytes
        self.notices = notices
        self.sleep, self.clock = sleep, clock
        self.attributes_ready = False
        self.buffer: dict[str, Waiting] = {}
        self._lists: dict[tuple[int, ...], tuple[int, ...]] = {}
        self.buffered_bytes = 0
        self.in_flight: list[Import] = []
        self.outcome = Outcome()
        #: How long Brevo took over the last import seen to end (0: not known yet): the first
        #: check waits for it, so that a long import is not asked about in vain.
        self.import_s = 0.0

    # --- attributes -----------------------------------------------------------------------

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

    # --- the buffer -----------------------------------------------------------------------

    def add(self, email: str, attributes: dict[str, Any], list_ids: list[int],
            note: Any = None) -> None:
        """Queue a row; one already waiting for ``email`` takes these attributes over its own
        (and these lists, and this note)."""
        waiting = self.buffer.get(email)
        if waiting is not None:
            attributes = {**orjson.loads(waiting.body)["attributes"], **attributes}
            self.buffered_bytes -= len(waiting.body) + 1
        # A copy of its length: orjson's bytes hold a block of at least 4 KB, however
        # short (a buffer of 20,000 rows held 80 MB).
        body = bytes(memoryview(orjson.dumps({"email": email, "attributes": attributes})))
        lists = tuple(list_ids)  # one tuple per combination of lists, shared by its rows
        self.buffer[email] = Waiting(self._lists.setdefault(lists, lists), body, note)
        self.buffered_bytes += len(body) + 1

    def discard(self, email: str) -> None:
        """Forget a row that has not gone yet (a customer gone from the store)."""
        waiting = self.buffer.pop(email, None)
        if waiting is not None:
            self.buffered_bytes -= len(waiting.body) + 1

    def full(self) -> bool:
        """Whether the buffer holds an import's worth."""
        return self.buffered_bytes >= self.import_bytes

    def holds(self, emails: Iterable[str]) -> bool:
        """Whether any of ``emails`` waits in the buffer or in an import still in flight."""
        return any(e in self.buffer or any(e in i.rows for i in self.in_flight) for e in emails)

    def busy(self) -> bool:
        """Rows wait, or imports are in flight."""
        return bool(self.buffer or self.in_flight)

    # --- sending --------------------------------------------------------------------------

    def submit(self, everything: bool = False) -> None:
        """Send the buffer as imports: every whole import's worth, or ``everything``. Imports
        are not waited for (``settle``)."""
        # In the order of the emails, whatever order the records came in (concurrent reads
        # vary it): Brevo numbers new contacts as it creates them, and two runs over the same
        # records should give the same numbers.
        if everything and not self.in_flight and 0 < len(self.buffer) <= DIRECT:
            for email, waiting in sorted(self.buffer.items()):
                self._upsert_contact(email, waiting)
            self.buffer.clear()
            self.buffered_bytes = 0
            return
        groups: dict[tuple[int, ...], list[str]] = {}
        for email in sorted(self.buffer):
            groups.setdefault(self.buffer[email].list_ids, []).append(email)
        for list_ids, emails in sorted(groups.items()):
            for chunk, complete in self._chunks(list_ids, emails):
                if complete or everything:
                    self._start_import(list_ids, chunk)
        # Each combination of lists is an import of its own: two of them waited up to two
        # imports' worth (16 MB of rows; a sync of 150,000 customers held 50,000 rows). Once
        # the rows of all of them make an import's worth, the largest goes, not full (with
        # two combinations, at least half of one).
        while not everything and self.full():
            sizes: dict[tuple[int, ...], int] = {}
            for waiting in self.buffer.values():
                sizes[waiting.list_ids] = sizes.get(waiting.list_ids, 0) + len(waiting.body) + 1
            largest = max(sorted(sizes), key=sizes.__getitem__)
            for chunk, _ in self._chunks(largest, [e for e in sorted(self.buffer)
                                                   if self.buffer[e].list_ids == largest]):
                self._start_import(largest, chunk)

    def _chunks(self, list_ids: tuple[int, ...], emails: list[str]
                ) -> Iterator[tuple[list[str], bool]]:
        """``emails`` in chunks whose import bodies stay under ``import_bytes``, each with
        whether it is whole (the next row would not have fitted)."""
        envelope = len(self._envelope(list_ids))
        chunk: list[str] = []
        size = envelope
        for email in emails:
            row = len(self.buffer[email].body) + (1 if chunk else 0)
            if chunk and size + row > self.import_bytes:
                yield chunk, True
                chunk, size, row = [], envelope, row - 1
            chunk.append(email)
            size += row
        if chunk:
            yield chunk, size >= self.import_bytes

    def _body(self, list_ids: tuple[int, ...], rows: list[Any], key: str) -> dict[str, Any]:
        """An import's body. No blacklist option and no blacklist field is ever sent: Brevo
        keeps a contact's unsubscription whatever the store says."""
        body: dict[str, Any] = {"jsonBody": rows, "listIds": list(list_ids), **OPTIONS}
        if self.notices is not None:
            body["notifyUrl"] = self.notices.url(key)
        return body

    def _envelope(self, list_ids: tuple[int, ...]) -> bytes:
        """An import's body without its rows (its key as long as any key)."""
        return orjson.dumps(self._body(list_ids, [], "0" * KEY_LENGTH))

    def _start_import(self, list_ids: tuple[int, ...], emails: list[str]) -> None:
        rows = {email: self.buffer.pop(email) for email in emails}
        self.buffered_bytes -= sum(len(w.body) + 1 for w in rows.values())
        self._post_import(list_ids, rows)

    def _post_import(self, list_ids: tuple[int, ...], rows: dict[str, Waiting]) -> None:
        key = secrets.token_hex(KEY_LENGTH // 2)
        # The rows go in as they were serialized when they were queued.
        body = self._body(list_ids, [orjson.Fragment(w.body) for w in rows.values()], key)
        status, answer = self.contacts_api.send("POST", "/v3/contacts/import", json=body)
        if status == 413 and len(rows) > 1:
            # Brevo would not take this much at once (its limit is not what it documents):
            # each half goes on its own.
            log.warning("Brevo refused an import of %d contacts as too large (HTTP 413); "
                        "sending it in two", len(rows))
            items = list(rows.items())
            self._post_import(list_ids, dict(items[:len(items) // 2]))
            self._post_import(list_ids, dict(items[len(items) // 2:]))
            return
        if status != 202 or not isinstance(answer, dict) or "processId" not in answer:
            raise ConnectorError(f"Brevo refused a contact import (HTTP {status}): {answer}",
                                 "config_error" if status in (400, 404) else "system_error")
        process = Import(int(answer["processId"]), rows, key, self.clock())
        process.pack()
        self.in_flight.append(process)

    def _upsert_contact(self, email: str, waiting: Waiting) -> None:
        """``POST /v3/contacts`` with ``updateEnabled`` (no blacklist field: see above)."""
        row = orjson.loads(waiting.body)
        body = {**row, "listIds": list(waiting.list_ids), "updateEnabled": True}
        status, answer = self.contacts_api.send("POST", "/v3/contacts", json=body)
        if status == 404:  # a list that does not exist: every contact would fail the same way
            raise ConnectorError(f"Brevo refused a contact (HTTP 404: {answer}); check the "
                                 "list ids in lists (runner check says which are missing)",
                                 "config_error")
        if status not in (201, 204):
            self.refused(row, f"Brevo refused the contact (HTTP {status}: {answer})")
            self.outcome.refused.add(email)
        else:
            self.outcome.taken.append((email, waiting.note))

    # --- learning how imports ended -------------------------------------------------------

    def settle(self) -> Outcome:
        """Wait until every import in flight has ended; what became of the rows sent since
        the last settle (the buffer's rows that were not submitted stay)."""
        waited, pause = 0.0, FIRST_PAUSE_S
        if self.in_flight and self.notices is None:
            # The newest import is not asked about before it could have ended.
            ahead = min(self.import_s - (self.clock() - self.in_flight[-1].sent_at),
                        LAST_PAUSE_S)
            if ahead > 0:
                self.sleep(ahead)
                waited += ahead
        while self.in_flight:
            if self.notices is not None and not all(p.notified for p in self.in_flight):
                waited += self._await_notices(NOTIFIED_PAUSE_S)
            ended = self._check()
            now = self.clock()
            for process in self.in_flight:
                if process.process_id not in ended:
                    process.open_at = now
                    continue
                if process.open_at is not None:
                    # It ended between two checks: the later one is taken (a check too early
                    # spends the 100-an-hour bucket; one a little late only waits).
                    self.import_s = now - process.sent_at
                self._finish(process, ended[process.process_id])
            self.in_flight = [p for p in self.in_flight if p.process_id not in ended]
            if not self.in_flight:
                break
            if waited > WAIT_LIMIT_S:
                ids = ", ".join(str(p.process_id) for p in self.in_flight)
                raise ConnectorError(f"Brevo's import processes {ids} have not ended after "
                                     f"{WAIT_LIMIT_S} s; run again later", "transient_error")
            if self.notices is None or all(p.notified for p in self.in_flight):
                # No call to wait for (none asked, or Brevo called before the process showed
                # as ended): checked again after a pause that grows.
                self.sleep(pause)
                waited += pause
                pause = min(pause * 2, LAST_PAUSE_S)
        outcome, self.outcome = self.outcome, Outcome()
        return outcome

    def _await_notices(self, at_most_s: float) -> float:
        """Wait (locally) until the receiver has heard from Brevo about every import in
        flight, or ``at_most_s``; the seconds waited."""
        assert self.notices is not None
        waited, ticks = 0.0, 0
        while True:
            heard = self.notices.seen(p.key for p in self.in_flight if not p.notified)
            for process in self.in_flight:
                process.notified |= process.key in heard
            if all(p.notified for p in self.in_flight) or waited >= at_most_s:
                return waited
            ticks += 1
            if ticks % ALIVE_EVERY == 0 and not self.notices.alive():
                # The receiver stopped: nobody takes Brevo's calls any more.
                log.info("the receiver of Brevo's import calls stopped: imports are checked "
                         "at Brevo instead")
                self.notices = None
                return waited
            self.sleep(NOTICE_TICK_S)
            waited += NOTICE_TICK_S

    def _check(self) -> dict[int, dict[str, Any]]:
        """The processes in flight that have ended (id -> Brevo's answer about it), from
        ``GET /v3/processes``: newest first, paged until every import in flight is seen or
        the pages reach older processes (other apps' processes can come between)."""
        wanted = {p.process_id for p in self.in_flight}
        oldest = min(wanted)
        found: dict[int, dict[str, Any]] = {}
        offset = 0
        while wanted - set(found):
            status, answer = self.process_api.send(
                "GET", "/v3/processes", params={"limit": PROCESSES_PAGE, "offset": offset,
                                                "sort": "desc"})
            if status != 200 or not isinstance(answer, dict):
                raise ConnectorError(f"Brevo did not list its processes (HTTP {status}: "
                                     f"{answer})", "transient_error")
            page = answer.get("processes") or []
            for process in page:
                if process.get("id") in wanted:
                    found[process["id"]] = process
            offset += len(page)
            if (len(page) < PROCESSES_PAGE or offset >= int(answer.get("count") or 0)
                    or min((p.get("id", 0) for p in page), default=0) < oldest):
                break
        missing = wanted - set(found)
        if missing:
            raise ConnectorError(f"Brevo lost import processes {sorted(missing)} (not in "
                                 "GET /v3/processes)", "transient_error")
        return {pid: p for pid, p in found.items() if p.get("status") in PROCESS_ENDED}

    def _finish(self, process: Import, answer: dict[str, Any]) -> None:
        if answer.get("status") != "completed":
            # Failed or cancelled: Brevo applied none of it. Its rows are dead-lettered (the
            # sync goes on; their contacts' totals are sent again with their next change).
            reason = (f"Brevo's import process {process.process_id} ended "
                      f"{answer.get('status')} ({orjson.dumps(answer).decode()})")
            log.warning("%s: its %d contacts are in the dead-letter file", reason,
                        len(process.rows))
            for row in process.bodies().values():
                self.refused(row, reason)
            self.outcome.refused |= set(process.rows)
            return
        refused = self._rows_not_taken(answer, process)
        self.outcome.refused |= refused
        self.outcome.taken += [(email, w.note) for email, w in process.rows.items()
                               if email not in refused]
        log.info("Brevo imported %d contacts (process %s)", len(process.rows) - len(refused),
                 process.process_id)

    def _rows_not_taken(self, answer: dict[str, Any], process: Import) -> set[str]:
        """The rows a completed import lists in its reports (``info.import``: links to CSV
        files of invalid emails, duplicate identifiers...), dead-lettered with the report's
        name. The links are Brevo's signed file links: fetched without the api-key."""
        reports = ((answer.get("info") or {}).get("import") or {})
        by_email = {email.lower(): email for email in process.rows}
        refused: set[str] = set()
        bodies: dict[str, dict[str, Any]] | None = None  # unpacked once, if a row is refused
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
            for lowered in sorted(cells & set(by_email)):
                email = by_email[lowered]
                if email in refused:
                    continue
                refused.add(email)
                bodies = bodies if bodies is not None else process.bodies()
                self.refused(bodies[email], f"Brevo's import listed it in {name}")
        return refused

    # --- all at once ----------------------------------------------------------------------

    def send(self, rows: list[dict[str, Any]], list_ids: list[int]) -> set[str]:
        """Send ``rows`` now and wait for Brevo to have them; the emails of the rows it did
        not take (each dead-lettered and counted)."""
        for row in rows:
            self.add(row["email"], row.get("attributes") or {}, list_ids)
        self.submit(everything=True)
        return self.settle().refused
