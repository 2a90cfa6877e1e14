"""Reads outside a transaction are served by a replica that has replayed what the Database
needs; writes and transactions go to the primary.

The proof that a replica served a read: replay is paused, the row is changed on the primary
behind the Database's back, and the Database still reads the old value.
"""

from __future__ import annotations

import psycopg
import pytest

from cache.helpers import job_info_input, make_user
from darasa_db import Database, DatabaseSettings
from darasa_db.schemas import ConversationCreate, Message, QuestionCreate, UserUpdate
from replica_fixtures import OpenDatabase, Replicated
from replicas.helpers import (
    EMBEDDING,
    document_input,
    name_of,
    on_primary,
    renamed_behind_the_replica,
)


async def test_a_database_that_wrote_nothing_reads_the_replica(
    replicated: Replicated, open_db: OpenDatabase
):
    ada = await renamed_behind_the_replica(replicated, open_db(replicas=False))

    reader = open_db()
    assert await name_of(reader, ada.id) == "Ada"  # the paused replica's copy served it
    by_email = await reader.users.get_by_email("ada@example.com")
    assert by_email is not None
    assert by_email.name == "Ada"

    await replicated.resume_replay()
    await replicated.wait_caught_up()
    assert await name_of(reader, ada.id) == "Changed"


async def test_lists_and_searches_read_the_replica(replicated: Replicated, open_db: OpenDatabase):
    writer = open_db(replicas=False)
    ada = await make_user(writer, "ada")
    job = await writer.job_infos.create(ada.id, job_info_input("Acme"))
    question = await writer.questions.create(
        job.id, QuestionCreate(text="Why replicas?", difficulty="easy"), user_id=ada.id
    )
    document = await writer.documents.create(ada.id, document_input("Notes"))
    chat = await writer.conversations.create(
        ada.id, ConversationCreate(title="Chat", messages=[Message(role="user", content="hi")])
    )
    await replicated.wait_caught_up()
    reader = open_db()
    assert await reader.users.get(ada.id) is not None  # the reader's pools are open
    await replicated.pause_replay()
    for statement, row_id in (
        ("DELETE FROM darasa.job_info WHERE id = %s", job.id),
        ("DELETE FROM darasa.documents WHERE id = %s", document.id),
        ("DELETE FROM darasa.conversations WHERE id = %s", chat.id),
    ):
        on_primary(replicated.primary_url, statement, row_id)

    assert [j.id for j in await reader.job_infos.list_for_user(ada.id)] == [job.id]
    assert await reader.job_infos.get(job.id, user_id=ada.id) is not None
    questions = await reader.questions.list_for_job_info(job.id, user_id=ada.id)
    assert [q.id for q in questions] == [question.id]
    assert [d.id for d in await reader.documents.list_for_user(ada.id)] == [document.id]
    matches = await reader.documents.similarity_search(EMBEDDING, user_id=ada.id)
    assert [m.document.id for m in matches] == [document.id]
    hybrid = await reader.documents.hybrid_search("replicas", EMBEDDING, user_id=ada.id)
    assert [m.document.id for m in hybrid] == [document.id]
    assert [c.id for c in await reader.conversations.list_for_user(ada.id)] == [chat.id]
    seen_chat = await reader.conversations.get(chat.id, user_id=ada.id)
    assert seen_chat is not None
    assert [m.content for m in seen_chat.messages] == ["hi"]


async def test_reads_inside_a_transaction_go_to_the_primary(
    replicated: Replicated, open_db: OpenDatabase
):
    reader = open_db()
    ada = await renamed_behind_the_replica(replicated, open_db(replicas=False))
    assert await name_of(reader, ada.id) == "Ada"

    async with reader.transaction() as tx:
        seen = await tx.users.get(ada.id)
        assert seen is not None
        assert seen.name == "Changed"
        assert await tx.users.get_by_email("ada@example.com") == seen


async def test_writes_go_to_the_primary(replicated: Replicated, open_db: OpenDatabase):
    db = open_db()
    ada = await make_user(db, "ada")  # a replica would refuse it (read-only transaction)
    async with db.transaction() as tx:
        await tx.job_infos.create(ada.id, job_info_input("Acme"))
    with psycopg.connect(replicated.primary_url) as conn:
        row = conn.execute(b"SELECT count(*) FROM darasa.job_info").fetchone()
    assert row == (1,)


