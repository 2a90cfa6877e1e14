"""`complete()`, which returns pooled connections and sends COMMITs: work that finishes
without suspending runs inline (no task); work that suspends still runs to its end when the
caller is cancelled, and the cancellation is raised afterwards."""

from __future__ import annotations

import asyncio

import pytest

from darasa_db._connector import complete


async def test_work_that_never_suspends_runs_inline_without_a_task():
    ran_in: list[asyncio.Task[object] | None] = []

    async def work() -> int:
        ran_in.append(asyncio.current_task())
        return 7

    assert await complete(work()) == 7
    assert ran_in == [asyncio.current_task()]


async def test_work_that_suspends_finishes_in_a_task_with_every_step():
    steps: list[str] = []

    async def work() -> str:
        steps.append("start")
        await asyncio.sleep(0)
        steps.append("middle")
        await asyncio.sleep(0.01)
        steps.append("end")
        return "done"

    assert await complete(work()) == "done"
    assert steps == ["start", "middle", "end"]


@pytest.mark.parametrize("absorb", [False, True])
async def test_a_cancelled_caller_lets_suspended_work_finish(absorb: bool):
    gate = asyncio.Event()
    finished = asyncio.Event()

    async def work() -> None:
        await gate.wait()  # e.g. the pool's lock held by another task
        finished.set()

    async def caller() -> str:
        await complete(work(), absorb_cancel=absorb)
        return "returned"

    task = asyncio.create_task(caller())
    await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.sleep(0.01)
    assert not finished.is_set()
    gate.set()
    if absorb:
        assert await task == "returned"
    else:
        with pytest.raises(asyncio.CancelledError):
            await task
    assert finished.is_set()


async def test_errors_reach_the_caller_from_both_paths():
    async def fails_at_once() -> None:
        raise ValueError("inline")

    async def fails_later() -> None:
        await asyncio.sleep(0)
        raise ValueError("in the task")

    with pytest.raises(ValueError, match="inline"):
        await complete(fails_at_once())
    with pytest.raises(ValueError, match="in the task"):
        await complete(fails_later())


async def test_an_exception_thrown_into_suspended_work_is_handled_by_it():
    handled: list[str] = []

    async def work() -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            handled.append("cleanup")
            raise
        return "unreachable"

    async def caller() -> None:
        await complete(work())

    task = asyncio.create_task(caller())
    await asyncio.sleep(0.01)
    for inner in asyncio.all_tasks():
        if inner is not task and inner is not asyncio.current_task():
            inner.cancel()  # the event loop ending cancels the shielded task itself
    with pytest.raises(asyncio.CancelledError):
        await task
    assert handled == ["cleanup"]
