"""Migration 0006: each change of a conversation's messages gets a new `messages_version`.

Conversations written before it have no version until their next change, and appends on them
still return exactly what `get` returns; the previous release's append (its own SQL) is
versioned like any other change; the downgrade gives back 0005's schema with the rows, and
the upgrade can be run again, with `Database`s that lived through all of it.
"""

from __future__ import annotations

import uuid

from _migration_helpers import our_objects, rows
from psycopg.types.json import Jsonb

from darasa_db import Database, DatabaseSettings, migrate
from darasa_db.schemas import Conversation, ConversationCreate, Message, UserUpsert

BEFORE, AFTER = "0005", "0006"
VERSIONS = ("messages_version", "previous_messages_version")
OLD_APPEND = "UPDATE darasa.conversations SET messages = messages || %s WHERE id = %s RETURNING id"
"""The previous release's append, exactly."""
CONVERSATION = (
    "SELECT id, user_id, title, messages, created_at, updated_at FROM darasa.conversations"
)


def seed(url: str) -> list[uuid.UUID]:
    """At 0005 (or later): a user with two conversations, written with the previous release's
    SQL. Returns their ids."""
    rows(
        url,
        "INSERT INTO darasa.users (id, email, name, email_key) "
        "VALUES ('alice', 'alice@example.com', 'Alice', 'alice@example.com')",
    )
    ids = []
    for title in ("one", "two"):
        ((id,),) = rows(
            url,
            "INSERT INTO darasa.conversations (user_id, title, messages) "
            "VALUES ('alice', %s, %s) RETURNING id",
            title,
            Jsonb([{"role": "user", "content": f"{title}: hi"}]),
        )
        ids.append(id)
    return ids


def old_append(url: str, id: uuid.UUID, content: str) -> None:
    assert rows(url, OLD_APPEND, Jsonb([{"role": "user", "content": content}]), id) == [(id,)]


def versions(url: str, id: uuid.UUID) -> tuple[int | None, int | None]:
    ((version, previous),) = rows(
        url,
        "SELECT messages_version, previous_messages_version FROM darasa.conversations "
        "WHERE id = %s",
        id,
    )
    return version, previous


def columns(url: str) -> list[str]:
    return [
        r[0]
        for r in rows(
            url,
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'darasa' "
            "AND table_name = 'conversations' AND column_name = ANY(%s)",
            list(VERSIONS),
        )
    ]


def contents(conversation: Conversation) -> list[str]:
    return [m.content for m in conversation.messages]


def took_held_messages(conversation: Conversation) -> bool:
    """Whether an append's result came from the messages its `Database` held (internals: such
    a result is still undecoded, `.extended` by the appended messages)."""
    messages = conversation.messages
    return bool(messages._tail) and messages._source is not None


async def append(db: Database, id: uuid.UUID, content: str) -> Conversation:
    return await db.conversations.append_messages(
        id, [Message(role="user", content=content)], user_id="alice"
    )


async def stored(url: str, id: uuid.UUID) -> Conversation:
    """The conversation as a `Database` that holds nothing (and caches nothing) reads it."""
    async with Database(DatabaseSettings(url=url, test_mode=True), cache=None) as db:
        found = await db.conversations.get(id, user_id="alice")
    assert found is not None
    return found


def database(url: str) -> Database:
    return Database(DatabaseSettings(url=url, test_mode=True))


async def test_conversations_from_before_have_no_version_and_appends_on_them_equal_get(
    empty_database_url: str,
):
    url = empty_database_url
    migrate.upgrade(url, BEFORE)
    one, two = seed(url)
    before = rows(url, CONVERSATION + " ORDER BY id")

    assert migrate.upgrade(url, AFTER) == [AFTER]

    assert rows(url, CONVERSATION + " ORDER BY id") == before  # no rewrite, not an edit
    assert versions(url, one) == versions(url, two) == (None, None)
    async with database(url) as db:
        first = await append(db, one, "first after the upgrade")  # nothing held
        assert first == await stored(url, one)
        assert contents(first) == ["one: hi", "first after the upgrade"]
        second = await append(db, one, "second")
        assert took_held_messages(second)
        assert second == await stored(url, one)

        got = await db.conversations.get(two, user_id="alice")  # read at no version
        assert got is not None
        assert got.messages._version is None
        appended = await append(db, two, "after a get")
        assert appended == await stored(url, two)
        assert contents(appended) == ["two: hi", "after a get"]
        renamed = await db.conversations.rename(two, "renamed", user_id="alice")
        assert renamed == await stored(url, two)
    version, previous = versions(url, one)
    assert version is not None
    assert previous is not None
    assert version != previous


