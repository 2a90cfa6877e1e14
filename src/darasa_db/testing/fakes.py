"""In-memory fakes of the six repositories, for host applications' fast unit tests.

`InMemoryDatabase()` offers `.users`, `.job_infos`, `.questions`, `.interviews`, `.documents`
and `.conversations`, each implementing its Protocol from `darasa_db.repositories` with the
SQL implementation's semantics: ownership (another user's row behaves as missing),
`ConflictError` on a duplicate email in any case, `NotFoundError` for an unknown user or job
info, cascading deletes, keyset pages newest first, exact cosine similarity search with jsonb
`@>` metadata filters, and the same frozen DTOs. `transaction()` follows the real transaction's
rules: calls take turns, a failed statement (a conflict, a missing parent) or a cancelled call
fails it, nothing is used after its block, no second one opens in the same task, and no
`db.<repo>` write runs inside it; it rolls back by restoring a snapshot. Nothing here is
isolated between concurrent tasks, and nothing is cached.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import inspect
import json
import math
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np
from pydantic import BaseModel, TypeAdapter

from darasa_db.errors import ConflictError, DarasaDBError, NotFoundError
from darasa_db.repositories._statements import (
    DEFAULT_LIMIT,
    as_uuid,
    check_limit,
    require,
)
from darasa_db.repositories.documents import HybridQuery, _candidates
from darasa_db.repositories.protocols import Id
from darasa_db.repositories.users import export_document
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
from darasa_db.schemas._common import Embedding, JsonObject, Text500
from darasa_db.schemas.user import email_key

__all__ = [
    "InMemoryConversationRepository",
    "InMemoryDatabase",
    "InMemoryDocumentRepository",
    "InMemoryInterviewRepository",
    "InMemoryJobInfoRepository",
    "InMemoryQuestionRepository",
    "InMemoryStore",
    "InMemoryTransaction",
    "InMemoryUserRepository",
    "jsonb_contains",
]

_EMBEDDING = TypeAdapter(Embedding)
_METADATA = TypeAdapter(JsonObject)


class _Title(BaseModel):
    title: Text500


class _Keyed(Protocol):
    @property
    def id(self) -> uuid.UUID: ...

    @property
    def created_at(self) -> datetime: ...


_R = TypeVar("_R", bound=_Keyed)


@dataclass
class _Tables:
    users: dict[str, User] = field(default_factory=dict)
    job_infos: dict[uuid.UUID, JobInfo] = field(default_factory=dict)
    questions: dict[uuid.UUID, Question] = field(default_factory=dict)
    interviews: dict[uuid.UUID, Interview] = field(default_factory=dict)
    documents: dict[uuid.UUID, Document] = field(default_factory=dict)
    conversations: dict[uuid.UUID, Conversation] = field(default_factory=dict)


class InMemoryStore:
    """The rows the fake repositories share, a clock, and the cascades between tables."""

    def __init__(self) -> None:
        self.tables = _Tables()
        self._last = datetime.min.replace(tzinfo=UTC)

    def now(self) -> datetime:
        """The current UTC time, strictly later than any time handed out before."""
        now = max(datetime.now(UTC), self._last + timedelta(microseconds=1))
        self._last = now
        return now

    def snapshot(self) -> _Tables:
        """A deep copy of every table, for `restore`."""
        return copy.deepcopy(self.tables)

    def restore(self, snapshot: _Tables) -> None:
        """Put back the tables saved by `snapshot`."""
        self.tables = snapshot

    def require_user(self, user_id: str) -> None:
        """`NotFoundError` unless the user exists (a foreign key check)."""
        if user_id not in self.tables.users:
            raise _MissingParent("user", user_id)

    def owned_job_info(self, id: Id, user_id: str) -> JobInfo | None:
        """The job info if `user_id` owns it."""
        key = as_uuid(id)
        row = None if key is None else self.tables.job_infos.get(key)
        return row if row is not None and row.user_id == user_id else None

    def delete_job_info(self, id: uuid.UUID) -> None:
        """Delete a job info with its questions and interviews."""
        t = self.tables
        del t.job_infos[id]
        t.questions = {k: q for k, q in t.questions.items() if q.job_info_id != id}
        t.interviews = {k: i for k, i in t.interviews.items() if i.job_info_id != id}

    def delete_user(self, id: str) -> None:
        """Delete a user with everything they own."""
        t = self.tables
        del t.users[id]
        for job in [j.id for j in t.job_infos.values() if j.user_id == id]:
            self.delete_job_info(job)
        t.documents = {k: d for k, d in t.documents.items() if d.user_id != id}
        t.conversations = {k: c for k, c in t.conversations.items() if c.user_id != id}


def _page(rows: Iterable[_R], limit: int, after: Id | None) -> list[_R]:
    """Newest first by (created_at, id); `after` is the id of the previous page's last row."""
    check_limit(limit)
    ordered = sorted(rows, key=lambda r: (r.created_at, r.id), reverse=True)
    if after is None:
        return ordered[:limit]
    cursor = as_uuid(after)
    for index, row in enumerate(ordered):
        if row.id == cursor:
            return ordered[index + 1 : index + 1 + limit]
    return []  # an unknown or foreign cursor, as in SQL


