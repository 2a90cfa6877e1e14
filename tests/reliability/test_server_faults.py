"""Server faults: an abrupt stop and restart under load, and a backend killed mid-transaction."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field

import psycopg
import pytest

from darasa_db import Database, DatabaseUnavailableError
from darasa_db.errors import DarasaDBError
from darasa_db.schemas import (
    ConversationCreate,
    JobInfoCreate,
    JobInfoUpdate,
    Message,
    QuestionCreate,
    UserUpsert,
)
from darasa_db.testing.servers import TestServer
from reliability.helpers import fault_settings, pool_is_idle, raw, terminate, until

pytestmark = pytest.mark.reliability

WORKERS = 20
CALL_LIMIT = 15.0  # s: far above pool_timeout + connect_timeout + read retries; reaching it = hang
RECOVERY_LIMIT = 10.0  # s: calls must succeed again this soon after the server is back


def job(name: str) -> JobInfoCreate:
    return JobInfoCreate(name=name, experience_level="mid-level", description="fault test")


@dataclass
class Ledger:
    """What the callers were told: acknowledged writes, and how each failed call failed."""

    job_infos: set[uuid.UUID] = field(default_factory=set)
    questions: set[uuid.UUID] = field(default_factory=set)
    messages: set[str] = field(default_factory=set)
    ok_at: list[float] = field(default_factory=list)
    unavailable: int = 0
    hangs: int = 0
    unexpected: list[BaseException] = field(default_factory=list)


@dataclass
class Worker:
    """One task's own user, job info and conversation."""

    user_id: str
    job_id: uuid.UUID
    conversation_id: uuid.UUID


async def one_call(db: Database, w: Worker, step: int, ledger: Ledger) -> None:
    """A mixed repository call; writes are recorded only once the call returned."""
    kind = step % 7
    if kind == 0:
        created = await db.job_infos.create(w.user_id, job(f"job {step}"))
        ledger.job_infos.add(created.id)
    elif kind == 1:
        assert await db.job_infos.get(w.job_id, user_id=w.user_id) is not None
    elif kind == 2:
        question = QuestionCreate(text=f"question {step}", difficulty="easy")
        q = await db.questions.create(w.job_id, question, user_id=w.user_id)
        ledger.questions.add(q.id)
    elif kind == 3:
        assert await db.job_infos.list_for_user(w.user_id, limit=5)
    elif kind == 4:
        text = f"{w.user_id} message {step}"
        message = Message(role="user", content=text)
        await db.conversations.append_messages(w.conversation_id, [message], user_id=w.user_id)
        ledger.messages.add(text)
    elif kind == 5:
        async with db.transaction() as tx:
            created = await tx.job_infos.create(w.user_id, job(f"tx job {step}"))
            question = QuestionCreate(text=f"tx question {step}", difficulty="hard")
            q = await tx.questions.create(created.id, question, user_id=w.user_id)
        ledger.job_infos.add(created.id)
        ledger.questions.add(q.id)
    else:
        assert await db.users.get(w.user_id) is not None


async def run_worker(db: Database, w: Worker, ledger: Ledger, stop: asyncio.Event) -> None:
    step = 0
    while not stop.is_set():
        step += 1
        try:
            async with asyncio.timeout(CALL_LIMIT):
                await one_call(db, w, step, ledger)
            ledger.ok_at.append(time.monotonic())
        except DatabaseUnavailableError:
            ledger.unavailable += 1
        except TimeoutError as exc:
            if isinstance(exc, DarasaDBError):
                ledger.unexpected.append(exc)
            else:
                ledger.hangs += 1
        except Exception as exc:
            ledger.unexpected.append(exc)
        await asyncio.sleep(0.01)


async def make_worker(db: Database, n: int) -> Worker:
    user = await db.users.upsert(UserUpsert(id=f"fault-{n}", email=f"f{n}@x.co", name=f"F {n}"))
    created = await db.job_infos.create(user.id, job("first"))
    conversation = await db.conversations.create(user.id, ConversationCreate(title="chat"))
    return Worker(user.id, created.id, conversation.id)


