"""OpenTelemetry tracing and metrics (the `otel` extra); nothing of it runs when it is off.

A `Database` decides once, when it is built, whether it is observed: when OpenTelemetry has a
tracer provider configured, its repositories (and those of its transactions) are traced
subclasses whose every public method is a span `<repository>.<method>`; otherwise they are the
plain classes, with no wrapper, check or coroutine added to a call. Once OpenTelemetry is
imported, observable instruments report its pool, cache and listener whenever a reader
collects (nothing before a meter provider is set). `instrument(db)` does both later, or with
providers of your own.

Spans carry the database semantic conventions and outcomes only (rows returned, cache hit,
miss or bypass, the error's type and SQLSTATE); never a parameter value, an error message or
a stack trace, which may hold ids, emails, content or embeddings.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from psycopg.conninfo import conninfo_to_dict

from darasa_db._connector import Connector
from darasa_db.cache.invalidator import Invalidator
from darasa_db.models import (
    ConversationRow,
    DocumentRow,
    InterviewRow,
    JobInfoRow,
    QuestionRow,
    UserRow,
)
from darasa_db.repositories._scope import PoolScope, Scope

if TYPE_CHECKING:
    from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
    from opentelemetry.trace import Tracer, TracerProvider

    from darasa_db.database import Database

__all__ = ["CACHE_ATTRIBUTE", "INSTRUMENTATION_NAME", "instrument"]

INSTRUMENTATION_NAME = "darasa_db"
"""The name of darasa-db's tracer and meter (for views, samplers and filters)."""
CACHE_ATTRIBUTE = "darasa.cache"
"""The span attribute of a read's cache outcome: `hit`, `miss` or `bypass`."""

_TABLES = {  # repository (an attribute of Database and Transaction) -> its table
    "users": UserRow,
    "job_infos": JobInfoRow,
    "questions": QuestionRow,
    "interviews": InterviewRow,
    "documents": DocumentRow,
    "conversations": ConversationRow,
}
_OPERATIONS = {  # method -> db.operation.name (the SQL it runs)
    "get": "SELECT",
    "get_by_email": "SELECT",
    "list_for_user": "SELECT",
    "list_for_job_info": "SELECT",
    "similarity_search": "SELECT",
    "hybrid_search": "SELECT",
    "export": "SELECT",
    "create": "INSERT",
    "upsert": "INSERT",
    "create_many": "COPY",
    "update": "UPDATE",
    "append_messages": "UPDATE",
    "rename": "UPDATE",
    "delete": "DELETE",
    "erase": "DELETE",
}
_NOT_ROWS = frozenset({"create_many", "export", "erase"})  # results that are not rows returned


@dataclass
class _Observed:
    """How one Database (its connector) is observed; its transactions look it up."""

    tracer: Tracer | None
    attributes: dict[str, Any]
    """db.system.name, db.namespace, server.address and server.port."""
    by_method: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def span_attributes(self, repository: str, method: str) -> dict[str, Any]:
        """The attributes every span of `repository.method` starts with."""
        key = (repository, method)
        found = self.by_method.get(key)
        if found is None:
            found = {**self.attributes, "db.collection.name": _TABLES[repository].__tablename__}
            operation = _OPERATIONS.get(method)
            if operation is not None:
                found["db.operation.name"] = operation
            if operation == "SELECT":
                found[CACHE_ATTRIBUTE] = "bypass"  # a cached read says hit or miss
            self.by_method[key] = found
        return found


_observed: weakref.WeakKeyDictionary[Connector, _Observed] = weakref.WeakKeyDictionary()


