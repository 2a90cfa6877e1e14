"""ConversationRepository against the real server, including 100 concurrent appends."""

from __future__ import annotations

import asyncio
import datetime
import uuid

import pytest
from pydantic import ValidationError

from darasa_db import DarasaDBError, Database, NotFoundError
from darasa_db.schemas import Conversation, ConversationCreate, Message, User
from integration.helpers import message, row_counts, table_rows

MALFORMED_IDS = ["not-a-uuid", ""]


@pytest.fixture
async def conversation(darasa_db: Database, user: User) -> Conversation:
    """Alice's conversation with one message."""
    return await darasa_db.conversations.create(
        user.id, ConversationCreate(title="Prep", messages=[message("hi")])
    )


async def test_create_conversation_stores_title_and_messages(darasa_db: Database, user: User):
    created = await darasa_db.conversations.create(
        user.id,
        ConversationCreate(
            title="Prep", messages=[message("be brief", "system"), message("hello")]
        ),
    )

    assert (created.user_id, created.title) == (user.id, "Prep")
    assert [(m.role, m.content) for m in created.messages] == [
        ("system", "be brief"),
        ("user", "hello"),
    ]
    assert await darasa_db.conversations.get(created.id, user_id=user.id) == created


async def test_create_conversation_without_messages_starts_empty(darasa_db: Database, user: User):
    created = await darasa_db.conversations.create(user.id, ConversationCreate(title="Empty"))

    assert created.messages == ()


async def test_create_conversation_for_an_unknown_user_raises_not_found(darasa_db: Database):
    with pytest.raises(NotFoundError) as caught:
        await darasa_db.conversations.create("user_nobody", ConversationCreate(title="x"))

    assert caught.value.entity == "user"
    assert (await row_counts(darasa_db))["conversations"] == 0


async def test_get_returns_none_for_a_missing_conversation(
    darasa_db: Database, user: User, conversation: Conversation
):
    assert await darasa_db.conversations.get(uuid.uuid4(), user_id=user.id) is None


async def test_list_for_user_returns_own_conversations_newest_first(
    darasa_db: Database, user: User, other_user: User
):
    made = [
        await darasa_db.conversations.create(user.id, ConversationCreate(title=f"c{i}"))
        for i in range(3)
    ]
    await darasa_db.conversations.create(other_user.id, ConversationCreate(title="bob's"))

    listed = await darasa_db.conversations.list_for_user(user.id)

    assert [c.id for c in listed] == [c.id for c in reversed(made)]


async def test_append_messages_adds_them_in_order_and_moves_updated_at(
    darasa_db: Database, user: User, conversation: Conversation
):
    appended = await darasa_db.conversations.append_messages(
        conversation.id, [message("Q1", "assistant"), message("A1")], user_id=user.id
    )

    assert [m.content for m in appended.messages] == ["hi", "Q1", "A1"]
    assert appended.updated_at > conversation.updated_at
    assert await darasa_db.conversations.get(conversation.id, user_id=user.id) == appended


async def test_append_of_no_messages_returns_the_conversation_unchanged(
    darasa_db: Database, user: User, conversation: Conversation
):
    same = await darasa_db.conversations.append_messages(conversation.id, [], user_id=user.id)

    assert same == conversation


@pytest.mark.embedded_smoke
async def test_100_concurrent_appends_keep_every_message(
    darasa_db: Database, user: User, conversation: Conversation
):
    contents = [f"m{i}" for i in range(100)]

    await asyncio.gather(
        *(
            darasa_db.conversations.append_messages(conversation.id, [message(c)], user_id=user.id)
            for c in contents
        )
    )

    stored = await darasa_db.conversations.get(conversation.id, user_id=user.id)
    assert stored is not None
    assert len(stored.messages) == 101
    assert stored.messages[0].content == "hi"
    assert sorted(m.content for m in stored.messages[1:]) == sorted(contents)


async def test_rename_changes_only_the_title(
    darasa_db: Database, user: User, conversation: Conversation
):
    renamed = await darasa_db.conversations.rename(conversation.id, "Mock 2", user_id=user.id)

    assert renamed.title == "Mock 2"
    assert renamed.messages == conversation.messages
    assert renamed.updated_at > conversation.updated_at


async def test_rename_of_a_missing_conversation_raises_not_found(
    darasa_db: Database, user: User, conversation: Conversation
):
    with pytest.raises(NotFoundError):
        await darasa_db.conversations.rename(uuid.uuid4(), "x", user_id=user.id)


async def test_delete_removes_the_conversation_then_reports_false(
    darasa_db: Database, user: User, conversation: Conversation
):
    assert await darasa_db.conversations.delete(conversation.id, user_id=user.id) is True
    assert await darasa_db.conversations.get(conversation.id, user_id=user.id) is None
    assert await darasa_db.conversations.delete(conversation.id, user_id=user.id) is False


async def test_append_to_a_missing_conversation_raises_not_found(
    darasa_db: Database, user: User, conversation: Conversation
):
    for messages in ([], [message("lost")]):
        with pytest.raises(NotFoundError):
            await darasa_db.conversations.append_messages(uuid.uuid4(), messages, user_id=user.id)


