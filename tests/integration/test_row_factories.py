"""The row factories against real results: rows of the expected columns (with or without the
`notified` column of a write) become DTOs equal to what the repositories return; a result with
any other columns raises and builds nothing."""

from __future__ import annotations

import pytest

from darasa_db import Database
from darasa_db.errors import StatementMismatchError
from darasa_db.repositories import conversations, job_infos
from darasa_db.schemas import Conversation, ConversationCreate, JobInfo, User
from integration.helpers import job_info_input, message

CONVERSATION_TEXT = (
    "SELECT id, user_id, title, messages::text AS messages, created_at, updated_at, "
    "messages_version{extra} FROM darasa.conversations WHERE id = %s"
)
JOB_INFO = (
    "SELECT id, user_id, name, title, experience_level, description, created_at, updated_at"
    "{extra} FROM darasa.job_info WHERE id = %s"
)


@pytest.fixture
async def stored(darasa_db: Database, user: User) -> Conversation:
    return await darasa_db.conversations.create(
        user.id,
        ConversationCreate(title="Prep", messages=[message("be brief", "system"), message("hi")]),
    )


async def _rows(
    db: Database, sql: str, params: tuple[object, ...], factory: object
) -> list[object]:
    async with db.connection() as conn:
        cur = conn.cursor(row_factory=factory)  # type: ignore[call-overload]
        await cur.execute(sql, params)
        return await cur.fetchall()


@pytest.mark.parametrize("extra", ["", ", 'x' AS notified"])
async def test_conversation_rows_as_text_or_json_equal_what_get_returns(
    darasa_db: Database, user: User, stored: Conversation, extra: str
):
    found = await darasa_db.conversations.get(stored.id, user_id=user.id)
    as_text = CONVERSATION_TEXT.format(extra=extra)
    as_json = as_text.replace("messages::text AS messages", "messages")

    for sql in (as_text, as_json):
        (row,) = await _rows(darasa_db, sql, (stored.id,), conversations.ROW)
        assert row == found == stored
        assert isinstance(row, Conversation)
        assert [(m.role, m.content) for m in row.messages] == [
            ("system", "be brief"),
            ("user", "hi"),
        ]
        assert row.model_dump() == stored.model_dump()


@pytest.mark.parametrize(
    "columns",
    [
        "id, user_id, title AS name, messages::text AS messages, created_at, updated_at",
        "id, user_id, title, messages::text AS messages, created_at",
        "id, user_id, title, messages::text AS messages, created_at, updated_at, 1 AS other",
    ],
)
async def test_a_conversation_result_of_other_columns_raises(
    darasa_db: Database, stored: Conversation, columns: str
):
    sql = f"SELECT {columns} FROM darasa.conversations WHERE id = %s"

    with pytest.raises(StatementMismatchError) as caught:
        await _rows(darasa_db, sql, (stored.id,), conversations.ROW)

    assert caught.value.got == tuple(c.split(" AS ")[-1] for c in columns.split(", "))
    assert caught.value.expected == (*Conversation.model_fields, "messages_version")


async def test_a_job_info_row_with_or_without_notified_equals_get(darasa_db: Database, user: User):
    job = await darasa_db.job_infos.create(user.id, job_info_input())

    for extra in ("", ", 'x' AS notified"):
        (row,) = await _rows(darasa_db, JOB_INFO.format(extra=extra), (job.id,), job_infos.ROW)
        assert isinstance(row, JobInfo)
        assert row == job == await darasa_db.job_infos.get(job.id, user_id=user.id)


async def test_a_job_info_result_with_another_trailing_column_raises(
    darasa_db: Database, user: User
):
    job = await darasa_db.job_infos.create(user.id, job_info_input())

    with pytest.raises(StatementMismatchError) as caught:
        await _rows(darasa_db, JOB_INFO.format(extra=", 'x' AS other"), (job.id,), job_infos.ROW)

    assert caught.value.got == (*JobInfo.model_fields, "other")
    assert "other" in str(caught.value)
