"""An in-process stand-in for Brevo's API client, for unit tests of the Brevo destination's
parts: it answers from a script, keeps what it was sent, and holds every request body to
brevo-python's models (the same check the Brevo sandbox makes, ``sandbox/reference.py``)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from connectors.brevo.sandbox.reference import ROUTES, Reference

_REFERENCE: Reference | None = None


def reference() -> Reference:
    global _REFERENCE
    if _REFERENCE is None:  # reading the SDK's models takes a moment: once per process
        _REFERENCE = Reference(Path("/dev/null"))
    return _REFERENCE


def route_of(method: str, path: str) -> tuple[str, str]:
    """The SDK route (method, template) a request goes to: the literal path first
    (``/v3/contacts/attributes`` is not a contact's identifier)."""
    if (method, path) in ROUTES:
        return method, path
    for known_method, template in ROUTES:
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if known_method == method and re.match(pattern, path):
            return known_method, template
    raise AssertionError(f"{method} {path} is not a Brevo route the SDK knows")


Answer = tuple[int, Any]


class FakeBrevo:
    """``send`` as ``framework.engine.http.HttpClient`` has it. ``answers[(method, path)]`` is a
    list of answers (or exceptions to raise, or callables of the body) used in turn; a route
    without a scripted answer gets ``default``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any, dict[str, Any]]] = []
        self.answers: dict[tuple[str, str], list[Answer | Exception | Callable[[Any], Answer]]]
        self.answers = {}
        self.handlers: dict[tuple[str, str], Callable[[Any, dict[str, Any]], Answer]] = {}

    def send(self, method: str, path: str, *, json: Any = None,
             params: dict[str, Any] | None = None, **_: Any) -> Answer:
        route = route_of(method, path)
        if json is not None:  # as the wire has it (rows may go in pre-serialized)
            json = orjson.loads(orjson.dumps(json))
        problems = reference().request_problems(route, {k: str(v) for k, v in
                                                        (params or {}).items()}, json)
        assert not problems, f"{method} {path}: the SDK refuses it: {problems}"
        self.calls.append((method, path, json, params or {}))
        script = self.answers.get((method, path))
        if script:
            answer = script.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer(json) if callable(answer) else answer
        handler = self.handlers.get((method, path))
        if handler:
            return handler(json, params or {})
        return (200, {}) if method == "GET" else (201, {})

    def posted(self, path: str) -> list[Any]:
        """The bodies POSTed to ``path``."""
        return [body for method, p, body, _ in self.calls if method == "POST" and p == path]

    def close(self) -> None:
        pass