def _newest_first(rows: Iterable[_R]) -> list[_R]:
    return sorted(rows, key=lambda r: (r.created_at, r.id), reverse=True)


def _oldest_first(rows: Iterable[_R]) -> list[_R]:
    return sorted(rows, key=lambda r: (r.created_at, r.id))


_WORD = re.compile(r"[^\W_]+")
_STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "if",
        "in",
        "into",
        "is",
        "it",
        "no",
        "not",
        "of",
        "on",
        "or",
        "such",
        "that",
        "the",
        "their",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "will",
        "with",
    ]
)


def _terms(text: str) -> list[str]:
    """Lower-case words without English stop words, a trailing "s" dropped: a rough stand-in
    for PostgreSQL's `english` text search configuration."""
    words = (w.lower() for w in _WORD.findall(text))
    return [w[:-1] if len(w) > 3 and w.endswith("s") else w for w in words if w not in _STOP_WORDS]


def _text_score(query: list[str], document: Document) -> float:
    """0 unless every query term is in the document; then its occurrences, title counted 10x
    (ts_rank_cd weighs the title's A above the content's B)."""
    title, content = _terms(document.title), _terms(document.content)
    if not query or not all(term in title or term in content for term in query):
        return 0.0
    return float(sum(10 * title.count(term) + content.count(term) for term in query))


def _as_json(value: Mapping[str, Any]) -> dict[str, Any]:
    """`value` as jsonb gives it back: a fresh copy, tuples turned into lists."""
    result: dict[str, Any] = json.loads(json.dumps(value))
    return result


def _float32(embedding: Sequence[float] | None) -> tuple[float, ...] | None:
    """The embedding as pgvector stores it (single precision)."""
    if embedding is None:
        return None
    return tuple(float(x) for x in np.asarray(embedding, dtype=np.float32))


def jsonb_contains(container: Any, contained: Any) -> bool:
    """PostgreSQL's `container @> contained` for JSON values (nested objects, arrays, scalars).

    Objects contain objects whose keys they have with containing values; arrays contain arrays
    whose every element some element contains; scalars contain equal scalars of the same type.
    At the top level only, an array also contains a scalar that is one of its elements.
    """
    if isinstance(container, list) and not isinstance(contained, dict | list):
        return any(_contains(item, contained) for item in container)
    return _contains(container, contained)


def _contains(container: Any, contained: Any) -> bool:
    if isinstance(contained, dict):
        return isinstance(container, dict) and all(
            key in container and _contains(container[key], value)
            for key, value in contained.items()
        )
    if isinstance(contained, list):
        return isinstance(container, list) and all(
            any(_contains(item, wanted) for item in container) for wanted in contained
        )
    if isinstance(container, dict | list):
        return False
    if isinstance(container, bool) or isinstance(contained, bool):
        return container is contained
    if container is None or contained is None:
        return container is contained
    if isinstance(container, int | float) and isinstance(contained, int | float):
        return bool(container == contained)
    return type(container) is type(contained) and bool(container == contained)


def _cosine_distance(a: np.ndarray[Any, Any], b: Sequence[float]) -> float:
    other = np.asarray(b, dtype=np.float64)
    norms = float(np.linalg.norm(a)) * float(np.linalg.norm(other))
    if norms == 0.0:
        return math.nan  # pgvector's answer for a zero vector
    similarity = min(1.0, max(-1.0, float(np.dot(a, other)) / norms))
    return 1.0 - similarity


