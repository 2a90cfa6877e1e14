"""`TagCache`: an in-process cache of immutable DTOs, invalidated by tag.

Built on `cachetools.TTLCache` (bounded size, time to live). Invalidation is generation based: a
load that began before an invalidation of one of its tags never stores its result, and a reader
never joins such a load. Concurrent misses for one key in one event loop load once.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from cachetools import TTLCache

__all__ = ["CacheStats", "TagCache"]

T = TypeVar("T")
_MISSING: Any = object()
_MAX_GENERATIONS = 100_000
_Entry = tuple[Any, tuple[str, ...]]  # (value, tags)


@dataclass(frozen=True)
class CacheStats:
    """Counters since the cache was made; `size` is the number of live entries now.

    `misses` counts every read that found no entry (also those that joined a load in flight),
    `loads` the loaders actually run, `invalidations` the `invalidate()` and `clear()` calls.
    """

    hits: int
    misses: int
    loads: int
    invalidations: int
    size: int


@dataclass
class _Flight:
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    started: int


class _Entries(TTLCache[Hashable, _Entry]):
    """A `TTLCache` that reports the entries it drops by itself (expiry and size eviction)."""

    def __init__(
        self,
        maxsize: int,
        ttl: float,
        timer: Callable[[], float],
        dropped: Callable[[Hashable, tuple[str, ...]], None],
    ) -> None:
        super().__init__(maxsize, ttl, timer)
        self._dropped = dropped

    def expire(self, time: float | None = None) -> list[tuple[Hashable, _Entry]]:
        expired = super().expire(time)
        for key, (_, tags) in expired or ():  # cachetools < 5.5 returns None
            self._dropped(key, tags)
        return expired

    def popitem(self) -> tuple[Hashable, _Entry]:
        key, entry = super().popitem()
        self._dropped(key, entry[1])
        return key, entry

    def get(self, key: Hashable, default: Any = None) -> Any:
        """One lookup, not cachetools' `in` then `[]`: a hit costs 0.3 µs instead of 1.2 µs."""
        try:
            return self[key]
        except KeyError:
            return default


