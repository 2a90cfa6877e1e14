"""Shared fixtures: the darasa-db pytest plugin provides `darasa_db` and friends (opt-in)."""

pytest_plugins = ["darasa_db.testing.plugin", "pooler_fixtures", "replica_fixtures"]
