"""Inputs as hosts pass them: numpy arrays, JSON values that fit, errors titled by the field."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from pydantic import ValidationError

from darasa_db.schemas import ConversationCreate, DocumentCreate, Message
from darasa_db.schemas._common import (
    MAX_JSON_INT_DIGITS,
    validate_embedding,
    validate_json_object,
)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_numpy_array_is_an_embedding(dtype):
    array = np.linspace(0.1, 1.0, 1536, dtype=dtype)

    document = DocumentCreate(title="t", content="c", embedding=array)

    assert isinstance(document.embedding, tuple)
    assert document.embedding == tuple(float(x) for x in array)


def test_an_embedding_of_the_wrong_length_names_the_field_not_the_validators():
    with pytest.raises(ValidationError) as caught:
        DocumentCreate(title="t", content="c", embedding=[0.1] * 3)

    text = str(caught.value)
    assert text.startswith("1 validation error for DocumentCreate\nembedding\n")
    assert "at least 1536 items" in text
    assert "function-after" not in text
    assert "functools.partial" not in text


def test_a_query_embedding_validated_alone_is_titled_embedding():
    with pytest.raises(ValidationError) as caught:
        validate_embedding([0.1] * 3)

    assert caught.value.title == "embedding"
    assert str(caught.value).startswith("1 validation error for embedding\n")
    assert "function-after" not in str(caught.value)
    assert validate_embedding(np.ones(1536)) == (1.0,) * 1536


def test_metadata_validated_alone_is_titled_metadata():
    with pytest.raises(ValidationError) as caught:
        validate_json_object({"n": float("nan")})

    assert caught.value.title == "metadata"
    assert validate_json_object({"a": [1, 2.5, None, True]}) == {"a": [1, 2.5, None, True]}


@pytest.mark.parametrize(
    "metadata",
    [
        {"n": 10**5000},
        {"n": -(10**MAX_JSON_INT_DIGITS)},
        {"deep": [{"n": 10**MAX_JSON_INT_DIGITS}]},
    ],
)
def test_an_integer_too_long_to_read_back_is_a_validation_error_naming_metadata(metadata):
    with pytest.raises(ValidationError) as caught:
        DocumentCreate(title="t", content="c", metadata=metadata)

    (error,) = caught.value.errors()
    assert error["loc"] == ("metadata",)
    assert f"more than {MAX_JSON_INT_DIGITS} digits" in error["msg"]


def test_the_longest_integer_that_can_be_read_back_is_accepted():
    longest = 10**MAX_JSON_INT_DIGITS - 1

    document = DocumentCreate(title="t", content="c", metadata={"n": longest, "m": -longest})

    assert document.metadata == {"n": longest, "m": -longest}


def test_a_lower_limit_set_by_the_host_process_is_respected():
    previous = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(1000)
    try:
        with pytest.raises(ValidationError, match="more than 1000 digits"):
            DocumentCreate(title="t", content="c", metadata={"n": 10**1000})
        assert DocumentCreate(title="t", content="c", metadata={"n": 10**999}).metadata
    finally:
        sys.set_int_max_str_digits(previous)


async def test_the_longest_integer_round_trips_through_postgres(darasa_db):
    from darasa_db.schemas import UserUpsert

    longest = 10**MAX_JSON_INT_DIGITS - 1
    await darasa_db.users.upsert(UserUpsert(id="user_1", email="a@b.co", name="Ada"))

    stored = await darasa_db.documents.create(
        "user_1", DocumentCreate(title="t", content="c", metadata={"n": longest})
    )
    again = await darasa_db.documents.get(stored.id, user_id="user_1")

    assert again is not None
    assert again.metadata == {"n": longest}


def test_message_content_errors_name_the_message_field():
    with pytest.raises(ValidationError) as caught:
        ConversationCreate(title="t", messages=[Message(role="user", content="ok")] * 0 + [{}])

    locations = {error["loc"] for error in caught.value.errors()}
    assert ("messages", 0, "role") in locations
    assert ("messages", 0, "content") in locations
