"""Helpers for the connection-factory tests: watching backends from the server's side."""

import asyncio
import socket
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import psycopg
import pytest
import pytest_asyncio


class Backends:
    """Counts the server's backends on one database, seen from a separate superuser session."""

    def __init__(self, conn: psycopg.AsyncConnection, dbname: str) -> None:
        self._conn = conn
        self.dbname = dbname

    async def count(self, application_name: str | None = None) -> int:
        """Client backends connected to the database (optionally with this application_name)."""
        query = (
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = %s AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
        )
        params: list[str] = [self.dbname]
        if application_name is not None:
            query += " AND application_name = %s"
            params.append(application_name)
        cur = await self._conn.execute(query, params)
        row = await cur.fetchone()
        assert row is not None
        return int(row[0])

    async def settled_count(self, expected: int, attempts: int = 200) -> int:
        """Poll (boundedly) until the count is `expected`; backends exit after the client left."""
        seen = await self.count()
        for _ in range(attempts):
            if seen == expected:
                break
            await asyncio.sleep(0.05)
            seen = await self.count()
        return seen


@pytest_asyncio.fixture
async def backends(darasa_server, darasa_database_url) -> AsyncIterator[Backends]:
    """Backend counter for this test's database (the observer sits on the `postgres` db)."""
    dbname = urlsplit(darasa_database_url).path.lstrip("/")
    conn = await psycopg.AsyncConnection.connect(
        darasa_server.url, autocommit=True, application_name="darasa-test-observer"
    )
    try:
        yield Backends(conn, dbname)
    finally:
        await conn.close()


@pytest.fixture
def closed_port() -> int:
    """A local TCP port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
