"""Developer sessions: `nox -s tests lint typecheck docs wheel bench`.

`nox --force-venv-backend none` runs them in the current environment (what .ci/run does).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import nox

nox.options.sessions = ["tests", "lint", "typecheck", "docs", "wheel"]
nox.options.reuse_existing_virtualenvs = True
ROOT = Path(__file__).parent


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