class TagCache:
    """Bounded, TTL-expiring cache whose entries are dropped by tag.

    `maxsize` bounds the number of entries, `ttl` is in seconds. Safe from many asyncio tasks
    and from several threads. Values must be immutable (the repositories store frozen DTOs and
    tuples): every reader gets the same object.
    """

    def __init__(
        self,
        maxsize: int = 10_000,
        ttl: float = 300.0,
        *,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        self.maxsize = maxsize
        self.ttl = ttl
        self._data = _Entries(maxsize, ttl, timer, self._unindex)
        self._keys_by_tag: dict[str, set[Hashable]] = {}
        self._invalidated_at: dict[str, int] = {}  # tag -> clock value of its last invalidation
        self._clock = 0  # advances on every invalidation
        self._floor = 0  # loads started before this never store (clear(), pruned generations)
        self._flights: dict[Hashable, _Flight] = {}
        self._running = 0  # loaders running now (including superseded ones)
        self._lock = threading.RLock()
        self._hits = self._misses = self._loads = self._invalidations = 0

    # ------------------------------------------------------------------ basic API
    def get(self, key: Hashable, default: Any = None) -> Any:
        """The cached value of `key`, or `default`."""
        with self._lock:
            entry = self._data.get(key, _MISSING)
            if entry is _MISSING:
                self._misses += 1
                return default
            self._hits += 1
            return entry[0]

    def hit(self, key: Hashable, default: Any = None) -> Any:
        """The cached value of `key`, counted as a hit, or `default`, not counted: for a caller
        that goes on to `get_or_load` on a miss (a hit then costs no loader and no coroutine)."""
        with self._lock:
            entry = self._data.get(key, _MISSING)
            if entry is _MISSING:
                return default
            self._hits += 1
            return entry[0]

    def set(self, key: Hashable, value: Any, tags: Iterable[str]) -> None:
        """Store `value` under `key`, to be dropped when any of `tags` is invalidated."""
        with self._lock:
            self._store(key, value, tuple(tags))

    def invalidate(self, *tags: str) -> None:
        """Drop every entry stored under any of `tags`; loads in flight for them will not store."""
        if not tags:
            return
        with self._lock:
            self._clock += 1
            self._invalidations += 1
            for tag in tags:
                if self._running:  # only loads in flight need to know when a tag changed
                    self._invalidated_at[tag] = self._clock
                for key in self._keys_by_tag.pop(tag, ()):
                    entry = self._data.pop(key, None)
                    if entry is not None:
                        self._unindex(key, entry[1])
            if len(self._invalidated_at) > _MAX_GENERATIONS:
                self._invalidated_at.clear()
                self._floor = self._clock

    def clear(self) -> None:
        """Drop everything; loads in flight will not store."""
        with self._lock:
            self._clock += 1
            self._floor = self._clock
            self._invalidations += 1
            self._data.clear()
            self._keys_by_tag.clear()
            self._invalidated_at.clear()

    @property
    def stats(self) -> CacheStats:
        """Hits, misses, loads, invalidations and current size."""
        with self._lock:
            self._data.expire()
            return CacheStats(
                self._hits, self._misses, self._loads, self._invalidations, len(self._data)
            )

    def __len__(self) -> int:
        with self._lock:
            self._data.expire()
            return len(self._data)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._data

    # ------------------------------------------------------------------ loading
    async def get_or_load(
        self, key: Hashable, tags: Iterable[str], loader: Callable[[], Awaitable[T]]
    ) -> T:
        """Return the cached value of `key`, or run `loader` once for all concurrent callers.

        The result is stored under `tags` unless one of them was invalidated while it loaded;
        a caller arriving after such an invalidation starts a fresh load instead of joining.
        A loader's exception reaches every caller waiting on it and nothing is stored; when
        the loading task is cancelled, the waiters load again.
        """
        tags = tuple(tags)
        loop = asyncio.get_running_loop()
        while True:
            with self._lock:
                entry = self._data.get(key, _MISSING)
                if entry is not _MISSING:
                    self._hits += 1
                    return entry[0]  # type: ignore[no-any-return]
                self._misses += 1
                flight = self._flights.get(key)
                if (
                    flight is None
                    or flight.loop is not loop
                    or not self._fresh(tags, flight.started)
                ):
                    flight = None
                    started = self._clock
                    future: asyncio.Future[Any] = loop.create_future()
                    self._flights[key] = _Flight(future, loop, started)
                    self._loads += 1
                    self._running += 1
            if flight is not None:
                try:
                    return await asyncio.shield(flight.future)
                except asyncio.CancelledError:
                    task = asyncio.current_task()
                    if flight.future.cancelled() and not (task and task.cancelling()):
                        continue  # the loading task was cancelled, not us: load again
                    raise
            return await self._load(key, tags, loader, future, started)

    async def _load(
        self,
        key: Hashable,
        tags: tuple[str, ...],
        loader: Callable[[], Awaitable[T]],
        future: asyncio.Future[Any],
        started: int,
    ) -> T:
        try:
            value = await loader()
        except BaseException as exc:
            with self._lock:
                self._end_flight(key, future)
            if isinstance(exc, Exception):
                future.set_exception(exc)
                future.exception()  # retrieved: no "never retrieved" warning without waiters
            else:  # cancelled (or the interpreter is stopping): waiters load again
                future.cancel()
            raise
        with self._lock:
            fresh = self._fresh(tags, started)
            self._end_flight(key, future)
            if fresh:
                self._store(key, value, tags)
        future.set_result(value)
        return value

    # ------------------------------------------------------------------ internals (locked)
    def _fresh(self, tags: tuple[str, ...], started: int) -> bool:
        if started < self._floor:
            return False
        return all(self._invalidated_at.get(tag, 0) <= started for tag in tags)

    def _end_flight(self, key: Hashable, future: asyncio.Future[Any]) -> None:
        flight = self._flights.get(key)
        if flight is not None and flight.future is future:
            del self._flights[key]
        self._running -= 1
        if not self._running:
            self._invalidated_at.clear()  # a later load starts after every invalidation so far

    def _store(self, key: Hashable, value: Any, tags: tuple[str, ...]) -> None:
        old = self._data.get(key, _MISSING)
        if old is not _MISSING:
            self._unindex(key, old[1])
        self._data[key] = (value, tags)
        for tag in tags:
            self._keys_by_tag.setdefault(tag, set()).add(key)

    def _unindex(self, key: Hashable, tags: tuple[str, ...]) -> None:
        for tag in tags:
            keys = self._keys_by_tag.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._keys_by_tag[tag]
