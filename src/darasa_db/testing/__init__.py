"""Testing helpers for host applications: real-PostgreSQL fixtures and in-memory fakes.

The pytest plugin `darasa_db.testing.plugin` is registered through the `pytest11` entry point,
so installing darasa-db[test] gives a host's own tests the `darasa_db` fixture.
"""
