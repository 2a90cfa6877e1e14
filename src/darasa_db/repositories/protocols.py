"""The repository protocols: what host applications program against.

`Database` provides SQL implementations of all six (`db.users`, …); a host may substitute its
own, e.g. the in-memory fakes in `darasa_db.testing.fakes` for its unit tests.
Owned rows take a keyword `user_id`: another user's row behaves exactly like a missing one.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from darasa_db.schemas import (
    Conversation,
    ConversationCreate,
    Document,
    DocumentCreate,
    DocumentMatch,
    ErasureReport,
    HybridMatch,
    Interview,
    InterviewCreate,
    InterviewUpdate,
    JobInfo,
    JobInfoCreate,
    JobInfoUpdate,
    Message,
    Question,
    QuestionCreate,
    User,
    UserCreate,
    UserUpdate,
    UserUpsert,
)

__all__ = [
    "ConversationRepository",
    "DocumentRepository",
    "InterviewRepository",
    "JobInfoRepository",
    "QuestionRepository",
    "UserRepository",
]

Id = uuid.UUID | str


class UserRepository(Protocol):
    """Users, keyed by their auth provider's id."""

    async def create(self, data: UserCreate) -> User:
        """Insert a user; `ConflictError` when the id or the email (any case) is taken."""
        ...

    async def upsert(self, data: UserUpsert) -> User:
        """Insert or update by id (auth-provider sync); `ConflictError` on another's email."""
        ...

    async def get(self, id: str) -> User | None:
        """The user, or None."""
        ...

    async def get_by_email(self, email: str) -> User | None:
        """The user with this email, compared case-insensitively, or None."""
        ...

    async def update(self, id: str, data: UserUpdate) -> User:
        """Write the fields set in `data`; `NotFoundError` when there is no such user."""
        ...

    async def delete(self, id: str) -> bool:
        """Delete the user and, by cascade, all their data; False when there was none."""
        ...

    async def export(self, user_id: str) -> dict[str, Any]:
        """Everything stored for the user (profile, job infos with their questions and
        interviews, documents with embeddings, conversations with messages) as JSON-ready data
        with a `format_version`, read in one consistent snapshot; `NotFoundError` when the
        user does not exist."""
        ...

    async def erase(self, user_id: str) -> ErasureReport:
        """Delete the user and everything of theirs in one transaction, with the rows deleted
        per table; their cache entries go in every process. `NotFoundError` when missing."""
        ...


class JobInfoRepository(Protocol):
    """Job infos, owned by a user."""

    async def create(self, user_id: str, data: JobInfoCreate) -> JobInfo:
        """Insert a job info; `NotFoundError` when the user does not exist."""
        ...

    async def get(self, id: Id, *, user_id: str) -> JobInfo | None:
        """The job info if `user_id` owns it, else None."""
        ...

    async def list_for_user(
        self, user_id: str, *, limit: int = 50, after: Id | None = None
    ) -> list[JobInfo]:
        """Newest first; `after` is the id of the last item of the previous page."""
        ...

    async def update(self, id: Id, data: JobInfoUpdate, *, user_id: str) -> JobInfo:
        """Write the fields set in `data`; `NotFoundError` when missing or not owned."""
        ...

    async def delete(self, id: Id, *, user_id: str) -> bool:
        """Delete it with its questions and interviews; False when missing or not owned."""
        ...


class QuestionRepository(Protocol):
    """Questions, owned through their job info."""

    async def create(self, job_info_id: Id, data: QuestionCreate, *, user_id: str) -> Question:
        """Insert a question; `NotFoundError` when the job info is missing or not owned."""
        ...

    async def get(self, id: Id, *, user_id: str) -> Question | None:
        """The question if `user_id` owns its job info, else None."""
        ...

    async def list_for_job_info(self, job_info_id: Id, *, user_id: str) -> list[Question]:
        """The job info's questions, newest first (empty when not owned)."""
        ...

    async def delete(self, id: Id, *, user_id: str) -> bool:
        """Delete the question; False when missing or not owned."""
        ...


