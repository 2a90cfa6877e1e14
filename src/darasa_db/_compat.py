"""Every use of a dependency's private or unexported API, in one place.

Each function here is pinned by `tests/unit/test_compat.py`, which fails when the dependency
changes under it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
import psycopg_pool
from psycopg.adapt import PyFormat
from psycopg.types import TypeInfo
from pydantic import BaseModel

__all__ = [
    "LifoConnectionPool",
    "fast_constructor",
    "permanent_connect_failure",
    "quiet_cancelled_connects",
    "register_vector_info",
]

M = TypeVar("M", bound=BaseModel)
_new = object.__new__
_set = object.__setattr__
_SLOTS: dict[str, Callable[[Any, Any], None]] = {
    name: vars(BaseModel)[name].__set__  # BaseModel's slots: their setters, called directly
    for name in ("__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__")
}


def register_vector_info(conn: psycopg.AsyncConnection[Any], info: TypeInfo) -> None:
    """Teach `conn` pgvector's `vector` type from an already fetched `TypeInfo`.

    pgvector's public `register_vector_async` fetches the type info again on every call; its
    `register_vector_info` (not exported) takes the one we fetched. It registers numpy arrays'
    dumpers by name, which psycopg replaces by the class on first use: registered again (the
    extension was installed again, a new type), the name would lose to the class and arrays
    would still be sent as the old type. So the class is registered here, each time, with the
    dumpers pgvector registered for its `Vector` (named in that module by every version).
    """
    import numpy as np
    from pgvector.psycopg.vector import Vector
    from pgvector.psycopg.vector import register_vector_info as register

    register(conn, info)
    adapters = conn.adapters
    for fmt in (PyFormat.TEXT, PyFormat.BINARY):
        adapters.register_dumper(np.ndarray, adapters.get_dumper(Vector, fmt))


def fast_constructor(model: type[M]) -> tuple[tuple[str, ...], Callable[[Any], M]] | None:
    """`(fields, make)` where `make(values)` equals `model.model_construct(**zip(fields, values))`
    for trusted values in field order (a sequence), about five times cheaper; None when the
    model needs pydantic's own construction (aliases, extra fields, private attributes, a
    post-init hook).

    Every instance shares one fields set, as `model_construct(_fields_set=...)` would: the
    models are frozen, and pydantic copies the set before changing it (`model_copy`).
    """
    fields_info = model.__pydantic_fields__
    if (
        model.__pydantic_root_model__
        or model.__pydantic_post_init__
        or model.__private_attributes__
        or model.model_config.get("extra") == "allow"
        or any(f.alias or f.validation_alias for f in fields_info.values())
    ):
        return None
    fields = tuple(fields_info)
    if not all(name.isidentifier() for name in fields):
        return None
    # Generated once per model: a dict display and the slot descriptors' own setters take
    # 0.6 µs a row, against 1.4 µs for dict(zip(...)) and four object.__setattr__ calls.
    entries = ", ".join(f"{name!r}: values[{i}]" for i, name in enumerate(fields))
    source = (
        "def make(values):\n"
        "    obj = new(model)\n"
        f"    set_dict(obj, '__dict__', {{{entries}}})\n"
        "    set_fields_set(obj, fields_set)\n"
        "    set_extra(obj, None)\n"
        "    set_private(obj, None)\n"
        "    return obj\n"
    )
    namespace: dict[str, Any] = {
        "new": _new,
        "model": model,
        "set_dict": _set,
        "fields_set": set(fields),
        "set_fields_set": _SLOTS["__pydantic_fields_set__"],
        "set_extra": _SLOTS["__pydantic_extra__"],
        "set_private": _SLOTS["__pydantic_private__"],
    }
    exec(source, namespace)
    make: Callable[[Any], M] = namespace["make"]
    return fields, make


class _CancelledConnects(logging.Filter):
    """Drops psycopg_pool's "error connecting in <pool>: " warning when the attempt was only cut
    off by a cancellation (the event loop ending) in one of darasa-db's pools."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        return not (
            record.msg == "error connecting in %r: %s"
            and isinstance(args, tuple)
            and len(args) == 2
            and str(args[0]).startswith(self.prefix)
            and isinstance(args[1], asyncio.CancelledError)
        )


def quiet_cancelled_connects(prefix: str) -> None:
    """Keep psycopg_pool quiet about connection attempts of pools named `prefix…` that were
    cancelled, not failed (once per process)."""
    pool_logger = logging.getLogger("psycopg.pool")
    if not any(isinstance(f, _CancelledConnects) for f in pool_logger.filters):
        pool_logger.addFilter(_CancelledConnects(prefix))


_PERMANENT_CONNECT_FAILURES = (
    "password authentication failed",
    "no pg_hba.conf entry",
    "does not exist",  # database "x" / role "x" does not exist
)


def permanent_connect_failure(message: str) -> bool:
    """True when a failed connection attempt will fail again the same way (a wrong password,
    an unknown database or role): libpq reports these as text, without a SQLSTATE."""
    return any(text in message for text in _PERMANENT_CONNECT_FAILURES)


class LifoConnectionPool(psycopg_pool.AsyncConnectionPool[psycopg.AsyncConnection[Any]]):
    """Hands out the most recently returned connection, as PgBouncer does, not the oldest: its
    server process is warm (about 20 µs a call on 2 cores, docs/performance.md), and spare
    connections stay idle, so `max_idle` can close them."""

    async def _get_ready_connection(
        self,
        timeout: float | None,  # noqa: ASYNC109 (psycopg_pool's signature)
    ) -> psycopg.AsyncConnection[Any] | None:
        conn = await super()._get_ready_connection(timeout)
        idle = getattr(self, "_pool", None)  # psycopg_pool's deque of idle connections
        if conn is not None and idle:  # swap the oldest for the newest (we hold the pool lock)
            idle.appendleft(conn)
            conn = idle.pop()
        return conn
