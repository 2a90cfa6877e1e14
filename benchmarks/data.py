"""Benchmark data: users, job infos, conversations, and clustered synthetic embeddings."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from darasa_db.schemas.user import email_key

__all__ = [
    "DIMENSIONS",
    "MESSAGE",
    "Seed",
    "clustered_embeddings",
    "exact_top_k",
    "job_info_values",
    "new_conversation",
    "queries_near",
    "recall_at_k",
    "reset_conversation",
    "seed",
    "seed_pages",
]

DIMENSIONS = 1536
DESCRIPTION = "Build and run the payments platform. " * 20  # about 740 characters
MESSAGE = {"role": "user", "content": "How would you design a rate limiter for a public API?"}


class Seed:
    """Ids of the rows every operation reads or writes."""

    reader = "user_bench_reader"  # owns the job infos that get and list_for_user read
    writer = "user_bench_writer"  # receives the created job infos
    loader = "user_bench_loader"  # receives create_many's documents
    searcher = "user_bench_searcher"  # owns the documents that similarity_search ranks

    def __init__(self) -> None:
        self.job_ids: list[uuid.UUID] = []
        self.conversations: dict[str, uuid.UUID] = {}


def job_info_values(user_id: str, index: int) -> dict[str, Any]:
    """One job info's columns (about the size the application stores)."""
    return {
        "user_id": user_id,
        "name": f"Acme {index}",
        "title": "Senior backend engineer",
        "experience_level": "senior",
        "description": DESCRIPTION,
    }


async def seed(conn: psycopg.AsyncConnection[Any], *, job_infos: int = 60) -> Seed:
    """Create the users, `job_infos` job infos for the reader, and nothing else."""
    ids = Seed()
    async with conn.transaction():
        for user in (ids.reader, ids.writer, ids.loader, ids.searcher):
            await conn.execute(
                "INSERT INTO darasa.users (id, email, name, email_key) VALUES (%s, %s, %s, %s)",
                (user, f"{user}@example.com", user, email_key(f"{user}@example.com")),
            )
        for index in range(job_infos):
            v = job_info_values(ids.reader, index)
            cur = await conn.execute(
                "INSERT INTO darasa.job_info (user_id, name, title, experience_level, description)"
                " VALUES (%(user_id)s, %(name)s, %(title)s, %(experience_level)s, "
                "%(description)s) RETURNING id",
                v,
            )
            row = await cur.fetchone()
            assert row is not None
            ids.job_ids.append(row[0])
    return ids


async def seed_pages(conn: psycopg.AsyncConnection[Any], user_id: str, rows: int = 60) -> None:
    """`rows` documents (500 characters, a 1536-d embedding) and `rows` conversations (10
    messages) for `user_id`, for the list_for_user pages."""
    from pgvector import Vector

    vectors, _ = clustered_embeddings(rows, clusters=8, noise=1.0, seed=7)
    content = "PostgreSQL keeps its indexes in pages of 8 kB. " * 10  # about 500 characters
    async with conn.transaction():
        for index in range(rows):
            await conn.execute(
                "INSERT INTO darasa.documents (user_id, title, content, metadata, embedding) "
                "VALUES (%s, %s, %s, %s, %s)",
                (
                    user_id,
                    f"Notes {index}",
                    content,
                    Jsonb({"source": "bench"}),
                    Vector(vectors[index]),
                ),
            )
            await conn.execute(
                "INSERT INTO darasa.conversations (user_id, title, messages) VALUES (%s, %s, %s)",
                (user_id, f"Mock interview {index}", Jsonb([MESSAGE] * 10)),
            )


async def new_conversation(conn: psycopg.AsyncConnection[Any], user_id: str) -> uuid.UUID:
    """A conversation of the reader's, for one contender of append_messages."""
    cur = await conn.execute(
        "INSERT INTO darasa.conversations (user_id, title) VALUES (%s, 'Mock interview') "
        "RETURNING id",
        (user_id,),
    )
    row = await cur.fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


async def reset_conversation(
    conn: psycopg.AsyncConnection[Any], id: uuid.UUID, messages: int
) -> None:
    """Give conversation `id` exactly `messages` messages again."""
    await conn.execute(
        "UPDATE darasa.conversations SET messages = %s WHERE id = %s",
        (Jsonb([MESSAGE] * messages), id),
    )


def clustered_embeddings(
    count: int, *, clusters: int, noise: float, seed: int = 0
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """`count` unit vectors around `clusters` random centres, and the centres themselves.

    Each vector is its centre plus Gaussian noise of norm about `noise`, normalised.
    """
    rng = np.random.default_rng(seed)
    centres = _unit(rng.standard_normal((clusters, DIMENSIONS), dtype=np.float32))
    labels = rng.integers(0, clusters, size=count)
    return _around(rng, centres, labels, noise), centres


def queries_near(
    centres: np.ndarray[Any, Any], count: int, *, noise: float, seed: int = 1
) -> np.ndarray[Any, Any]:
    """`count` fresh query vectors drawn like the documents (not copies of any of them)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(centres), size=count)
    return _around(rng, centres, labels, noise)


def _around(
    rng: np.random.Generator,
    centres: np.ndarray[Any, Any],
    labels: np.ndarray[Any, Any],
    noise: float,
) -> np.ndarray[Any, Any]:
    scale = noise / np.sqrt(DIMENSIONS)
    points = centres[labels] + scale * rng.standard_normal(
        (len(labels), DIMENSIONS), dtype=np.float32
    )
    return _unit(points)


def _unit(vectors: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    unit: np.ndarray[Any, Any] = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return unit.astype(np.float32)


def exact_top_k(
    vectors: np.ndarray[Any, Any], queries: np.ndarray[Any, Any], k: int
) -> np.ndarray[Any, Any]:
    """Row indices of each query's `k` nearest vectors by cosine (all are unit vectors)."""
    scores = queries @ vectors.T
    top = np.argpartition(-scores, k, axis=1)[:, :k]
    return top


def recall_at_k(found: list[set[int]], truth: np.ndarray[Any, Any]) -> float:
    """Mean share of the true top k that each query's answer contains."""
    hits = sum(len(f & set(t.tolist())) for f, t in zip(found, truth, strict=True))
    return hits / truth.size