def _rank(match: tuple[float, Document]) -> tuple[bool, float, uuid.UUID]:
    """ORDER BY distance, id, where PostgreSQL sorts NaN after every number, NaNs as equals."""
    distance, document = match
    unknown = math.isnan(distance)
    return unknown, 0.0 if unknown else distance, document.id


class _MissingParent(NotFoundError):
    """A foreign key check failed: in PostgreSQL a failed statement, which fails a transaction."""


_WRITES = frozenset(
    {"create", "upsert", "update", "delete", "create_many", "append_messages", "rename", "erase"}
)
_SAVEPOINTED = frozenset({"create_many"})  # in SQL its failure leaves the transaction usable
_ENDED = (
    "this transaction has ended: use a Transaction and its repositories only inside its "
    "`async with db.transaction() as tx:` block"
)


class _Session:
    """The rules a fake repository's calls follow: a transaction's, or the pool's (`tx=None`)."""

    def __init__(self, db: InMemoryDatabase | None, *, in_transaction: bool = False) -> None:
        self.db = db
        self.in_transaction = in_transaction
        self.open = True
        self.failed = self.cancelled = False
        self.lock = asyncio.Lock()

    async def call(self, name: str, work: Callable[[], Awaitable[Any]], *, writes: bool) -> Any:
        if not self.in_transaction:
            open_tx = _OPEN.get()
            if writes and open_tx is not None and open_tx.open and open_tx.db is self.db:
                raise DarasaDBError(
                    "a db.<repository> write inside an open db.transaction() of the same task "
                    "would wait on that transaction's own locks: use tx.<repository> instead"
                )
            return await work()
        if not self.open:
            raise DarasaDBError(_ENDED)
        async with self.lock:
            if not self.open:
                raise DarasaDBError(_ENDED)
            try:
                return await work()
            except (ConflictError, _MissingParent):
                self.failed = self.failed or name not in _SAVEPOINTED
                raise
            except Exception:
                raise
            except BaseException:
                self.cancelled = True
                raise


_OPEN: ContextVar[_Session | None] = ContextVar("darasa_db_fake_transaction", default=None)


def _following_session(name: str, method: Callable[..., Awaitable[Any]]) -> Any:
    @functools.wraps(method)
    async def call(self: _Repository, *args: Any, **kwargs: Any) -> Any:
        messages = args[1] if len(args) > 1 else kwargs.get("messages")
        # as in SQL: appending no message only reads the conversation
        writes = name in _WRITES and not (name == "append_messages" and not messages)
        work = lambda: method(self, *args, **kwargs)  # noqa: E731
        return await self._session.call(name, work, writes=writes)

    return call


class _Repository:
    def __init__(self, store: InMemoryStore | None = None, session: _Session | None = None) -> None:
        self._store = store if store is not None else InMemoryStore()
        self._session = session if session is not None else _Session(None)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, member in list(vars(cls).items()):
            if not name.startswith("_") and inspect.iscoroutinefunction(member):
                setattr(cls, name, _following_session(name, member))

    @property
    def _t(self) -> _Tables:
        return self._store.tables


