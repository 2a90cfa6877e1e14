"""Shared fixtures: the darasa-db pytest plugin provides `darasa_db` and friends."""
