"""`questions.get` and `questions.list_for_job_info` against raw psycopg, with and without the
ownership join to `job_info` (migration 0005 gave questions their own `user_id`).

    python -m benchmarks.child_reads [URL]

URL is an empty database (migrated here to this checkout's head); without one, a throwaway
server from `darasa_db.testing.servers`. Seeds 1,000 users with 5 job infos of 10 questions
each, then times every contender in interleaved rounds: medians and p95 in µs, and each one's
ratio to raw psycopg running the statement this checkout's repository runs. On a schema
without `questions.user_id` (before 0005) only the join form exists.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
from typing import Any

import psycopg
import psycopg.sql

from benchmarks.context import raw_connection
from benchmarks.harness import Contender, Result, compare, summarise
from darasa_db import Database, DatabaseSettings, migrate
from darasa_db.testing.plugin import create_database
from darasa_db.testing.servers import start_server

SEED = [
    "INSERT INTO darasa.users (id, email, name, email_key) "
    "SELECT 'u' || g, 'u' || g || '@x.co', 'u', 'u' || g || '@x.co' "
    "FROM generate_series(1, 1000) g",
    "INSERT INTO darasa.job_info (user_id, name, experience_level, description) "
    "SELECT 'u' || g, 'job', 'senior', 'd' FROM generate_series(1, 1000) g, generate_series(1, 5)",
    # written as the release before 0005 writes them: on 0005 its trigger fills user_id
    "INSERT INTO darasa.questions (job_info_id, text, difficulty) "
    "SELECT j.id, 'why?', 'hard' FROM darasa.job_info j, generate_series(1, 10)",
    "ANALYZE",
]
OWN = {
    "get": "SELECT {cols} FROM darasa.questions q WHERE q.id = {qid} AND q.user_id = {uid}",
    "list": "SELECT {cols} FROM darasa.questions q WHERE q.job_info_id = {jid} "
    "AND q.user_id = {uid} ORDER BY q.created_at DESC, q.id DESC",
}
JOIN = {
    "get": "SELECT {cols} FROM darasa.questions q WHERE q.id = {qid} AND EXISTS "
    "(SELECT 1 FROM darasa.job_info j WHERE j.id = q.job_info_id AND j.user_id = {uid})",
    "list": "SELECT {cols} FROM darasa.questions q WHERE q.job_info_id = {jid} AND EXISTS "
    "(SELECT 1 FROM darasa.job_info j WHERE j.id = {jid} AND j.user_id = {uid}) "
    "ORDER BY q.created_at DESC, q.id DESC",
}
RAW_OWN, RAW_JOIN = "raw psycopg, own user_id", "raw psycopg, join to job_info"
LOOP = 5000  # executions per server-side sample


def _raw(conn: psycopg.AsyncConnection[Any], sql: str, params: dict[str, Any]) -> Any:
    async def op() -> Any:
        cur = await conn.execute(sql, params, prepare=True)
        return await cur.fetchall()

    return op


async def server_side(
    conn: psycopg.AsyncConnection[Any], forms: dict[str, str], params: dict[str, Any]
) -> dict[str, float]:
    """Median µs per execution of each form inside the server: a PL/pgSQL loop of `LOOP` runs
    in one transaction (no network, no client, locks taken once), the forms interleaved."""
    values = {k: psycopg.sql.Literal(v).as_string(conn) for k, v in params.items()}
    declare = (
        f"qid uuid := {values['qid']}; jid uuid := {values['jid']}; uid text := {values['uid']}"
    )
    samples: dict[str, list[float]] = {name: [] for name in forms}
    for _ in range(15):
        for name, sql in forms.items():
            body = "PERFORM " + sql.format(qid="qid", jid="jid", uid="uid").removeprefix("SELECT ")
            await conn.execute(
                f"DO $$ DECLARE {declare}; t0 timestamptz := clock_timestamp(); BEGIN "
                f"FOR i IN 1..{LOOP} LOOP {body}; END LOOP; PERFORM set_config('bench.us', "
                f"(extract(epoch FROM clock_timestamp() - t0) * 1e6 / {LOOP})::text, false); END $$"
            )
            cur = await conn.execute("SELECT current_setting('bench.us')::float8")
            samples[name].append(float((await cur.fetchone() or (0.0,))[0]))
    return {name: statistics.median(v) for name, v in samples.items()}


async def run(
    url: str, *, rounds: int = 100, calls: int = 20
) -> tuple[list[Result], dict[str, float]]:
    """Seed `url` (migrated to head), then time both reads, from the client and in the server."""
    migrate.upgrade(url)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        for statement in SEED:
            await conn.execute(statement)
        cur = await conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'darasa' "
            "AND table_name = 'questions' ORDER BY ordinal_position"
        )
        names = [str(r[0]) for r in await cur.fetchall()]
        cur = await conn.execute(
            "SELECT q.id, q.job_info_id, j.user_id FROM darasa.questions q "
            "JOIN darasa.job_info j ON j.id = q.job_info_id WHERE j.user_id = 'u500' LIMIT 1"
        )
        question, job, user = await cur.fetchone() or ()
        params = {"qid": question, "jid": job, "uid": user}
        has_owner = "user_id" in names
        cols = ", ".join(f"q.{n}" for n in names)
        keep = {"qid": "{qid}", "jid": "{jid}", "uid": "{uid}"}  # filled by server_side
        forms = {f"{n} join": sql.format(cols=cols, **keep) for n, sql in JOIN.items()}
        if has_owner:
            forms |= {f"{n} own": sql.format(cols=cols, **keep) for n, sql in OWN.items()}
        in_server = await server_side(conn, forms, params)
    placeholders = {"qid": "%(qid)s", "jid": "%(jid)s", "uid": "%(uid)s"}
    raw = await raw_connection(url)
    db = Database(DatabaseSettings(url=url, test_mode=False), cache=None)
    calls_of = {
        "get": lambda: db.questions.get(question, user_id=user),
        "list": lambda: db.questions.list_for_job_info(job, user_id=user),
    }
    results: list[Result] = []
    try:
        for name, operation in (("get", "questions.get"), ("list", "list_for_job_info")):
            join = JOIN[name].format(cols=cols, **placeholders)
            contenders = [
                Contender("darasa-db", calls_of[name]),
                Contender(RAW_JOIN, _raw(raw, join, params)),
            ]
            if has_owner:
                own = OWN[name].format(cols=cols, **placeholders)
                contenders.append(Contender(RAW_OWN, _raw(raw, own, params)))
            baseline = RAW_OWN if has_owner else RAW_JOIN
            results += await compare(
                operation, contenders, rounds=rounds, calls=calls, baseline=baseline
            )
    finally:
        await db.close()
        await raw.close()
    return results, in_server


def main() -> None:
    """Print the figures of one run (see the module docstring)."""
    server = None
    if len(sys.argv) > 1:
        url = sys.argv[1]
    else:
        server = start_server()
        url = create_database(server.url, "child_reads")
    try:
        results, in_server = asyncio.run(run(url))
        print(f"schema at revision {migrate.current(url)}")
    finally:
        if server is not None:
            server.stop()
    for row in summarise(results):
        ratio = row["ratio_to_raw"]
        print(
            f"{row['operation']:<18} {row['contender']:<32} median {row['median_us']:>8.1f} µs"
            f"  p95 {row['p95_us']:>8.1f} µs  ratio {ratio:.3f}"
        )
    for form, us in in_server.items():
        print(f"in the server, {form:<10} {us:6.2f} µs per execution")


if __name__ == "__main__":
    main()
