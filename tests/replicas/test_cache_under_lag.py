"""Caching that lag cannot poison: an invalidation arrives from the primary, and the reload that
follows must not read a replica that has not replayed the write, nor keep a stale value cached.

Database A is cached and routed over the pair; B is another Database on the primary with its
own cache (another process). The replica's replay is paused before the write, so a reload from
the replica would return the old value for as long as the test lasts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from cache.helpers import RecordingCache, eventually, job_info_input, make_user
from darasa_db import Database, TagCache
from darasa_db.cache.tags import id_tag, user_tag
from darasa_db.schemas import UserUpdate
from replica_fixtures import OpenDatabase, Replicated
from replicas.helpers import RENAME, name_of, on_primary, read_then_paused


async def listening(db: Database) -> RecordingCache:
    """`db`'s RecordingCache once its listener listens, with nothing recorded yet."""
    await eventually(lambda: db.cache_ready, what="the cache listener listens")
    assert isinstance(db.cache, RecordingCache)
    db.cache.invalidated.clear()
    return db.cache


def received(cache: RecordingCache, tag: str) -> Callable[[], bool]:
    return lambda: tag in cache.all_invalidated()


async def test_another_databases_update_is_not_reloaded_from_the_lagging_replica(
    replicated: Replicated, open_db: OpenDatabase
):
    a, b = open_db(cache=RecordingCache()), open_db(cache=TagCache(), replicas=False)
    ada = await read_then_paused(replicated, a, b)  # cached by A
    a_cache = await listening(a)

    await b.users.update(ada.id, UserUpdate(name="Grace"))
    await eventually(received(a_cache, id_tag("users", ada.id)), what="A got B's notice")
    names = [await name_of(a, ada.id) for _ in range(3)]
    assert names == ["Grace"] * 3, "A reloaded the old row from the paused replica"
    by_email = await a.users.get_by_email("ada@example.com")
    assert by_email is not None
    assert by_email.name == "Grace"

    await replicated.resume_replay()
    await replicated.wait_caught_up()
    assert await name_of(a, ada.id) == "Grace"  # and it was not cached stale for the TTL


async def test_another_databases_insert_and_delete_reach_a_cached_list(
    replicated: Replicated, open_db: OpenDatabase
):
    a, b = open_db(cache=RecordingCache()), open_db(cache=TagCache(), replicas=False)
    ada = await make_user(b, "ada")
    await replicated.wait_caught_up()
    assert await a.job_infos.list_for_user(ada.id) == []  # cached by A
    a_cache = await listening(a)
    await replicated.pause_replay()

    job = await b.job_infos.create(ada.id, job_info_input("Acme"))
    await eventually(received(a_cache, user_tag("job_infos", ada.id)), what="A got the insert")
    assert [j.id for j in await a.job_infos.list_for_user(ada.id)] == [job.id]
    assert await a.job_infos.get(job.id, user_id=ada.id) == job
    a_cache.invalidated.clear()

    assert await b.job_infos.delete(job.id, user_id=ada.id) is True
    await eventually(received(a_cache, id_tag("job_infos", job.id)), what="A got the delete")
    assert await a.job_infos.get(job.id, user_id=ada.id) is None
    assert await a.job_infos.list_for_user(ada.id) == []

    await replicated.resume_replay()
    await replicated.wait_caught_up()
    assert await a.job_infos.get(job.id, user_id=ada.id) is None
    assert await a.job_infos.list_for_user(ada.id) == []


async def test_a_write_through_the_primary_alone_is_not_reloaded_from_the_lagging_replica(
    replicated: Replicated, open_db: OpenDatabase
):
    """B's cache is off: only A's listener reloads, after a notice carrying B's commit."""
    a, b = open_db(cache=RecordingCache()), open_db(cache=None, replicas=False)
    ada = await read_then_paused(replicated, a, b)  # cached by A
    a_cache = await listening(a)

    await b.users.update(ada.id, UserUpdate(name="Grace"))
    await eventually(received(a_cache, id_tag("users", ada.id)), what="A got B's notice")
    assert await name_of(a, ada.id) == "Grace"


