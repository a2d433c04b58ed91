"""Brevo list membership: contacts added to or taken out of a list, 150 a call."""

from __future__ import annotations

from connectors.brevo.events import Api
from framework.errors import ConnectorError

LIST_CALL = 150  # Brevo takes at most 150 emails per call


def change_members(api: Api, list_id: int, emails: list[str], action: str) -> None:
    """Add (``add``) or take out (``remove``) contacts, 150 per call as Brevo allows."""
    for start in range(0, len(emails), LIST_CALL):
        part = emails[start:start + LIST_CALL]
        status, answer = api.send(
            "POST", f"/v3/contacts/lists/{list_id}/contacts/{action}", json={"emails": part})
        if status not in (200, 201, 204):
            raise ConnectorError(f"Brevo did not {action} contacts of list {list_id} "
                                 f"(HTTP {status}): {answer}", "system_error")
