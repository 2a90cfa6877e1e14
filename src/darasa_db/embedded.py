"""The embedded default: a pgserver PostgreSQL with pgvector in a per-user data directory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from darasa_db.errors import ConfigurationError

__all__ = ["data_directory", "embedded_url"]

_servers: dict[Path, Any] = {}


def data_directory() -> Path:
    """Where the embedded server keeps its data (`DARASA_DB_EMBEDDED_DIR` overrides)."""
    override = os.environ.get("DARASA_DB_EMBEDDED_DIR")
    if override:
        return Path(override)
    try:
        import platformdirs
    except ImportError:
        raise ConfigurationError(
            "no database configured and the embedded extra is not installed: set DATABASE_URL "
            "or pip install 'darasa-db[embedded]'"
        ) from None
    return Path(platformdirs.user_data_dir("darasa-db", appauthor=False)) / "pgdata"


def embedded_url(directory: Path | None = None) -> str:
    """Start (or reuse) the embedded server and return its URL."""
    try:
        import pgserver
    except ImportError:
        raise ConfigurationError(
            "no database configured and the embedded extra is not installed: set DATABASE_URL "
            "or pip install 'darasa-db[embedded]'"
        ) from None
    path = (directory or data_directory()).resolve()
    server = _servers.get(path)
    if server is None:
        path.mkdir(parents=True, exist_ok=True)
        server = _servers[path] = pgserver.get_server(path, cleanup_mode=None)
    return str(server.get_uri())
