"""A private embedded PostgreSQL with pgvector for one benchmark run, migrated to head."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from darasa_db import migrate

__all__ = ["embedded_server"]


@contextmanager
def embedded_server() -> Iterator[str]:
    """Start pgserver in a temporary directory, migrate it, yield its unix-socket URL."""
    import pgserver  # imported here, after the CLI has silenced platformdirs' warnings

    directory = Path(tempfile.mkdtemp(prefix="darasa-bench-"))
    server = pgserver.get_server(directory, cleanup_mode="stop")
    try:
        url = str(server.get_uri())
        migrate.upgrade(url)
        yield url
    finally:
        server.cleanup()
        shutil.rmtree(directory, ignore_errors=True)
