"""Helpers for the repository integration tests: input factories, holdings and raw-SQL snapshots."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from darasa_db import Database
from darasa_db.schemas import (
    Conversation,
    ConversationCreate,
    Document,
    DocumentCreate,
    Interview,
    InterviewCreate,
    JobInfo,
    JobInfoCreate,
    Message,
    Question,
    QuestionCreate,
    User,
    UserUpsert,
)

TABLES = ("users", "job_info", "questions", "interviews", "documents", "conversations")
DIMENSIONS = 1536


def unit_vector(seed: int) -> list[float]:
    """A deterministic random unit vector of 1536 floats."""
    vector = np.random.default_rng(seed).standard_normal(DIMENSIONS)
    return [float(x) for x in vector / np.linalg.norm(vector)]


def job_info_input(**overrides: Any) -> JobInfoCreate:
    values: dict[str, Any] = {
        "name": "Acme",
        "title": "Backend engineer",
        "experience_level": "senior",
        "description": "Build the data layer.",
    }
    return JobInfoCreate(**{**values, **overrides})


def document_input(seed: int = 0, **overrides: Any) -> DocumentCreate:
    values: dict[str, Any] = {
        "title": f"doc {seed}",
        "content": f"content {seed}",
        "metadata": {"seed": seed},
        "embedding": unit_vector(seed),
    }
    return DocumentCreate(**{**values, **overrides})


def as_any(value: Any) -> Any:
    """`value`, hidden from the type checker: for calls that pass wrong types on purpose."""
    return value


def message(content: str, role: str = "user") -> Message:
    return Message(role=role, content=content)


async def table_rows(db: Database) -> dict[str, list[str]]:
    """Every row of every darasa-db table, as JSON text ordered by id (for before/after diffs)."""
    rows: dict[str, list[str]] = {}
    async with db.connection() as conn:
        for table in TABLES:
            cur = await conn.execute(
                f'SELECT to_jsonb(t)::text FROM "{db.schema}"."{table}" t ORDER BY t.id'.encode()
            )
            rows[table] = [r[0] for r in await cur.fetchall()]
    return rows


async def row_counts(db: Database, user_id: str | None = None) -> dict[str, int]:
    """Rows per table, optionally only those belonging to `user_id` (directly or via job info)."""
    s = db.schema
    where = {
        "users": "id = %(u)s",
        "job_info": "user_id = %(u)s",
        "questions": f'job_info_id IN (SELECT id FROM "{s}".job_info WHERE user_id = %(u)s)',
        "interviews": f'job_info_id IN (SELECT id FROM "{s}".job_info WHERE user_id = %(u)s)',
        "documents": "user_id = %(u)s",
        "conversations": "user_id = %(u)s",
    }
    counts: dict[str, int] = {}
    async with db.connection() as conn:
        for table in TABLES:
            query = f'SELECT count(*) FROM "{s}"."{table}"'
            if user_id is not None:
                query += f" WHERE {where[table]}"
            cur = await conn.execute(query.encode(), {"u": user_id})
            row = await cur.fetchone()
            assert row is not None
            counts[table] = int(row[0])
    return counts


async def make_user(db: Database, name: str) -> User:
    return await db.users.upsert(
        UserUpsert(id=f"user_{name}", email=f"{name}@example.com", name=name.title())
    )


@dataclass
class Holdings:
    """One of each owned row, all belonging to `user`."""

    user: User
    job_info: JobInfo
    question: Question
    interview: Interview
    document: Document
    conversation: Conversation


async def make_holdings(db: Database, name: str, seed: int) -> Holdings:
    user = await make_user(db, name)
    job = await db.job_infos.create(user.id, job_info_input(name=f"{name}'s job"))
    question = await db.questions.create(
        job.id, QuestionCreate(text=f"{name}'s question", difficulty="easy"), user_id=user.id
    )
    interview = await db.interviews.create(
        job.id, InterviewCreate(duration="15 minutes"), user_id=user.id
    )
    document = await db.documents.create(user.id, document_input(seed))
    conversation = await db.conversations.create(
        user.id, ConversationCreate(title=f"{name}'s chat", messages=[message("hello")])
    )
    return Holdings(user, job, question, interview, document, conversation)
