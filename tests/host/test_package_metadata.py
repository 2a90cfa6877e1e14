"""Package metadata a package index shows: license, classifiers, URLs, links that resolve."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_the_license_file_is_mit_and_travels_in_the_wheel():
    text = (ROOT / "LICENSE").read_text()

    assert text.startswith("MIT License\n")
    assert "Permission is hereby granted, free of charge" in text
    assert PROJECT["license"] == "MIT"
    assert PROJECT["license-files"] == ["LICENSE"]


def test_each_supported_python_has_a_classifier():
    classifiers = set(PROJECT["classifiers"])
    minimum = re.fullmatch(r">=3\.(\d+)", PROJECT["requires-python"])

    assert minimum is not None
    for minor in range(int(minimum.group(1)), 15):
        assert f"Programming Language :: Python :: 3.{minor}" in classifiers


def test_project_urls_are_absolute():
    urls = PROJECT["urls"]

    assert {"Homepage", "Documentation", "Repository", "Issues", "Changelog"} <= set(urls)
    assert all(url.startswith("https://") for url in urls.values())


def test_readme_links_are_absolute_so_they_work_on_a_package_index():
    readme = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)]+)\)", readme)

    assert targets
    assert all(target.startswith(("https://", "#")) for target in targets), targets


def test_no_pytest_plugin_is_registered_by_installing_the_package():
    assert "pytest11" not in PROJECT.get("entry-points", {})
    conftest = (ROOT / "tests/conftest.py").read_text()
    assert 'pytest_plugins = ["darasa_db.testing.plugin"' in conftest  # activated explicitly
