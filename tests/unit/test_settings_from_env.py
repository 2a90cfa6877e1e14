"""`DatabaseSettings`: configuration from the environment, URL schemes and test-mode detection."""

import re

import pytest
from psycopg.conninfo import conninfo_to_dict
from pydantic import ValidationError

from darasa_db import ConfigurationError, DatabaseSettings

PARTS = {"DB_HOST": "db.internal", "DB_USER": "app", "DB_NAME": "appdb"}
TEST_ENV = ("PYTEST_CURRENT_TEST", "DARASA_DB_TEST_MODE", "APP_ENV")


def missing_variables(error: ConfigurationError) -> set[str]:
    """The variables the error's `missing …` clause names."""
    match = re.search(r"missing ([A-Z_, ]+)", str(error))
    assert match is not None, f"no 'missing' clause in: {error}"
    return {name.strip() for name in match.group(1).split(",")}


def clear_test_hints(monkeypatch) -> None:
    """Remove every test-mode hint from the environment.

    pytest sets PYTEST_CURRENT_TEST again before each phase, so call this in the test body.
    """
    for name in TEST_ENV:
        monkeypatch.delenv(name, raising=False)


# ---------------------------------------------------------------- DATABASE_URL


def test_database_url_is_read_from_the_process_environment(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:pw@db.internal:6543/appdb")
    monkeypatch.setenv("DB_HOST", "ignored.example")

    settings = DatabaseSettings.from_env()

    assert settings.host == "db.internal"
    assert settings.port == 6543
    assert settings.sqlalchemy_url == "postgresql+psycopg://app:pw@db.internal:6543/appdb"


@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "POSTGRES", "postgresql+psycopg"])
def test_postgres_schemes_are_driven_by_psycopg(scheme):
    settings = DatabaseSettings.from_env({"DATABASE_URL": f"{scheme}://app@db.internal/appdb"})

    assert settings.url == "postgresql://app@db.internal/appdb"
    assert settings.sqlalchemy_url.startswith("postgresql+psycopg://")


@pytest.mark.parametrize("url", ["mysql://app@db/appdb", "sqlite:///app.db", "db.internal/appdb"])
def test_a_url_with_another_scheme_is_a_configuration_error(url):
    with pytest.raises(ConfigurationError, match="DATABASE_URL") as caught:
        DatabaseSettings.from_env({"DATABASE_URL": url})

    assert "postgres:// or postgresql://" in str(caught.value)


def test_a_url_without_host_is_refused():
    with pytest.raises(ValidationError, match="no host"):
        DatabaseSettings(url="postgresql:///appdb")


def test_password_of_a_database_url_never_shows_in_repr_or_errors():
    settings = DatabaseSettings(url="postgresql://app:Sup3r-s3cret@db.internal/appdb")

    assert "Sup3r-s3cret" not in repr(settings)
    assert "Sup3r-s3cret" not in str(settings)
    assert "app:***@db.internal" in settings.safe_url
    with pytest.raises(ConfigurationError) as caught:
        DatabaseSettings.from_env({"DATABASE_URL": "mysql://app:Sup3r-s3cret@db/appdb"})
    assert "Sup3r-s3cret" not in str(caught.value)


# ---------------------------------------------------------------- DB_* variables


def test_db_variables_build_a_psycopg_url():
    env = {**PARTS, "DB_PORT": "6543", "DB_PASSWORD": "pw"}

    settings = DatabaseSettings.from_env(env)

    assert settings.sqlalchemy_url == "postgresql+psycopg://app:pw@db.internal:6543/appdb"
    assert (settings.host, settings.port) == ("db.internal", 6543)


def test_db_port_defaults_to_5432_and_password_is_optional():
    settings = DatabaseSettings.from_env(PARTS)

    assert settings.port == 5432
    assert conninfo_to_dict(settings.conninfo) == {
        "user": "app",
        "dbname": "appdb",
        "host": "db.internal",
        "port": "5432",
    }


def test_special_characters_in_the_password_survive_the_url():
    password = "p@ss:w/rd?#%&= x'\"é"

    settings = DatabaseSettings.from_env({**PARTS, "DB_PASSWORD": password})

    assert conninfo_to_dict(settings.conninfo)["password"] == password
    assert settings.host == "db.internal"
    assert password not in repr(settings)


def test_unix_socket_directory_as_db_host():
    env = {**PARTS, "DB_HOST": "/var/run/postgresql", "DB_PASSWORD": "s/cr@t"}

    settings = DatabaseSettings.from_env(env)

    params = conninfo_to_dict(settings.conninfo)
    assert params["host"] == "/var/run/postgresql"
    assert params["password"] == "s/cr@t"
    assert params["dbname"] == "appdb"
    assert settings.host == "/var/run/postgresql"
    assert settings.sqlalchemy_url.startswith("postgresql+psycopg://")


def test_ipv6_db_host_is_bracketed():
    settings = DatabaseSettings.from_env({**PARTS, "DB_HOST": "::1"})

    assert (settings.host, settings.port) == ("::1", 5432)


