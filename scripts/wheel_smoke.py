"""Smoke test of the built wheel, run by `nox -s wheel` with the fresh venv's python.

Proves the install stands alone: darasa_db is imported from the venv (never the checkout),
the migrations travel inside the package, an empty embedded database migrates to head, and
the venv's `darasa-db check` console script agrees. The embedded server is stopped at the end.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent


def _outside_checkout(entry: str) -> bool:
    path = Path(entry or ".").resolve()
    return path != CHECKOUT and CHECKOUT not in path.parents


# `python scripts/wheel_smoke.py` puts scripts/ first on sys.path, and PYTHONPATH may name
# the checkout's src/: drop both so only the installed wheel can be imported.
sys.path[:] = [entry for entry in sys.path if _outside_checkout(entry)]

import darasa_db  # noqa: E402
from darasa_db import migrate  # noqa: E402
from darasa_db.embedded import data_directory, embedded_url  # noqa: E402


def _fail(message: str) -> None:
    print(f"wheel smoke: FAILED: {message}", file=sys.stderr)
    raise SystemExit(1)


def _check_installed_package() -> Path:
    package = Path(darasa_db.__file__).resolve().parent
    venv = Path(sys.prefix).resolve()
    if venv not in package.parents:
        _fail(f"darasa_db was imported from {package}, not from the venv {venv}")
    location = migrate.script_location().resolve()
    if location != package / "_migrations":
        _fail(f"migrations found at {location}, not inside the installed package")
    if not (location / "versions" / "0001_initial.py").is_file():
        _fail(f"{location} has no versions/0001_initial.py")
    print(f"wheel smoke: darasa_db {darasa_db.__version__} from {package}")
    print(f"wheel smoke: migrations at {location} ({len(migrate.history())} revisions)")
    return package


def _start_embedded() -> str:
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        return embedded_url()


def _migrate(url: str) -> None:
    applied = migrate.upgrade(url)
    if applied != [r.revision for r in migrate.history()]:
        _fail(f"upgrade of an empty database applied {applied}")
    if not migrate.check(url):
        _fail(f"database is at {migrate.current(url)} after upgrade, not {migrate.head()}")
    print(f"wheel smoke: migrated the embedded database: applied {', '.join(applied)}")


def _run_console_script() -> None:
    command = Path(sys.executable).parent / "darasa-db"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [str(command), "check"], capture_output=True, text=True, env=env, timeout=300, check=False
    )
    if result.returncode != 0:
        _fail(f"`darasa-db check` exited {result.returncode}: {result.stdout}{result.stderr}")
    print(f"wheel smoke: {command.name} check: {result.stdout.strip()}")


def _stop_embedded() -> None:
    from darasa_db.embedded import _stop

    _stop(data_directory())


def main() -> int:
    """Run every check; exit non-zero with a one-line reason on the first failure."""
    if not os.environ.get("DARASA_DB_EMBEDDED_DIR"):
        _fail("DARASA_DB_EMBEDDED_DIR is not set (the nox session sets a temporary one)")
    if os.environ.get("DATABASE_URL") == "":  # the session blanks the host's; `darasa-db`
        del os.environ["DATABASE_URL"]  # refuses an empty one, so unset it for the embedded server
    _check_installed_package()
    url = _start_embedded()
    try:
        _migrate(url)
        _run_console_script()
    finally:
        _stop_embedded()
    print("wheel smoke: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