class InMemoryUserRepository(_Repository):
    """`UserRepository` in memory; emails are unique case-insensitively."""

    def _check_email(self, email: str, id: str) -> None:
        wanted = email_key(email)
        if any(email_key(u.email) == wanted and u.id != id for u in self._t.users.values()):
            raise ConflictError("a user with this email already exists", field="email")

    async def create(self, data: UserCreate) -> User:
        require(data, UserCreate)
        id = data.id or str(uuid.uuid4())
        if id in self._t.users:
            raise ConflictError("a user with this id already exists", field="id")
        self._check_email(data.email, id)
        now = self._store.now()
        user = User(**data.model_dump(exclude={"id"}), id=id, created_at=now, updated_at=now)
        self._t.users[id] = user
        return user

    async def upsert(self, data: UserUpsert) -> User:
        require(data, UserUpsert)
        self._check_email(data.email, data.id)
        existing = self._t.users.get(data.id)
        now = self._store.now()
        if existing is None:
            user = User(**data.model_dump(), created_at=now, updated_at=now)
        else:
            user = existing.model_copy(update={**data.model_dump(), "updated_at": now})
        self._t.users[data.id] = user
        return user

    async def get(self, id: str) -> User | None:
        return self._t.users.get(id)

    async def get_by_email(self, email: str) -> User | None:
        wanted = email_key(email)
        return next((u for u in self._t.users.values() if email_key(u.email) == wanted), None)

    async def update(self, id: str, data: UserUpdate) -> User:
        require(data, UserUpdate)
        existing = self._t.users.get(id)
        if existing is None:
            raise NotFoundError("user", id)
        changes = data.changes()
        if "email" in changes:
            self._check_email(changes["email"], id)
        user = existing.model_copy(update={**changes, "updated_at": self._store.now()})
        self._t.users[id] = user
        return user

    async def delete(self, id: str) -> bool:
        if id not in self._t.users:
            return False
        self._store.delete_user(id)
        return True

    async def export(self, user_id: str) -> dict[str, Any]:
        """The user's data in the SQL repository's layout; `NotFoundError` when missing."""
        t = self._t
        user = t.users.get(user_id)
        if user is None:
            raise NotFoundError("user", user_id)
        jobs = _oldest_first(j for j in t.job_infos.values() if j.user_id == user_id)
        mine = {j.id for j in jobs}
        return export_document(
            user,
            jobs,
            _oldest_first(q for q in t.questions.values() if q.job_info_id in mine),
            _oldest_first(i for i in t.interviews.values() if i.job_info_id in mine),
            _oldest_first(d for d in t.documents.values() if d.user_id == user_id),
            _oldest_first(c for c in t.conversations.values() if c.user_id == user_id),
        )

    async def erase(self, user_id: str) -> ErasureReport:
        """Delete the user with everything of theirs; the rows per table, as in SQL."""
        t = self._t
        if user_id not in t.users:
            raise NotFoundError("user", user_id)
        mine = {j.id for j in t.job_infos.values() if j.user_id == user_id}
        counts = {
            "users": 1,
            "job_info": len(mine),
            "questions": sum(q.job_info_id in mine for q in t.questions.values()),
            "interviews": sum(i.job_info_id in mine for i in t.interviews.values()),
            "documents": sum(d.user_id == user_id for d in t.documents.values()),
            "conversations": sum(c.user_id == user_id for c in t.conversations.values()),
        }
        self._store.delete_user(user_id)
        return ErasureReport(user_id=user_id, counts=counts)


class InMemoryJobInfoRepository(_Repository):
    """`JobInfoRepository` in memory; deleting one removes its questions and interviews."""

    async def create(self, user_id: str, data: JobInfoCreate) -> JobInfo:
        require(data, JobInfoCreate)
        self._store.require_user(user_id)
        now = self._store.now()
        job = JobInfo(
            **data.model_dump(), id=uuid.uuid4(), user_id=user_id, created_at=now, updated_at=now
        )
        self._t.job_infos[job.id] = job
        return job

    async def get(self, id: Id, *, user_id: str) -> JobInfo | None:
        return self._store.owned_job_info(id, user_id)

    async def list_for_user(
        self, user_id: str, *, limit: int = DEFAULT_LIMIT, after: Id | None = None
    ) -> list[JobInfo]:
        return _page((j for j in self._t.job_infos.values() if j.user_id == user_id), limit, after)

    async def update(self, id: Id, data: JobInfoUpdate, *, user_id: str) -> JobInfo:
        require(data, JobInfoUpdate)
        existing = self._store.owned_job_info(id, user_id)
        if existing is None:
            raise NotFoundError("job_info", id)
        job = existing.model_copy(update={**data.changes(), "updated_at": self._store.now()})
        self._t.job_infos[job.id] = job
        return job

    async def delete(self, id: Id, *, user_id: str) -> bool:
        existing = self._store.owned_job_info(id, user_id)
        if existing is None:
            return False
        self._store.delete_job_info(existing.id)
        return True


