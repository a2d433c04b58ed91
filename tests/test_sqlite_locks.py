"""A process that opens a SQLite file again (the forwarder opens the spool on each loop) keeps
the locks of the connections it already has: otherwise another process's connection, closing,
believes itself the last one, deletes the write-ahead log and its index under the first
process's feet, and that process's next read fails with "disk I/O error" (what stopped the
receiver's forwarder after ``runner storefront status`` read its spool)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from framework.webhooks.spool import Spool

ROOT = Path(__file__).resolve().parent.parent


def test_opening_a_spool_again_keeps_the_other_connections_locks(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    writer = Spool(path, durable=True)  # the receiver's connection
    writer.append("s1", "store/customer/updated", "customer", "1", {})
    other = ("import sys; sys.path.insert(0, sys.argv[1]); "
             "from framework.webhooks.spool import Spool; "
             "s = Spool(sys.argv[2]); s.last_offset(); s.close()")
    try:
        for number in range(3):
            reader = Spool(path)  # as the forwarder opens it on each loop
            assert reader.last_offset() == number + 1
            # `runner status` (another process) reads the spool and closes it
            subprocess.run([sys.executable, "-c", other, str(ROOT), str(path)], check=True)
            assert Path(f"{path}-wal").exists(), "the other process deleted the live WAL"
            writer.append("s1", "store/customer/updated", "customer", str(number + 2), {})
            assert reader.last_offset() == number + 2
            reader.close()
    finally:
        writer.close()
