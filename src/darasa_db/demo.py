"""`darasa-db demo`: the application's flows end to end on a real database, each step timed.

Migrates, syncs a user from an auth provider, prepares a job with questions, records an
interview, stores documents with deterministic embeddings and searches them, holds a short
conversation, then deletes the user and counts the rows to show that everything cascaded away.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
from psycopg import sql

from darasa_db import migrate
from darasa_db.database import Database
from darasa_db.errors import DarasaDBError
from darasa_db.models import EMBEDDING_DIMENSIONS
from darasa_db.schemas import (
    ConversationCreate,
    DocumentCreate,
    InterviewCreate,
    InterviewUpdate,
    JobInfoCreate,
    Message,
    QuestionCreate,
    UserUpsert,
)
from darasa_db.settings import DatabaseSettings

__all__ = ["DOCUMENTS", "run_demo"]

DOCUMENTS = (
    ("Indexes in PostgreSQL", "B-tree, GIN and HNSW indexes, and when each one helps a query."),
    ("System design basics", "Load balancers, caches and queues, and how they fit together."),
    ("Behavioural interviews", "The STAR method for questions about your past work."),
    ("Python asyncio", "Event loops, tasks and structured concurrency with TaskGroup."),
    ("Salary negotiation", "Anchoring, ranges, and when to talk about numbers."),
)
"""The demo's documents: (title, content)."""

QUESTIONS = {
    "easy": "What is the difference between a list and a tuple in Python?",
    "medium": "How would you find the slowest queries of a PostgreSQL database?",
    "hard": "Design a rate limiter shared by many API servers.",
}


def _embeddings(seed: int = 7) -> tuple[list[list[float]], list[float]]:
    """One random unit vector per document, and a query close to the first two (seeded)."""
    rng = np.random.default_rng(seed)
    topics = rng.standard_normal((len(DOCUMENTS), EMBEDDING_DIMENSIONS))
    topics /= np.linalg.norm(topics, axis=1, keepdims=True)
    query = 0.8 * topics[0] + 0.4 * topics[1] + 0.01 * rng.standard_normal(EMBEDDING_DIMENSIONS)
    query /= np.linalg.norm(query)
    vectors: list[list[float]] = topics.tolist()
    return vectors, [float(x) for x in query]


class _Report:
    """Numbered, timed steps written to `out`."""

    def __init__(self, out: Callable[[str], object]) -> None:
        self.out = out
        self.number = 0

    @contextmanager
    def step(self, name: str) -> Iterator[Callable[[str], None]]:
        lines: list[str] = []
        start = time.perf_counter()
        yield lines.append
        elapsed = (time.perf_counter() - start) * 1000
        self.number += 1
        first, *rest = lines or ["done"]
        self.out(f"{self.number}. {name}: {first} ({elapsed:.1f} ms)")
        for line in rest:
            self.out(f"   {line}")


async def _count_rows(db: Database, user_id: str, job_info_id: uuid.UUID) -> dict[str, int]:
    """Rows left for this user in each table (children of the job counted by its id)."""
    filters = {
        "users": ("id", user_id),
        "job_info": ("user_id", user_id),
        "questions": ("job_info_id", job_info_id),
        "interviews": ("job_info_id", job_info_id),
        "documents": ("user_id", user_id),
        "conversations": ("user_id", user_id),
    }
    counts = {}
    async with db.connection() as conn:
        for table, (column, value) in filters.items():
            query = sql.SQL("SELECT count(*) FROM {} WHERE {} = %s").format(
                sql.Identifier(db.schema, table), sql.Identifier(column)
            )
            row = await (await conn.execute(query, [value])).fetchone()
            counts[table] = int(row[0]) if row else 0
    return counts


def _show(counts: dict[str, int]) -> str:
    return ", ".join(f"{table} {n}" for table, n in counts.items())


async def run_demo(
    url: str, *, schema: str = "darasa", out: Callable[[str], object] = print
) -> None:
    """Run the demo on `url` (schema `schema`), writing one line per step to `out`.

    Raises `DarasaDBError` if any row of the demo user survives the final delete. When a step
    fails or the demo is interrupted (Ctrl-C, a closed pipe), the demo user and every row it
    made are deleted before the exception propagates.
    """
    settings = DatabaseSettings(url=url, schema_name=schema)
    report = _Report(out)
    out(f"darasa-db demo on {settings.safe_url} (schema {schema!r})")

    with report.step("migrate") as say:
        applied = await asyncio.to_thread(migrate.upgrade, settings)
        head = migrate.head()
        say(f"applied {', '.join(applied)}; at head {head}" if applied else f"already at {head}")

    async with Database(settings) as db:
        tag = uuid.uuid4().hex[:12]
        user_id = f"user_demo_{tag}"
        try:
            await _flows(db, report, user_id, tag)
        except BaseException:  # Ctrl-C (a cancellation), a closed pipe, an error: clean up
            await _remove_user(db, user_id)
            raise


