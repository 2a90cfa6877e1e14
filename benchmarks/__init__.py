"""darasa-db benchmarks against raw psycopg and SQLAlchemy: `python -m benchmarks [--quick]`."""
