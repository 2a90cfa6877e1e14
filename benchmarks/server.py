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
    """Start the embedded server in a temporary directory, migrate it, yield its socket URL."""
    from darasa_db import embedded  # imported here, after the CLI has silenced platformdirs

    root = Path(tempfile.mkdtemp(prefix="darasa-bench-"))
    root.chmod(0o755)  # as root, PostgreSQL runs as the unprivileged "pgserver" user
    directory = root / "pgdata"
    try:
        url = embedded.embedded_url(directory)
        migrate.upgrade(url)
        yield url
    finally:
        embedded._stop(directory)
        shutil.rmtree(root, ignore_errors=True)
