"""Unit tests of `TagCache`: expiry, bounds, tags, single flight, generations, threads."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Awaitable, Callable

import pytest

from darasa_db import CacheStats, TagCache


class FakeTimer:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def assert_index_consistent(cache: TagCache) -> None:
    """Every live entry is indexed under each of its tags, and nothing else is indexed."""
    live = {key: tags for key, (_, tags) in cache._data.items()}
    indexed = {(tag, key) for tag, keys in cache._keys_by_tag.items() for key in keys}
    assert indexed == {(tag, key) for key, tags in live.items() for tag in tags}


# ---------------------------------------------------------------------- TTL and size
def test_entry_expires_after_its_ttl():
    timer = FakeTimer()
    cache = TagCache(maxsize=10, ttl=60, timer=timer)
    cache.set("k", "v", ["t"])
    timer.now += 59.9
    assert cache.get("k") == "v"
    timer.now += 0.2
    assert cache.get("k") is None
    assert cache.stats.size == 0
    assert cache._keys_by_tag == {}  # the expired entry left the tag index too


def test_cache_holds_at_most_maxsize_entries_dropping_the_least_recently_used():
    cache = TagCache(maxsize=3, ttl=60, timer=FakeTimer())
    for key in "abc":
        cache.set(key, key.upper(), [f"id:{key}"])
    assert cache.get("a") == "A"  # "a" is now more recent than "b"
    cache.set("d", "D", ["id:d"])
    assert len(cache) == 3
    assert "b" not in cache
    assert [cache.get(k) for k in "acd"] == ["A", "C", "D"]
    assert_index_consistent(cache)


def test_tag_index_and_generations_stay_bounded_by_live_entries():
    cache = TagCache(maxsize=50, ttl=60, timer=FakeTimer())
    for i in range(5000):
        cache.set(("page", i), i, ["documents", "user:u1:documents", f"id:{i}:documents"])
        cache.invalidate(f"id:{i}:conversations")  # a generation no load needs
    assert len(cache) == 50
    assert sum(len(keys) for keys in cache._keys_by_tag.values()) == 3 * 50
    assert cache._invalidated_at == {}  # no load in flight needs a generation
    assert_index_consistent(cache)


def test_rejects_a_useless_size_or_ttl():
    with pytest.raises(ValueError, match="maxsize"):
        TagCache(maxsize=0)
    with pytest.raises(ValueError, match="ttl"):
        TagCache(ttl=0)


# ---------------------------------------------------------------------- tags
def test_invalidating_one_tag_drops_every_key_stored_under_it():
    cache = TagCache()
    for i in range(200):
        cache.set(("job_infos.get", i), i, ["job_infos", "user:u1:job_infos"])
    cache.set(("job_infos.get", "other"), "x", ["job_infos", "user:u2:job_infos"])
    cache.invalidate("user:u1:job_infos")
    assert all(("job_infos.get", i) not in cache for i in range(200))
    assert cache.get(("job_infos.get", "other")) == "x"
    assert len(cache) == 1
    assert_index_consistent(cache)


def test_a_key_under_several_tags_is_dropped_by_any_one_of_them():
    cache = TagCache()
    tags = ["questions", "user:u1:questions", "job_info:j1:questions"]
    for tag in tags:
        cache.set("list", ("q1", "q2"), tags)
        cache.set("unrelated", 1, ["interviews"])
        cache.invalidate(tag)
        assert "list" not in cache
        assert cache.get("unrelated") == 1
    assert_index_consistent(cache)


def test_storing_a_key_again_under_other_tags_forgets_the_old_tags():
    cache = TagCache()
    cache.set("k", 1, ["a"])
    cache.set("k", 2, ["b"])
    cache.invalidate("a")
    assert cache.get("k") == 2
    cache.invalidate("b")
    assert "k" not in cache


def test_clear_drops_everything():
    cache = TagCache()
    for i in range(10):
        cache.set(i, i, [f"t{i}"])
    cache.clear()
    assert len(cache) == 0
    assert cache.get(3) is None
    assert cache._keys_by_tag == {}


def test_stats_count_hits_misses_loads_invalidations_and_size():
    async def scenario() -> CacheStats:
        cache = TagCache()
        cache.set("a", 1, ["t"])
        cache.get("a")  # hit
        cache.get("b")  # miss
        await cache.get_or_load("c", ["u"], _const(3))  # miss + load
        await cache.get_or_load("c", ["u"], _const(4))  # hit
        cache.invalidate("t")
        cache.invalidate("nothing-under-it")
        return cache.stats

    assert asyncio.run(scenario()) == CacheStats(hits=2, misses=2, loads=1, invalidations=2, size=1)


# ---------------------------------------------------------------------- single flight
def _const(value: object) -> Callable[[], Awaitable[object]]:
    async def load() -> object:
        return value

    return load


async def until(event: asyncio.Event) -> None:
    """Wait for `event`, failing instead of hanging when the code under test never sets it."""
    async with asyncio.timeout(5):
        await event.wait()


class GatedLoader:
    """A loader that counts its calls and waits until the test opens the gate."""

    def __init__(self, value: object) -> None:
        self.value = value
        self.calls = 0
        self.started = asyncio.Event()
        self.gate = asyncio.Event()

    async def __call__(self) -> object:
        self.calls += 1
        self.started.set()
        await self.gate.wait()
        if isinstance(self.value, BaseException):
            raise self.value
        return self.value


async def test_hundred_concurrent_misses_run_the_loader_once():
    cache = TagCache()
    loader = GatedLoader(("row",))
    readers = [asyncio.create_task(cache.get_or_load("k", ["t"], loader)) for _ in range(100)]
    await until(loader.started)
    loader.gate.set()
    results = await asyncio.gather(*readers)
    assert loader.calls == 1
    assert all(result is results[0] for result in results)
    assert results[0] == ("row",)
    stats = cache.stats
    assert (stats.loads, stats.misses, stats.size) == (1, 100, 1)
    assert await cache.get_or_load("k", ["t"], loader) == ("row",)
    assert loader.calls == 1


async def test_loader_exception_reaches_every_waiter_and_nothing_is_stored():
    cache = TagCache()
    loader = GatedLoader(RuntimeError("database said no"))
    readers = [asyncio.create_task(cache.get_or_load("k", ["t"], loader)) for _ in range(10)]
    await until(loader.started)
    loader.gate.set()
    results = await asyncio.gather(*readers, return_exceptions=True)
    assert loader.calls == 1
    assert all(isinstance(r, RuntimeError) and str(r) == "database said no" for r in results)
    assert "k" not in cache
    assert await cache.get_or_load("k", ["t"], _const("recovered")) == "recovered"


async def test_cancelling_the_loading_task_lets_its_waiters_load_again():
    cache = TagCache()
    first = GatedLoader("never")
    loader_task = asyncio.create_task(cache.get_or_load("k", ["t"], first))
    await until(first.started)
    second = GatedLoader("value")
    waiters = [asyncio.create_task(cache.get_or_load("k", ["t"], second)) for _ in range(5)]
    await asyncio.sleep(0)  # the waiters join the first flight
    loader_task.cancel()
    await until(second.started)  # one waiter took over the load
    second.gate.set()
    assert await asyncio.gather(*waiters) == ["value"] * 5
    assert loader_task.cancelled()
    assert (first.calls, second.calls) == (1, 1)
    assert cache.get("k") == "value"


async def test_cancelling_a_waiter_does_not_cancel_the_load():
    cache = TagCache()
    loader = GatedLoader("value")
    loading = asyncio.create_task(cache.get_or_load("k", ["t"], loader))
    await until(loader.started)
    waiter = asyncio.create_task(cache.get_or_load("k", ["t"], loader))
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    loader.gate.set()
    assert await loading == "value"
    assert cache.get("k") == "value"


# ---------------------------------------------------------------------- generations
@pytest.mark.embedded_smoke
async def test_load_that_began_before_an_invalidation_does_not_store_its_result():
    cache = TagCache()
    stale = GatedLoader("old")
    reading = asyncio.create_task(cache.get_or_load("k", ["user:u1:job_infos"], stale))
    await until(stale.started)  # the read is in flight (its snapshot is older than the write)
    cache.invalidate("user:u1:job_infos")  # the write commits
    stale.gate.set()
    assert await reading == "old"  # its caller still gets what it read
    assert "k" not in cache  # but nobody else will
    assert cache.get("k") is None


async def test_reader_after_an_invalidation_does_not_join_the_earlier_load():
    cache = TagCache()
    tags = ["job_infos", "id:j1:job_infos"]
    stale = GatedLoader("old")
    early = asyncio.create_task(cache.get_or_load("k", tags, stale))
    await until(stale.started)
    cache.invalidate("id:j1:job_infos")
    fresh = GatedLoader("new")
    late = asyncio.create_task(cache.get_or_load("k", tags, fresh))
    await until(fresh.started)  # a load of its own, not the stale flight
    fresh.gate.set()
    assert await late == "new"
    stale.gate.set()  # the stale load ends last and must not overwrite the fresh value
    assert await early == "old"
    assert cache.get("k") == "new"
    assert cache.stats.loads == 2


async def test_invalidating_an_unrelated_tag_during_a_load_keeps_its_result():
    cache = TagCache()
    loader = GatedLoader("value")
    reading = asyncio.create_task(cache.get_or_load("k", ["user:u1:documents"], loader))
    await until(loader.started)
    cache.invalidate("user:u2:documents")
    loader.gate.set()
    assert await reading == "value"
    assert cache.get("k") == "value"


async def test_clear_during_a_load_keeps_its_result_out():
    cache = TagCache()
    loader = GatedLoader("value")
    reading = asyncio.create_task(cache.get_or_load("k", ["t"], loader))
    await until(loader.started)
    cache.clear()
    loader.gate.set()
    assert await reading == "value"
    assert "k" not in cache


# ---------------------------------------------------------------------- threads
def test_many_threads_hammering_the_cache_keep_it_consistent():
    cache = TagCache(maxsize=64, ttl=60)
    errors: list[BaseException] = []
    tags = [f"user:u{i}:job_infos" for i in range(8)]

    def hammer(seed: int) -> None:
        rnd = random.Random(seed)
        try:
            for _ in range(4000):
                key = rnd.randrange(200)
                op = rnd.random()
                if op < 0.45:
                    value = cache.get(key)
                    assert value is None or value == key * 10
                elif op < 0.85:
                    cache.set(key, key * 10, rnd.sample(tags, 2))
                elif op < 0.99:
                    cache.invalidate(rnd.choice(tags))
                else:
                    cache.clear()
        except BaseException as exc:
            errors.append(exc)

    def load_in_own_loop(seed: int) -> None:
        async def main() -> None:
            rnd = random.Random(seed)
            for _ in range(300):
                key = rnd.randrange(200)
                readers = [
                    cache.get_or_load(key, rnd.sample(tags, 2), _const(key * 10)) for _ in range(3)
                ]
                assert await asyncio.gather(*readers) == [key * 10] * 3

        try:
            asyncio.run(main())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(6)]
    threads += [threading.Thread(target=load_in_own_loop, args=(100 + i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(cache) <= 64
    assert cache._flights == {}
    assert cache._running == 0
    assert_index_consistent(cache)
