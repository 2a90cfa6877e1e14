"""`documents`: RAG documents with a pgvector embedding."""

from __future__ import annotations

from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import ForeignKey, Index, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from darasa_db.models.base import Base, TimestampMixin, UUIDPrimaryKeyMixin

__all__ = ["EMBEDDING_DIMENSIONS", "DocumentRow"]

EMBEDDING_DIMENSIONS = 1536


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

    __table_args__ = (
        Index("ix_documents_created_at", "created_at"),
        Index("ix_documents_user_id_created_at_id", "user_id", "created_at", "id"),
        Index(
            "ix_documents_embedding_hnsw",
            "embedding",
            postgresql_using="hnsw",
            postgresql_ops={"embedding": "vector_cosine_ops"},
        ),
    )
