"""Document operations: create_many against COPY and executemany; HNSW similarity search;
filtered search by owner share against an exact scan (recall, full pages, latency); full
against half precision HNSW (size, build, latency, recall, loads into the live index)."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
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
from darasa_db.schemas.user import email_key

__all__ = [
    "build_search_index",
    "drop_search_index",
    "run_create_many",
    "run_filtered",
    "run_hybrid",
    "run_precision",
    "run_search",
]

RAW = "raw psycopg"
COPY = "psycopg binary COPY"
EXECUTEMANY = "psycopg executemany"
DARASA = "darasa-db"
EXACT = "raw exact scan"
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
    half = "halfvec" in index
    sql = b.db.sql(documents_repository._NEAREST[(False, half)])  # the repository's index SQL
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
            params = {"user_id": user_id, "query": q, "limit": limit, "candidates": 40}
            return await _index_page(raw, sql, params)

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


async def _index_page(
    conn: psycopg.AsyncConnection[Any], sql: bytes, params: dict[str, Any]
) -> list[int]:
    """The repository's index statement as raw psycopg would run it: in a transaction with the
    repository's settings (sorts discouraged, iterative scans), planned with the values."""
    async with conn.transaction():
        await conn.execute(_SETTINGS, prepare=False)
        cur = await conn.execute(sql, params, prepare=False)
        return [int(row[2]) for row in await cur.fetchall()]


_SETTINGS = (
    "SET LOCAL enable_sort = off; SET LOCAL hnsw.iterative_scan = relaxed_order; "
    f"SET LOCAL hnsw.max_scan_tuples = {documents_repository.SCAN_TUPLES}"
)


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
        {"user_id": b.seed.searcher, "query": query, "limit": 10, "candidates": 40},
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


# ------------------------------------------------------------------ filtered search by share

SHARES = {"0.15 %": 0.0015, "1 %": 0.01, "25 %": 0.25, "60 %": 0.60}
"""Owners of the filtered search table and their share of its rows; the rest is 20 others'."""
TOPICS = 4  # metadata {"topic": n % 4}: a filter keeps a quarter of an owner's documents
OTHERS = 20


def owner_id(share: str) -> str:
    """The user who owns `share` of the filtered search table."""
    return "user_share_" + share.replace(" %", "").replace(".", "_")


