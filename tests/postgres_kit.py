"""A throwaway PostgreSQL server for the tests: initdb in a temporary folder, pg_ctl start on
a free loopback port (its unix socket in that folder too), removed at the end.

initdb refuses to run as root, so as root the server runs as the ``postgres`` user that
Debian's package creates (``runuser``), in a folder handed to it. Without PostgreSQL's
binaries the tests that need it are skipped on a developer's machine, and fail in CI
(``CI=true``): CI installs the package (``.ci/run``), so a missing one is a broken setup.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


def binaries() -> Path | None:
    """The folder of initdb and pg_ctl (Debian keeps them out of PATH), or None."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                      key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    return Path(versions[-1]).parent if versions else None


def require() -> Path:
    """PostgreSQL's binaries, or skip (fail in CI, where .ci/run installs them)."""
    found = binaries()
    if found is None:
        message = "PostgreSQL is not installed (apt-get install postgresql)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + ": .ci/run installs it, so CI must have it")
        pytest.skip(message)
    return found


@dataclass
class Server:
    """A running server; ``url(db)`` is the connection URL of one of its databases."""

    folder: Path
    port: int
    user: str

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database's URL (each test its own)."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url(), autocommit=True) as db:
            db.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _as_owner(command: list[str], owner: str | None) -> list[str]:
    return ["runuser", "-u", owner, "--", *command] if owner else command


def start(folder: Path) -> Iterator[Server]:
    """Start a server with its data and socket in ``folder``; stopped and removed after."""
    bin_dir = require()
    owner = None
    if os.geteuid() == 0:  # initdb: "cannot be run as root"
        owner = "postgres" if _user_exists("postgres") else "nobody"
        shutil.chown(folder, owner)
    data = folder / "data"
    user = owner or pwd.getpwuid(os.geteuid()).pw_name
    subprocess.run(_as_owner([str(bin_dir / "initdb"), "-D", str(data), "-U", user,
                              "--auth=trust", "-E", "UTF8", "--no-sync"], owner),
                   check=True, capture_output=True)
    port = free_port()
    options = (f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={folder}"
               " -c fsync=off -c max_connections=200 -c shared_buffers=64MB")
    subprocess.run(_as_owner([str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l",
                              str(folder / "log"), "-w", "-t", "60", "start"], owner),
                   check=True, capture_output=True)
    try:
        yield Server(folder, port, user)
    finally:
        subprocess.run(_as_owner([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                                  "-w", "stop"], owner), capture_output=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Server]:
    """One server for the session (starting one takes about a second)."""
    folder = Path(tempfile.mkdtemp(prefix="tajo-pg-"))
    folder.chmod(0o755)
    try:
        yield from start(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: Server) -> str:
    """A fresh database on the session's server."""
    return postgres_server.new_database()


#: The storage backends the same tests run on; PostgreSQL's cases start a server, so they
#: are e2e (``pytest -m "not e2e"`` stays in-process).
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.e2e)]


@pytest.fixture(params=BACKENDS)
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], str]:
    """A factory of store locations on one backend: ``storage("spool")`` is a SQLite file
    in tmp_path, or a namespace of a fresh PostgreSQL database."""
    from framework.storage import located

    if request.param == "sqlite":
        return lambda name: str(tmp_path / f"{name}.db")
    url = request.getfixturevalue("postgres_server").new_database()
    return lambda name: located(url, name)
