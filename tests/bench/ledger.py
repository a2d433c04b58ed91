"""The Brevo ledger's cost on each backend (a benchmark, not a test): SQLite (the default)
and PostgreSQL (``storage:``), the same batches through connectors/brevo/ledger.py.

``--customers`` customers of ``--stores`` stores, each with an order, in batches of
``--batch`` records, as a write's flush works them (connectors/brevo/intake.py's calls): look
up the batch's customers and orders, write them and their versions, read the contacts'
totals and what was sent, mark them sent, commit. Reports wall seconds, the process's CPU
seconds and the statements run, for a first sync (everything new) and a second (everything
known).

    python tests/bench/ledger.py --customers 50000 --json ledger.json
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the kits
from postgres_kit import start

from connectors.brevo.ledger import Ledger
from framework.storage import close_pools, located


def one_sync(ledger: Ledger, stores: int, customers: int, batch: int) -> None:
    """Every customer and its order once, ``batch`` records (customer and order) a flush."""
    per_batch = max(1, batch // 2)
    for start_at in range(0, customers, per_batch):
        ids = range(start_at, min(customers, start_at + per_batch))
        keys = [(f"store{i % stores}", str(i)) for i in ids]
        emails = {key: f"c{key[1]}@example.com" for key in keys}
        ledger.customer_emails(keys)
        ledger.customer_versions(keys)
        ledger.put_customers([(*key, email) for key, email in emails.items()])
        ledger.put_customer_versions([(*key, "2026-01-01T00:00:00Z") for key in keys])
        ledger.rehome_orders_of(emails)
        orders = [(store, str(10**7 + int(cid))) for store, cid in keys]
        ledger.order_rows(orders)
        ledger.order_versions(orders)
        ledger.put_orders([(store, oid, f"c{int(oid) - 10**7}@example.com", 1, 12.5,
                            str(int(oid) - 10**7)) for store, oid in orders])
        ledger.put_order_versions([(*order, "2026-01-01T00:00:00Z", "Completed")
                                   for order in orders])
        addresses = list(emails.values())
        totals, sent = ledger.totals_of(addresses), ledger.sent_of(addresses)
        ledger.mark_sent_many([(email, *totals.get(email, (0, 0.0)), "fp")
                               for email in addresses if email not in sent])
        ledger.commit()


def measure(location: str, args: argparse.Namespace) -> dict[str, Any]:
    ledger = Ledger(location)
    figures: dict[str, Any] = {}
    try:
        for run in ("first", "second"):
            before, cpu, wall = ledger.statements, time.process_time(), time.perf_counter()
            one_sync(ledger, args.stores, args.customers, args.batch)
            figures[run] = {"wall_s": round(time.perf_counter() - wall, 2),
                            "cpu_s": round(time.process_time() - cpu, 2),
                            "statements": ledger.statements - before}
    finally:
        ledger.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--stores", type=int, default=50)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="tajo-bench-ledger-"))
    folder.chmod(0o755)
    report: dict[str, Any] = {"machine": f"{platform.python_implementation()} "
                              f"{platform.python_version()}, {platform.machine()}",
                              "customers": args.customers, "stores": args.stores,
                              "batch": args.batch}
    try:
        sqlite_dir = folder / "sqlite"
        sqlite_dir.mkdir(mode=0o700)
        report["sqlite"] = measure(str(sqlite_dir / "brevo.db"), args)
        (folder / "pg").mkdir(mode=0o755)
        server_run = start(folder / "pg")
        server = next(server_run)
        url = server.new_database()
        try:
            report["postgresql"] = measure(located(url, "brevo"), args)
        finally:
            close_pools(url)
            server_run.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
