"""Edges of read routing: writes the router learns of only afterwards (`db.connection()`,
`tx.connection`), a write refused while the primary is down, and a "replica" that is not one."""

from __future__ import annotations

import asyncio
import logging

import psycopg
import pytest

from cache.helpers import make_user
from darasa_db import DarasaDBError, DatabaseUnavailableError
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
    for _ in range(50):  # backends end a moment after their client hangs up
        if _our_backends(replicated.replica_url) == 0:
            break
        await asyncio.sleep(0.1)
    assert _our_backends(replicated.replica_url) == 0
