"""Customer data files: created private, opened with errors that say what to do.

The state database, the webhook spool (and SQLite's ``-wal``/``-shm`` files beside it), the
dead letters and a destination's ledger hold customers' emails, names, orders and carts. Each is
created mode 0600 (read and write by its owner only), and one that exists with a wider mode is
tightened when it is opened. SQLite gives its ``-wal``, ``-shm`` and ``-journal`` files the mode
of the database file, so creating that file 0600 before SQLite opens it is what keeps them
private too; existing ones are tightened as well.

The directory they are in is created 0700, and an existing one is tightened to 0700, unless it
is the current directory or the home directory (``spool_path: spool.db`` must not close the
project folder to its other users) or belongs to someone else: there only the files are private.

A SQLite file that is damaged or is not a database, or a path that is a directory, is a
:class:`~framework.errors.ConfigError` (exit 2) naming the file and the fix; the file is left
as it was (never recreated over: it may be the only copy of a sync's position).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from framework.errors import ConfigError

FILE_MODE = 0o600
DIR_MODE = 0o700
#: What SQLite writes beside a database (write-ahead log, its index, the rollback journal).
SIDE_FILES = ("-wal", "-shm", "-journal")


def private_dir(path: str | Path) -> Path:
    """Create ``path`` (and its parents) 0700, or tighten it (see the module doc)."""
    path = Path(path)
    if not path.exists():
        path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    exempt = {Path.cwd().resolve(), Path.home().resolve()}
    if path.is_dir() and path.resolve() not in exempt and path.stat().st_uid == os.getuid():
        _tighten(path, DIR_MODE)
    return path


def private_file(path: str | Path, what: str = "file") -> Path:
    """Create ``path`` empty 0600 if it is missing (its directory 0700), or tighten it and
    the SQLite files beside it. The content is never touched."""
    path = Path(path)
    if path.is_dir():
        example = path / (what.replace(" ", "-") + (".db" if "database" in what
                                                    or "spool" in what else ""))
        raise ConfigError(f"{what} {path} is a directory; give the path of a file in it "
                          f"(e.g. {example})")
    private_dir(path.parent)
    # Created only when missing (O_EXCL): an existing file is never opened here. Closing a
    # descriptor of a SQLite file drops every POSIX lock this process holds on it, so another
    # process's connection would think itself the last and delete the live WAL and its
    # index (https://www.sqlite.org/howtocorrupt.html, 2.2): "disk I/O error" here next.
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL
                         | getattr(os, "O_CLOEXEC", 0), FILE_MODE))
    except FileExistsError:
        pass
    except OSError as exc:
        raise ConfigError(f"cannot create {what} {path}: {exc.strerror}; check the path and "
                          "its permissions") from None
    for name in ("", *SIDE_FILES):
        side = Path(f"{path}{name}")
        with contextlib.suppress(FileNotFoundError):
            _tighten(side, FILE_MODE)
    return path


def _tighten(path: Path, mode: int) -> None:
    """Drop the group and other permission bits (a file we cannot chmod stays as it is)."""
    current = path.stat().st_mode & 0o777
    if current & ~mode:
        with contextlib.suppress(PermissionError):
            path.chmod(current & mode)


def damaged(path: str | Path, what: str, exc: Exception) -> ConfigError:
    """The error for a SQLite file that cannot be read as one."""
    return ConfigError(f"{what} {path} is damaged or not a SQLite database ({exc}); it was "
                       f"left as it is: move it aside (mv {path} {path}.damaged) to start a "
                       "new one, or restore it from a backup")


def open_sqlite(path: str | Path, what: str,
                setup: Callable[[sqlite3.Connection], Any] | None = None,
                **connect: Any) -> sqlite3.Connection:
    """Connect to the SQLite file ``path`` (a ``what``, e.g. "state database"), created
    private; ``setup`` (pragmas, schema) runs with the same errors. A damaged file, a
    directory, or a path that cannot be opened is a ConfigError with the fix."""
    private_file(path, what)
    try:
        db = sqlite3.connect(str(path), **connect)
    except sqlite3.OperationalError as exc:
        raise ConfigError(f"cannot open {what} {path}: {exc}; check the path and its "
                          "permissions") from None
    try:
        db.execute("PRAGMA schema_version").fetchall()  # reads the header: fails if not SQLite
        if setup is not None:
            setup(db)
    except sqlite3.OperationalError:
        db.close()
        raise  # e.g. locked: not the file's fault
    except sqlite3.DatabaseError as exc:
        db.close()
        raise damaged(path, what, exc) from None
    return db
