"""Pins every private or unexported API of a dependency that `darasa_db._compat` uses: each
test fails when the dependency changes under it."""

from __future__ import annotations

import asyncio
import inspect
import logging

import psycopg_pool
from pgvector.psycopg import vector as pgvector_vector

from darasa_db._compat import fast_constructor, quiet_cancelled_connects
from darasa_db.schemas import JobInfo, Message


def test_pgvector_still_has_register_vector_info_taking_a_connection_and_a_type_info():
    assert list(inspect.signature(pgvector_vector.register_vector_info).parameters)[:2] == [
        "context",
        "info",
    ]


def test_pgvector_still_names_its_vector_class_in_its_psycopg_module():
    """`register_vector_info` takes the dumpers pgvector registered for it (numpy arrays')."""
    assert isinstance(pgvector_vector.Vector, type)


def test_fast_construction_equals_model_construct():
    values = ("user", "hello")
    fast = fast_constructor(Message)
    assert fast is not None
    fields, make = fast
    built = make(values)
    expected = Message.model_construct(**dict(zip(fields, values, strict=True)))
    assert built == expected
    assert built.model_fields_set == expected.model_fields_set
    assert built.model_dump() == expected.model_dump()
    assert repr(built) == repr(expected)


def test_pydantic_still_keeps_the_private_state_the_fast_constructor_fills():
    fresh = Message(role="user", content="x")
    for name in ("__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__"):
        assert hasattr(fresh, name)
    assert fast_constructor(JobInfo) is not None  # no alias, extra or private state


def test_pydantic_state_is_still_kept_in_base_model_slots_the_fast_constructor_sets():
    from pydantic import BaseModel

    for name in ("__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__"):
        assert name in BaseModel.__slots__
        assert type(vars(BaseModel)[name]).__name__ == "member_descriptor"


def test_fast_construction_from_a_row_equals_model_construct_for_every_read_model():
    import datetime
    import uuid

    from darasa_db.schemas import Conversation, Document, Interview, Question, User

    for model in (JobInfo, Question, Interview, Document, Conversation, User):
        fast = fast_constructor(model)
        if fast is None:
            continue
        fields, make = fast
        values = [object() for _ in fields]
        built = make(values)
        expected = model.model_construct(**dict(zip(fields, values, strict=True)))
        assert built.__dict__ == expected.__dict__
        assert built.model_fields_set == expected.model_fields_set
        assert built.__pydantic_extra__ is None
        assert built.__pydantic_private__ is None
        assert built == expected
    job = make_job = fast_constructor(JobInfo)
    assert job is not None
    row = (uuid.uuid4(), "u", "n", None, "senior", "d", datetime.datetime.now(datetime.UTC), None)
    assert make_job[1](list(row)) == make_job[1](row)


def test_psycopg_pool_still_logs_cancelled_connects_in_the_filtered_form():
    source = inspect.getsource(psycopg_pool.AsyncConnectionPool._add_connection)
    assert 'logger.warning("error connecting in %r: %s", self.name, ex)' in source


def test_cancelled_connects_of_our_pools_are_not_logged_and_real_failures_are(caplog):
    quiet_cancelled_connects("darasa-db-")
    pool_logger = logging.getLogger("psycopg.pool")
    with caplog.at_level(logging.WARNING, logger="psycopg.pool"):
        pool_logger.warning("error connecting in %r: %s", "darasa-db-1", asyncio.CancelledError())
        pool_logger.warning("error connecting in %r: %s", "darasa-db-1", OSError("refused"))
        pool_logger.warning("error connecting in %r: %s", "hosts-pool", asyncio.CancelledError())
    assert [r.getMessage() for r in caplog.records] == [
        "error connecting in 'darasa-db-1': refused",
        "error connecting in 'hosts-pool': ",
    ]


def test_psycopg_pool_still_picks_ready_connections_where_the_lifo_pool_hooks_in():
    from collections import deque

    parameters = list(
        inspect.signature(psycopg_pool.AsyncConnectionPool._get_ready_connection).parameters
    )
    assert parameters == ["self", "timeout"]
    pool = psycopg_pool.AsyncConnectionPool("postgresql://nowhere/none", open=False)
    assert isinstance(pool._pool, deque)  # the idle connections LifoConnectionPool reorders
