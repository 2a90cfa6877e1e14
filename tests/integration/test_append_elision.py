"""An append (or rename) whose `Database` holds the messages it started from does not fetch
them again; whatever happened to the conversation meanwhile, its result is exactly `get`'s.

"Exactly `get`'s" is checked against a second `Database` without a cache (`fresh`), which
reads the server every time. An append that took its messages from memory returns them
undecoded, `.extended` by the appended ones: `messages._tail` is the appended messages and
`messages._source` is still set (internals, read here only to prove that path ran).
"""

from __future__ import annotations

import asyncio
import contextvars
import random
import uuid
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb
from pydantic import ValidationError

from darasa_db import Database, DatabaseSettings, Transaction, rls
from darasa_db.repositories import conversations
from darasa_db.schemas import Conversation, ConversationCreate, Message, User, UserUpsert
from integration.helpers import message
from rls.test_row_level_security import app_url  # noqa: F401 - the non-owner role, reused
from security.test_hostile_input import load_corpus

HELLO = [message("be brief", "system"), message("hello")]


class Boom(Exception):
    pass


@pytest.fixture
async def fresh(darasa_database_url: str) -> AsyncIterator[Database]:
    """Another `Database` on the same database (another process, in effect), without a cache."""
    db = Database(DatabaseSettings(url=darasa_database_url, test_mode=True), cache=None)
    yield db
    await db.close()


@pytest.fixture
async def chat(darasa_db: Database, user: User) -> Conversation:
    """Alice's conversation with two messages, held by `darasa_db` (it created it)."""
    return await darasa_db.conversations.create(
        user.id, ConversationCreate(title="Prep", messages=HELLO)
    )


