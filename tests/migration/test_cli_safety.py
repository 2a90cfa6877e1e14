"""The `darasa-db` console script fails safe: run in a subprocess, as operators and deploys do."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from darasa_db import migrate

SCRIPT = str(Path(sys.executable).with_name("darasa-db"))
ENV_NAMES = ("DATABASE_URL", "DB_HOST", "DB_PORT", "DB_USER", "DB_PASSWORD", "DB_NAME")


def _env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
    env.pop("DARASA_DB_EMBEDDED_DIR", None)
    env.update(overrides)
    return env


def darasa(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed console script."""
    return subprocess.run(
        [SCRIPT, *argv],
        env=env if env is not None else _env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _one_error_line(stderr: str, *fragments: str) -> None:
    assert stderr.startswith("darasa-db: error: "), stderr
    assert stderr.count("\n") == 1, stderr
    assert "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in stderr, stderr


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _with(url: str, *, password: str | None = None, dbname: str | None = None) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc
    if password is not None:
        netloc = f"{parts.username}:{password}@{parts.hostname}:{parts.port}"
    path = f"/{dbname}" if dbname is not None else parts.path
    return urlunsplit((parts.scheme, netloc, path, parts.query, parts.fragment))


def _demo_rows(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM darasa.users WHERE id LIKE 'user_demo_%'"
        ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
def unused_embedded_dir(tmp_path) -> Path:
    """A data directory the embedded server must never be started in."""
    return tmp_path / "must-stay-absent"


@pytest.mark.parametrize(
    ("argv", "env", "named"),
    [
        (["--url", "", "migrate"], {}, "--url is empty"),
        (["migrate", "--url", ""], {}, "--url is empty"),
        (["migrate"], {"DATABASE_URL": ""}, "DATABASE_URL is set but empty"),
        (["migrate"], {"DATABASE_URL": "   "}, "DATABASE_URL is set but empty"),
        (["health"], {"DATABASE_URL": ""}, "DATABASE_URL is set but empty"),
        (["migrate"], {"DB_HOST": ""}, "DB_HOST"),
    ],
)
def test_an_empty_url_is_an_error_naming_it_and_never_the_embedded_server(
    argv, env, named, unused_embedded_dir
):
    ran = darasa(*argv, env=_env(DARASA_DB_EMBEDDED_DIR=str(unused_embedded_dir), **env))

    assert (ran.returncode, ran.stdout) == (2, "")
    _one_error_line(ran.stderr, named)
    assert "embedded" not in ran.stderr.split("empty")[0]
    assert not unused_embedded_dir.exists()


def test_global_options_are_accepted_after_the_command(darasa_database_url):
    head = migrate.head()
    for argv in (
        ["check", "--url", darasa_database_url],
        ["--url", darasa_database_url, "check"],
        ["check", "--url", darasa_database_url, "--schema", "darasa", "-v"],
        ["--schema", "darasa", "migrate", "--url", darasa_database_url, "--revision", "head"],
    ):
        ran = darasa(*argv)
        assert ran.returncode == 0, (argv, ran.stderr)
        assert f"at head {head}" in ran.stdout or "nothing to do" in ran.stdout


def test_an_option_after_the_command_wins_over_the_same_one_before(darasa_database_url):
    port = _closed_port()
    ran = darasa(
        "--url", f"postgresql://a@127.0.0.1:{port}/a", "check", "--url", darasa_database_url
    )

    assert ran.returncode == 0, ran.stderr


def test_downgrade_twice_succeeds_and_says_nothing_to_do(empty_database_url):
    url = empty_database_url
    assert darasa("migrate", "--url", url).returncode == 0

    first = darasa("downgrade", "base", "--url", url)
    second = darasa("downgrade", "base", "--url", url)

    assert (first.returncode, second.returncode) == (0, 0), first.stderr + second.stderr
    assert "reverted" in first.stdout
    assert second.stdout.endswith("is already at base (not migrated); nothing to do\n")
    assert second.stderr == ""


def test_downgrade_to_base_on_a_never_migrated_database_does_nothing(empty_database_url):
    ran = darasa("--url", empty_database_url, "downgrade", "base")

    assert (ran.returncode, ran.stderr) == (0, "")
    assert "nothing to do" in ran.stdout


def test_health_names_a_failed_authentication_in_one_line(darasa_server):
    url = _with(darasa_server.url, password="Wr0ng-s3cret")

    ran = darasa("health", "--url", url)

    assert (ran.returncode, ran.stdout) == (1, "")
    _one_error_line(ran.stderr, "authentication failed")
    assert "Wr0ng-s3cret" not in ran.stderr


def test_health_names_an_unknown_database(darasa_server):
    ran = darasa("health", "--url", _with(darasa_server.url, dbname="no_such_database"))

    assert (ran.returncode, ran.stdout) == (1, "")
    _one_error_line(ran.stderr, "unknown database", "no_such_database")


def test_health_names_a_refused_connection():
    port = _closed_port()

    ran = darasa("health", "--url", f"postgresql://app:pw@127.0.0.1:{port}/app")

    assert (ran.returncode, ran.stdout) == (1, "")
    _one_error_line(ran.stderr, "connection refused", f"127.0.0.1:{port}")


def test_health_names_a_timeout_and_verbose_adds_detail():
    with socket.socket() as silent:  # accepts connections and never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        url = f"postgresql://app:pw@127.0.0.1:{port}/app?connect_timeout=1"

        started = time.monotonic()
        ran = darasa("health", "--url", url)
        verbose = darasa("health", "--url", url, "-v")
        elapsed = time.monotonic() - started

    assert (ran.returncode, ran.stdout) == (1, "")
    _one_error_line(ran.stderr, "timeout", "within 1 s")
    assert verbose.returncode == 1
    lines = verbose.stderr.splitlines()
    assert lines[0] == ran.stderr.strip()
    assert len(lines) > 1
    assert all(line.startswith("darasa-db:") for line in lines)
    assert "sqlstate" in verbose.stderr
    assert elapsed < 60


def test_health_of_a_healthy_database_exits_zero(darasa_database_url):
    ran = darasa("health", "--url", darasa_database_url)

    assert (ran.returncode, ran.stderr) == (0, "")
    assert ran.stdout.startswith("healthy: PostgreSQL at ")


def test_demo_piped_into_head_ends_quietly_and_leaves_no_rows(darasa_database_url):
    shell = f"'{SCRIPT}' --url '{darasa_database_url}' demo | head -3"

    ran = subprocess.run(
        ["bash", "-c", shell], env=_env(), capture_output=True, text=True, timeout=300, check=False
    )

    assert ran.returncode == 0
    assert ran.stderr == ""
    lines = ran.stdout.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("darasa-db demo on ")
    assert lines[2].startswith("2. sync user (upsert): created user_demo_")
    assert _demo_rows(darasa_database_url) == 0


def test_demo_piped_into_head_reports_a_broken_pipe_by_its_exit_status(darasa_database_url):
    shell = f"set -o pipefail; '{SCRIPT}' --url '{darasa_database_url}' demo | head -1"

    ran = subprocess.run(
        ["bash", "-c", shell], env=_env(), capture_output=True, text=True, timeout=300, check=False
    )

    assert ran.returncode in (0, 141)  # 0 if the demo wrote everything before head left
    assert ran.stderr == ""
    assert len(ran.stdout.splitlines()) == 1


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_during_the_demo_is_one_line_and_cleans_up(darasa_database_url):
    demo = subprocess.Popen(
        [SCRIPT, "--url", darasa_database_url, "demo"],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,  # as a terminal would (a background CI job ignores it)
    )
    assert demo.stdout is not None
    seen = []
    for line in demo.stdout:
        seen.append(line)
        # the user exists; the interrupt lands in the steps that follow (one landing during
        # a transaction's COMMIT lets that block finish first: docs/lifecycle.md)
        if line.startswith("2. "):
            demo.send_signal(signal.SIGINT)
            break
    _, err = demo.communicate(timeout=120)

    assert any(line.startswith("2. sync user") for line in seen)
    assert demo.returncode == 130, err
    assert err == "darasa-db: interrupted\n"
    assert _demo_rows(darasa_database_url) == 0


def test_ctrl_c_while_the_modules_load_is_one_line(darasa_database_url, tmp_path):
    runner = tmp_path / "interrupt_on_import.py"
    runner.write_text(
        "import sys\n"
        "class CtrlC:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name in ('sqlalchemy', 'alembic'):\n"
        "            raise KeyboardInterrupt\n"
        "sys.meta_path.insert(0, CtrlC())\n"
        "from darasa_db.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )

    for argv in (["current"], ["demo"], ["health"], ["history"]):
        ran = subprocess.run(
            [sys.executable, str(runner), "--url", darasa_database_url, *argv],
            env=_env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert (ran.returncode, ran.stderr) == (130, "darasa-db: interrupted\n"), argv


@pytest.fixture
def embedded_dir() -> Iterator[Path]:
    """A fresh data directory for the embedded server, stopped and removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="darasa-db-cli-embedded-"))
    os.chmod(root, 0o755)  # as root, the server runs as an unprivileged user
    datadir = root / "pgdata"
    try:
        yield datadir
    finally:
        darasa("embedded", "stop", env=_env(DARASA_DB_EMBEDDED_DIR=str(datadir)))
        shutil.rmtree(root, ignore_errors=True)


def test_embedded_default_status_url_and_stop(embedded_dir):
    env = _env(DARASA_DB_EMBEDDED_DIR=str(embedded_dir))
    env.pop("XDG_RUNTIME_DIR", None)

    before = darasa("embedded", "status", env=env)
    assert before.returncode == 1
    assert before.stdout.startswith("stopped: ")
    assert "it has no data yet" in before.stdout

    used = darasa("current", env=env)
    assert (used.returncode, used.stdout) == (0, "base (not migrated)\n"), used.stderr
    assert used.stderr == (
        "darasa-db: no --url, DATABASE_URL or DB_* set: using the embedded PostgreSQL in "
        f"{embedded_dir}\n"
    )

    running = darasa("embedded", "status", env=env)
    assert running.returncode == 0
    assert running.stdout.startswith("running: ")
    assert "(user postgres, empty password)" in running.stdout

    url = darasa("embedded", "url", env=env)
    assert url.returncode == 0
    printed = url.stdout.strip()
    assert printed.startswith("postgresql://postgres:@")
    assert "***" not in printed
    assert printed in running.stdout
    with psycopg.connect(printed) as conn:  # usable as is
        assert conn.execute("SELECT 1").fetchone() == (1,)

    stopped = darasa("embedded", "stop", env=env)
    assert (stopped.returncode, stopped.stdout.startswith("stopped the embedded")) == (0, True)
    after = darasa("embedded", "status", env=env)
    assert after.returncode == 1
    assert "its data is kept" in after.stdout
    again = darasa("embedded", "stop", env=env)
    assert again.returncode == 0
    assert "not running; nothing to do" in again.stdout
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(printed, connect_timeout=2).close()
