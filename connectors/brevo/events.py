"""Brevo events through the ledger's outbox: queued in the transaction of the change that made
them, sent in batches, never lost and never sent twice.

An event is claimed by its key (``events_sent``) when it is queued, so the same change seen twice
(a webhook and a poll, a rerun after a crash) makes one event. A batch stays "in doubt" in the
ledger from just before it is posted until Brevo answers; when the answer never comes, the events
are looked up in Brevo by their ``event_key`` property and only those it lacks are posted again.
A 207 answer names the events it refused (``BatchEventsResponse.errors[].eventIndex``); a refused
event is released (a later change may send it) and handed to ``refused``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from connectors.brevo.ledger import Ledger
from framework.errors import ConnectorError

log = logging.getLogger("tajo.brevo")

EVENT_BATCH = 100  # Brevo documents no maximum for /v3/events/batch
EVENTS_PAGE = 10_000  # GET /v3/events: at most 10,000 a page
AMBIGUOUS_TRIES = 4  # an event batch whose answer never came: looked up and resent


class Api(Protocol):
    """What the outbox needs of an API client (``framework.engine.http.HttpClient``)."""

    def send(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]: ...


def now_iso() -> str:
    """Now, as the records write dates (ISO 8601 UTC, seconds)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class EventOutbox:
    """Queues events in the ledger and sends them to ``/v3/events/batch``."""

    def __init__(self, ledger: Ledger, events_api: Api, lookup_api: Api,
                 refused: Callable[[str, dict[str, Any], str], None]) -> None:
        self.ledger = ledger
        self.events_api = events_api  # POST /v3/events/batch (its own rate bucket)
        self.lookup_api = lookup_api  # GET /v3/events
        self.refused = refused  # (key, event, reason) of an event Brevo did not take

    def queue(self, key: str, event: dict[str, Any]) -> None:
        """Queue an event in the ledger's outbox, in the same transaction as the record
        version that made it: a run that dies after the version was committed still sends
        the event (a version seen again makes no new one). Claimed once, so never twice."""
        if self.ledger.claim_event(key, now_iso()):
            # The SDK types a property's value (string, number, boolean, object, array):
            # null is none of them, so a property the record left empty is left out.
            properties = {k: v for k, v in (event.get("event_properties") or {}).items()
                          if v is not None}
            event["event_properties"] = {**properties, "event_key": key}
            if not event.get("event_date"):
                event.pop("event_date", None)  # Brevo dates it when it arrives
            self.ledger.outbox_event(key, event)

    def send(self) -> None:
        """Events from the ledger's outbox, in batches. Each batch stays "in doubt" in the
        ledger until Brevo answers: when the answer never comes (a timeout, a cut connection,
        a 500 or 502, a run killed mid-request), the events are looked up in Brevo by their
        ``event_key`` and only what it lacks is sent again. So an event is neither lost nor
        sent twice (an automation fired twice costs the merchant)."""
        doubtful = self.ledger.events_in_doubt()
        if doubtful:
            missing = self._missing_in_brevo(doubtful, f"{len(doubtful)} events were sent by "
                                             "a run that ended before Brevo answered")
            left = {key for key, _ in missing}
            self.ledger.settle_events([key for key, _ in doubtful if key not in left])
            self.ledger.commit()
            self._send_claimed(missing)
        while batch := self.ledger.outbox(EVENT_BATCH):
            self._send_claimed(batch)

    def _send_claimed(self, claimed: list[tuple[str, dict[str, Any]]]) -> None:
        """Send claimed events (in doubt until Brevo answers); refused ones are released
        and dead-lettered."""
        for start in range(0, len(claimed), EVENT_BATCH):
            batch = claimed[start:start + EVENT_BATCH]
            self.ledger.doubt_events(batch)  # and out of the outbox, at once
            self.ledger.commit()
            status, answer, sent = self._post_events(batch)
            failed: dict[int, str] = {}
            if status == 207:
                failed = self._partly_failed(answer, sent)
            elif status not in (200, 201, 202, 204):
                failed = {i: f"HTTP {status}: {answer}" for i in range(len(sent))}
            for index, reason in sorted(failed.items()):
                key, event = sent[index]
                self.ledger.release_event(key)
                self.refused(key, event, f"Brevo refused the event: {reason}")
            self.ledger.settle_events([key for key, _ in batch])
            self.ledger.commit()

    def _partly_failed(self, answer: Any, sent: list[tuple[str, dict[str, Any]]]
                       ) -> dict[int, str]:
        """The events a 207 refused (index in ``sent`` -> Brevo's message), read from its
        ``BatchEventsResponse``: ``errors: [{eventIndex: [...], message}]``. The SDK makes
        ``eventIndex`` optional: when the indexes name fewer events than ``failed_events``,
        the batch's events are looked up in Brevo and those it lacks count as refused."""
        answer = answer if isinstance(answer, dict) else {}
        errors = [e for e in answer.get("errors") or [] if isinstance(e, dict)]
        failed = {i: str(e.get("message") or "no reason given") for e in errors
                  for i in e.get("eventIndex") or [] if isinstance(i, int) and
                  0 <= i < len(sent)}
        expected = answer.get("failed_events")
        if not isinstance(expected, int) or expected > len(failed):
            reasons = "; ".join(sorted({str(e.get("message")) for e in errors})) or str(answer)
            missing = {key for key, _ in self._missing_in_brevo(
                sent, f"Brevo refused {expected} of {len(sent)} events without saying which")}
            failed.update({i: reasons for i, (key, _) in enumerate(sent)
                           if key in missing and i not in failed})
        return failed

    def _post_events(self, claimed: list[tuple[str, dict[str, Any]]]
                     ) -> tuple[int, Any, list[tuple[str, dict[str, Any]]]]:
        """POST a batch of events; after an answer that never came, send only those Brevo
        does not have. Returns the last answer and the events it was about."""
        for attempt in range(AMBIGUOUS_TRIES):
            try:
                status, answer = self.events_api.send(
                    "POST", "/v3/events/batch", json={"events": [e for _, e in claimed]},
                    idempotent=False)
                return status, answer, claimed
            except ConnectorError as exc:
                if exc.failure_type != "transient_error" or attempt == AMBIGUOUS_TRIES - 1:
                    raise
                claimed = self._missing_in_brevo(claimed, f"no answer to a batch of "
                                                 f"{len(claimed)} events "
                                                 f"({exc.message.split(':')[0]})")
                if not claimed:
                    return 202, None, claimed
        raise AssertionError("unreachable")

    def _missing_in_brevo(self, events: list[tuple[str, dict[str, Any]]], why: str
                          ) -> list[tuple[str, dict[str, Any]]]:
        """The events (claimed ones, with their keys) that Brevo does not hold, said in a
        warning after ``why`` they were looked up."""
        have = self._event_keys_in_brevo([e for _, e in events])
        log.warning("%s; Brevo has %d of them, sending the rest", why,
                    sum(key in have for key, _ in events))
        return [(key, event) for key, event in events if key not in have]

    def _event_keys_in_brevo(self, events: list[dict[str, Any]]) -> set[str]:
        """The ``event_key`` of the events Brevo holds with these names and dates."""
        dates = [str(e.get("event_date") or now_iso())[:10] for e in events]
        keys: set[str] = set()
        for name in sorted({e["event_name"] for e in events}):
            offset = 0
            while True:
                status, answer = self.lookup_api.send(
                    "GET", "/v3/events", params={"event_name": name, "startDate": min(dates),
                                                 "endDate": max([*dates, now_iso()[:10]]),
                                                 "limit": EVENTS_PAGE, "offset": offset})
                if status != 200:
                    raise ConnectorError(f"Brevo did not list events (HTTP {status}): "
                                         f"{answer}", "transient_error")
                found = (answer or {}).get("events") or []
                keys.update(str((e.get("event_properties") or {}).get("event_key"))
                            for e in found)
                if len(found) < EVENTS_PAGE:
                    break
                offset += EVENTS_PAGE
        return keys
