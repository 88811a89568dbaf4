"""The sdist ships what a user needs and nothing else; the wheel holds the package only.

Both are built from this checkout with hatchling (the build backend, in the dev extra).
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _build(target: str, out: Path) -> Path:
    result = subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", target, "-d", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    [built] = out.iterdir()
    return built


@pytest.fixture(scope="module")
def sdist_names(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    archive = _build("sdist", tmp_path_factory.mktemp("sdist"))
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    prefix = names[0].split("/")[0] + "/"
    return {name.removeprefix(prefix) for name in names if name != prefix.rstrip("/")}


def test_sdist_has_the_package_docs_examples_and_metadata(sdist_names: set[str]) -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "src/registers", "docs", "examples/tasks.py",
         "examples/fastapi_app"],
        cwd=ROOT, capture_output=True, text=True,
    ).stdout.split()
    expected = {"pyproject.toml", "README.md", "LICENSE", "CHANGELOG.md", "PKG-INFO",
                "src/registers/py.typed", "src/registers/db/model.py", *tracked}
    assert expected <= sdist_names, sorted(expected - sdist_names)


@pytest.mark.parametrize(
    "prefix",
    ["tests/", "benchmarks/", ".ci/", ".notes/", "examples/design_cli/", ".venv/",
     ".mypy_cache/", ".pytest_cache/"],
)
def test_sdist_leaves_out_what_users_do_not_need(sdist_names: set[str], prefix: str) -> None:
    assert not [name for name in sdist_names if name.startswith(prefix)]


def test_sdist_holds_no_build_or_database_leftovers(sdist_names: set[str]) -> None:
    leftovers = [n for n in sdist_names
                 if n.endswith((".pyc", ".db", ".db-wal", ".db-shm")) or "__pycache__" in n]
    assert leftovers == []
    # Only the package, its docs and examples, and top-level metadata files.
    tops = {name.split("/")[0] for name in sdist_names}
    assert tops <= {"src", "docs", "examples", "pyproject.toml", "README.md", "LICENSE",
                    "CHANGELOG.md", "PKG-INFO", ".gitignore"}


def test_wheel_holds_the_typed_package_only(tmp_path: Path) -> None:
    with zipfile.ZipFile(_build("wheel", tmp_path)) as wheel:
        names = wheel.namelist()
    assert "registers/py.typed" in names and "registers/db/model.py" in names
    tops = {n.split("/")[0] for n in names}
    assert "registers" in tops and len(tops) == 2
    assert next(t for t in tops if t != "registers").endswith(".dist-info")
