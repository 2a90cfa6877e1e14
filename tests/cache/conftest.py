"""Fixtures of the cache tests: Databases on this test's database with a listening cache."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from cache.helpers import RecordingCache, make_user, open_database
from darasa_db import Database
from darasa_db.schemas import User


@pytest.fixture
async def db(darasa_database_url: str) -> AsyncIterator[Database]:
    """A Database with a `RecordingCache`, its listener already listening."""
    database = await open_database(darasa_database_url, RecordingCache(), application_name="a")
    yield database
    await database.close()


@pytest.fixture
async def other_db(darasa_database_url: str) -> AsyncIterator[Database]:
    """A second Database on the same database (its own pool and cache): another process."""
    database = await open_database(darasa_database_url, RecordingCache(), application_name="b")
    yield database
    await database.close()


@pytest.fixture
def cache(db: Database) -> RecordingCache:
    """The cache of `db`."""
    assert isinstance(db.cache, RecordingCache)
    return db.cache


@pytest.fixture
async def alice(db: Database) -> User:
    return await make_user(db, "alice")
