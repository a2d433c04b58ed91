"""What the fault, crash and mutation checks share (``tests/test_chaos.py`` runs them small in
CI, ``tests/bench/chaos.py`` runs them bigger): sandboxes as subprocesses, a sync config, runs
that are retried the way a scheduler would, and Brevo's state in a comparable form.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

RUNNER = shutil.which("runner") or str(Path(sys.executable).parent / "runner")
LISTS = {"all_customers": 40, "buyers": 41, "abandoned_cart": 42}
#: Every subprocess sees the built-in connectors only, whatever else is installed.
ENV = {**os.environ, "TAJO_CONNECTORS": "bigcommerce,brevo,shopify,sqlite"}
#: Every kind of fault at once, about one request in six.
PROFILE = {"429": 0.03, "500": 0.02, "502": 0.02, "503": 0.03, "reset": 0.02,
           "truncate": 0.02, "slow": 0.02, "stall": 0.01}
#: Timestamps Brevo sets itself (when it stored something), not what was sent.
BREVO_CLOCK = ("id", "createdAt", "modifiedAt", "batch_id", "createdCount", "updatedCount")


def _start(*args: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    process = subprocess.Popen([RUNNER, "sandbox", *args, "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                               env=ENV)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        raise RuntimeError(f"runner sandbox {args[0]} did not start")
    return process, json.loads(line)


@dataclass
class Store:
    """A BigCommerce sandbox (faults off until :meth:`faults` turns them on)."""

    process: subprocess.Popen[str]
    ready: dict[str, Any]
    platform = "bigcommerce"
    #: Where one fault of each kind is queued for sure (besides the random ones).
    fault_paths = ("/v3/customers", "/v2/orders")

    @classmethod
    def start(cls, customers: int, orders: int, products: int, seed: int = 5) -> Store:
        return cls(*_start("bigcommerce", "--customers", str(customers), "--orders",
                           str(orders), "--products", str(products), "--seed", str(seed),
                           "--plan", "enterprise", "--faults-slow-ms", "1500"))

    def admin(self, path: str, body: dict[str, Any] | None = None) -> Any:
        response = requests.request("POST" if body is not None else "GET",
                                    f"{self.ready['url']}/_sandbox/{path}", json=body,
                                    headers={"X-Auth-Token": self.ready["access_token"]},
                                    timeout=60)
        response.raise_for_status()
        return response.json()

    def faults(self, rates: dict[str, float], seed: int = 1) -> dict[str, Any]:
        return dict(self.admin("fault-profile", {"rates": rates, "seed": seed}))

    def mutate(self, resource: str, **change: Any) -> dict[str, Any]:
        return dict(self.admin("mutate", {"resource": resource, "seed": 11, **change}))

    def everything(self, path: str, fields: tuple[str, ...]) -> dict[int, tuple[Any, ...]]:
        """Every record of a list endpoint, by id: the store as it is now."""
        out: dict[int, tuple[Any, ...]] = {}
        page = 1
        while True:
            response = requests.get(
                f"{self.ready['url']}/stores/{self.ready['store_hash']}{path}",
                params={"limit": 250, "page": page},
                headers={"X-Auth-Token": self.ready["access_token"]}, timeout=60)
            response.raise_for_status()
            body = response.json() if response.content else []
            rows = body["data"] if isinstance(body, dict) else body
            out.update({row["id"]: tuple(row.get(f) for f in fields) for row in rows})
            if len(rows) < 250:
                return out
            page += 1

    def block(self) -> dict[str, Any]:
        """The store's block of a sync config (``connectors.bigcommerce``)."""
        return {"store_hash": self.ready["store_hash"],
                "access_token": self.ready["access_token"], "api_url": self.ready["url"],
                "sync": {"carts": False}}

    def source_config(self) -> dict[str, Any]:
        """The source's own config (``runner read bigcommerce``)."""
        return {"api_url": self.ready["url"], "store_hash": self.ready["store_hash"],
                "access_token": self.ready["access_token"]}

    def change(self, scale: int = 1) -> None:
        """What happens between two syncs: edits, sign-ups, new orders, deletions."""
        self.mutate("customers", update=25 * scale, create=6 * scale, delete=2 * scale)
        self.mutate("orders", update=30 * scale, create=8 * scale)
        self.mutate("products", update=5 * scale, delete=scale)

    def platform_faults(self) -> None:
        """Faults of the platform's own kind, beyond the network's (none here: BigCommerce's
        are HTTP statuses, which the profile has)."""

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@dataclass
class Shop:
    """A Shopify sandbox shop (faults off until :meth:`faults` turns them on). Its
    abandoned checkouts are read like any stream (BigCommerce's carts come by webhook only),
    so the syncs carry them."""

    process: subprocess.Popen[str]
    ready: dict[str, Any]
    platform = "shopify"
    fault_paths = ("/graphql.json", "/graphql.json")  # each shop's path ends so

    @classmethod
    def start(cls, customers: int, orders: int, products: int, seed: int = 5,
              checkouts: int | None = None) -> Shop:
        # Plus: 1,000 points a second, so that the round's time goes to faults and kills
        # rather than to the query-cost bucket (tests/bench/points_floor.py measures that).
        return cls(*_start("shopify", "--customers", str(customers), "--orders", str(orders),
                           "--products", str(products), "--checkouts",
                           str(checkouts if checkouts is not None else max(10, orders // 8)),
                           "--seed", str(seed), "--plan", "plus", "--bulk-delay-ms", "50",
                           "--faults-slow-ms", "1500"))

    def admin(self, path: str, body: dict[str, Any] | None = None) -> Any:
        response = requests.request("POST" if body is not None else "GET",
                                    f"{self.ready['url']}/_sandbox/{path}", json=body,
                                    headers={"X-Shopify-Access-Token":
                                             self.ready["access_token"]}, timeout=60)
        response.raise_for_status()
        return response.json()

    def faults(self, rates: dict[str, float], seed: int = 1) -> dict[str, Any]:
        return dict(self.admin("fault-profile", {"rates": rates, "seed": seed}))

    def mutate(self, resource: str, **change: Any) -> dict[str, Any]:
        return dict(self.admin("mutate", {"resource": resource, "seed": 11, **change}))

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The ``data`` of a query, waiting out THROTTLED answers as Shopify asks."""
        from connectors.shopify.schema import DEFAULT_VERSION

        url = (f"{self.ready['url']}/{self.ready['shop']}/admin/api/{DEFAULT_VERSION}"
               "/graphql.json")
        for _ in range(60):
            answer = requests.post(url, json={"query": query, "variables": variables or {}},
                                   headers={"X-Shopify-Access-Token":
                                            self.ready["access_token"]}, timeout=60)
            answer.raise_for_status()
            body = answer.json()
            errors = body.get("errors") or []
            if any((e.get("extensions") or {}).get("code") == "THROTTLED" for e in errors):
                time.sleep(1.0)
                continue
            if errors:
                raise AssertionError(f"the query failed: {errors}")
            return dict(body["data"])
        raise AssertionError("the query stayed throttled for a minute")

    def everything(self, connection: str, selection: str, page: int = 100
                   ) -> list[dict[str, Any]]:
        """Every node of a top-level connection (``customers``), ``selection`` of each,
        ``page`` a query (a query may ask 1,000 points: a node costs 1 and each object in
        it 1 more)."""
        nodes: list[dict[str, Any]] = []
        after = None
        while True:
            data = self.graphql(
                f"query($after: String) {{ {connection}(first: {page}, after: $after) "
                f"{{ pageInfo {{ hasNextPage endCursor }} nodes {{ {selection} }} }} }}",
                {"after": after})[connection]
            nodes += data["nodes"]
            if not data["pageInfo"]["hasNextPage"]:
                return nodes
            after = data["pageInfo"]["endCursor"]

    def block(self) -> dict[str, Any]:
        """The shop's block of a sync config (``connectors.shopify``)."""
        return {"shop_setup": {"shop": self.ready["shop"],
                               "access_token": self.ready["access_token"]},
                "client_secret": self.ready["client_secret"], "api_url": self.ready["url"]}

    def source_config(self) -> dict[str, Any]:
        return {"shop": self.ready["shop"], "access_token": self.ready["access_token"],
                "api_url": self.ready["url"]}

    def change(self, scale: int = 1) -> None:
        """What happens between two syncs: edits, sign-ups, new orders, refunds and
        cancellations, a consent withdrawn, deletions, shoppers leaving checkouts."""
        self.mutate("customers", update=25 * scale, create=6 * scale, delete=2 * scale)
        self.mutate("orders", update=30 * scale, create=8 * scale)
        orders = self.mutate("orders", update=4 * scale, seed=12)["updated"]
        for number in orders[:2 * scale]:
            self.admin("orders/refund", {"id": number})
        for number in orders[2 * scale:]:
            self.admin("orders/cancel", {"id": number})
        self.mutate("customers", update=3 * scale, seed=13,
                    set={"emailMarketingConsent": {"marketingState": "UNSUBSCRIBED"}})
        self.mutate("products", update=5 * scale, delete=scale)
        self.admin("checkouts", {"create": 4 * scale, "seed": 14})

    def platform_faults(self) -> None:
        """Shopify's own faults, answered with HTTP 200: THROTTLED without a cost to plan
        by (an app that shares the bucket spent it), and an internal error, which fails the
        query's stream (and the run: the scheduler runs it again)."""
        self.admin("faults", {"status": 200, "count": 2, "body": {"errors": [{
            "message": "Throttled", "extensions": {
                "code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"}}]}})
        self.admin("faults", {"status": 200, "count": 1, "body": {"errors": [{
            "message": "Internal error. Looks like something went wrong on our end.",
            "extensions": {"code": "INTERNAL_SERVER_ERROR"}}]}})

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


#: A store of either platform.
AnyStore = Store | Shop


@dataclass
class Account:
    """A Brevo sandbox account."""

    process: subprocess.Popen[str]
    ready: dict[str, Any]

    @classmethod
    def start(cls) -> Account:
        return cls(*_start("brevo", "--lists", "40,41,42", "--window-ms", "5",
                           "--import-delay-ms", "20", "--faults-slow-ms", "1500"))

    def admin(self, path: str, body: dict[str, Any] | None = None) -> Any:
        response = requests.request("POST" if body is not None else "GET",
                                    f"{self.ready['url']}/_sandbox/{path}", json=body,
                                    headers={"api-key": self.ready["api_key"]}, timeout=120)
        response.raise_for_status()
        return response.json()

    def faults(self, rates: dict[str, float], seed: int = 2) -> dict[str, Any]:
        return dict(self.admin("fault-profile", {"rates": rates, "seed": seed}))

    def state(self) -> dict[str, Any]:
        return dict(self.admin("state"))

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def sync_config(store: AnyStore, account: Account, state_dir: Path,
                mapping: dict[str, str] | None = None, timeout: float = 1, **source: Any
                ) -> Path:
    """A ``runner sync`` config (JSON is YAML) with short timeouts (``timeout``), so that
    'slow' faults time out."""
    path = state_dir.with_suffix(".json")
    extra = {"customer_mapping": mapping} if mapping else {}
    path.write_text(json.dumps({**extra,
        "connectors": {store.platform: {
            **store.block(), "lists": LISTS, "request_timeout": timeout, **source}},
        "brevo": {"api_key": account.ready["api_key"], "api_url": account.ready["url"],
                  "request_timeout": timeout},
        "state_dir": str(state_dir)}))
    return path


@dataclass
class Outcome:
    """How a sync got done: the runs it took, their exit codes, what they printed."""

    runs: int = 0
    codes: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def sync_until_done(config: Path, outcome: Outcome | None = None, tries: int = 8,
                    timeout: float = 300) -> Outcome:
    """``runner sync`` until it exits 0, as a scheduler retrying a failed job would."""
    outcome = outcome or Outcome()
    for _ in range(tries):
        result = subprocess.run([RUNNER, "--json-logs", "sync", "--config", str(config)],
                                capture_output=True, timeout=timeout,
                                env=ENV)
        outcome.runs += 1
        outcome.codes.append(result.returncode)
        if result.returncode == 0:
            return outcome
        # The lines that say why (errors, warnings), not the last lines of the log.
        lines = result.stderr.decode(errors="replace").splitlines()
        why = [line for line in lines if '"level":"INFO"' not in line] or lines
        outcome.errors.append("\n".join(why)[-1500:])
    raise AssertionError(f"sync did not succeed in {tries} runs: {outcome.errors[-1]}")


def timed(run: Callable[..., Any], *args: Any) -> float:
    """Seconds ``run(*args)`` took."""
    started = time.monotonic()
    run(*args)
    return time.monotonic() - started


def kill_time(rng: random.Random, clean_s: float) -> float:
    """When to kill a run: somewhere in the time a clean run of it took (a faster build
    must not make the kills miss), past the first few tenths of a second of start-up."""
    return max(0.3, rng.uniform(0.2, 0.95) * clean_s)


def kill_at(args: list[str], after_s: float, env: dict[str, str] | None = None) -> bool:
    """Run ``args`` and SIGKILL it after ``after_s`` seconds; True if it was still running."""
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**ENV, **(env or {})}, start_new_session=True)
    try:
        process.wait(timeout=after_s)
        return False
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return True


