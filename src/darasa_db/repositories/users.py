"""SQL implementation of `UserRepository`."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any, TypeVar

import psycopg
from psycopg.rows import AsyncRowFactory
from sqlalchemy import ColumnElement, Executable, Table, bindparam, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert

from darasa_db.cache.tags import ENTITIES, global_tag, id_tag, user_tag
from darasa_db.errors import ConflictError, NotFoundError
from darasa_db.models import ConversationRow, InterviewRow, JobInfoRow, QuestionRow, UserRow
from darasa_db.models.base import table_of
from darasa_db.repositories import conversations, documents, interviews, job_infos, questions
from darasa_db.repositories._rows import checked_row, model_row, scalar_column
from darasa_db.repositories._scope import Build, Scope, set_rls_identity
from darasa_db.repositories._statements import notifying, require, storable
from darasa_db.schemas import ErasureReport, User, UserCreate, UserUpdate, UserUpsert
from darasa_db.schemas.user import email_key

__all__ = ["EXPORT_FORMAT_VERSION", "SqlUserRepository", "export_document"]

T = TypeVar("T")
EXPORT_FORMAT_VERSION = 1
"""The version of `users.export`'s layout; raised when a field changes meaning or goes."""

t = table_of(UserRow)
ENTITY = "users"
ROW = model_row(User)
ID_ROW = scalar_column("id")
COLUMNS = ("id", "email", "name", "image_url", "password_hash", "email_key")
READ = [c for c in t.c if c.name != "email_key"]  # the columns of `User`, in its field order


def _insert() -> Executable:
    return notifying(insert(t).values({c: bindparam(c) for c in COLUMNS}).returning(*READ))


def _upsert() -> Executable:
    columns = ("id", "email", "name", "image_url", "email_key")
    stmt = insert(t).values({c: bindparam(c) for c in columns})
    stmt = stmt.on_conflict_do_update(
        index_elements=[t.c.id], set_={c: stmt.excluded[c] for c in columns[1:]}
    )
    return notifying(stmt.returning(*READ))


def _get() -> Executable:
    return select(*READ).where(t.c.id == bindparam("id"))


def _get_by_email() -> Executable:
    return select(*READ).where(t.c.email_key == bindparam("email_key"))


@cache
def _update(fields: frozenset[str]) -> Any:
    def build() -> Executable:
        values: dict[str, Any] = {name: bindparam(name) for name in sorted(fields)}
        statement = update(t).where(t.c.id == bindparam("id")).values(values)
        return notifying(statement.returning(*READ))

    return build


def _delete() -> Executable:
    return notifying(delete(t).where(t.c.id == bindparam("id")).returning(t.c.id))


def _write_tags(id: str) -> tuple[str, ...]:
    return (global_tag(ENTITY), id_tag(ENTITY, id))


def _every_tag(id: str) -> tuple[str, ...]:
    """The tags of every cached read that can hold the user's data."""
    return _write_tags(id) + tuple(user_tag(entity, id) for entity in ENTITIES)


# ------------------------------------------------------------------ export and erasure
j = table_of(JobInfoRow)
q = table_of(QuestionRow)
i = table_of(InterviewRow)
c = table_of(ConversationRow)
d = documents.t  # without the generated search column


def _users_jobs() -> Any:
    return select(j.c.id).where(j.c.user_id == bindparam("user_id"))


def _of_user(table: Table) -> ColumnElement[bool]:
    if "user_id" in table.c:
        return table.c.user_id == bindparam("user_id")
    return table.c.job_info_id.in_(_users_jobs())


def _export_select(table: Table, columns: Sequence[Any] | None = None) -> Build:
    chosen = columns if columns is not None else (table,)
    return lambda: select(*chosen).where(_of_user(table)).order_by(table.c.created_at, table.c.id)


