"""Load: 200 tasks of mixed reads and writes on a production-size pool; statement timeouts.

`DARASA_LOAD_SECONDS` sets the duration (5 s here by default; `nox -s load` runs 30 s).
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import time
import uuid
from dataclasses import dataclass

import pytest

from darasa_db import Database, DatabaseSettings
from darasa_db.errors import QueryTimeoutError
from darasa_db.schemas import (
    ConversationCreate,
    DocumentCreate,
    JobInfoCreate,
    JobInfoUpdate,
    Message,
    QuestionCreate,
    UserUpsert,
)
from reliability.helpers import pool_is_idle, raw, until

pytestmark = pytest.mark.reliability

TASKS = 200
USERS = 40  # five tasks share each user's rows, so writes contend on them
DIMENSIONS = 1536


def load_seconds() -> float:
    return float(os.environ.get("DARASA_LOAD_SECONDS", "5"))


def vector(rng: random.Random) -> list[float]:
    return [rng.uniform(-1, 1) for _ in range(DIMENSIONS)]


@dataclass
class Owner:
    user_id: str
    job_id: uuid.UUID
    conversation_id: uuid.UUID


async def make_owner(db: Database, n: int, rng: random.Random) -> Owner:
    user = await db.users.upsert(UserUpsert(id=f"load-{n}", email=f"l{n}@x.co", name=f"L {n}"))
    job = await db.job_infos.create(
        user.id, JobInfoCreate(name="job", experience_level="senior", description="d")
    )
    conversation = await db.conversations.create(user.id, ConversationCreate(title="chat"))
    documents = [
        DocumentCreate(title=f"doc {i}", content="text", embedding=vector(rng)) for i in range(3)
    ]
    await db.documents.create_many(user.id, documents)
    return Owner(user.id, job.id, conversation.id)


async def one_call(db: Database, o: Owner, step: int, query: list[float]) -> None:
    """One of ten mixed repository calls, six reads and four writes."""
    kind = step % 10
    if kind == 0:
        assert await db.users.get(o.user_id) is not None
    elif kind == 1:
        assert await db.job_infos.get(o.job_id, user_id=o.user_id) is not None
    elif kind == 2:
        assert await db.job_infos.list_for_user(o.user_id, limit=10)
    elif kind == 3:
        data = JobInfoCreate(name=f"job {step}", experience_level="junior", description="d")
        await db.job_infos.create(o.user_id, data)
    elif kind == 4:
        question = QuestionCreate(text=f"q {step}", difficulty="medium")
        await db.questions.create(o.job_id, question, user_id=o.user_id)
    elif kind == 5:
        await db.questions.list_for_job_info(o.job_id, user_id=o.user_id)
    elif kind == 6:
        message = Message(role="assistant", content=f"m {step}")
        await db.conversations.append_messages(o.conversation_id, [message], user_id=o.user_id)
    elif kind == 7:
        assert await db.documents.similarity_search(query, user_id=o.user_id, limit=3)
    elif kind == 8:
        await db.job_infos.update(o.job_id, JobInfoUpdate(title=f"t {step}"), user_id=o.user_id)
    else:
        assert await db.documents.list_for_user(o.user_id, limit=5)


async def run_task(
    db: Database, o: Owner, deadline: float, query: list[float], start: int
) -> tuple[list[float], list[BaseException]]:
    latencies: list[float] = []
    errors: list[BaseException] = []
    step = start
    while time.monotonic() < deadline:
        step += 1
        began = time.perf_counter()
        try:
            async with asyncio.timeout(30):
                await one_call(db, o, step, query)
        except Exception as exc:
            errors.append(exc)
        latencies.append(time.perf_counter() - began)
    return latencies, errors


async def test_load_of_200_tasks_has_no_errors_and_returns_every_connection(darasa_database_url):
    url = darasa_database_url
    rng = random.Random(7)
    settings = DatabaseSettings(url=url, test_mode=False, pool_size=5, max_overflow=15)
    async with Database(settings) as db:
        owners = [await make_owner(db, n, rng) for n in range(USERS)]
        query = vector(rng)
        deadline = time.monotonic() + load_seconds()
        results = await asyncio.gather(
            *(
                run_task(db, owners[n % USERS], deadline, query, rng.randrange(10))
                for n in range(TASKS)
            )
        )
        latencies = sorted(t for lat, _ in results for t in lat)
        errors = [e for _, errs in results for e in errs]

        await until(lambda: pool_is_idle(db), 10, "every connection back in the pool")
        stats = (await db.pool()).get_stats()
        server_side = await raw(
            url,
            "SELECT state, count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = 'darasa-db' "
            "GROUP BY state ORDER BY state",
        )

    cuts = statistics.quantiles(latencies, n=100)
    print(
        f"\nload: {TASKS} tasks, {load_seconds():g} s, {len(latencies)} calls "
        f"({len(latencies) / load_seconds():.0f}/s), p50 {cuts[49] * 1000:.1f} ms, "
        f"p99 {cuts[98] * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms; "
        f"pool size {stats['pool_size']} (max {stats['pool_max']}), "
        f"{stats.get('requests_waiting', 0)} waiting, {stats.get('requests_errors', 0)} errors"
    )
    assert errors == []
    assert len(latencies) >= TASKS
    assert stats.get("requests_errors", 0) == 0
    assert stats["pool_max"] == settings.max_connections - 1  # one slot is the cache listener
    assert stats["pool_available"] == stats["pool_size"] <= stats["pool_max"]
    # On the server: the pool's connections, all idle, plus the listener; none leaked or busy.
    assert dict(server_side) == {"idle": stats["pool_size"] + 1}


@pytest.mark.embedded_smoke
async def test_statement_timeout_cuts_a_blocked_call_with_a_clear_error(darasa_database_url):
    url = darasa_database_url
    settings = DatabaseSettings(url=url, test_mode=False, statement_timeout=0.2, pool_size=2)
    async with Database(settings, cache=None) as db:
        user = await db.users.upsert(UserUpsert(id="timeout", email="t@x.co", name="T"))
        job = await db.job_infos.create(
            user.id, JobInfoCreate(name="kept", experience_level="mid-level", description="d")
        )
        locked, release = asyncio.Event(), asyncio.Event()

        async def hold_the_table() -> None:  # another task's transaction holds the table lock
            async with db.transaction() as blocker:
                await blocker.connection.execute(
                    "LOCK TABLE darasa.job_info IN ACCESS EXCLUSIVE MODE"
                )
                locked.set()
                await release.wait()

        blocker = asyncio.create_task(hold_the_table())
        await locked.wait()
        data = JobInfoCreate(name="blocked", experience_level="junior", description="d")
        try:
            async with asyncio.timeout(10):
                with pytest.raises(QueryTimeoutError, match="statement timeout"):
                    await db.job_infos.create(user.id, data)
                with pytest.raises(QueryTimeoutError, match="statement timeout"):
                    await db.job_infos.list_for_user(user.id)
        finally:
            release.set()
            await blocker

        assert await db.job_infos.list_for_user(user.id) == [job]  # nothing written
        rows = await raw(url, "SELECT name FROM darasa.job_info WHERE user_id = %s", user.id)
        assert rows == [("kept",)]
