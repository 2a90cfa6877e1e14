"""Interleaved timing: every contender of an operation runs in the same rounds, in turn."""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Contender", "Result", "compare", "summarise"]

Op = Callable[[], Awaitable[Any]]


@dataclass
class Contender:
    """One way of doing an operation: `name`, the async call, and what one call handles."""

    name: str
    op: Op
    items: int = 1
    """Rows (or lookups) one call handles, for rows/s figures."""
    inner: int | None = None
    """Calls per sample when not `compare`'s `inner`."""
    reset: Op | None = None
    """Untimed work before each batch of calls (e.g. empty the table a load fills)."""


@dataclass
class Result:
    """Per-call timings of one contender, in microseconds."""

    operation: str
    name: str
    samples: list[float] = field(default_factory=list)
    items: int = 1
    baseline: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def median(self) -> float:
        """Median µs per call."""
        return statistics.median(self.samples)

    @property
    def p95(self) -> float:
        """95th percentile µs per call (nearest rank)."""
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]

    @property
    def ops_per_s(self) -> float:
        """Calls per second at the median."""
        return 1e6 / self.median

    @property
    def items_per_s(self) -> float:
        """Rows per second at the median."""
        return self.items * 1e6 / self.median


async def compare(
    operation: str,
    contenders: list[Contender],
    *,
    rounds: int,
    calls: int,
    inner: int = 1,
    warmup: int = 20,
    baseline: str | None = None,
) -> list[Result]:
    """Time every contender for `rounds` rounds of `calls` samples each, rotating who goes first.

    One sample is the mean of `inner` back-to-back calls (use it for sub-microsecond work).
    """
    results = {
        c.name: Result(operation, c.name, items=c.items, baseline=baseline) for c in contenders
    }
    for contender in contenders:
        for _ in range(warmup):
            if contender.reset is not None:
                await contender.reset()
            await contender.op()
    clock = time.perf_counter_ns
    for round_ in range(rounds):
        shift = round_ % len(contenders)
        for contender in contenders[shift:] + contenders[:shift]:
            op, samples = contender.op, results[contender.name].samples
            repeat = contender.inner or inner
            if contender.reset is not None:
                await contender.reset()
            for _ in range(calls):
                start = clock()
                for _ in range(repeat):
                    await op()
                samples.append((clock() - start) / 1000 / repeat)
    return list(results.values())


def summarise(results: list[Result]) -> list[dict[str, Any]]:
    """Rows for the table and the JSON: figures rounded, ratio to the operation's baseline."""
    medians = {(r.operation, r.name): r.median for r in results}
    rows = []
    for r in results:
        base = medians.get((r.operation, r.baseline)) if r.baseline else None
        rows.append(
            {
                "operation": r.operation,
                "contender": r.name,
                "median_us": round(r.median, 2),
                "p95_us": round(r.p95, 2),
                "ops_per_s": round(r.ops_per_s, 1),
                "rows_per_s": round(r.items_per_s, 1) if r.items > 1 else None,
                "ratio_to_raw": round(r.median / base, 3) if base else None,
                "samples": len(r.samples),
                **r.extra,
            }
        )
    return rows
