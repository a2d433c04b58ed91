"""Brevo's hourly budget: what a backfill spends in each rate-limit bucket (a benchmark, not a
test).

Syncs a sandbox store (``runner sync``) into the Brevo sandbox, counts the requests Brevo saw per
bucket (``connectors.brevo.limits.bucket_of``: the buckets of Brevo's rate-limit page) from
the sandbox's request log, and scales them to a 1,000,000-customer / 2,000,000-order backfill:
requests per 1,000 customers and orders, and the hours each bucket takes at each tier's limits
(the "all other endpoints" bucket, 100 an hour on the general tier, sets the floor). Also counts
how many times each customer was imported (the rows of the sandbox's import processes).

The Brevo sandbox's windows are shortened (``--window-ms 1``: an hour lasts 3.6 s) so that the
sync is not paced for hours; the hours are computed from the counts.

    python tests/bench/budget.py --customers 20000 --orders 40000 --json budget.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from connectors.brevo.limits import BUCKETS, TIERS, bucket_of

LISTS = {"all_customers": 40, "buyers": 41, "abandoned_cart": 42}
#: Requests a run makes whatever the store's size (who the account is, its attributes, lists):
#: not scaled up.
PER_RUN = ("/v3/account", "/v3/contacts/attributes", "/v3/contacts/attributes/{category}/{name}",
           "/v3/contacts/lists")


def runner() -> str:
    return shutil.which("runner") or str(Path(sys.executable).parent / "runner")


def start(*args: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    process = subprocess.Popen([runner(), "sandbox", *args, "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    return process, json.loads(process.stdout.readline())


def method_and_path(template: str) -> tuple[str, str]:
    """The sandbox counts requests by "path template"; the method is the route's."""
    from connectors.brevo.sandbox.app import ROUTES
    methods = {path.replace(":int", ""): method for method, path, _, _ in ROUTES}
    return methods.get(template, "GET"), template


def measure(customers: int, orders: int, products: int, import_delay_ms: int,
            work: Path, extra: dict[str, Any]) -> dict[str, Any]:
    bc, store = start("bigcommerce", "--customers", str(customers), "--orders", str(orders),
                      "--products", str(products), "--plan", "enterprise", "--seed", "3")
    brevo, account = start("brevo", "--lists", "40,41,42", "--window-ms", "1",
                           "--import-delay-ms", str(import_delay_ms))
    key = {"api-key": account["api_key"]}
    try:
        config = work / "tajo.json"
        config.write_text(json.dumps({
            "connectors": {"bigcommerce": {
                "store_hash": store["store_hash"], "access_token": store["access_token"],
                "api_url": store["url"], "lists": LISTS,
                "sync": {"carts": False, "inventory": False}}},
            "brevo": {"api_key": account["api_key"], "api_url": account["url"], **extra},
            "state_dir": str(work / "state")}))
        started = time.monotonic()
        done = subprocess.run([runner(), "sync", "--config", str(config)],
                              capture_output=True, text=True)
        wall = time.monotonic() - started
        if done.returncode != 0:
            raise SystemExit(f"runner sync failed: {done.stderr[-1500:]}")
        state = requests.get(f"{account['url']}/_sandbox/state", headers=key,
                             timeout=300).json()
    finally:
        bc.terminate()
        brevo.terminate()
    by_path = state["requests"]["by_path"]
    per_bucket: Counter[str] = Counter()
    scaled: Counter[str] = Counter()
    for template, count in by_path.items():
        bucket = bucket_of(*method_and_path(template))
        per_bucket[bucket] += count
        if template not in PER_RUN:
            scaled[bucket] += count
    rows = Counter()
    for process in state["processes"]:
        rows["imports"] += 1
        rows["rows"] += process["rows"]
    direct = by_path.get("/v3/contacts", 0)
    return {"customers": customers, "orders": orders, "products": products,
            "import_delay_ms": import_delay_ms, "sync_wall_s": round(wall, 1),
            "requests_by_path": by_path, "requests_by_bucket": dict(per_bucket),
            "scaled_by_bucket": dict(scaled),
            "imports": rows["imports"], "import_rows": rows["rows"],
            "imports_per_customer": round((rows["rows"] + direct) / customers, 2),
            "order_batches": by_path.get("/v3/orders/status/batch", 0),
            "contacts_in_brevo": len(state["contacts"]), "orders_in_brevo": len(state["orders"])}