OWNED = {"job_info": j, "questions": q, "interviews": i, "documents": d, "conversations": c}
"""The tables of a user's rows besides `users`, by table name."""
TABLES = ("users", *OWNED)
_EXPORTS = {name: _export_select(table) for name, table in OWNED.items()}
_EXPORTS["conversations"] = _export_select(c, conversations.STORED)
_EXPORT_ROWS: dict[str, AsyncRowFactory[Any]] = {
    "job_info": job_infos.ROW,
    "questions": questions.ROW,
    "interviews": interviews.ROW,
    "documents": documents.ROW,
    "conversations": conversations.ROW,
}


def _lock_user() -> Executable:
    return select(t.c.id).where(t.c.id == bindparam("user_id")).with_for_update()


def _lock_jobs() -> Executable:
    locked: Executable = _users_jobs().order_by(j.c.id).with_for_update()
    return locked


def _count(table: Table, condition: ColumnElement[bool]) -> Any:
    return select(func.count()).select_from(table).where(condition).scalar_subquery()


def _counts() -> Executable:
    """The user's rows in each table, in one statement."""
    return select(
        _count(t, t.c.id == bindparam("user_id")).label("users"),
        *(_count(table, _of_user(table)).label(name) for name, table in OWNED.items()),
    )


def _erase() -> Executable:
    return delete(t).where(t.c.id == bindparam("user_id")).returning(t.c.id)


COUNTS = checked_row(TABLES, lambda **counts: {k: int(v) for k, v in counts.items()})


def export_document(
    user: User,
    job_infos: Sequence[Any],
    questions: Sequence[Any],
    interviews: Sequence[Any],
    documents: Sequence[Any],
    conversations: Sequence[Any],
) -> dict[str, Any]:
    """The export of a user from their DTOs (shared by the SQL repository and the fake).

    JSON-ready: ids and timestamps as strings, embeddings as lists of floats. The password
    hash is left out (a credential, not data to hand out); `has_password` says if one is set.
    """
    profile = user.model_dump(mode="json", exclude={"password_hash"})
    profile["has_password"] = user.password_hash is not None
    jobs = []
    for job in job_infos:
        entry = job.model_dump(mode="json")
        entry["questions"] = [
            x.model_dump(mode="json") for x in questions if x.job_info_id == job.id
        ]
        entry["interviews"] = [
            x.model_dump(mode="json") for x in interviews if x.job_info_id == job.id
        ]
        jobs.append(entry)
    docs = []
    for document in documents:
        entry = document.model_dump(mode="json", exclude={"embedding"})
        embedding = document.embedding
        entry["embedding"] = None if embedding is None else [float(x) for x in embedding]
        docs.append(entry)
    return {
        "format_version": EXPORT_FORMAT_VERSION,
        "exported_at": datetime.now(UTC).isoformat(),
        "user": profile,
        "job_infos": jobs,
        "documents": docs,
        "conversations": [x.model_dump(mode="json") for x in conversations],
    }


