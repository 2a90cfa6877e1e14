"""Alembic environment of darasa-db: run through `darasa_db.migrate`, never `alembic.ini`.

The runner passes an open connection and the schema in `config.attributes`; objects and the
version table `darasa_alembic_version` live in that schema, apart from the host's own.
"""

from __future__ import annotations

from alembic import context

from darasa_db.migrate import VERSION_TABLE, log_applied
from darasa_db.models import DEFAULT_SCHEMA, metadata

config = context.config
connection = config.attributes.get("connection")
schema: str = config.attributes.get("schema", DEFAULT_SCHEMA)

if connection is None:
    raise RuntimeError("run darasa-db migrations with darasa_db.migrate or the darasa-db command")


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Compare only our schema, and not our version table, during autogenerate."""
    if type_ == "schema":
        return name == schema
    return not (type_ == "table" and name == VERSION_TABLE)


context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    version_table_schema=schema,
    include_schemas=True,
    include_name=include_name,
    on_version_apply=log_applied,
    compare_type=True,
    compare_server_default=False,
)
with context.begin_transaction():
    context.run_migrations()
