"""`python -m benchmarks [--quick] [--json PATH]`: run every operation, print, write JSON."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from benchmarks.context import open_bench
from benchmarks.harness import Result, summarise
from benchmarks.ingest import run_ingest
from benchmarks.replicas import run_replicas
from benchmarks.report import environment, markdown, table, write_json
from benchmarks.rows import run_rows
from benchmarks.server import embedded_server
from benchmarks.vectors import (
    drop_search_index,
    run_create_many,
    run_filtered,
    run_hybrid,
    run_precision,
    run_search,
)

__all__ = ["main"]

DEFAULT_JSON = Path(__file__).parent / "results" / "latest.json"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smoke run (under 2 minutes)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write results")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    return parser.parse_args(argv)


async def _run(url: str, quick: bool) -> dict[str, Any]:
    rounds = 3 if quick else 7
    calls = 100 if quick else 300
    bench = await open_bench(url)
    try:
        env = await environment(bench.raw)
        results: list[Result] = []
        _progress("row operations")
        results += await run_rows(bench, rounds=rounds, calls=calls)
        index = await drop_search_index(bench)
        _progress("documents.create_many")
        results += await run_create_many(
            bench, rows=2_000 if quick else 10_000, rounds=2 if quick else 5
        )
        _progress("documents.similarity_search (loading and indexing documents)")
        search, search_info = await run_search(
            bench,
            index,
            documents=8_000 if quick else 20_000,
            queries=50 if quick else 200,
            rounds=rounds,
            calls=50 if quick else 100,
        )
        results += search
        _progress("documents.hybrid_search")
        hybrid, hybrid_info = await run_hybrid(
            bench,
            documents=8_000 if quick else 20_000,
            rounds=rounds,
            calls=50 if quick else 100,
        )
        results += hybrid
        _progress("HNSW index precision: full against half (building both)")
        precision, precision_info = await run_precision(
            bench,
            documents=8_000 if quick else 20_000,
            queries=50 if quick else 200,
            rounds=rounds,
            calls=50 if quick else 100,
        )
        results += precision
        _progress("ingestion with the HNSW index (loading and indexing documents)")
        ingest, ingest_info = await run_ingest(
            bench,
            documents=5_000 if quick else 20_000,
            batch=200 if quick else 500,
            rounds=2 if quick else 3,
        )
        results += ingest
        _progress("read routing (building a primary and a streaming replica)")
        results += await run_replicas(rounds=rounds, calls=calls)
        filtered_info: dict[int, dict[str, Any]] = {}
        for documents in (3_000,) if quick else (20_000, 100_000):
            _progress(f"filtered similarity_search by owner share ({documents:,} documents)")
            filtered, filtered_info[documents] = await run_filtered(
                bench, documents=documents, queries=6 if quick else 20, rounds=1 if quick else 3
            )
            results += filtered
    finally:
        await bench.close()
    return {
        "mode": "quick" if quick else "full",
        "environment": env,
        "similarity_search": search_info,
        "hybrid_search": hybrid_info,
        "index_precision": precision_info,
        "filtered_search": filtered_info,
        "ingest": ingest_info,
        "results": summarise(results),
    }


def _progress(what: str) -> None:
    print(f"… {what}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the suite; 0 on success."""
    args = _parse(argv)
    warnings.filterwarnings("ignore", category=Warning, module="platformdirs")
    start = time.perf_counter()
    with embedded_server() as url:
        payload = asyncio.run(_run(url, args.quick))
    payload["seconds"] = round(time.perf_counter() - start, 1)
    print(markdown(payload["results"]) if args.markdown else table(payload["results"]))
    print()
    for key, value in payload["similarity_search"].items():
        print(f"similarity_search {key}: {value}")
    for key, value in payload["hybrid_search"].items():
        print(f"hybrid_search {key}: {value}")
    for key, value in payload["ingest"].items():
        print(f"ingest {key}: {value}")
    for key, value in payload["index_precision"].items():
        print(f"index precision {key}: {value}")
    for documents, info in payload["filtered_search"].items():
        for key, value in info.items():
            print(f"filtered search ({documents:,} docs) {key}: {value}")
    write_json(args.json, payload)
    print(f"\n{payload['mode']} run in {payload['seconds']} s; JSON written to {args.json}")
    return 0
