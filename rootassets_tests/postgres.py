"""A real PostgreSQL server for the tests: Debian's PostgreSQL 15, on a temporary data directory and a free port of
127.0.0.1, started by the fixture and stopped after (never a mock). `.ci/run` installs the server if missing.

As root (CI and these machines), the server runs as the `postgres` system user, as initdb refuses root.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), Path("/usr/lib/postgresql/bin"))
USER = "lake"


@dataclass(frozen=True)
class Postgres:
    """A running server: where it listens and as whom to connect (trust authentication, loopback only)."""

    host: str
    port: int
    user: str

    def dsn(self, dbname: str) -> str:
        return f"dbname={dbname} host={self.host} port={self.port} user={self.user}"

    def create_database(self, name: str, template: str | None = None) -> str:
        """A new database, empty or a copy of `template`; returns its libpq DSN."""
        copy_of = ["-T", template] if template else []
        subprocess.run(
            [str(PG_BIN / "createdb"), "-h", self.host, "-p", str(self.port), "-U", self.user, *copy_of, name],
            check=True,
            capture_output=True,
            timeout=60,
        )
        return self.dsn(name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_server_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


@contextmanager
def running_postgres() -> Iterator[Postgres]:
    """Start a server on a fresh data directory and a free port; stop it and remove the directory after."""
    if not (PG_BIN / "initdb").exists():
        pytest.fail(f"PostgreSQL's server is required ({PG_BIN}/initdb): apt-get install postgresql")
    root = Path(tempfile.mkdtemp(prefix="rootassets-pg-"))
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        os.chown(root, account.pw_uid, account.pw_gid)
    data, port = root / "data", _free_port()
    subprocess.run(
        _as_server_user([str(PG_BIN / "initdb"), "-D", str(data), "-U", USER, "--auth=trust", "-E", "UTF8"]),
        check=True,
        capture_output=True,
        timeout=120,
    )
    options = f"-p {port} -h 127.0.0.1 -k {root} -c max_connections=200 -c fsync=off"
    started = subprocess.run(
        _as_server_user(
            [str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "server.log"), "-w", "start"]
        ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if started.returncode != 0:
        log = (root / "server.log").read_text() if (root / "server.log").exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"PostgreSQL did not start: {started.stdout}{started.stderr}{log}")
    try:
        yield Postgres(host="127.0.0.1", port=port, user=USER)
    finally:
        subprocess.run(
            _as_server_user([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]),
            capture_output=True,
            timeout=120,
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """One PostgreSQL server for the whole test session (per xdist worker); each test makes its own database."""
    with running_postgres() as server:
        yield server
