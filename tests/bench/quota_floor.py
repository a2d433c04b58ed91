"""How close a full read gets to the store's quota floor, per plan (a benchmark, not a test).

A full read needs R requests; a plan allows Q requests per window W; no reader can finish faster
than about (R / Q) x W. This starts the BigCommerce sandbox as a subprocess (the given store
size, a scaled window, latency scaled the same way), reads it once untimed so that it serves
from memory as a real API would, then for each plan resets its quota window and counters,
runs ``runner read bigcommerce`` as a subprocess, and reports wall time, requests, 429s and the
ratio to the floor.

    python tests/bench/quota_floor.py    # 20k customers, 40k orders, 2k products
    python tests/bench/quota_floor.py --scale 0.1 --runs 3 --json report.json
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

QUOTAS = {"standard": 150, "plus": 150, "pro": 450}
REAL_WINDOW_MS = 30_000
REAL_LATENCY_MS = 350  # the middle of 200-500 ms a page


def runner() -> str:
    return shutil.which("runner") or str(Path(sys.executable).parent / "runner")


def admin(ready: dict[str, Any], path: str, body: dict[str, Any] | None = None) -> Any:
    response = requests.post(f"{ready['url']}/_sandbox/{path}", json=body or {},
                             headers={"X-Auth-Token": ready["access_token"]}, timeout=30)
    response.raise_for_status()
    return response.json()


def read(config: Path) -> tuple[float, int]:
    """Wall time of one read, and its records (output to a file, counted afterwards, so that
    this process takes no CPU from the read)."""
    out = config.with_suffix(".out")
    with out.open("wb") as sink:
        started = time.monotonic()
        result = subprocess.run([runner(), "read", "bigcommerce", "--config", str(config)],
                                stdout=sink, stderr=subprocess.PIPE)
        wall = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"read failed: {result.stderr.decode()[-500:]}")
    with out.open("rb") as lines:
        records = sum(1 for line in lines if line.startswith(b'{"type":"RECORD"'))
    out.unlink()
    return wall, records


def one_run(plan: str, ready: dict[str, Any], config: Path, window_ms: int,
            latency_ms: int) -> dict[str, Any]:
    admin(ready, "stats/reset", {"plan": plan})
    wall, records = read(config)
    stats = requests.get(f"{ready['url']}/_sandbox/stats",
                         headers={"X-Auth-Token": ready["access_token"]}, timeout=30).json()
    floor = stats["requests"] / QUOTAS[plan] * window_ms / 1000
    return {"plan": plan, "wall_s": round(wall, 2), "requests": stats["requests"],
            "throttled": stats["throttled"], "records": records,
            "floor_s": round(floor, 2), "ratio": round(wall / floor, 3),
            "window_ms": window_ms, "latency_ms": latency_ms}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plans", default="standard,plus,pro")
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--orders", type=int, default=40_000)
    parser.add_argument("--products", type=int, default=2_000)
    parser.add_argument("--scale", type=float, default=1 / 3,
                        help="window and latency scale (1 = the real 30 s window, 350 ms)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--runs", type=int, default=1, help="runs per plan (median reported)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", dest="json_path", help="also write the report here")
    args = parser.parse_args()
    rows = []
    window_ms = int(REAL_WINDOW_MS * args.scale)
    latency_ms = int(REAL_LATENCY_MS * args.scale)
    sandbox = subprocess.Popen(
        [runner(), "sandbox", "bigcommerce", "--customers", str(args.customers), "--orders",
         str(args.orders), "--products", str(args.products), "--plan", "enterprise",
         "--window-ms", str(window_ms), "--latency-ms", str(latency_ms), "--seed",
         str(args.seed)], stdout=subprocess.PIPE, text=True)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            ready = json.loads(sandbox.stdout.readline())
            config = Path(tmp) / "config.json"
            config.write_text(json.dumps({
                "api_url": ready["url"], "store_hash": ready["store_hash"],
                "access_token": ready["access_token"], "concurrency": args.concurrency}))
            read(config)  # warm-up: the sandbox then serves from memory
            for plan in args.plans.split(","):
                runs = [one_run(plan, ready, config, window_ms, latency_ms)
                        for _ in range(args.runs)]
                row = sorted(runs, key=lambda r: r["wall_s"])[len(runs) // 2]
                row["runs_wall_s"] = [r["wall_s"] for r in runs]
                row["median_ratio"] = statistics.median(r["ratio"] for r in runs)
                rows.append(row)
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)
    print(f"{'plan':<9} {'records':>8} {'requests':>8} {'429s':>5} {'wall s':>7} "
          f"{'floor s':>8} {'ratio':>6}")
    for r in rows:
        print(f"{r['plan']:<9} {r['records']:>8} {r['requests']:>8} {r['throttled']:>5} "
              f"{r['wall_s']:>7} {r['floor_s']:>8} {r['median_ratio']:>6}")
    report = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "platform": platform.platform()},
              "store": {"customers": args.customers, "orders": args.orders,
                        "products": args.products},
              "scale": args.scale, "concurrency": args.concurrency, "results": rows}
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(report, indent=2))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
