"""Testing helpers for host applications: real-PostgreSQL fixtures and in-memory fakes.

The pytest plugin is opt-in: add `pytest_plugins = ["darasa_db.testing.plugin"]` to the host's
top-level `conftest.py` for the `darasa_db`, `darasa_database_url`, `darasa_server` and
`darasa_memory_db` fixtures. Sessions that do not activate it load nothing of darasa-db.
The fakes are in `darasa_db.testing.fakes`.
"""
