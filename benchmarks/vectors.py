"""Document operations: create_many against COPY and executemany; HNSW similarity search."""

from __future__ import annotations

import itertools
import time
from typing import Any

import numpy as np
import psycopg
from pgvector.psycopg import register_vector_async
from psycopg.types.json import Jsonb

from benchmarks.context import Bench
from benchmarks.data import (
    clustered_embeddings,
    exact_top_k,
    queries_near,
    recall_at_k,
)
from benchmarks.harness import Contender, Result, compare
from darasa_db.repositories import documents as documents_repository
from darasa_db.schemas import DocumentCreate

__all__ = [
    "build_search_index",
    "drop_search_index",
    "run_create_many",
    "run_hybrid",
    "run_search",
]

RAW = "raw psycopg"
COPY = "psycopg binary COPY"
EXECUTEMANY = "psycopg executemany"
DARASA = "darasa-db"
CONTENT = "Rate limiting protects a public API from bursts of traffic. " * 8  # ~500 characters
COPY_SQL = (
    "COPY darasa.documents (user_id, title, content, metadata, embedding) "
    "FROM STDIN (FORMAT BINARY)"
)
INSERT_SQL = (
    "INSERT INTO darasa.documents (user_id, title, content, metadata, embedding) "
    "VALUES (%s, %s, %s, %s, %s)"
)
HNSW = "ix_documents_embedding_hnsw"
NOISE = 1.0  # noise norm relative to the cluster centre's (both before normalising)
PER_CLUSTER = 100  # documents per cluster centre


async def drop_search_index(b: Bench) -> str:
    """Drop the HNSW index (bulk loads then run at disk speed); return its definition."""
    cur = await b.raw.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s", (HNSW,))
    row = await cur.fetchone()
    assert row is not None, "the migrations made no HNSW index"
    await b.raw.execute(f"DROP INDEX darasa.{HNSW}")
    return str(row[0])


async def build_search_index(b: Bench, definition: str) -> float:
    """Create the HNSW index again, as the migrations define it; return the seconds it took."""
    await b.raw.execute("SET maintenance_work_mem = '1GB'")
    start = time.perf_counter()
    await b.raw.execute(definition)
    await b.raw.execute("ANALYZE darasa.documents")
    return time.perf_counter() - start


async def run_create_many(b: Bench, *, rows: int, rounds: int) -> list[Result]:
    """`documents.create_many` of `rows` 1536-d documents; the table is emptied before each."""
    vectors, _ = clustered_embeddings(rows, clusters=_clusters(rows), noise=NOISE, seed=7)
    titles = [f"Document {i}" for i in range(rows)]
    metadata = {"source": "benchmark"}
    documents = [
        DocumentCreate(title=t, content=CONTENT, metadata=metadata, embedding=v)
        for t, v in zip(titles, vectors, strict=True)
    ]
    user_id = b.seed.loader

    async def darasa() -> Any:
        return await b.db.documents.create_many(user_id, documents)

    async def copy() -> Any:
        async with b.raw.transaction(), b.raw.cursor().copy(COPY_SQL) as cp:
            cp.set_types(["text", "text", "text", "jsonb", "vector"])
            for title, vector in zip(titles, vectors, strict=True):
                await cp.write_row((user_id, title, CONTENT, Jsonb(metadata), vector))

    async def executemany() -> Any:
        async with b.raw.transaction(), b.raw.cursor() as cur:
            await cur.executemany(
                INSERT_SQL,
                [
                    (user_id, title, CONTENT, Jsonb(metadata), vector)
                    for title, vector in zip(titles, vectors, strict=True)
                ],
            )

    async def empty() -> None:
        await b.raw.execute("TRUNCATE darasa.documents")

    contenders = [
        Contender(DARASA, darasa, items=rows, reset=empty),
        Contender(COPY, copy, items=rows, reset=empty),
        Contender(EXECUTEMANY, executemany, items=rows, reset=empty),
    ]
    results = await compare(
        f"documents.create_many ({rows:,} rows, 1536-d)",
        contenders,
        rounds=rounds,
        calls=1,
        warmup=1,
        baseline=COPY,
    )
    await empty()
    return results


