"""Review of the read replicas (issue 15): holes found, each shown against the real pair.

Each test failed before its fix (listener settles notices read during a heartbeat; positions
of acknowledged writes are owed, never given up; `db.connection()` commits and records its
position inside its block; replicas are asked again after `RECHECK`; a replica that stops
answering is cut off after `CATCH_UP_WAIT`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import AsyncIterator

import psycopg
import pytest

from cache.helpers import RecordingCache, eventually, make_user
from darasa_db import Database, DatabaseSettings, DatabaseUnavailableError, migrate
from darasa_db._connector import Pool
from darasa_db.cache.tags import id_tag
from darasa_db.schemas import UserUpdate
from replica_fixtures import TEMPLATE, OpenDatabase, Replicated
from replica_pair import ReplicaPair
from replicas.helpers import RENAME, name_of, on_primary, read_then_paused


async def _replayed_all_inserted(replicated: Replicated) -> None:
    """Until the replica has replayed the primary's WAL insert position as of now (the
    positions the router records): `wait_caught_up` compares with the write position, which
    lags behind the commit records of NOTIFY-only transactions (the listener's probes) until the
    WAL writer flushes them."""
    query = "SELECT pg_current_wal_insert_lsn()::text"
    with psycopg.connect(replicated.primary_url, autocommit=True) as conn:
        row = conn.execute(query.encode()).fetchone()
    assert row is not None
    await eventually(
        lambda: replicated.pair.replayed(str(row[0])), what="the replica replays the insert LSN"
    )


@contextlib.asynccontextmanager
async def _holding_every_connection(db: Database) -> AsyncIterator[Pool]:
    """Every connection of `db`'s primary pool borrowed (straight from the psycopg pool, so the
    router records nothing) until the block ends."""
    pool = await db.pool()
    release = asyncio.Event()
    held = 0

    async def hold() -> None:
        nonlocal held
        async with pool.connection():
            held += 1
            await release.wait()

    tasks = [asyncio.create_task(hold()) for _ in range(pool.max_size)]
    try:
        await eventually(lambda: held == pool.max_size, what="every connection is held")
        yield pool
    finally:
        release.set()
        await asyncio.gather(*tasks)


# Found in review: the listener's heartbeat round trip applies other processes' notices it reads
# while waiting for its probe without calling settle(): the invalidation lands,
# router.invalidated stays behind it, and the reload reads the paused replica and caches the
# old row for the TTL
async def test_an_invalidation_read_during_the_heartbeat_is_not_reloaded_from_the_replica(
    replicated: Replicated, open_db: OpenDatabase
):
    a = open_db(cache=RecordingCache(), pool_timeout=60.0)  # the heartbeat waits for the pool
    b = open_db(cache=None, replicas=False)  # another process, writing on the primary
    ada = await make_user(b, "ada")
    await replicated.wait_caught_up()
    assert await name_of(a, ada.id) == "Ada"
    await eventually(lambda: a.cache_ready, what="A's listener listens")
    await _replayed_all_inserted(replicated)  # past the position A's listener recorded
    assert await name_of(a, ada.id) == "Ada"  # cached by A
    a_cache = a.cache
    assert isinstance(a_cache, RecordingCache)
    await replicated.pause_replay()

    async with _holding_every_connection(a) as pool:
        # A's listener reaches its heartbeat (every 10 s) and waits for a pool connection to
        # send its probe; meanwhile B's notice arrives on the listening connection.
        await eventually(
            lambda: pool.get_stats().get("requests_waiting", 0) >= 1,
            within=20,
            what="A's heartbeat waits to send its probe",
        )
        await b.users.update(ada.id, UserUpdate(name="Grace"))
        await asyncio.sleep(0.5)
    await eventually(
        lambda: id_tag("users", ada.id) in a_cache.all_invalidated(),
        what="A applied B's notice",
    )

    assert await name_of(a, ada.id) == "Grace", "reloaded from the replica paused before it"


# Found in review: an acknowledged write whose WAL position could not be read (router.wrote()
# swallows the error and calls unsure()) is treated as unacknowledged: with the primary
# unreachable, _settle gives up and the paused replica serves the row as it was before the
# write
async def test_a_committed_write_whose_position_was_lost_is_not_read_stale(
    replicated: Replicated, open_db: OpenDatabase
):
    db = open_db(connect_timeout=2, pool_timeout=2)
    ada = await read_then_paused(replicated, db, db)

    async with db.connection() as conn:
        await conn.execute(RENAME, ("Grace", ada.id))  # autocommit: committed, and it returned
        await replicated.stop_primary("immediate")  # before the Database reads its position
    # The block ended without an error: the write stands and was acknowledged.

    try:
        name = await name_of(db, ada.id)
    except DatabaseUnavailableError:
        return  # honest: no server can show the write
    assert name == "Grace", "a committed write was read back stale from the paused replica"


# Found in review: db.connection() with a transaction left open only calls unsure() (the commit
# happens on return); the next read gives the primary CATCH_UP_WAIT = 1 s for its position, and
# a busy primary pool makes it read the paused replica: read-your-writes by a timer, not
# exactly
async def test_a_transaction_committed_by_db_connection_is_read_back_with_a_busy_primary(
    replicated: Replicated, open_db: OpenDatabase
):
    db = open_db(pool_timeout=30.0)
    ada = await read_then_paused(replicated, db, db)

    async with db.connection() as conn:
        await conn.execute("BEGIN")
        await conn.execute(RENAME, ("Grace", ada.id))
    # committed when the connection went back: acknowledged

    async with _holding_every_connection(db):  # the primary is up, only busy for a few seconds
        reading = asyncio.create_task(name_of(db, ada.id))
        await asyncio.sleep(3)
    assert await reading == "Grace", "read the paused replica: the primary was busy for 1 s"


# Found in review: a cancellation that arrives while db.connection() records the primary's
# position (after the block's writes committed) skips both wrote() and unsure(): later reads
# trust the paused replica, against the docs ('any use of db.connection() makes the next read
# ask the primary')
async def test_a_cancellation_while_db_connection_records_its_position_leaves_no_stale_read(
    replicated: Replicated, open_db: OpenDatabase
):
    db = open_db()
    ada = await read_then_paused(replicated, db, db)

    task = asyncio.current_task()
    assert task is not None

    async def rename_then_cancelled() -> None:
        async with db.connection() as conn:
            await conn.execute(RENAME, ("Grace", ada.id))  # autocommit: committed
            task.cancel()  # delivered at the next wait: the position query on the way out

    with pytest.raises(asyncio.CancelledError):
        await rename_then_cancelled()
    task.uncancel()

    assert await name_of(db, ada.id) == "Grace", "the committed rename read stale"


# Found in review: a replica promoted while in use keeps serving: reader() trusts
# replica.replayed >= needed without asking again whether it is in recovery, so a Database that
# wrote nothing reads the promoted server's frozen copy forever (the docs say a server not in
# recovery is left out)
async def test_a_replica_promoted_while_in_use_stops_serving_reads():
    pair = await asyncio.to_thread(lambda: ReplicaPair().build())
    db: Database | None = None
    try:
        await asyncio.to_thread(pair.create_database, TEMPLATE)
        primary_url = pair.url_for(pair.primary_url, TEMPLATE)
        await asyncio.to_thread(migrate.upgrade, primary_url)
        writer = Database(DatabaseSettings(url=primary_url, test_mode=True), cache=None)
        try:
            ada = await make_user(writer, "ada")
        finally:
            await writer.close()
        await asyncio.to_thread(pair.wait_caught_up)
        db = Database(
            DatabaseSettings(
                url=primary_url,
                replica_urls=(pair.url_for(pair.replica_url, TEMPLATE),),
                test_mode=True,
            ),
            cache=None,
        )
        assert await name_of(db, ada.id) == "Ada"  # the replica's position is now known

        await asyncio.to_thread(pair._replica_execute, "SELECT pg_promote()")
        on_primary(primary_url, RENAME, "Grace", ada.id)  # the old primary goes on writing

        reader = db

        async def reads_the_primary() -> bool:
            return await name_of(reader, ada.id) == "Grace"

        # (within a few seconds: a fix may re-check recovery now and then, not on every read)
        await eventually(reads_the_primary, within=10, what="reads leave the promoted server")
    finally:
        if db is not None:
            await db.close()
        await asyncio.to_thread(pair.destroy)


def _replica_processes(pair: ReplicaPair) -> list[int]:
    """The replica's postmaster and every process it started."""
    postmaster = int((pair.replica_dir / "postmaster.pid").read_text().split()[0])
    children = subprocess.run(
        ["pgrep", "-P", str(postmaster)], capture_output=True, text=True, check=False
    ).stdout.split()
    return [postmaster, *(int(pid) for pid in children)]


# Found in review: nothing bounds the router's replica check (_caught_up: the pool's pre-ping at
# checkout, then the position query) nor a read on a replica: with statement_timeout unset, a
# replica that stops answering (frozen VM, a partition that drops packets) holds reads up for
# as long as it is frozen, while the primary is up
async def test_a_replica_that_stops_answering_does_not_hold_reads_up(
    replicated: Replicated, open_db: OpenDatabase
):
    db = open_db()
    ada = await make_user(db, "ada")
    await replicated.wait_caught_up()
    assert await name_of(db, ada.id) == "Ada"  # the replica's pool is open
    await db.users.update(ada.id, UserUpdate(name="Grace"))  # the next read asks the replica

    frozen = _replica_processes(replicated.pair)
    for pid in frozen:
        os.kill(pid, signal.SIGSTOP)
    try:
        read = asyncio.create_task(name_of(db, ada.id))
        done, _ = await asyncio.wait({read}, timeout=12)
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
    name = await read  # (it ends once the replica answers again)
    assert done, "a read waited more than 12 s on a frozen replica with the primary up"
    assert name == "Grace"