#: Requests of the 100-an-hour bucket a checkpoint adds (a partial order batch, a partial
#: product batch, an import check) every ``checkpoint_minutes`` of a long run.
PER_CHECKPOINT = 3


def backfill(result: dict[str, Any], customers: int, orders: int,
             checkpoint_minutes: float) -> dict[str, Any]:
    """The requests of a backfill of ``customers`` / ``orders`` (the store's shape kept: every
    count scales by the customers' ratio; the per-run requests stay), and its hours per tier;
    ``with_checkpoints``: the "other" bucket's hours when a run of H hours also spends
    PER_CHECKPOINT requests every checkpoint (H = R / (L - PER_CHECKPOINT * 60 / minutes))."""
    ratio = customers / result["customers"]
    fixed = Counter({bucket_of(*method_and_path(t)): n
                     for t, n in result["requests_by_path"].items() if t in PER_RUN})
    need = {b: round(result["scaled_by_bucket"].get(b, 0) * ratio) + fixed.get(b, 0)
            for b in BUCKETS}
    hours = {tier: {b: round(need[b] / limits[b].per_hour, 2) for b in BUCKETS}
             for tier, limits in TIERS.items()}
    extra = PER_CHECKPOINT * 60 / checkpoint_minutes  # requests an hour
    with_checkpoints = {tier: round(need["other"] / (limits["other"].per_hour - extra), 2)
                        for tier, limits in TIERS.items()}
    return {"customers": customers, "orders": orders, "requests": need, "hours": hours,
            "other_hours_with_checkpoints": with_checkpoints,
            "checkpoint_minutes": checkpoint_minutes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20000)
    parser.add_argument("--orders", type=int, default=40000)
    parser.add_argument("--products", type=int, default=0,
                        help="default: customers / 100 (the sandbox's store shape)")
    parser.add_argument("--import-delay-ms", type=int, default=200,
                        help="how long the Brevo sandbox takes over an import (queued, then "
                             "in process: twice this)")
    parser.add_argument("--brevo", default="{}",
                        help="extra settings of the brevo section, as JSON")
    parser.add_argument("--checkpoint-minutes", type=float, default=30,
                        help="for the projection: the destination's checkpoint_minutes")
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args()
    os.environ.setdefault("TAJO_CONNECTORS", "bigcommerce,brevo,sqlite")
    products = args.products or max(20, args.customers // 100)
    with tempfile.TemporaryDirectory() as tmp:
        result = measure(args.customers, args.orders, products, args.import_delay_ms,
                         Path(tmp), json.loads(args.brevo))
    projected = backfill(result, 1_000_000, 2_000_000, args.checkpoint_minutes)
    print(f"synced {args.customers} customers, {args.orders} orders, {products} products in "
          f"{result['sync_wall_s']} s; {result['imports']} imports, each customer imported "
          f"{result['imports_per_customer']} times; {result['order_batches']} order batches")
    print(f"{'bucket':<10} {'requests':>9} {'/1k cust.':>10} {'/1k ord.':>9} "
          f"{'1M/2M req.':>11} " + " ".join(f"{t + ' h':>11}" for t in TIERS))
    for bucket in BUCKETS:
        count = result["requests_by_bucket"].get(bucket, 0)
        print(f"{bucket:<10} {count:>9} {1000 * count / args.customers:>10.2f} "
              f"{1000 * count / args.orders:>9.2f} {projected['requests'][bucket]:>11} "
              + " ".join(f"{projected['hours'][t][bucket]:>11.2f}" for t in TIERS))
    print(f"{'other, with a checkpoint every ' + str(args.checkpoint_minutes) + ' min':<52} "
          + " ".join(f"{projected['other_hours_with_checkpoints'][t]:>11.2f}" for t in TIERS))
    report = {"result": result, "backfill_1m_2m": projected}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