def kill_when(args: list[str], ready: Callable[[], bool], timeout: float = 120) -> bool:
    """Run ``args`` and SIGKILL it as soon as ``ready()`` holds; False if it ended first."""
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=ENV,
                               start_new_session=True)
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        if ready():
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return True
        time.sleep(0.03)
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    return False


def pipeline(source: Path, destination: Path, states: Path,
             platform: str = "bigcommerce") -> list[str]:
    """``runner read PLATFORM | runner write brevo``, resuming from and appending to
    ``states`` (the last state of each stream wins), as a shell script would run it."""
    resume = f"--state {states}" if states.exists() and states.stat().st_size else ""
    return ["bash", "-c", f"set -o pipefail; {RUNNER} read {platform} --config {source} "
            f"{resume} | {RUNNER} write brevo --config {destination} >> {states}"]


def kill_one_side(args: list[str], after_s: float, side: str) -> bool:
    """Run a pipeline and SIGKILL one side of it (``read`` or ``write``) after ``after_s``;
    True if that side was still running."""
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=ENV,
                               start_new_session=True)
    try:
        process.wait(timeout=after_s)
        return False
    except subprocess.TimeoutExpired:
        found = subprocess.run(["pgrep", "-s", str(process.pid), "-f", f"runner {side} "],
                               capture_output=True, text=True).stdout.split()
        for pid in found:
            os.kill(int(pid), signal.SIGKILL)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        return bool(found)


