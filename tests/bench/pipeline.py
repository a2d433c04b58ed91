"""Many stores against one, and the writer against the reader (a benchmark, not a test).

Side by side in one run, on the sandboxes (BigCommerce's enterprise plan: no quota, no latency;
Brevo's windows scaled down, imports completing after ``--import-delay-ms``):

- **stores**: ``runner sync`` of 1 store of N customers, and of ``--stores`` stores of
  N/``--stores`` customers each (orders N/2 and products N/100 in all, split the same way); the
  ratio of the two sync times (the goal: at most 1.3: the cost is in the records, not the
  number of stores);
- **pipeline**: on the same stores, ``runner read`` of the model streams the sync reads (to
  /dev/null) alone; ``runner read | runner write brevo`` (two processes); ``runner sync`` (the
  same read into the same destination in one process, sharing one interpreter): the rates and
  their ratio to the read's (the goal: the pipeline at least half the read);
- the peak RSS of each command (and its processes' PSS, see ``suite.measured``);
- start-up: ``runner --help`` and ``runner spec bigcommerce``, the median of 5 runs each (the
  goal: under 0.2 s).

Every sync starts from an empty state directory and a new Brevo sandbox. ``--profile DIR``
adds one sync of each kind under cProfile (the destination runs on the main thread, which is
what cProfile sees) and prints its top functions; those runs are not the timed ones.

    python tests/bench/pipeline.py --customers 50000 --stores 50 --json report.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import pstats
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from suite import LISTS, measured, runner, start

CATALOG = """
import json, sys
from app.sync import load
job = load(sys.argv[1])[0]
open(sys.argv[2], "w").write(job.catalog.model_dump_json(exclude_none=True))
"""


def sandboxes(customers: int, stores: int, seed: int) -> tuple[Any, dict[str, Any]]:
    """The BigCommerce sandbox serving ``stores`` stores that hold ``customers`` in all."""
    return start("bigcommerce", "--stores", str(stores), "--customers", str(customers // stores),
                 "--orders", str(customers // 2 // stores),
                 "--products", str(max(1, customers // 100 // stores)),
                 "--plan", "enterprise", "--seed", str(seed))


def configs(shop: dict[str, Any], account: dict[str, Any], work: Path, name: str
            ) -> tuple[Path, Path]:
    """(sync config, source config) of a sandbox's stores."""
    stores = [{"store_hash": s["store_hash"], "access_token": s["access_token"]}
              for s in shop["stores"]]
    source = work / f"source-{name}.json"
    source.write_text(json.dumps({"api_url": shop["url"], "stores": stores}))
    sync = work / f"sync-{name}.json"
    sync.write_text(json.dumps({
        "connectors": {"bigcommerce": {
            "stores": stores, "api_url": shop["url"], "lists": LISTS,
            "sync": {"carts": False, "inventory": False}}},
        "brevo": {"api_key": account["api_key"], "api_url": account["url"]},
        "state_dir": str(work / f"state-{name}")}))
    return sync, source


def brevo() -> tuple[Any, dict[str, Any]]:
    return start("brevo", "--lists", "40,41,42", "--window-ms", "1", "--import-delay-ms", "20")


def synced_records(sync_config: Path) -> int:
    status = json.loads(subprocess.run([runner(), "status", "--config", str(sync_config),
                                        "--json"], capture_output=True, check=True).stdout)
    return int(status["connectors"]["bigcommerce"]["last_run"]["records"])


def one_sync(shop: dict[str, Any], work: Path, name: str, profile: Path | None = None
             ) -> dict[str, Any]:
    """A full sync of the sandbox's stores into a new Brevo sandbox."""
    process, account = brevo()
    try:
        config, _ = configs(shop, account, work, name)
        command = [runner(), "sync", "--config", str(config)]
        if profile is not None:
            command = [sys.executable, "-m", "cProfile", "-o", str(profile), *command]
        figures = measured(command)
        records = synced_records(config)
    finally:
        process.terminate()
    return {"records": records, "wall_s": round(figures["wall"], 2),
            "records_per_s": round(records / figures["wall"]),
            "peak_rss_mb": figures["rss_mb"], "peak_pss_mb": figures["pss_mb"]}


def read_command(shop: dict[str, Any], work: Path, name: str) -> list[str]:
    """``runner read`` of the streams a sync of the sandbox's stores reads."""
    process, account = brevo()
    try:
        config, source = configs(shop, account, work, name)
        catalog = work / f"catalog-{name}.json"
        subprocess.run([sys.executable, "-c", CATALOG, str(config), str(catalog)], check=True)
    finally:
        process.terminate()
    return [runner(), "read", "bigcommerce", "--config", str(source), "--catalog",
            str(catalog)]


def figures_of(measure: dict[str, float]) -> dict[str, Any]:
    return {"wall_s": round(measure["wall"], 2), "peak_rss_mb": measure["rss_mb"],
            "peak_pss_mb": measure["pss_mb"]}


def read_alone(shop: dict[str, Any], work: Path, name: str) -> dict[str, Any]:
    """The read to /dev/null (after a read that warms the sandbox up)."""
    command = read_command(shop, work, name)
    subprocess.run(command, stdout=subprocess.DEVNULL, check=True)
    return figures_of(measured(command))