async def test_the_previous_releases_append_is_versioned_and_seen(darasa_database_url: str):
    """Rolling deploys: processes of the release before 0006 append with their own SQL."""
    url = darasa_database_url
    one, _ = seed(url)  # the previous release's insert gets a version too
    created, none = versions(url, one)
    assert created is not None
    assert none is None
    async with database(url) as db:
        held = await append(db, one, "new release")
        assert took_held_messages(held) is False  # nothing was held: sent back
        version, previous = versions(url, one)
        assert previous == created
        assert version == held.messages._version

        old_append(url, one, "old release")

        after, before = versions(url, one)
        assert before == version
        assert after is not None
        assert after != version
        result = await append(db, one, "new release again")
        assert not took_held_messages(result)
        assert contents(result) == ["one: hi", "new release", "old release", "new release again"]
        assert result == await stored(url, one)
        again = await append(db, one, "and again")
        assert took_held_messages(again)
        assert again == await stored(url, one)


async def test_downgrade_removes_0006_keeps_the_rows_and_the_upgrade_runs_again(
    empty_database_url: str,
):
    url = empty_database_url
    migrate.upgrade(url, BEFORE)
    objects = our_objects(url)
    one, two = seed(url)
    migrate.upgrade(url, AFTER)
    async with database(url) as db:
        await append(db, one, "versioned")
        await append(db, one, "versioned again")
    before = rows(url, CONVERSATION + " ORDER BY id")

    assert migrate.downgrade(url, BEFORE) == [AFTER]

    assert our_objects(url) == objects  # the trigger function: gone
    assert columns(url) == []
    assert rows(url, "SELECT tgname FROM pg_trigger WHERE tgname = 'version_messages'") == []
    assert rows(url, "SELECT proname FROM pg_proc WHERE proname = 'version_messages'") == []
    assert rows(url, CONVERSATION + " ORDER BY id") == before
    old_append(url, two, "at 0005 again")  # the previous release works on it

    assert migrate.upgrade(url, AFTER) == [AFTER]

    assert sorted(columns(url)) == sorted(VERSIONS)
    assert versions(url, one) == versions(url, two) == (None, None)
    async with database(url) as db:
        result = await append(db, two, "upgraded again")
        assert contents(result) == ["two: hi", "at 0005 again", "upgraded again"]
        assert result == await stored(url, two)
        assert took_held_messages(await append(db, two, "held"))
        created = await db.conversations.create("alice", ConversationCreate(title="new"))
        assert created.messages._version is not None
        assert await append(db, created.id, "x") == await stored(url, created.id)


async def test_a_database_that_lived_through_a_downgrade_and_upgrade_returns_get(
    darasa_database_url: str,
):
    """A process keeps running while the schema goes back to 0005 and forward again (a rolled
    back deploy, rolled forward): what it held before must not be taken for what is stored."""
    url = darasa_database_url
    one, _ = seed(url)
    async with database(url) as db:
        held = await append(db, one, "held before the downgrade")
        assert held == await stored(url, one)
        held_version = held.messages._version  # internal: the version `db` now holds
        assert migrate.downgrade(url, BEFORE) == [AFTER]
        old_append(url, one, "at 0005")
        assert migrate.upgrade(url, AFTER) == [AFTER]
        for i in range(3):  # other processes' appends after the upgrade
            old_append(url, one, f"old release {i}")
        assert versions(url, one)[0] != held_version  # random versions: never handed out again

        result = await append(db, one, "after the upgrade")

        expected = await stored(url, one)
        assert contents(expected)[-1] == "after the upgrade"
        assert contents(result) == contents(expected)
        assert result == expected


async def test_versions_in_a_schema_of_its_own(empty_database_url: str):
    url, schema = empty_database_url, "tenant_v"
    migrate.upgrade(url, schema=schema)
    settings = DatabaseSettings(url=url, schema_name=schema, test_mode=True)
    async with Database(settings) as db, Database(settings, cache=None) as reader:
        await db.users.upsert(UserUpsert(id="alice", email="alice@example.com", name="Alice"))
        chat = await db.conversations.create("alice", ConversationCreate(title="t"))
        await append(db, chat.id, "one")
        second = await append(db, chat.id, "two")
        assert took_held_messages(second)
        rows(
            url,
            f"UPDATE {schema}.conversations SET messages = messages - 0 WHERE id = %s",
            chat.id,
        )
        third = await append(db, chat.id, "three")
        assert contents(third) == ["two", "three"]
        assert third == await reader.conversations.get(chat.id, user_id="alice")
