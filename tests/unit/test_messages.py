"""`Conversation.messages` behaves as a tuple of `Message`, whether decoded yet or not."""

from __future__ import annotations

import copy
import datetime
import json
import pickle
import uuid

from darasa_db.schemas import Conversation, Message
from darasa_db.schemas.conversation import Messages

MESSAGES = (Message(role="user", content="hi"), Message(role="assistant", content="hello"))


def _decode(text: str) -> tuple[Message, ...]:
    return tuple(Message(**item) for item in json.loads(text))


def _lazy() -> Messages:
    return Messages.decoded_later(json.dumps([m.model_dump() for m in MESSAGES]), _decode)


def _conversation(messages: object) -> Conversation:
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    return Conversation.model_validate(
        {
            "id": uuid.UUID(int=1),
            "user_id": "u",
            "title": "t",
            "messages": messages,
            "created_at": now,
            "updated_at": now,
        }
    )


def test_lazy_messages_equal_and_hash_like_the_tuple():
    lazy = _lazy()
    assert lazy == MESSAGES
    assert MESSAGES == lazy  # noqa: SIM300 - the tuple on the left, on purpose
    assert hash(_lazy()) == hash(MESSAGES)
    assert lazy != MESSAGES[:1]
    assert lazy != list(MESSAGES)


def test_lazy_messages_index_slice_and_concatenate_as_a_tuple():
    lazy = _lazy()
    assert lazy[0] == MESSAGES[0]
    assert lazy[-1] == MESSAGES[-1]
    assert lazy[:1] == MESSAGES[:1]
    assert isinstance(lazy[:1], tuple)
    assert lazy + (MESSAGES[0],) == (*MESSAGES, MESSAGES[0])  # noqa: RUF005
    assert (MESSAGES[0],) + lazy == (MESSAGES[0], *MESSAGES)  # noqa: RUF005
    assert len(lazy) == 2
    assert list(lazy) == list(MESSAGES)
    assert MESSAGES[1] in lazy
    assert lazy.index(MESSAGES[1]) == 1
    assert repr(lazy) == repr(MESSAGES)


def test_conversations_with_lazy_or_decoded_messages_are_equal_and_dump_alike():
    decoded, lazy = _conversation(MESSAGES), _conversation(_lazy())
    assert isinstance(lazy.messages, Messages)
    assert decoded == lazy
    assert hash(decoded) == hash(lazy)
    assert decoded.model_dump() == lazy.model_dump()
    assert decoded.model_dump_json() == lazy.model_dump_json()
    assert repr(decoded) == repr(lazy)
    assert Conversation.model_validate_json(lazy.model_dump_json()) == decoded
    assert pickle.loads(pickle.dumps(lazy)) == decoded
    assert copy.deepcopy(lazy) == decoded
    assert decoded.model_copy(update={"messages": MESSAGES[:1]}) != lazy


def test_an_empty_conversation_has_no_messages():
    assert _conversation(()).messages == ()
    assert not _conversation([]).messages
