"""Row operations: job_infos get (uncached and cached), create; list_for_user of job infos,
documents and conversations; append_messages at 10 and 3,000 messages."""

from __future__ import annotations

from typing import Any

from cachetools import TTLCache
from psycopg.types.json import Jsonb
from sqlalchemy import bindparam, select

from benchmarks.context import Bench, raw_connection
from benchmarks.data import (
    MESSAGE,
    job_info_values,
    new_conversation,
    reset_conversation,
    seed_pages,
)
from benchmarks.harness import Contender, Result, compare
from darasa_db import Database
from darasa_db.models import JobInfoRow
from darasa_db.models.base import table_of
from darasa_db.schemas import JobInfoCreate, Message

__all__ = ["run_rows"]

RAW = "raw psycopg"
CORE = "SQLAlchemy Core"
ORM = "SQLAlchemy ORM"
DARASA = "darasa-db"
CACHED = "darasa-db, TagCache + listener"

J = table_of(JobInfoRow)
RAW_GET = (
    "SELECT id, user_id, name, title, experience_level, description, created_at, updated_at "
    "FROM darasa.job_info WHERE id = %s AND user_id = %s"
)
RAW_LIST = (
    "SELECT id, user_id, name, title, experience_level, description, created_at, updated_at "
    "FROM darasa.job_info WHERE user_id = %s ORDER BY created_at DESC, id DESC LIMIT %s"
)
RAW_INSERT = (
    "INSERT INTO darasa.job_info (user_id, name, title, experience_level, description) "
    "VALUES (%(user_id)s, %(name)s, %(title)s, %(experience_level)s, %(description)s) "
    "RETURNING id, user_id, name, title, experience_level, description, created_at, updated_at"
)
RAW_APPEND = (
    "UPDATE darasa.conversations SET messages = messages || %s "
    "WHERE id = %s AND user_id = %s RETURNING id"
)
RAW_APPEND_ROW = (
    "UPDATE darasa.conversations SET messages = messages || %s "
    "WHERE id = %s AND user_id = %s RETURNING id, user_id, title, messages, created_at, updated_at"
)
RAW_PAGES = {
    "documents": (
        "SELECT id, user_id, title, content, metadata, embedding, created_at, updated_at "
        "FROM darasa.documents WHERE user_id = %s ORDER BY created_at DESC, id DESC LIMIT %s"
    ),
    "conversations": (
        "SELECT id, user_id, title, messages, created_at, updated_at "
        "FROM darasa.conversations WHERE user_id = %s ORDER BY created_at DESC, id DESC LIMIT %s"
    ),
}
LONG = 3_000  # messages in a long conversation
CORE_GET = select(J).where(J.c.id == bindparam("id"), J.c.user_id == bindparam("user_id"))
CORE_LIST = (
    select(J)
    .where(J.c.user_id == bindparam("user_id"))
    .order_by(J.c.created_at.desc(), J.c.id.desc())
    .limit(bindparam("limit"))
)
ORM_GET = select(JobInfoRow).where(
    JobInfoRow.id == bindparam("id"), JobInfoRow.user_id == bindparam("user_id")
)
ORM_LIST = (
    select(JobInfoRow)
    .where(JobInfoRow.user_id == bindparam("user_id"))
    .order_by(JobInfoRow.created_at.desc(), JobInfoRow.id.desc())
    .limit(bindparam("limit"))
)


