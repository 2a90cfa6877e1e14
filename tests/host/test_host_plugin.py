"""The pytest plugin as host projects meet it: opt-in, free when unused, quiet when it fails.

Each test writes a small host project and runs pytest on it in a subprocess, as a host's CI
would, with the environment a container usually has (no XDG_RUNTIME_DIR).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from darasa_db.testing.servers import TestServer

PYTEST_INI = """\
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = session
asyncio_default_test_loop_scope = session
"""
OPT_IN = 'pytest_plugins = ["darasa_db.testing.plugin"]\n'

UNRELATED_TESTS = """\
import os
import sys


def test_the_host_session_has_nothing_of_darasa_db():
    assert [m for m in sys.modules if m.split(".")[0] == "darasa_db"] == []
    assert "DARASA_DB_TEST_MODE" not in os.environ


def test_arithmetic():
    assert 1 + 1 == 2
"""

UNUSED_FIXTURES_TESTS = """\
import os
import sys

HEAVY = ("sqlalchemy", "alembic", "psycopg", "darasa_db.database", "darasa_db.migrate")


def test_an_opted_in_session_loads_nothing_heavy_until_a_fixture_is_used():
    assert [m for m in HEAVY if m in sys.modules] == []
    assert "DARASA_DB_TEST_MODE" not in os.environ
"""

DATABASE_TESTS = """\
from darasa_db.schemas import UserUpsert


async def test_upsert_then_get(darasa_db):
    user = await darasa_db.users.upsert(UserUpsert(id="user_1", email="a@b.co", name="Ada"))
    assert await darasa_db.users.get("user_1") == user
    assert darasa_db.test_mode is True


def test_url_fixture(darasa_database_url):
    assert darasa_database_url.startswith("postgresql://")


def test_memory_db(darasa_memory_db):
    assert darasa_memory_db is not None
"""

SIX_DATABASE_TESTS = "\n\n".join(
    f"def test_needs_a_database_{i}(darasa_database_url):\n    assert darasa_database_url\n"
    for i in range(6)
)


@pytest.fixture
def docker_listener() -> Iterator[tuple[str, socket.socket]]:
    """A DOCKER_HOST that never answers, and its socket, to see whether anything probed it."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.setblocking(False)
        yield f"tcp://127.0.0.1:{listener.getsockname()[1]}", listener


def _probed(listener: socket.socket) -> bool:
    try:
        connection, _ = listener.accept()
    except BlockingIOError:
        return False
    connection.close()
    return True


def _host_env(**overrides: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DARASA_", "PYTEST_", "TESTCONTAINERS_"))
        and k not in ("DATABASE_URL", "XDG_RUNTIME_DIR", "APP_ENV", "DOCKER_HOST")
    }
    env.update(overrides)
    return env


def _run_host(
    root: Path, files: dict[str, str], *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    (root / "pytest.ini").write_text(PYTEST_INI)
    for name, text in files.items():
        (root / name).write_text(textwrap.dedent(text))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=root,
        env=_host_env(**env),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    netloc = f"{parts.username}:{password}@{parts.hostname}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def test_a_host_that_does_not_opt_in_pays_nothing(tmp_path, docker_listener):
    docker_host, listener = docker_listener

    ran = _run_host(
        tmp_path, {"test_host.py": UNRELATED_TESTS}, "-W", "error", DOCKER_HOST=docker_host
    )

    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "2 passed" in ran.stdout
    assert "darasa-db" not in ran.stdout
    assert not _probed(listener)


def test_an_opted_in_host_pays_nothing_until_it_uses_a_fixture(tmp_path, docker_listener):
    docker_host, listener = docker_listener

    ran = _run_host(
        tmp_path,
        {"conftest.py": OPT_IN, "test_host.py": UNUSED_FIXTURES_TESTS},
        "-W",
        "error",
        DOCKER_HOST=docker_host,
    )

    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "darasa-db test database: chosen when a test first needs one" in ran.stdout
    assert not _probed(listener)


def test_an_opted_in_host_gets_a_migrated_database_under_w_error(tmp_path, darasa_server):
    ran = _run_host(
        tmp_path,
        {"conftest.py": OPT_IN, "test_host.py": DATABASE_TESTS},
        "-W",
        "error",
        DARASA_TEST_DATABASE_URL=darasa_server.url,
    )

    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "3 passed" in ran.stdout
    assert "darasa-db test database: DARASA_TEST_DATABASE_URL" in ran.stdout


def test_the_plugin_also_loads_with_dash_p(tmp_path, darasa_server):
    ran = _run_host(
        tmp_path,
        {"test_host.py": DATABASE_TESTS},
        "-p",
        "darasa_db.testing.plugin",
        DARASA_TEST_DATABASE_URL=darasa_server.url,
    )

    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "3 passed" in ran.stdout


def test_the_embedded_server_under_w_error_without_xdg_runtime_dir(tmp_path):
    ran = _run_host(
        tmp_path,
        {"conftest.py": OPT_IN, "test_host.py": DATABASE_TESTS},
        "-W",
        "error",
        DARASA_TEST_BACKEND="embedded",
    )

    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "3 passed" in ran.stdout
    assert "RuntimeDirWarning" not in ran.stdout + ran.stderr


def test_a_wrong_password_fails_each_test_in_one_paragraph_without_the_password(
    tmp_path, darasa_server: TestServer
):
    if darasa_server.kind == "embedded":  # a socket-only server trusts local connections
        wrong = "postgresql://nobody:Wr0ng-s3cret@127.0.0.1:1/postgres"
    else:
        wrong = _with_password(darasa_server.url, "Wr0ng-s3cret")

    ran = _run_host(
        tmp_path,
        {"conftest.py": OPT_IN, "test_host.py": SIX_DATABASE_TESTS},
        DARASA_TEST_DATABASE_URL=wrong,
    )

    output = ran.stdout + ran.stderr
    assert ran.returncode == 1
    assert "6 errors" in output
    assert "Wr0ng-s3cret" not in output
    assert "Traceback" not in output
    assert "conninfo" not in output
    assert len(output.splitlines()) < 80, output
    assert output.count("darasa-db: no test database (starting the server;") >= 1
    assert "Set DARASA_TEST_DATABASE_URL to a PostgreSQL with pgvector" in output


def test_docker_down_with_testcontainers_forced_is_short(tmp_path):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        down = f"tcp://127.0.0.1:{closed.getsockname()[1]}"

    ran = _run_host(
        tmp_path,
        {"conftest.py": OPT_IN, "test_host.py": SIX_DATABASE_TESTS},
        DARASA_TEST_BACKEND="testcontainers",
        DOCKER_HOST=down,
    )

    output = ran.stdout + ran.stderr
    assert ran.returncode == 1
    assert "6 errors" in output
    assert "DARASA_TEST_BACKEND=testcontainers" in output
    assert "Traceback" not in output
    assert len(output.splitlines()) < 80, output
