"""SQL implementation of `InterviewRepository` (owned by the row's `user_id`, its job info's)."""

from __future__ import annotations

import uuid

from darasa_db.models import InterviewRow
from darasa_db.models.base import table_of
from darasa_db.repositories._owned import JobInfoChildRepository, JobInfoChildTable
from darasa_db.repositories._rows import model_row
from darasa_db.repositories._statements import require
from darasa_db.schemas import Interview, InterviewCreate, InterviewUpdate

__all__ = ["SqlInterviewRepository"]

t = table_of(InterviewRow)
ENTITY = "interviews"
ROW = model_row(Interview)


class SqlInterviewRepository(JobInfoChildRepository[Interview, InterviewCreate]):
    """Interviews on PostgreSQL (`create`, `get` and `list_for_job_info` from
    `JobInfoChildRepository`)."""

    _input = InterviewCreate
    _owned = JobInfoChildTable(t, ENTITY, ROW, ("duration", "hume_chat_id", "feedback"))

    async def update(
        self, id: uuid.UUID | str, data: InterviewUpdate, *, user_id: str
    ) -> Interview:
        return await self._update(id, require(data, InterviewUpdate), user_id, missing="interview")