async def test_its_own_write_is_not_reloaded_from_the_lagging_replica(
    replicated: Replicated, open_db: OpenDatabase
):
    a = open_db(cache=RecordingCache())
    ada = await read_then_paused(replicated, a, a)  # cached by A
    a_cache = await listening(a)

    await a.users.update(ada.id, UserUpdate(name="Grace"))
    assert id_tag("users", ada.id) in a_cache.all_invalidated()  # after its commit
    assert await name_of(a, ada.id) == "Grace"
    await asyncio.sleep(0.5)  # whatever A's listener does with the notice meanwhile
    names = [await name_of(a, ada.id) for _ in range(3)]
    assert names == ["Grace"] * 3

    await replicated.resume_replay()
    await replicated.wait_caught_up()
    assert await name_of(a, ada.id) == "Grace"


async def test_a_cached_database_with_the_replica_sees_another_databases_write_after_catch_up(
    replicated: Replicated, open_db: OpenDatabase
):
    """Both A and B cached and routed over the pair, B's write made while A's cache is warm."""
    a, b = open_db(cache=RecordingCache()), open_db(cache=TagCache())
    ada = await read_then_paused(replicated, a, b)  # cached by A
    a_cache = await listening(a)

    async with b.transaction() as tx:
        await tx.users.update(ada.id, UserUpdate(name="Grace"))
    await eventually(received(a_cache, id_tag("users", ada.id)), what="A got B's notice")
    assert await name_of(a, ada.id) == "Grace"
    assert await name_of(b, ada.id) == "Grace"


async def test_cache_loads_go_back_to_the_replica_once_it_has_replayed_the_invalidation(
    replicated: Replicated, open_db: OpenDatabase
):
    a, b = open_db(cache=RecordingCache()), open_db(cache=TagCache(), replicas=False)
    ada = await read_then_paused(replicated, a, b)
    a_cache = await listening(a)
    await b.users.update(ada.id, UserUpdate(name="Grace"))
    await eventually(received(a_cache, id_tag("users", ada.id)), what="A got B's notice")
    assert await name_of(a, ada.id) == "Grace"
    await replicated.resume_replay()

    bob = await make_user(b, "bob")
    await eventually(received(a_cache, id_tag("users", bob.id)), what="A got Bob's notice")
    await replicated.wait_caught_up()  # past every invalidation A has received
    await replicated.pause_replay()
    on_primary(replicated.primary_url, RENAME, "Changed", bob.id)
    assert await name_of(a, bob.id) == "Bob"  # a first load, served by the replica


async def test_a_write_made_while_its_listener_reconnects_is_not_served_stale(
    replicated: Replicated, open_db: OpenDatabase
):
    """The primary restarts: A's listener reconnects and may miss C's notice, so A drops its
    cache; what A loads afterwards must not come from the paused replica."""
    a, b = open_db(cache=RecordingCache()), open_db(cache=TagCache(), replicas=False)
    ada = await read_then_paused(replicated, a, b)
    await listening(a)
    await replicated.stop_primary()
    await replicated.start_primary()
    c = open_db(cache=TagCache(), replicas=False)  # (B's pooled connections died with it)
    await c.users.update(ada.id, UserUpdate(name="Grace"))

    async def a_reads_grace() -> bool:
        return a.cache_ready and await name_of(a, ada.id) == "Grace"

    await eventually(a_reads_grace, within=20, what="A, listening again, reads C's write")
    names = [await name_of(a, ada.id) for _ in range(3)]
    assert names == ["Grace"] * 3
    await replicated.resume_replay()
    await replicated.wait_caught_up()
    assert await name_of(a, ada.id) == "Grace"
