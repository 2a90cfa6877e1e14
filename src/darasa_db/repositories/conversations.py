"""SQL implementation of `ConversationRepository`: messages appended atomically in SQL.

An append returns the whole conversation, as `get` would. When this process already holds the
messages the append started from (it read or wrote them last), the statement does not send
them back: each change of a conversation's messages gets a new random `messages_version`
(migration 0006's trigger, whoever makes the change), the trigger keeps the version the change
started from in `previous_messages_version`, and the statement returns the stored messages
only when that is not the version this process holds. The result is then the held messages
followed by the appended ones, exactly what the database stores, at a cost that does not grow
with the conversation.
"""

from __future__ import annotations

import json
import threading
import uuid
import weakref
from collections.abc import Sequence
from typing import Any

from cachetools import LRUCache
from psycopg.types.json import Jsonb
from pydantic import BaseModel, TypeAdapter
from pydantic_core import PydanticSerializationError
from sqlalchemy import (
    ColumnElement,
    Executable,
    Insert,
    Text,
    Update,
    bindparam,
    case,
    cast,
    func,
    insert,
    null,
    update,
)
from sqlalchemy.dialects.postgresql import UUID

from darasa_db._connector import Connector
from darasa_db.cache.tags import id_tag, user_tag
from darasa_db.errors import DarasaDBError, NotFoundError
from darasa_db.models import ConversationRow
from darasa_db.models.base import table_of
from darasa_db.repositories._owned import UserOwnedRepository, UserOwnedTable
from darasa_db.repositories._rows import assembler, constructor, values_row
from darasa_db.repositories._scope import Build, Scope
from darasa_db.repositories._statements import as_uuid, require, row_of_owner
from darasa_db.schemas import Conversation, ConversationCreate, Message
from darasa_db.schemas._common import Text500
from darasa_db.schemas.conversation import Messages

__all__ = ["KNOWN_CHARACTERS", "SqlConversationRepository"]

t = table_of(ConversationRow)
ENTITY = "conversations"
_MESSAGE = assembler(Message)
_, _make = constructor(Conversation)  # in field order: NAMES without messages_version
STORED = tuple(c for c in t.c if c.name != "previous_messages_version")  # (only SQL uses it)
NAMES = tuple(c.name for c in STORED)  # the fields, then messages_version
COLUMNS = tuple(
    cast(c, Text).label(c.name) if c.name == "messages" else c for c in STORED
)  # messages as their JSON text: decoded into `Message`s only when a caller reads them
KNOWN_CHARACTERS = 8_000_000
"""How much stored JSON (in characters) of recently used conversations' messages each
`Database` holds, least recently used dropped first, so that appends need not fetch it.
Messages a host has read are held decoded: about five times that in memory at most."""
_KNOWN_VERSION = bindparam("known_version", type_=UUID(as_uuid=True))
_MESSAGES_JSON = TypeAdapter(list[Message])
_FIELDS = tuple(Message.model_fields)  # a message built unvalidated may lack one


class _Rename(BaseModel):
    title: Text500


def _messages(text: str) -> tuple[Message, ...]:
    return tuple(map(_MESSAGE, json.loads(text)))


def _conversation(
    values: Sequence[Any], held: Messages | None = None, tail: tuple[Message, ...] = ()
) -> Conversation:
    """The conversation of a row of `NAMES`. A row without its messages is the change of `held`
    (the statement checked its version) that appended `tail`."""
    stored, version = values[3], values[6]  # a write's row has `notified` after these
    if isinstance(stored, str):  # read as text (COLUMNS): decoded on first use
        messages = Messages.decoded_later(stored, _messages, version=version)
    elif stored is not None:  # read as jsonb by a statement of its own (an export)
        messages = Messages(map(_MESSAGE, stored))
    elif held is not None:
        messages = held.extended(tail, version=version)
    else:
        raise DarasaDBError("a conversation row came without its messages")
    return _make((values[0], values[1], values[2], messages, values[4], values[5]))


ROW = values_row(NAMES, _conversation)
_VALUES = values_row(NAMES, tuple)  # a write's row, assembled by the repository


