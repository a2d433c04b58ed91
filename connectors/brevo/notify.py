"""Brevo's "import finished" calls, taken by the webhook receiver, read by the importer.

An import may name a ``notifyUrl`` that Brevo calls once the process has ended (brevo-python
5.1.0, ``import_contacts``: "on completion calls the notify URL"). Brevo documents nothing of the
call; a third party's receiver (pass-culture/pass-culture-main,
``api/src/pcapi/routes/external/brevo.py``) says it is a POST whose body is empty and whose
query string is empty. So the URL itself names the import: ``{notify_url}/notify/brevo/{secret}/
{key}``, a key per import (its process id is not known when the URL is written) after a
secret kept in ``state_dir`` (0600): anyone can call a public URL, only Brevo knows the secret.

The receiver (``runner webhooks serve --config`` of a sync config whose ``brevo`` section has
``notify_url``) takes the call on :func:`notify_route` and writes the key into a small SQLite
file in ``state_dir`` (``brevo-notices.db``); the importer of ``runner sync`` or of the
forwarder reads it (a local read, nothing spent at Brevo). The receiver also writes there,
every ``BEAT_S``, that it is up: a sync uses ``notifyUrl`` only while it is (else Brevo would
call nobody, and the importer would wait for calls that never come; it checks Brevo anyway,
rarely, for that case).
"""

from __future__ import annotations

import hmac
import logging
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from framework.errors import REDACT
from framework.files import open_sqlite, private_file

log = logging.getLogger("tajo.brevo")

ROUTE = "/notify/brevo/{secret}/{key}"
KEY = re.compile(r"^[0-9a-f]{32}$")  # the importer's keys: 16 random bytes in hex
BEAT_S = 30.0  # the receiver says it is up this often
ALIVE_S = 120.0  # a beat older than this: the receiver is taken to be down
KEEP_S = 7 * 86400  # notices are kept a week (an import ends within the hour)
MOST_NOTICES = 100_000  # and never more than this many
MAX_BODY = 4096  # Brevo's call has no body; anything larger is not Brevo's
SCHEMA = """
CREATE TABLE IF NOT EXISTS notices (key TEXT PRIMARY KEY, at REAL);
CREATE TABLE IF NOT EXISTS beats (id INTEGER PRIMARY KEY CHECK (id = 1), at REAL);
"""


def stored_secret(state_dir: str | Path) -> str:
    """The secret of the notify URL kept in ``state_dir`` (made, 0600, on first use); never
    logged (added to the redactor)."""
    path = private_file(Path(state_dir) / "brevo-notify-secret", "notify secret file")
    secret = path.read_text(encoding="ascii", errors="replace").strip()
    if not KEY.match(secret):
        secret = secrets.token_hex(16)
        path.write_text(secret + "\n", encoding="ascii")
    REDACT.add([secret])
    return secret


class NoticeBoard:
    """The notices file: keys of the imports Brevo said had ended, and the receiver's beat."""

    def __init__(self, state_dir: str | Path) -> None:
        self.path = Path(state_dir) / "brevo-notices.db"
        self.db = open_sqlite(self.path, "notices database", _setup, timeout=30,
                              isolation_level=None, check_same_thread=False)
        self.lock = threading.Lock()

    def close(self) -> None:
        self.db.close()

    def record(self, key: str, now: float | None = None) -> None:
        """Brevo called for ``key``; old notices go (the file stays small)."""
        now = time.time() if now is None else now
        with self.lock:
            self.db.execute("INSERT OR REPLACE INTO notices VALUES (?, ?)", (key, now))
            self.db.execute("DELETE FROM notices WHERE at < ? OR key IN (SELECT key FROM "
                            "notices ORDER BY at DESC LIMIT -1 OFFSET ?)",
                            (now - KEEP_S, MOST_NOTICES))

    def seen(self, keys: Iterable[str]) -> set[str]:
        """Which of ``keys`` Brevo called for."""
        wanted = list(keys)
        if not wanted:
            return set()
        with self.lock:
            found = set()
            for start in range(0, len(wanted), 500):
                part = wanted[start:start + 500]
                found |= {row[0] for row in self.db.execute(
                    f"SELECT key FROM notices WHERE key IN ({','.join('?' * len(part))})",
                    part)}
            return found

    def beat(self, now: float | None = None) -> None:
        """The receiver is up."""
        with self.lock:
            self.db.execute("INSERT OR REPLACE INTO beats VALUES (1, ?)",
                            (time.time() if now is None else now,))

    def stopped(self) -> None:
        """The receiver stops: no beat is left to say otherwise."""
        with self.lock:
            self.db.execute("DELETE FROM beats")

    def alive(self, now: float | None = None) -> bool:
        """Whether a receiver said it was up within ``ALIVE_S``."""
        with self.lock:
            row = self.db.execute("SELECT at FROM beats WHERE id = 1").fetchone()
        now = time.time() if now is None else now
        return row is not None and now - row[0] < ALIVE_S


