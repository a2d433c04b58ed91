"""Brevo's rate limits: which bucket an endpoint spends, and each bucket's size per tier.

From developers.brevo.com/docs/api-limits (the page's three tables; the advanced and extended
rows as api-evangelist/brevo ``rate-limits/brevo-rate-limits.yml`` transcribes them): every
account has the general limits, Professional and Enterprise plans the advanced ones, Enterprise
the extended ones. Endpoints the page does not name share "all other endpoints", which is the
bucket a backfill runs out of (100 requests an hour on the general tier). README's Brevo
destination section says what the page leaves open and what is decided here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Limit:
    """One bucket's size: requests a second (None: no per-second limit) and an hour."""

    per_second: int | None
    per_hour: int


#: The buckets this destination spends, per tier. Where the page gives only a per-second limit
#: (extended contacts, events, orders) the hour is 3,600 of them; where it gives only an hourly
#: one (extended products), that is the bucket's size. The per-hour figures of the general and
#: advanced tiers are 3,600 times the per-second ones: a paced client never meets them apart.
TIERS: dict[str, dict[str, Limit]] = {
    "general": {"contacts": Limit(10, 36_000), "events": Limit(10, 36_000),
                "orders": Limit(5, 18_000), "products": Limit(2, 7_200),
                "other": Limit(None, 100)},
    "advanced": {"contacts": Limit(20, 72_000), "events": Limit(20, 72_000),
                 "orders": Limit(10, 36_000), "products": Limit(4, 14_400),
                 "other": Limit(None, 200)},
    "extended": {"contacts": Limit(60, 216_000), "events": Limit(60, 216_000),
                 "orders": Limit(15, 54_000), "products": Limit(None, 21_600),
                 "other": Limit(None, 600)},
}
BUCKETS = ("contacts", "events", "orders", "products", "other")
#: What each bucket holds, for people.
BUCKET_NAMES = {"contacts": "/v3/contacts/*", "events": "POST /v3/events",
                "orders": "POST /v3/orders/status", "products": "POST /v3/products",
                "other": "everything else"}


def bucket_of(method: str, path: str) -> str:
    """The bucket a request spends. Only the exact endpoints the page names have their own:
    ``POST /v3/orders/status/batch``, ``/v3/products/batch``, ``/v3/categories/batch``,
    ``/v3/events/batch`` and ``GET /v3/processes`` are "all other endpoints"."""
    path = path.split("?", 1)[0].rstrip("/")
    if path == "/v3/contacts" or path.startswith("/v3/contacts/"):
        return "contacts"
    if method == "POST" and path == "/v3/events":
        return "events"
    if method == "POST" and path == "/v3/orders/status":
        return "orders"
    if method == "POST" and path == "/v3/products":
        return "products"
    return "other"


def tier_of(other_limit: int | None) -> str | None:
    """The tier whose "all other endpoints" bucket has ``other_limit`` requests (what Brevo's
    ``x-sib-ratelimit-limit`` says on such an endpoint); None for a size no tier has (a rate
    limit add-on)."""
    for name, limits in TIERS.items():
        if limits["other"].per_hour == other_limit:
            return name
    return None


def hours(requests: int, limit: Limit) -> float:
    """Hours that ``requests`` take in a bucket of ``limit`` when nothing else spends it."""
    return requests / limit.per_hour


def windows(requests: int, limit: Limit) -> int:
    """Whole hourly windows a bucket must wait through for ``requests`` (the first window's
    requests go at once): what a run of them waits at least, in hours."""
    return max(0, math.ceil(requests / limit.per_hour) - 1)


class Buckets:
    """The API, one client per bucket: each request goes through the client of the bucket it
    spends, so that each client's pacer reads only its own bucket's rate-limit headers
    (``framework.engine.http``); requests are counted per bucket."""

    def __init__(self, clients: dict[str, Any]) -> None:
        self.clients = clients
        self.sent: dict[str, int] = dict.fromkeys(BUCKETS, 0)

    def send(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        bucket = bucket_of(method, path)
        self.sent[bucket] += 1
        result: tuple[int, Any] = self.clients[bucket].send(method, path, **kwargs)
        return result

    def limit_seen(self, bucket: str) -> int | None:
        """The bucket's size as Brevo's last answer on it said (``x-sib-ratelimit-limit``)."""
        quota = getattr(self.clients[bucket], "quota", None)
        return getattr(quota, "quota", None)

    def close(self) -> None:
        for client in self.clients.values():
            client.close()


def estimate(sent: dict[str, int], tier: str) -> str:
    """What ``sent`` requests take at ``tier``'s limits, bucket by bucket, for people: the
    hours each bucket's requests need when nothing else spends it."""
    parts = []
    for bucket in BUCKETS:
        count = sent.get(bucket, 0)
        if not count:
            continue
        limit = TIERS[tier][bucket]
        parts.append(f"{BUCKET_NAMES[bucket]} {count:,} ({hours(count, limit):.2f} h at "
                     f"{limit.per_hour:,} an hour)")
    return (f"Brevo requests by rate-limit bucket, at the {tier} tier's limits: "
            + ("; ".join(parts) or "none"))
