"""Pacing by query cost: a local model of an API's leaky bucket of points.

A GraphQL API that limits by cost (not by requests) answers each query with what it asked of
the bucket (``requested``), what it took in the end (``actual``, the rest refunded) and the
bucket's state (``maximum``, ``available``, ``restore_rate`` points per second); where these
are is the spec's (``client.graphql.cost``). The bucket must hold a query's requested cost
before the query runs, so :meth:`CostBucket.take` waits, before sending, the time the restore
rate needs to refill the difference: computed, never a blind sleep. Queries in flight hold
their requested cost, so threads sharing one account's bucket never overdraw it between them.

This is pacing apart from I/O, as ``framework.engine.http`` paces by rate-limit headers: the
GraphQL client (``framework.engine.graphql``) calls :meth:`take` before it sends and
:meth:`settle` with each answer's reading.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from framework.declarative.graphql import CostPaths
from framework.declarative.paginators import dig


@dataclass(frozen=True)
class CostReading:
    """What one answer said about its cost and the bucket (``None``: it did not say)."""

    requested: float | None
    actual: float | None
    maximum: float | None
    available: float | None
    restore_rate: float | None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def read_cost(answer: Any, paths: CostPaths | None) -> CostReading | None:
    """The cost reading of an answer, where ``paths`` say it is (``None``: no reading)."""
    if paths is None:
        return None
    cost = dig(answer, paths.path)
    if not isinstance(cost, dict):
        return None
    return CostReading(*(_number(dig(cost, name)) for name in (
        paths.requested, paths.actual, paths.maximum, paths.available, paths.restore_rate)))


class CostBucket:
    """The local model of one account's bucket, shared by every thread reading it.

    Until an answer has described the bucket, nothing is known and nothing waits. After that,
    the level at time ``t`` is ``min(maximum, available + restore_rate * (t - read_at))``,
    less what queries in flight hold.

    Args:
        on_wait: called with (seconds, reason) before each wait (logs, RATE_LIMITED).
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep,
                 on_wait: Callable[[float, str], None] | None = None) -> None:
        self.clock = clock
        self.sleep = sleep
        self.on_wait = on_wait
        self.maximum: float | None = None
        self.rate: float | None = None
        self.available = 0.0
        self.read_at = 0.0
        self.held = 0.0  # requested cost of the queries in flight
        self.waited_s = 0.0
        self.points = 0.0  # actual cost of every answer settled
        self._lock = threading.Lock()

    def level(self, now: float | None = None) -> float | None:
        """Points the bucket holds now by the model (``None``: not known yet)."""
        if self.maximum is None or self.rate is None:
            return None
        now = self.clock() if now is None else now
        return min(self.maximum, self.available + self.rate * max(0.0, now - self.read_at))

    def take(self, cost: float) -> None:
        """Hold ``cost`` points for a query about to be sent, after waiting until the bucket
        holds them (a cost above the bucket's size waits for a full bucket: the API judges)."""
        while True:
            with self._lock:
                level = self.level()
                if level is None or self.rate is None or self.rate <= 0:
                    self.held += cost
                    return
                assert self.maximum is not None
                need = min(cost, self.maximum) - (level - self.held)
                if need <= 0:
                    self.held += cost
                    return
                seconds = need / self.rate
            self.wait(seconds, f"query cost {cost:g} points, the bucket holds "
                               f"{max(0.0, level - self.held):g}: points quota used up; "
                               "waiting for the restore")

    def settle(self, cost: float, reading: CostReading | None) -> None:
        """A query holding ``cost`` was answered: release it and take in the answer's reading
        (the API's count of available points is the truth; the model restarts from it)."""
        with self._lock:
            self.held = max(0.0, self.held - cost)
            if reading is None:
                return
            if reading.actual is not None:
                self.points += reading.actual
            if reading.maximum is not None:
                self.maximum = reading.maximum
            if reading.restore_rate is not None:
                self.rate = reading.restore_rate
            if reading.available is not None:
                self.available, self.read_at = reading.available, self.clock()

    def refill_wait(self, cost: float) -> float:
        """Seconds until the bucket holds ``cost`` by the model (after a throttled answer)."""
        with self._lock:
            level = self.level()
            if level is None or not self.rate:
                return 1.0
            assert self.maximum is not None
            return max(0.0, (min(cost, self.maximum) - (level - self.held)) / self.rate)

    def wait(self, seconds: float, reason: str) -> None:
        if seconds <= 0:
            return
        if self.on_wait:
            self.on_wait(seconds, reason)
        with self._lock:
            self.waited_s += seconds
        self.sleep(seconds)
