"""Fixtures: a primary with a streaming replica (tests/replica_pair.py), one pair per session,
a fresh migrated database on it per test, and `Database`s routed over the pair.

The pair is built from the embedded server's binaries, independent of the session's test
server: without the binaries these tests fail saying so, they never skip. A test may pause
replay or stop either server; the next test finds both running, replay on, caught up.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from darasa_db import Database, DatabaseSettings, TagCache, migrate
from replica_pair import ReplicaPair

TEMPLATE = "darasa_replica_template"
_counter = itertools.count()


@pytest.fixture(scope="session")
def replica_pair() -> Iterator[ReplicaPair]:
    """The session's primary and streaming replica, with a migrated template database."""
    failure = None
    try:
        pair = ReplicaPair().build()
    except Exception as exc:
        failure = f"could not build a primary and a streaming replica: {exc}"
    if failure is not None:
        pytest.fail(failure, pytrace=False)
    try:
        pair.create_database(TEMPLATE)
        migrate.upgrade(pair.url_for(pair.primary_url, TEMPLATE))
        yield pair
    finally:
        pair.destroy()


class Replicated:
    """This test's database on the pair: `primary_url`, `replica_url`, and the pair's controls
    (awaitable, so that the Databases' listeners keep running meanwhile)."""

    def __init__(self, pair: ReplicaPair, name: str) -> None:
        self.pair = pair
        self.name = name
        self.primary_url = pair.url_for(pair.primary_url, name)
        self.replica_url = pair.url_for(pair.replica_url, name)

    async def _call(self, method: Callable[..., Any], *args: Any) -> None:
        await asyncio.to_thread(method, *args)

    async def pause_replay(self) -> None:
        """The replica stops replaying: the primary's later commits are invisible on it."""
        await self._call(self.pair.pause_replay)

    async def resume_replay(self) -> None:
        await self._call(self.pair.resume_replay)

    async def wait_caught_up(self) -> None:
        """Until the replica has replayed everything committed on the primary so far."""
        await self._call(self.pair.wait_caught_up)

    async def stop_primary(self, mode: str = "fast") -> None:
        """`pg_ctl stop -m fast`; `mode="immediate"` is a crash."""
        await self._call(self.pair.stop_primary, mode)

    async def start_primary(self) -> None:
        await self._call(self.pair.start_primary)

    async def stop_replica(self, mode: str = "fast") -> None:
        await self._call(self.pair.stop_replica, mode)

    async def start_replica(self) -> None:
        await self._call(self.pair.start_replica)


@pytest.fixture
def replicated(replica_pair: ReplicaPair) -> Iterator[Replicated]:
    """A fresh migrated database on the pair, already on the replica."""
    replica_pair.heal()
    name = f"darasa_replica_{os.getpid()}_{next(_counter)}"
    replica_pair.create_database(name, template=TEMPLATE)
    replica_pair.wait_caught_up()
    yield Replicated(replica_pair, name)
    replica_pair.heal()
    replica_pair.drop_database(name)


OpenDatabase = Callable[..., Database]


@pytest.fixture
async def open_db(replicated: Replicated) -> AsyncIterator[OpenDatabase]:
    """Make a test-mode `Database` on this test's database with the pair's replica (closed
    after the test). `cache` as for `Database` (default: none); `replicas=False`: primary only;
    `replica_urls=` other replica URLs; other keywords are settings."""
    made: list[Database] = []

    def make(
        *,
        cache: TagCache | None = None,
        replicas: bool = True,
        replica_urls: tuple[str, ...] | None = None,
        **settings: Any,
    ) -> Database:
        if replicas:
            settings["replica_urls"] = replica_urls or (replicated.replica_url,)
        settings.setdefault("test_mode", True)
        settings.setdefault("url", replicated.primary_url)
        db = Database(DatabaseSettings(**settings), cache=cache)
        made.append(db)
        return db

    yield make
    for db in made:
        await asyncio.wait_for(db.close(), 30)
