"""The documented code type-checks with zero errors under mypy --strict and pyright strict.

Checked (SPEC T1, issue 19): every ``python`` block of README.md and docs/*.md (each page's
blocks joined in order, as the docs tests run them; the separate programs of cli.md and
migrations.md one by one), every file of ``examples/`` except
the design document's verbatim snippets, and ``tests/typing/typed_app.py``, whose
``assert_type`` lines pin the inferred types (``User.objects.get(1)`` is ``User | None``,
...). Both checkers run as a user would: no plugin, strict, Python 3.10 semantics. Their
full output is printed (``pytest -s`` or on failure) so CI shows the zero-error lines.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)

pytestmark = pytest.mark.typecheck


# Pages whose blocks are separate programs, each checked on its own: docs/cli.md's are
# scripts run one by one (tests/cli/test_docs.py); docs/migrations.md's are the files of a
# project, app/models.py before and after a change (tests/db/test_docs_migrations.py).
SEPARATE_BLOCKS = frozenset({"cli.md", "migrations.md"})


def _doc_modules() -> dict[str, str]:
    """One module per page: its python blocks in order (README: one module per block)."""
    modules: dict[str, str] = {}
    readme = FENCE.findall((ROOT / "README.md").read_text(encoding="utf-8"))
    for index, block in enumerate(readme):
        modules[f"readme_{index}.py"] = block
    for page in sorted((ROOT / "docs").glob("*.md")):
        blocks = FENCE.findall(page.read_text(encoding="utf-8"))
        name = page.stem.replace("-", "_").replace(".", "_")
        if page.name in SEPARATE_BLOCKS:
            for index, block in enumerate(blocks):
                modules[f"docs_{name}_{index}.py"] = block
        elif blocks:
            modules[f"docs_{name}.py"] = "\n".join(blocks)
    return modules


def _example_files() -> list[Path]:
    found = sorted((ROOT / "examples").rglob("*.py"))
    return [p for p in found if "design_cli" not in p.parts]


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding everything to check, laid out as a user's project."""
    root = tmp_path_factory.mktemp("typecheck")
    for name, code in _doc_modules().items():
        (root / name).write_text(code, encoding="utf-8")
    for path in _example_files():
        target = root / "examples" / path.relative_to(ROOT / "examples")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    shutil.copy(ROOT / "tests" / "typing" / "typed_app.py", root / "typed_app.py")
    # The cache is kept with the project's own (a cold run analyses pydantic, SQLAlchemy
    # and FastAPI: about a minute on 2 cores; a warm one a few seconds).
    (root / "mypy.ini").write_text(
        "[mypy]\nstrict = True\npython_version = 3.10\nexplicit_package_bases = True\n"
        f"cache_dir = {ROOT / '.mypy_cache' / 'typecheck'}\n"
    )
    (root / "pyrightconfig.json").write_text(json.dumps({
        "typeCheckingMode": "strict",
        "pythonVersion": "3.10",
        "executionEnvironments": [{"root": "examples/fastapi_app"}, {"root": "."}],
    }))
    return root


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.py"))


def test_something_is_checked(sources: Path) -> None:
    files = _files(sources)
    assert "typed_app.py" in files and "readme_1.py" in files
    # every page with python blocks is checked (none left out)
    for page in sorted((ROOT / "docs").glob("*.md")):
        if FENCE.search(page.read_text(encoding="utf-8")):
            name = page.stem.replace("-", "_").replace(".", "_")
            assert any(f.startswith(f"docs_{name}") for f in files), page.name
    assert "examples/tasks.py" in files and "examples/fastapi_app/main.py" in files


def _check(argv: list[str], cwd: Path) -> str:
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=600)
    output = (result.stdout + result.stderr).strip()
    print(f"$ {' '.join(argv[:4])} ...\n{output}")
    assert result.returncode == 0, output
    return output


def test_mypy_strict_reports_no_error(sources: Path) -> None:
    files = _files(sources)
    # The FastAPI example on its own: its main.py imports its sibling "models".
    fastapi = [f for f in files if f.startswith("examples/fastapi_app/")]
    rest = [f for f in files if f not in fastapi]
    out = _check([sys.executable, "-m", "mypy", "--config-file", "mypy.ini", *rest], sources)
    assert re.search(r"^Success: no issues found in \d+ source files$", out, re.M), out
    out = _check(
        [sys.executable, "-m", "mypy", "--config-file", str(sources / "mypy.ini"),
         *[Path(f).name for f in fastapi]],
        sources / "examples" / "fastapi_app",
    )
    assert re.search(r"^Success: no issues found in \d+ source files$", out, re.M), out


def test_pyright_strict_reports_no_error(sources: Path) -> None:
    pyright = shutil.which("pyright") or str(Path(sys.executable).with_name("pyright"))
    out = _check([pyright, "--pythonpath", sys.executable, *_files(sources)], sources)
    assert re.search(r"^0 errors, 0 warnings, 0 informations\s*$", out, re.M), out


def test_the_typed_app_runs(tmp_path: Path) -> None:
    """The assertions above are about code that also works: run it."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "typing" / "typed_app.py")],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
