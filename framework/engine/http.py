"""The HTTP client every connector shares: one pooled session, retries, and quota pacing.

Pacing reads the API's own rate-limit headers (names come from the connector spec): when the
requests left in the window fall to the reserve, the client waits for the window reset the API
announced, so a lone client never meets a 429. A 429 still happens when other apps share the
quota; then the client waits for the longer of ``Retry-After`` and the reset, and tries again.
5xx answers and broken connections are retried with exponential backoff and full jitter.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import orjson
import requests
import urllib3
from requests.adapters import HTTPAdapter

from framework.declarative.spec import RateLimitHeaders
from framework.errors import REDACT, ConnectorError

log = logging.getLogger("tajo.http")

TRANSIENT_ERRORS = (requests.ConnectionError, requests.Timeout,
                    requests.exceptions.ChunkedEncodingError)
RETRYABLE_STATUS = frozenset({500, 502, 503, 504, 507, 520, 521, 522, 523, 524})


@dataclass
class Quota:
    """What the last response said about the request quota."""

    left: int | None = None
    reset_at: float = 0.0  # monotonic time when the window resets
    quota: int | None = None
    window_ms: int | None = None


@dataclass
class Stats:
    """Counters a run reports: requests, retries, 429s and time spent waiting for quota."""

    requests: int = 0
    retries: int = 0
    throttled: int = 0
    waited_s: float = 0.0
    by_status: dict[int, int] = field(default_factory=dict)


def _header_number(headers: Any, name: str | None) -> float | None:
    if not name:
        return None
    value = headers.get(name)
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class HttpClient:
    """GET JSON from one API base URL, within its quota, retrying what can be retried.

    Args:
        base_url: prefix of every path.
        headers: sent with every request (auth included; never logged).
        rate_limit: names of the API's quota headers, or None for an API without them.
        errors: fixes to print for 401 and 403, formatted with ``{path}`` and ``{scope}``.
        reserve: requests left unused in each window (for other apps sharing the quota).
        concurrency: requests in flight at once; threads share the client and its pacer.
        on_wait: called with (seconds, reason) before each wait, e.g. to report RATE_LIMITED.
    """

    def __init__(self, base_url: str, headers: dict[str, str], *,
                 rate_limit: RateLimitHeaders | None = None,
                 errors: Mapping[str, str] | None = None, timeout: tuple[float, float] = (10, 60),
                 max_retries: int = 5, max_throttled: int = 20, backoff_s: float = 0.5,
                 reserve: int = 0, concurrency: int = 1,
                 on_wait: Callable[[float, str], None] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(16, concurrency),
                              max_retries=0)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.headers.update({"Accept": "application/json", **headers})
        # The credentials are headers; without an auth of its own, requests looks for a
        # ~/.netrc on every request (two stat calls a page). Proxy settings still apply.
        self.session.auth = _headers_only
        self.rate_limit = rate_limit
        self.errors: Mapping[str, str] = errors or {}
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_throttled = max_throttled
        self.backoff_s = backoff_s
        self.reserve = reserve
        self.on_wait = on_wait
        self.sleep = sleep
        self.quota = Quota()
        self.stats = Stats()
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(concurrency)
        self._in_flight = 0
        #: The API server's clock (epoch seconds), from the newest ``Date`` header seen.
        self.server_time: float | None = None

    def close(self) -> None:
        """Release pooled connections."""
        self.session.close()

    def _wait(self, seconds: float, reason: str) -> None:
        if seconds <= 0:
            return
        if self.on_wait:
            self.on_wait(seconds, reason)
        with self._lock:
            self.stats.waited_s += seconds
        self.sleep(seconds)

    def _pace(self) -> None:
        """Take a place in the window, or wait for its reset when the quota is used up.

        The requests in flight count against what the API last reported, so concurrent
        threads never overrun the window between them.
        """
        while True:
            with self._lock:
                q = self.quota
                if q.left is None or q.left - self._in_flight > self.reserve:
                    self._in_flight += 1
                    return
                remaining = q.reset_at - time.monotonic()
                if remaining <= 0:  # the window has reset; the next answer says how much is left
                    q.left = None
                    self._in_flight += 1
                    return
            self._wait(remaining, "quota used up for this window; waiting for its reset")

    def _read_quota(self, response: requests.Response) -> None:
        names, headers = self.rate_limit, response.headers
        date = headers.get("Date")
        if date:
            try:
                seen = parsedate_to_datetime(date).timestamp()
            except (TypeError, ValueError):
                seen = None
            with self._lock:
                if seen and (self.server_time is None or seen > self.server_time):
                    self.server_time = seen
        if names is None:
            return
        left = _header_number(headers, names.requests_left)
        reset_ms = _header_number(headers, names.reset)
        if reset_ms is not None and names.reset_unit == "s":
            reset_ms *= 1000
        with self._lock:
            q = self.quota
            reset_at = time.monotonic() + reset_ms / 1000 if reset_ms is not None else None
            # Answers arrive out of order under concurrency: within one window the smallest
            # count left is the newest; a later reset time means a new window.
            new_window = reset_at is not None and reset_at > q.reset_at + 0.05
            if left is not None:
                q.left = int(left) if new_window or q.left is None else min(q.left, int(left))
            if reset_at is not None and (new_window or q.reset_at == 0.0):
                q.reset_at = reset_at
            q.quota = int(_header_number(headers, names.quota) or 0) or q.quota
            window = _header_number(headers, names.window_ms)
            q.window_ms = int(window) if window else q.window_ms

    def _throttle_wait(self, response: requests.Response, attempt: int) -> float:
        """Seconds to wait after a 429: the longer of Retry-After and the window reset."""
        names = self.rate_limit
        retry_after = _header_number(response.headers, names.retry_after_s if names else None)
        if retry_after is None:
            retry_after = _header_number(response.headers, "Retry-After")
        reset_ms = _header_number(response.headers, names.reset if names else None)
        if reset_ms is not None and names is not None and names.reset_unit == "s":
            reset_ms *= 1000
        waits = [w for w in (retry_after, reset_ms / 1000 if reset_ms is not None else None)
                 if w is not None]
        if waits:
            return max(waits) + 0.01
        # A 429 without quota headers means the platform is under load: back off.
        return self._backoff(attempt)

    def _backoff(self, attempt: int) -> float:
        return random.uniform(0, min(30.0, self.backoff_s * 2 ** attempt))

    def _fail(self, response: requests.Response, method: str, url: str, path: str,
              scope: str | None) -> ConnectorError:
        status = response.status_code
        fix = self.errors.get(str(status))
        if fix:
            return ConnectorError(fix.format(path=path, scope=scope or "(unknown)"),
                                  "config_error")
        snippet = _snippet(response.text, 200)
        kind = "transient_error" if status in RETRYABLE_STATUS else "system_error"
        return ConnectorError(f"{method} {url} failed with HTTP {status}: {snippet}", kind)

    def get(self, path: str, params: dict[str, Any] | None = None,
            scope: str | None = None, missing_ok: bool = False) -> Any:
        """GET ``path`` and return its JSON body (``None`` for 204 No Content, and for 404
        when ``missing_ok``: a sub-resource that vanished).

        Raises:
            ConnectorError: 401/403 (with the fix), other 4xx, or 5xx and connection errors
                that outlasted the retries.
        """
        status, body = self.send("GET", path, params=params, scope=scope)
        if status == 404 and missing_ok:
            return None
        if status >= 400:
            raise self.client_error("GET", self.base_url + path, status, body)
        return body

    def get_raw(self, path: str, params: dict[str, Any] | None = None,
                scope: str | None = None) -> bytes:
        """GET ``path`` and return its JSON body unparsed (``b""`` for no content), for a
        caller that parses it when it is ready to (``framework.engine.reader`` parses at most a
        few pages at a time). A body that is not JSON is retried like in :meth:`get`; one
        that says it is JSON is the caller's to judge.

        Raises:
            ConnectorError: as :meth:`get`.
        """
        with self._slots:
            status, body = self._request("GET", path, params, None, scope, True, decode=False)
        if status >= 400:
            raise self.client_error("GET", self.base_url + path, status,
                                     _loads_or_text(body))
        return body

    def send(self, method: str, path: str, *, params: dict[str, Any] | None = None,
             json: Any = None, scope: str | None = None, idempotent: bool = True
             ) -> tuple[int, Any]:
        """Send a request; returns (status, JSON body or None) for 2xx and for 4xx answers
        other than 401 and 403, which the caller judges (a rejected record is not a failed
        run). A request that is not ``idempotent`` is retried only when the server cannot
        have acted on it (429, 503, a refused connection).

        Raises:
            ConnectorError: 401/403 (with the fix), or 5xx and connection errors that
                outlasted the retries.
        """
        with self._slots:
            return self._request(method, path, params, json, scope, idempotent)

    def _send(self, method: str, url: str, params: dict[str, Any] | None,
              payload: bytes | None) -> requests.Response:
        self._pace()
        try:
            with self._lock:
                self.stats.requests += 1
            headers = {"Content-Type": "application/json"} if payload is not None else None
            response = self.session.request(method, url, params=params, data=payload,
                                            headers=headers, timeout=self.timeout, stream=True)
            try:  # one read of the whole body: far cheaper than requests' 10 KB chunks
                response._content = response.raw.read(decode_content=True)
                response._content_consumed = True
            except urllib3.exceptions.HTTPError as exc:  # reset or truncated mid-body
                raise requests.ConnectionError(f"body cut short: {type(exc).__name__}") from None
            finally:
                response.close()
            self._read_quota(response)
            return response
        finally:
            with self._lock:
                self._in_flight -= 1

    def _request(self, method: str, path: str, params: dict[str, Any] | None, json: Any,
                 scope: str | None, idempotent: bool, decode: bool = True) -> tuple[int, Any]:
        url = self.base_url + path
        payload = orjson.dumps(json) if json is not None else None
        attempt = throttled = 0
        while True:
            try:
                response = self._send(method, url, params, payload)
            except TRANSIENT_ERRORS as exc:
                unsent = isinstance(exc, requests.exceptions.ConnectTimeout) or (
                    isinstance(exc, requests.ConnectionError)
                    and "NewConnectionError" in repr(exc))
                if attempt >= self.max_retries or not (idempotent or unsent):
                    hint = ("; is the URL right and the server up?" if unsent and
                            attempt >= self.max_retries else "")
                    raise ConnectorError(f"{method} {url} failed after {attempt + 1} attempts: "
                                         f"{type(exc).__name__}{hint}", "transient_error"
                                         ) from None
                self._count(retries=1)
                self._wait(self._backoff(attempt), f"{type(exc).__name__}; retrying")
                attempt += 1
                continue
            status = response.status_code
            self._count(status=status)
            if status == 429:
                self._count(throttled=1)
                if throttled >= self.max_throttled:
                    raise ConnectorError(f"{method} {url} was rate limited {throttled + 1} "
                                         "times in a row; another app may be using the quota, "
                                         "try again later", "transient_error")
                self._wait(self._throttle_wait(response, throttled), "HTTP 429; retrying")
                throttled += 1
                continue
            retryable = status in RETRYABLE_STATUS and (idempotent or status == 503)
            if retryable and attempt < self.max_retries:
                self._count(retries=1)
                self._wait(self._backoff(attempt), f"HTTP {status}; retrying")
                attempt += 1
                continue
            if status in (401, 403) or status >= 500:
                raise self._fail(response, method, url, path, scope)
            if not response.content:
                return status, None if decode else b""
            try:
                if decode:
                    return status, orjson.loads(response.content)
                if "json" not in response.headers.get("Content-Type", "json"):
                    raise orjson.JSONDecodeError("not JSON", "", 0)
                return status, response.content
            except orjson.JSONDecodeError:
                if status < 400 and attempt < self.max_retries and idempotent:
                    # A truncated body, a proxy's page in place of the answer; a 4xx page
                    # is an answer (e.g. a 404 for a wrong URL): retrying will not change it.
                    self._count(retries=1)
                    self._wait(self._backoff(attempt), "response was not JSON; retrying")
                    attempt += 1
                    continue
                kind = response.headers.get("Content-Type", "no content type")
                snippet = _snippet(response.text, 80)
                if status >= 400:  # the caller judges a 4xx, whatever its body
                    return status, snippet if decode else snippet.encode()
                raise ConnectorError(f"{method} {url} answered HTTP {status} with {kind}, not "
                                     f"JSON: {snippet!r}", "transient_error") from None

    @staticmethod
    def client_error(method: str, url: str, status: int, body: Any) -> ConnectorError:
        """The error of a 4xx answer the caller cannot go on with (its body redacted)."""
        snippet = _snippet(orjson.dumps(body).decode(), 200) if body else ""
        return ConnectorError(f"{method} {url} failed with HTTP {status}: {snippet}",
                              "system_error")

    def _count(self, *, status: int | None = None, retries: int = 0, throttled: int = 0) -> None:
        with self._lock:
            if status is not None:
                self.stats.by_status[status] = self.stats.by_status.get(status, 0) + 1
            self.stats.retries += retries
            self.stats.throttled += throttled


def _loads_or_text(body: bytes) -> Any:
    try:
        return orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return body.decode("utf-8", "replace")


def _headers_only(request: requests.PreparedRequest) -> requests.PreparedRequest:
    """The session's auth: nothing to add (the client's headers carry the credentials)."""
    return request


def _snippet(text: str, size: int) -> str:
    """The start of an answer for an error message: redacted *before* it is cut, so that a
    secret the answer echoes is not left half-spelled at the cut (a redactor no longer
    recognizes half a secret)."""
    return REDACT(" ".join(text[:size + 4096].split()))[:size]
