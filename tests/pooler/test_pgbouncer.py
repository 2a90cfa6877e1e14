"""Behind a transaction-mode PgBouncer: never a wrong row, never a silent stale cache, with the
default settings, with the documented ones, and with prepared statements forced on."""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

import psycopg
import pytest

from darasa_db import DarasaDBError, Database, DatabaseSettings, TagCache
from darasa_db.schemas import JobInfo, JobInfoCreate, JobInfoUpdate, User, UserUpsert

CLIENTS = 3  # Database objects, like service workers, each with a pool larger than PgBouncer's


async def _mixed_writes(db: Database, worker: int, rounds: int) -> tuple[list[Any], int]:
    """Different statements interleaved from one worker; returns what came back and errors."""
    results: list[Any] = []
    errors = 0
    rng = random.Random(worker)

    async def one(n: int) -> None:
        nonlocal errors
        user_id = f"w{worker}-{n}"
        try:
            user = await db.users.upsert(
                UserUpsert(id=user_id, email=f"{user_id}@example.com", name=f"name {n}")
            )
            job = await db.job_infos.create(
                user.id,
                JobInfoCreate(
                    name=f"job {n}", title=f"title {n}", experience_level="senior", description="d"
                ),
            )
            if rng.random() < 0.5:
                job = await db.job_infos.update(
                    job.id, JobInfoUpdate(name=f"job {n}!"), user_id=user.id
                )
            results.append((user, job))
        except DarasaDBError:
            errors += 1

    for start in range(0, rounds, 10):
        await asyncio.gather(*(one(n) for n in range(start, start + 10)))
    return results, errors


def _check_results(results: list[Any]) -> None:
    for user, job in results:
        assert isinstance(user, User)
        assert isinstance(job, JobInfo)
        n = user.id.rsplit("-", 1)[1]
        assert user.email.startswith(user.id)
        assert user.name == f"name {n}"
        assert job.user_id == user.id
        assert job.name in (f"job {n}", f"job {n}!")
        assert job.title == f"title {n}"


async def _rows(url: str) -> dict[str, tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT u.id, u.email, u.name, u.image_url, j.name, j.title "
            "FROM darasa.users u LEFT JOIN darasa.job_info j ON j.user_id = u.id"
        )
        return {row[0]: row for row in await cur.fetchall()}


async def _run_workers(url: str, **settings: Any) -> tuple[list[Any], int, list[Database]]:
    dbs = [
        Database(DatabaseSettings(url=url, test_mode=False, pool_size=4, **settings), cache=None)
        for _ in range(CLIENTS)
    ]
    outcomes = await asyncio.gather(*(_mixed_writes(db, w, 40) for w, db in enumerate(dbs)))
    results = [r for rs, _ in outcomes for r in rs]
    errors = sum(e for _, e in outcomes)
    return results, errors, dbs


async def test_default_settings_detect_the_pooler_and_return_no_wrong_row(
    pooled_url: str, darasa_database_url: str, caplog: pytest.LogCaptureFixture
):
    with caplog.at_level(logging.WARNING, logger="darasa_db"):
        results, errors, dbs = await _run_workers(pooled_url)
    try:
        assert all(db.behind_pooler for db in dbs)
        assert errors == 0
        assert len(results) == CLIENTS * 40
        _check_results(results)
        rows = await _rows(darasa_database_url)  # read directly: what was really written
        for user, job in results:
            assert rows[user.id][1:6] == (user.email, user.name, None, job.name, job.title)
        warnings = [r.getMessage() for r in caplog.records if "pooler" in r.getMessage()]
        assert warnings, "one warning says prepared statements were turned off"
    finally:
        for db in dbs:
            await db.close()


async def test_the_documented_settings_return_no_wrong_row(
    pooled_url: str, darasa_database_url: str
):
    results, errors, dbs = await _run_workers(pooled_url, prepared_statements=False)
    try:
        assert errors == 0
        _check_results(results)
    finally:
        for db in dbs:
            await db.close()


async def test_prepared_statements_forced_on_never_return_a_wrong_row(
    pooled_url: str, caplog: pytest.LogCaptureFixture
):
    # A misconfiguration on purpose: PgBouncer 1.18 in transaction mode cannot keep prepared
    # statements, so other clients' statements run with our parameters on the server (which
    # no client can prevent: that is why the default turns them off). What comes back must
    # still never be a wrong row: a result of another statement raises, naming the setting.
    with caplog.at_level(logging.WARNING, logger="darasa_db"):
        results, errors, dbs = await _run_workers(pooled_url, prepared_statements=True)
    try:
        _check_results(results)
        assert len(results) + errors == CLIENTS * 40
        assert any("prepared_statements=True" in r.getMessage() for r in caplog.records)
    finally:
        for db in dbs:
            await db.close()


async def test_the_cache_stays_off_when_notices_cannot_arrive(
    pooled_url: str, caplog: pytest.LogCaptureFixture
):
    settings = DatabaseSettings(url=pooled_url, test_mode=True)
    with caplog.at_level(logging.WARNING, logger="darasa_db"):
        async with (
            Database(settings, cache=TagCache()) as reader,
            Database(settings, cache=None) as writer,
        ):
            user = await reader.users.upsert(UserUpsert(id="c", email="c@example.com", name="A"))
            for name in ("B", "C", "D"):
                assert (await reader.users.get(user.id)) is not None
                await writer.users.upsert(UserUpsert(id="c", email="c@example.com", name=name))
                fresh = await reader.users.get(user.id)
                assert fresh is not None
                assert fresh.name == name  # never a stale read
            await asyncio.sleep(0.5)
            assert not reader.cache_ready
    assert any("listen_url" in r.getMessage() for r in caplog.records)


async def test_with_a_direct_listen_url_the_cache_is_coherent_through_the_pooler(
    pooled_url: str, darasa_database_url: str
):
    settings = DatabaseSettings(url=pooled_url, test_mode=True, listen_url=darasa_database_url)
    async with (
        Database(settings, cache=TagCache()) as reader,
        Database(settings, cache=None) as writer,
    ):
        user = await reader.users.upsert(UserUpsert(id="d", email="d@example.com", name="A"))
        for _ in range(100):
            if reader.cache_ready:
                break
            await reader.users.get(user.id)
            await asyncio.sleep(0.05)
        assert reader.cache_ready
        for name in ("B", "C"):
            await reader.users.get(user.id)  # cached
            await writer.users.upsert(UserUpsert(id="d", email="d@example.com", name=name))
            for _ in range(100):  # the notice arrives, the entry goes
                fresh = await reader.users.get(user.id)
                if fresh is not None and fresh.name == name:
                    break
                await asyncio.sleep(0.02)
            assert fresh is not None
            assert fresh.name == name
