"""Downgrade is idempotent: a revision already reached is success with nothing to do."""

from __future__ import annotations

import logging

import pytest
from _migration_helpers import our_objects

from darasa_db import MigrationError, migrate


def test_downgrade_to_base_twice_succeeds_and_reverts_nothing_the_second_time(
    empty_database_url, caplog
):
    url = empty_database_url
    migrate.upgrade(url)

    first = migrate.downgrade(url, "base")
    with caplog.at_level(logging.INFO, logger="darasa_db.migrate"):
        second = migrate.downgrade(url, "base")

    assert first == [r.revision for r in reversed(migrate.history())]
    assert second == []
    assert "already at base; nothing to do" in caplog.text
    assert migrate.current(url) is None
    assert our_objects(url)["schema"] == []


def test_downgrade_to_base_on_a_never_migrated_database_does_nothing(empty_database_url):
    before = our_objects(empty_database_url)

    assert migrate.downgrade(empty_database_url, "base") == []
    assert migrate.downgrade(empty_database_url, "-1") == []
    assert our_objects(empty_database_url) == before
    assert before["schema"] == []


def test_migrations_doc_sequence_one_then_minus_one_then_base(empty_database_url):
    url = empty_database_url
    assert migrate.upgrade(url, "0001") == ["0001"]
    assert migrate.downgrade(url, "-1") == ["0001"]
    assert migrate.downgrade(url, "base") == []
    assert migrate.current(url) is None


def test_downgrade_to_the_current_revision_does_nothing(darasa_database_url):
    head = migrate.head()
    assert migrate.downgrade(darasa_database_url, head) == []
    assert migrate.downgrade(darasa_database_url, "head") == []
    assert migrate.current(darasa_database_url) == head


def test_downgrade_to_a_revision_not_reached_yet_is_refused_and_changes_nothing(
    empty_database_url,
):
    with pytest.raises(MigrationError, match="at base, below '0001'"):
        migrate.downgrade(empty_database_url, "0001")
    assert our_objects(empty_database_url)["schema"] == []
