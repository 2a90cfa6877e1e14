"""`hybrid_search`: full text and vector fused by reciprocal rank, on real PostgreSQL + pgvector."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from darasa_db import Database
from darasa_db.schemas import DocumentCreate, User
from integration.helpers import DIMENSIONS, unit_vector

KEYWORD = "zephyrine"  # appears in one document only
QUERY = unit_vector(1000)


def near(query: list[float], seed: int, noise: float = 0.3) -> list[float]:
    """A unit vector close to `query` (cosine similarity about 1 / sqrt(1 + noise²))."""
    rng = np.random.default_rng(seed)
    vector = np.asarray(query) + noise * rng.standard_normal(DIMENSIONS) / np.sqrt(DIMENSIONS)
    return [float(x) for x in vector / np.linalg.norm(vector)]


def far(query: list[float]) -> list[float]:
    """The opposite of `query`: the farthest a vector can be (cosine similarity -1)."""
    return [-x for x in query]


async def library(db: Database, user: User, count: int = 10) -> None:
    """`count` documents near QUERY, about databases, none with the keyword; one far document
    holding the keyword."""
    await db.documents.create_many(
        user.id,
        [
            DocumentCreate(
                title=f"Notes {n}",
                content=f"Indexes and query plans in PostgreSQL, part {n}.",
                metadata={"topic": "db", "n": n},
                embedding=near(QUERY, n, noise=0.2 * (n + 1)),
            )
            for n in range(count)
        ],
    )
    await db.documents.create(
        user.id,
        DocumentCreate(
            title="Release notes",
            content=f"The {KEYWORD} connector fixes error E-1234 on startup.",
            metadata={"topic": "release"},
            embedding=far(QUERY),
        ),
    )


async def test_exact_keyword_finds_its_document_despite_a_far_embedding(darasa_db, user):
    await library(darasa_db, user)
    matches = await darasa_db.documents.hybrid_search(KEYWORD, QUERY, user_id=user.id, limit=3)
    assert len(matches) == 3
    top = matches[0]
    assert KEYWORD in top.document.content
    assert top.text_rank == 1
    assert top.vector_rank == 11  # the farthest of Alice's 11 documents by embedding
    assert top.score == pytest.approx(1 / 61 + 1 / 71)
    similar = await darasa_db.documents.similarity_search(QUERY, user_id=user.id, limit=11)
    assert similar[-1].document.id == top.document.id  # by vector alone it comes last


async def test_no_keyword_match_degrades_to_vector_order(darasa_db, user):
    await library(darasa_db, user)
    matches = await darasa_db.documents.hybrid_search(
        "quantum chromodynamics", QUERY, user_id=user.id, limit=5
    )
    similar = await darasa_db.documents.similarity_search(QUERY, user_id=user.id, limit=5)
    assert [m.document.id for m in matches] == [m.document.id for m in similar]
    assert [m.vector_rank for m in matches] == [1, 2, 3, 4, 5]
    assert all(m.text_rank is None for m in matches)
    assert [m.score for m in matches] == pytest.approx([1 / (60 + r) for r in range(1, 6)])
    assert matches[0].document == similar[0].document


async def test_text_only_and_vector_only(darasa_db, user):
    await library(darasa_db, user)
    text_only = await darasa_db.documents.hybrid_search("E-1234", None, user_id=user.id)
    assert [KEYWORD in m.document.content for m in text_only] == [True]
    assert (text_only[0].text_rank, text_only[0].vector_rank) == (1, None)
    words = await darasa_db.documents.hybrid_search("query plans", None, user_id=user.id, limit=20)
    assert len(words) == 10  # stemmed: "plans" matches every Notes document, AND semantics
    assert sorted(m.text_rank for m in words if m.text_rank is not None) == list(range(1, 11))
    vector_only = await darasa_db.documents.hybrid_search(None, QUERY, user_id=user.id, limit=11)
    assert len(vector_only) == 11
    assert vector_only[-1].vector_rank == 11
    assert vector_only[-1].text_rank is None


async def test_rrf_k_changes_the_scores(darasa_db, user):
    await library(darasa_db, user)
    matches = await darasa_db.documents.hybrid_search(
        KEYWORD, QUERY, user_id=user.id, limit=2, rrf_k=1
    )
    assert matches[0].score == pytest.approx(1 / 2 + 1 / 12)  # text rank 1, vector rank 11
    assert matches[1].score == pytest.approx(1 / 2)  # vector rank 1


async def test_searches_only_the_callers_documents(darasa_db, user, other_user):
    await library(darasa_db, user)
    bobs = await darasa_db.documents.create(
        other_user.id,
        DocumentCreate(
            title=f"{KEYWORD} {KEYWORD}", content=f"All about {KEYWORD}.", embedding=QUERY
        ),
    )
    alice = await darasa_db.documents.hybrid_search(KEYWORD, QUERY, user_id=user.id, limit=50)
    assert len(alice) == 11
    assert all(m.document.user_id == user.id for m in alice)
    bob = await darasa_db.documents.hybrid_search(KEYWORD, QUERY, user_id=other_user.id)
    assert [(m.document.id, m.text_rank, m.vector_rank) for m in bob] == [(bobs.id, 1, 1)]
    assert await darasa_db.documents.hybrid_search(KEYWORD, None, user_id="user_nobody") == []


async def test_metadata_filter_holds_in_both_rankings(darasa_db, user):
    await library(darasa_db, user)
    release = await darasa_db.documents.hybrid_search(
        "PostgreSQL", QUERY, user_id=user.id, metadata={"topic": "release"}
    )
    assert [m.document.metadata["topic"] for m in release] == ["release"]
    assert (release[0].text_rank, release[0].vector_rank) == (None, 1)
    db_docs = await darasa_db.documents.hybrid_search(
        KEYWORD, QUERY, user_id=user.id, metadata={"topic": "db"}, limit=20
    )
    assert len(db_docs) == 10
    assert all(m.document.metadata["topic"] == "db" and m.text_rank is None for m in db_docs)


async def test_full_page_when_the_index_returns_a_short_one(darasa_db, user):
    """A metadata filter that only a few far documents pass: the HNSW scan, made to return 10
    candidates, finds none of them; the exact scan over the caller's rows finds all three."""
    await darasa_db.documents.create_many(
        user.id,
        [
            DocumentCreate(
                title=f"common {n}",
                content="common",
                metadata={"kind": "common"},
                embedding=near(QUERY, n),
            )
            for n in range(300)
        ]
        + [
            DocumentCreate(
                title=f"rare {n}",
                content="rare",
                metadata={"kind": "rare"},
                embedding=near(far(QUERY), n),
            )
            for n in range(3)
        ],
    )
    async with darasa_db.transaction() as tx:
        conn = tx.connection
        cur = await conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        row = await cur.fetchone()
        assert row is not None
        if tuple(int(p) for p in str(row[0]).split(".")[:2]) >= (0, 8):
            await conn.execute("SET LOCAL hnsw.iterative_scan = off")
        await conn.execute("SET LOCAL hnsw.ef_search = 10")
        await conn.execute("SET LOCAL enable_seqscan = off")
        await conn.execute("SET LOCAL enable_bitmapscan = off")
        matches = await tx.documents.hybrid_search(
            None, QUERY, user_id=user.id, limit=3, metadata={"kind": "rare"}
        )
        both = await tx.documents.hybrid_search(
            "rare", QUERY, user_id=user.id, limit=5, metadata={"kind": "rare"}
        )
    assert sorted(m.document.title for m in matches) == ["rare 0", "rare 1", "rare 2"]
    assert [m.vector_rank for m in matches] == [1, 2, 3]
    assert len(both) == 3
    assert all(m.text_rank is not None for m in both)