async def _remove_user(db: Database, user_id: str) -> None:
    """Delete the demo user, and with it every row the demo made; quietly, whatever happens."""
    with contextlib.suppress(Exception):
        await db.users.delete(user_id)


async def _flows(db: Database, report: _Report, user_id: str, tag: str) -> None:
    """The demo's steps after the migration, for the user `user_id`, deleted at the end."""
    with report.step("sync user (upsert)") as say:
        email = f"demo+{tag}@example.com"
        user = await db.users.upsert(UserUpsert(id=user_id, email=email, name="Demo User"))
        again = await db.users.upsert(
            UserUpsert(id=user_id, email=email, name="Demo User (renamed in the auth app)")
        )
        say(f"created {user.id} <{user.email}>")
        same = again.created_at == user.created_at
        say(f"synced again by id: name now {again.name!r}, same row: {same}")

    with report.step("create job info") as say:
        job = await db.job_infos.create(
            user_id,
            JobInfoCreate(
                name="Acme",
                title="Backend engineer",
                experience_level="senior",
                description="Python, PostgreSQL and distributed systems.",
            ),
        )
        say(f"{job.name} / {job.title} ({job.experience_level}), id {job.id}")

    with report.step("add questions") as say:
        async with db.transaction() as tx:
            for difficulty, text in QUESTIONS.items():
                await tx.questions.create(
                    job.id, QuestionCreate(text=text, difficulty=difficulty), user_id=user_id
                )
        listed = await db.questions.list_for_job_info(job.id, user_id=user_id)
        levels = ", ".join(d for d in QUESTIONS if any(q.difficulty == d for q in listed))
        say(f"{len(listed)} questions ({levels}) in one transaction")

    with report.step("record interview") as say:
        interview = await db.interviews.create(
            job.id, InterviewCreate(duration="15 minutes"), user_id=user_id
        )
        interview = await db.interviews.update(
            interview.id,
            InterviewUpdate(feedback="Clear structure; quantify the impact of your work."),
            user_id=user_id,
        )
        say(f"{interview.duration}, feedback saved: {interview.feedback!r}")

    with report.step("store documents") as say:
        vectors, query = _embeddings()
        stored = await db.documents.create_many(
            user_id,
            [
                DocumentCreate(
                    title=title, content=content, metadata={"topic": i}, embedding=vector
                )
                for i, ((title, content), vector) in enumerate(zip(DOCUMENTS, vectors, strict=True))
            ],
        )
        say(f"{stored} documents with {EMBEDDING_DIMENSIONS}-d embeddings made in code")

    with report.step("similarity search") as say:
        matches = await db.documents.similarity_search(query, user_id=user_id, limit=3)
        say(f"top {len(matches)} for a query about making PostgreSQL queries faster:")
        for match in matches:
            say(f"  {match.similarity:.3f}  {match.document.title}")

    with report.step("conversation") as say:
        conversation = await db.conversations.create(
            user_id,
            ConversationCreate(
                title="Interview practice",
                messages=[Message(role="system", content="You are an interview coach.")],
            ),
        )
        await db.conversations.append_messages(
            conversation.id,
            [
                Message(role="user", content="How do I answer 'tell me about yourself'?"),
                Message(role="assistant", content="Present, past, future: in two minutes."),
            ],
            user_id=user_id,
        )
        renamed = await db.conversations.rename(
            conversation.id, "Tell me about yourself", user_id=user_id
        )
        say(f"{len(renamed.messages)} messages, renamed to {renamed.title!r}")

    with report.step("delete user") as say:
        before = await _count_rows(db, user_id, job.id)
        deleted = await db.users.delete(user_id)
        after = await _count_rows(db, user_id, job.id)
        say(f"deleted {user_id}; rows before: {_show(before)}")
        say(f"rows after: {_show(after)}")
        if not deleted or any(after.values()):
            raise DarasaDBError(f"rows survived deleting the demo user: {_show(after)}")
        say("nothing left: every row cascaded away with the user")
