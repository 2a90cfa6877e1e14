"""Document DTOs for RAG: content, jsonb metadata and a 1536-d embedding."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import Field

from darasa_db.schemas._common import (
    Embedding,
    EmbeddingInput,
    InputModel,
    JsonObject,
    ReadModel,
    Text1M,
    Text500,
)

__all__ = ["Document", "DocumentCreate", "DocumentMatch", "HybridMatch"]


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


class HybridMatch(ReadModel):
    """A hybrid-search hit: the document, its reciprocal rank fusion `score`, and its rank
    (1 = best) in the full-text and in the vector ranking, None where it was not ranked.

    `score` = 1 / (rrf_k + vector_rank) + 1 / (rrf_k + text_rank), a missing rank adding 0.
    """

    document: Document
    score: float
    text_rank: int | None
    vector_rank: int | None


class DocumentCreate(InputModel):
    """A new document; `embedding` is exactly 1536 finite floats (list, tuple or numpy array).

    Validated, `metadata` is a dict and `embedding` a tuple of floats, whatever was given.
    """

    title: Text500
    content: Text1M
    metadata: JsonObject = Field(default_factory=dict)
    embedding: Embedding | None = Field(default=None, repr=False)

    if TYPE_CHECKING:  # what callers may pass, for type checkers without pydantic's plugin

        def __init__(
            self,
            *,
            title: str,
            content: str,
            metadata: Mapping[str, Any] = ...,
            embedding: EmbeddingInput | None = None,
        ) -> None: ...
