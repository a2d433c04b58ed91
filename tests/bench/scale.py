"""Scale figures (a benchmark, not a test): receivers and workers on PostgreSQL.

1. Receivers: ``--burst`` signed webhooks posted by ``--concurrency`` keep-alive connections
   to 1, then 2 ``runner webhooks serve`` replicas on one PostgreSQL spool (a fresh
   namespace each); acknowledgements per second (each 200 is an event committed there).
2. Workers: ``--stores`` BigCommerce sandbox stores, each with its own quota (the standard
   plan's 150 requests a window, ``--window-ms``) and ``--latency-ms`` per answer, synced
   into a Brevo sandbox by 1, then 3 ``runner worker --once`` processes (fresh database,
   fresh Brevo); stores synced per hour = stores / wall time.

A throwaway PostgreSQL server is started as the tests start it (tests/postgres_kit.py).

    python tests/bench/scale.py --burst 5000 --stores 12 --json scale.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the kits
from postgres_kit import Server, start
from webhook_kit import HEADER, SECRET, Poster, payload, start_receiver

from framework.storage import located
from framework.webhooks.spool import Spool

STORE_YAML = """\
connectors:
  bigcommerce:
    store_hash: "{store_hash}"
    access_token: "{access_token}"
    api_url: "{bc_url}"
    sync: {{carts: false}}
    lists: {{all_customers: 40, buyers: 41, abandoned_cart: 42}}
brevo:
  api_key: "{brevo_key}"
  api_url: "{brevo_url}"
state_dir: "{state_dir}"
storage: "{storage}"
"""


def runner() -> str:
    return str(Path(sys.executable).parent / "runner")


def sandbox(*args: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    process = subprocess.Popen([runner(), "sandbox", *args, "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    return process, json.loads(process.stdout.readline())


def acks(work: Path, server: Server, replicas: int, count: int,
         concurrency: int) -> dict[str, Any]:
    """Acknowledgements/s of ``replicas`` receivers on one PostgreSQL spool."""
    bc, store = sandbox("bigcommerce", "--customers", "5", "--orders", "5", "--products", "5")
    url = server.new_database()
    config = work / f"receiver-{replicas}.json"
    config.write_text(json.dumps({"store_hash": store["store_hash"],
                                  "access_token": store["access_token"],
                                  "api_url": store["url"], "webhook_secret": SECRET,
                                  "spool_path": located(url, "bigcommerce")}))
    receivers = [start_receiver(config) for _ in range(replicas)]
    bodies = [orjson.dumps(payload(store["store_hash"], "store/customer/updated",
                                   {"type": "customer", "id": n})) for n in range(1, count + 1)]
    failures = [0]

    def send(share: list[bytes], endpoint: str) -> None:
        poster = Poster(endpoint)
        for body in share:
            status, _ = poster.post(body, {HEADER: SECRET})
            if status != 200:
                failures[0] += 1
        poster.close()

    threads = [threading.Thread(target=send, args=(bodies[n::concurrency],
                                                   receivers[n % replicas].endpoint))
               for n in range(concurrency)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - started
    for receiver in receivers:
        receiver.stop()
    bc.terminate()
    spool = Spool(located(url, "bigcommerce"))
    stored = spool.count()
    spool.close()
    return {"replicas": replicas, "webhooks": count, "concurrency": concurrency,
            "not_200": failures[0], "stored": stored, "wall_s": round(wall, 2),
            "acks_per_second": round(count / wall)}


def stores_per_hour(work: Path, server: Server, workers: int, stores: int,
                    args: argparse.Namespace) -> dict[str, Any]:
    """Wall time for ``workers`` to sync every store once (``runner worker --once``)."""
    bc, listing = sandbox("bigcommerce", "--stores", str(stores), "--customers",
                          str(args.customers), "--orders", str(args.orders), "--products", "20",
                          "--plan", "standard", "--window-ms", str(args.window_ms),
                          "--latency-ms", str(args.latency_ms))
    brevo, account = sandbox("brevo", "--lists", "40,41,42", "--import-delay-ms", "30",
                             "--window-ms", "2")
    url = server.new_database()
    folder = work / f"stores-{workers}"
    folder.mkdir()
    for store in listing["stores"]:
        (folder / f"{store['store_hash']}.yaml").write_text(STORE_YAML.format(
            bc_url=listing["url"], brevo_key=account["api_key"], brevo_url=account["url"],
            storage=url, state_dir=work / f"state-{workers}" / store["store_hash"], **store))
    started = time.monotonic()
    processes = [subprocess.Popen([runner(), "worker", "--config", str(folder), "--name",
                                   f"w{n}", "--once", "--poll", "0.2"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for n in range(workers)]
    codes = [process.wait(timeout=3600) for process in processes]
    wall = time.monotonic() - started
    bc.terminate()
    brevo.terminate()
    return {"workers": workers, "stores": stores, "exit_codes": codes,
            "wall_s": round(wall, 1), "stores_per_hour": round(stores / wall * 3600)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--stores", type=int, default=12)
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--window-ms", type=int, default=3000,
                        help="the BigCommerce sandbox's quota window (150 requests each)")
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args()
    os.environ.setdefault("TAJO_CONNECTORS", "bigcommerce,brevo,sqlite")
    folder = Path(tempfile.mkdtemp(prefix="tajo-scale-pg-"))
    folder.chmod(0o755)
    servers = start(folder)
    server = next(servers)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            receivers = [acks(work, server, n, args.burst, args.concurrency) for n in (1, 2)]
            workers = [stores_per_hour(work, server, n, args.stores, args) for n in (1, 3)]
    finally:
        servers.close()
        shutil.rmtree(folder, ignore_errors=True)
    for r in receivers:
        print(f"receivers: {r['replicas']} on PostgreSQL, {r['webhooks']} webhooks at "
              f"concurrency {r['concurrency']}: {r['acks_per_second']}/s (stored {r['stored']}, "
              f"not 200: {r['not_200']})")
    for w in workers:
        print(f"workers: {w['workers']}, {w['stores']} stores in {w['wall_s']} s: "
              f"{w['stores_per_hour']} stores/hour (exit codes {w['exit_codes']})")
    report = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                          "python": platform.python_version()},
              "receivers": receivers, "workers": workers, "settings": vars(args)}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
