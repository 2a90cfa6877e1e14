"""`Database.embedded()`: a pgserver PostgreSQL in `DARASA_DB_EMBEDDED_DIR`, reused later."""

import asyncio
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from darasa_db import Database, embedded, migrate
from darasa_db.schemas import UserUpsert
from darasa_db.testing.servers import _pg_ctl


@pytest.fixture
def embedded_dir(monkeypatch) -> Iterator[Path]:
    """A fresh data directory for the embedded server; the server is stopped afterwards."""
    root = Path(tempfile.mkdtemp(prefix="darasa-db-embedded-"))
    os.chmod(root, 0o755)  # as root, pgserver runs PostgreSQL as the unprivileged "pgserver"
    datadir = root / "pgdata"
    monkeypatch.setenv("DARASA_DB_EMBEDDED_DIR", str(datadir))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    try:
        yield datadir
    finally:
        started = embedded._servers.pop(datadir.resolve(), None)
        if started is not None:
            _pg_ctl(datadir, "stop", "-m", "fast")
        shutil.rmtree(root, ignore_errors=True)


async def postmaster_started(db: Database) -> object:
    async with db.transaction() as tx:
        cur = await tx.connection.execute("SELECT pg_postmaster_start_time()")
        row = await cur.fetchone()
    assert row is not None
    return row[0]


@pytest.mark.embedded_smoke
async def test_embedded_database_starts_pgserver_then_reuses_it(embedded_dir):
    assert embedded.data_directory() == embedded_dir

    first = Database.embedded()
    second = None
    try:
        assert (embedded_dir / "PG_VERSION").is_file()
        url = first.settings.url
        assert await asyncio.to_thread(migrate.upgrade, url)  # a fresh server: all revisions
        assert await asyncio.to_thread(migrate.check, url)
        user = await first.users.upsert(UserUpsert(id="user_emb", email="e@b.co", name="Em"))

        second = Database.embedded()

        assert second.settings.url == first.settings.url
        assert await postmaster_started(second) == await postmaster_started(first)
        assert await second.users.get("user_emb") == user
        assert await asyncio.to_thread(migrate.upgrade, url) == []  # already at head
    finally:
        await first.close()
        if second is not None:
            await second.close()
