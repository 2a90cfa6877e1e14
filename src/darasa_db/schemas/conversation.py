"""Conversation and message DTOs."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, Literal, SupportsIndex, overload

from pydantic import Field, GetCoreSchemaHandler
from pydantic_core import core_schema

from darasa_db.schemas._common import InputModel, ReadModel, Text100K, Text500

__all__ = ["Conversation", "ConversationCreate", "Message", "MessageRole", "Messages"]

MessageRole = Literal["system", "user", "assistant", "tool"]
"""Who wrote a message; any other role is refused."""


class Message(InputModel):
    """One chat message: a `role` and its `content`."""

    role: MessageRole
    content: Text100K


class Messages(Sequence[Message]):
    """A conversation's messages, oldest first: an immutable sequence that behaves as a tuple of
    `Message` (equal to, and hashing like, the tuple of the same messages; slices and `+` give
    tuples).

    Read from the database, the messages are decoded from their stored JSON on first use, so
    reading or appending to a conversation costs the same whatever its length until its
    messages are looked at.
    """

    __slots__ = ("_chars", "_decode", "_items", "_source", "_tail", "_version")

    def __init__(self, items: Iterable[Message] = ()) -> None:
        self._items: tuple[Message, ...] | None = tuple(items)
        self._source: str | tuple[Message, ...] | None = None
        self._decode: Callable[[str], tuple[Message, ...]] | None = None
        self._tail: tuple[Message, ...] = ()
        self._version: uuid.UUID | None = None
        self._chars: int | None = None

    @classmethod
    def decoded_later(
        cls,
        source: str,
        decode: Callable[[str], tuple[Message, ...]],
        *,
        version: uuid.UUID | None = None,
    ) -> Messages:
        """The messages `decode(source)` will give, decoded the first time they are needed.

        `version` is the stored `messages_version` they were read at, if known.
        """
        lazy = cls.__new__(cls)
        lazy._items, lazy._source, lazy._decode = None, source, decode
        lazy._tail, lazy._version, lazy._chars = (), version, len(source)
        return lazy

    def extended(self, tail: tuple[Message, ...], *, version: uuid.UUID | None) -> Messages:
        """These messages followed by `tail`, at stored version `version`, without decoding
        these."""
        joined = type(self).__new__(type(self))
        joined._items, joined._version = None, version
        joined._chars = self._size + _json_size(tail)
        source, decode = self._lazy()
        if source is None:
            joined._source, joined._decode, joined._tail = self.as_tuple(), None, tail
        else:
            joined._source, joined._decode, joined._tail = source, decode, self._tail + tail
        return joined

    def _lazy(
        self,
    ) -> tuple[str | tuple[Message, ...] | None, Callable[[str], tuple[Message, ...]] | None]:
        """`(source, decode)` while still undecoded, else `(None, None)`. `as_tuple` sets
        `_items` before it clears these, so a source read as None means `_items` is set."""
        source, decode = self._source, self._decode
        if source is None or (decode is None and isinstance(source, str)):
            return None, None
        return source, decode

    @property
    def _size(self) -> int:
        """About how many characters of stored JSON these messages take (counted once)."""
        chars = self._chars
        if chars is None:
            chars = self._chars = _json_size(self.as_tuple())
        return chars

    def as_tuple(self) -> tuple[Message, ...]:
        """The messages as a tuple."""
        items = self._items
        if items is None:
            source, decode = self._lazy()
            if source is None:  # decoded meanwhile by another thread
                decoded = self._items
                assert decoded is not None
                return decoded
            if isinstance(source, str):
                assert decode is not None
                source = decode(source)
            items = self._items = source + self._tail  # idempotent: a concurrent decode is harmless
            self._source = self._decode = None  # `_tail` stays: a concurrent decode may read it
        return items

    @overload
    def __getitem__(self, index: SupportsIndex) -> Message: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[Message, ...]: ...
    def __getitem__(self, index: SupportsIndex | slice) -> Message | tuple[Message, ...]:
        return self.as_tuple()[index]

    def __len__(self) -> int:
        return len(self.as_tuple())

    def __iter__(self) -> Iterator[Message]:
        return iter(self.as_tuple())

    def __reversed__(self) -> Iterator[Message]:
        return reversed(self.as_tuple())

    def __contains__(self, value: object) -> bool:
        return value in self.as_tuple()

    def index(self, value: Any, start: int = 0, stop: int = 2**63 - 1) -> int:
        return self.as_tuple().index(value, start, stop)

    def count(self, value: Any) -> int:
        return self.as_tuple().count(value)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Messages):
            mine, theirs = self._lazy(), other._lazy()  # (taken once: another thread may decode)
            if mine[0] is not None and mine[0] == theirs[0] and self._tail == other._tail:
                return True  # the same stored JSON: the same messages, nothing to decode
            return self.as_tuple() == other.as_tuple()
        if isinstance(other, tuple):
            return self.as_tuple() == other
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __hash__(self) -> int:
        return hash(self.as_tuple())

    def __add__(self, other: tuple[Message, ...] | Messages) -> tuple[Message, ...]:
        if isinstance(other, Messages):
            other = other.as_tuple()
        if not isinstance(other, tuple):
            return NotImplemented
        return self.as_tuple() + other

    def __radd__(self, other: tuple[Message, ...]) -> tuple[Message, ...]:
        if not isinstance(other, tuple):
            return NotImplemented
        return other + self.as_tuple()

    def __bool__(self) -> bool:
        return bool(self.as_tuple())

    def __repr__(self) -> str:
        return repr(self.as_tuple())

    def __reduce__(self) -> tuple[Any, ...]:
        return (Messages, (self.as_tuple(),))

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        items = handler.generate_schema(tuple[Message, ...])
        from_items = core_schema.no_info_after_validator_function(cls, items)
        return core_schema.json_or_python_schema(
            json_schema=from_items,
            python_schema=core_schema.union_schema(
                [core_schema.is_instance_schema(cls), from_items]
            ),
            serialization=core_schema.plain_serializer_function_ser_schema(
                _as_tuple, return_schema=items
            ),
        )


def _json_size(messages: Iterable[Message]) -> int:
    return sum(len(m.content) + 32 for m in messages)


def _as_tuple(value: Iterable[Message]) -> tuple[Message, ...]:
    return value.as_tuple() if isinstance(value, Messages) else tuple(value)


class Conversation(ReadModel):
    """A chat conversation with its messages, oldest first."""

    id: uuid.UUID
    user_id: str
    title: str
    messages: Messages
    """Behaves as a tuple of `Message`; decoded from the stored JSON when first used."""
    created_at: datetime
    updated_at: datetime


class ConversationCreate(InputModel):
    """A new conversation, optionally with its first messages."""

    title: Text500
    messages: list[Message] = Field(default_factory=list)
