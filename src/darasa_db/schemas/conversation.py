"""Conversation and message DTOs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field

from darasa_db.schemas._common import InputModel, ReadModel, Text100K, Text500

__all__ = ["Conversation", "ConversationCreate", "Message", "MessageRole"]

MessageRole = Literal["system", "user", "assistant", "tool"]
"""Who wrote a message; any other role is refused."""


class Message(InputModel):
    """One chat message: a `role` and its `content`."""

    role: MessageRole
    content: Text100K


class Conversation(ReadModel):
    """A chat conversation with its messages, oldest first."""

    id: uuid.UUID
    user_id: str
    title: str
    messages: tuple[Message, ...]
    created_at: datetime
    updated_at: datetime


class ConversationCreate(InputModel):
    """A new conversation, optionally with its first messages."""

    title: Text500
    messages: list[Message] = Field(default_factory=list)
