"""`import darasa_db` is cheap: Alembic and the data layer load only when they are used."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import darasa_db


def _in_fresh_interpreter(code: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_importing_the_package_loads_neither_alembic_nor_sqlalchemy():
    loaded = _in_fresh_interpreter(
        "import json, sys, time\n"
        "start = time.perf_counter()\n"
        "import darasa_db\n"
        "seconds = time.perf_counter() - start\n"
        "heavy = ['alembic', 'sqlalchemy', 'psycopg', 'pydantic', 'numpy']\n"
        "print(json.dumps({'seconds': seconds,"
        " 'loaded': [m for m in heavy if m in sys.modules]}))\n"
    )

    assert loaded["loaded"] == []
    assert isinstance(loaded["seconds"], float)
    assert loaded["seconds"] < 0.1


def test_the_data_layer_loads_without_alembic_and_migrate_brings_it():
    loaded = _in_fresh_interpreter(
        "import json, sys\n"
        "from darasa_db import Database, DatabaseSettings, TagCache\n"
        "before = 'alembic' in sys.modules\n"
        "import darasa_db\n"
        "head = darasa_db.migrate.head()\n"
        "print(json.dumps({'before': before, 'after': 'alembic' in sys.modules,"
        " 'head': head, 'module': Database.__module__}))\n"
    )

    assert loaded == {
        "before": False,
        "after": True,
        "head": darasa_db.migrate.head(),
        "module": "darasa_db",
    }


def test_every_public_name_resolves_and_classes_show_the_public_path():
    for name in darasa_db.__all__:
        obj = getattr(darasa_db, name)
        if isinstance(obj, type):
            assert obj.__module__ == "darasa_db", name
    assert set(darasa_db.__all__) <= set(dir(darasa_db))
    assert darasa_db.TransactionConflictError.__module__ == "darasa_db"


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="NoSuchThing"):
        darasa_db.NoSuchThing  # noqa: B018
