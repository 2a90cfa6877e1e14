"""Document DTOs for RAG: content, jsonb metadata and a 1536-d embedding."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import Field

from darasa_db.schemas._common import (
    Embedding,
    InputModel,
    JsonObject,
    ReadModel,
    Text1M,
    Text500,
)

__all__ = ["Document", "DocumentCreate", "DocumentMatch"]


class Document(ReadModel):
    """A stored document; `embedding` is None when none was given."""

    id: uuid.UUID
    user_id: str
    title: str
    content: str
    metadata: dict[str, Any]
    embedding: tuple[float, ...] | None = Field(default=None, repr=False)
    created_at: datetime
    updated_at: datetime


class DocumentMatch(ReadModel):
    """A similarity-search hit: the document and `similarity` = 1 - cosine distance."""

    document: Document
    similarity: float


class DocumentCreate(InputModel):
    """A new document; `embedding` is exactly 1536 finite floats (list, tuple or numpy array)."""

    title: Text500
    content: Text1M
    metadata: JsonObject = Field(default_factory=dict)
    embedding: Embedding | None = Field(default=None, repr=False)
