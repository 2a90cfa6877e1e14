"""SQL implementation of `ConversationRepository`: messages appended atomically in SQL."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from psycopg.rows import kwargs_row, scalar_row
from psycopg.types.json import Jsonb
from pydantic import BaseModel, TypeAdapter
from sqlalchemy import Executable, bindparam, delete, insert, select, update

from darasa_db.cache.tags import global_tag, id_tag, user_tag
from darasa_db.errors import NotFoundError
from darasa_db.models import ConversationRow
from darasa_db.models.base import table_of
from darasa_db.repositories._rows import assembler
from darasa_db.repositories._scope import Scope
from darasa_db.repositories._statements import (
    DEFAULT_LIMIT,
    as_uuid,
    check_limit,
    keyset_page,
    notifying,
)
from darasa_db.schemas import Conversation, ConversationCreate, Message
from darasa_db.schemas._common import Text500

__all__ = ["SqlConversationRepository"]

t = table_of(ConversationRow)
ENTITY = "conversations"
_MESSAGES = TypeAdapter(list[Message])
_MESSAGE = assembler(Message)
_CONVERSATION = assembler(Conversation)


class _Rename(BaseModel):
    title: Text500


def _conversation(**row: Any) -> Conversation:
    row["messages"] = tuple(map(_MESSAGE, row["messages"]))
    return _CONVERSATION(row)


ROW = kwargs_row(_conversation)
OWNED = (t.c.id == bindparam("id")) & (t.c.user_id == bindparam("user_id"))


def _insert() -> Executable:
    columns = ("user_id", "title", "messages")
    return notifying(insert(t).values({c: bindparam(c) for c in columns}).returning(*t.c))


def _get() -> Executable:
    return select(t).where(OWNED)


def _first_page() -> Executable:
    return keyset_page(t, t.c.user_id == bindparam("user_id"), after=False)


def _next_page() -> Executable:
    return keyset_page(t, t.c.user_id == bindparam("user_id"), after=True)


def _append() -> Executable:
    # One UPDATE with jsonb concatenation: concurrent appends serialise on the row lock.
    appended = t.c.messages.concat(bindparam("messages", type_=t.c.messages.type))
    return notifying(update(t).where(OWNED).values(messages=appended).returning(*t.c))


def _rename() -> Executable:
    return notifying(update(t).where(OWNED).values(title=bindparam("title")).returning(*t.c))


def _delete() -> Executable:
    return notifying(delete(t).where(OWNED).returning(t.c.id))


def _dump(messages: Sequence[Message]) -> Jsonb:
    return Jsonb([m.model_dump() for m in messages])


class SqlConversationRepository:
    """Conversations on PostgreSQL."""

    def __init__(self, scope: Scope) -> None:
        self._scope = scope

    async def create(self, user_id: str, data: ConversationCreate) -> Conversation:
        params = {"user_id": user_id, "title": data.title, "messages": _dump(data.messages)}
        rows = await self._scope.write(
            _insert, params, ROW, (user_tag(ENTITY, user_id),), parent_id=user_id
        )
        return rows[0]

    async def get(self, id: uuid.UUID | str, *, user_id: str) -> Conversation | None:
        key = as_uuid(id)
        if key is None:
            return None
        rows = await self._scope.read(
            ("conversations.get", key, user_id),
            (global_tag(ENTITY), user_tag(ENTITY, user_id), id_tag(ENTITY, key)),
            _get,
            {"id": key, "user_id": user_id},
            ROW,
        )
        return rows[0] if rows else None

    async def list_for_user(
        self, user_id: str, *, limit: int = DEFAULT_LIMIT, after: uuid.UUID | str | None = None
    ) -> list[Conversation]:
        check_limit(limit)
        cursor = None if after is None else as_uuid(after)
        if after is not None and cursor is None:
            return []
        return await self._scope.read(
            ("conversations.list_for_user", user_id, limit, cursor),
            (global_tag(ENTITY), user_tag(ENTITY, user_id)),
            _first_page if cursor is None else _next_page,
            {"user_id": user_id, "limit": limit, "after": cursor},
            ROW,
        )

    async def append_messages(
        self, id: uuid.UUID | str, messages: Sequence[Message], *, user_id: str
    ) -> Conversation:
        checked = _MESSAGES.validate_python(list(messages))
        key = as_uuid(id)
        if key is None:
            raise NotFoundError("conversation", id)
        if not checked:
            found = await self.get(key, user_id=user_id)
            if found is None:
                raise NotFoundError("conversation", id)
            return found
        return await self._write_one(_append, key, user_id, {"messages": _dump(checked)})

    async def rename(self, id: uuid.UUID | str, title: str, *, user_id: str) -> Conversation:
        checked = _Rename(title=title).title
        key = as_uuid(id)
        if key is None:
            raise NotFoundError("conversation", id)
        return await self._write_one(_rename, key, user_id, {"title": checked})

    async def delete(self, id: uuid.UUID | str, *, user_id: str) -> bool:
        key = as_uuid(id)
        if key is None:
            return False
        tags = (user_tag(ENTITY, user_id), id_tag(ENTITY, key))
        rows = await self._scope.write(_delete, {"id": key, "user_id": user_id}, scalar_row, tags)
        return bool(rows)

    async def _write_one(
        self, build: Any, key: uuid.UUID, user_id: str, params: dict[str, Any]
    ) -> Conversation:
        tags = (user_tag(ENTITY, user_id), id_tag(ENTITY, key))
        rows = await self._scope.write(build, {**params, "id": key, "user_id": user_id}, ROW, tags)
        if not rows:
            raise NotFoundError("conversation", key)
        return rows[0]