def _clusters(count: int) -> int:
    return max(10, count // PER_CLUSTER)


async def _load_search_documents(b: Bench, count: int) -> tuple[Any, Any]:
    """COPY `count` clustered documents for the searcher; return their vectors and centres."""
    vectors, centres = clustered_embeddings(count, clusters=_clusters(count), noise=NOISE, seed=3)
    async with b.raw.transaction(), b.raw.cursor().copy(COPY_SQL) as cp:
        cp.set_types(["text", "text", "text", "jsonb", "vector"])
        for index, vector in enumerate(vectors):
            await cp.write_row((b.seed.searcher, str(index), CONTENT, Jsonb({}), vector))
    return vectors, centres


async def run_search(
    b: Bench, index: str, *, documents: int, queries: int, rounds: int, calls: int
) -> tuple[list[Result], dict[str, Any]]:
    """Top-10 similarity search at ef_search 40 and 100, with recall@10 against exact search.

    `index` is the HNSW index definition, built after the documents are loaded.
    """
    vectors, centres = await _load_search_documents(b, documents)
    build_seconds = await build_search_index(b, index)
    asked = queries_near(centres, queries, noise=NOISE, seed=5)
    truth = exact_top_k(vectors, asked, 10)
    sql = b.db.sql(documents_repository._SEARCHES[(False, False, False)])  # the repository's SQL
    user_id, limit = b.seed.searcher, 10
    info: dict[str, Any] = {
        "documents": documents,
        "clusters": _clusters(documents),
        "noise": NOISE,
        "queries": queries,
        "index_build_s": round(build_seconds, 1),
        "plan": await _plan(b, sql, asked[0]),
    }
    results: list[Result] = []
    for ef in (40, 100):
        db = b.database(hnsw_ef_search=ef)
        raw = await _raw_connection(b, ef)

        async def darasa_one(q: Any, db: Any = db) -> list[int]:
            matches = await db.documents.similarity_search(q, user_id=user_id, limit=limit)
            return [int(m.document.title) for m in matches]

        async def raw_one(q: Any, raw: Any = raw) -> list[int]:
            cur = await raw.execute(
                sql, {"user_id": user_id, "query": q, "limit": limit}, prepare=True
            )
            return [int(row[2]) for row in await cur.fetchall()]

        for name, one in ((DARASA, darasa_one), (RAW, raw_one)):
            found = [set(await one(q)) for q in asked]
            info[f"recall@10 {name} ef_search={ef}"] = round(recall_at_k(found, truth), 4)
        contenders = [
            Contender(DARASA, _cycling(darasa_one, asked)),
            Contender(RAW, _cycling(raw_one, asked)),
        ]
        timed = await compare(
            f"documents.similarity_search top-10 ef_search={ef} ({documents:,} docs)",
            contenders,
            rounds=rounds,
            calls=calls,
            baseline=RAW,
        )
        for r in timed:
            r.extra["recall@10"] = info[f"recall@10 {r.name} ef_search={ef}"]
        results += timed
        await raw.close()
    return results, info


def _cycling(one: Any, asked: np.ndarray[Any, Any]) -> Any:
    queries = itertools.cycle(list(asked))

    async def op() -> Any:
        return await one(next(queries))

    return op


async def _raw_connection(b: Bench, ef: int) -> psycopg.AsyncConnection[Any]:
    conn = await psycopg.AsyncConnection.connect(
        b.url, autocommit=True, prepare_threshold=0, options=f"-c hnsw.ef_search={ef}"
    )
    await register_vector_async(conn)
    return conn


async def _plan(b: Bench, sql: bytes, query: Any) -> str:
    """The scan the planner picks for the search (an HNSW index scan, or not)."""
    cur = await b.raw.execute(
        b"EXPLAIN (COSTS OFF) " + sql,
        {"user_id": b.seed.searcher, "query": query, "limit": 10},
    )
    lines = [str(row[0]).strip() for row in await cur.fetchall()]
    return "; ".join(line.split(" (")[0] for line in lines if "Scan" in line)


KEYWORDS = 50  # documents given a unique keyword for hybrid search's recall


async def run_hybrid(
    b: Bench, *, documents: int, rounds: int, calls: int
) -> tuple[list[Result], dict[str, Any]]:
    """`hybrid_search` beside `similarity_search` (top-10, the same random query vectors) on
    the searcher's documents loaded by `run_search`, and the recall of a known-keyword set.

    `KEYWORDS` documents get a unique word (`keyword<n>`) in their content; the query for one
    is that word with a random vector: recall@10 is the share of queries whose document is in
    the top 10 (similarity_search alone finds them only by chance).
    """
    step = documents // KEYWORDS
    chosen = {f"keyword{n}": n * step for n in range(KEYWORDS)}
    async with b.raw.transaction():
        for word, index in chosen.items():
            await b.raw.execute(
                "UPDATE darasa.documents SET content = content || ' ' || %s "
                "WHERE user_id = %s AND title = %s",
                (word, b.seed.searcher, str(index)),
            )
    await b.raw.execute("ANALYZE darasa.documents")
    rng = np.random.default_rng(11)
    asked = rng.standard_normal((KEYWORDS, 1536)).astype(np.float32)
    asked /= np.linalg.norm(asked, axis=1, keepdims=True)
    user_id, limit = b.seed.searcher, 10
    db = b.database()
    found_hybrid = found_vector = 0
    for (word, index), q in zip(chosen.items(), asked, strict=True):
        hybrid = await db.documents.hybrid_search(word, q, user_id=user_id, limit=limit)
        found_hybrid += str(index) in {m.document.title for m in hybrid}
        similar = await db.documents.similarity_search(q, user_id=user_id, limit=limit)
        found_vector += str(index) in {m.document.title for m in similar}
    info = {
        "documents": documents,
        "keyword queries": KEYWORDS,
        "recall@10 hybrid_search (keyword + random vector)": found_hybrid / KEYWORDS,
        "recall@10 similarity_search (random vector)": found_vector / KEYWORDS,
    }
    words = itertools.cycle(list(chosen))
    vectors = itertools.cycle(list(asked))

    async def hybrid_one() -> Any:
        return await db.documents.hybrid_search(
            next(words), next(vectors), user_id=user_id, limit=limit
        )

    async def similarity_one() -> Any:
        return await db.documents.similarity_search(next(vectors), user_id=user_id, limit=limit)

    results = await compare(
        f"documents.hybrid_search vs similarity_search top-10 ({documents:,} docs)",
        [Contender("hybrid_search", hybrid_one), Contender("similarity_search", similarity_one)],
        rounds=rounds,
        calls=calls,
        baseline="similarity_search",
    )
    return results, info
