"""`documents`: RAG documents with a pgvector embedding."""

from __future__ import annotations

from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import Computed, ForeignKey, Index, Text, text
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from darasa_db.models.base import Base, TimestampMixin, UUIDPrimaryKeyMixin

__all__ = ["EMBEDDING_DIMENSIONS", "SEARCH_VECTOR", "TEXT_SEARCH_CONFIG", "DocumentRow"]

EMBEDDING_DIMENSIONS = 1536

TEXT_SEARCH_CONFIG = "english"
"""The text search configuration of `search_vector` and of `hybrid_search`'s queries.

Fixed when migration 0003 creates the column; the query side must use the same one.
"""

SEARCH_VECTOR = (
    f"(setweight(to_tsvector('{TEXT_SEARCH_CONFIG}'::regconfig, title), 'A'::\"char\") || "
    f"setweight(to_tsvector('{TEXT_SEARCH_CONFIG}'::regconfig, content), 'B'::\"char\"))"
)
"""The generation expression of `documents.search_vector`: the title weighted A, the content B
(written as PostgreSQL prints it back, so the drift check compares it unchanged)."""


class DocumentRow(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """A document owned by a user; `embedding` is searched through an HNSW cosine index."""

    __tablename__ = "documents"

    user_id: Mapped[str] = mapped_column(
        Text, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    title: Mapped[str] = mapped_column(Text, nullable=False)
    content: Mapped[str] = mapped_column(Text, nullable=False)
    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata", JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )
    embedding: Mapped[Any] = mapped_column(Vector(EMBEDDING_DIMENSIONS), nullable=True)
    search_vector: Mapped[Any] = mapped_column(
        TSVECTOR, Computed(SEARCH_VECTOR, persisted=True), nullable=True, sort_order=20
    )

    __table_args__ = (
        Index("ix_documents_created_at", "created_at"),
        Index("ix_documents_user_id_created_at_id", "user_id", "created_at", "id"),
        Index(
            "ix_documents_embedding_hnsw",
            "embedding",
            postgresql_using="hnsw",
            postgresql_ops={"embedding": "vector_cosine_ops"},
        ),
        Index("ix_documents_search_vector", "search_vector", postgresql_using="gin"),
    )
