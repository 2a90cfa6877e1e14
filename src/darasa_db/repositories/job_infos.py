"""SQL implementation of `JobInfoRepository`."""

from __future__ import annotations

import uuid

from sqlalchemy import Executable, Text, bindparam, cast, insert

from darasa_db.cache.tags import id_tag, job_info_tag, user_tag
from darasa_db.errors import NotFoundError
from darasa_db.models import JobInfoRow
from darasa_db.models.base import table_of
from darasa_db.repositories._owned import UserOwnedRepository, UserOwnedTable
from darasa_db.repositories._rows import model_row
from darasa_db.repositories._statements import notifying, require
from darasa_db.schemas import JobInfo, JobInfoCreate, JobInfoUpdate

__all__ = ["SqlJobInfoRepository"]

t = table_of(JobInfoRow)
ENTITY = "job_infos"
ROW = model_row(JobInfo)
# Reads fetch rows in binary format (a page of 50 is about 13 µs faster); the enum column
# has no binary loader, so it is read as text, under its own name.
COLUMNS = tuple(cast(c, Text).label(c.name) if c.name == "experience_level" else c for c in t.c)


def _insert() -> Executable:
    columns = ("user_id", "name", "title", "experience_level", "description")
    return notifying(insert(t).values({c: bindparam(c) for c in columns}).returning(*t.c))


class SqlJobInfoRepository(UserOwnedRepository[JobInfo]):
    """Job infos on PostgreSQL (`get`, `list_for_user` and `delete` from `UserOwnedRepository`)."""

    _owned = UserOwnedTable(t, ENTITY, ROW, COLUMNS, binary=True)

    async def create(self, user_id: str, data: JobInfoCreate) -> JobInfo:
        params = {**require(data, JobInfoCreate).model_dump(), "user_id": user_id}
        tags = (user_tag(ENTITY, user_id),)
        rows = await self._scope.write(_insert, params, ROW, tags, parent_id=user_id)
        if not rows:  # a user id that cannot be stored names no user
            raise NotFoundError("user", user_id)
        return rows[0]

    async def update(self, id: uuid.UUID | str, data: JobInfoUpdate, *, user_id: str) -> JobInfo:
        return await self._update(id, require(data, JobInfoUpdate), user_id, missing="job_info")

    def _delete_tags(self, user_id: str, key: uuid.UUID) -> tuple[str, ...]:
        """Its own tags and its questions' and interviews': the delete cascades to them."""
        return (
            user_tag(ENTITY, user_id),
            id_tag(ENTITY, key),
            user_tag("questions", user_id),
            user_tag("interviews", user_id),
            job_info_tag("questions", key),
            job_info_tag("interviews", key),
        )
