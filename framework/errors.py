"""Errors that reach people, and the redaction that keeps secrets out of them.

A secret reaches text in more spellings than its own: an exception's repr escapes quotes,
backslashes and control characters (``'tok\\n'``), a JSON document escapes them too (and
non-ASCII, when ``ensure_ascii``), a URL percent-encodes them, an HTML page escapes ``<``, ``&``
and quotes, and a byte string's repr spells non-ASCII as ``\\xc3\\xa9``. :func:`secret_forms` is
every spelling one or two of those escapes give (a repr inside a JSON document, a JSON body
inside a repr); :data:`REDACT` replaces each of them.
"""

from __future__ import annotations

import errno
import html
import json
import logging
import socket
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote, quote_plus


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


#: The escapes a secret can go through on its way to text (see the module doc).
ESCAPES: tuple[Callable[[str], str], ...] = (
    lambda s: json.dumps(s, ensure_ascii=False)[1:-1],  # JSON (orjson writes the same)
    lambda s: json.dumps(s)[1:-1],  # JSON with \\uXXXX for non-ASCII
    lambda s: repr(s)[1:-1],  # Python's repr, as exception messages quote values
    lambda s: ascii(s)[1:-1],  # repr with \\xNN / \\uNNNN for non-ASCII
    lambda s: repr(s.encode())[2:-1],  # a bytes repr (headers, sockets)
    lambda s: quote(s, safe=""),  # URL, percent-encoded
    lambda s: quote_plus(s, safe=""),  # URL form encoding (space as +)
    lambda s: quote(s),  # URL path (keeps /)
    lambda s: html.escape(s),  # HTML (an error page echoing a header)
    lambda s: html.escape(s, quote=False),
)

#: Shorter values are not redacted: they would blank out ordinary words.
MIN_SECRET = 4


def secret_forms(secret: str) -> set[str]:
    """The secret and every spelling one or two :data:`ESCAPES` make of it."""
    once = {secret} | {escape(secret) for escape in ESCAPES}
    return once | {escape(form) for form in once for escape in ESCAPES}


class Redactor:
    """Replaces every known secret, in each of its spellings, with ``****`` in text bound for
    people or for a file."""

    def __init__(self) -> None:
        self._forms: set[str] = set()
        self._ordered: list[str] = []

    def add(self, values: Iterable[str]) -> None:
        """Remember secrets (values shorter than :data:`MIN_SECRET` would redact too much)."""
        new = set()
        for value in values:
            if isinstance(value, str) and len(value.strip()) >= MIN_SECRET:
                new |= secret_forms(value) | secret_forms(value.strip())
        if new - self._forms:
            self._forms |= new
            # Longest first: a form that contains another is replaced whole.
            self._ordered = sorted(self._forms, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for form in self._ordered:
            if form in text:
                text = text.replace(form, "****")
        return text

    def deep(self, value: Any) -> Any:
        """``value`` with every string in it redacted (a report bound for output)."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {key: self.deep(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.deep(item) for item in value]
        return value

    def clear(self) -> None:
        """Forget every secret (tests)."""
        self._forms.clear()
        self._ordered = []


REDACT = Redactor()


class RedactingFilter(logging.Filter):
    """A logging filter that runs :data:`REDACT` over every formatted message."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = REDACT(record.getMessage())
        record.args = None
        return True


def listen_error(host: str, port: int, exc: OSError) -> ConfigError:
    """The one-line error for a server that cannot bind ``host:port``."""
    where = f"cannot listen on {host}:{port}"
    if isinstance(exc, socket.gaierror):
        return ConfigError(f"{where}: unknown host ({exc.strerror}); give --host an address of "
                           "this machine (127.0.0.1, 0.0.0.0, ::) or a name it resolves")
    if exc.errno == errno.EADDRINUSE:
        return ConfigError(f"{where}: the port is in use by another process; stop it or "
                           "choose another --port")
    if exc.errno == errno.EADDRNOTAVAIL:
        return ConfigError(f"{where}: {host} is not an address of this machine; give --host "
                           "one of its addresses, or 0.0.0.0 for all")
    if exc.errno == errno.EACCES:
        return ConfigError(f"{where}: permission denied (ports below 1024 need privileges); "
                           "choose --port 1024 or above")
    return ConfigError(f"{where}: {exc.strerror or exc}")
