"""Fixtures of the repository integration tests: Alice, Bob and a job info of Alice's."""

from __future__ import annotations

import pytest

from darasa_db import Database
from darasa_db.schemas import JobInfo, User
from integration.helpers import job_info_input, make_user


@pytest.fixture
async def user(darasa_db: Database) -> User:
    """Alice, synced from the auth provider."""
    return await make_user(darasa_db, "alice")


@pytest.fixture
async def other_user(darasa_db: Database) -> User:
    """Bob, another user of the same database."""
    return await make_user(darasa_db, "bob")


@pytest.fixture
async def job_info(darasa_db: Database, user: User) -> JobInfo:
    """A job info owned by Alice."""
    return await darasa_db.job_infos.create(user.id, job_info_input())
