"""pytest plugin (entry point `pytest11`): real-PostgreSQL fixtures for darasa-db and its hosts.

Fixtures:
- `darasa_server` (session): the running server (`.url`, `.kind`, `.kill()`, `.start()`);
- `darasa_database_url`: a fresh database for this test, cloned from a migrated template;
- `darasa_db`: a `Database` in test mode on that database, closed after the test.
- `darasa_memory_db`: an `InMemoryDatabase` (the fakes), for unit tests without a server.

The server is `DARASA_TEST_DATABASE_URL`, else Testcontainers when a Docker engine answers,
else an embedded pgserver; the choice is printed in the pytest header. When no server can be
had the tests that need one fail with the reason; they never skip.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from darasa_db import migrate
from darasa_db.database import Database
from darasa_db.settings import DatabaseSettings
from darasa_db.testing.fakes import InMemoryDatabase
from darasa_db.testing.servers import DEFAULT_IMAGE, TestServer, planned_backend, start_server

__all__ = [
    "darasa_database_url",
    "darasa_memory_db",
    "darasa_server",
    "database_url_for",
]

TEMPLATE = f"darasa_test_template_{os.getpid()}"
"""This session's migrated template database (per process: parallel sessions never clash)."""
_counter = itertools.count()


def pytest_configure(config: pytest.Config) -> None:
    # A Database built at import time, before PYTEST_CURRENT_TEST exists, is in test mode too.
    os.environ.setdefault("DARASA_DB_TEST_MODE", "1")


def pytest_report_header(config: pytest.Config) -> str:
    try:
        kind = planned_backend()
    except RuntimeError as exc:
        return f"darasa-db test database: unavailable ({exc})"
    image = os.environ.get("DARASA_TEST_POSTGRES_IMAGE", DEFAULT_IMAGE)
    detail = {
        "url": "DARASA_TEST_DATABASE_URL",
        "testcontainers": f"testcontainers (image {image})",
        "embedded": "embedded (pgserver)",
    }[kind]
    return f"darasa-db test database: {detail}"


def database_url_for(server_url: str, dbname: str) -> str:
    """`server_url` pointing at database `dbname` instead."""
    parts = urlsplit(server_url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{dbname}", parts.query, parts.fragment))


def _untemplate(conn: psycopg.Connection[Any], name: str) -> None:
    """Clear the template flag of database `name`, if set: PostgreSQL refuses to drop a template."""
    found = conn.execute(
        "SELECT datistemplate FROM pg_database WHERE datname = %s", (name,)
    ).fetchone()
    if found and found[0]:
        conn.execute(
            sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE false").format(sql.Identifier(name))
        )


def create_database(server_url: str, name: str, *, template: str | None = None) -> str:
    """Create database `name` (from `template`) and return its URL."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        _untemplate(conn, name)  # e.g. the template of an earlier session on the same server
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        conn.execute(statement)
    return database_url_for(server_url, name)


def drop_database(server_url: str, name: str) -> None:
    """Drop database `name`, disconnecting whoever is still on it."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        _untemplate(conn, name)
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="session")
def darasa_server() -> Iterator[TestServer]:
    """The session's PostgreSQL with pgvector, with an empty migrated template database."""
    try:
        server = start_server()
    except Exception as exc:
        pytest.fail(f"darasa-db tests need a PostgreSQL with pgvector and none could be had: {exc}")
    try:
        template_url = create_database(server.url, TEMPLATE)
        migrate.upgrade(template_url)
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE true").format(sql.Identifier(TEMPLATE))
            )
        yield server
        with contextlib.suppress(psycopg.OperationalError):
            drop_database(server.url, TEMPLATE)
    finally:
        server.stop()


@pytest.fixture
def darasa_database_url(darasa_server: TestServer) -> Iterator[str]:
    """A fresh database for this test, already migrated to head."""
    name = f"darasa_test_{os.getpid()}_{next(_counter)}"
    url = create_database(darasa_server.url, name, template=TEMPLATE)
    yield url
    with contextlib.suppress(psycopg.OperationalError):  # the server may be down (fault tests)
        drop_database(darasa_server.url, name)


try:  # pytest-asyncio comes with darasa-db[test]; without it a host's pytest still runs
    import pytest_asyncio
except ImportError:  # pragma: no cover - only in hosts without the extra

    @pytest.fixture(name="darasa_db")
    def _darasa_db_needs_pytest_asyncio() -> None:
        """Fails: the `darasa_db` fixture needs pytest-asyncio (darasa-db[test])."""
        pytest.fail("the darasa_db fixture needs pytest-asyncio: pip install 'darasa-db[test]'")

else:

    @pytest_asyncio.fixture(name="darasa_db")
    async def _darasa_db(darasa_database_url: str) -> AsyncIterator[Database]:
        """A `Database` in test mode on this test's database, with the default cache."""
        db = Database(DatabaseSettings(url=darasa_database_url, test_mode=True))
        yield db
        await db.close()


@pytest.fixture
def darasa_memory_db() -> InMemoryDatabase:
    """An empty `InMemoryDatabase`: the six fake repositories, no server needed."""
    return InMemoryDatabase()
