"""Beside a host application: its own tables and Alembic history are never touched."""

from __future__ import annotations

import numpy as np
from _migration_helpers import TABLES, our_objects, rows, tables_in
from alembic.migration import MigrationContext
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from darasa_db import Database, DatabaseSettings, migrate
from darasa_db.schemas import ConversationCreate, DocumentCreate, Message, UserUpsert


def _host_state(url):
    """The host's own tables, rows and Alembic revision."""
    return {
        "public_tables": tables_in(url, "public"),
        "users": rows(url, "SELECT id, email FROM public.users ORDER BY id"),
        "alembic_version": rows(url, "SELECT version_num FROM public.alembic_version"),
    }


def _hosts_alembic_revision(url):
    engine = create_engine(DatabaseSettings(url=url).sqlalchemy_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def test_host_users_table_and_alembic_version_are_unchanged_by_upgrade_and_downgrade(
    empty_database_url,
):
    url = empty_database_url
    rows(url, "CREATE TABLE public.users (id serial PRIMARY KEY, email text NOT NULL)")
    rows(url, "INSERT INTO public.users (email) VALUES ('host@example.com'), ('b@example.com')")
    rows(url, "CREATE TABLE public.alembic_version (version_num varchar(32) PRIMARY KEY)")
    rows(url, "INSERT INTO public.alembic_version VALUES ('hostrev42')")
    before = _host_state(url)

    migrate.upgrade(url)
    assert _host_state(url) == before
    assert _hosts_alembic_revision(url) == "hostrev42"
    assert tables_in(url, "darasa") == TABLES | {migrate.VERSION_TABLE}

    migrate.downgrade(url, "base")
    assert _host_state(url) == before
    assert _hosts_alembic_revision(url) == "hostrev42"
    assert our_objects(url)["relations"] == []


def _unit(seed):
    vector = np.random.default_rng(seed).standard_normal(1536)
    return vector / np.linalg.norm(vector)


async def test_custom_schema_works_end_to_end_beside_the_default_one(empty_database_url):
    url = empty_database_url
    assert migrate.upgrade(url, schema="tenant_a") == [r.revision for r in migrate.history()]
    migrate.upgrade(url)  # the default schema, side by side in the same database
    assert migrate.check(url, schema="tenant_a") is True
    assert tables_in(url, "tenant_a") == TABLES | {migrate.VERSION_TABLE}

    settings = DatabaseSettings(url=url, schema_name="tenant_a", test_mode=True)
    async with Database(settings) as db:
        user = await db.users.upsert(UserUpsert(id="user_t", email="t@example.com", name="Tee"))
        assert await db.users.get("user_t") == user
        near, far = _unit(1), _unit(2)
        await db.documents.create(
            "user_t", DocumentCreate(title="near", content="a", embedding=near)
        )
        await db.documents.create("user_t", DocumentCreate(title="far", content="b", embedding=far))
        matches = await db.documents.similarity_search(near, user_id="user_t", limit=2)
        assert [m.document.title for m in matches] == ["near", "far"]
        assert abs(matches[0].similarity - 1.0) < 1e-5
        conversation = await db.conversations.create("user_t", ConversationCreate(title="chat"))
        appended = await db.conversations.append_messages(
            conversation.id, [Message(role="user", content="hi")], user_id="user_t"
        )
        assert [m.content for m in appended.messages] == ["hi"]

    assert rows(url, "SELECT id FROM tenant_a.users") == [("user_t",)]
    assert rows(url, "SELECT count(*) FROM tenant_a.documents") == [(2,)]
    assert rows(url, "SELECT count(*) FROM darasa.users") == [(0,)]

    migrate.downgrade(url, "base", schema="tenant_a")
    assert our_objects(url, "tenant_a")["schema"] == []
    assert migrate.current(url, schema="tenant_a") is None
    assert migrate.check(url) is True  # the default schema is untouched
    assert tables_in(url, "darasa") == TABLES | {migrate.VERSION_TABLE}


def test_settings_carry_the_schema_to_the_runner(empty_database_url):
    settings = DatabaseSettings(url=empty_database_url, schema_name="tenant_b")
    migrate.upgrade(settings)
    assert migrate.check(settings) is True
    assert migrate.current(empty_database_url) is None
    assert tables_in(empty_database_url, "tenant_b") == TABLES | {migrate.VERSION_TABLE}
