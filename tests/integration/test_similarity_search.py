"""`similarity_search` on real pgvector data, checked against exact cosine computations in numpy.

One database per module holds every scenario (28,058 documents of 1536 dimensions):
- Alice: 2,000 clustered vectors (top-5, threshold, metadata and similarity checks);
- Bob: exact copies of Alice's query vectors (they must never reach Alice's results);
- Carol: three documents, one without an embedding;
- the crowd, u00 … u49: 400 documents each (2% of the crowd's 20,000, 1.4% of the table);
- Sparse: 30 documents among all the others;
- Whale: 6,000 documents, enough for the planner to choose the HNSW index by itself (with
  pgvector 0.6 it prefers the user_id index and a sort below about 4,500 of the caller's rows).
The HNSW index is built once after loading: maintaining it row by row is far slower.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg
import pytest
import pytest_asyncio
from numpy.typing import ArrayLike

from darasa_db import Database, DatabaseSettings
from darasa_db.repositories.documents import _NEAREST, EXACT_UP_TO, HALFVEC_FROM, ITERATIVE_FROM
from darasa_db.schemas import DocumentCreate, DocumentMatch, UserUpsert
from darasa_db.testing.plugin import TEMPLATE, create_database, drop_database
from darasa_db.testing.servers import TestServer

DIM = 1536
INDEX = "ix_documents_embedding_hnsw"
TOPICS = ("interview", "resume", "salary", "culture")
ALICE, BOB, CAROL, SPARSE, WHALE = (
    "user_alice",
    "user_bob",
    "user_carol",
    "user_sparse",
    "user_whale",
)
CROWD = [f"user_u{i:02d}" for i in range(50)]
CALLER = CROWD[0]  # 400 of the crowd's 20,000 documents: 2%
ALICE_N, CROWD_PER_USER, SPARSE_N, WHALE_N = 2_000, 400, 30, 6_000
QUERY_ROWS = (0, 137, 999, 1_500, 1_999)  # Alice's documents used as queries


def unit_rows(rows: np.ndarray) -> np.ndarray:
    unit: np.ndarray = (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)
    return unit


@dataclass
class Corpus:
    """The loaded documents: row `n` of `vectors` is stored as `ids[n]`, owned by `owners[n]`."""

    db: Database
    vectors: np.ndarray
    ids: list[uuid.UUID]
    owners: np.ndarray
    metadata: list[dict[str, Any]]
    crowd_centres: np.ndarray

    def rows_of(self, user_id: str) -> np.ndarray:
        return np.flatnonzero(self.owners == user_id)

    def cosine(self, query: ArrayLike, rows: np.ndarray) -> np.ndarray:
        """Exact cosine similarity of `query` to the given rows, in float64."""
        stored = self.vectors[rows].astype(np.float64)
        q = np.asarray(query, dtype=np.float64)
        similarity: np.ndarray = (stored @ q) / (np.linalg.norm(stored, axis=1) * np.linalg.norm(q))
        return similarity

    def exact_top(self, query: ArrayLike, rows: np.ndarray, k: int) -> list[uuid.UUID]:
        order = np.argsort(-self.cosine(query, rows), kind="stable")[:k]
        return [self.ids[rows[i]] for i in order]

    def row_of(self, id: uuid.UUID) -> int:
        return self._row_by_id[id]

    def __post_init__(self) -> None:
        self._row_by_id = {id: n for n, id in enumerate(self.ids)}


def make_vectors(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All embeddings, their owners, and the crowd's cluster centres."""
    # Alice: 100 clusters of 20; member j sits at noise 0.2 + 0.04 j, so ranks are well apart.
    centres = unit_rows(rng.standard_normal((ALICE_N // 20, DIM), dtype=np.float32))
    sigma = (0.2 + 0.04 * (np.arange(ALICE_N) % 20)).astype(np.float32)[:, None]
    noise = unit_rows(rng.standard_normal((ALICE_N, DIM), dtype=np.float32))
    alice = unit_rows(centres[np.arange(ALICE_N) // 20] + sigma * noise)
    bob = np.concatenate(
        [alice[list(QUERY_ROWS)], unit_rows(rng.standard_normal((20, DIM), dtype=np.float32))]
    )
    carol = unit_rows(rng.standard_normal((2, DIM), dtype=np.float32))
    # The crowd, Sparse and Whale: 300 cluster centres plus small noise.
    crowd_n = len(CROWD) * CROWD_PER_USER + SPARSE_N + WHALE_N
    crowd_centres = unit_rows(rng.standard_normal((300, DIM), dtype=np.float32))
    assigned = rng.integers(0, len(crowd_centres), crowd_n)
    crowd_noise = unit_rows(rng.standard_normal((crowd_n, DIM), dtype=np.float32))
    crowd = unit_rows(crowd_centres[assigned] + 0.5 * crowd_noise)
    owners = (
        [ALICE] * ALICE_N
        + [BOB] * len(bob)
        + [CAROL] * len(carol)
        + [u for u in CROWD for _ in range(CROWD_PER_USER)]
        + [SPARSE] * SPARSE_N
        + [WHALE] * WHALE_N
    )
    vectors = np.concatenate([alice, bob, carol, crowd])
    return vectors, np.asarray(owners), crowd_centres


def alice_metadata(n: int) -> dict[str, Any]:
    j = n % 20
    return {
        "n": n,
        "topic": TOPICS[j % 4],
        "tags": ["even" if j % 2 == 0 else "odd", f"cluster-{n // 20}"],
    }


async def load(db: Database, url: str) -> Corpus:
    vectors, owners, crowd_centres = make_vectors(np.random.default_rng(751))
    metadata = [alice_metadata(n) if owners[n] == ALICE else {"n": n} for n in range(len(owners))]
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as admin:
        cur = await admin.execute(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = %s AND indexname = %s",
            (db.schema, INDEX),
        )
        row = await cur.fetchone()
        assert row is not None
        definition = str(row[0])  # the migrations' (half precision from pgvector 0.7)
        await admin.execute(f'DROP INDEX "{db.schema}".{INDEX}'.encode())

        for user_id in dict.fromkeys(owners.tolist()):
            await db.users.upsert(UserUpsert(id=user_id, email=f"{user_id}@example.com", name="U"))
            rows = np.flatnonzero(owners == user_id)
            build: Any = DocumentCreate
            if user_id not in (ALICE, BOB, CAROL):
                # Trusted synthetic data: skip re-validating 26,000 vectors in pydantic.
                build = DocumentCreate.model_construct
            documents = [
                build(
                    title=f"doc {n}",
                    content=f"text {n}",
                    metadata=metadata[n],
                    embedding=vectors[n],
                )
                for n in rows
            ]
            assert await db.documents.create_many(user_id, documents) == len(rows)
        await db.documents.create(CAROL, DocumentCreate(title="no vector", content="plain"))

        # The migration's index; a cheaper ef_construction keeps the build short, and a
        # rougher graph only makes a short filtered page more likely.
        await admin.execute("SET maintenance_work_mem = '512MB'")
        await admin.execute(f"{definition} WITH (m = 16, ef_construction = 32)".encode())
        await admin.execute(f'ANALYZE "{db.schema}".documents'.encode())
        cur = await admin.execute(
            f"SELECT id, (metadata->>'n')::int FROM \"{db.schema}\".documents "
            "WHERE embedding IS NOT NULL".encode()
        )
        by_row = {n: id for id, n in await cur.fetchall()}
    ids = [by_row[n] for n in range(len(owners))]
    return Corpus(db, vectors, ids, owners, metadata, crowd_centres)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def corpus(darasa_server: TestServer) -> AsyncIterator[Corpus]:
    """The module's database, loaded once."""
    name = f"darasa_similarity_{os.getpid()}"
    url = create_database(darasa_server.url, name, template=TEMPLATE)
    db = Database(DatabaseSettings(url=url, test_mode=True), cache=None)
    try:
        yield await load(db, url)
    finally:
        await db.close()
        drop_database(darasa_server.url, name)


def assert_exact_order(corpus: Corpus, query: ArrayLike, matches: list[DocumentMatch]) -> None:
    """Similarities are 1 - cosine distance (numpy within 1e-5), best first."""
    rows = np.asarray([corpus.row_of(m.document.id) for m in matches], dtype=int)
    expected = corpus.cosine(query, rows)
    returned = np.asarray([m.similarity for m in matches])
    np.testing.assert_allclose(returned, expected, atol=1e-5, rtol=0)
    assert all(np.diff(returned) <= 1e-6)
    assert all(np.diff(expected) <= 1e-5)


# ------------------------------------------------------------------ Alice: 2,000 vectors


@pytest.mark.parametrize("row", QUERY_ROWS)
async def test_top_5_equals_exact_numpy_cosine_for_a_stored_vector(corpus: Corpus, row: int):
    query = corpus.vectors[row]
    alice_rows = corpus.rows_of(ALICE)
    assert len(alice_rows) == 2_000
    sims = np.sort(corpus.cosine(query, alice_rows))[::-1]
    assert sims[4] - sims[5] > 1e-4  # the data leaves no near-tie at the cut

    matches = await corpus.db.documents.similarity_search(query, user_id=ALICE, limit=5)

    assert [m.document.id for m in matches] == corpus.exact_top(query, alice_rows, 5)
    assert matches[0].document.id == corpus.ids[row]
    assert matches[0].similarity == pytest.approx(1.0, abs=1e-5)
    assert_exact_order(corpus, query, matches)


async def test_similarity_is_one_minus_cosine_distance(corpus: Corpus):
    query = unit_rows(np.random.default_rng(5).standard_normal((1, DIM)))[0]

    matches = await corpus.db.documents.similarity_search(query, user_id=ALICE, limit=50)

    assert len(matches) == 50
    assert_exact_order(corpus, query, matches)


async def test_search_returns_documents_with_their_fields(corpus: Corpus):
    row = QUERY_ROWS[1]

    [match] = await corpus.db.documents.similarity_search(
        corpus.vectors[row], user_id=ALICE, limit=1
    )

    document = match.document
    assert (document.user_id, document.title, document.content) == (
        ALICE,
        f"doc {row}",
        f"text {row}",
    )
    assert document.metadata == corpus.metadata[row]
    assert document.embedding is not None
    np.testing.assert_array_equal(document.embedding, corpus.vectors[row])


async def test_threshold_keeps_exactly_the_documents_at_or_above_it(corpus: Corpus):
    row = QUERY_ROWS[1]
    query = corpus.vectors[row]
    alice_rows = corpus.rows_of(ALICE)
    sims = corpus.cosine(query, alice_rows)
    assert np.min(np.abs(sims - 0.3)) > 1e-3
    expected = {corpus.ids[r] for r in alice_rows[sims >= 0.3]}
    assert len(expected) == 20  # the query's whole cluster, nothing else

    matches = await corpus.db.documents.similarity_search(
        query, user_id=ALICE, limit=100, threshold=0.3
    )

    assert {m.document.id for m in matches} == expected
    assert all(m.similarity >= 0.3 for m in matches)
    assert_exact_order(corpus, query, matches)


async def test_threshold_between_two_neighbours_cuts_between_them(corpus: Corpus):
    query = corpus.vectors[QUERY_ROWS[2]]
    sims = np.sort(corpus.cosine(query, corpus.rows_of(ALICE)))[::-1]
    threshold = float(sims[3] + sims[4]) / 2

    matches = await corpus.db.documents.similarity_search(
        query, user_id=ALICE, limit=10, threshold=threshold
    )

    assert [m.document.id for m in matches] == corpus.exact_top(query, corpus.rows_of(ALICE), 4)


@pytest.mark.parametrize(
    "containing",
    [{"topic": "salary"}, {"tags": ["odd"]}, {"tags": ["even", "cluster-75"]}, {"n": 1_234}],
)
async def test_metadata_filter_keeps_documents_whose_metadata_contains_it(
    corpus: Corpus, containing: dict[str, Any]
):
    query = corpus.vectors[QUERY_ROWS[3]]
    alice_rows = corpus.rows_of(ALICE)
    kept = np.asarray([r for r in alice_rows if _contains(corpus.metadata[r], containing)])

    matches = await corpus.db.documents.similarity_search(
        query, user_id=ALICE, limit=5, metadata=containing
    )

    assert [m.document.id for m in matches] == corpus.exact_top(query, kept, 5)
    assert all(_contains(m.document.metadata, containing) for m in matches)
    assert_exact_order(corpus, query, matches)


async def test_metadata_and_threshold_combine(corpus: Corpus):
    query = corpus.vectors[QUERY_ROWS[4]]
    alice_rows = corpus.rows_of(ALICE)
    sims = corpus.cosine(query, alice_rows)
    keep = [
        corpus.ids[r]
        for r, s in zip(alice_rows, sims, strict=True)
        if s >= 0.3 and corpus.metadata[r]["topic"] == "resume"
    ]

    matches = await corpus.db.documents.similarity_search(
        query, user_id=ALICE, limit=20, threshold=0.3, metadata={"topic": "resume"}
    )

    assert len(keep) == 5
    assert {m.document.id for m in matches} == set(keep)


async def test_a_metadata_filter_that_matches_nothing_returns_no_rows(corpus: Corpus):
    matches = await corpus.db.documents.similarity_search(
        corpus.vectors[0], user_id=ALICE, limit=5, metadata={"topic": "astrology"}
    )

    assert matches == []


async def test_only_the_callers_documents_are_searched(corpus: Corpus):
    query = corpus.vectors[QUERY_ROWS[0]]  # Bob holds an exact copy of it

    alices = await corpus.db.documents.similarity_search(query, user_id=ALICE, limit=30)
    bobs = await corpus.db.documents.similarity_search(query, user_id=BOB, limit=30)

    assert {m.document.user_id for m in alices} == {ALICE}
    assert alices[0].document.id == corpus.ids[QUERY_ROWS[0]]
    assert {m.document.user_id for m in bobs} == {BOB}
    assert bobs[0].similarity == pytest.approx(1.0, abs=1e-5)
    assert {m.document.id for m in alices}.isdisjoint(m.document.id for m in bobs)


async def test_documents_without_an_embedding_are_never_matched(corpus: Corpus):
    matches = await corpus.db.documents.similarity_search(
        corpus.vectors[0], user_id=CAROL, limit=10
    )

    assert len(matches) == 2
    assert all(m.document.embedding is not None for m in matches)


async def test_a_stored_zero_vector_is_ranked_last_and_never_passes_a_threshold(corpus: Corpus):
    # Written by other means than the DTOs (which refuse it): its cosine distance is NaN.
    zero = "[" + ",".join(["0"] * DIM) + "]"
    async with corpus.db.transaction() as tx:
        await tx.connection.execute(
            f'INSERT INTO "{corpus.db.schema}".documents (user_id, title, content, embedding) '
            "VALUES (%s, 'zero', 'zero', %s::vector)",
            (CAROL, zero),
        )
        everything = await tx.documents.similarity_search(corpus.vectors[0], user_id=CAROL)
        kept = await tx.documents.similarity_search(
            corpus.vectors[0], user_id=CAROL, threshold=-1.0
        )
        await tx.connection.execute(
            f"DELETE FROM \"{corpus.db.schema}\".documents WHERE title = 'zero'"
        )

    assert [m.document.title for m in everything][-1] == "zero"
    assert np.isnan(everything[-1].similarity)
    assert len(everything) == 3
    assert [m.document.title for m in kept] == [m.document.title for m in everything[:2]]


async def test_a_user_without_documents_gets_no_matches(corpus: Corpus):
    assert await corpus.db.documents.similarity_search(corpus.vectors[0], user_id="user_x") == []


# ------------------------------------------------------------------ full pages


def crowd_queries(corpus: Corpus, user_id: str) -> list[list[float]]:
    """The cluster centre nearest to the caller's documents, one of the caller's documents,
    another user's document, the centre farthest from the caller's documents, a random vector."""
    mine = corpus.rows_of(user_id)
    centre_scores = corpus.crowd_centres @ corpus.vectors[mine].T
    near = corpus.crowd_centres[int(np.argmax(centre_scores.max(axis=1)))]
    far = corpus.crowd_centres[int(np.argmin(centre_scores.max(axis=1)))]
    other = corpus.rows_of(CROWD[7])[3]
    rng = np.random.default_rng(len(user_id))
    vectors = [
        near,
        corpus.vectors[mine[5]],
        corpus.vectors[other],
        far,
        unit_rows(rng.standard_normal((1, DIM)))[0],
    ]
    return [[float(x) for x in v] for v in vectors]


@pytest.mark.parametrize(
    "user_id", [CALLER, SPARSE, WHALE], ids=["400 documents", "30 documents", "6,000 documents"]
)
@pytest.mark.parametrize("force_hnsw", [False, True], ids=["planner's choice", "hnsw forced"])
async def test_filtered_search_returns_full_pages_in_exact_order(
    corpus: Corpus, user_id: str, force_hnsw: bool
):
    mine = corpus.rows_of(user_id)
    assert len(mine) in (CROWD_PER_USER, SPARSE_N, WHALE_N)

    for n, query in enumerate(crowd_queries(corpus, user_id)):
        async with corpus.db.transaction() as tx:
            if force_hnsw:  # the plan a caller with many rows gets, where pgvector #751 bites
                await tx.connection.execute("SET LOCAL enable_sort = off")
                assert INDEX in await explain(tx.connection, corpus, user_id, query)
            matches = await tx.documents.similarity_search(query, user_id=user_id, limit=10)

        assert len(matches) == 10
        assert {m.document.user_id for m in matches} == {user_id}
        assert_exact_order(corpus, query, matches)
        if n == 1 and len(mine) < EXACT_UP_TO:  # one of the caller's documents: it comes first
            # (searched exactly; the whale's page comes from the index, approximate by design
            # on this deliberately rough graph: its recall is asserted in
            # test_filtered_search_recall.py on a graph built as the migrations build it)
            assert matches[0].document.id == corpus.exact_top(query, mine, 1)[0]


def nearest_sql(corpus: Corpus) -> bytes:
    """The repository's index statement, with the expression the server's index has."""
    half = (corpus.db.pgvector_version or (0,)) >= HALFVEC_FROM
    return corpus.db.sql(_NEAREST[(False, half)])


async def test_the_index_alone_returns_a_short_page_for_a_small_share_caller(corpus: Corpus):
    """The situation of pgvector issue #751, reproduced: why the repository needs a fallback
    (or, on pgvector 0.8, iterative scans)."""
    query = corpus.crowd_centres[0]
    params = {"user_id": CALLER, "query": query, "limit": 10, "candidates": 10}

    async with corpus.db.transaction() as tx:
        await tx.connection.execute("SET LOCAL enable_sort = off")
        if (corpus.db.pgvector_version or (0,)) >= ITERATIVE_FROM:  # (0.6 has no such setting)
            await tx.connection.execute("SET LOCAL hnsw.iterative_scan = off")
        cur = await tx.connection.execute(nearest_sql(corpus), params)
        from_index = await cur.fetchall()
        matches = await tx.documents.similarity_search(query, user_id=CALLER, limit=10)

    assert len(from_index) < 10
    assert len(matches) == 10


async def explain(
    conn: psycopg.AsyncConnection[Any], corpus: Corpus, user_id: str, query: ArrayLike
) -> str:
    sql = nearest_sql(corpus).decode()
    query = np.asarray(query, dtype=np.float32)
    params = {"user_id": user_id, "query": query, "limit": 10, "candidates": 40}
    cur = await conn.execute(("EXPLAIN " + sql).encode(), params)
    return "\n".join(row[0] for row in await cur.fetchall())


async def test_the_index_statement_orders_by_the_migrated_index_expression(corpus: Corpus):
    # What matters here is that the statement's ORDER BY is the index's expression (half
    # precision from pgvector 0.7), so the planner can use it; whether it does depends on the
    # owner's share (test_filtered_search_recall checks an owner of most rows). Without sorts
    # it must use the index.
    half = (corpus.db.pgvector_version or (0,)) >= HALFVEC_FROM
    query = corpus.vectors[corpus.rows_of(WHALE)[0]]

    async with corpus.db.connection() as conn:
        chosen = await explain(conn, corpus, WHALE, query)
        async with conn.transaction():
            await conn.execute("SET LOCAL enable_sort = off")
            forced = await explain(conn, corpus, WHALE, query)

    assert f"Index Scan using {INDEX} on documents" in forced
    order = "((embedding)::halfvec(1536) <=> " if half else "(embedding <=> "
    assert f"Order By: {order}" in forced
    sorted_by = "::halfvec(1536) <=> " if half else "embedding <=> "
    exact = "Sort Key:" in chosen and sorted_by in chosen  # the owner's rows, sorted
    assert f"Index Scan using {INDEX}" in chosen or exact


def _contains(metadata: dict[str, Any], containing: dict[str, Any]) -> bool:
    """jsonb `@>` for the shapes used here: equal scalars, arrays containing every element."""
    for key, want in containing.items():
        have = metadata.get(key)
        if isinstance(want, list):
            if not isinstance(have, list) or not all(w in have for w in want):
                return False
        elif have != want:
            return False
    return True
