"""SQL implementation of `QuestionRepository` (owned by the row's `user_id`, its job info's)."""

from __future__ import annotations

import uuid

from darasa_db.models import QuestionRow
from darasa_db.models.base import table_of
from darasa_db.repositories._owned import JobInfoChildRepository, JobInfoChildTable
from darasa_db.repositories._rows import model_row
from darasa_db.schemas import Question, QuestionCreate

__all__ = ["SqlQuestionRepository"]

t = table_of(QuestionRow)
ENTITY = "questions"
ROW = model_row(Question)


class SqlQuestionRepository(JobInfoChildRepository[Question, QuestionCreate]):
    """Questions on PostgreSQL (`create`, `get` and `list_for_job_info` from
    `JobInfoChildRepository`)."""

    _input = QuestionCreate

    _owned = JobInfoChildTable(t, ENTITY, ROW, ("text", "difficulty"))

    async def delete(self, id: uuid.UUID | str, *, user_id: str) -> bool:
        return await self._delete(id, user_id)