async def test_bad_input_is_refused_before_any_sql(darasa_db, user):
    documents = darasa_db.documents
    with pytest.raises(ValidationError, match="query_text"):
        await documents.hybrid_search(None, None, user_id=user.id)
    with pytest.raises(ValidationError, match="query_text"):
        await documents.hybrid_search("", None, user_id=user.id)
    with pytest.raises(ValidationError, match="query_text"):
        await documents.hybrid_search("   ", None, user_id=user.id)
    with pytest.raises(ValidationError, match="query_text"):
        await documents.hybrid_search("a\x00b", QUERY, user_id=user.id)
    with pytest.raises(ValidationError, match="embedding"):
        await documents.hybrid_search("word", [0.1] * 3, user_id=user.id)
    with pytest.raises(ValidationError, match="embedding"):
        await documents.hybrid_search(None, [float("nan")] * DIMENSIONS, user_id=user.id)
    with pytest.raises(ValidationError, match="rrf_k"):
        await documents.hybrid_search("word", None, user_id=user.id, rrf_k=0)
    with pytest.raises(ValidationError, match="metadata"):
        await documents.hybrid_search("word", None, user_id=user.id, metadata={"x": float("inf")})
    with pytest.raises(ValueError, match="limit"):
        await documents.hybrid_search("word", None, user_id=user.id, limit=0)


async def test_web_search_syntax_is_safe(darasa_db, user):
    await library(darasa_db, user)
    for text in ('"connector fixes"', "zephyrine or nothing", "-PostgreSQL", "&|!():*", "'"):
        matches = await darasa_db.documents.hybrid_search(text, None, user_id=user.id)
        assert all(m.text_rank is not None for m in matches)
    phrase = await darasa_db.documents.hybrid_search('"connector fixes"', None, user_id=user.id)
    assert len(phrase) == 1
    excluded = await darasa_db.documents.hybrid_search("notes -PostgreSQL", None, user_id=user.id)
    assert [m.document.title for m in excluded] == ["Release notes"]
