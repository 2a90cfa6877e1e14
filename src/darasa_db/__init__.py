"""darasa-db: the typed PostgreSQL data layer of the darasa application.

This module is the canonical public surface, for documentation and type checkers alike.
"""

from darasa_db import migrate, rls
from darasa_db.cache import CacheStats, TagCache
from darasa_db.database import Database, Transaction
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

for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type):
        _obj.__module__ = __name__
del _name, _obj
