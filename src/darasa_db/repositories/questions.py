"""SQL implementation of `QuestionRepository` (ownership through the job info)."""

from __future__ import annotations

import uuid

from psycopg.rows import scalar_row
from sqlalchemy import Executable, delete, select

from darasa_db.cache.tags import global_tag, id_tag, job_info_tag, user_tag
from darasa_db.errors import NotFoundError
from darasa_db.models import QuestionRow
from darasa_db.models.base import table_of
from darasa_db.repositories._rows import model_row
from darasa_db.repositories._scope import Scope
from darasa_db.repositories._statements import (
    as_uuid,
    child_of_owner,
    children_page,
    insert_child,
    notifying,
)
from darasa_db.schemas import Question, QuestionCreate

__all__ = ["SqlQuestionRepository"]

t = table_of(QuestionRow)
ENTITY = "questions"
ROW = model_row(Question)


def _insert() -> Executable:
    return insert_child(t, ("text", "difficulty"))


def _get() -> Executable:
    return select(t).where(child_of_owner(t))


def _list() -> Executable:
    return children_page(t)


def _delete() -> Executable:
    return notifying(delete(t).where(child_of_owner(t)).returning(t.c.id))


class SqlQuestionRepository:
    """Questions on PostgreSQL."""

    def __init__(self, scope: Scope) -> None:
        self._scope = scope

    async def create(
        self, job_info_id: uuid.UUID | str, data: QuestionCreate, *, user_id: str
    ) -> Question:
        parent = as_uuid(job_info_id)
        if parent is None:
            raise NotFoundError("job_info", job_info_id)
        tags = (user_tag(ENTITY, user_id), job_info_tag(ENTITY, parent))
        params = {**data.model_dump(), "job_info_id": parent, "user_id": user_id}
        rows = await self._scope.write(_insert, params, ROW, tags)
        if not rows:
            raise NotFoundError("job_info", job_info_id)
        return rows[0]

    async def get(self, id: uuid.UUID | str, *, user_id: str) -> Question | None:
        key = as_uuid(id)
        if key is None:
            return None
        rows = await self._scope.read(
            ("questions.get", key, user_id),
            (global_tag(ENTITY), user_tag(ENTITY, user_id), id_tag(ENTITY, key)),
            _get,
            {"id": key, "user_id": user_id},
            ROW,
        )
        return rows[0] if rows else None

    async def list_for_job_info(
        self, job_info_id: uuid.UUID | str, *, user_id: str
    ) -> list[Question]:
        parent = as_uuid(job_info_id)
        if parent is None:
            return []
        return await self._scope.read(
            ("questions.list_for_job_info", parent, user_id),
            (global_tag(ENTITY), user_tag(ENTITY, user_id), job_info_tag(ENTITY, parent)),
            _list,
            {"job_info_id": parent, "user_id": user_id},
            ROW,
        )

    async def delete(self, id: uuid.UUID | str, *, user_id: str) -> bool:
        key = as_uuid(id)
        if key is None:
            return False
        tags = (user_tag(ENTITY, user_id), id_tag(ENTITY, key))
        rows = await self._scope.write(_delete, {"id": key, "user_id": user_id}, scalar_row, tags)
        return bool(rows)
