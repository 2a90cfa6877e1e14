"""Failover: no replica answering → reads from the primary; the primary down → reads from the
replica (when it has replayed what the Database wrote), writes raise DatabaseUnavailableError.
"""

from __future__ import annotations

import asyncio

import pytest

from cache.helpers import eventually, job_info_input, make_user
from darasa_db import Database, DatabaseUnavailableError, TagCache
from darasa_db._replicas import _positions
from darasa_db.schemas import UserUpdate
from replica_fixtures import OpenDatabase, Replicated
from replicas.helpers import EMBEDDING, RENAME, document_input, name_of, on_primary


async def test_reads_go_to_the_primary_while_the_replica_is_stopped(
    replicated: Replicated, open_db: OpenDatabase
):
    ada = await make_user(open_db(replicas=False), "ada")
    await replicated.wait_caught_up()
    reader = open_db()
    assert await name_of(reader, ada.id) == "Ada"

    await replicated.stop_replica()
    on_primary(replicated.primary_url, RENAME, "Changed", ada.id)
    names = [await name_of(reader, ada.id) for _ in range(5)]
    assert names == ["Changed"] * 5  # the primary's, and no error
    assert await reader.job_infos.list_for_user(ada.id) == []


async def test_the_replica_serves_again_once_it_is_back(
    replicated: Replicated, open_db: OpenDatabase
):
    ada = await make_user(open_db(replicas=False), "ada")
    reader = open_db()
    await replicated.stop_replica()
    assert await name_of(reader, ada.id) == "Ada"  # from the primary

    await replicated.start_replica()
    await replicated.wait_caught_up()
    await replicated.pause_replay()
    on_primary(replicated.primary_url, RENAME, "Changed", ada.id)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while await name_of(reader, ada.id) != "Ada":  # "Ada": the replica served the read
        assert loop.time() < deadline, "the restarted replica served no read within 60 s"
        await asyncio.sleep(0.2)


@pytest.mark.parametrize("cached", [False, True], ids=["uncached", "cached"])
async def test_a_replica_down_at_start_leaves_the_database_working(
    replicated: Replicated, open_db: OpenDatabase, cached: bool
):
    ada = await make_user(open_db(replicas=False), "ada")
    await replicated.stop_replica()
    on_primary(replicated.primary_url, RENAME, "Changed", ada.id)

    db = open_db(cache=TagCache() if cached else None)
    assert await name_of(db, ada.id) == "Changed"
    await db.users.update(ada.id, UserUpdate(name="Grace"))
    assert await name_of(db, ada.id) == "Grace"
    assert await db.health_check() is True


@pytest.mark.parametrize("mode", ["fast", "immediate"])
@pytest.mark.parametrize("cached", [False, True], ids=["uncached", "cached"])
async def test_reads_are_served_by_the_replica_while_the_primary_is_stopped(
    replicated: Replicated, open_db: OpenDatabase, cached: bool, mode: str
):
    quick = {"pool_timeout": 2.0, "connect_timeout": 2.0}  # to give up on the primary
    db = open_db(cache=TagCache() if cached else None, **quick)
    ada = await make_user(db, "ada")
    job = await db.job_infos.create(ada.id, job_info_input("Acme"))
    document = await db.documents.create(ada.id, document_input("Notes"))
    if cached:  # cached reads need the position the listener took on the writes' notices
        await _listener_caught_up(db)
    await replicated.wait_caught_up()  # the replica has what this Database wrote and heard

    await replicated.stop_primary(mode)  # immediate: a crash
    assert await name_of(db, ada.id) == "Ada"
    assert [j.id for j in await db.job_infos.list_for_user(ada.id)] == [job.id]
    matches = await db.documents.similarity_search(EMBEDDING, user_id=ada.id)
    assert [m.document.id for m in matches] == [document.id]

    fresh = open_db(cache=TagCache() if cached else None, **quick)  # the primary is down
    assert await name_of(fresh, ada.id) == "Ada"
    assert await fresh.job_infos.get(job.id, user_id=ada.id) == job

    with pytest.raises(DatabaseUnavailableError):
        await db.users.update(ada.id, UserUpdate(name="Grace"))
    with pytest.raises(DatabaseUnavailableError):
        async with db.transaction() as tx:
            await tx.job_infos.create(ada.id, job_info_input("Globex"))
    with pytest.raises(DatabaseUnavailableError):
        await fresh.job_infos.create(ada.id, job_info_input("Initech"))

    await replicated.start_primary()
    await db.users.update(ada.id, UserUpdate(name="Grace"))
    assert await name_of(db, ada.id) == "Grace"


async def test_a_read_the_replica_cannot_serve_fails_rather_than_go_stale(
    replicated: Replicated, open_db: OpenDatabase
):
    db = open_db()
    ada = await make_user(db, "ada")
    await replicated.wait_caught_up()
    await replicated.pause_replay()
    await db.users.update(ada.id, UserUpdate(name="Grace"))  # not replayed by the replica
    await replicated.stop_primary()

    try:
        name = await name_of(db, ada.id)
    except DatabaseUnavailableError:
        return  # the honest answer: no server can serve a read that reflects the write
    pytest.fail(f"read {name!r} with the primary down and the replica behind the write")


async def test_reads_fail_clearly_with_both_servers_down_and_work_again_once_back(
    replicated: Replicated, open_db: OpenDatabase
):
    db = open_db(connect_timeout=2, pool_timeout=3)
    ada = await make_user(db, "ada")
    await replicated.wait_caught_up()
    await replicated.stop_replica()
    await replicated.stop_primary()

    with pytest.raises(DatabaseUnavailableError):
        await db.users.get(ada.id)

    await replicated.start_primary()
    await replicated.start_replica()
    await replicated.wait_caught_up()

    async def reads_again() -> bool:
        try:
            return await name_of(db, ada.id) == "Ada"
        except DatabaseUnavailableError:
            return False

    await eventually(reads_again, within=30, what="reads work again once both are back")
    await db.users.update(ada.id, UserUpdate(name="Grace"))
    assert await name_of(db, ada.id) == "Grace"


async def _listener_caught_up(db: Database) -> None:
    """Until `db`'s listener has applied every notice sent so far (a marker notice, sent after
    them, has invalidated its tag): each applied batch has recorded the primary's position."""
    assert db.cache is not None
    db.cache.set(("marker",), True, tags=("marker",))
    async with db.connection() as conn:
        await conn.execute("SELECT pg_notify(%s, %s)", (db.channel, '["test-marker",["marker"]]'))
    await eventually(lambda: ("marker",) not in db.cache, what="the listener reached the marker")


async def test_a_session_with_synchronous_commit_off_counts_its_insert_position_as_flushed(
    replicated: Replicated, open_db: OpenDatabase
):
    """Its commits are acknowledged before they are flushed: the flush position read after one
    could be behind it, and a read while the primary is down could miss the write."""
    db = open_db()
    async with db.connection() as conn:
        await conn.execute("SELECT pg_notify('darasa_test', 'x')")  # a commit flushed later
        inserted, flushed = await _positions(conn)
        assert flushed <= inserted
        await conn.execute("SET synchronous_commit = off")
        await conn.execute("SELECT pg_notify('darasa_test', 'x')")
        inserted, flushed = await _positions(conn)
        assert flushed == inserted
        await conn.execute("RESET synchronous_commit")
