"""SQL implementation of `ConversationRepository`: messages appended atomically in SQL."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from psycopg.types.json import Jsonb
from pydantic import BaseModel
from sqlalchemy import Executable, Insert, Text, Update, bindparam, cast, func, insert, update

from darasa_db.cache.tags import user_tag
from darasa_db.errors import NotFoundError
from darasa_db.models import ConversationRow
from darasa_db.models.base import table_of
from darasa_db.repositories._owned import UserOwnedRepository, UserOwnedTable
from darasa_db.repositories._rows import assembler, model_row
from darasa_db.repositories._scope import Build
from darasa_db.repositories._statements import as_uuid, require, row_of_owner
from darasa_db.schemas import Conversation, ConversationCreate, Message
from darasa_db.schemas._common import Text500
from darasa_db.schemas.conversation import Messages

__all__ = ["SqlConversationRepository"]

t = table_of(ConversationRow)
ENTITY = "conversations"
_MESSAGE = assembler(Message)
COLUMNS = tuple(
    cast(c, Text).label(c.name) if c.name == "messages" else c for c in t.c
)  # messages as their JSON text: decoded into `Message`s only when a caller reads them


class _Rename(BaseModel):
    title: Text500


def _messages(text: str) -> tuple[Message, ...]:
    return tuple(map(_MESSAGE, json.loads(text)))


def _stored_messages(stored: str | list[Any]) -> Messages:
    if isinstance(stored, str):  # read as text (COLUMNS): decoded on first use
        return Messages.decoded_later(stored, _messages)
    return Messages(map(_MESSAGE, stored))  # read as jsonb by a statement of its own (an export)


ROW = model_row(Conversation, decode={"messages": _stored_messages})


def _notifying(dml: Insert | Update) -> Executable:
    """`dml` returning the conversation and `pg_notify`'s column, as `notifying` does, but with
    the call in RETURNING: a CTE would copy each returned conversation into a tuplestore once
    more (about 0.35 ms of server time at 3,000 messages)."""
    return dml.returning(
        *COLUMNS,
        func.pg_notify(bindparam("notify_channel"), bindparam("notify_payload")).label("notified"),
    )


def _insert() -> Executable:
    columns = ("user_id", "title", "messages")
    return _notifying(insert(t).values({c: bindparam(c) for c in columns}))


def _append() -> Executable:
    # One UPDATE with jsonb concatenation: concurrent appends serialise on the row lock.
    appended = t.c.messages.concat(bindparam("messages", type_=t.c.messages.type))
    return _notifying(update(t).where(row_of_owner(t)).values(messages=appended))


def _rename() -> Executable:
    return _notifying(update(t).where(row_of_owner(t)).values(title=bindparam("title")))


def _dump(messages: Sequence[Message]) -> Jsonb:
    return Jsonb([m.model_dump() for m in messages])


class SqlConversationRepository(UserOwnedRepository[Conversation]):
    """Conversations on PostgreSQL (`get`, `list_for_user` and `delete` from
    `UserOwnedRepository`)."""

    _owned = UserOwnedTable(t, ENTITY, ROW, COLUMNS)

    async def create(self, user_id: str, data: ConversationCreate) -> Conversation:
        require(data, ConversationCreate)
        params = {"user_id": user_id, "title": data.title, "messages": _dump(data.messages)}
        rows = await self._scope.write(
            _insert, params, ROW, (user_tag(ENTITY, user_id),), parent_id=user_id
        )
        if not rows:  # a user id that cannot be stored names no user
            raise NotFoundError("user", user_id)
        return rows[0]

    async def append_messages(
        self, id: uuid.UUID | str, messages: Sequence[Message], *, user_id: str
    ) -> Conversation:
        checked = [require(m, Message, f"messages[{i}]") for i, m in enumerate(messages)]
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

    async def _write_one(
        self, build: Build, key: uuid.UUID, user_id: str, params: dict[str, Any]
    ) -> Conversation:
        row = await self._write_owned(build, key, user_id, params)
        if row is None:
            raise NotFoundError("conversation", key)
        return row