def piped(shop: dict[str, Any], work: Path, name: str) -> dict[str, Any]:
    """``runner read | runner write brevo`` into a new Brevo sandbox (peak RSS: the larger
    of the two processes')."""
    read = read_command(shop, work, name)
    process, account = brevo()
    try:
        config = work / f"brevo-{name}.json"
        config.write_text(json.dumps({"api_url": account["url"], "api_key": account["api_key"],
                                      "lists": LISTS, "state_dir": str(work / f"pipe-{name}")}))
        write = [runner(), "write", "brevo", "--config", str(config), "--catalog", read[-1]]
        line = " ".join(map(shlex.quote, read)) + " | " + " ".join(map(shlex.quote, write))
        return figures_of(measured(["bash", "-o", "pipefail", "-c", line + " > /dev/null"]))
    finally:
        process.terminate()


def top_functions(profile: Path, count: int = 12) -> list[str]:
    """The functions with the most time of their own, as lines."""
    stats = pstats.Stats(str(profile))
    total = stats.total_tt  # type: ignore[attr-defined]
    rows = sorted(stats.stats.items(), key=lambda item: -item[1][2])[:count]  # type: ignore
    return [f"{own:7.2f} s {100 * own / total:5.1f}%  {calls:>9}  {Path(file).name}:{line} "
            f"{function}" for (file, line, function), (_, calls, own, _, _) in rows]


def scenario(customers: int, stores: int, runs: int, work: Path, profile: Path | None
             ) -> dict[str, Any]:
    process, shop = sandboxes(customers, stores, 3)
    name = f"{stores}x{customers // stores}"
    try:
        reads = [read_alone(shop, work, f"{name}-read{n}") for n in range(runs)]
        pipes = [piped(shop, work, f"{name}-pipe{n}") for n in range(runs)]
        syncs = [one_sync(shop, work, f"{name}-sync{n}") for n in range(runs)]
        profiled = None
        if profile is not None:
            path = profile / f"sync-{name}.prof"
            one_sync(shop, work, f"{name}-profiled", path)
            profiled = {"file": str(path), "top": top_functions(path)}
    finally:
        process.terminate()
    records = syncs[0]["records"]
    return {"stores": stores, "customers_per_store": customers // stores,
            "records": records, "read": summary(reads, records),
            "pipe": summary(pipes, records), "sync": summary(syncs, records),
            "profile": profiled}


def summary(runs: list[dict[str, Any]], records: int) -> dict[str, Any]:
    """The median time and rate of runs, their largest peak memory."""
    wall = statistics.median(r["wall_s"] for r in runs)
    return {"wall_s": wall, "records_per_s": round(records / wall),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
            "peak_pss_mb": max(r["peak_pss_mb"] for r in runs),
            "runs_s": [r["wall_s"] for r in runs]}


def startup(runs: int = 5) -> dict[str, float]:
    """Median wall seconds of the commands people type first."""
    times: dict[str, float] = {}
    for label, args in (("runner --help", ["--help"]),
                        ("runner spec bigcommerce", ["spec", "bigcommerce"])):
        walls = []
        for _ in range(runs):
            began = time.perf_counter()
            subprocess.run([runner(), *args], stdout=subprocess.DEVNULL, check=True)
            walls.append(time.perf_counter() - began)
        times[label] = round(statistics.median(walls), 3)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=50_000, help="customers in all (N)")
    parser.add_argument("--stores", type=int, default=50, help="stores the N are split into")
    parser.add_argument("--runs", type=int, default=1, help="timed runs of each (median)")
    parser.add_argument("--profile", type=Path, help="also profile a sync of each, here")
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args()
    os.environ.setdefault("TAJO_CONNECTORS", "bigcommerce,brevo,sqlite")
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    started = startup()
    with tempfile.TemporaryDirectory() as tmp:
        one = scenario(args.customers, 1, args.runs, Path(tmp), args.profile)
        many = scenario(args.customers, args.stores, args.runs, Path(tmp), args.profile)
    ratio = many["sync"]["wall_s"] / one["sync"]["wall_s"]
    pipeline = {kind: one[kind]["records_per_s"] / one["read"]["records_per_s"]
                for kind in ("pipe", "sync")}
    print(f"{'':<22} {'records':>8} " + " ".join(
        f"{kind + ' s':>7} {kind + ' rec/s':>11} {kind + ' MB':>8}"
        for kind in ("read", "pipe", "sync")))
    for row in (one, many):
        label = f"{row['stores']} x {row['customers_per_store']} customers"
        print(f"{label:<22} {row['records']:>8} " + " ".join(
            f"{row[kind]['wall_s']:>7} {row[kind]['records_per_s']:>11} "
            f"{row[kind]['peak_rss_mb']:>8}" for kind in ("read", "pipe", "sync")))
    print(f"sync time, {args.stores} stores / 1 store: {ratio:.2f} (goal: at most 1.3)")
    print(f"1 store, rate / read's: read | write {pipeline['pipe']:.2f}, sync "
          f"{pipeline['sync']:.2f} (goal: at least 0.5)")
    print("MB: peak RSS (the larger process's, for the pipe)")
    print("start-up (median of 5): " + ", ".join(f"{k} {v:.2f} s" for k, v in started.items())
          + " (goal: under 0.2 s)")
    for row in (one, many):
        if row["profile"]:
            print(f"profile of the sync of {row['stores']} stores (own time, calls):")
            print("\n".join("  " + line for line in row["profile"]["top"]))
    report = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                          "python": platform.python_version(),
                          "load_before": os.getloadavg()},
              "customers": args.customers, "runs": args.runs, "startup_s": started,
              "one_store": one,
              "many_stores": many, "stores_ratio": round(ratio, 2),
              "pipe_ratio": round(pipeline["pipe"], 2),
              "sync_ratio": round(pipeline["sync"], 2)}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
