"""What the OpenTelemetry instrumentation costs: `job_infos.get`, uncached and cached, as a ratio
to raw psycopg in the same process. Each mode runs in processes of its own, in turn:

- `absent`: every import of opentelemetry fails (an install without the `otel` extra);
- `unconfigured`: installed and imported, no provider set (the plain repositories, by design);
- `traced`: an SDK tracer provider, every call sampled, spans batched to an exporter that drops;
- `before` (with `--before SRC`): the package from SRC, e.g. a worktree of the commit before the
  instrumentation (`git worktree add /tmp/before <commit>`, SRC `/tmp/before/src`), absent too.

    python -m benchmarks.telemetry [--repeat 3] [--before SRC]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["main"]


MODES = ("absent", "unconfigured", "traced", "before")


async def _run(url: str, mode: str, *, rounds: int, calls: int) -> list[dict[str, Any]]:
    import psycopg

    from benchmarks.harness import Contender, compare, summarise
    from benchmarks.rows import RAW, RAW_GET
    from darasa_db import Database, DatabaseSettings, TagCache
    from darasa_db.schemas import JobInfoCreate, UserUpsert

    def database(cache: TagCache | None) -> Database:
        return Database(DatabaseSettings(url=url, test_mode=False), cache=cache)

    plain, cached = database(None), database(TagCache())
    user = await plain.users.upsert(UserUpsert(id="user_bench", email="b@example.com", name="B"))
    job = await plain.job_infos.create(
        user.id,
        JobInfoCreate(name="Acme", title="Dev", experience_level="senior", description="Build."),
    )
    if mode == "traced":
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            SpanExporter,
            SpanExportResult,
        )

        class Dropping(SpanExporter):
            def export(self, spans: Sequence[Any]) -> SpanExportResult:
                return SpanExportResult.SUCCESS

        from darasa_db.telemetry import instrument

        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(Dropping()))
        for db in (plain, cached):
            instrument(db, tracer_provider=provider)
    await cached.pool()
    for _ in range(500):  # cached reads start once the listener listens
        if cached.cache_ready:
            break
        await asyncio.sleep(0.01)
    raw = await psycopg.AsyncConnection.connect(url, autocommit=True)

    async def raw_get() -> Any:
        cur = await raw.execute(RAW_GET, (job.id, user.id), prepare=True)
        return await cur.fetchone()

    def getter(db: Database) -> Any:
        return lambda: db.job_infos.get(job.id, user_id=user.id)

    results = await compare(
        "job_infos.get (uncached)",
        [Contender(RAW, raw_get), Contender(mode, getter(plain))],
        rounds=rounds,
        calls=calls,
        baseline=RAW,
    )
    results += await compare(
        "job_infos.get (cached)",
        [Contender(RAW, raw_get), Contender(mode, getter(cached), inner=20)],
        rounds=rounds,
        calls=calls,
        baseline=RAW,
    )
    await raw.close()
    for db in (plain, cached):
        await db.close()
    return [row for row in summarise(results) if row["contender"] == mode]


def _one(url: str, mode: str, rounds: int, calls: int) -> None:
    """One process's measurement, printed as JSON."""
    if mode in ("absent", "before"):
        sys.modules["opentelemetry"] = None  # type: ignore[assignment]
    else:
        import opentelemetry.trace  # noqa: F401  (installed and imported)
    print(json.dumps(asyncio.run(_run(url, mode, rounds=rounds, calls=calls))))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="processes per mode")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--before", metavar="SRC", help="also time the package found in SRC")
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.mode:
        _one(args.url, args.mode, args.rounds, args.calls)
        return 0
    from benchmarks.server import embedded_server

    ratios: dict[tuple[str, str], list[float]] = {}
    medians: dict[tuple[str, str], list[float]] = {}
    with embedded_server() as url:
        for _ in range(args.repeat):
            for mode in MODES if args.before else MODES[:-1]:
                env = {**os.environ, "PYTHONPATH": args.before} if mode == "before" else None
                out = subprocess.run(
                    [sys.executable, "-m", "benchmarks.telemetry", "--url", url, "--mode", mode,
                     "--rounds", str(args.rounds), "--calls", str(args.calls)],
                    check=True, capture_output=True, text=True, env=env,
                ).stdout  # fmt: skip
                for row in json.loads(out.strip().splitlines()[-1]):
                    ratios.setdefault((row["operation"], mode), []).append(row["ratio_to_raw"])
                    medians.setdefault((row["operation"], mode), []).append(row["median_us"])
    print(f"median of {args.repeat} processes per mode, modes in turn")
    for (operation, mode), values in ratios.items():
        print(
            f"{operation:<26} {mode:<13} {statistics.median(medians[operation, mode]):>8.2f} µs"
            f"  ratio to raw psycopg {statistics.median(values):.3f}"
            f"  (runs: {', '.join(f'{v:.3f}' for v in values)})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
