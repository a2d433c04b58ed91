"""CPU, memory, incremental and Brevo-side figures (a benchmark, not a test).

Starts the BigCommerce sandbox (enterprise plan: no quota, no latency, so the reader's CPU is
what is measured) and the Brevo sandbox (windows scaled down, so its hourly limits do not
dominate) as subprocesses, and for each store size:

- read: ``runner read bigcommerce`` of the customers to /dev/null: records/s and peak RSS;
- write: ``runner write brevo`` of those records (from a file): peak RSS;
- sync: a full ``runner sync`` (customers, orders, products): records/s, peak RSS, and the
  requests it made to Brevo per 1,000 contacts, orders and products;
- incremental: 1% of customers and orders changed, ``runner sync`` again: requests to
  BigCommerce per stream (against changed / 250 + a constant) and records sent to Brevo.

Each figure is the median of ``--runs`` runs. Memory is the command's peak RSS (``ru_maxrss``)
and the peak of its processes' PSS added up (a read parses pages in helper processes).

    python tests/bench/suite.py --sizes 10000,100000 --runs 3 --json report.json
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

LISTS = {"all_customers": 40, "buyers": 41, "abandoned_cart": 42}


def runner() -> str:
    return shutil.which("runner") or str(Path(sys.executable).parent / "runner")


def measured(args: list[str], stdin: Path | None = None, stdout: Any = subprocess.DEVNULL,
             env: dict[str, str] | None = None) -> dict[str, float]:
    """Wall seconds and memory of one command: ``rss_mb``, the peak RSS of its own process,
    and ``pss_mb``, the larger of that and the peak of its processes' PSS added up, sampled
    every 100 ms (a read's helper processes share most pages with it; PSS counts a shared page
    once, so their RSS added up would count it three times).

    The command runs under a small wrapper process that reports ``ru_maxrss``: a process
    started by this one would inherit this one's high-water mark (Linux carries it over
    ``exec``), and this one holds whole reports of the sandboxes."""
    wrapper = ("import resource, subprocess, sys\n"
               "code = subprocess.call(sys.argv[1:])\n"
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
               "sys.exit(code)")
    started = time.monotonic()
    with (stdin.open("rb") if stdin else open(os.devnull, "rb")) as source, \
            tempfile.TemporaryFile() as errors:
        process = subprocess.Popen([sys.executable, "-c", wrapper, *args], stdin=source,
                                   stdout=stdout, stderr=errors, env=env)
        peak_pss = 0
        while process.poll() is None:
            peak_pss = max(peak_pss, sum(tree_pss_kb(child) for child in children(process.pid)))
            time.sleep(0.1)
        wall = time.monotonic() - started
        errors.seek(0)
        report = errors.read().decode()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(args[:3])} failed: {report[-800:]}")
    rss_mb = round(int(report.strip().splitlines()[-1]) / 1024)
    return {"wall": wall, "rss_mb": rss_mb, "pss_mb": max(rss_mb, round(peak_pss / 1024))}


def children(pid: int) -> list[int]:
    """The processes ``pid`` started (none once it has exited)."""
    try:
        return [int(c) for task in Path(f"/proc/{pid}/task").iterdir()
                for c in (task / "children").read_text().split()]
    except OSError:
        return []


def tree_pss_kb(pid: int) -> int:
    """The PSS of a process and its descendants, in kB (0 for what has already exited)."""
    total = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1])
    except OSError:
        return 0
    return total + sum(tree_pss_kb(child) for child in children(pid))


def start(*args: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    process = subprocess.Popen([runner(), "sandbox", *args, "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    return process, json.loads(process.stdout.readline())


def catalog_of(streams: list[str], work: Path) -> Path:
    full = json.loads(subprocess.run([runner(), "discover", "bigcommerce", "--configured"],
                                     capture_output=True, check=True).stdout)
    path = work / f"catalog-{'-'.join(streams)}.json"
    full["streams"] = [s for s in full["streams"] if s["stream"]["name"] in streams]
    path.write_text(json.dumps(full))
    return path


def one_size(customers: int, runs: int, work: Path) -> dict[str, Any]:
    orders, products = customers // 2, max(20, customers // 100)
    bc, store = start("bigcommerce", "--customers", str(customers), "--orders", str(orders),
                      "--products", str(products), "--plan", "enterprise", "--seed", "3")
    brevo, account = start("brevo", "--lists", "40,41,42", "--window-ms", "1",
                           "--import-delay-ms", "20")
    admin = {"X-Auth-Token": store["access_token"]}
    try:
        source = work / f"source-{customers}.json"
        source.write_text(json.dumps({"api_url": store["url"], "store_hash": store["store_hash"],
                                      "access_token": store["access_token"]}))
        customers_only = catalog_of(["customers"], work)
        records = work / f"customers-{customers}.jsonl"
        with records.open("wb") as sink:  # warms the sandbox (it then serves from memory)
            subprocess.run([runner(), "read", "bigcommerce", "--config", str(source),
                            "--catalog", str(customers_only)], stdout=sink, check=True)
        reads = [measured([runner(), "read", "bigcommerce", "--config", str(source),
                           "--catalog", str(customers_only)]) for _ in range(runs)]
        destination = work / f"brevo-{customers}.json"
        writes = []
        for n in range(runs):
            destination.write_text(json.dumps({
                "api_url": account["url"], "api_key": account["api_key"], "lists": LISTS,
                "state_dir": str(work / f"write-{customers}-{n}")}))
            writes.append(measured([runner(), "write", "brevo", "--config", str(destination),
                                    "--catalog", str(customers_only)], stdin=records))
        syncs, brevo_requests, config = [], {}, work / f"tajo-{customers}.json"
        for n in range(runs):
            config.write_text(json.dumps({
                "connectors": {"bigcommerce": {
                    "store_hash": store["store_hash"], "access_token": store["access_token"],
                    "api_url": store["url"], "lists": LISTS,
                    "sync": {"carts": False, "inventory": False}}},
                "brevo": {"api_key": account["api_key"], "api_url": account["url"]},
                "state_dir": str(work / f"sync-{customers}-{n}")}))
            requests.post(f"{account['url']}/_sandbox/stats/reset",
                          headers={"api-key": account["api_key"]}, timeout=30)
            syncs.append(measured([runner(), "sync", "--config", str(config)]))
            brevo_requests = requests.get(f"{account['url']}/_sandbox/state",
                                          headers={"api-key": account["api_key"]},
                                          timeout=120).json()["requests"]["by_path"]
        status = json.loads(subprocess.run([runner(), "status", "--config", str(config),
                                            "--json"], capture_output=True).stdout)
        synced = status["connectors"]["bigcommerce"]["last_run"]["records"]
        # Incremental: 1% of customers and orders change, then the same sync runs again.
        changed = max(1, customers // 100)
        for resource_name, count in (("customers", changed), ("orders", max(1, orders // 100))):
            requests.post(f"{store['url']}/_sandbox/mutate", headers=admin, timeout=120,
                          json={"resource": resource_name, "update": count, "seed": 1})
        requests.post(f"{store['url']}/_sandbox/stats/reset", headers=admin, timeout=30)
        requests.post(f"{account['url']}/_sandbox/stats/reset",
                      headers={"api-key": account["api_key"]}, timeout=30)
        before = requests.get(f"{account['url']}/_sandbox/state",
                              headers={"api-key": account["api_key"]}, timeout=120).json()
        wall = measured([runner(), "sync", "--config", str(config)])["wall"]
        bc_paths = requests.get(f"{store['url']}/_sandbox/stats", headers=admin,
                                timeout=30).json()["by_path"]
        after = requests.get(f"{account['url']}/_sandbox/state",
                             headers={"api-key": account["api_key"]}, timeout=120).json()
        contacts_sent = (sum(p["rows"] for p in after["processes"][len(before["processes"]):])
                         + after["requests"]["by_path"].get("/v3/contacts", 0))
    finally:
        bc.terminate()
        brevo.terminate()
    read_wall = statistics.median(m["wall"] for m in reads)
    sync_wall = statistics.median(m["wall"] for m in syncs)
    per_1000 = {kind: round(1000 * sum(v for k, v in brevo_requests.items() if k.startswith(p))
                            / total, 2)
                for kind, p, total in (("contacts", "/v3/contacts", customers),
                                       ("orders", "/v3/orders", orders),
                                       ("products", "/v3/products", products))}
    return {
        "customers": customers, "orders": orders, "products": products,
        "read": {"records": customers, "wall_s": round(read_wall, 2),
                 "records_per_s": round(customers / read_wall),
                 **memory(reads)},
        "write": {**memory(writes),
                  "wall_s": round(statistics.median(m["wall"] for m in writes), 2)},
        "sync": {"records": synced, "wall_s": round(sync_wall, 2),
                 "records_per_s": round(synced / sync_wall),
                 **memory(syncs),
                 "brevo_requests_per_1000": per_1000, "brevo_requests": brevo_requests},
        "incremental": {"changed_customers": changed, "changed_orders": max(1, orders // 100),
                        "wall_s": round(wall, 2), "bigcommerce_requests": bc_paths,
                        "bound_customers": changed // 250 + 3,
                        "bound_orders": max(1, orders // 100) // 250 + 3,
                        "contacts_sent_to_brevo": contacts_sent},
    }


def memory(runs: list[dict[str, float]]) -> dict[str, float]:
    """Median peak memory of the runs (MB): the command's own RSS, and its processes' PSS."""
    return {"peak_rss_mb": statistics.median(m["rss_mb"] for m in runs),
            "peak_pss_mb": statistics.median(m["pss_mb"] for m in runs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="customer counts")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args()
    os.environ.setdefault("TAJO_CONNECTORS", "bigcommerce,brevo,sqlite")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            results.append(one_size(size, args.runs, Path(tmp)))
    print(f"{'customers':>10} {'read rec/s':>11} {'read MB':>8} {'write MB':>9} "
          f"{'sync rec/s':>11} {'sync MB':>8} {'incr. BC req':>13} {'incr. contacts':>15}")
    for r in results:
        inc = r["incremental"]
        print(f"{r['customers']:>10} {r['read']['records_per_s']:>11} "
              f"{r['read']['peak_pss_mb']:>8} {r['write']['peak_pss_mb']:>9} "
              f"{r['sync']['records_per_s']:>11} {r['sync']['peak_pss_mb']:>8} "
              f"{sum(inc['bigcommerce_requests'].values()):>13} "
              f"{inc['contacts_sent_to_brevo']:>15}")
    print("MB: peak memory of a command's processes together (PSS), or of the command's own "
          "process (RSS) when larger")
    report = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                          "python": platform.python_version()},
              "runs": args.runs, "results": results}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
