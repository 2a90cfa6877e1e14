"""Ingestion with a live HNSW index: documents/s of `documents.create_many` and of binary COPY
into a table that already holds `documents` clustered documents and the index, for the
full-precision index (the migration's) and the half-precision expression index."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np
from psycopg.types.json import Jsonb

from benchmarks.context import Bench
from benchmarks.data import clustered_embeddings, queries_near
from benchmarks.harness import Contender, Result, compare
from darasa_db.schemas import DocumentCreate

__all__ = ["INDEXES", "run_ingest"]

COPY = "psycopg binary COPY"
DARASA = "darasa-db"
CONTENT = "Rate limiting protects a public API from bursts of traffic. " * 8  # ~500 characters
COPY_SQL = (
    "COPY darasa.documents (user_id, title, content, metadata, embedding) "
    "FROM STDIN (FORMAT BINARY)"
)
INDEXES = {
    "vector(1536), vector_cosine_ops": (
        "CREATE INDEX ix_documents_embedding_hnsw ON darasa.documents "
        "USING hnsw (embedding vector_cosine_ops)"
    ),
    "halfvec(1536) expression, halfvec_cosine_ops": (
        "CREATE INDEX ix_documents_embedding_halfvec_hnsw ON darasa.documents "
        "USING hnsw ((embedding::halfvec(1536)) halfvec_cosine_ops)"
    ),
}
BUILD_MEMORY = "1GB"  # maintenance_work_mem for the index builds: the graph fits in memory
NOISE = 1.0
PER_CLUSTER = 100


async def run_ingest(
    b: Bench, *, documents: int, batch: int, rounds: int
) -> tuple[list[Result], dict[str, Any]]:
    """For each index kind: `documents` loaded without it, the index built, then `rounds`
    batches of `batch` fresh documents from each contender, interleaved.

    Every batch is new points around the same cluster centres (an HNSW graph merges identical
    vectors, so a repeated batch would be cheaper than real data). Empties the table first and
    leaves it empty, with the HNSW indexes it found (the migrations') built again.
    """
    base, centres = clustered_embeddings(
        documents, clusters=max(10, documents // PER_CLUSTER), noise=NOISE, seed=21
    )
    fresh = queries_near(centres, batch * 2 * (rounds + 1) * len(INDEXES), noise=NOISE, seed=22)
    batches = iter(np.split(fresh, len(fresh) // batch))
    user_id = b.seed.loader
    info: dict[str, Any] = {"documents": documents, "batch": batch, "rounds": rounds}
    found = await _drop_hnsw_indexes(b)
    await b.raw.execute("TRUNCATE darasa.documents")
    info["load without index, documents/s"] = round(documents / await _copy(b, user_id, base))
    results: list[Result] = []
    for kind, ddl in INDEXES.items():
        await b.raw.execute("DELETE FROM darasa.documents WHERE title LIKE 'ingest %'")
        await b.raw.execute("VACUUM ANALYZE darasa.documents")
        await b.raw.execute(f"SET maintenance_work_mem = '{BUILD_MEMORY}'")
        start = time.perf_counter()
        await b.raw.execute(ddl)
        info[f"index build s, {kind}"] = round(time.perf_counter() - start, 1)
        await b.raw.execute("RESET maintenance_work_mem")
        operation = f"ingest into {documents:,} documents + HNSW {kind} ({batch} per call)"
        results += await _compare(b, operation, batches, batch=batch, rounds=rounds)
        await _drop_hnsw_indexes(b)
    await b.raw.execute("TRUNCATE darasa.documents")
    for definition in found:  # on the empty table: instant
        await b.raw.execute(definition)
    return results, info


async def _compare(
    b: Bench, operation: str, batches: Iterator[Any], *, batch: int, rounds: int
) -> list[Result]:
    user_id = b.seed.loader
    ready: list[list[DocumentCreate]] = []

    async def prepare() -> None:  # validated before the timed call, as a caller does
        ready[:] = [_creates(next(batches))]

    async def darasa() -> Any:
        return await b.db.documents.create_many(user_id, ready.pop())

    async def copy() -> Any:
        return await _copy(b, user_id, next(batches), prefix="ingest")

    contenders = [
        Contender(DARASA, darasa, items=batch, reset=prepare),
        Contender(COPY, copy, items=batch),
    ]
    return await compare(operation, contenders, rounds=rounds, calls=1, warmup=1, baseline=COPY)


def _creates(vectors: np.ndarray[Any, Any]) -> list[DocumentCreate]:
    return [
        DocumentCreate(title=f"ingest {i}", content=CONTENT, metadata={}, embedding=v)
        for i, v in enumerate(vectors)
    ]


async def _copy(
    b: Bench, user_id: str, vectors: np.ndarray[Any, Any], *, prefix: str = "base"
) -> float:
    """Binary COPY of `vectors` as documents in one transaction; the seconds it took."""
    start = time.perf_counter()
    async with b.raw.transaction(), b.raw.cursor().copy(COPY_SQL) as cp:
        cp.set_types(["text", "text", "text", "jsonb", "vector"])
        for index, vector in enumerate(vectors):
            await cp.write_row((user_id, f"{prefix} {index}", CONTENT, Jsonb({}), vector))
    return time.perf_counter() - start


async def _drop_hnsw_indexes(b: Bench) -> list[str]:
    """Drop every HNSW index on the documents; return their definitions."""
    cur = await b.raw.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'darasa' "
        "AND tablename = 'documents' AND indexdef ILIKE '%USING hnsw%'"
    )
    found = await cur.fetchall()
    for name, _ in found:
        await b.raw.execute(f'DROP INDEX darasa."{name}"')
    return [str(definition) for _, definition in found]
