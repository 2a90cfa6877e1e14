"""`replica_urls` and `DATABASE_REPLICA_URLS`: parsed, normalised, masked, and refused with the
variable named when malformed."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from darasa_db import ConfigurationError, Database, DatabaseSettings

PRIMARY = "postgresql://app:secret@primary/app"


def test_the_environment_variable_is_split_on_commas_and_normalised() -> None:
    env = {
        "DATABASE_URL": PRIMARY,
        "DATABASE_REPLICA_URLS": " postgres://app:secret@r1/app , ,postgresql://app@r2:5433/app,",
    }
    settings = DatabaseSettings.from_env(env)
    assert settings.replica_urls == (
        "postgresql://app:secret@r1/app",
        "postgresql://app@r2:5433/app",
    )


def test_no_variable_means_no_replicas() -> None:
    assert DatabaseSettings.from_env({"DATABASE_URL": PRIMARY}).replica_urls == ()
    assert (
        DatabaseSettings.from_env(
            {"DATABASE_URL": PRIMARY, "DATABASE_REPLICA_URLS": " "}
        ).replica_urls
        == ()
    )


def test_an_explicit_override_wins_over_the_environment() -> None:
    env = {"DATABASE_URL": PRIMARY, "DATABASE_REPLICA_URLS": "postgresql://app@r1/app"}
    settings = DatabaseSettings.from_env(env, replica_urls=())
    assert settings.replica_urls == ()


def test_a_malformed_replica_url_names_the_variable_and_the_position_without_the_password() -> None:
    env = {
        "DATABASE_URL": PRIMARY,
        "DATABASE_REPLICA_URLS": "postgresql://app:secret@r1/app,mysql://app:hunter2@r2/app",
    }
    with pytest.raises(ConfigurationError) as raised:
        DatabaseSettings.from_env(env)
    message = str(raised.value)
    assert "DATABASE_REPLICA_URLS" in message
    assert "replica 2 of 2" in message
    assert "hunter2" not in message
    assert "secret" not in message


def test_a_replica_url_without_a_host_is_refused() -> None:
    with pytest.raises(ValidationError, match="replica 1 of 1: url names no host"):
        DatabaseSettings(url=PRIMARY, replica_urls=("postgresql:///app",))


def test_passwords_of_replicas_are_masked_in_repr() -> None:
    settings = DatabaseSettings(url=PRIMARY, replica_urls=("postgresql://app:hunter2@r1/app",))
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in str(settings)
    assert "postgresql://app:***@r1/app" in repr(settings)


def test_each_replica_adds_its_pool_to_the_connection_budget() -> None:
    settings = DatabaseSettings(
        url=PRIMARY,
        replica_urls=("postgresql://app@r1/app", "postgresql://app@r2/app"),
        pool_size=4,
        max_overflow=6,
        test_mode=False,
    )
    db = Database(settings)  # constructing does no I/O
    assert db.max_connections == (4 + 6) + 2 * 4
