"""Helpers of the replica tests: writes that bypass the `Database`, and test data."""

from __future__ import annotations

from typing import Any

import psycopg

from cache.helpers import make_user
from darasa_db import Database
from darasa_db.schemas import DocumentCreate, User
from replica_fixtures import Replicated

EMBEDDING = [1.0] + [0.0] * 1535
RENAME = "UPDATE darasa.users SET name = %s WHERE id = %s"


def on_primary(url: str, statement: str, *params: Any) -> None:
    """Run `statement` on the primary through a raw connection: this test's `Database`s do not
    know about it (no write acknowledged to them, no cache notice)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement.encode(), params)


def document_input(title: str = "Notes") -> DocumentCreate:
    return DocumentCreate(title=title, content="replicas replay the primary", embedding=EMBEDDING)


async def renamed_behind_the_replica(replicated: Replicated, writer: Database) -> User:
    """Ada, made through `writer` and replayed; then replay paused and Ada renamed "Changed" on
    the primary behind every Database's back. A read that says "Ada" came from the replica."""
    ada = await make_user(writer, "ada")
    await replicated.wait_caught_up()
    await replicated.pause_replay()
    on_primary(replicated.primary_url, RENAME, "Changed", ada.id)
    return ada


async def name_of(db: Database, user_id: str) -> str | None:
    """The user's name as `db` reads it (None: no such user)."""
    user = await db.users.get(user_id)
    return None if user is None else user.name


async def read_then_paused(replicated: Replicated, reader: Database, writer: Database) -> User:
    """Ada, made through `writer`, replayed and read once through `reader` (a cached reader
    now holds her); then the replica's replay paused."""
    ada = await make_user(writer, "ada")
    await replicated.wait_caught_up()
    assert await name_of(reader, ada.id) == "Ada"
    await replicated.pause_replay()
    return ada
