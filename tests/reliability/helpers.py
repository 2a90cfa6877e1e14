"""Helpers of the reliability tests: bounded polling, raw SQL on a connection of its own."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from darasa_db import Database, DatabaseSettings, DatabaseUnavailableError


def fault_settings(url: str, **overrides: Any) -> DatabaseSettings:
    """Production-like settings (not test mode) with a small pool and short timeouts."""
    values: dict[str, Any] = {
        "url": url,
        "test_mode": False,
        "pool_size": 3,
        "max_overflow": 3,
        "pool_timeout": 2.0,
        "connect_timeout": 2.0,
    }
    return DatabaseSettings(**{**values, **overrides})


async def until(check: Callable[[], Any], limit: float, what: str) -> float:
    """Poll `check` (sync or async) until it is true; the seconds it took. Fails after `limit`."""
    start = time.monotonic()
    while True:
        try:
            result = check()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return time.monotonic() - start
        except DatabaseUnavailableError:
            pass
        if time.monotonic() - start > limit:
            pytest.fail(f"{what}: not within {limit} s")
        await asyncio.sleep(0.05)


async def raw(url: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    """Run `query` on a connection of its own (autocommit); its rows, if any."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute(query, params or None)
        return await cur.fetchall() if cur.description else []


async def terminate(url: str, pid: int) -> None:
    """Kill backend `pid` from another connection and wait until it is gone."""
    assert await raw(url, "SELECT pg_terminate_backend(%s, 5000)", pid) == [(True,)]


async def pool_is_idle(db: Database) -> bool:
    """True when every connection of the pool is back in it (returns are asynchronous)."""
    stats = (await db.pool()).get_stats()
    return stats["pool_size"] == stats["pool_available"]