class _Known:
    """The latest messages a `Database` has seen of its recently used conversations, by id:
    an append or rename of one of them need not fetch its messages again. Only ever a hint:
    the statement checks the version it names. Keyed by the id's integer (hashed and compared
    in C: a `UUID` key costs about 25 Python-level calls per append in `LRUCache`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: LRUCache[int, tuple[Messages, int, str]] = LRUCache(
            KNOWN_CHARACTERS, getsizeof=_weight
        )

    def get(self, id: uuid.UUID) -> Messages | None:
        with self._lock:
            entry = self._held.get(id.int)
        return None if entry is None else entry[0]

    def remember(self, conversation: Conversation, *, changed: bool = False) -> None:
        """Hold `conversation`'s messages (`changed`: just written, so surely not held)."""
        messages = conversation.messages
        version = messages._version
        if version is None:
            return
        key = conversation.id.int
        if not changed:
            with self._lock:
                entry = self._held.get(key)
            if entry is not None and entry[0]._version == version:
                return  # held already
        size = messages._size  # the latest seen wins: versions are random, compared for equality
        with self._lock:
            if size <= KNOWN_CHARACTERS:
                self._held[key] = (messages, size, conversation.user_id)
            else:
                self._held.pop(key, None)

    def forget(self, id: uuid.UUID) -> None:
        with self._lock:
            self._held.pop(id.int, None)

    def forget_user(self, user_id: str) -> None:
        """Drop every conversation of `user_id` (erased: nothing of theirs stays in memory)."""
        with self._lock:
            for key in [key for key, entry in self._held.items() if entry[2] == user_id]:
                del self._held[key]


def _weight(entry: tuple[Messages, int, str]) -> int:
    return entry[1]


_KNOWN: weakref.WeakKeyDictionary[Connector, _Known] = weakref.WeakKeyDictionary()
_KNOWN_LOCK = threading.Lock()


def forget_user(connector: Connector, user_id: str) -> None:
    """Drop the messages a `Database` holds of `user_id`'s conversations (after an erase)."""
    _known_for(connector).forget_user(user_id)


def _known_for(connector: Connector) -> _Known:
    """The `_Known` of a `Database` (shared by its transactions)."""
    with _KNOWN_LOCK:
        known = _KNOWN.get(connector)
        if known is None:
            known = _KNOWN[connector] = _Known()
        return known


def _returning(dml: Insert | Update, messages: ColumnElement[Any]) -> Executable:
    """`dml` returning the conversation, with `messages` for its messages, and `pg_notify`'s
    column, as `notifying` does but with the call in RETURNING: a CTE would copy each returned
    conversation into a tuplestore once more (about 0.35 ms of server time at 3,000 messages)."""
    columns = (messages.label("messages") if c.name == "messages" else c for c in COLUMNS)
    return dml.returning(
        *columns,
        func.pg_notify(bindparam("notify_channel"), bindparam("notify_payload")).label("notified"),
    )


def _unless_known(version: ColumnElement[Any]) -> ColumnElement[Any]:
    """The messages as JSON text, or NULL when `version` is the one the caller holds."""
    return case((version == _KNOWN_VERSION, null()), else_=cast(t.c.messages, Text))


def _insert() -> Executable:
    columns = ("user_id", "title", "messages")
    statement = insert(t).values({c: bindparam(c) for c in columns})
    return _returning(statement, cast(t.c.messages, Text))


def _append() -> Executable:
    # One UPDATE with jsonb concatenation: concurrent appends serialise on the row lock.
    appended = t.c.messages.concat(bindparam("messages", type_=t.c.messages.type))
    statement = update(t).where(row_of_owner(t)).values(messages=appended)
    return _returning(statement, _unless_known(t.c.previous_messages_version))


def _rename() -> Executable:
    statement = update(t).where(row_of_owner(t)).values(title=bindparam("title"))
    return _returning(statement, _unless_known(t.c.messages_version))


