"""darasa-db: the typed PostgreSQL data layer of the darasa application.

This module is the canonical public surface, for documentation and type checkers alike.

Imports are lazy (PEP 562): `import darasa_db` loads only the exception hierarchy. The first
use of any other public class loads the data layer (SQLAlchemy, psycopg, pydantic), and
`darasa_db.migrate` loads Alembic only when it is used.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any

from darasa_db.errors import (
    ConfigurationError,
    ConflictError,
    DarasaDBError,
    DatabaseUnavailableError,
    MigrationError,
    NotFoundError,
    QueryTimeoutError,
    TransactionConflictError,
)

if TYPE_CHECKING:
    from darasa_db import migrate, rls
    from darasa_db.cache import CacheStats, TagCache
    from darasa_db.database import Database, Transaction
    from darasa_db.settings import DatabaseSettings

__version__ = "0.1.0"

__all__ = [
    "CacheStats",
    "ConfigurationError",
    "ConflictError",
    "DarasaDBError",
    "Database",
    "DatabaseSettings",
    "DatabaseUnavailableError",
    "MigrationError",
    "NotFoundError",
    "QueryTimeoutError",
    "TagCache",
    "Transaction",
    "TransactionConflictError",
    "__version__",
    "migrate",
    "rls",
]

_LAZY_CLASSES = {
    "CacheStats": "darasa_db.cache",
    "TagCache": "darasa_db.cache",
    "Database": "darasa_db.database",
    "Transaction": "darasa_db.database",
    "DatabaseSettings": "darasa_db.settings",
}
"""Public classes loaded on first use, all together, by the module that defines each."""

_LAZY_MODULES = ("migrate", "rls")


def _publish(obj: object) -> None:
    """Show a public class under `darasa_db` in reprs, tracebacks and docs."""
    if isinstance(obj, type):
        obj.__module__ = __name__


def __getattr__(name: str) -> Any:
    """Load a lazy public name on first use (PEP 562)."""
    if name in _LAZY_MODULES:
        module: ModuleType = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    if name in _LAZY_CLASSES:
        for other, source in _LAZY_CLASSES.items():
            obj = getattr(importlib.import_module(source), other)
            _publish(obj)
            globals()[other] = obj
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """The module's names, lazy ones included."""
    return sorted(set(globals()) | set(__all__))


for _name in __all__:
    if _name in globals():
        _publish(globals()[_name])
del _name
