"""Regressions from review: long schema channels, close during first use, pool waits, RLS."""

from __future__ import annotations

import asyncio
import contextlib

import psycopg
import pytest

from darasa_db import (
    DarasaDBError,
    Database,
    DatabaseSettings,
    DatabaseUnavailableError,
    migrate,
    rls,
)
from darasa_db.database import cache_channel
from darasa_db.schemas import UserUpsert


def test_cache_channel_of_a_long_schema_fits_postgres_identifier_limit():
    long_schema = "s" * 63

    assert cache_channel("darasa") == "darasa_cache_darasa"
    assert len(cache_channel(long_schema).encode()) <= 63
    assert cache_channel(long_schema) != cache_channel("s" * 62)


async def test_writes_work_in_a_schema_with_a_long_name(darasa_database_url):
    schema = "tenant_" + "x" * 50
    migrate.upgrade(darasa_database_url, schema=schema)
    settings = DatabaseSettings(url=darasa_database_url, schema_name=schema, test_mode=True)
    async with Database(settings) as db:
        user = await db.users.upsert(UserUpsert(id="u1", email="u1@example.com", name="U"))
        assert await db.users.get("u1") == user


async def test_close_during_first_use_leaves_no_pool_or_listener(darasa_database_url):
    db = Database(DatabaseSettings(url=darasa_database_url, test_mode=True))
    call = asyncio.ensure_future(db.users.get("u1"))
    await asyncio.sleep(0)  # the call is opening the pool
    await db.close()

    with contextlib.suppress(DarasaDBError):
        await call
    assert db._connector._pool is None
    assert db._invalidator._listener is None
    with pytest.raises(DarasaDBError, match="closed"):
        await db.users.get("u1")


async def test_an_exhausted_pool_fails_a_read_once_without_retrying(darasa_database_url):
    settings = DatabaseSettings(url=darasa_database_url, test_mode=True, pool_timeout=0.5)
    async with Database(settings, cache=None) as db:
        pool = await db.pool()
        held = [await pool.getconn() for _ in range(db.max_connections)]
        try:
            before = pool.get_stats().get("requests_errors", 0)
            with pytest.raises(DatabaseUnavailableError, match="no connection within"):
                await db.users.get("u1")
            assert pool.get_stats().get("requests_errors", 0) - before == 1
        finally:
            for conn in held:
                await pool.putconn(conn)


def test_downgrading_row_level_security_also_clears_force(darasa_database_url):
    rls.enable(darasa_database_url, force=True)
    migrate.downgrade(darasa_database_url, "0001")
    migrate.upgrade(darasa_database_url)

    with psycopg.connect(darasa_database_url) as conn:
        forced = conn.execute(
            "SELECT bool_or(relforcerowsecurity) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'darasa'"
        ).fetchone()
    assert forced == (False,)