def run_until_done(args: list[str], tries: int = 8, timeout: float = 300) -> int:
    """Run a command until it exits 0; returns the runs it took."""
    for run in range(1, tries + 1):
        result = subprocess.run(args, capture_output=True, timeout=timeout,
                                env=ENV)
        if result.returncode == 0:
            return run
    raise AssertionError(f"{args[-1][:80]} did not succeed: {result.stderr.decode()[-600:]}")


def comparable(state: dict[str, Any]) -> dict[str, Any]:
    """Brevo's state without what Brevo itself stamps (ids, its clock, import processes),
    with events as a multiset: two states are equal when the same things were sent, each
    as many times."""
    def strip(item: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in item.items() if k not in BREVO_CLOCK}

    def contact(item: dict[str, Any]) -> dict[str, Any]:
        # Brevo gives a phone number to one contact; when two customers share one, which
        # of them holds it depends on the order they were sent in (first come, first
        # served), so the numbers held are compared as a set of their own.
        attributes = {k: v for k, v in item["attributes"].items() if k != "SMS"}
        return {**strip(item), "attributes": attributes}

    # An event's contact_id is the number Brevo gave its contact, in the order contacts were
    # created (an import retried after a fault comes later); its identifiers name the contact.
    events = Counter(json.dumps({k: v for k, v in e.items() if k != "contact_id"},
                                sort_keys=True) for e in state["events"])
    return {
        "contacts": sorted(json.dumps(contact(c), sort_keys=True) for c in state["contacts"]),
        "sms_numbers": sorted(str(c["attributes"]["SMS"]) for c in state["contacts"]
                              if c["attributes"].get("SMS")),
        "products": sorted(json.dumps(strip(p), sort_keys=True) for p in state["products"]),
        "categories": sorted(json.dumps(strip(c), sort_keys=True)
                             for c in state["categories"]),
        "orders": sorted(json.dumps(strip(o), sort_keys=True) for o in state["orders"]),
        "events": sorted(events.items()),
        "lists": sorted(json.dumps(strip(x), sort_keys=True) for x in state["lists"]),
        "attributes": sorted(json.dumps(a, sort_keys=True) for a in state["attributes"]),
    }