def _setup(db: sqlite3.Connection) -> None:
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(SCHEMA)


class Notices:
    """What the importer needs: the URL for an import's key, and the keys Brevo called for."""

    def __init__(self, base_url: str, secret: str, board: NoticeBoard) -> None:
        self.base_url = base_url.rstrip("/")
        self.secret = secret
        self.board = board

    def url(self, key: str) -> str:
        return f"{self.base_url}{ROUTE.format(secret=self.secret, key=key)}"

    def seen(self, keys: Iterable[str]) -> set[str]:
        return self.board.seen(keys)

    def alive(self) -> bool:
        return self.board.alive()

    def close(self) -> None:
        self.board.close()


def notices_for(config: dict[str, object]) -> Notices | None:
    """The notices of a destination config whose ``notify_url`` is set, while a receiver is
    up to take Brevo's calls (None otherwise: the importer checks Brevo with pauses)."""
    base = config.get("notify_url")
    if not base or config.get("dry_run"):
        return None
    state_dir = Path(str(config.get("state_dir") or ".tajo"))
    board = NoticeBoard(state_dir)
    if not board.alive():
        log.info("notify_url is set but no receiver has said it is up within %.0f s "
                 "(runner webhooks serve --config): imports are checked at Brevo instead",
                 ALIVE_S)
        board.close()
        return None
    return Notices(str(base), stored_secret(state_dir), board)


def notify_route(state_dir: str | Path) -> tuple[Route, NoticeBoard]:
    """The receiver's route for Brevo's calls, and the board it writes to (beat it: see
    :func:`keep_beating`). A wrong secret or key is a 404 (nothing here for a guesser), a body
    over ``MAX_BODY`` a 413; a good call is recorded and answered 200."""
    secret = stored_secret(state_dir).encode()
    board = NoticeBoard(state_dir)

    async def notified(request: Request) -> Response:
        given = request.path_params["secret"].encode()
        key = request.path_params["key"]
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            return Response(status_code=413, headers={"connection": "close"})
        size = 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_BODY:
                    return Response(status_code=413, headers={"connection": "close"})
        except ClientDisconnect:
            return Response(status_code=400)
        if not hmac.compare_digest(given, secret) or not KEY.match(key):
            return Response(status_code=404)
        board.record(key)
        return Response(status_code=200)

    return Route(ROUTE, notified, methods=["GET", "POST"]), board


def keep_beating(board: NoticeBoard, stop: threading.Event) -> threading.Thread:
    """A thread that says the receiver is up every ``BEAT_S`` until ``stop``."""
    def run() -> None:
        while True:
            try:
                board.beat()
            except sqlite3.Error as exc:
                log.warning("could not write the receiver's beat in %s: %s", board.path, exc)
            if stop.wait(BEAT_S):
                board.stopped()
                return

    thread = threading.Thread(target=run, name="notify-beat", daemon=True)
    thread.start()
    return thread
