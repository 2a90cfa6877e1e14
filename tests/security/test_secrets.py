"""Secrets: the database password never shows in reprs, messages, tracebacks or logs."""

from __future__ import annotations

import logging
import socket
import traceback

import pytest
from pydantic import ValidationError

from darasa_db import Database, DatabaseSettings, DatabaseUnavailableError, migrate
from darasa_db.errors import ConfigurationError, DarasaDBError

PASSWORD = "Sup3r-s3cret-pw"
ENCODED = "p%40ss%3Aw%2Frd-Sup3r"  # "p@ss:w/rd-Sup3r" in a URL
SECRETS = (PASSWORD, ENCODED, "p@ss:w/rd-Sup3r", "Sup3r")


def closed_port() -> int:
    """A localhost port nobody listens on (connections are refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


@pytest.fixture
def unreachable_url() -> str:
    return f"postgresql://app:{PASSWORD}@127.0.0.1:{closed_port()}/app"


@pytest.mark.embedded_smoke
@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://app:{PASSWORD}@db.example.com:5432/app",
        f"postgres://app:{ENCODED}@db.example.com/app?sslmode=require",
        f"postgresql+psycopg://app@db.example.com/app?password={PASSWORD}&sslmode=require",
        f"postgresql://app:{PASSWORD}@/app?host=/var/run/postgresql",
    ],
)
def test_password_is_masked_in_settings_and_database_reprs(url):
    settings = DatabaseSettings(url=url)
    db = Database(settings)

    for text in (repr(settings), str(settings), settings.safe_url, repr(db), str(db)):
        assert_no_secret(text)
        assert "***" in text
    assert "db.example.com" in repr(settings) or "/var/run/postgresql" in repr(settings)


def test_password_is_masked_in_settings_read_from_the_environment():
    env = {"DB_HOST": "db.example.com", "DB_USER": "app", "DB_PASSWORD": PASSWORD, "DB_NAME": "a"}
    settings = DatabaseSettings.from_env(env)

    assert PASSWORD in settings.conninfo  # it is there, for psycopg only
    assert_no_secret(repr(settings))
    assert_no_secret(repr(Database(settings)))


@pytest.mark.parametrize(
    "bad",
    [
        {"url": f"mysql://app:{PASSWORD}@db.example.com/app"},
        {"url": f"postgresql://app:{PASSWORD}@/app"},
        {"url": f"postgresql://app:{PASSWORD}@db.example.com/app", "pool_size": 0},
        {"url": f"postgresql://app:{PASSWORD}@db.example.com/app", "schema_name": "Bad-Name"},
        {"url": f"postgresql://app:{PASSWORD}@db.example.com/app", "unknown": PASSWORD},
    ],
)
def test_password_is_not_echoed_by_validation_errors(bad):
    with pytest.raises(ValidationError) as caught:
        DatabaseSettings(**bad)

    assert_no_secret(str(caught.value))
    assert_no_secret(repr(caught.value))
    # errors() carries each raw input unless asked not to (pydantic): see docs/operations.md
    assert_no_secret(repr(caught.value.errors(include_input=False)))


@pytest.mark.parametrize(
    "env",
    [
        {"DATABASE_URL": f"mysql://app:{PASSWORD}@db.example.com/app"},
        {"DB_HOST": "h", "DB_USER": "u", "DB_PASSWORD": PASSWORD, "DB_PORT": "not-a-port"},
    ],
)
def test_password_is_not_echoed_by_configuration_errors(env):
    with pytest.raises(ConfigurationError) as caught:
        DatabaseSettings.from_env(env)

    assert_no_secret(str(caught.value))


async def test_failed_connect_reports_host_and_cause_but_not_the_password(unreachable_url, caplog):
    caplog.set_level(logging.DEBUG)
    settings = DatabaseSettings(url=unreachable_url, connect_timeout=2, pool_timeout=2)

    async with Database(settings) as db:
        with pytest.raises(DatabaseUnavailableError) as caught:
            await db.users.get("anyone")
        shown = repr(db)

    error = caught.value
    assert "127.0.0.1" in str(error)
    assert error.cause
    for text in (str(error), repr(error), error.cause, shown, caplog.text):
        assert_no_secret(text)
    assert_no_secret("".join(traceback.format_exception(error)))
    assert caplog.records, "the failed connect was logged"


async def test_failed_health_check_logs_no_password(unreachable_url, caplog):
    caplog.set_level(logging.DEBUG)
    settings = DatabaseSettings(url=unreachable_url, connect_timeout=2, pool_timeout=2)

    async with Database(settings) as db:
        assert await db.health_check() is False

    assert "health check failed" in caplog.text
    assert_no_secret(caplog.text)
    for record in caplog.records:
        assert_no_secret(repr(record.args))


def test_failed_migration_reports_no_password(unreachable_url, caplog):
    caplog.set_level(logging.DEBUG)

    with pytest.raises(DarasaDBError) as caught:
        migrate.upgrade(unreachable_url)

    assert_no_secret("".join(traceback.format_exception(caught.value)))
    assert_no_secret(caplog.text)
