"""A `Database` across the life of a program: exit without `close()`, several event loops,
`close()` after the loop that used it is gone."""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import textwrap
import time

import pytest

from darasa_db import Database, DatabaseSettings
from darasa_db.schemas import UserUpsert
from lifecycle.helpers import server_connections, settled_connections

SCRIPT = """
import asyncio, sys
from darasa_db import Database, DatabaseSettings
from darasa_db.schemas import UserUpsert

db = Database(DatabaseSettings(url=sys.argv[1], test_mode=False, application_name="exiting"))

async def main():
    await db.users.upsert(UserUpsert(id="exit", email="exit@example.com", name="E"))
    await db.users.get("exit")
    if sys.argv[2] == "raise":
        raise RuntimeError("the script's own error")

asyncio.run(main())
print("returned")
"""


def _run_script(url: str, ending: str) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {k: v for k, v in os.environ.items() if k not in ("DARASA_DB_TEST_MODE",)}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SCRIPT), url, ending],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    return done, time.monotonic() - started


def test_a_script_that_never_closes_exits_promptly(darasa_database_url: str):
    done, took = _run_script(darasa_database_url, "return")
    assert done.returncode == 0, done.stderr
    assert "returned" in done.stdout
    assert took < 10
    assert "error connecting" not in done.stderr


def test_a_script_that_raises_exits_promptly_showing_its_own_error(darasa_database_url: str):
    done, took = _run_script(darasa_database_url, "raise")
    assert done.returncode == 1
    assert "RuntimeError: the script's own error" in done.stderr
    assert took < 10
    assert "error connecting" not in done.stderr


def test_one_database_serves_successive_event_loops_and_closes_from_another(
    darasa_database_url: str,
):
    settings = DatabaseSettings(
        url=darasa_database_url, test_mode=False, application_name="two-loops"
    )
    db = Database(settings)

    async def first() -> None:
        await db.users.upsert(UserUpsert(id="loops", email="loops@example.com", name="One"))

    async def second() -> bool:
        for _ in range(200):  # the cache comes back on the new loop
            if db.cache_ready:
                break
            await db.users.get("loops")
            await asyncio.sleep(0.05)
        user = await db.users.get("loops")
        return db.cache_ready and user is not None and user.name == "One"

    asyncio.run(first())
    assert asyncio.run(second())
    asyncio.run(first())
    asyncio.run(db.close())  # from yet another loop: no error, no connection left
    assert asyncio.run(settled_connections(darasa_database_url, "two-loops")) == 0


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_loop_closed_without_cleanup_is_replaced_on_the_next_one(darasa_database_url: str):
    # (the dead loop's own pending tasks, psycopg_pool's among them, complain when collected)
    settings = DatabaseSettings(url=darasa_database_url, test_mode=False, application_name="raw")
    db = Database(settings)

    async def use() -> str | None:
        await db.users.upsert(UserUpsert(id="raw", email="raw@example.com", name="Raw"))
        for _ in range(200):
            if db.cache_ready:
                break
            await asyncio.sleep(0.05)
        user = await db.users.get("raw")
        return user.name if user is not None and db.cache_ready else None

    loop = asyncio.new_event_loop()  # closed without cancelling its tasks (no asyncio.run)
    assert loop.run_until_complete(use()) == "Raw"
    loop.close()
    assert asyncio.run(use()) == "Raw"  # the pool and listener of the dead loop are replaced
    asyncio.run(db.close())


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_close_after_the_first_loop_is_gone_leaks_no_connection(darasa_database_url: str):
    # (the dead loop's own pending tasks, psycopg_pool's among them, complain when collected)
    settings = DatabaseSettings(url=darasa_database_url, test_mode=False, application_name="gone")
    db = Database(settings)

    def use_in_its_own_loop() -> None:
        loop = asyncio.new_event_loop()
        loop.run_until_complete(db.users.get("nobody"))
        loop.close()  # without asyncio.run's cleanup: the pool is left on a dead loop

    await asyncio.to_thread(use_in_its_own_loop)
    assert await server_connections(darasa_database_url, "gone") >= 1
    await db.close()  # from another loop and thread: closes what the pool made, never raises
    gc.collect()  # what the dead loop's tasks were still connecting goes with them
    assert await settled_connections(darasa_database_url, "gone") == 0


async def test_a_loop_running_in_another_thread_is_refused_clearly(darasa_database_url: str):
    db = Database(DatabaseSettings(url=darasa_database_url, test_mode=True), cache=None)
    await db.users.get("nobody")  # bound to this (running) loop
    from darasa_db import DarasaDBError

    def other_thread() -> None:
        with pytest.raises(DarasaDBError, match="one Database per event loop"):
            asyncio.run(db.users.get("nobody"))

    await asyncio.to_thread(other_thread)
    assert await db.users.get("nobody") is None
    await db.close()
