"""`Database`, the connection factory, against the real server.

Lazy construction, the test-mode pool cap, prepared statements, health checks, unreachable
servers, close, `from_url`, the SQLAlchemy engine and a password-free repr.
"""

import asyncio

import psycopg
import pytest
from sqlalchemy import func, select, text

from darasa_db import DarasaDBError, Database, DatabaseSettings, DatabaseUnavailableError, TagCache
from darasa_db.models import UserRow
from darasa_db.schemas import UserUpsert

APP = "darasa-db"  # the default application_name of darasa-db's connections


def settings_for(url: str, **overrides) -> DatabaseSettings:
    return DatabaseSettings(url=url, **overrides)


# ---------------------------------------------------------------- lazy construction


@pytest.mark.embedded_smoke
async def test_constructing_a_database_opens_no_connection(darasa_database_url, backends):
    assert await backends.count() == 0

    db = Database(settings_for(darasa_database_url, test_mode=True))
    assert await backends.count() == 0
    assert "not connected" in repr(db)

    try:
        assert await db.users.get("nobody") is None
        assert await backends.count(APP) >= 1
        assert "open" in repr(db)
    finally:
        await db.close()


async def test_test_mode_is_decided_at_construction(darasa_database_url):
    assert Database(settings_for(darasa_database_url)).test_mode is True  # PYTEST_CURRENT_TEST
    production = Database(settings_for(darasa_database_url, test_mode=False))
    assert production.test_mode is False
    assert production.max_connections == 20


# ---------------------------------------------------------------- pool cap


async def test_test_mode_caps_backends_at_five_under_ten_concurrent_transactions(
    darasa_database_url, backends
):
    db = Database(settings_for(darasa_database_url, test_mode=True))
    inside = peak_inside = 0

    async def unit_of_work(number: int) -> int:
        nonlocal inside, peak_inside
        async with db.transaction() as tx:
            inside += 1
            peak_inside = max(peak_inside, inside)
            await tx.connection.execute("SELECT pg_sleep(0.2)")
            inside -= 1
        return number

    try:
        work = asyncio.gather(*(unit_of_work(n) for n in range(10)))
        peak_backends = 0
        async with asyncio.timeout(60):
            while not work.done():
                peak_backends = max(peak_backends, await backends.count(APP))
                await asyncio.sleep(0.02)
            finished = await work
    finally:
        await db.close()

    assert sorted(finished) == list(range(10))
    assert db.max_connections == 5
    assert 1 <= peak_backends <= 5
    assert 1 <= peak_inside <= 4  # one of the five connections is the cache listener


async def test_production_pool_lets_ten_transactions_hold_connections_at_once(
    darasa_database_url, backends
):
    """The contrast to the cap above: the same workload holds ten backends without test mode."""
    db = Database(settings_for(darasa_database_url, test_mode=False), cache=None)
    all_inside = asyncio.Event()
    entered = 0

    async def unit_of_work() -> None:
        nonlocal entered
        async with db.transaction() as tx:
            await tx.connection.execute("SELECT 1")
            entered += 1
            if entered == 10:
                all_inside.set()
            await all_inside.wait()

    try:
        async with asyncio.timeout(60):
            work = asyncio.gather(*(unit_of_work() for _ in range(10)))
            await all_inside.wait()
            seen = await backends.count(APP)
            await work
    finally:
        await db.close()

    assert seen >= 10


# ---------------------------------------------------------------- prepared statements


async def prepared_statements_after_repeated_gets(url: str, *, test_mode: bool) -> list[str]:
    """The statements prepared on the pool's only connection after ten identical gets."""
    settings = settings_for(url, test_mode=test_mode, pool_size=1, max_overflow=0)
    db = Database(settings, cache=None)  # no cache: every get reaches the server
    try:
        user = await db.users.upsert(UserUpsert(id="user_prep", email="p@b.co", name="Pat"))
        for _ in range(10):
            assert await db.users.get(user.id) == user
        async with db.transaction() as tx:
            cur = await tx.connection.execute("SELECT statement FROM pg_prepared_statements")
            return [str(row[0]) for row in await cur.fetchall()]
    finally:
        await db.close()


async def test_test_mode_prepares_no_server_side_statements(darasa_database_url):
    statements = await prepared_statements_after_repeated_gets(darasa_database_url, test_mode=True)

    assert statements == []


