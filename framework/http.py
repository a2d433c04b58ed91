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
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import requests
from requests.adapters import HTTPAdapter

from framework.errors import REDACT, ConnectorError
from framework.spec import RateLimitHeaders

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
        on_wait: called with (seconds, reason) before each wait, e.g. to report RATE_LIMITED.
    """

    def __init__(self, base_url: str, headers: dict[str, str], *,
                 rate_limit: RateLimitHeaders | None = None,
                 errors: dict[str, str] | None = None, timeout: tuple[float, float] = (10, 60),
                 max_retries: int = 5, max_throttled: int = 20, backoff_s: float = 0.5,
                 reserve: int = 0, on_wait: Callable[[float, str], None] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=16, max_retries=0)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.headers.update({"Accept": "application/json", **headers})
        self.rate_limit = rate_limit
        self.errors = errors or {}
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_throttled = max_throttled
        self.backoff_s = backoff_s
        self.reserve = reserve
        self.on_wait = on_wait
        self.sleep = sleep
        self.quota = Quota()
        self.stats = Stats()

    def close(self) -> None:
        """Release pooled connections."""
        self.session.close()

    def _wait(self, seconds: float, reason: str) -> None:
        if seconds <= 0:
            return
        if self.on_wait:
            self.on_wait(seconds, reason)
        self.stats.waited_s += seconds
        self.sleep(seconds)

    def _pace(self) -> None:
        """Wait for the window reset when the quota the API reported is used up."""
        q = self.quota
        if q.left is not None and q.left <= self.reserve:
            remaining = q.reset_at - time.monotonic()
            if remaining > 0:
                self._wait(remaining, "quota used up for this window; waiting for its reset")
            q.left = None

    def _read_quota(self, response: requests.Response) -> None:
        names, headers = self.rate_limit, response.headers
        if names is None:
            return
        left = _header_number(headers, names.requests_left)
        reset_ms = _header_number(headers, names.reset_ms)
        if left is not None:
            self.quota.left = int(left)
        if reset_ms is not None:
            self.quota.reset_at = time.monotonic() + reset_ms / 1000
        self.quota.quota = int(_header_number(headers, names.quota) or 0) or self.quota.quota
        window = _header_number(headers, names.window_ms)
        self.quota.window_ms = int(window) if window else self.quota.window_ms

    def _throttle_wait(self, response: requests.Response, attempt: int) -> float:
        """Seconds to wait after a 429: the longer of Retry-After and the window reset."""
        names = self.rate_limit
        retry_after = _header_number(response.headers, names.retry_after_s if names else None)
        if retry_after is None:
            retry_after = _header_number(response.headers, "Retry-After")
        reset_ms = _header_number(response.headers, names.reset_ms if names else None)
        waits = [w for w in (retry_after, reset_ms / 1000 if reset_ms is not None else None)
                 if w is not None]
        if waits:
            return max(waits) + 0.01
        # A 429 without quota headers means the platform is under load: back off.
        return self._backoff(attempt)

    def _backoff(self, attempt: int) -> float:
        return random.uniform(0, min(30.0, self.backoff_s * 2 ** attempt))

    def _fail(self, response: requests.Response, path: str, scope: str | None) -> ConnectorError:
        status = response.status_code
        fix = self.errors.get(str(status))
        if fix:
            return ConnectorError(fix.format(path=path, scope=scope or "(unknown)"),
                                  "config_error")
        snippet = REDACT(" ".join(response.text[:200].split()))
        kind = "transient_error" if status in RETRYABLE_STATUS else "system_error"
        return ConnectorError(f"GET {path} failed with HTTP {status}: {snippet}", kind)

    def get(self, path: str, params: dict[str, Any] | None = None,
            scope: str | None = None) -> Any:
        """GET ``path`` and return its JSON body (``None`` for 204 No Content).

        Raises:
            ConnectorError: 401/403 (with the fix), other 4xx, or 5xx and connection errors
                that outlasted the retries.
        """
        url = self.base_url + path
        attempt = throttled = 0
        while True:
            self._pace()
            self.stats.requests += 1
            try:
                response = self.session.get(url, params=params, timeout=self.timeout)
            except TRANSIENT_ERRORS as exc:
                if attempt >= self.max_retries:
                    raise ConnectorError(f"GET {path} failed after {attempt + 1} attempts: "
                                         f"{type(exc).__name__}", "transient_error") from None
                self.stats.retries += 1
                self._wait(self._backoff(attempt), f"{type(exc).__name__}; retrying")
                attempt += 1
                continue
            status = response.status_code
            self.stats.by_status[status] = self.stats.by_status.get(status, 0) + 1
            self._read_quota(response)
            if status == 429:
                self.stats.throttled += 1
                if throttled >= self.max_throttled:
                    raise ConnectorError(f"GET {path} was rate limited {throttled + 1} times in a "
                                         "row; another app may be using the store's quota, try "
                                         "again later", "transient_error")
                self._wait(self._throttle_wait(response, throttled), "HTTP 429; retrying")
                throttled += 1
                self.quota.left = None
                continue
            if status in RETRYABLE_STATUS and attempt < self.max_retries:
                self.stats.retries += 1
                self._wait(self._backoff(attempt), f"HTTP {status}; retrying")
                attempt += 1
                continue
            if status == 204:
                return None
            if status >= 400:
                raise self._fail(response, path, scope)
            try:
                return orjson.loads(response.content)
            except orjson.JSONDecodeError:
                if attempt < self.max_retries:  # a truncated body or a proxy's error page
                    self.stats.retries += 1
                    self._wait(self._backoff(attempt), "response was not JSON; retrying")
                    attempt += 1
                    continue
                kind = response.headers.get("Content-Type", "no content type")
                snippet = REDACT(" ".join(response.text[:80].split()))
                raise ConnectorError(f"GET {path} answered HTTP {status} with {kind}, not JSON: "
                                     f"{snippet!r}", "transient_error") from None
