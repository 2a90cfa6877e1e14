"""The plugin's database helpers on the real server: per-test databases and stale templates."""

import os
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

from darasa_db.testing.plugin import create_database, drop_database


def database_state(server_url: str, name: str) -> bool | None:
    """`datistemplate` of database `name`, or None when it does not exist."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT datistemplate FROM pg_database WHERE datname = %s", (name,)
        ).fetchone()
    return None if row is None else bool(row[0])


def test_a_template_left_by_an_earlier_session_is_replaced_and_dropped(darasa_server):
    name = f"darasa_stale_template_{os.getpid()}"
    create_database(darasa_server.url, name)
    with psycopg.connect(darasa_server.url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE true").format(sql.Identifier(name))
        )

    url = create_database(darasa_server.url, name)  # a second session on the same server

    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == (name,)
    assert database_state(darasa_server.url, name) is False
    with psycopg.connect(darasa_server.url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE true").format(sql.Identifier(name))
        )
    drop_database(darasa_server.url, name)
    assert database_state(darasa_server.url, name) is None


def test_each_test_gets_its_own_migrated_database(darasa_server, darasa_database_url):
    name = urlsplit(darasa_database_url).path.lstrip("/")

    with psycopg.connect(darasa_database_url) as conn:
        version = conn.execute("SELECT version_num FROM darasa.darasa_alembic_version").fetchone()

    assert name.startswith(f"darasa_test_{os.getpid()}_")
    assert database_state(darasa_server.url, name) is False
    assert version is not None
