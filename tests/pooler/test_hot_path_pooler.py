"""Job infos and documents, read in binary format, behind a transaction-mode PgBouncer: what
the writes returned, whichever server connection the pooler hands out."""

from __future__ import annotations

import numpy as np

from darasa_db import Database, DatabaseSettings
from darasa_db.schemas import (
    ConversationCreate,
    DocumentCreate,
    JobInfoCreate,
    Message,
    UserUpsert,
)


async def test_binary_reads_behind_a_transaction_mode_pooler(pooled_url: str) -> None:
    db = Database(DatabaseSettings(url=pooled_url, test_mode=False, pool_size=3), cache=None)
    try:
        user = await db.users.upsert(UserUpsert(id="p", email="p@example.com", name="P"))
        jobs = [
            await db.job_infos.create(
                user.id, JobInfoCreate(name=level, experience_level=level, description="d")
            )
            for level in ("junior", "mid-level", "senior")
        ]
        vector = np.random.default_rng(5).standard_normal(1536)
        document = await db.documents.create(
            user.id,
            DocumentCreate(title="t", content="c", metadata={"k": [1]}, embedding=vector.tolist()),
        )
        assert db.behind_pooler
        for _ in range(5):  # several rounds: the pooler hands out its server connections in turn
            for job in jobs:
                fetched = await db.job_infos.get(job.id, user_id=user.id)
                assert fetched == job
                assert fetched is not None
                assert type(fetched.experience_level) is str
            assert await db.job_infos.list_for_user(user.id) == jobs[::-1]
            assert await db.documents.get(document.id, user_id=user.id) == document
            (listed,) = await db.documents.list_for_user(user.id)
            assert listed.embedding == document.embedding
    finally:
        await db.close()


async def test_conversation_appends_behind_a_transaction_mode_pooler(pooled_url: str) -> None:
    """Messages go as JSON text cast to jsonb (ASCII) or as jsonb bytes (other text), with no
    prepared statements: each append returns, and each read gives back, exactly what is stored,
    whichever server connection the pooler hands out."""
    db = Database(DatabaseSettings(url=pooled_url, test_mode=False, pool_size=3), cache=None)
    try:
        user = await db.users.upsert(UserUpsert(id="pc", email="pc@example.com", name="P"))
        conversation = await db.conversations.create(
            user.id, ConversationCreate(title="t", messages=[Message(role="user", content="hi")])
        )
        expected = list(conversation.messages)
        for i in range(12):
            content = f"ascii {i}" if i % 2 else f"ünïcödé 日本 {i} \U0001f600"
            new = Message(role="assistant", content=content)
            expected.append(new)
            appended = await db.conversations.append_messages(
                conversation.id, [new], user_id=user.id
            )
            assert list(appended.messages) == expected
        db.conversations._known.forget(conversation.id)  # read back from the server
        fetched = await db.conversations.get(conversation.id, user_id=user.id)
        assert fetched is not None
        assert list(fetched.messages) == expected
    finally:
        await db.close()