async def test_abrupt_restart_loses_no_acknowledged_write_and_the_database_recovers(
    fault_server: TestServer, fault_database_url: str
) -> None:
    url = fault_database_url
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute("SHOW synchronous_commit")
        assert (await cur.fetchone()) == ("on",), "durability is only promised with it on"

    ledger, stop = Ledger(), asyncio.Event()
    async with Database(fault_settings(url)) as db:
        workers = [await make_worker(db, n) for n in range(WORKERS)]
        # The cached rows belong to a user no worker touches, so only the outage can evict them.
        owner = (await db.users.upsert(UserUpsert(id="cached", email="c@x.co", name="C"))).id
        shared = await db.job_infos.create(owner, job("before outage"))  # updated by another db
        mine = await db.job_infos.create(owner, job("before outage"))  # updated by this db
        await until(lambda: db.cache_ready, 10, "cache listener ready")
        for cached in (shared, mine):
            await db.job_infos.get(cached.id, user_id=owner)
        await raw(
            url, "UPDATE darasa.job_info SET name = 'behind the cache' WHERE user_id = %s", owner
        )
        for cached in (shared, mine):  # proof that the pre-outage value is served from the cache
            assert (await db.job_infos.get(cached.id, user_id=owner)) == cached

        tasks = [asyncio.create_task(run_worker(db, w, ledger, stop)) for w in workers]
        await until(lambda: len(ledger.ok_at) >= 200, 30, "steady load")

        await asyncio.to_thread(fault_server.kill)
        await asyncio.sleep(1.0)
        await asyncio.to_thread(fault_server.start)
        back = time.monotonic()

        async def serves_calls() -> bool:
            await db.job_infos.create(workers[0].user_id, job("after outage probe"))
            return await db.users.get(workers[0].user_id) is not None

        recovery = await until(serves_calls, RECOVERY_LIMIT, "calls succeeding again")

        async with Database(fault_settings(url), cache=None) as other:
            await other.job_infos.update(shared.id, JobInfoUpdate(name="after"), user_id=owner)
        fresh = await db.job_infos.get(shared.id, user_id=owner)
        assert fresh is not None
        assert fresh.name == "after"
        await db.job_infos.update(mine.id, JobInfoUpdate(name="after"), user_id=owner)
        fresh = await db.job_infos.get(mine.id, user_id=owner)
        assert fresh is not None
        assert fresh.name == "after"

        ok_before_back = sum(1 for t in ledger.ok_at if t < back)
        await until(lambda: len(ledger.ok_at) - ok_before_back >= 200, 30, "load again")
        stop.set()
        await asyncio.gather(*tasks)
        stats = (await db.pool()).get_stats()

    print(
        f"\nfaults: recovery {recovery:.2f} s after restart; {len(ledger.ok_at)} calls ok, "
        f"{ledger.unavailable} DatabaseUnavailableError, {ledger.hangs} hangs, "
        f"{len(ledger.unexpected)} other errors; acknowledged {len(ledger.job_infos)} job infos, "
        f"{len(ledger.questions)} questions, {len(ledger.messages)} messages; "
        f"pool lost {stats.get('connections_lost', 0)} + returned bad {stats.get('returns_bad', 0)}"
    )
    assert ledger.unexpected == []
    assert ledger.hangs == 0
    assert ledger.unavailable > 0, "the outage was not seen by any call"

    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute(
            "SELECT id FROM darasa.job_info WHERE id = ANY(%s)", (list(ledger.job_infos),)
        )
        assert {row[0] for row in await cur.fetchall()} == ledger.job_infos
        cur = await conn.execute(
            "SELECT id FROM darasa.questions WHERE id = ANY(%s)", (list(ledger.questions),)
        )
        assert {row[0] for row in await cur.fetchall()} == ledger.questions
        cur = await conn.execute(
            "SELECT m ->> 'content' FROM darasa.conversations, jsonb_array_elements(messages) m"
        )
        stored = {row[0] for row in await cur.fetchall()}
        assert ledger.messages <= stored


async def test_backend_killed_mid_transaction_is_unavailable_and_the_pool_replaces_it(
    fault_database_url: str,
) -> None:
    settings = fault_settings(fault_database_url, pool_size=1, max_overflow=0)
    async with Database(settings, cache=None) as db:
        user = await db.users.upsert(UserUpsert(id="killed-tx", email="k@x.co", name="K"))
        pool = await db.pool()
        before = pool.get_stats()

        killed: list[int] = []

        async def transaction_losing_its_backend() -> None:
            async with db.transaction() as tx:
                await tx.job_infos.create(user.id, job("doomed"))
                killed.append(tx.connection.info.backend_pid)
                await terminate(fault_database_url, killed[0])
                await tx.job_infos.create(user.id, job("doomed too"))

        with pytest.raises(DatabaseUnavailableError) as caught:
            await transaction_losing_its_backend()
        assert "unavailable" in str(caught.value)

        assert await db.job_infos.list_for_user(user.id) == []  # rolled back, nothing kept
        assert pool.get_stats().get("returns_bad", 0) == before.get("returns_bad", 0) + 1
        created = await db.job_infos.create(user.id, job("after"))
        assert await db.job_infos.get(created.id, user_id=user.id) == created
        async with db.connection() as conn:
            assert conn.info.backend_pid != killed[0]
        await until(lambda: pool_is_idle(db), 5, "connection back in the pool")
        assert pool.get_stats()["pool_size"] == 1
