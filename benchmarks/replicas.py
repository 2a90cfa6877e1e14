"""What read routing costs: a primary and a streaming replica on loopback (the replica tests'
pair), job_infos.get and create through a Database with and without the replica, beside raw
psycopg on the server that answers."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import psycopg

from benchmarks.data import seed
from benchmarks.harness import Contender, Result, compare
from benchmarks.rows import RAW_GET, RAW_INSERT
from darasa_db import Database, DatabaseSettings, migrate
from darasa_db.schemas import JobInfoCreate

__all__ = ["run_replicas"]

RAW_REPLICA = "raw psycopg on the replica"
RAW_PRIMARY = "raw psycopg on the primary"
PRIMARY_ONLY = "darasa-db, no replica"
ROUTED = "darasa-db, with the replica"
NEW_JOB = JobInfoCreate(
    name="Bench", title="Backend engineer", experience_level="senior", description="x" * 400
)


def _pair() -> Any:
    sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
    from replica_pair import ReplicaPair  # type: ignore[import-not-found]  # the tests' harness

    return ReplicaPair().build()


async def run_replicas(*, rounds: int, calls: int) -> list[Result]:
    """get (no write before: the replica answers), get right after a write (the replica's
    position is checked, or the primary answers), and create (its WAL position is recorded)."""
    pair = _pair()
    try:
        pair.create_database("bench")
        primary = pair.url_for(pair.primary_url, "bench")
        replica = pair.url_for(pair.replica_url, "bench")
        migrate.upgrade(primary)
        return await _measure(pair, primary, replica, rounds=rounds, calls=calls)
    finally:
        pair.destroy()


async def _measure(
    pair: Any, primary: str, replica: str, *, rounds: int, calls: int
) -> list[Result]:
    raw_primary = await psycopg.AsyncConnection.connect(
        primary, autocommit=True, prepare_threshold=0
    )
    ids = await seed(raw_primary, job_infos=5)
    pair.wait_caught_up()
    raw_replica = await psycopg.AsyncConnection.connect(
        replica, autocommit=True, prepare_threshold=0
    )
    plain = Database(DatabaseSettings(url=primary, test_mode=False), cache=None)
    routed = Database(
        DatabaseSettings(url=primary, replica_urls=(replica,), test_mode=False), cache=None
    )
    job_id, reader, writer = ids.job_ids[0], ids.reader, ids.writer
    try:
        results: list[Result] = []

        async def raw_get(conn: psycopg.AsyncConnection[Any]) -> Any:
            cur = await conn.execute(RAW_GET, (job_id, reader), prepare=True)
            return await cur.fetchone()

        def get(db: Database) -> Any:
            return lambda: db.job_infos.get(job_id, user_id=reader)

        results += await compare(
            "replicas: job_infos.get, nothing written",
            [
                Contender(RAW_REPLICA, lambda: raw_get(raw_replica)),
                Contender(PRIMARY_ONLY, get(plain)),
                Contender(ROUTED, get(routed)),
            ],
            rounds=rounds,
            calls=calls,
            baseline=RAW_REPLICA,
        )

        async def raw_create() -> Any:
            values = {"user_id": writer, **NEW_JOB.model_dump(mode="json")}
            cur = await raw_primary.execute(RAW_INSERT, values, prepare=True)
            return await cur.fetchone()

        def create(db: Database) -> Any:
            return lambda: db.job_infos.create(writer, NEW_JOB)

        results += await compare(
            "replicas: job_infos.create",
            [
                Contender(RAW_PRIMARY, raw_create),
                Contender(PRIMARY_ONLY, create(plain)),
                Contender(ROUTED, create(routed)),
            ],
            rounds=rounds,
            calls=calls,
            baseline=RAW_PRIMARY,
        )

        def create_then_get(db: Database) -> Any:
            async def op() -> Any:
                await db.job_infos.create(writer, NEW_JOB)
                return await db.job_infos.get(job_id, user_id=reader)

            return op

        async def raw_create_then_get() -> Any:
            await raw_create()
            return await raw_get(raw_primary)

        results += await compare(
            "replicas: create, then get at once",
            [
                Contender(RAW_PRIMARY, raw_create_then_get),
                Contender(PRIMARY_ONLY, create_then_get(plain)),
                Contender(ROUTED, create_then_get(routed)),
            ],
            rounds=rounds,
            calls=calls,
            baseline=RAW_PRIMARY,
        )
        return results
    finally:
        for db in (plain, routed):
            await db.close()
        await raw_primary.close()
        await raw_replica.close()