async def load_owners(
    b: Bench, documents: int, shares: dict[str, float]
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """COPY `documents` clustered documents spread over owners holding `shares` of them (the
    rest over `OTHERS` users), in random order; metadata {"topic": row % TOPICS}.

    Returns the vectors, each row's owner, each row's topic and the cluster centres.
    """
    vectors, centres = clustered_embeddings(documents, clusters=_clusters(documents), noise=NOISE)
    counts = {owner_id(s): max(1, round(documents * f)) for s, f in shares.items()}
    rest = documents - sum(counts.values())
    counts |= {f"user_share_other_{i}": rest // OTHERS for i in range(OTHERS)}
    counts[f"user_share_other_{OTHERS - 1}"] += rest - OTHERS * (rest // OTHERS)
    owners = np.random.default_rng(9).permutation(np.repeat(list(counts), list(counts.values())))
    topics = np.arange(documents) % TOPICS
    await b.raw.execute("TRUNCATE darasa.documents")
    async with b.raw.transaction():
        for user_id in counts:
            email = f"{user_id}@example.com"
            await b.raw.execute(
                "INSERT INTO darasa.users (id, email, name, email_key) "
                "VALUES (%s, %s, 'Owner', %s) ON CONFLICT (id) DO NOTHING",
                (user_id, email, email_key(email)),
            )
        async with b.raw.cursor().copy(COPY_SQL) as cp:
            cp.set_types(["text", "text", "text", "jsonb", "vector"])
            for index, vector in enumerate(vectors):
                topic = Jsonb({"topic": int(topics[index])})
                await cp.write_row((str(owners[index]), str(index), CONTENT, topic, vector))
    return vectors, owners, topics, centres


@dataclass
class Case:
    """One filtered-search situation: an owner, maybe a topic, maybe a threshold."""

    share: str
    metadata: bool
    threshold: bool
    queries: list[tuple[Any, float | None]]
    truth: list[list[int]]  # per query, the exact page (row indices, best first)

    @property
    def name(self) -> str:
        topic = " + topic" if self.metadata else ""
        return self.share + topic + (" + threshold" if self.threshold else "")


def cases(
    vectors: Any, owners: Any, topics: Any, asked: Any, shares: dict[str, float], limit: int
) -> list[Case]:
    """Every owner with and without a topic filter and a threshold (keeping 0 to 10 rows),
    with the exact pages in numpy (float64 cosine)."""
    found = []
    for share in shares:
        for metadata, threshold in itertools.product((False, True), repeat=2):
            keep = owners == owner_id(share)
            if metadata:
                keep &= topics == 1
            rows = np.flatnonzero(keep)
            queries, truth = [], []
            for n, q in enumerate(asked):
                sims = vectors[rows].astype(np.float64) @ q.astype(np.float64)
                order = np.argsort(-sims, kind="stable")
                cut = None
                if threshold:  # between the k-th and (k+1)-th best: k = 0, 1, …, 10
                    k = min(n % (limit + 1), len(rows))
                    above = sims[order[k - 1]] if k else 1.0
                    below = sims[order[k]] if k < len(rows) else -1.0
                    cut = float(above + below) / 2
                    order = order[:k]
                queries.append((q, cut))
                truth.append(rows[order[:limit]].tolist())
            found.append(Case(share, metadata, threshold, queries, truth))
    return found


async def run_filtered(
    b: Bench, *, documents: int, queries: int, rounds: int, shares: dict[str, float] = SHARES
) -> tuple[list[Result], dict[str, Any]]:
    """`similarity_search` top-10 for owners of `shares` of the rows, with and without a topic
    filter and a threshold: recall@10 and full pages against numpy, and latency against an
    exact scan of the caller's rows in raw psycopg (the repository's exact statement).

    Loads its own table (the HNSW index as the migrations define it, built after the load).
    """
    definition = await drop_search_index(b)
    vectors, owners, topics, centres = await load_owners(b, documents, shares)
    build_seconds = await build_search_index(b, definition)
    limit = 10
    asked = queries_near(centres, queries, noise=NOISE, seed=17)
    db = b.database()
    info: dict[str, Any] = {
        "documents": documents,
        "index": definition.split(" USING ")[1],
        "index_build_s": round(build_seconds, 1),
        "queries per case": queries,
    }
    results: list[Result] = []
    for case in cases(vectors, owners, topics, asked, shares, limit):
        timed = await _time_case(b, db, case, documents=documents, rounds=rounds, limit=limit)
        info[f"{case.name}: recall@10"] = timed[0].extra["recall@10"]
        info[f"{case.name}: full pages"] = timed[0].extra["full pages"]
        results += timed
    return results, info


async def _time_case(
    b: Bench, db: Any, case: Case, *, documents: int, rounds: int, limit: int
) -> list[Result]:
    """darasa-db (recall and full pages measured first) against raw psycopg's exact scan."""
    user_id = owner_id(case.share)
    topic = {"topic": 1} if case.metadata else None
    exact_sql = b.db.sql(documents_repository._EXACT[(case.threshold, case.metadata, False)])

    async def darasa_one(q: Any, cut: float | None) -> list[int]:
        matches = await db.documents.similarity_search(
            q, user_id=user_id, limit=limit, threshold=cut, metadata=topic
        )
        return [int(m.document.title) for m in matches]

    async def exact_one(q: Any, cut: float | None) -> list[int]:
        params = {"user_id": user_id, "query": q, "limit": limit}
        if cut is not None:
            params["max_distance"] = 1.0 - cut
        if topic is not None:
            params["metadata"] = Jsonb(topic)
        cur = await b.raw.execute(exact_sql, params, prepare=True)
        return [int(row[2]) for row in await cur.fetchall()]

    pages = [await darasa_one(q, cut) for q, cut in case.queries]
    hits = sum(len(set(p) & set(t)) for p, t in zip(pages, case.truth, strict=True))
    wanted = sum(len(t) for t in case.truth)
    full = sum(len(p) == len(t) for p, t in zip(pages, case.truth, strict=True))
    contenders = [
        Contender(DARASA, _cycling_pairs(darasa_one, case.queries)),
        Contender(EXACT, _cycling_pairs(exact_one, case.queries)),
    ]
    timed = await compare(
        f"similarity_search top-10, owner of {case.name} ({documents:,} docs)",
        contenders,
        rounds=rounds,
        calls=len(case.queries),
        warmup=len(case.queries),
        baseline=EXACT,
    )
    timed[0].extra["recall@10"] = round(hits / wanted, 4) if wanted else 1.0
    timed[0].extra["full pages"] = f"{full}/{len(pages)}"
    return timed


def _cycling_pairs(one: Any, pairs: list[tuple[Any, float | None]]) -> Any:
    cycle = itertools.cycle(pairs)

    async def op() -> Any:
        return await one(*next(cycle))

    return op


# ------------------------------------------------------------------ index precision

PRECISIONS = {
    "full precision (vector)": f"CREATE INDEX {HNSW} ON darasa.documents "
    "USING hnsw (embedding vector_cosine_ops)",
    "half precision (halfvec)": f"CREATE INDEX {HNSW} ON darasa.documents "
    "USING hnsw ((embedding::halfvec(1536)) halfvec_cosine_ops)",
}
INGEST = 1_000  # documents create_many adds into the table with the live index


async def run_precision(
    b: Bench, *, documents: int, queries: int, rounds: int, calls: int
) -> tuple[list[Result], dict[str, Any]]:
    """Full against half precision HNSW on the searcher's documents (loaded by `run_search`):
    build time, index size, top-10 latency and recall@10 (the repository's index statement,
    candidates re-sorted exactly) and `create_many` of `INGEST` documents into the live index.

    Leaves the migrations' index (half precision where pgvector has halfvec) in place.
    """
    migrated = await drop_search_index(b)
    asked = queries_near(*_searcher_centres(documents), queries, noise=NOISE, seed=5)
    cur = await b.raw.execute(
        "SELECT title::int, embedding FROM darasa.documents WHERE user_id = %s",
        (b.seed.searcher,),
    )
    stored = sorted(await cur.fetchall())
    vectors = np.stack([np.asarray(v.to_list(), dtype=np.float32) for _, v in stored])
    truth = exact_top_k(vectors, asked, 10)
    fresh, _ = clustered_embeddings(INGEST, clusters=_clusters(INGEST), noise=NOISE, seed=23)
    adding = [
        DocumentCreate.model_construct(title="new", content=CONTENT, metadata={}, embedding=v)
        for v in fresh
    ]
    info: dict[str, Any] = {"documents": documents}
    results: list[Result] = []
    params = {"user_id": b.seed.searcher, "limit": 10, "candidates": 40}
    for name, definition in PRECISIONS.items():
        await b.raw.execute(f"DROP INDEX IF EXISTS darasa.{HNSW}")
        seconds = await build_search_index(b, definition)
        size = await b.raw.execute("SELECT pg_relation_size(%s)", (f"darasa.{HNSW}",))
        row = await size.fetchone()
        assert row is not None
        sql = b.db.sql(documents_repository._NEAREST[(False, "halfvec" in definition)])

        async def one(q: Any, sql: bytes = sql) -> list[int]:
            return await _index_page(b.raw, sql, {**params, "query": q})

        found = [set(await one(q)) for q in asked]
        start = time.perf_counter()
        await b.db.documents.create_many(b.seed.searcher, adding)
        ingest_s = time.perf_counter() - start
        await b.raw.execute(
            "DELETE FROM darasa.documents WHERE user_id = %s AND title = 'new'", (b.seed.searcher,)
        )
        info[name] = {
            "build_s": round(seconds, 1),
            "index_mb": round(row[0] / 2**20, 1),
            "recall@10": round(recall_at_k(found, truth), 4),
            f"create_many {INGEST} rows/s into the live index": round(INGEST / ingest_s),
        }
        results += await compare(
            f"HNSW top-10, {name} ({documents:,} docs)",
            [Contender(name, _cycling(one, asked))],
            rounds=rounds,
            calls=calls,
        )
    await b.raw.execute(f"DROP INDEX IF EXISTS darasa.{HNSW}")
    await build_search_index(b, migrated)
    return results, info


def _searcher_centres(documents: int) -> tuple[Any]:
    """The cluster centres `_load_search_documents` drew the searcher's documents around."""
    _, centres = clustered_embeddings(documents, clusters=_clusters(documents), noise=NOISE, seed=3)
    return (centres,)