async def sql(url: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    """The rows of `query`, run as the database owner (a host's own SQL, an operator's fix)."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cursor = await conn.execute(query, params or None)
        return await cursor.fetchall() if cursor.description else []


REDACT = "messages = jsonb_set(messages, '{2,content}', '\"[redacted]\"')"


async def edit(url: str, chat: Conversation, change: str, *params: Any) -> None:
    """`UPDATE … SET change` of `chat`'s row, by raw SQL."""
    await sql(url, f"UPDATE darasa.conversations SET {change} WHERE id = %s", *params, chat.id)


async def back_up(url: str, chat: Conversation) -> None:
    """A copy of `chat`'s row as it is now, version columns and all."""
    await sql(
        url,
        "CREATE TABLE darasa_backup AS SELECT * FROM darasa.conversations WHERE id = %s",
        chat.id,
    )


async def restore(url: str, chat: Conversation) -> None:
    """`chat`'s row deleted and put back from `back_up`'s copy (`INSERT … SELECT *`)."""
    await sql(url, "DELETE FROM darasa.conversations WHERE id = %s", chat.id)
    await sql(url, "INSERT INTO darasa.conversations SELECT * FROM darasa_backup")


async def stored(db: Database, conversation: Conversation) -> Conversation:
    """The conversation as `db` reads it now."""
    found = await db.conversations.get(conversation.id, user_id=conversation.user_id)
    assert found is not None
    return found


def outside_the_transaction(work: Coroutine[Any, Any, Conversation]) -> asyncio.Task[Conversation]:
    """`work` as a task of its own, not of the open transaction (another request, in effect)."""
    return asyncio.create_task(work, context=contextvars.Context())


def took_held_messages(conversation: Conversation) -> bool:
    """Whether an append's result came from held messages (internals: see the module doc)."""
    messages = conversation.messages
    return bool(messages._tail) and messages._source is not None


def contents(conversation: Conversation) -> list[str]:
    return [m.content for m in conversation.messages]


async def append(
    db: Database | Transaction, conversation: Conversation, *texts: str
) -> Conversation:
    return await db.conversations.append_messages(
        conversation.id, [message(t) for t in texts], user_id=conversation.user_id
    )


async def test_a_second_append_takes_the_held_messages_and_equals_get(
    darasa_db: Database, fresh: Database, chat: Conversation
):
    first = await append(darasa_db, chat, "Q1")
    second = await darasa_db.conversations.append_messages(
        chat.id, [message("A1", "assistant"), message("Q2")], user_id=chat.user_id
    )

    assert took_held_messages(second)
    assert second.messages._tail[-2:] == (message("A1", "assistant"), message("Q2"))
    expected = await stored(fresh, chat)
    assert second == expected  # compared while still undecoded
    assert second.model_dump() == expected.model_dump()
    assert second.messages._source is None  # internal: now decoded
    assert second == expected
    assert hash(second.messages) == hash(expected.messages)
    assert contents(second) == ["be brief", "hello", "Q1", "A1", "Q2"]
    assert second.messages[-2].role == "assistant"
    assert first.messages == expected.messages[:3]
    assert second.updated_at > first.updated_at > chat.updated_at
    assert await stored(darasa_db, chat) == second


async def test_a_long_conversation_appended_to_many_times_stays_exactly_get(
    darasa_db: Database, fresh: Database, chat: Conversation
):
    long = [message(f"{i} " + "x" * 500, "assistant" if i % 2 else "user") for i in range(1000)]
    current = await darasa_db.conversations.append_messages(chat.id, long, user_id=chat.user_id)
    for i in range(30):
        current = await append(darasa_db, chat, f"turn {i}")
        assert took_held_messages(current)

    assert current == await stored(fresh, chat)
    assert len(current.messages) == 2 + 1000 + 30
    assert contents(current)[-1] == "turn 29"


async def test_hostile_contents_appended_one_by_one_equal_get(
    darasa_db: Database, fresh: Database, chat: Conversation
):
    """The appended messages are taken as sent, the rest as stored: every string of the
    hostile corpus must come back from an elided append exactly as `get` decodes it."""
    texts = [value for value in load_corpus() if isinstance(value, str)]
    texts += ["\U0001f600" * 1000, "e\u0301" * 500, "\\" * 1001, "\u2028\u2029", "\t\r\n"]
    stored_texts = [m.content for m in HELLO]
    for text in texts:
        try:
            data = Message(role="assistant", content=text)
        except ValidationError:
            continue  # refused before any SQL (a NUL, a lone surrogate): nothing to compare
        result = await darasa_db.conversations.append_messages(
            chat.id, [data], user_id=chat.user_id
        )
        assert took_held_messages(result)
        stored_texts.append(data.content)
    assert len(stored_texts) > 50

    expected = await stored(fresh, chat)
    assert contents(result) == contents(expected) == stored_texts
    assert result == expected
    assert result.model_dump_json() == expected.model_dump_json()


async def test_conversations_too_big_to_hold_or_evicted_still_equal_get(
    darasa_database_url: str, fresh: Database, user: User, monkeypatch: pytest.MonkeyPatch
):
    """With room for about one conversation, appends to five in turn always find theirs
    evicted, and a conversation bigger than the room is never held."""
    monkeypatch.setattr(conversations, "KNOWN_CHARACTERS", 3_000)
    async with Database(DatabaseSettings(url=darasa_database_url, test_mode=True)) as db:
        chats = [
            await db.conversations.create(
                user.id, ConversationCreate(title=f"c{i}", messages=[message("x" * 2_000)])
            )
            for i in range(5)
        ]
        big = await db.conversations.create(
            user.id, ConversationCreate(title="big", messages=[message("y" * 5_000)])
        )
        for round in range(3):
            for chat in [*chats, big]:
                result = await append(db, chat, f"r{round}")
                assert not took_held_messages(result)  # evicted, or never held
                assert result == await stored(fresh, chat)
        again = await append(db, chats[-1], "just held")
        assert took_held_messages(again)
        assert again == await stored(fresh, chats[-1])
        assert contents(again) == ["x" * 2_000, "r0", "r1", "r2", "just held"]


async def test_a_redaction_by_raw_sql_between_appends_is_in_the_next_result(
    darasa_db: Database, fresh: Database, chat: Conversation, darasa_database_url: str
):
    await append(darasa_db, chat, "my card is 4111 1111 1111 1111")
    await edit(darasa_database_url, chat, REDACT)

    after = await append(darasa_db, chat, "thanks")

    assert not took_held_messages(after)
    assert contents(after) == ["be brief", "hello", "[redacted]", "thanks"]
    assert after == await stored(fresh, chat)


async def test_a_redaction_that_skips_triggers_is_in_the_next_result(
    darasa_db: Database, fresh: Database, chat: Conversation, darasa_database_url: str
):
    """An operator redacts without moving `updated_at`, skipping triggers the usual way
    (`session_replication_role = replica`, as pg_restore and logical replication's apply do):
    the next append must not give the held, unredacted, message back."""
    await append(darasa_db, chat, "my card is 4111 1111 1111 1111")
    async with await psycopg.AsyncConnection.connect(darasa_database_url, autocommit=True) as conn:
        await conn.execute("SET session_replication_role = replica")
        await conn.execute(f"UPDATE darasa.conversations SET {REDACT} WHERE id = %s", (chat.id,))

    after = await append(darasa_db, chat, "thanks")

    assert contents(after) == ["be brief", "hello", "[redacted]", "thanks"]
    assert after == await stored(fresh, chat)


HOST_CHANGES = {
    "upsert": "INSERT INTO darasa.conversations (id, user_id, title, messages) "
    "VALUES (%(id)s, %(user)s, 'Prep', %(messages)s) "
    "ON CONFLICT (id) DO UPDATE SET messages = EXCLUDED.messages",
    "merge": "MERGE INTO darasa.conversations c USING (SELECT %(id)s::uuid AS id) s ON c.id = s.id "
    "WHEN MATCHED THEN UPDATE SET messages = %(messages)s",
    "update from": "UPDATE darasa.conversations c SET messages = s.m FROM "
    "(SELECT %(id)s::uuid AS id, %(messages)s::jsonb AS m) s WHERE c.id = s.id",
    "cte": "WITH s AS (SELECT %(messages)s::jsonb AS m) "
    "UPDATE darasa.conversations SET messages = (SELECT m FROM s) WHERE id = %(id)s",
    "function": "DO $$ BEGIN UPDATE darasa.conversations SET messages = '[]' "
    "WHERE id = '%(id)s'; END $$",
}


@pytest.mark.parametrize("kind", list(HOST_CHANGES))
async def test_every_kind_of_host_sql_that_changes_messages_is_in_the_next_result(
    darasa_db: Database, fresh: Database, chat: Conversation, darasa_database_url: str, kind: str
):
    await append(darasa_db, chat, "before")
    replaced = [{"role": "user", "content": f"by {kind}"}]
    query = HOST_CHANGES[kind]
    if kind == "function":  # a DO block takes no parameters: the id goes in as text
        await sql(darasa_database_url, query.replace("%(id)s", str(chat.id)))
        replaced = []
    else:
        params = {"id": chat.id, "user": chat.user_id, "messages": Jsonb(replaced)}
        async with await psycopg.AsyncConnection.connect(darasa_database_url) as conn:
            await conn.execute(query, params)  # type: ignore[arg-type]
            await conn.commit()

    after = await append(darasa_db, chat, "after")

    assert contents(after) == [m["content"] for m in replaced] + ["after"]
    assert after == await stored(fresh, chat)


async def test_a_raw_edit_that_sets_the_version_back_is_still_seen(
    darasa_db: Database, fresh: Database, chat: Conversation, darasa_database_url: str
):
    """SQL that copies the version columns along with the messages (a careless fix, a restore
    script) cannot make a change look like the held state: the trigger sets them."""
    held = await append(darasa_db, chat, "secret")
    ((version, previous),) = await sql(
        darasa_database_url,
        "SELECT messages_version, previous_messages_version FROM darasa.conversations "
        "WHERE id = %s",
        chat.id,
    )
    assert version == held.messages._version
    await edit(
        darasa_database_url,
        chat,
        REDACT + ", messages_version = %s, previous_messages_version = %s",
        version,
        previous,
    )

    after = await append(darasa_db, chat, "ok")

    assert contents(after) == ["be brief", "hello", "[redacted]", "ok"]
    assert after == await stored(fresh, chat)


async def test_a_raw_rewrite_to_the_same_messages_still_equals_get(
    darasa_db: Database, fresh: Database, chat: Conversation, darasa_database_url: str
):
    await edit(darasa_database_url, chat, "messages = messages")
    await edit(darasa_database_url, chat, "messages = messages - 0")

    after = await append(darasa_db, chat, "next")

    assert contents(after) == ["hello", "next"]
    assert after == await stored(fresh, chat)


async def test_an_append_by_another_database_in_between_is_in_the_result(
    darasa_db: Database, fresh: Database, chat: Conversation
):
    await append(darasa_db, chat, "mine 1")
    theirs = await append(fresh, chat, "theirs")
    assert "mine 1" in contents(theirs)

    mine = await append(darasa_db, chat, "mine 2")

    assert not took_held_messages(mine)
    assert contents(mine) == ["be brief", "hello", "mine 1", "theirs", "mine 2"]
    assert mine == await stored(fresh, chat)


async def test_two_databases_taking_turns_each_return_exactly_get(
    darasa_db: Database, fresh: Database, chat: Conversation
):
    expected = [m.content for m in HELLO]
    for i in range(12):
        writer = (darasa_db, fresh)[(i // 3) % 2]  # three in a row each: held, then not
        result = await append(writer, chat, f"m{i}")
        expected.append(f"m{i}")
        if i % 3:
            assert took_held_messages(result)  # the writer's own previous append is held
        assert result == await stored(fresh, chat)
        assert contents(result) == expected


async def test_appends_in_a_rolled_back_transaction_leave_no_trace_in_later_results(
    darasa_db: Database, fresh: Database, chat: Conversation
):
    inside: list[Conversation] = []

    async def work() -> None:
        async with darasa_db.transaction() as tx:
            inside.append(await append(tx, chat, "doomed 1"))
            inside.append(await append(tx, chat, "doomed 2"))
            assert took_held_messages(inside[1])
            assert inside[1] == await tx.conversations.get(chat.id, user_id=chat.user_id)
            raise Boom

    with pytest.raises(Boom):
        await work()

    assert contents(inside[1]) == ["be brief", "hello", "doomed 1", "doomed 2"]
    after = await append(darasa_db, chat, "kept")
    assert contents(after) == ["be brief", "hello", "kept"]
    assert after == await stored(fresh, chat)
    renamed = await darasa_db.conversations.rename(chat.id, "Renamed", user_id=chat.user_id)
    assert renamed == await stored(fresh, chat)
    assert contents(await append(darasa_db, chat, "again")) == [
        "be brief",
        "hello",
        "kept",
        "again",
    ]


async def test_an_append_waiting_on_a_transaction_that_rolls_back_equals_get(
    darasa_db: Database, fresh: Database, chat: Conversation
):
    """The pool's append is sent holding the transaction's uncommitted version, then waits on
    the row lock; after the rollback that version never existed."""
    waiting: list[asyncio.Task[Conversation]] = []

    async def work() -> None:
        async with darasa_db.transaction() as tx:
            await append(tx, chat, "doomed")
            waiting.append(outside_the_transaction(append(darasa_db, chat, "waited")))
            await asyncio.sleep(0.3)  # sent, and blocked on the row the transaction holds
            assert not waiting[0].done()
            raise Boom

    with pytest.raises(Boom):
        await work()

    after = await waiting[0]

    assert contents(after) == ["be brief", "hello", "waited"]
    assert after == await stored(fresh, chat)


async def test_an_append_waiting_on_a_transaction_that_commits_equals_get(
    darasa_db: Database, fresh: Database, chat: Conversation
):
    waiting: asyncio.Task[Conversation] | None = None
    async with darasa_db.transaction() as tx:
        await append(tx, chat, "committed")
        waiting = outside_the_transaction(append(darasa_db, chat, "waited"))
        await asyncio.sleep(0.3)
        assert not waiting.done()

    after = await waiting

    assert contents(after) == ["be brief", "hello", "committed", "waited"]
    assert after == await stored(fresh, chat)


async def test_concurrent_appends_each_return_a_prefix_of_the_final_messages(
    darasa_db: Database, fresh: Database, chat: Conversation
):
    sent = [f"c{i}" for i in range(20)]
    results = list(await asyncio.gather(*(append(darasa_db, chat, text) for text in sent)))
    for i in range(5):
        results.append(await append(darasa_db, chat, f"after {i}"))
        sent.append(f"after {i}")

    final = await stored(fresh, chat)
    assert results[-1] == final
    assert sorted(contents(final)[2:]) == sorted(sent)
    assert contents(final)[-5:] == [f"after {i}" for i in range(5)]
    lengths = [len(r.messages) for r in results]
    assert len(set(lengths)) == len(results)
    for text, result in zip(sent, results, strict=True):
        assert result.messages == final.messages[: len(result.messages)]
        assert result.messages[-1].content == text  # each sees the row just after its own append


async def test_a_conversation_restored_under_the_same_id_equals_get(
    darasa_db: Database, fresh: Database, chat: Conversation, darasa_database_url: str
):
    await append(darasa_db, chat, "before the restore")
    async with await psycopg.AsyncConnection.connect(darasa_database_url) as conn:
        await conn.execute("DELETE FROM darasa.conversations WHERE id = %s", (chat.id,))
        await conn.execute(
            "INSERT INTO darasa.conversations (id, user_id, title, messages) "
            "VALUES (%s, %s, 'Prep', %s)",
            (chat.id, chat.user_id, Jsonb([{"role": "user", "content": "restored"}])),
        )
        await conn.commit()

    after = await append(darasa_db, chat, "after the restore")

    assert contents(after) == ["restored", "after the restore"]
    assert after == await stored(fresh, chat)


async def test_a_conversation_restored_from_a_copy_of_its_row_equals_get(
    darasa_db: Database, fresh: Database, chat: Conversation, darasa_database_url: str
):
    """The copy carries the version columns it was taken with (`INSERT … SELECT *`)."""
    await back_up(darasa_database_url, chat)
    await append(darasa_db, chat, "lost in the restore")
    await append(darasa_db, chat, "lost too")
    await restore(darasa_database_url, chat)

    after = await append(darasa_db, chat, "after the restore")

    assert contents(after) == ["be brief", "hello", "after the restore"]
    assert after == await stored(fresh, chat)
    again = await append(darasa_db, chat, "and again")
    assert took_held_messages(again)
    assert again == await stored(fresh, chat)


async def test_a_restore_while_another_database_held_the_backed_up_state_equals_get(
    darasa_db: Database, fresh: Database, chat: Conversation, darasa_database_url: str
):
    """`fresh` holds the state the copy was taken at; others append; the copy comes back."""
    await stored(fresh, chat)  # held by fresh at the backed-up version
    await back_up(darasa_database_url, chat)
    await append(darasa_db, chat, "lost in the restore")
    await restore(darasa_database_url, chat)

    after = await append(fresh, chat, "after the restore")

    assert contents(after) == ["be brief", "hello", "after the restore"]
    async with Database(DatabaseSettings(url=darasa_database_url), cache=None) as reader:
        assert after == await stored(reader, chat)


async def test_a_database_restored_from_a_backup_while_a_process_ran_equals_get(
    darasa_db: Database, fresh: Database, chat: Conversation, darasa_database_url: str
):
    """The whole database goes back to last night's backup (a dump restored, a point-in-time
    recovery) while the processes keep running, and others append to the restored row: a
    process that held a state from after the backup must not take it for the row's."""
    url = darasa_database_url
    await back_up(url, chat)
    await append(darasa_db, chat, "lost 1")
    held = await append(darasa_db, chat, "lost 2")
    held_version = held.messages._version  # internal: the version darasa_db now holds
    await restore(url, chat)
    assert contents(await stored(fresh, chat)) == ["be brief", "hello"]
    for i in range(3):  # the others' appends after the restore
        await append(fresh, chat, f"after the restore {i}")
    ((version,),) = await sql(
        url, "SELECT messages_version FROM darasa.conversations WHERE id = %s", chat.id
    )
    assert version != held_version  # random versions: never handed out again

    result = await append(darasa_db, chat, "mine")

    expected = await stored(fresh, chat)
    assert contents(expected)[:3] == ["be brief", "hello", "after the restore 0"]
    assert contents(result) == contents(expected)
    assert result == expected


async def test_rename_returns_the_messages_get_returns_held_or_not(
    darasa_db: Database, fresh: Database, chat: Conversation, darasa_database_url: str
):
    got = await stored(fresh, chat)  # fresh holds it now, undecoded
    renamed = await fresh.conversations.rename(chat.id, "Held", user_id=chat.user_id)
    # internal: the held messages' own stored text, not a new one from the server
    assert renamed.messages._source is got.messages._source
    assert renamed == await stored(darasa_db, chat)

    appended = await append(darasa_db, chat, "Q")
    renamed = await darasa_db.conversations.rename(chat.id, "After append", user_id=chat.user_id)
    assert took_held_messages(renamed)  # the held, still undecoded, append's result
    assert renamed.messages._tail == appended.messages._tail
    assert renamed == await stored(fresh, chat)

    other = Database(DatabaseSettings(url=darasa_database_url, test_mode=True), cache=None)
    try:  # holds nothing: the statement sends the messages
        renamed = await other.conversations.rename(chat.id, "Not held", user_id=chat.user_id)
    finally:
        await other.close()
    assert renamed == await stored(fresh, chat)
    assert contents(renamed) == ["be brief", "hello", "Q"]

    await edit(darasa_database_url, chat, "messages = messages - 1")
    renamed = await darasa_db.conversations.rename(chat.id, "After edit", user_id=chat.user_id)
    assert contents(renamed) == ["be brief", "Q"]
    assert renamed == await stored(fresh, chat)
    after = await append(darasa_db, chat, "A")
    assert took_held_messages(after)  # the rename's result is held now
    assert after == await stored(fresh, chat)


async def test_cancelled_appends_leave_later_results_exactly_get(
    darasa_db: Database, fresh: Database, chat: Conversation
):
    rng = random.Random(20261205)
    done: list[str] = []
    attempted: list[str] = []
    for i in range(30):
        text = f"c{i}"
        attempted.append(text)
        if i % 2:
            try:
                await asyncio.wait_for(append(darasa_db, chat, text), rng.uniform(0, 0.004))
            except TimeoutError:
                continue
        else:
            task = asyncio.create_task(append(darasa_db, chat, text))
            await asyncio.sleep(rng.uniform(0, 0.004))
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                continue
        done.append(text)
        if i % 5 == 0:
            result = await append(darasa_db, chat, f"ok{i}")
            attempted.append(f"ok{i}")
            done.append(f"ok{i}")
            assert result == await stored(fresh, chat)

    final = await append(darasa_db, chat, "final")

    assert final == await stored(fresh, chat)
    appended = contents(final)[2:]
    assert len(appended) == len(set(appended))  # nothing twice
    assert set(appended) <= {*attempted, "final"}
    assert set(done) <= set(appended)  # what completed is there
    assert appended == sorted(appended, key=lambda t: [*attempted, "final"].index(t))
    assert appended[-1] == "final"


async def test_concurrent_appends_cancelled_at_random_leave_later_results_exactly_get(
    darasa_db: Database, fresh: Database, chat: Conversation
):
    rng = random.Random(5)
    completed: list[str] = []
    for round in range(10):
        texts = [f"r{round}.{i}" for i in range(5)]
        tasks = [asyncio.create_task(append(darasa_db, chat, text)) for text in texts]
        await asyncio.sleep(rng.uniform(0, 0.006))
        for task in rng.sample(tasks, 2):
            task.cancel()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        for text, outcome in zip(texts, outcomes, strict=True):
            if isinstance(outcome, Conversation):
                completed.append(text)
                assert outcome.messages[-1].content == text
            else:
                assert isinstance(outcome, asyncio.CancelledError)
        after = await append(darasa_db, chat, f"check {round}")
        completed.append(f"check {round}")
        assert after == await stored(fresh, chat)

    final = contents(await stored(fresh, chat))[2:]
    assert len(final) == len(set(final))
    assert set(completed) <= set(final)
    assert len(final) <= 10 * 6


def test_a_database_used_from_successive_event_loops_keeps_returning_get(
    darasa_database_url: str,
):
    db = Database(DatabaseSettings(url=darasa_database_url, test_mode=True))

    async def start() -> Conversation:
        await db.users.upsert(UserUpsert(id="loops", email="loops@example.com", name="L"))
        return await db.conversations.create("loops", ConversationCreate(title="t", messages=HELLO))

    async def turn(chat: Conversation, text: str) -> tuple[bool, Conversation, Conversation]:
        settings = DatabaseSettings(url=darasa_database_url, test_mode=True)
        async with Database(settings, cache=None) as reader:
            await append(db, chat, text)
            second = await append(db, chat, text + "'")
            # checked here: asyncio.run's repr of its task decodes the result it returns
            return took_held_messages(second), second, await stored(reader, chat)

    chat = asyncio.run(start())
    expected = [m.content for m in HELLO]
    for i in range(4):
        held, result, fresh = asyncio.run(turn(chat, f"loop {i}"))
        expected += [f"loop {i}", f"loop {i}'"]
        assert held  # held across loops
        assert result == fresh
        assert contents(result) == expected
    asyncio.run(db.close())


async def test_appends_and_renames_under_row_level_security_equal_get(
    darasa_db: Database,
    darasa_database_url: str,
    app_url: str,  # noqa: F811
):
    rls.enable(darasa_database_url)
    settings = DatabaseSettings(url=app_url, row_level_security=True, test_mode=True)
    async with Database(settings) as db, Database(settings, cache=None) as reader:
        await db.users.upsert(UserUpsert(id="alice", email="alice@example.com", name="A"))
        chat = await db.conversations.create("alice", ConversationCreate(title="t", messages=HELLO))
        first = await append(db, chat, "one")
        second = await append(db, chat, "two")
        assert took_held_messages(second)
        assert second == await stored(reader, chat)
        renamed = await db.conversations.rename(chat.id, "renamed", user_id="alice")
        assert renamed == await stored(reader, chat)
        third = await append(reader, chat, "from the reader")
        assert third == await stored(reader, chat)
        fourth = await append(db, chat, "four")
        assert contents(fourth) == ["be brief", "hello", "one", "two", "from the reader", "four"]
        assert fourth == await stored(reader, chat)
        assert first.messages == fourth.messages[:3]
        async with await psycopg.AsyncConnection.connect(app_url) as conn:  # the role's own SQL
            await conn.execute("SELECT set_config('darasa.user_id', 'alice', true)")
            await conn.execute(
                "UPDATE darasa.conversations SET messages = messages - 0 WHERE id = %s",
                (chat.id,),
            )
            await conn.commit()
        fifth = await append(db, chat, "five")
        assert contents(fifth) == ["hello", "one", "two", "from the reader", "four", "five"]
        assert fifth == await stored(reader, chat)
        assert await db.conversations.get(uuid.uuid4(), user_id="alice") is None


async def test_an_erased_users_messages_are_not_held_any_more(
    darasa_db: Database, chat: Conversation
):
    """Erasure leaves nothing of the user in this process's memory either."""
    await append(darasa_db, chat, "private")
    known = darasa_db.conversations._known  # internal: the messages this Database holds
    assert known.get(chat.id) is not None

    await darasa_db.users.erase(chat.user_id)

    assert known.get(chat.id) is None