async def run_rows(b: Bench, *, rounds: int, calls: int) -> list[Result]:
    """Every row operation, each contender interleaved with the others.

    The uncached Database runs first, while no cache listener exists. Then the TagCache one
    opens, and its writes run again: each NOTIFY now wakes a listener, as in production.
    """
    results = []
    results += await _get(b, rounds=rounds, calls=calls)
    results += await _list(b, rounds=rounds, calls=max(20, calls // 4))
    await seed_pages(b.raw, b.seed.reader)
    for entity in RAW_PAGES:
        results += await _page(b, entity, rounds=rounds, calls=max(20, calls // 4))
    results += await _create(b, b.db, DARASA, rounds=rounds, calls=calls)
    results += await _append(b, b.db, DARASA, start=10, rounds=3 * rounds, calls=20)
    results += await _append(b, b.db, DARASA, start=LONG, rounds=2 * rounds, calls=10)
    await b.start_cache()
    results += await _cached_get(b, rounds=rounds, calls=calls)
    results += await _create(b, b.cached, CACHED, rounds=rounds, calls=calls)
    results += await _append(b, b.cached, CACHED, start=10, rounds=3 * rounds, calls=20)
    return results


def _listening(operation: str, db: Database) -> str:
    return f"{operation}, cache listener on" if db.cache is not None else operation


def _raw_get(b: Bench, job_id: Any, user_id: str) -> Contender:
    async def op() -> Any:
        cur = await b.raw.execute(RAW_GET, (job_id, user_id), prepare=True)
        return await cur.fetchone()

    return Contender(RAW, op)


async def _get(b: Bench, *, rounds: int, calls: int) -> list[Result]:
    job_id, user_id = b.seed.job_ids[0], b.seed.reader
    params = {"id": job_id, "user_id": user_id}

    async def darasa() -> Any:
        return await b.db.job_infos.get(job_id, user_id=user_id)

    async def core() -> Any:
        async with b.engine.connect() as conn:
            return (await conn.execute(CORE_GET, params)).first()

    async def orm() -> Any:
        async with b.sessions() as session:
            return (await session.execute(ORM_GET, params)).scalar_one_or_none()

    assert (await darasa()) is not None
    contenders = [
        Contender(DARASA, darasa),
        _raw_get(b, job_id, user_id),
        Contender(CORE, core),
        Contender(ORM, orm),
    ]
    return await compare(
        "job_infos.get (uncached)", contenders, rounds=rounds, calls=calls, baseline=RAW
    )


async def _cached_get(b: Bench, *, rounds: int, calls: int) -> list[Result]:
    job_id, user_id = b.seed.job_ids[1], b.seed.reader
    cache: TTLCache[Any, Any] = TTLCache(maxsize=10_000, ttl=300)
    key = ("job_infos.get", job_id, user_id)
    cache[key] = await b.db.job_infos.get(job_id, user_id=user_id)

    async def darasa() -> Any:
        return await b.cached.job_infos.get(job_id, user_id=user_id)

    async def ttl() -> Any:
        return cache.get(key)

    assert b.cached.cache_ready, "the cache listener never started"
    await darasa()
    raw = _raw_get(b, job_id, user_id)
    raw.name, raw.inner = f"{RAW} (uncached)", 1
    contenders = [
        Contender(f"{DARASA} (TagCache hit)", darasa),
        Contender("cachetools.TTLCache lookup", ttl),
        raw,
    ]
    cache_stats = b.cached.cache.stats if b.cached.cache is not None else None
    results = await compare(
        "job_infos.get (cached)",
        contenders,
        rounds=rounds,
        calls=calls,
        inner=50,
        baseline=raw.name,
    )
    if b.cached.cache is not None and cache_stats is not None:
        after = b.cached.cache.stats
        results[0].extra["cache_misses"] = after.misses - cache_stats.misses
    return results


async def _create(b: Bench, db: Database, name: str, *, rounds: int, calls: int) -> list[Result]:
    user_id = b.seed.writer
    values = job_info_values(user_id, 0)
    data = JobInfoCreate(**{k: v for k, v in values.items() if k != "user_id"})

    async def darasa() -> Any:
        return await db.job_infos.create(user_id, data)

    async def raw() -> Any:
        cur = await b.raw.execute(RAW_INSERT, values, prepare=True)
        return await cur.fetchone()

    async def orm() -> Any:
        async with b.sessions() as session:
            row = JobInfoRow(**values)
            session.add(row)
            await session.commit()
            return row

    contenders = [Contender(name, darasa), Contender(RAW, raw), Contender(ORM, orm)]
    return await compare(
        _listening("job_infos.create + commit", db),
        contenders,
        rounds=rounds,
        calls=calls,
        baseline=RAW,
    )


async def _list(b: Bench, *, rounds: int, calls: int) -> list[Result]:
    user_id, limit = b.seed.reader, 50
    params = {"user_id": user_id, "limit": limit}

    async def darasa() -> Any:
        return await b.db.job_infos.list_for_user(user_id, limit=limit)

    async def raw() -> Any:
        cur = await b.raw.execute(RAW_LIST, (user_id, limit), prepare=True)
        return await cur.fetchall()

    async def core() -> Any:
        async with b.engine.connect() as conn:
            return (await conn.execute(CORE_LIST, params)).all()

    async def orm() -> Any:
        async with b.sessions() as session:
            return (await session.execute(ORM_LIST, params)).scalars().all()

    assert len(await darasa()) == limit
    contenders = [
        Contender(DARASA, darasa, items=limit),
        Contender(RAW, raw, items=limit),
        Contender(CORE, core, items=limit),
        Contender(ORM, orm, items=limit),
    ]
    return await compare(
        "job_infos.list_for_user (50 rows)", contenders, rounds=rounds, calls=calls, baseline=RAW
    )


async def _page(b: Bench, entity: str, *, rounds: int, calls: int) -> list[Result]:
    user_id, limit = b.seed.reader, 50
    repository = getattr(b.db, entity)

    async def darasa() -> Any:
        return await repository.list_for_user(user_id, limit=limit)

    async def raw() -> Any:
        cur = await b.raw.execute(RAW_PAGES[entity], (user_id, limit), prepare=True)
        return await cur.fetchall()

    assert len(await darasa()) == limit
    contenders = [Contender(DARASA, darasa, items=limit), Contender(RAW, raw, items=limit)]
    return await compare(
        f"{entity}.list_for_user (50 rows)", contenders, rounds=rounds, calls=calls, baseline=RAW
    )


class _Lent:
    """A connection of darasa-db's pool lent to a raw contender for one batch, so that raw
    psycopg's statement runs on the server process darasa-db's own calls use (the pool is LIFO):
    on this machine a long append's server time differs by up to 1.5x between processes."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._lease: Any = None
        self.conn: Any = None

    async def borrow(self) -> None:
        await self.give_back()
        self._lease = self._db.connection()
        self.conn = await self._lease.__aenter__()

    async def give_back(self) -> None:
        lease, self._lease = self._lease, None
        if lease is not None:
            await lease.__aexit__(None, None, None)


async def _append(
    b: Bench, db: Database, name: str, *, start: int, rounds: int, calls: int
) -> list[Result]:
    """One message appended to a conversation of `start` messages (reset before each batch).

    The baseline is the bare `UPDATE … RETURNING id`; a second raw contender returns the whole
    row (the messages as jsonb, decoded), which is what darasa-db's result has to carry. On a
    long conversation two more run: raw psycopg's `RETURNING id` on a connection lent by
    darasa-db's pool (the same server process as darasa-db's calls), and darasa-db forgetting
    the messages it holds before each call, so that the server sends them back (a process's
    first append to a conversation, or any append after another process changed it). All
    contenders append to the same row, so that they share its storage state (TOAST chunks,
    dead versions), which weighs on the server's rewrite of a long value.

    The whole-row contender and the resets have connections of their own: a server process
    that works in other contenders' batches too stays warmer than the others (sharing raw
    psycopg's connection, the whole-row contender made raw psycopg's about 25 µs a call
    faster than darasa-db's at 10 messages).
    """
    async with await raw_connection(b.url) as resets, await raw_connection(b.url) as whole:
        user_id = b.seed.reader
        row = await new_conversation(resets, user_id)
        message = Message(**MESSAGE)
        payload = (Jsonb([MESSAGE]), row, user_id)
        lent = _Lent(db)

        async def darasa() -> Any:
            return await db.conversations.append_messages(row, [message], user_id=user_id)

        async def darasa_unheld() -> Any:
            db.conversations._known.forget(row)  # as a process that never read it: sent back
            return await db.conversations.append_messages(row, [message], user_id=user_id)

        async def raw() -> Any:
            return await (await b.raw.execute(RAW_APPEND, payload, prepare=True)).fetchone()

        async def raw_lent() -> Any:
            cur = await lent.conn.execute(RAW_APPEND, payload, prepare=True)
            return await cur.fetchone()

        async def raw_row() -> Any:
            return await (await whole.execute(RAW_APPEND_ROW, payload, prepare=True)).fetchone()

        async def reset() -> None:
            await lent.give_back()
            await reset_conversation(resets, row, start)

        async def reset_and_borrow() -> None:
            await reset()
            await lent.borrow()

        contenders = [
            Contender(name, darasa, reset=reset),
            Contender(RAW, raw, reset=reset),
            Contender(f"{RAW}, RETURNING the row", raw_row, reset=reset),
        ]
        if db.cache is not None:
            contenders.pop()  # the listener block compares with the baseline only
        elif start > 10:
            contenders.append(
                Contender(f"{RAW}, on darasa-db's connection", raw_lent, reset=reset_and_borrow)
            )
            unheld = f"{name}, messages not held by the process"
            contenders.append(Contender(unheld, darasa_unheld, reset=reset))
        try:
            return await compare(
                _listening(f"conversations.append_messages ({start:,} messages)", db),
                contenders,
                rounds=rounds,
                calls=calls,
                baseline=RAW,
            )
        finally:
            await lent.give_back()
