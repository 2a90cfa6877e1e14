"""A dedicated PostgreSQL for fault tests: killing it disturbs no other test of the run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from darasa_db import migrate
from darasa_db.testing.plugin import create_database
from darasa_db.testing.servers import TestServer, start_server


@pytest.fixture(scope="module")
def fault_server() -> Iterator[TestServer]:
    """A separate server of the session's kind, which tests may `.kill()` and `.start()`."""
    server = start_server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def fault_database_url(fault_server: TestServer) -> str:
    """A migrated database on the dedicated server, shared by the module's tests."""
    url = create_database(fault_server.url, "darasa_faults")
    migrate.upgrade(url)
    return url
