"""Fixtures: PgBouncer in transaction mode in front of the session's server, as production
runs it, and a `Database` with default settings behind it.

Debian's `pgbouncer` must be installed (`.ci/run` installs it): without it these tests fail
with that message, they do not skip. Its pool is deliberately small (3 server connections per
database and user), so that clients share server connections all the time.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from darasa_db import Database, DatabaseSettings
from darasa_db.testing.servers import TestServer

SERVER_POOL = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_user(command: list[str]) -> list[str]:
    """PgBouncer refuses to run as root: run it as `nobody` then."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "nobody", "--", *command]


@pytest.fixture(scope="session")
def pgbouncer(darasa_server: TestServer) -> Iterator[tuple[str, int]]:
    """A running PgBouncer (transaction mode) for every database of the session's server;
    yields its host and port."""
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not Path(binary).exists():
        pytest.fail("the pooler tests need PgBouncer: apt-get install -y pgbouncer", pytrace=False)
    server = urlsplit(darasa_server.url)
    if not server.hostname:
        pytest.fail("the pooler tests need a server on TCP (not a unix socket)", pytrace=False)
    user, password = server.username or "postgres", server.password or ""
    port = _free_port()
    workdir = Path(tempfile.mkdtemp(prefix="darasa-pgbouncer-"))
    os.chmod(workdir, 0o777)
    (workdir / "userlist.txt").write_text(f'"{user}" "{password}"\n')
    (workdir / "pgbouncer.ini").write_text(
        f"""[databases]
* = host={server.hostname} port={server.port or 5432}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {workdir}/userlist.txt
pool_mode = transaction
default_pool_size = {SERVER_POOL}
max_client_conn = 500
server_reset_query =
server_login_retry = 1
ignore_startup_parameters = extra_float_digits
logfile = {workdir}/pgbouncer.log
pidfile = {workdir}/pgbouncer.pid
"""
    )
    for path in workdir.iterdir():
        os.chmod(path, 0o666)
    process = subprocess.Popen(
        _as_user([binary, str(workdir / "pgbouncer.ini")]),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,  # it logs to its logfile
    )
    url = f"postgresql://{user}:{password}@127.0.0.1:{port}/postgres"
    deadline = time.monotonic() + 15
    while True:
        try:
            psycopg.connect(url, connect_timeout=2).close()
            break
        except psycopg.OperationalError:
            if process.poll() is not None or time.monotonic() > deadline:
                log = (
                    (workdir / "pgbouncer.log").read_text()
                    if (workdir / "pgbouncer.log").exists()
                    else ""
                )
                process.kill()
                pytest.fail(f"PgBouncer did not start: {log[-2000:]}", pytrace=False)
            time.sleep(0.1)
    try:
        yield "127.0.0.1", port
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def pooled_url(pgbouncer: tuple[str, int], darasa_database_url: str) -> str:
    """This test's database, reached through PgBouncer."""
    host, port = pgbouncer
    parts = urlsplit(darasa_database_url)
    auth = parts.netloc.rpartition("@")[0]
    return urlunsplit((parts.scheme, f"{auth}@{host}:{port}", parts.path, "", ""))


@pytest.fixture
async def pooled_db(pooled_url: str) -> AsyncIterator[Database]:
    """A `Database` with production defaults (not test mode) behind PgBouncer."""
    db = Database(DatabaseSettings(url=pooled_url, test_mode=False, pool_size=2, max_overflow=2))
    yield db
    await db.close()
