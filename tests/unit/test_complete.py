"""`complete`: work that must not be cut in half by a cancellation (returning a connection,
a COMMIT) runs to its end, in the caller's task when it never waits."""

from __future__ import annotations

import asyncio

import pytest

from darasa_db._connector import complete


async def test_work_that_never_waits_runs_in_the_callers_task():
    caller = asyncio.current_task()

    async def work() -> object:
        return asyncio.current_task()

    assert await complete(work()) is caller


async def test_work_that_waits_finishes_even_when_the_caller_is_cancelled():
    steps: list[str] = []
    release = asyncio.Event()

    async def work() -> str:
        steps.append("started")
        await release.wait()
        await asyncio.sleep(0)
        steps.append("finished")
        return "done"

    caller = asyncio.create_task(complete(work()))
    await asyncio.sleep(0)
    caller.cancel()
    await asyncio.sleep(0)
    assert steps == ["started"]  # still waiting: the cancellation did not cut it
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await caller  # raised afterwards
    assert steps == ["started", "finished"]


async def test_an_absorbed_cancellation_returns_the_outcome():
    release = asyncio.Event()

    async def work() -> str:
        await release.wait()
        return "committed"

    caller = asyncio.create_task(complete(work(), absorb_cancel=True))
    await asyncio.sleep(0)
    caller.cancel()
    release.set()
    assert await caller == "committed"


async def test_errors_of_the_work_propagate_before_and_after_waiting():
    async def fails_at_once() -> None:
        raise ValueError("at once")

    async def fails_later() -> None:
        await asyncio.sleep(0)
        raise KeyError("later")

    with pytest.raises(ValueError, match="at once"):
        await complete(fails_at_once())
    with pytest.raises(KeyError, match="later"):
        await complete(fails_later())
