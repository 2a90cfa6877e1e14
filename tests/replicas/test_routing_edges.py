"""Edges of read routing: writes the router learns of only afterwards (`db.connection()`,
`tx.connection`), the primary going down mid-write, a "replica" that is not one, close,
successive event loops, and reads cancelled at random points."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time

import psycopg
import pytest

from cache.helpers import job_info_input, make_user
from darasa_db import DarasaDBError, Database, DatabaseSettings, DatabaseUnavailableError, TagCache
from darasa_db.schemas import UserUpdate
from replica_fixtures import OpenDatabase, Replicated
from replicas.helpers import name_of

RENAME = "UPDATE darasa.users SET name = %s WHERE id = %s"


async def test_a_write_through_db_connection_is_read_back_while_the_replica_is_paused(
    replicated: Replicated, open_db: OpenDatabase
):
    db = open_db()
    ada = await make_user(db, "ada")
    await replicated.wait_caught_up()
    assert await name_of(db, ada.id) == "Ada"
    await replicated.pause_replay()

    async with db.connection() as conn:
        await conn.execute(RENAME, ("Grace", ada.id))
    assert await name_of(db, ada.id) == "Grace"


async def test_a_write_through_tx_connection_is_read_back_while_the_replica_is_paused(
    replicated: Replicated, open_db: OpenDatabase
):
    db = open_db()
    ada = await make_user(db, "ada")
    await replicated.wait_caught_up()
    await replicated.pause_replay()

    async with db.transaction() as tx:
        await tx.connection.execute(RENAME, ("Grace", ada.id))
    assert await name_of(db, ada.id) == "Grace"


async def test_a_write_cut_off_by_the_primary_going_down_leaves_reads_on_the_replica(
    replicated: Replicated, open_db: OpenDatabase
):
    # No ping on checkout: the write is sent on a pooled connection and finds it dead. Whether
    # it committed is unknown, so the next read asks the primary for its position, briefly.
    db = open_db(pool_timeout=60.0, pre_ping_idle=None)
    ada = await make_user(db, "ada")
    await replicated.wait_caught_up()
    await replicated.stop_primary()

    async with asyncio.timeout(20):  # (not the primary pool's 60 s)
        with pytest.raises(DatabaseUnavailableError):
            await db.users.update(ada.id, UserUpdate(name="Grace"))
        assert await name_of(db, ada.id) == "Ada"

    fresh = open_db(pool_timeout=60.0)  # never reached the primary: its write cannot connect
    async with asyncio.timeout(20):
        with pytest.raises(DatabaseUnavailableError):
            await fresh.users.update(ada.id, UserUpdate(name="Grace"))
        assert await name_of(fresh, ada.id) == "Ada"


async def test_a_replica_url_that_is_not_in_recovery_is_left_out(
    replicated: Replicated, open_db: OpenDatabase, caplog: pytest.LogCaptureFixture
):
    # The primary given as its own "replica": its positions mean nothing to the router.
    db = open_db(replica_urls=(replicated.primary_url,))
    ada = await make_user(db, "ada")
    with caplog.at_level(logging.WARNING, logger="darasa_db"):
        assert await name_of(db, ada.id) == "Ada"
    assert "not in recovery" in caplog.text
    await db.users.update(ada.id, UserUpdate(name="Grace"))
    assert await name_of(db, ada.id) == "Grace"


def _our_backends(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = 'darasa-db'"
        ).fetchone()
    assert row is not None
    return int(row[0])


async def test_close_leaves_no_connection_on_the_replica_and_reads_raise(
    replicated: Replicated, open_db: OpenDatabase
):
    db = open_db()
    ada = await make_user(db, "ada")
    await replicated.wait_caught_up()
    assert await name_of(db, ada.id) == "Ada"
    assert _our_backends(replicated.replica_url) >= 1  # the read opened the replica's pool

    await db.close()
    with pytest.raises(DarasaDBError, match="closed"):
        await db.users.get(ada.id)
    assert await asyncio.to_thread(_wait_no_backends, replicated.replica_url)


def test_one_database_with_a_replica_serves_successive_event_loops(replicated: Replicated):
    db = Database(
        DatabaseSettings(
            url=replicated.primary_url, replica_urls=(replicated.replica_url,), test_mode=True
        ),
        cache=TagCache(),
    )

    async def rename_and_read(name: str) -> str | None:
        await db.users.update("user_ada", UserUpdate(name=name))
        return await name_of(db, "user_ada")

    asyncio.run(make_user(db, "ada"))
    replicated.pair.wait_caught_up()
    assert asyncio.run(name_of(db, "user_ada")) == "Ada"  # a new loop: the pools reopen there
    replicated.pair.pause_replay()
    assert asyncio.run(rename_and_read("Grace")) == "Grace"  # and the write is still tracked
    asyncio.run(db.close())
    assert _wait_no_backends(replicated.replica_url)


def _wait_no_backends(url: str) -> bool:
    """True once `url` holds none of our backends (they end a moment after their client)."""
    for _ in range(50):
        if _our_backends(url) == 0:
            return True
        time.sleep(0.1)
    return False


async def test_reads_cancelled_at_random_points_lose_no_replica_connection(
    replicated: Replicated, open_db: OpenDatabase
):
    db = open_db(cache=TagCache())
    ada = await make_user(db, "ada")
    job = await db.job_infos.create(ada.id, job_info_input("Acme"))
    await replicated.wait_caught_up()
    rng = random.Random(7)

    async def one() -> None:
        call = rng.choice(
            (
                lambda: db.users.get(ada.id),
                lambda: db.job_infos.list_for_user(ada.id),
                lambda: db.job_infos.get(job.id, user_id=ada.id),
            )
        )
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(rng.uniform(0, 0.004)):  # as a request timeout does
                await call()

    for _ in range(25):
        await asyncio.gather(*(one() for _ in range(8)))
    # Every slot of both pools can be had again, and the replica holds no more than its pool.
    results = await asyncio.gather(*(db.job_infos.get(job.id, user_id=ada.id) for _ in range(10)))
    assert all(r == job for r in results)
    assert _our_backends(replicated.replica_url) <= db.settings.max_connections
