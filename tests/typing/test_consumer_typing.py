"""The typed host file passes `mypy --strict` as a host runs it: without pydantic's plugin."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from consumer import (
    constant_note,
    embedding_of,
    note_from_floats,
    notes_from_a_model,
    search,
    stored_embedding,
)

from darasa_db.schemas import DocumentCreate, UserUpsert

HERE = Path(__file__).resolve().parent


def test_consumer_type_checks_strictly_without_the_pydantic_plugin(tmp_path):
    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\nstrict = True\n")  # no plugins: what a host gets by default

    checked = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(config),
            "--cache-dir",
            str(tmp_path / "cache"),
            str(HERE / "consumer.py"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Success: no issues found in 1 source file" in checked.stdout


def test_a_list_of_floats_is_refused_by_mypy_only_where_it_should_be(tmp_path):
    host = tmp_path / "host.py"
    host.write_text(
        "from darasa_db.schemas import DocumentCreate\n"
        "DocumentCreate(title='t', content='c', embedding=[0.1] * 1536)\n"
        "DocumentCreate(title='t', content='c', embedding=['not', 'floats'])\n"
    )
    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\nstrict = True\n")

    checked = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(config),
            "--cache-dir",
            str(tmp_path / "cache"),
            str(host),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    errors = [line for line in checked.stdout.splitlines() if ": error:" in line]
    assert errors, checked.stdout
    assert all(line.startswith(f"{host}:3: error:") for line in errors), checked.stdout


def test_the_type_checking_signature_lists_exactly_the_model_fields():
    source = (Path(sys.modules["darasa_db.schemas.document"].__file__ or "")).read_text()
    tree = ast.parse(source)
    model = next(
        node
        for node in tree.body
        if isinstance(node, ast.ClassDef) and node.name == "DocumentCreate"
    )
    stub = next(
        node
        for block in model.body
        if isinstance(block, ast.If)
        for node in block.body
        if isinstance(node, ast.FunctionDef) and node.name == "__init__"
    )
    arguments = stub.args
    with_default = {
        a.arg for a, d in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True) if d
    }

    assert [a.arg for a in arguments.kwonlyargs] == list(DocumentCreate.model_fields)
    assert with_default == {
        name for name, field in DocumentCreate.model_fields.items() if not field.is_required()
    }


def test_the_consumer_builds_documents_from_arrays_lists_and_literals():
    vectors = np.random.default_rng(1).random((3, 1536), dtype=np.float32)

    notes = notes_from_a_model(vectors)
    plain = note_from_floats([0.5] * 1536, {"k": "v"})

    assert [len(stored_embedding(n) or ()) for n in notes] == [1536, 1536, 1536]
    assert stored_embedding(notes[0]) == tuple(float(x) for x in vectors[0])
    assert stored_embedding(plain) == (0.5,) * 1536
    assert stored_embedding(constant_note()) == (0.1,) * 1536
    assert isinstance(embedding_of("x"), np.ndarray)
    assert isinstance(embedding_of(""), list)


@pytest.fixture(params=["darasa_memory_db", "darasa_db"])
def repositories(request):
    """The fakes, or a real `Database`."""
    return request.getfixturevalue(request.param)


async def test_the_consumer_searches_with_a_list_on_fakes_and_postgres(repositories):
    db = repositories
    await db.users.upsert(UserUpsert(id="user_1", email="a@b.co", name="Ada"))
    query = [float(x) for x in embedding_of("query")]

    matches = await search(db.documents, "user_1", query)

    assert [m.document.title for m in matches] == ["note"]
    assert matches[0].similarity == pytest.approx(1.0, abs=1e-5)
