"""The reliability checks of ``tests/test_chaos.py``, bigger and repeated (not a test: a report).

For each round (a new fault seed and new kill points):

- faults: a full and an incremental ``runner sync`` with faults on both sandboxes (429s
  without headers, 500, 502, 503, resets, truncated bodies, answers slower than the timeout,
  stalled requests), against clean syncs into another Brevo account;
- crashes: ``runner sync`` killed with SIGKILL at random points (and with event batches in
  flight), then run to the end; ``read | write`` pipelines with one side killed;
- mutations: a merchant editing customers and orders all through two syncs;
- webhooks: a burst at concurrency 50 (``tests/bench/webhooks.py``), its p99 acknowledgement.

Everything lost or doubled is counted; the totals must be zero.

``--platform shopify`` runs the faults, crash and pipeline scenarios against the Shopify
sandbox instead (its GraphQL requests and bulk downloads meet the same network faults, plus
Shopify's own: THROTTLED and an internal error answered with HTTP 200; a first sync from
2,000 records a stream is a bulk operation, so kills land in bulk reads too); ``both`` runs
each round on both platforms. The merchant-editing and webhook-burst checks are
BigCommerce's (they run when it is one of the platforms).

    python tests/bench/chaos.py --customers 3000 --orders 5000 --rounds 3 --kills 10 --json r.json
    python tests/bench/chaos.py --platform shopify --customers 1500 --orders 2500 --rounds 1
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chaos_kit import (  # the tests folder is not a package: on the path above
    PROFILE,
    Account,
    Shop,
    Store,
    crash_scenario,
    faults_scenario,
    mutation_scenario,
    pipeline_crash_scenario,
)


def wrong(report: dict[str, Any]) -> int:
    """Items missing, extra or doubled in a scenario's report."""
    count = len(report.get("doubled", []))
    for key in ("full", "incremental"):
        for kind in (report.get(key) or {}).values():
            count += kind["missing_count"] + kind["extra_count"]
    return count + len(report.get("stale_customers", [])) + len(report.get("stale_orders", []))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--products", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--first-round", type=int, default=0,
                        help="start at this round's seeds (to repeat a round that failed)")
    parser.add_argument("--kills", type=int, default=10, help="random kill points per sync")
    parser.add_argument("--fault-scale", type=float, default=1.0,
                        help="multiplies every fault rate of the profile")
    parser.add_argument("--burst", type=int, default=5000)
    parser.add_argument("--platform", choices=("bigcommerce", "shopify", "both"),
                        default="bigcommerce", help="the store's platform in each round")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    platforms = ["bigcommerce", "shopify"] if args.platform == "both" else [args.platform]
    profile = {kind: rate * args.fault_scale for kind, rate in PROFILE.items()}
    scale = max(1, args.customers // 1000)
    report: dict[str, Any] = {"args": vars(args) | {"json": str(args.json)}, "rounds": []}
    injected: Counter[str] = Counter()
    totals = Counter()
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for round_ in range(args.first_round, args.first_round + args.rounds):
            for platform in platforms:
                wrong_here = run_round(platform, round_, args, profile, scale, work, report,
                                       injected, totals)
                totals[f"{platform}_lost_or_doubled"] += wrong_here
                if args.json:  # as it goes: a long run that is stopped still tells
                    args.json.write_text(json.dumps(report, indent=1))
        if "bigcommerce" not in platforms:
            finish(report, injected, totals, started, args)
            return
        store = Store.start(args.customers, args.customers, 20, seed=6)
        account = Account.start()
        try:
            mutations = mutation_scenario(store, account, work)
        finally:
            store.stop()
            account.stop()
        totals["lost_or_doubled"] += wrong(mutations)
        report["mutations"] = {k: v if isinstance(v, int) else len(v)
                               for k, v in mutations.items()}
        burst_file = work / "burst.json"
        subprocess.run([sys.executable, str(Path(__file__).with_name("webhooks.py")),
                        "--samples", "20", "--burst", str(args.burst), "--concurrency", "50",
                        "--json", str(burst_file)], check=True,
                       stdout=subprocess.DEVNULL)
        report["webhooks"] = json.loads(burst_file.read_text())
    finish(report, injected, totals, started, args)


def run_round(platform: str, round_: int, args: argparse.Namespace,
              profile: dict[str, float], scale: int, work: Path, report: dict[str, Any],
              injected: Counter[str], totals: Counter[str]) -> int:
    """One round's faults, crashes and pipelines against a store of ``platform``: what was
    lost or doubled."""
    seed = 20 + round_
    work = work / platform
    work.mkdir(exist_ok=True)
    store: Store | Shop = (Store.start(args.customers, args.orders, args.products, seed=seed)
                           if platform == "bigcommerce" else
                           Shop.start(args.customers, args.orders, args.products, seed=seed))
    accounts = [Account.start() for _ in range(6)]
    try:
        faults = faults_scenario(store, accounts[0], accounts[1], work,
                                 profile, seed=round_ + 1, scale=scale)
        crashes = crash_scenario(store, accounts[2], accounts[3], work,
                                 kills=args.kills, seed=100 + round_, scale=scale)
        pipes = pipeline_crash_scenario(store, accounts[4], accounts[5], work,
                                        kills=args.kills, seed=200 + round_, scale=scale)
    finally:
        store.stop()
        for account in accounts:
            account.stop()
    for side in faults["injected"].values():
        injected.update(side)
    found = wrong(faults) + wrong(crashes) + wrong(pipes)
    totals["sync_runs_under_faults"] += faults["runs"]
    totals["kill_points_tried"] += crashes["kills_tried"] + pipes["kills_tried"]
    totals["kills_landed"] += crashes["kills_landed"] + pipes["kills_landed"]
    totals["lost_or_doubled"] += found
    report["rounds"].append({"platform": platform, "faults": faults, "crashes": crashes,
                             "pipelines": pipes})
    print(f"round {round_ + 1} ({platform}): {sum(faults['injected'][platform].values())} + "
          f"{sum(faults['injected']['brevo'].values())} faults, "
          f"{crashes['kills_landed'] + pipes['kills_landed']} kills, wrong: {found}",
          flush=True)
    return found


def finish(report: dict[str, Any], injected: Counter[str], totals: Counter[str],
           started: float, args: argparse.Namespace) -> None:
    """The report's totals, printed and written; exit 1 if anything was lost or doubled."""
    report["faults_injected"] = dict(injected)
    report["totals"] = dict(totals) | {"faults_injected": sum(injected.values()),
                                       "seconds": round(time.monotonic() - started)}
    print(json.dumps({"totals": report["totals"], "faults_injected": report["faults_injected"],
                      "mutations": report.get("mutations")}, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    if totals["lost_or_doubled"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