class InMemoryQuestionRepository(_Repository):
    """`QuestionRepository` in memory; a question carries its job info's `user_id`."""

    def _owned(self, id: Id, user_id: str) -> Question | None:
        key = as_uuid(id)
        row = None if key is None else self._t.questions.get(key)
        return row if row is not None and row.user_id == user_id else None

    async def create(self, job_info_id: Id, data: QuestionCreate, *, user_id: str) -> Question:
        require(data, QuestionCreate)
        job = self._store.owned_job_info(job_info_id, user_id)
        if job is None:
            raise NotFoundError("job_info", job_info_id)
        now = self._store.now()
        question = Question(
            **data.model_dump(),
            id=uuid.uuid4(),
            user_id=job.user_id,
            job_info_id=job.id,
            created_at=now,
            updated_at=now,
        )
        self._t.questions[question.id] = question
        return question

    async def get(self, id: Id, *, user_id: str) -> Question | None:
        return self._owned(id, user_id)

    async def list_for_job_info(self, job_info_id: Id, *, user_id: str) -> list[Question]:
        job = self._store.owned_job_info(job_info_id, user_id)
        if job is None:
            return []
        return _newest_first(q for q in self._t.questions.values() if q.job_info_id == job.id)

    async def delete(self, id: Id, *, user_id: str) -> bool:
        existing = self._owned(id, user_id)
        if existing is None:
            return False
        del self._t.questions[existing.id]
        return True


class InMemoryInterviewRepository(_Repository):
    """`InterviewRepository` in memory; an interview carries its job info's `user_id`."""

    def _owned(self, id: Id, user_id: str) -> Interview | None:
        key = as_uuid(id)
        row = None if key is None else self._t.interviews.get(key)
        return row if row is not None and row.user_id == user_id else None

    async def create(self, job_info_id: Id, data: InterviewCreate, *, user_id: str) -> Interview:
        require(data, InterviewCreate)
        job = self._store.owned_job_info(job_info_id, user_id)
        if job is None:
            raise NotFoundError("job_info", job_info_id)
        now = self._store.now()
        interview = Interview(
            **data.model_dump(),
            id=uuid.uuid4(),
            user_id=job.user_id,
            job_info_id=job.id,
            created_at=now,
            updated_at=now,
        )
        self._t.interviews[interview.id] = interview
        return interview

    async def get(self, id: Id, *, user_id: str) -> Interview | None:
        return self._owned(id, user_id)

    async def list_for_job_info(self, job_info_id: Id, *, user_id: str) -> list[Interview]:
        job = self._store.owned_job_info(job_info_id, user_id)
        if job is None:
            return []
        return _newest_first(i for i in self._t.interviews.values() if i.job_info_id == job.id)

    async def update(self, id: Id, data: InterviewUpdate, *, user_id: str) -> Interview:
        require(data, InterviewUpdate)
        existing = self._owned(id, user_id)
        if existing is None:
            raise NotFoundError("interview", id)
        interview = existing.model_copy(update={**data.changes(), "updated_at": self._store.now()})
        self._t.interviews[interview.id] = interview
        return interview