async def test_malformed_ids_behave_as_missing(
    darasa_db: Database, user: User, conversation: Conversation
):
    before = await table_rows(darasa_db)

    for bad_id in MALFORMED_IDS:
        assert await darasa_db.conversations.get(bad_id, user_id=user.id) is None
        assert await darasa_db.conversations.list_for_user(user.id, after=bad_id) == []
        with pytest.raises(NotFoundError):
            await darasa_db.conversations.append_messages(bad_id, [message("x")], user_id=user.id)
        with pytest.raises(NotFoundError):
            await darasa_db.conversations.rename(bad_id, "x", user_id=user.id)
        assert await darasa_db.conversations.delete(bad_id, user_id=user.id) is False

    assert await table_rows(darasa_db) == before


class _TaggedMessage(Message):
    """A host's own message type, with a field of its own that no conversation stores."""

    tag: str = "mine"


class _StampedMessage(Message):
    """One whose own field is not even JSON (`json.dumps` would fail on it first)."""

    at: datetime.datetime = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


@pytest.mark.parametrize(("kind", "field"), [(_TaggedMessage, "tag"), (_StampedMessage, "at")])
async def test_messages_of_a_subclass_with_fields_of_its_own_are_refused_with_nothing_written(
    darasa_db: Database, user: User, conversation: Conversation, kind: type[Message], field: str
):
    """Stored, the extra field would make every later read of the conversation fail."""
    extra = kind(role="user", content="x")
    refused = rf"\n{field}\n\s+Extra inputs are not permitted"
    before = await row_counts(darasa_db, user.id)
    with pytest.raises(ValidationError, match=refused):
        await darasa_db.conversations.create(
            user.id, ConversationCreate(title="t", messages=[message("a"), extra])
        )
    with pytest.raises(ValidationError, match=refused):
        await darasa_db.conversations.append_messages(conversation.id, [extra], user_id=user.id)
    assert await row_counts(darasa_db, user.id) == before
    assert await darasa_db.conversations.get(conversation.id, user_id=user.id) == conversation


async def test_a_subclass_without_fields_of_its_own_is_stored_as_a_message(
    darasa_db: Database, user: User, conversation: Conversation
):
    class Plain(Message):
        pass

    appended = await darasa_db.conversations.append_messages(
        conversation.id, [Plain(role="assistant", content="ok")], user_id=user.id
    )
    assert appended.messages[-1] == Message(role="assistant", content="ok")
    assert type(appended.messages[-1]) is Message
    assert await darasa_db.conversations.get(conversation.id, user_id=user.id) == appended


async def test_messages_built_without_validation_are_refused_with_nothing_written(
    darasa_db: Database, user: User, conversation: Conversation
):
    """`model_construct` skips validation: a message without a role, or with a lone surrogate,
    is still refused before it is stored (or, for the surrogate, by the server)."""
    before = await row_counts(darasa_db, user.id)
    no_role = Message.model_construct(content="hi")
    with pytest.raises(ValidationError, match="role"):
        await darasa_db.conversations.append_messages(conversation.id, [no_role], user_id=user.id)
    with pytest.raises(ValidationError, match="role"):
        await darasa_db.conversations.create(
            user.id, ConversationCreate.model_construct(title="t", messages=[no_role])
        )
    surrogate = Message.model_construct(role="user", content="\ud800")
    with pytest.raises(DarasaDBError):
        await darasa_db.conversations.append_messages(conversation.id, [surrogate], user_id=user.id)
    assert await row_counts(darasa_db, user.id) == before
    assert await darasa_db.conversations.get(conversation.id, user_id=user.id) == conversation


@pytest.mark.parametrize("content", ["plain ASCII", "ünïcödé 日本語 \U0001f600 \u2028"])
async def test_messages_are_stored_as_jsonb_objects_whichever_way_they_are_sent(
    darasa_db: Database, user: User, content: str
):
    """ASCII JSON goes to the server as text cast to jsonb, other JSON as jsonb's own bytes:
    either way the column holds an array of message objects, read back as they were written."""
    created = await darasa_db.conversations.create(
        user.id, ConversationCreate(title="t", messages=[message(content)])
    )
    reply = message(content, role="assistant")
    appended = await darasa_db.conversations.append_messages(created.id, [reply], user_id=user.id)
    async with darasa_db.connection() as conn:
        cur = await conn.execute(
            f"SELECT jsonb_typeof(messages), jsonb_array_length(messages), "
            f"jsonb_typeof(messages->1), messages->1->>'content' "
            f'FROM "{darasa_db.schema}".conversations WHERE id = %s'.encode(),
            (created.id,),
        )
        assert await cur.fetchall() == [("array", 2, "object", content)]
    assert appended.messages == (message(content), reply)
    darasa_db.conversations._known.forget(created.id)  # read back from the server, not memory
    assert await darasa_db.conversations.get(created.id, user_id=user.id) == appended
