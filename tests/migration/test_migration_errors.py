"""Bad cases give clear errors and change nothing."""

from __future__ import annotations

import socket

import pytest
from _migration_helpers import TABLES, our_objects, rows, tables_in

from darasa_db import ConfigurationError, DatabaseUnavailableError, MigrationError, migrate


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unknown_revision_is_refused_before_anything_runs(empty_database_url):
    with pytest.raises(MigrationError, match=r"unknown revision 'nope'.*ships 0001"):
        migrate.upgrade(empty_database_url, "nope")
    assert our_objects(empty_database_url)["schema"] == []
    assert migrate.current(empty_database_url) is None


def test_unknown_downgrade_target_leaves_the_database_at_head(darasa_database_url):
    with pytest.raises(MigrationError, match="unknown revision 'ffff'"):
        migrate.downgrade(darasa_database_url, "ffff")
    assert migrate.check(darasa_database_url) is True


@pytest.mark.parametrize("revision", ["0001", "base"])
def test_upgrade_to_an_older_revision_says_to_downgrade(darasa_database_url, revision):
    with pytest.raises(MigrationError, match=f"already past '{revision}': use downgrade"):
        migrate.upgrade(darasa_database_url, revision)
    assert migrate.check(darasa_database_url) is True


def test_downgrade_to_a_newer_revision_is_a_migration_error(empty_database_url):
    migrate.upgrade(empty_database_url, "0001")
    with pytest.raises(MigrationError, match="not a valid downgrade target"):
        migrate.downgrade(empty_database_url, "head")
    assert migrate.current(empty_database_url) == "0001"


def test_database_migrated_by_newer_code_is_refused_and_left_intact(darasa_database_url):
    url = darasa_database_url
    rows(url, f"UPDATE darasa.{migrate.VERSION_TABLE} SET version_num = '9999_from_the_future'")
    rows(
        url,
        "INSERT INTO darasa.users (id, email, name, email_key) "
        "VALUES ('u1', 'a@b.co', 'Ada', 'a@b.co')",
    )

    for attempt in (lambda: migrate.upgrade(url), lambda: migrate.downgrade(url, "base")):
        with pytest.raises(MigrationError, match=r"'9999_from_the_future'.*newer version"):
            attempt()

    assert migrate.current(url) == "9999_from_the_future"
    assert migrate.check(url) is False
    assert tables_in(url, "darasa") == TABLES | {migrate.VERSION_TABLE}
    assert rows(url, "SELECT id FROM darasa.users") == [("u1",)]


def test_failing_migration_rolls_back_everything(empty_database_url):
    url = empty_database_url
    rows(url, "CREATE SCHEMA darasa")
    rows(url, "CREATE TABLE darasa.documents (note text)")  # in the way of revision 0001
    rows(url, "INSERT INTO darasa.documents VALUES ('keep me')")

    with pytest.raises(MigrationError, match=r"failed, nothing was changed.*documents"):
        migrate.upgrade(url)

    assert tables_in(url, "darasa") == {"documents"}
    assert rows(url, "SELECT note FROM darasa.documents") == [("keep me",)]
    assert our_objects(url)["types"] == []
    assert migrate.current(url) is None


@pytest.mark.parametrize("call", [migrate.upgrade, migrate.current, migrate.check])
def test_unreachable_server_names_host_and_port_and_hides_the_password(call):
    port = _closed_port()
    with pytest.raises(DatabaseUnavailableError) as caught:
        call(f"postgresql://app:s3cret-pw@localhost:{port}/app")
    message = str(caught.value)
    assert f"localhost:{port}" in message
    assert "s3cret-pw" not in message
    assert caught.value.port == port


@pytest.mark.parametrize("schema", ["Tenant", "bad-name", "pg_mine", 'x"; DROP TABLE y; --', ""])
def test_invalid_schema_name_is_refused_before_connecting(empty_database_url, schema):
    with pytest.raises(ConfigurationError, match="invalid schema name"):
        migrate.upgrade(empty_database_url, schema=schema or " ")
    assert our_objects(empty_database_url)["schema"] == []


def test_invalid_url_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="invalid database URL: url must start with"):
        migrate.upgrade("mysql://app:pw@localhost/app")
