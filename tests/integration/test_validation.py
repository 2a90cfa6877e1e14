"""Input validation: each constrained field refuses bad values; a refused call writes nothing."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import pytest
from pydantic import BaseModel, ValidationError

from darasa_db import Database
from darasa_db.schemas import (
    ConversationCreate,
    DocumentCreate,
    InterviewCreate,
    InterviewUpdate,
    JobInfoCreate,
    JobInfoUpdate,
    Message,
    QuestionCreate,
    UserCreate,
    UserUpdate,
    UserUpsert,
)
from integration.helpers import (
    Holdings,
    as_any,
    make_holdings,
    message,
    row_counts,
    unit_vector,
)

NUL = "a\x00b"
SURROGATE = "a\ud800b"
VALID: dict[type[BaseModel], dict[str, Any]] = {
    UserCreate: {"email": "ada@example.com", "name": "Ada"},
    UserUpsert: {"id": "user_1", "email": "ada@example.com", "name": "Ada"},
    UserUpdate: {"name": "Ada"},
    JobInfoCreate: {"name": "Acme", "experience_level": "senior", "description": "d"},
    JobInfoUpdate: {"name": "Acme"},
    QuestionCreate: {"text": "Why?", "difficulty": "easy"},
    InterviewCreate: {"duration": "15 minutes"},
    InterviewUpdate: {"feedback": "ok"},
    DocumentCreate: {"title": "t", "content": "c"},
    ConversationCreate: {"title": "t"},
    Message: {"role": "user", "content": "hi"},
}

# (model, field, bad value): at least one per constraint of every field of every input model.
INVALID: list[tuple[type[BaseModel], str, Any]] = [
    (UserCreate, "email", "not-an-email"),
    (UserCreate, "email", "a@" + "b" * 320 + ".com"),
    (UserCreate, "email", "nul\x00@example.com"),
    (UserCreate, "name", ""),
    (UserCreate, "name", "x" * 201),
    (UserCreate, "name", NUL),
    (UserCreate, "name", SURROGATE),
    (UserCreate, "id", ""),
    (UserCreate, "id", "u" * 256),
    (UserCreate, "image_url", "h" * 1001),
    (UserCreate, "password_hash", ""),
    (UserCreate, "password_hash", "p" * 1001),
    (UserCreate, "role", "admin"),  # unknown fields are refused
    (UserUpsert, "id", ""),
    (UserUpsert, "id", None),
    (UserUpsert, "email", "ada@"),
    (UserUpsert, "name", ""),
    (UserUpsert, "image_url", NUL),
    (UserUpdate, "email", "no-at-sign"),
    (UserUpdate, "email", None),
    (UserUpdate, "name", None),
    (UserUpdate, "name", "x" * 201),
    (UserUpdate, "image_url", "h" * 1001),
    (UserUpdate, "password_hash", NUL),
    (JobInfoCreate, "name", ""),
    (JobInfoCreate, "name", "n" * 201),
    (JobInfoCreate, "title", "t" * 201),
    (JobInfoCreate, "experience_level", "expert"),
    (JobInfoCreate, "experience_level", "Senior"),
    (JobInfoCreate, "description", ""),
    (JobInfoCreate, "description", NUL),
    (JobInfoCreate, "description", "d" * 100_001),
    (JobInfoUpdate, "name", None),
    (JobInfoUpdate, "title", ""),
    (JobInfoUpdate, "experience_level", None),
    (JobInfoUpdate, "experience_level", "intern"),
    (JobInfoUpdate, "description", None),
    (QuestionCreate, "text", ""),
    (QuestionCreate, "text", "q" * 10_001),
    (QuestionCreate, "difficulty", "impossible"),
    (QuestionCreate, "difficulty", None),
    (InterviewCreate, "duration", ""),
    (InterviewCreate, "duration", "d" * 51),
    (InterviewCreate, "hume_chat_id", "h" * 256),
    (InterviewCreate, "feedback", NUL),
    (InterviewUpdate, "duration", None),
    (InterviewUpdate, "duration", "d" * 51),
    (InterviewUpdate, "hume_chat_id", ""),
    (InterviewUpdate, "feedback", "f" * 100_001),
    (DocumentCreate, "title", ""),
    (DocumentCreate, "title", "t" * 501),
    (DocumentCreate, "content", ""),
    (DocumentCreate, "content", NUL),
    (DocumentCreate, "metadata", ["not", "an", "object"]),
    (DocumentCreate, "metadata", {"score": math.nan}),
    (DocumentCreate, "metadata", {1: "non-string key"}),
    (DocumentCreate, "metadata", {"text": NUL}),
    (DocumentCreate, "metadata", {"when": object()}),
    (DocumentCreate, "embedding", [0.1, 0.2, 0.3]),
    (DocumentCreate, "embedding", [0.0] * 1537),
    (DocumentCreate, "embedding", [math.nan] + [0.0] * 1535),
    (DocumentCreate, "embedding", [math.inf] + [0.0] * 1535),
    (DocumentCreate, "embedding", ["x"] * 1536),
    (DocumentCreate, "embedding", [1e39] + [0.0] * 1535),  # infinite as pgvector's float32
    (DocumentCreate, "embedding", [0.0] * 1536),  # no direction: cosine similarity undefined
    (ConversationCreate, "title", ""),
    (ConversationCreate, "title", "t" * 501),
    (ConversationCreate, "messages", [{"role": "robot", "content": "hi"}]),
    (ConversationCreate, "messages", [{"role": "user", "content": ""}]),
    (ConversationCreate, "messages", "hello"),
    (Message, "role", "robot"),
    (Message, "role", None),
    (Message, "content", ""),
    (Message, "content", NUL),
    (Message, "content", "c" * 100_001),
]


def _deep(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"k": value}
    return value


INVALID.append((DocumentCreate, "metadata", _deep(40)))


@pytest.mark.parametrize(
    ("model", "field", "bad"),
    INVALID,
    ids=[f"{m.__name__}.{f}-{i}" for i, (m, f, _) in enumerate(INVALID)],
)
def test_invalid_value_raises_validation_error_naming_the_field(
    model: type[BaseModel], field: str, bad: Any
):
    with pytest.raises(ValidationError) as caught:
        model(**{**VALID[model], field: bad})

    assert field in {error["loc"][0] for error in caught.value.errors()}


@pytest.mark.parametrize("model", list(VALID))
def test_the_valid_baseline_of_each_model_is_accepted(model: type[BaseModel]):
    assert model(**VALID[model]) is not None


@pytest.mark.parametrize("model", [UserUpdate, JobInfoUpdate, InterviewUpdate])
def test_an_empty_update_is_refused(model: type[BaseModel]):
    with pytest.raises(ValidationError, match="at least one field"):
        model()


def test_a_valid_embedding_may_be_a_list_tuple_or_numpy_array():
    vector = unit_vector(1)
    for given in (vector, tuple(vector), np.asarray(vector, dtype=np.float32)):
        assert len(DocumentCreate(title="t", content="c", embedding=given).embedding or ()) == 1536


# Calls the repositories validate themselves, past the DTO constructors.
Refused = Callable[[Database, Holdings], Awaitable[Any]]
REFUSED_CALLS: list[tuple[str, Refused, type[Exception]]] = [
    (
        "append_messages with a bad message dict",
        lambda db, h: db.conversations.append_messages(
            h.conversation.id,
            [message("fine"), as_any({"role": "robot", "content": "x"})],
            user_id=h.user.id,
        ),
        TypeError,  # a dict is not a Message: refused, not validated into one
    ),
    (
        "append_messages with an empty content",
        lambda db, h: db.conversations.append_messages(
            h.conversation.id,
            [as_any({"role": "user", "content": ""})],
            user_id=h.user.id,
        ),
        TypeError,
    ),
    (
        "similarity_search with a 3-d embedding",
        lambda db, h: db.documents.similarity_search([0.1, 0.2, 0.3], user_id=h.user.id),
        ValidationError,
    ),
    (
        "similarity_search with the zero vector",
        lambda db, h: db.documents.similarity_search([0.0] * 1536, user_id=h.user.id),
        ValidationError,
    ),
    (
        "similarity_search with a NaN",
        lambda db, h: db.documents.similarity_search([math.nan] + [0.0] * 1535, user_id=h.user.id),
        ValidationError,
    ),
    (
        "similarity_search with a non-object metadata filter",
        lambda db, h: db.documents.similarity_search(
            unit_vector(1),
            user_id=h.user.id,
            metadata=as_any(["a"]),
        ),
        ValidationError,
    ),
    (
        "similarity_search with threshold 2",
        lambda db, h: db.documents.similarity_search(
            unit_vector(1), user_id=h.user.id, threshold=2
        ),
        ValueError,
    ),
    (
        "similarity_search with limit 0",
        lambda db, h: db.documents.similarity_search(unit_vector(1), user_id=h.user.id, limit=0),
        ValueError,
    ),
    (
        "rename to an empty title",
        lambda db, h: db.conversations.rename(h.conversation.id, "", user_id=h.user.id),
        ValidationError,
    ),
    (
        "rename to a title with NUL",
        lambda db, h: db.conversations.rename(h.conversation.id, NUL, user_id=h.user.id),
        ValidationError,
    ),
    (
        "create_many with a non-DocumentCreate item",
        lambda db, h: db.documents.create_many(
            h.user.id,
            [DocumentCreate(title="ok", content="ok"), as_any({"title": "t", "content": "c"})],
        ),
        TypeError,
    ),
    (
        "job_infos.list_for_user with limit 0",
        lambda db, h: db.job_infos.list_for_user(h.user.id, limit=0),
        ValueError,
    ),
    (
        "documents.list_for_user with limit 0",
        lambda db, h: db.documents.list_for_user(h.user.id, limit=0),
        ValueError,
    ),
    (
        "conversations.list_for_user with limit 0",
        lambda db, h: db.conversations.list_for_user(h.user.id, limit=0),
        ValueError,
    ),
    (
        "users.create with a bad email",
        lambda db, h: db.users.create(UserCreate(email="nope", name="N")),
        ValidationError,
    ),
    (
        "documents.create with a 3-d embedding",
        lambda db, h: db.documents.create(
            h.user.id, DocumentCreate(title="t", content="c", embedding=[1.0, 2.0, 3.0])
        ),
        ValidationError,
    ),
]


@pytest.mark.parametrize(
    ("call", "error"), [c[1:] for c in REFUSED_CALLS], ids=[c[0] for c in REFUSED_CALLS]
)
async def test_a_refused_call_leaves_every_table_unchanged(
    darasa_db: Database, call: Refused, error: type[Exception]
):
    holdings = await make_holdings(darasa_db, "alice", seed=1)
    before = await row_counts(darasa_db)
    conversation = holdings.conversation

    with pytest.raises(error):
        await call(darasa_db, holdings)

    assert await row_counts(darasa_db) == before
    assert await darasa_db.conversations.get(conversation.id, user_id=holdings.user.id) == (
        conversation
    )