async def test_a_replica_url_that_does_not_answer_leaves_the_others_serving(
    replicated: Replicated, open_db: OpenDatabase
):
    ada = await renamed_behind_the_replica(replicated, open_db(replicas=False))
    nobody = replicated.pair.url_for("postgresql://postgres:@127.0.0.1:1/x", replicated.name)

    reader = open_db(replica_urls=(nobody, replicated.replica_url), connect_timeout=2)
    names = [await name_of(reader, ada.id) for _ in range(6)]
    assert names == ["Ada"] * 6  # the live replica, never an error


async def test_replica_urls_come_from_the_environment(
    replicated: Replicated, open_db: OpenDatabase, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("DATABASE_URL", replicated.primary_url)
    other = "postgresql://reader@replica-2.internal:5432/app"
    monkeypatch.setenv("DATABASE_REPLICA_URLS", f"{replicated.replica_url},{other}")
    urls = DatabaseSettings.from_env().replica_urls
    assert len(urls) == 2
    assert f"127.0.0.1:{replicated.pair.replica_port}" in urls[0]
    assert "replica-2.internal:5432" in urls[1]

    ada = await renamed_behind_the_replica(replicated, open_db(replicas=False))
    monkeypatch.setenv("DATABASE_REPLICA_URLS", replicated.replica_url)
    db = Database(DatabaseSettings.from_env(), cache=None)
    try:
        assert await name_of(db, ada.id) == "Ada"  # the replica from the environment served it
    finally:
        await db.close()


async def test_from_url_takes_replica_urls(replicated: Replicated, open_db: OpenDatabase):
    ada = await renamed_behind_the_replica(replicated, open_db(replicas=False))
    db = Database.from_url(replicated.primary_url, replica_urls=(replicated.replica_url,))
    try:
        assert await name_of(db, ada.id) == "Ada"  # its cache is empty: the replica served it
    finally:
        await db.close()


async def test_production_settings_read_the_replica(replicated: Replicated, open_db: OpenDatabase):
    """Not test mode: server-side prepared statements, on the replica's connections too."""
    ada = await renamed_behind_the_replica(replicated, open_db(replicas=False))
    db = open_db(test_mode=False)
    for _ in range(8):  # past psycopg's prepare threshold
        assert await name_of(db, ada.id) == "Ada"
        assert await db.job_infos.list_for_user(ada.id) == []
    await db.users.update(ada.id, UserUpdate(name="Grace"))
    assert await name_of(db, ada.id) == "Grace"


async def test_row_level_security_holds_on_the_replica(
    replicated: Replicated, open_db: OpenDatabase
):
    """As a role that is neither superuser nor owner, with darasa.user_id set per read."""
    role = f"app_{replicated.name}"
    on_primary(replicated.primary_url, f'CREATE ROLE "{role}" LOGIN')
    on_primary(replicated.primary_url, f'GRANT USAGE ON SCHEMA darasa TO "{role}"')
    on_primary(
        replicated.primary_url,
        f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA darasa TO "{role}"',
    )
    admin = open_db(replicas=False)
    bob = await make_user(admin, "bob")
    bobs_job = await admin.job_infos.create(bob.id, job_info_input("Bob's"))
    ada = await renamed_behind_the_replica(replicated, admin)

    def as_role(url: str) -> str:
        return url.replace("postgres:@", f"{role}:@", 1)

    app = open_db(
        url=as_role(replicated.primary_url),
        replica_urls=(as_role(replicated.replica_url),),
        row_level_security=True,
    )
    assert await name_of(app, ada.id) == "Ada"  # the replica served it, under the policies
    assert await app.job_infos.get(bobs_job.id, user_id=ada.id) is None
    assert [j.id for j in await app.job_infos.list_for_user(bob.id)] == [bobs_job.id]
    job = await app.job_infos.create(ada.id, job_info_input("Acme"))
    assert [j.id for j in await app.job_infos.list_for_user(ada.id)] == [job.id]
