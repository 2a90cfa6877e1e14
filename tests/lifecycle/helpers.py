"""What the lifecycle tests ask the server: how many connections a `Database` holds."""

from __future__ import annotations

import asyncio

import psycopg


async def server_connections(url: str, application_name: str) -> int:
    """Backends the server lists for `application_name` now."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
            (application_name,),
        )
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def settled_connections(url: str, application_name: str) -> int:
    """The count once it reaches 0 or stops within 5 s (a closed backend leaves the list a
    moment after its client)."""
    count = await server_connections(url, application_name)
    for _ in range(50):
        if count == 0:
            break
        await asyncio.sleep(0.1)
        count = await server_connections(url, application_name)
    return count