@pytest.mark.parametrize("absent", ["DB_HOST", "DB_USER", "DB_NAME"])
def test_each_missing_variable_is_named_exactly(absent):
    env = {name: value for name, value in PARTS.items() if name != absent}

    with pytest.raises(ConfigurationError) as caught:
        DatabaseSettings.from_env(env)

    assert missing_variables(caught.value) == {absent}


def test_blank_variables_count_as_missing_and_all_are_named():
    with pytest.raises(ConfigurationError) as caught:
        DatabaseSettings.from_env({"DB_HOST": "  ", "DATABASE_URL": ""})

    assert missing_variables(caught.value) == {"DB_HOST", "DB_USER", "DB_NAME"}
    assert "DATABASE_URL" in str(caught.value)


@pytest.mark.parametrize("port", ["54x", "0", "70000", "-1"])
def test_malformed_port_is_named(port):
    with pytest.raises(ConfigurationError, match="DB_PORT") as caught:
        DatabaseSettings.from_env({**PARTS, "DB_PORT": port})

    assert repr(port) in str(caught.value)
    assert "missing" not in str(caught.value).split(";", 1)[1]


def test_missing_variables_and_bad_port_are_reported_together():
    with pytest.raises(ConfigurationError) as caught:
        DatabaseSettings.from_env({"DB_HOST": "db", "DB_PORT": "abc"})

    assert missing_variables(caught.value) == {"DB_USER", "DB_NAME"}
    assert "DB_PORT" in str(caught.value)


def test_configuration_error_is_a_value_error():
    with pytest.raises(ValueError, match="DB_HOST"):
        DatabaseSettings.from_env({})


def test_overrides_are_applied_on_top_of_the_environment():
    settings = DatabaseSettings.from_env(PARTS, pool_size=2, test_mode=False)

    assert settings.pool_size == 2
    assert settings.is_test_mode is False


def test_malformed_override_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="pool_size"):
        DatabaseSettings.from_env(PARTS, pool_size=0)


# ---------------------------------------------------------------- schema name


@pytest.mark.parametrize("name", ["Darasa", "my-schema", "1st", "pg_catalog", "a" * 64, ""])
def test_invalid_schema_name_is_refused(name):
    with pytest.raises(ValidationError, match="schema_name"):
        DatabaseSettings(url="postgresql://app@db/appdb", schema_name=name)


def test_schema_name_defaults_to_darasa_and_accepts_identifiers():
    assert DatabaseSettings(url="postgresql://app@db/appdb").schema_name == "darasa"
    custom = DatabaseSettings(url="postgresql://app@db/appdb", schema_name="tenant_2")
    assert custom.schema_name == "tenant_2"


# ---------------------------------------------------------------- test mode


def test_production_default_without_any_test_hint(monkeypatch):
    clear_test_hints(monkeypatch)
    settings = DatabaseSettings(url="postgresql://app@db/appdb")

    assert settings.is_test_mode is False
    assert settings.max_connections == 20


def test_pytest_current_test_turns_test_mode_on(monkeypatch):
    clear_test_hints(monkeypatch)
    monkeypatch.setenv("PYTEST_CURRENT_TEST", "tests/test_x.py::test_y (call)")

    settings = DatabaseSettings(url="postgresql://app@db/appdb")

    assert settings.is_test_mode is True
    assert settings.max_connections == 5


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("DARASA_DB_TEST_MODE", "1", True),
        ("DARASA_DB_TEST_MODE", "0", False),
        ("APP_ENV", "test", True),
        ("APP_ENV", "TEST", True),
        ("APP_ENV", "production", False),
    ],
)
def test_environment_flags_detect_test_mode(monkeypatch, name, value, expected):
    clear_test_hints(monkeypatch)
    monkeypatch.setenv(name, value)

    assert DatabaseSettings(url="postgresql://app@db/appdb").is_test_mode is expected


def test_explicit_test_mode_false_overrides_every_hint(monkeypatch):
    monkeypatch.setenv("DARASA_DB_TEST_MODE", "1")
    monkeypatch.setenv("APP_ENV", "test")

    settings = DatabaseSettings(url="postgresql://app@db/appdb", test_mode=False)

    assert settings.is_test_mode is False
    assert settings.max_connections == 20


def test_explicit_test_mode_true_without_hints(monkeypatch):
    clear_test_hints(monkeypatch)
    settings = DatabaseSettings(url="postgresql://app@db/appdb", test_mode=True)

    assert settings.is_test_mode is True
    assert settings.max_connections == 5


def test_test_mode_never_raises_a_smaller_pool(monkeypatch):
    clear_test_hints(monkeypatch)
    small = DatabaseSettings(url="postgresql://app@db/appdb", pool_size=2, max_overflow=1)

    assert small.max_connections == 3
    assert small.model_copy(update={"test_mode": True}).max_connections == 3