class InMemoryDocumentRepository(_Repository):
    """`DocumentRepository` in memory; similarity search is exact (no index)."""

    def _owned(self, id: Id, user_id: str) -> Document | None:
        key = as_uuid(id)
        row = None if key is None else self._t.documents.get(key)
        return row if row is not None and row.user_id == user_id else None

    def _new(self, user_id: str, data: DocumentCreate, now: datetime) -> Document:
        return Document(
            id=uuid.uuid4(),
            user_id=user_id,
            title=data.title,
            content=data.content,
            metadata=_as_json(data.metadata),
            embedding=_float32(data.embedding),
            created_at=now,
            updated_at=now,
        )

    async def create(self, user_id: str, data: DocumentCreate) -> Document:
        require(data, DocumentCreate)
        self._store.require_user(user_id)
        document = self._new(user_id, data, self._store.now())
        self._t.documents[document.id] = document
        return document

    async def create_many(self, user_id: str, documents: Sequence[DocumentCreate]) -> int:
        for index, document in enumerate(documents):
            require(document, DocumentCreate, f"documents[{index}]")
        if not documents:
            return 0
        self._store.require_user(user_id)
        now = self._store.now()  # one transaction: one timestamp, as in SQL
        for data in documents:
            row = self._new(user_id, data, now)
            self._t.documents[row.id] = row
        return len(documents)

    async def get(self, id: Id, *, user_id: str) -> Document | None:
        return self._owned(id, user_id)

    async def list_for_user(
        self, user_id: str, *, limit: int = DEFAULT_LIMIT, after: Id | None = None
    ) -> list[Document]:
        return _page((d for d in self._t.documents.values() if d.user_id == user_id), limit, after)

    async def delete(self, id: Id, *, user_id: str) -> bool:
        existing = self._owned(id, user_id)
        if existing is None:
            return False
        del self._t.documents[existing.id]
        return True

    async def similarity_search(
        self,
        embedding: Sequence[float],
        *,
        user_id: str,
        limit: int = 5,
        threshold: float | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> list[DocumentMatch]:
        """Exact cosine search over the caller's documents, best first (ties by id)."""
        check_limit(limit)
        query = np.asarray(_float32(_EMBEDDING.validate_python(embedding)), dtype=np.float64)
        if threshold is not None and not -1.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be between -1 and 1 (got {threshold!r})")
        wanted = None if metadata is None else _as_json(_METADATA.validate_python(metadata))
        scored: list[tuple[float, Document]] = []
        for document in self._t.documents.values():
            if document.user_id != user_id or document.embedding is None:
                continue
            if wanted is not None and not jsonb_contains(document.metadata, wanted):
                continue
            distance = _cosine_distance(query, document.embedding)
            if threshold is not None and not distance <= 1.0 - threshold:
                continue
            scored.append((distance, document))
        scored.sort(key=_rank)
        return [DocumentMatch(document=d, similarity=1.0 - dist) for dist, d in scored[:limit]]

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
        """Reciprocal rank fusion, as in SQL, of an exact cosine ranking and an approximate
        full-text one (every query word must occur, ranked by occurrences; no stemming beyond
        a plural "s", no web-search operators)."""
        check_limit(limit)
        q = HybridQuery(query_text=query_text, embedding=embedding, rrf_k=rrf_k, metadata=metadata)
        wanted = None if q.metadata is None else _as_json(q.metadata)
        mine = [
            d
            for d in self._t.documents.values()
            if d.user_id == user_id and (wanted is None or jsonb_contains(d.metadata, wanted))
        ]
        candidates = _candidates(limit)
        vector_ranks: dict[uuid.UUID, int] = {}
        if q.embedding is not None:
            query = np.asarray(_float32(q.embedding), dtype=np.float64)
            nearest = sorted(
                (
                    (_cosine_distance(query, d.embedding), d)
                    for d in mine
                    if d.embedding is not None
                ),
                key=_rank,
            )
            vector_ranks = {d.id: n for n, (_, d) in enumerate(nearest[:candidates], 1)}
        text_ranks: dict[uuid.UUID, int] = {}
        if q.query_text is not None:
            terms = _terms(q.query_text)
            scored = [(score, d) for d in mine if (score := _text_score(terms, d)) > 0]
            scored.sort(key=lambda pair: (-pair[0], pair[1].id))
            text_ranks = {d.id: n for n, (_, d) in enumerate(scored[:candidates], 1)}
        documents = {d.id: d for d in mine}
        fused = []
        for id in vector_ranks.keys() | text_ranks.keys():
            vector_rank, text_rank = vector_ranks.get(id), text_ranks.get(id)
            score = (0.0 if vector_rank is None else 1.0 / float(q.rrf_k + vector_rank)) + (
                0.0 if text_rank is None else 1.0 / float(q.rrf_k + text_rank)
            )
            match = HybridMatch(
                document=documents[id], score=score, text_rank=text_rank, vector_rank=vector_rank
            )
            fused.append(match)
        fused.sort(key=lambda m: (-m.score, m.document.id))
        return fused[:limit]


class InMemoryConversationRepository(_Repository):
    """`ConversationRepository` in memory."""

    def _owned(self, id: Id, user_id: str) -> Conversation:
        key = as_uuid(id)
        row = None if key is None else self._t.conversations.get(key)
        if row is None or row.user_id != user_id:
            raise NotFoundError("conversation", id)
        return row

    def _save(self, existing: Conversation, **changes: Any) -> Conversation:
        conversation = existing.model_copy(update={**changes, "updated_at": self._store.now()})
        self._t.conversations[conversation.id] = conversation
        return conversation

    async def create(self, user_id: str, data: ConversationCreate) -> Conversation:
        require(data, ConversationCreate)
        self._store.require_user(user_id)
        now = self._store.now()
        conversation = Conversation(
            id=uuid.uuid4(),
            user_id=user_id,
            title=data.title,
            messages=tuple(data.messages),
            created_at=now,
            updated_at=now,
        )
        self._t.conversations[conversation.id] = conversation
        return conversation

    async def get(self, id: Id, *, user_id: str) -> Conversation | None:
        try:
            return self._owned(id, user_id)
        except NotFoundError:
            return None

    async def list_for_user(
        self, user_id: str, *, limit: int = DEFAULT_LIMIT, after: Id | None = None
    ) -> list[Conversation]:
        rows = (c for c in self._t.conversations.values() if c.user_id == user_id)
        return _page(rows, limit, after)

    async def append_messages(
        self, id: Id, messages: Sequence[Message], *, user_id: str
    ) -> Conversation:
        checked = [require(m, Message, f"messages[{i}]") for i, m in enumerate(messages)]
        existing = self._owned(id, user_id)
        if not checked:
            return existing
        return self._save(existing, messages=(*existing.messages, *checked))

    async def rename(self, id: Id, title: str, *, user_id: str) -> Conversation:
        checked = _Title(title=title).title
        return self._save(self._owned(id, user_id), title=checked)

    async def delete(self, id: Id, *, user_id: str) -> bool:
        try:
            existing = self._owned(id, user_id)
        except NotFoundError:
            return False
        del self._t.conversations[existing.id]
        return True


class _Repositories:
    def __init__(self, store: InMemoryStore, session: _Session) -> None:
        self.users = InMemoryUserRepository(store, session)
        self.job_infos = InMemoryJobInfoRepository(store, session)
        self.questions = InMemoryQuestionRepository(store, session)
        self.interviews = InMemoryInterviewRepository(store, session)
        self.documents = InMemoryDocumentRepository(store, session)
        self.conversations = InMemoryConversationRepository(store, session)


class InMemoryTransaction(_Repositories):
    """The six fake repositories inside one `InMemoryDatabase.transaction()` block."""


class InMemoryDatabase(_Repositories):
    """The six fake repositories over one shared in-memory store.

    Use it where a host's code takes repository Protocols; `transaction()` yields an
    `InMemoryTransaction` that follows the real transaction's rules (see the module docstring)
    and restores a snapshot of every table when it does not commit.
    """

    def __init__(self) -> None:
        self.store = InMemoryStore()
        super().__init__(self.store, _Session(self))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[InMemoryTransaction]:
        """One unit of work; on an exception, a failed or a cancelled call, every table goes
        back to how it was (a `DarasaDBError` says so when the block itself did not raise).

        Not isolated: other tasks see the writes at once, and a rollback also undoes theirs.
        """
        open_tx = _OPEN.get()
        if open_tx is not None and open_tx.open and open_tx.db is self:
            raise DarasaDBError(
                "a db.transaction() is already open in this task: a second one would use "
                "another connection and could wait forever on the first one's locks; use the "
                "open transaction's tx.<repository> instead"
            )
        session = _Session(self, in_transaction=True)
        saved = self.store.snapshot()
        token = _OPEN.set(session)
        try:
            try:
                yield InMemoryTransaction(self.store, session)
            finally:
                session.open = False
                async with session.lock:  # a call still running finishes first
                    pass
            if session.failed or session.cancelled:
                why = "was cancelled" if session.cancelled else "failed"
                raise DarasaDBError(f"a call in this transaction {why}, so it was rolled back")
        except BaseException:
            self.store.restore(saved)
            raise
        finally:
            _OPEN.reset(token)

    async def health_check(self) -> bool:
        """Always True: there is no server to lose."""
        return True

    async def close(self) -> None:
        """Nothing to close; present so code that closes a `Database` runs unchanged."""


if TYPE_CHECKING:  # mypy proves that every fake satisfies its Protocol
    from darasa_db.repositories import (
        ConversationRepository,
        DocumentRepository,
        InterviewRepository,
        JobInfoRepository,
        QuestionRepository,
        UserRepository,
    )

    _users: UserRepository = InMemoryUserRepository()
    _job_infos: JobInfoRepository = InMemoryJobInfoRepository()
    _questions: QuestionRepository = InMemoryQuestionRepository()
    _interviews: InterviewRepository = InMemoryInterviewRepository()
    _documents: DocumentRepository = InMemoryDocumentRepository()
    _conversations: ConversationRepository = InMemoryConversationRepository()
