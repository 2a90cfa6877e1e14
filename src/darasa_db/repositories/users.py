"""SQL implementation of `UserRepository`."""

from __future__ import annotations

import uuid
from functools import cache
from typing import Any

from sqlalchemy import Executable, bindparam, delete, select, update
from sqlalchemy.dialects.postgresql import insert

from darasa_db.cache.tags import ENTITIES, global_tag, id_tag, user_tag
from darasa_db.errors import ConflictError, NotFoundError
from darasa_db.models import UserRow
from darasa_db.models.base import table_of
from darasa_db.repositories._rows import model_row, scalar_column
from darasa_db.repositories._scope import Scope
from darasa_db.repositories._statements import notifying, require
from darasa_db.schemas import User, UserCreate, UserUpdate, UserUpsert
from darasa_db.schemas.user import email_key

__all__ = ["SqlUserRepository"]

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
        tags = _write_tags(id) + tuple(user_tag(entity, id) for entity in ENTITIES)
        rows = await self._scope.write(_delete, {"id": id, "user_id": id}, ID_ROW, tags)
        return bool(rows)
