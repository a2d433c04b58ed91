"""Errors that reach people, and the redaction that keeps secrets out of them."""

from __future__ import annotations

import logging
from collections.abc import Iterable


class ConnectorError(Exception):
    """A failure with a one-line message that says what is wrong and how to fix it.

    ``failure_type`` follows the protocol: ``config_error`` (the user must change something),
    ``transient_error`` (try again later) or ``system_error`` (a bug or an outage).
    """

    def __init__(self, message: str, failure_type: str = "system_error",
                 stream: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.failure_type = failure_type
        self.stream = stream


class ConfigError(ConnectorError):
    """The user's config (or a file named on the command line) is wrong."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "config_error")


class Redactor:
    """Replaces every known secret value with ``****`` in text bound for people."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()

    def add(self, values: Iterable[str]) -> None:
        """Remember secrets (values shorter than 4 characters would redact too much)."""
        self._secrets.update(v for v in values if isinstance(v, str) and len(v) >= 4)

    def __call__(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, "****")
        return text


REDACT = Redactor()


class RedactingFilter(logging.Filter):
    """A logging filter that runs :data:`REDACT` over every formatted message."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = REDACT(record.getMessage())
        record.args = None
        return True
