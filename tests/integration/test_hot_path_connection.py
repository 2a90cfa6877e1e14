"""`Connector.connection()`, the borrow under every pooled call: whatever ends the block (its
own exception, a driver error, a transaction left open, a cancellation at any point), the
connection goes back to the pool, and the caller sees what the block did."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import psycopg
import pytest

from darasa_db import DarasaDBError, DatabaseSettings
from darasa_db._connector import Connector


class BlockError(Exception):
    """An error of the caller's own, raised inside the block."""


@pytest.fixture
async def connector(darasa_database_url: str) -> AsyncIterator[Connector]:
    """A connector whose pool holds one connection: a connection not returned blocks the next
    borrow, which then fails after `pool_timeout`."""
    settings = DatabaseSettings(
        url=darasa_database_url, test_mode=False, pool_size=1, max_overflow=0, pool_timeout=2
    )
    connector = Connector(settings)
    async with connector.connection() as conn:
        await conn.execute("CREATE TABLE IF NOT EXISTS hot_path (n int)")
    yield connector
    await connector.close()


async def _rows(connector: Connector) -> list[int]:
    """The rows of `hot_path` seen by the next borrow (also proves the one slot is free)."""
    async with connector.connection() as conn:
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        cur = await conn.execute("SELECT n FROM hot_path ORDER BY n")
        return [row[0] for row in await cur.fetchall()]


async def _block(
    connector: Connector, *statements: str, error: BaseException | None = None
) -> None:
    """Run `statements` in one borrow, then raise `error` inside the block when given."""
    async with connector.connection() as conn:
        for statement in statements:
            await conn.execute(statement)
        if error is not None:
            raise error


async def test_the_blocks_own_exception_comes_out_unchanged(connector: Connector) -> None:
    error = BlockError("mine")
    with pytest.raises(BlockError) as caught:
        await _block(connector, "INSERT INTO hot_path VALUES (1)", error=error)
    assert caught.value is error
    assert caught.traceback[-1].name == "_block"  # raised where the caller raised it
    assert await _rows(connector) == [1]  # autocommit: what ran before the raise stands


async def test_a_driver_error_in_the_block_becomes_a_darasa_error(connector: Connector) -> None:
    with pytest.raises(DarasaDBError) as caught:
        await _block(connector, "SELECT * FROM no_such_table")
    assert isinstance(caught.value.__cause__, psycopg.errors.UndefinedTable)
    assert await _rows(connector) == []


async def test_a_transaction_left_open_is_committed_when_the_block_succeeds(
    connector: Connector,
) -> None:
    async with connector.connection() as conn:
        await conn.execute("BEGIN")
        await conn.execute("INSERT INTO hot_path VALUES (2)")
    assert await _rows(connector) == [2]


async def test_a_transaction_left_open_is_rolled_back_when_the_block_raises(
    connector: Connector,
) -> None:
    with pytest.raises(BlockError):
        await _block(connector, "BEGIN", "INSERT INTO hot_path VALUES (3)", error=BlockError())
    assert await _rows(connector) == []


async def test_a_failed_commit_raises_translated_and_returns_the_connection(
    connector: Connector,
) -> None:
    async with connector.connection() as conn:
        await conn.execute(
            "ALTER TABLE hot_path ADD CONSTRAINT one UNIQUE (n) DEFERRABLE INITIALLY DEFERRED"
        )
    with pytest.raises(DarasaDBError) as caught:  # the INSERT passes, the COMMIT fails
        await _block(connector, "BEGIN", "INSERT INTO hot_path VALUES (4), (4)")
    assert isinstance(caught.value.__cause__, psycopg.errors.UniqueViolation)
    assert await _rows(connector) == []


async def test_a_call_cancelled_while_the_server_works_returns_its_connection(
    connector: Connector,
) -> None:
    async def slow() -> None:
        async with connector.connection() as conn:
            await conn.execute("INSERT INTO hot_path VALUES (5)")
            await conn.execute("SELECT pg_sleep(30)")

    task = asyncio.ensure_future(slow())
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.wait_for(_rows(connector), 5) == [5]


async def test_a_cancellation_during_the_commit_lets_it_finish_and_returns_the_connection(
    connector: Connector,
) -> None:
    async with connector.connection() as conn:  # a COMMIT that takes 0.5 s
        await conn.execute(
            "CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN PERFORM pg_sleep(0.5); RETURN NULL; END $$"
        )
        await conn.execute(
            "CREATE CONSTRAINT TRIGGER slow AFTER INSERT ON hot_path DEFERRABLE INITIALLY "
            "DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit()"
        )
    committing = asyncio.Event()

    async def block() -> None:
        async with connector.connection() as conn:
            await conn.execute("BEGIN")
            await conn.execute("INSERT INTO hot_path VALUES (6)")
            committing.set()

    task = asyncio.ensure_future(block())
    await committing.wait()
    await asyncio.sleep(0.1)  # the COMMIT is running
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)  # (the commit absorbs it: it happened)
    assert await asyncio.wait_for(_rows(connector), 5) == [6]


async def test_a_block_closed_by_the_garbage_collector_closes_its_connection(
    connector: Connector,
) -> None:
    held: list[psycopg.AsyncConnection[object]] = []
    forever: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def abandoned() -> None:
        async with connector.connection() as conn:
            held.append(conn)
            await forever

    coro = abandoned()
    coro.send(None)  # borrowed, now waiting; nothing will ever resume it
    coro.close()  # as when its event loop is gone and the coroutine is collected
    assert held[0].closed
    forever.cancel()