class SqlUserRepository:
    """Users on PostgreSQL. Any user write invalidates the `users` tag (email lookups)."""

    def __init__(self, scope: Scope) -> None:
        self._scope = scope

    async def create(self, data: UserCreate) -> User:
        require(data, UserCreate)
        params = data.model_dump()
        params["id"] = params["user_id"] = data.id or str(uuid.uuid4())
        params["email_key"] = email_key(data.email)
        rows = await self._scope.write(_insert, params, ROW, _write_tags(params["id"]))
        return rows[0]

    async def upsert(self, data: UserUpsert) -> User:
        require(data, UserUpsert)
        params = {**data.model_dump(), "user_id": data.id, "email_key": email_key(data.email)}
        try:
            rows = await self._scope.write(_upsert, dict(params), ROW, _write_tags(data.id))
        except ConflictError as exc:
            # ON CONFLICT arbitrates on the id only: a concurrent upsert of the same new id can
            # trip the email index first. That one has committed by now; run it once more.
            if exc.field != "email" or not self._scope.retry_safe:
                raise
            rows = await self._scope.write(_upsert, params, ROW, _write_tags(data.id))
        return rows[0]

    async def get(self, id: str) -> User | None:
        rows = await self._scope.read(
            ("users.get", id),
            (global_tag(ENTITY), id_tag(ENTITY, id)),
            _get,
            {"id": id, "user_id": id},
            ROW,
        )
        return rows[0] if rows else None

    async def get_by_email(self, email: str) -> User | None:
        key = email_key(email)
        rows = await self._scope.read(
            ("users.get_by_email", key),
            (global_tag(ENTITY),),
            _get_by_email,
            {"email_key": key},
            ROW,
        )
        return rows[0] if rows else None

    async def update(self, id: str, data: UserUpdate) -> User:
        require(data, UserUpdate)
        changes = data.changes()
        if "email" in changes:
            changes["email_key"] = email_key(changes["email"])
        rows = await self._scope.write(
            _update(frozenset(changes)), {**changes, "id": id, "user_id": id}, ROW, _write_tags(id)
        )
        if not rows:
            raise NotFoundError("user", id)
        return rows[0]

    async def delete(self, id: str) -> bool:
        tags = _every_tag(id)
        rows = await self._scope.write(_delete, {"id": id, "user_id": id}, ID_ROW, tags)
        return bool(rows)

    async def export(self, user_id: str) -> dict[str, Any]:
        """Everything stored for the user, read in one REPEATABLE READ, READ ONLY transaction
        (inside a `tx`: in that transaction); `NotFoundError` when the user does not exist."""
        if not storable(user_id, 255):
            raise NotFoundError("user", user_id)
        params = {"user_id": user_id, "id": user_id}

        async def read(conn: psycopg.AsyncConnection[Any]) -> dict[str, Any]:
            await self._identify(conn, user_id)
            users = await self._fetch(conn, _get, params, ROW)
            if not users:
                raise NotFoundError("user", user_id)
            rows = {
                name: await self._fetch(conn, _EXPORTS[name], params, _EXPORT_ROWS[name])
                for name in OWNED
            }
            return export_document(
                users[0],
                rows["job_info"],
                rows["questions"],
                rows["interviews"],
                rows["documents"],
                rows["conversations"],
            )

        result: dict[str, Any] = await self._scope.snapshot(read)
        return result

    async def erase(self, user_id: str) -> ErasureReport:
        """Delete the user and everything of theirs in one transaction; the counts per table
        are taken in it, after locking the user and their job infos (nothing can be added
        meanwhile). Every cache tag of the user is invalidated here and, by NOTIFY, in other
        processes. `NotFoundError` when the user does not exist."""
        if not storable(user_id, 255):
            raise NotFoundError("user", user_id)
        params = {"user_id": user_id}

        async def erase(conn: psycopg.AsyncConnection[Any]) -> dict[str, int]:
            await self._identify(conn, user_id)
            if not await self._fetch(conn, _lock_user, params, ID_ROW):
                raise NotFoundError("user", user_id)
            await self._fetch(conn, _lock_jobs, params, ID_ROW)
            counts = (await self._fetch(conn, _counts, params, COUNTS))[0]
            await self._fetch(conn, _erase, params, ID_ROW)
            return counts

        counts: dict[str, int] = await self._scope.run(erase, _every_tag(user_id))
        conversations.forget_user(self._scope.connector, user_id)  # held messages too
        return ErasureReport(user_id=user_id, counts=counts)

    async def _identify(self, conn: psycopg.AsyncConnection[Any], user_id: str) -> None:
        if self._scope.connector.settings.row_level_security:
            await set_rls_identity(conn, {"user_id": user_id})

    async def _fetch(
        self,
        conn: psycopg.AsyncConnection[Any],
        build: Build,
        params: dict[str, Any],
        factory: AsyncRowFactory[T],
    ) -> list[T]:
        cur = conn.cursor(row_factory=factory)
        await cur.execute(self._scope.connector.sql(build), params)
        return await cur.fetchall()
