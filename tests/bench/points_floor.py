"""How close a full Shopify read gets to the shop's query-cost floor, per plan (a benchmark,
not a test).

Shopify limits an app by query cost, not requests: a leaky bucket of points per app and shop,
restored at the plan's rate (Standard 100 points/s, Advanced 200, Plus 1,000; the bucket holds
20 seconds' worth). A full read that costs P points can finish no sooner than
(P - bucket) / restore rate. This starts the Shopify sandbox (the bucket per Shopify's rules),
reads the shop once untimed, then for each plan resets the counters and fills the bucket, runs
``runner read shopify`` as a subprocess, and reports wall time, queries, throttled answers,
points charged (the actual cost, after refunds) and the ratio to the floor (the goal: 1.10 or
less).

    python tests/bench/points_floor.py                      # 3,000 customers, 4,000 orders
    python tests/bench/points_floor.py --plans plus --runs 3 --json report.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

RESTORE = {"standard": 100, "advanced": 200, "plus": 1000}


def runner() -> str:
    return shutil.which("runner") or str(Path(sys.executable).parent / "runner")


def admin(ready: dict[str, Any], path: str, body: dict[str, Any] | None = None,
          method: str = "POST") -> Any:
    """The sandbox's admin API (the token chooses the shop)."""
    response = requests.request(method, f"{ready['url']}/_sandbox/{path}", json=body,
                                headers={"X-Shopify-Access-Token": ready["access_token"]},
                                timeout=30)
    response.raise_for_status()
    return response.json()


def read(config: Path) -> tuple[float, int]:
    """Wall time of one read and its records (counted afterwards from a file)."""
    out = config.with_suffix(".out")
    with out.open("wb") as sink:
        started = time.monotonic()
        result = subprocess.run([runner(), "read", "shopify", "--config", str(config)],
                                stdout=sink, stderr=subprocess.PIPE)
        wall = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"read failed: {result.stderr.decode()[-800:]}")
    with out.open("rb") as lines:
        records = sum(1 for line in lines if line.startswith(b'{"type":"RECORD"'))
    out.unlink()
    return wall, records


def one_run(plan: str, ready: dict[str, Any], config: Path) -> dict[str, Any]:
    bucket = admin(ready, "plan", {"plan": plan})["bucket"]
    wall, records = read(config)
    stats = admin(ready, "stats", method="GET")
    points = stats["points"]
    floor = max(0.0, points - bucket) / RESTORE[plan]
    return {"plan": plan, "wall_s": round(wall, 2), "queries": stats["requests"],
            "throttled": stats["throttled"], "records": records, "points": points,
            "bucket": bucket, "floor_s": round(floor, 2),
            "ratio": round(wall / floor, 3) if floor else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plans", default="standard,advanced,plus")
    parser.add_argument("--customers", type=int, default=3_000)
    parser.add_argument("--orders", type=int, default=4_000)
    parser.add_argument("--products", type=int, default=300)
    parser.add_argument("--runs", type=int, default=1, help="runs per plan (median reported)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", dest="json_path", help="also write the report here")
    args = parser.parse_args()
    rows = []
    sandbox = subprocess.Popen(
        [runner(), "sandbox", "shopify", "--customers", str(args.customers), "--orders",
         str(args.orders), "--products", str(args.products), "--plan", "plus", "--seed",
         str(args.seed), "--port", "0"], stdout=subprocess.PIPE, text=True)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            assert sandbox.stdout is not None
            ready = json.loads(sandbox.stdout.readline())
            config = Path(tmp) / "config.json"
            config.write_text(json.dumps({
                "shop_setup": {"shop": ready["shop"], "access_token": ready["access_token"]},
                "api_url": ready["url"]}))
            admin(ready, "plan", {"plan": "plus"})
            read(config)  # warm-up: the sandbox's caches and the OS's
            for plan in args.plans.split(","):
                runs = [one_run(plan, ready, config) for _ in range(args.runs)]
                row = sorted(runs, key=lambda r: r["wall_s"])[len(runs) // 2]
                row["runs_wall_s"] = [r["wall_s"] for r in runs]
                ratios = [r["ratio"] for r in runs if r["ratio"]]
                row["median_ratio"] = statistics.median(ratios) if ratios else None
                rows.append(row)
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)
    print(f"{'plan':<9} {'records':>8} {'queries':>8} {'thrott.':>7} {'points':>8} "
          f"{'wall s':>7} {'floor s':>8} {'ratio':>6}")
    for r in rows:
        print(f"{r['plan']:<9} {r['records']:>8} {r['queries']:>8} {r['throttled']:>7} "
              f"{r['points']:>8} {r['wall_s']:>7} {r['floor_s']:>8} {r['median_ratio']!s:>6}")
    report = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "platform": platform.platform()},
              "shop": {"customers": args.customers, "orders": args.orders,
                       "products": args.products},
              "results": rows}
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(report, indent=2))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