async def test_production_mode_prepares_repository_statements(darasa_database_url):
    statements = await prepared_statements_after_repeated_gets(darasa_database_url, test_mode=False)

    assert any("users" in statement for statement in statements)


# ---------------------------------------------------------------- health check


async def test_health_check_is_true_on_the_real_server(darasa_db):
    assert await darasa_db.health_check() is True


async def test_health_check_returns_false_for_a_closed_port(closed_port):
    db = Database.from_url(f"postgresql://app:pw@127.0.0.1:{closed_port}/appdb", connect_timeout=1)
    try:
        async with asyncio.timeout(15):  # a bound on the wait, not a timing assertion
            healthy = await db.health_check()
    finally:
        await db.close()

    assert healthy is False


# ---------------------------------------------------------------- unreachable server


async def test_first_use_of_an_unreachable_server_raises_database_unavailable(closed_port):
    db = Database.from_url(
        f"postgresql://app:Sup3r-s3cret@127.0.0.1:{closed_port}/appdb", connect_timeout=1
    )
    try:
        with pytest.raises(DatabaseUnavailableError) as caught:
            await db.users.get("user_1")
    finally:
        await db.close()

    error = caught.value
    assert (error.host, error.port) == ("127.0.0.1", closed_port)
    assert f"127.0.0.1:{closed_port}" in str(error)
    assert "refused" in error.cause.lower()
    assert error.cause in str(error)
    assert "Sup3r-s3cret" not in str(error)
    assert not isinstance(error, psycopg.Error)
    assert not isinstance(error.__cause__, psycopg.Error)


async def test_transaction_on_an_unreachable_server_raises_database_unavailable(closed_port):
    db = Database.from_url(f"postgresql://app@127.0.0.1:{closed_port}/appdb", connect_timeout=1)
    try:
        with pytest.raises(DatabaseUnavailableError, match=f"127.0.0.1:{closed_port}"):
            async with db.transaction():
                pass
    finally:
        await db.close()


# ---------------------------------------------------------------- close


async def test_close_twice_is_fine_and_later_calls_raise(darasa_database_url):
    db = Database(settings_for(darasa_database_url, test_mode=True))
    await db.users.upsert(UserUpsert(id="user_c", email="c@b.co", name="Cy"))

    await db.close()
    await db.close()

    assert "closed" in repr(db)
    with pytest.raises(DarasaDBError, match="closed") as caught:
        await db.users.get("user_c")
    assert not caught.value.retryable  # a closed Database stays closed
    with pytest.raises(DarasaDBError, match="closed"):
        async with db.transaction():
            pass
    assert await db.health_check() is False


async def test_close_before_first_use_opens_nothing(darasa_database_url, backends):
    db = Database(settings_for(darasa_database_url, test_mode=True))

    await db.close()
    await db.close()

    assert await backends.count() == 0


async def test_closing_releases_every_backend(darasa_database_url, backends):
    db = Database(settings_for(darasa_database_url, test_mode=True))
    await db.users.get("nobody")
    async with db.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    assert await backends.count() >= 1

    await db.close()

    assert await backends.settled_count(0) == 0


# ---------------------------------------------------------------- constructors, engine, repr


async def test_from_url_builds_a_working_database_with_the_default_cache(darasa_database_url):
    db = Database.from_url(darasa_database_url, test_mode=True, pool_size=2)
    try:
        assert isinstance(db.cache, TagCache)
        assert db.settings.pool_size == 2
        user = await db.users.upsert(UserUpsert(id="user_u", email="u@b.co", name="Uma"))
        assert await db.users.get("user_u") == user
    finally:
        await db.close()
    assert Database.from_url(darasa_database_url, cache=None).cache is None


async def test_sqlalchemy_engine_queries_the_darasa_schema(darasa_db):
    await darasa_db.users.upsert(UserUpsert(id="user_e", email="e@b.co", name="Eve"))

    async with darasa_db.engine.connect() as conn:
        raw = await conn.scalar(text("SELECT email FROM darasa.users WHERE id = 'user_e'"))
        counted = await conn.scalar(select(func.count()).select_from(UserRow))

    assert raw == "e@b.co"
    assert counted == 1
    assert darasa_db.engine is darasa_db.engine


def test_repr_shows_no_password():
    db = Database.from_url("postgresql://app:Sup3r-s3cret@db.internal:6543/appdb")

    shown = repr(db)

    assert "Sup3r-s3cret" not in shown
    assert "db.internal:6543/appdb" in shown
    assert "not connected" in shown
