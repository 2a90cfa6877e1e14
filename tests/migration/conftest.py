"""Fixtures of the migration tests: empty databases on the session's server."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator

import pytest

from darasa_db.testing.plugin import create_database, drop_database
from darasa_db.testing.servers import TestServer

_counter = itertools.count()


@pytest.fixture
def new_empty_database(darasa_server: TestServer) -> Iterator[Callable[[], str]]:
    """A factory of empty (never migrated) databases, dropped after the test."""
    names: list[str] = []

    def make() -> str:
        name = f"darasa_migration_{os.getpid()}_{next(_counter)}"
        names.append(name)
        return create_database(darasa_server.url, name)

    yield make
    for name in names:
        drop_database(darasa_server.url, name)


@pytest.fixture
def empty_database_url(new_empty_database: Callable[[], str]) -> str:
    """An empty database: no schema `darasa`, no extension, nothing of ours."""
    return new_empty_database()
