"""Webhook figures (a benchmark, not a test): store change -> Brevo latency, and the receiver's
acknowledgement rate.

1. Latency: the BigCommerce sandbox, the Brevo sandbox and ``runner webhooks serve --forward``
   run as subprocesses, hooks registered. Each sample edits one customer through the sandbox's
   admin API (which fires ``store/customer/updated``) and times until Brevo holds the
   ``customer_updated`` event: delivery, verification, spool, fetch by id, contact import
   (polled to completion, ``--import-delay-ms``), event.
2. Acknowledgements: a receiver alone, ``--burst`` signed webhooks posted by ``--concurrency``
   keep-alive connections from this process; requests per second and the p50/p99 time to the
   200 (each 200 means the event is committed to the spool, fsync included).

    python tests/bench/webhooks.py --samples 100 --burst 5000 --concurrency 50 --json r.json
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
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the webhook kit
from webhook_kit import HEADER, SECRET, Poster, payload, start_receiver

LISTS = {"all_customers": 40, "buyers": 41, "abandoned_cart": 42}


def runner() -> str:
    return shutil.which("runner") or str(Path(sys.executable).parent / "runner")


def start(*args: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    process = subprocess.Popen([runner(), "sandbox", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    return process, json.loads(process.stdout.readline())


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def latency(work: Path, samples: int, import_delay_ms: int) -> dict[str, Any]:
    bc, store = start("bigcommerce", "--port", "0", "--customers", "200", "--orders", "100",
                      "--products", "20", "--plan", "enterprise")
    brevo, account = start("brevo", "--port", "0", "--lists", "40,41,42",
                           "--import-delay-ms", str(import_delay_ms))
    source = work / "source.json"
    source.write_text(json.dumps({"store_hash": store["store_hash"],
                                  "access_token": store["access_token"],
                                  "api_url": store["url"], "webhook_secret": SECRET,
                                  "spool_path": str(work / "spool.db")}))
    destination = work / "brevo.json"
    destination.write_text(json.dumps({"api_url": account["url"], "api_key": account["api_key"],
                                       "lists": LISTS, "state_dir": str(work / "ledger")}))
    receiver = start_receiver(source, "--forward", str(destination), "--state-dir",
                              str(work / "forward"))
    brevo_state = f"{account['url']}/_sandbox/state"
    headers = {"api-key": account["api_key"]}
    try:
        subprocess.run([runner(), "webhooks", "register", "--config", str(source), "--url",
                        receiver.endpoint], check=True, capture_output=True)
        while len(requests.get(brevo_state, headers=headers, timeout=30).json()["contacts"]) < 200:
            time.sleep(0.1)  # the forwarder's first poll
        times = []
        for n in range(samples):
            seen = len(requests.get(brevo_state, headers=headers, timeout=30).json()["events"])
            started = time.monotonic()
            changed = requests.post(f"{store['url']}/_sandbox/mutate",
                                    json={"resource": "customers", "ids": [n % 200 + 1]},
                                    headers={"X-Auth-Token": store["access_token"]},
                                    timeout=30).json()["updated"][0]
            while True:
                events = requests.get(brevo_state, headers=headers, timeout=30).json()["events"]
                if any(e["event_name"] == "customer_updated"
                       and e["event_properties"]["customer_id"] == changed
                       for e in events[seen:]):
                    break
                time.sleep(0.005)
            times.append(time.monotonic() - started)
            time.sleep(0.05)
    finally:
        receiver.stop()
        bc.terminate()
        brevo.terminate()
    return {"samples": samples, "import_delay_ms": import_delay_ms,
            "p50_s": round(statistics.median(times), 3),
            "p99_s": round(percentile(times, 0.99), 3), "max_s": round(max(times), 3)}


def burst(work: Path, count: int, concurrency: int) -> dict[str, Any]:
    bc, store = start("bigcommerce", "--port", "0", "--customers", "5", "--orders", "5",
                      "--products", "5")
    source = work / "burst.json"
    source.write_text(json.dumps({"store_hash": store["store_hash"],
                                  "access_token": store["access_token"],
                                  "api_url": store["url"], "webhook_secret": SECRET,
                                  "spool_path": str(work / "burst.db")}))
    receiver = start_receiver(source)
    bodies = [orjson.dumps(payload(store["store_hash"], "store/customer/updated",
                                   {"type": "customer", "id": n})) for n in range(1, count + 1)]
    times: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()

    def send(share: list[bytes]) -> None:
        poster = Poster(receiver.endpoint)
        mine, codes = [], []
        for body in share:
            started = time.monotonic()
            status, _ = poster.post(body, {HEADER: SECRET})
            mine.append(time.monotonic() - started)
            codes.append(status)
        poster.close()
        with lock:
            times.extend(mine)
            for code in codes:
                statuses[code] = statuses.get(code, 0) + 1

    threads = [threading.Thread(target=send, args=(bodies[n::concurrency],))
               for n in range(concurrency)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - started
    receiver.stop()
    bc.terminate()
    import sqlite3
    db = sqlite3.connect(work / "burst.db")
    stored, distinct = db.execute("SELECT COUNT(*), COUNT(DISTINCT hash) FROM events").fetchone()
    db.close()
    return {"webhooks": count, "concurrency": concurrency, "statuses": statuses,
            "stored": stored, "distinct": distinct, "wall_s": round(wall, 2),
            "per_second": round(count / wall), "p50_ms": round(statistics.median(times) * 1000, 1),
            "p99_ms": round(percentile(times, 0.99) * 1000, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=50, help="store changes timed")
    parser.add_argument("--import-delay-ms", type=int, default=100,
                        help="how long the Brevo sandbox takes to complete a contact import")
    parser.add_argument("--burst", type=int, default=5000, help="webhooks in the burst")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args()
    os.environ.setdefault("TAJO_CONNECTORS", "bigcommerce,brevo,sqlite")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        timing = latency(work, args.samples, args.import_delay_ms)
        acks = burst(work, args.burst, args.concurrency)
    print(f"store change -> Brevo: p50 {timing['p50_s']} s, p99 {timing['p99_s']} s "
          f"({timing['samples']} changes; 1 s of it is the settling wait)")
    print(f"receiver: {acks['webhooks']} webhooks at concurrency {acks['concurrency']}: "
          f"{acks['per_second']}/s, p50 {acks['p50_ms']} ms, p99 {acks['p99_ms']} ms, "
          f"stored {acks['stored']} ({acks['distinct']} distinct), statuses {acks['statuses']}")
    report = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                          "python": platform.python_version()},
              "latency": timing, "burst": acks}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