def differences(clean: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """What differs between two comparable states: missing and extra items per kind."""
    out: dict[str, Any] = {}
    for kind in clean:
        a, b = Counter(map(str, clean[kind])), Counter(map(str, other[kind]))
        if a != b:
            out[kind] = {"missing": list((a - b).elements())[:3],
                         "extra": list((b - a).elements())[:3],
                         "missing_count": sum((a - b).values()),
                         "extra_count": sum((b - a).values())}
    return out


def doubled_events(state: dict[str, Any]) -> list[str]:
    """Events sent more than once (same name, contact and key)."""
    keys = Counter((e["event_name"], json.dumps(e["identifiers"], sort_keys=True),
                    (e.get("event_properties") or {}).get("event_key")) for e in state["events"])
    return [str(k) for k, n in keys.items() if n > 1]


# --- scenarios (the tests run them small, tests/bench/chaos.py big) -------------------------

def faults_scenario(store: AnyStore, clean: Account, faulty: Account, work: Path,
                    profile: dict[str, float] | None = None, seed: int = 1,
                    scale: int = 1) -> dict[str, Any]:
    """A full and an incremental sync under faults on both sides, each against a clean one
    into another account: what differs, what was doubled, what was injected."""
    from framework.devkit.faults import FAULT_KINDS

    profile = PROFILE if profile is None else profile
    clean_config = sync_config(store, clean, work / f"clean-{seed}")
    faulty_config = sync_config(store, faulty, work / f"faulty-{seed}")

    def faults(on: bool) -> None:
        store.faults(profile if on else {}, seed=seed)
        faulty.faults(profile if on else {}, seed=seed + 1)
        if on:  # and one of each kind for sure on both sides, beyond the random ones
            for n, kind in enumerate(FAULT_KINDS):
                store.admin("fault-profile", {"kind": kind,
                                              "path": store.fault_paths[n % 2]})
                faulty.admin("fault-profile", {"kind": kind, "path": (
                    "/v3/contacts", "/v3/orders/status/batch", "/v3/products/batch")[n % 3]})
            store.platform_faults()

    before = [store.admin("fault-profile")["injected"], faulty.admin("fault-profile")["injected"]]
    sync_until_done(clean_config)
    faults(True)
    outcome = sync_until_done(faulty_config)
    faults(False)
    full = differences(comparable(clean.state()), comparable(faulty.state()))

    store.change(scale)
    sync_until_done(clean_config)
    # The answers to the first event batches never come: Brevo did take them.
    faulty.admin("fault-profile", {"kind": "reset", "path": "/v3/events/batch"})
    faulty.admin("fault-profile", {"kind": "slow", "path": "/v3/events/batch"})
    faults(True)
    sync_until_done(faulty_config, outcome)
    faults(False)
    clean_state, faulty_state = clean.state(), faulty.state()
    after = [store.admin("fault-profile")["injected"], faulty.admin("fault-profile")["injected"]]
    injected = [{k: n - old.get(k, 0) for k, n in new.items() if n - old.get(k, 0)}
                for old, new in zip(before, after, strict=True)]
    return {"full": full, "incremental": differences(comparable(clean_state),
                                                       comparable(faulty_state)),
            "doubled": doubled_events(faulty_state), "events": len(clean_state["events"]),
            "contacts": len(clean_state["contacts"]), "orders": len(clean_state["orders"]),
            "injected": {store.platform: injected[0], "brevo": injected[1]},
            "runs": outcome.runs, "exit_codes": outcome.codes}


def crash_scenario(store: AnyStore, clean: Account, crashed: Account, work: Path,
                   kills: int = 4, seed: int = 8, scale: int = 1) -> dict[str, Any]:
    """``runner sync`` killed at random points of a full and an incremental sync (and while
    event batches are in flight), then run to the end: against a clean sync."""
    clean_config = sync_config(store, clean, work / f"clean-{seed}")
    crash_config = sync_config(store, crashed, work / f"crashed-{seed}")
    command = [RUNNER, "sync", "--config", str(crash_config)]
    rng = random.Random(seed)
    landed = tried = 0
    clean_s = timed(sync_until_done, clean_config)
    for _ in range(kills):
        tried += 1
        landed += kill_at(command, kill_time(rng, clean_s))
    sync_until_done(crash_config)
    full = differences(comparable(clean.state()), comparable(crashed.state()))

    store.change(scale)
    clean_s = timed(sync_until_done, clean_config)
    # Killed while Brevo holds a batch of events it has not yet seen (they may be lost),
    # then while Brevo has taken one but not yet answered (they may be doubled).
    in_flight = []
    for kind in ("stall", "slow"):
        crashed.admin("fault-profile", {"kind": kind, "path": "/v3/events/batch"})
        tried += 1
        hit = kill_when(command, lambda kind=kind: bool(
            crashed.admin("fault-profile")["injected"].get(kind)))
        landed += hit
        in_flight.append(hit)
    for _ in range(kills):
        tried += 1
        landed += kill_at(command, kill_time(rng, clean_s))
    sync_until_done(crash_config)
    clean_state, crashed_state = clean.state(), crashed.state()
    return {"full": full, "incremental": differences(comparable(clean_state),
                                                       comparable(crashed_state)),
            "doubled": doubled_events(crashed_state), "kills_tried": tried,
            "kills_landed": landed, "killed_with_events_in_flight": in_flight,
            "events": len(clean_state["events"])}


def pipeline_crash_scenario(store: AnyStore, clean: Account, crashed: Account, work: Path,
                            kills: int = 4, seed: int = 9, scale: int = 1) -> dict[str, Any]:
    """``read | write`` pipelines with one side killed at random points, over a full and an
    incremental sync: against clean pipelines."""
    source = work / f"pipe-source-{seed}.json"
    source.write_text(json.dumps({**store.source_config(), "request_timeout": 5}))

    def destination(account: Account, name: str) -> tuple[Path, Path]:
        path = work / f"pipe-{name}-{seed}.json"
        path.write_text(json.dumps({"api_url": account.ready["url"],
                                    "api_key": account.ready["api_key"], "lists": LISTS,
                                    "state_dir": str(work / f"pipe-{name}-{seed}")}))
        return path, work / f"pipe-{name}-{seed}.jsonl"

    clean_args, crash_args = destination(clean, "clean"), destination(crashed, "crashed")
    rng = random.Random(seed)
    landed = tried = 0
    found: list[dict[str, Any]] = []
    doubled: list[str] = []
    for phase in range(2):
        clean_s = timed(run_until_done, pipeline(source, *clean_args, store.platform))
        for n in range(kills):
            tried += 1
            landed += kill_one_side(pipeline(source, *crash_args, store.platform),
                                    kill_time(rng, clean_s),
                                    ("read", "write")[n % 2])
        run_until_done(pipeline(source, *crash_args, store.platform))
        crashed_state = crashed.state()
        found.append(differences(comparable(clean.state()), comparable(crashed_state)))
        doubled = doubled_events(crashed_state)
        if phase == 0:
            store.change(scale)
    return {"full": found[0], "incremental": found[1], "doubled": doubled,
            "kills_tried": tried, "kills_landed": landed}


MERCHANT_CHANGES = 4000


def mutation_scenario(store: Store, account: Account, work: Path) -> dict[str, Any]:
    """Two syncs while a merchant edits customers and orders all the time, then one after:
    every record's latest version must be in Brevo."""
    mapping = {"email": "email", "first_name": "FIRSTNAME", "notes": "NOTES"}
    # No fault here: timeouts as in production, not the 1 s that makes 'slow' faults time out
    # (a batch of 1,000 orders can take the Brevo sandbox over a second on a loaded machine).
    config = sync_config(store, account, work / "live", mapping, timeout=30)
    stop = threading.Event()
    changes = 0

    def merchant() -> None:
        nonlocal changes
        seed = 100
        # Bounded: an unbounded merchant makes every incremental run chase new changes, and
        # the test's time then depends on the machine's load (20 s to 190 s seen).
        while not stop.is_set() and changes < MERCHANT_CHANGES:
            seed += 1
            store.admin("mutate", {"resource": "customers", "update": 20, "seed": seed})
            store.admin("mutate", {"resource": "orders", "update": 20, "seed": seed})
            changes += 40
            time.sleep(0.02)

    thread = threading.Thread(target=merchant)
    thread.start()
    try:
        outcome = sync_until_done(config)
        during = changes  # made while the first sync ran (the merchant started with it)
        sync_until_done(config, outcome)  # an incremental run, the store still changing
    finally:
        stop.set()
        thread.join()
    sync_until_done(config, outcome)  # the store has settled: one more incremental run
    customers = store.everything("/v3/customers", ("email", "notes"))
    orders = store.everything("/v2/orders", ("status",))
    state = account.state()
    notes = {c["email"]: c["attributes"].get("NOTES") or "" for c in state["contacts"]}
    stale = [i for i, (email, note) in customers.items() if notes.get(email.lower()) != note]
    statuses = {o["id"]: o["status"] for o in state["orders"]}
    hash_ = store.ready["store_hash"]
    late = [i for i, (status,) in orders.items() if statuses.get(f"{hash_}-{i}") != status]
    return {"changes": changes, "during_first_sync": during, "sync_runs": outcome.runs,
            "sync_errors": outcome.errors, "customers": len(customers),
            "orders": len(orders), "stale_customers": stale, "stale_orders": late}