class InterviewRepository(Protocol):
    """Interviews, owned through their job info."""

    async def create(self, job_info_id: Id, data: InterviewCreate, *, user_id: str) -> Interview:
        """Insert an interview; `NotFoundError` when the job info is missing or not owned."""
        ...

    async def get(self, id: Id, *, user_id: str) -> Interview | None:
        """The interview if `user_id` owns its job info, else None."""
        ...

    async def list_for_job_info(self, job_info_id: Id, *, user_id: str) -> list[Interview]:
        """The job info's interviews, newest first (empty when not owned)."""
        ...

    async def update(self, id: Id, data: InterviewUpdate, *, user_id: str) -> Interview:
        """Write the fields set in `data`; `NotFoundError` when missing or not owned."""
        ...


class DocumentRepository(Protocol):
    """RAG documents with embeddings, owned by a user."""

    async def create(self, user_id: str, data: DocumentCreate) -> Document:
        """Insert a document; `NotFoundError` when the user does not exist."""
        ...

    async def create_many(self, user_id: str, documents: Sequence[DocumentCreate]) -> int:
        """Bulk-insert documents with binary COPY, all or nothing; returns how many."""
        ...

    async def get(self, id: Id, *, user_id: str) -> Document | None:
        """The document if `user_id` owns it, else None."""
        ...

    async def list_for_user(
        self, user_id: str, *, limit: int = 50, after: Id | None = None
    ) -> list[Document]:
        """Newest first; `after` is the id of the last item of the previous page."""
        ...

    async def delete(self, id: Id, *, user_id: str) -> bool:
        """Delete the document; False when missing or not owned."""
        ...

    async def similarity_search(
        self,
        embedding: Sequence[float],
        *,
        user_id: str,
        limit: int = 5,
        threshold: float | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> list[DocumentMatch]:
        """The caller's documents nearest to `embedding` by cosine similarity, best first.

        Returns `min(limit, matching documents)` matches; `threshold` keeps similarity ≥ it,
        `metadata` keeps documents whose metadata contains it (jsonb `@>`).
        """
        ...

    async def hybrid_search(
        self,
        query_text: str | None,
        embedding: Sequence[float] | None,
        *,
        user_id: str,
        limit: int = 5,
        metadata: Mapping[str, Any] | None = None,
        rrf_k: int = 60,
    ) -> list[HybridMatch]:
        """The caller's documents ranked by full text and by vector, fused by reciprocal rank
        (score = Σ 1 / (rrf_k + rank)), best first.

        Either `query_text` or `embedding` may be None, not both (`ValidationError`). Returns
        `min(limit, matching documents)` matches; `metadata` filters as in `similarity_search`.
        """
        ...


class ConversationRepository(Protocol):
    """Chat conversations, owned by a user."""

    async def create(self, user_id: str, data: ConversationCreate) -> Conversation:
        """Insert a conversation; `NotFoundError` when the user does not exist."""
        ...

    async def get(self, id: Id, *, user_id: str) -> Conversation | None:
        """The conversation if `user_id` owns it, else None."""
        ...

    async def list_for_user(
        self, user_id: str, *, limit: int = 50, after: Id | None = None
    ) -> list[Conversation]:
        """Newest first; `after` is the id of the last item of the previous page."""
        ...

    async def append_messages(
        self, id: Id, messages: Sequence[Message], *, user_id: str
    ) -> Conversation:
        """Append atomically in SQL (concurrent appends lose nothing); else `NotFoundError`."""
        ...

    async def rename(self, id: Id, title: str, *, user_id: str) -> Conversation:
        """Change the title; `NotFoundError` when missing or not owned."""
        ...

    async def delete(self, id: Id, *, user_id: str) -> bool:
        """Delete the conversation; False when missing or not owned."""
        ...