def instrument(
    db: Database,
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> None:
    """Trace and measure `db` from now on, with these providers or the global ones.

    Needed only for a Database built before OpenTelemetry was configured, or for providers that
    are not the global ones; calling it again replaces the tracer. Needs the `otel` extra.
    """
    from opentelemetry import trace

    scope = db.users._scope  # (the Database's pool scope)
    tracer_provider = tracer_provider or trace.get_tracer_provider()
    observed = _observe(scope, tracer_provider.get_tracer(INSTRUMENTATION_NAME, _version()))
    _trace(db, scope, observed)
    _register(meter_provider, scope)


def attach(repositories: object, scope: Scope) -> None:
    """Called by every new set of repositories: a Database decides here whether it is observed
    (OpenTelemetry configured now); its transactions' repositories follow that decision."""
    if isinstance(scope, PoolScope):
        _configured(repositories, scope)
    elif _observed:
        observed = _observed.get(scope.connector)
        if observed is not None and observed.tracer is not None:
            _trace(repositories, scope, observed)


def _configured(repositories: object, scope: PoolScope) -> None:
    # Configuring a provider imports the API: a process that has not is not observed (the
    # environment variables name providers that the API loads on first use).
    if "opentelemetry" not in sys.modules and not any(
        name in os.environ for name in ("OTEL_PYTHON_TRACER_PROVIDER", "OTEL_PYTHON_METER_PROVIDER")
    ):
        return
    try:
        from opentelemetry import metrics, trace
    except ImportError:
        return
    provider = trace.get_tracer_provider()
    tracer = None
    if not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        tracer = provider.get_tracer(INSTRUMENTATION_NAME, _version())
    observed = _observe(scope, tracer)
    if tracer is not None:
        _trace(repositories, scope, observed)
    # Instruments cost nothing until a reader collects: made on the global meter provider even
    # before one is configured (the API's proxy hands them over when it is).
    if not isinstance(metrics.get_meter_provider(), metrics.NoOpMeterProvider):
        _register(None, scope)


def _version() -> str:
    from darasa_db import __version__

    return __version__


def _observe(scope: Scope, tracer: Tracer | None) -> _Observed:
    connector = scope.connector
    settings = connector.settings
    dbname = conninfo_to_dict(settings.conninfo).get("dbname") or ""
    attributes: dict[str, Any] = {
        "db.system.name": "postgresql",
        "db.namespace": f"{dbname}.{connector.schema}" if dbname else connector.schema,
        "server.address": settings.host,
        "server.port": settings.port,
    }
    observed = _observed[connector] = _Observed(tracer, attributes)
    return observed


# ---------------------------------------------------------------------------------- tracing
def _trace(repositories: object, scope: Scope, observed: _Observed) -> None:
    """Replace `repositories`' six repositories by traced ones on the same scope."""
    from opentelemetry import trace

    for name in _TABLES:
        plain = getattr(repositories, name)
        cls: type = getattr(type(plain), "_plain", type(plain))
        traced = _traced_class(cls, name)(scope)
        traced._observed = observed
        setattr(repositories, name, traced)
    if isinstance(scope, PoolScope):
        scope.cache_outcome = lambda outcome: trace.get_current_span().set_attribute(
            CACHE_ATTRIBUTE, outcome
        )


@functools.cache
def _traced_class(cls: type, repository: str) -> type:
    """A subclass of `cls` whose public coroutine methods are spans `<repository>.<method>`."""
    methods = {
        name: _traced_method(getattr(cls, name), repository, name)
        for name in dir(cls)
        if not name.startswith("_") and inspect.iscoroutinefunction(getattr(cls, name))
    }
    return type(
        cls.__name__,
        (cls,),
        {**methods, "_plain": cls, "__module__": cls.__module__, "__qualname__": cls.__qualname__},
    )


def _traced_method(method: Callable[..., Any], repository: str, name: str) -> Callable[..., Any]:
    from opentelemetry.trace import SpanKind, Status, StatusCode, use_span

    span_name = f"{repository}.{name}"
    count_rows = name not in _NOT_ROWS
    error = Status(StatusCode.ERROR)

    @functools.wraps(method)
    async def traced(self: Any, *args: Any, **kwargs: Any) -> Any:
        observed: _Observed = self._observed
        assert observed.tracer is not None
        span = observed.tracer.start_span(
            span_name,
            kind=SpanKind.CLIENT,
            attributes=observed.span_attributes(repository, name),
        )
        with use_span(
            span, end_on_exit=True, record_exception=False, set_status_on_exception=False
        ):
            try:
                result = await method(self, *args, **kwargs)
            except BaseException as exc:
                span.set_attributes(_error_attributes(exc))
                span.set_status(error)
                raise
            if count_rows:
                span.set_attribute("db.response.returned_rows", _returned_rows(result))
            return result

    return traced


def _returned_rows(result: object) -> int:
    if result is None:
        return 0
    if isinstance(result, bool):  # a delete: the deleted row's id came back, or nothing
        return int(result)
    if isinstance(result, list):
        return len(result)
    return 1  # one DTO


def _error_attributes(exc: BaseException) -> dict[str, str]:
    """error.type (the exception's class) and the SQLSTATE behind it; never its message."""
    cls = type(exc)
    module = cls.__module__
    kind = cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"
    attributes = {"error.type": kind}
    sqlstate = getattr(exc.__cause__, "sqlstate", None)
    if isinstance(sqlstate, str):
        attributes["db.response.status_code"] = sqlstate
    return attributes


# ---------------------------------------------------------------------------------- metrics
class _Instruments:
    """The observable instruments of one meter provider, reading every Database registered."""

    def __init__(self, provider: MeterProvider) -> None:
        self.provider = provider  # (kept alive: its meter's callbacks read self)
        self.databases: weakref.WeakKeyDictionary[Connector, weakref.ref[Scope]] = (
            weakref.WeakKeyDictionary()
        )
        """Each registered Database's pool scope, by its primary connector."""
        meter = provider.get_meter(INSTRUMENTATION_NAME, _version())
        up_down = meter.create_observable_up_down_counter
        up_down(
            "db.client.connection.count",
            [self._connections],
            unit="{connection}",
            description="Connections of the pool, by state (idle, used)",
        )
        up_down(
            "db.client.connection.max",
            [self._pool_stat("pool_max")],
            unit="{connection}",
            description="The most connections the pool may open",
        )
        up_down(
            "db.client.connection.pending_requests",
            [self._pool_stat("requests_waiting")],
            unit="{request}",
            description="Callers waiting for a connection of the pool",
        )
        for stat, unit, description in (
            ("hits", "{read}", "Reads served by the cache"),
            ("misses", "{read}", "Cached reads that found no entry"),
            ("invalidations", "{invalidation}", "Cache invalidations (local and from NOTIFY)"),
        ):
            meter.create_observable_counter(
                f"darasa.cache.{stat}", [self._cache_stat(stat)], unit=unit, description=description
            )
        up_down(
            "darasa.cache.size",
            [self._cache_stat("size")],
            unit="{entry}",
            description="Entries in the cache",
        )
        meter.create_observable_gauge(
            "darasa.cache.listener.ready",
            [self._listener],
            unit="1",
            description="1 while the cache listener receives notices (reads may use the cache)",
        )

    def _databases(self) -> Iterator[tuple[Scope, _Observed]]:
        with _lock:  # (readers collect on threads of their own)
            refs = list(self.databases.values())
        for ref in refs:
            scope = ref()
            observed = None if scope is None else _observed.get(scope.connector)
            if scope is not None and observed is not None:
                yield scope, observed

    def _pools(self) -> Iterator[tuple[dict[str, int], dict[str, Any]]]:
        """Each open pool's stats and attributes: the primary's, then each replica's."""
        for scope, observed in self._databases():
            connectors = (scope.connector, *(r.connector for r in scope.router.replicas))
            for connector in connectors:
                pool = connector._pool
                if pool is not None:  # (not connected yet, or closed)
                    yield (
                        pool.get_stats(),
                        {
                            "db.namespace": observed.attributes["db.namespace"],
                            "db.client.connection.pool.name": pool.name,
                            "server.address": connector.settings.host,
                            "server.port": connector.settings.port,
                        },
                    )

    def _caches(self) -> Iterator[tuple[Invalidator, dict[str, Any]]]:
        """Each cache, named by its Database's primary pool while that is open."""
        for scope, observed in self._databases():
            pool = scope.connector._pool
            if scope.invalidator.cache is not None and pool is not None:
                yield (
                    scope.invalidator,
                    {
                        "db.namespace": observed.attributes["db.namespace"],
                        "db.client.connection.pool.name": pool.name,
                    },
                )

    def _connections(self, options: CallbackOptions) -> Iterable[Observation]:
        from opentelemetry.metrics import Observation

        for stats, attributes in self._pools():
            idle = stats.get("pool_available", 0)
            for state, value in (("idle", idle), ("used", stats.get("pool_size", 0) - idle)):
                yield Observation(value, {**attributes, "db.client.connection.state": state})

    def _pool_stat(self, stat: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            from opentelemetry.metrics import Observation

            for stats, attributes in self._pools():
                yield Observation(stats.get(stat, 0), attributes)

        return observe

    def _cache_stat(self, stat: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            from opentelemetry.metrics import Observation

            for invalidator, attributes in self._caches():
                assert invalidator.cache is not None
                yield Observation(getattr(invalidator.cache.stats, stat), attributes)

        return observe

    def _listener(self, options: CallbackOptions) -> Iterable[Observation]:
        from opentelemetry.metrics import Observation

        for invalidator, attributes in self._caches():
            yield Observation(int(invalidator.ready), attributes)


_lock = threading.Lock()
_instruments: dict[object, _Instruments] = {}  # "global" or id(meter provider) -> instruments


def _register(provider: MeterProvider | None, scope: Scope) -> None:
    """Add the scope's Database to the instruments of `provider` (None: the global one)."""
    from opentelemetry import metrics

    # The global provider's instruments are made once: made on the API's proxy before a
    # provider is set, they are that provider's afterwards (a second set would be ignored).
    if provider is None or provider is metrics.get_meter_provider():
        key: object = "global"
        provider = metrics.get_meter_provider()
    else:
        key = id(provider)
    with _lock:
        instruments = _instruments.get(key)
        if instruments is None:
            instruments = _instruments[key] = _Instruments(provider)
        instruments.databases[scope.connector] = weakref.ref(scope)
