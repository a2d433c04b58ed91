"""BigCommerce's webhook subscriptions API (``/v3/hooks``), for
``framework.webhooks.subscriptions``.

A hook is listed, created and updated in the framework's shape already (``id``, ``scope``,
``destination``, ``is_active``, ``headers``); only the calls and the error fields
(``title``, ``errors``) are BigCommerce's. Only the calling API account's hooks are listed.
"""

from __future__ import annotations

from typing import Any

from framework.webhooks.subscriptions import Subscriptions


class BigCommerceHooks(Subscriptions):
    def list(self, client: Any) -> list[dict[str, Any]]:
        hooks: list[dict[str, Any]] = []
        page = 1
        while True:
            body = client.get(self.spec.path, {"page": page, "limit": 250}) or {}
            hooks.extend(body.get("data") or [])
            pagination = (body.get("meta") or {}).get("pagination") or {}
            if page >= int(pagination.get("total_pages") or 1):
                return hooks
            page += 1

    def create(self, client: Any, scope: str, url: str, headers: dict[str, str]
               ) -> dict[str, Any] | None:
        body = {"scope": scope, "destination": url, "is_active": True, "headers": headers}
        return _data(self.call(client, "POST", self.spec.path, body, scope))

    def update(self, client: Any, hook: dict[str, Any], url: str, headers: dict[str, str]
               ) -> dict[str, Any] | None:
        body = {"destination": url, "is_active": True, "headers": headers}
        return _data(self.call(client, "PUT", f"{self.spec.path}/{hook['id']}", body,
                               hook["scope"]))

    def delete(self, client: Any, hook: dict[str, Any]) -> None:
        self.call(client, "DELETE", f"{self.spec.path}/{hook['id']}", None, hook["scope"])

    def detail(self, answer: Any) -> str:
        if not isinstance(answer, dict):
            return ""
        detail = answer.get("title") or ""
        errors = answer.get("errors")
        if isinstance(errors, dict) and errors:
            detail += " (" + "; ".join(f"{k}: {v}" for k, v in errors.items()) + ")"
        return str(detail)


def _data(answer: Any) -> dict[str, Any] | None:
    return answer.get("data") if isinstance(answer, dict) else None