class SqlConversationRepository(UserOwnedRepository[Conversation]):
    """Conversations on PostgreSQL (`list_for_user` from `UserOwnedRepository`)."""

    _owned = UserOwnedTable(t, ENTITY, ROW, COLUMNS)

    def __init__(self, scope: Scope) -> None:
        super().__init__(scope)
        self._known = _known_for(scope.connector)

    async def get(self, id: uuid.UUID | str, *, user_id: str) -> Conversation | None:
        """The conversation if `user_id` owns it, else None (also when `id` is not a UUID)."""
        found = await super().get(id, user_id=user_id)
        if found is not None:
            self._known.remember(found)
        return found

    async def create(self, user_id: str, data: ConversationCreate) -> Conversation:
        require(data, ConversationCreate)
        params = {"user_id": user_id, "title": data.title, "messages": _stored(data.messages)[0]}
        rows = await self._scope.write(
            _insert, params, ROW, (user_tag(ENTITY, user_id),), parent_id=user_id
        )
        if not rows:  # a user id that cannot be stored names no user
            raise NotFoundError("user", user_id)
        self._known.remember(rows[0], changed=True)
        return rows[0]

    async def append_messages(
        self, id: uuid.UUID | str, messages: Sequence[Message], *, user_id: str
    ) -> Conversation:
        checked = list(messages)
        for i, m in enumerate(checked):
            if type(m) is not Message:  # (the name is built only for a message that may fail)
                require(m, Message, f"messages[{i}]")
        key = as_uuid(id)
        if key is None:
            raise NotFoundError("conversation", id)
        if not checked:
            found = await self.get(key, user_id=user_id)
            if found is None:
                raise NotFoundError("conversation", id)
            return found
        stored, tail = _stored(checked)
        return await self._write_one(_append, key, user_id, {"messages": stored}, tail)

    async def rename(self, id: uuid.UUID | str, title: str, *, user_id: str) -> Conversation:
        checked = _Rename(title=title).title
        key = as_uuid(id)
        if key is None:
            raise NotFoundError("conversation", id)
        return await self._write_one(_rename, key, user_id, {"title": checked}, ())

    async def delete(self, id: uuid.UUID | str, *, user_id: str) -> bool:
        """Delete the conversation; False when missing or not owned."""
        key = as_uuid(id)
        if key is not None:
            self._known.forget(key)
        return await self._delete(id, user_id)

    async def _write_one(
        self,
        build: Build,
        key: uuid.UUID,
        user_id: str,
        params: dict[str, Any],
        tail: tuple[Message, ...],
    ) -> Conversation:
        held = self._known.get(key)
        known_version = None if held is None else held._version
        params = {**params, "id": key, "user_id": user_id, "known_version": known_version}
        tags = (user_tag(ENTITY, user_id), id_tag(ENTITY, key))
        rows = await self._scope.write(build, params, _VALUES, tags)
        if not rows:
            raise NotFoundError("conversation", key)
        conversation = _conversation(rows[0], held, tail)
        self._known.remember(conversation, changed=True)
        return conversation


def _stored(messages: Sequence[Message]) -> tuple[str | Jsonb, tuple[Message, ...]]:
    """`messages` as the JSON to store, and as a read will give them back. A subclass's own
    fields are refused here, before anything is written.

    ASCII JSON goes as a `str`, which psycopg dumps in C (the statements cast it to jsonb);
    other JSON as the UTF-8 bytes pydantic wrote, not decoded only to be encoded again."""
    if all(type(m) is Message and tuple(m.__dict__) == _FIELDS for m in messages):
        try:
            data = _MESSAGES_JSON.serializer.to_json(list(messages))
        except PydanticSerializationError:  # (built unvalidated: the long way reports it)
            pass
        else:  # (frozen: they can be held as they are)
            stored = data.decode() if data.isascii() else Jsonb(data, dumps=_as_is)
            return stored, tuple(messages)
    dumped = [m.model_dump() for m in messages]
    held = tuple(map(_MESSAGE, dumped))  # first: it refuses fields json.dumps would choke on
    return json.dumps(dumped), held


def _as_is(data: bytes) -> bytes:
    """The `dumps` of a `Jsonb` whose value is already JSON."""
    return data
