"""A small typed host application, as a service built on darasa-db would be written.

`nox -s typecheck` runs `mypy --strict` over this file, and `test_consumer_typing.py` runs it
without pydantic's mypy plugin, as most hosts do: it proves that the public names are typed
for consumers, that `Database` and `InMemoryDatabase` both satisfy the same repository
Protocols, that a service written against the Protocols accepts either, and that inputs take
embeddings as lists, tuples or numpy arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from darasa_db import Database, NotFoundError
from darasa_db.repositories import DocumentRepository, JobInfoRepository, UserRepository
from darasa_db.schemas import (
    DocumentCreate,
    DocumentMatch,
    EmbeddingInput,
    ExperienceLevel,
    JobInfo,
    JobInfoCreate,
    JobInfoUpdate,
    User,
    UserUpsert,
)
from darasa_db.testing.fakes import InMemoryDatabase


class Repositories(Protocol):
    """What the service needs: read-only access to two repositories."""

    @property
    def users(self) -> UserRepository: ...

    @property
    def job_infos(self) -> JobInfoRepository: ...


class OnboardingService:
    """Signs a user in from the auth provider and sets up the jobs they prepare for."""

    def __init__(self, users: UserRepository, job_infos: JobInfoRepository) -> None:
        self._users = users
        self._job_infos = job_infos

    async def sign_in(self, auth_id: str, email: str, name: str) -> User:
        """Create or refresh the user from the auth provider's data."""
        return await self._users.upsert(UserUpsert(id=auth_id, email=email, name=name))

    async def start_preparing(
        self, user_id: str, company: str, title: str, level: ExperienceLevel
    ) -> JobInfo:
        """A new job info for the user."""
        data = JobInfoCreate(
            name=company, title=title, experience_level=level, description=f"{title} at {company}"
        )
        return await self._job_infos.create(user_id, data)

    async def job_titles(self, user_id: str) -> list[str]:
        """Titles of every job the user prepares for, newest first, across all pages."""
        titles: list[str] = []
        page = await self._job_infos.list_for_user(user_id, limit=2)
        while page:
            titles.extend(job.title or job.name for job in page)
            page = await self._job_infos.list_for_user(user_id, limit=2, after=page[-1].id)
        return titles

    async def rename_job(self, user_id: str, job_id: str, name: str) -> JobInfo | None:
        """The renamed job, or None when it is not the user's."""
        try:
            return await self._job_infos.update(job_id, JobInfoUpdate(name=name), user_id=user_id)
        except NotFoundError:
            return None


def service_for(repositories: Repositories) -> OnboardingService:
    """The service on any set of repositories: a `Database`, a transaction or the fakes."""
    return OnboardingService(repositories.users, repositories.job_infos)


def service_for_unit_tests() -> OnboardingService:
    """The service on the in-memory fakes."""
    return service_for(InMemoryDatabase())


async def readiness(db: Database) -> dict[str, bool]:
    """A health endpoint's body: whether the database answers and the pool's test mode."""
    return {"database": await db.health_check(), "test_mode": db.test_mode}


async def onboard_atomically(db: Database, auth_id: str, email: str, company: str) -> JobInfo:
    """Sign in and create the first job info in one transaction: both or neither."""
    async with db.transaction() as tx:
        service = service_for(tx)
        user = await service.sign_in(auth_id, email, name=email.split("@")[0])
        return await service.start_preparing(user.id, company, "Backend engineer", "senior")


def notes_from_a_model(vectors: NDArray[np.float32]) -> list[DocumentCreate]:
    """Documents whose embeddings come from a model as the rows of a numpy array."""
    return [
        DocumentCreate(title=f"note {i}", content="...", embedding=row, metadata={"row": i})
        for i, row in enumerate(vectors)
    ]


def note_from_floats(embedding: list[float], tags: dict[str, str]) -> DocumentCreate:
    """A document whose embedding is a plain list of floats and metadata a dict of strings."""
    return DocumentCreate(title="note", content="...", embedding=embedding, metadata=tags)


def constant_note() -> DocumentCreate:
    """A document built inline, as a quick script would."""
    return DocumentCreate(title="zeros but one", content="...", embedding=[0.1] * 1536)


def embedding_of(text: str) -> EmbeddingInput:
    """A stand-in for an embedding model; either a list or an array is a valid embedding."""
    rng = np.random.default_rng(len(text))
    array: NDArray[np.float64] = rng.random(1536)
    return array if text else [float(x) for x in array]


async def search(
    documents: DocumentRepository, user_id: str, query: Sequence[float]
) -> list[DocumentMatch]:
    """The caller's five nearest documents to `query`."""
    stored = await documents.create_many(user_id, [note_from_floats(list(query), {"k": "v"})])
    assert stored == 1
    return await documents.similarity_search(query, user_id=user_id, limit=5)


def stored_embedding(document: DocumentCreate) -> tuple[float, ...] | None:
    """Validated, an embedding is a tuple of floats whatever it was given as."""
    embedding: tuple[float, ...] | None = document.embedding
    metadata: dict[str, Any] = document.metadata
    assert isinstance(metadata, dict)
    return embedding
