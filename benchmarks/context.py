"""What every operation's contenders share: connections, engines, Databases and seeded ids."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import psycopg
from pgvector.psycopg import register_vector_async
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from benchmarks.data import Seed, seed
from darasa_db import Database, DatabaseSettings, TagCache

__all__ = ["Bench", "open_bench", "raw_connection"]


@dataclass
class Bench:
    """The contenders' handles, all on one embedded server."""

    url: str
    raw: psycopg.AsyncConnection[Any]
    """Raw psycopg: one autocommit connection, every statement prepared."""
    engine: AsyncEngine
    """SQLAlchemy: a LIFO pool of 5 (as darasa-db), psycopg's default prepare threshold."""
    sessions: async_sessionmaker[AsyncSession]
    db: Database
    """darasa-db in production mode, no cache."""
    cached: Database
    """darasa-db in production mode with a TagCache (opened by `start_cache`)."""
    seed: Seed
    _extra: list[Database] = field(default_factory=list, repr=False)

    async def start_cache(self) -> None:
        """Open the cached Database; its listener then hears every NOTIFY of darasa-db writes."""
        await self.cached.pool()  # opens the pool and starts the listener
        for _ in range(500):  # cached reads start once the cross-process listener listens
            if self.cached.cache_ready:
                return
            await asyncio.sleep(0.01)
        raise RuntimeError("the cache listener never started")

    def database(self, **settings: Any) -> Database:
        """Another uncached production-mode Database on the server (closed by `close`)."""
        db = Database(DatabaseSettings(url=self.url, test_mode=False, **settings), cache=None)
        self._extra.append(db)
        return db

    async def close(self) -> None:
        """Close every Database, the engine and the raw connection."""
        for db in (self.db, self.cached, *self._extra):
            await db.close()
        await self.engine.dispose()
        await self.raw.close()


async def raw_connection(url: str) -> psycopg.AsyncConnection[Any]:
    """A raw psycopg connection as the contenders use it: autocommit, every statement prepared."""
    return await psycopg.AsyncConnection.connect(url, autocommit=True, prepare_threshold=0)


async def open_bench(url: str) -> Bench:
    """Connect every contender and seed the data the row operations use."""
    raw = await raw_connection(url)
    await register_vector_async(raw)
    settings = DatabaseSettings(url=url, test_mode=False)
    engine = create_async_engine(settings.sqlalchemy_url, pool_size=5, pool_use_lifo=True)
    bench = Bench(
        url=url,
        raw=raw,
        engine=engine,
        sessions=async_sessionmaker(engine, expire_on_commit=False),
        db=Database(settings, cache=None),
        cached=Database(settings, cache=TagCache(maxsize=10_000, ttl=300)),
        seed=await seed(raw),
    )
    await bench.db.health_check()
    return bench
