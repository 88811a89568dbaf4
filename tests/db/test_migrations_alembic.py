"""The hand-wired Alembic path of docs/db.md: its env.py, through real Alembic, per backend.

autogenerate -> upgrade -> model change -> autogenerate -> upgrade -> check, with the page's
``env.py`` verbatim; and the failure it fixes: a plain ``import app.models`` (auto_create)
creates the tables, so the first migration comes out empty.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from ._project import Project

pytestmark = pytest.mark.slow

PAGE = Path(__file__).resolve().parents[2] / "docs" / "db.md"
ALEMBIC = Path(sys.executable).with_name("alembic")

V1 = '''
@database_registry(URL, table_name="authors")
class Author(BaseModel):
    id: int | None = None
    name: str


@database_registry(URL, table_name="books")
class Book(BaseModel):
    id: int | None = None
    title: str
    author_id: int = db_field(foreign_key="authors.id")
'''

V2 = V1 + '''    pages: int | None = db_field(default=None, index=True)


@database_registry(URL, table_name="shelves")
class Shelf(BaseModel):
    id: int | None = None
    label: str = db_field(unique=True, max_length=50)
'''


def documented_env_py() -> str:
    match = re.search(r"^```python env\.py\n(.*?)^```$", PAGE.read_text(), re.M | re.S)
    assert match, "docs/db.md shows a complete env.py"
    return match.group(1)


def _alembic(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(ALEMBIC), "-c", "migrations/alembic.ini", *args],
                          cwd=project.root, capture_output=True, text=True, env=project.env(),
                          timeout=300)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done


def _alembic_project(project: Project, env_py: str) -> None:
    subprocess.run([str(ALEMBIC), "init", "migrations"], cwd=project.root, check=True,
                   capture_output=True, env=project.env())
    ini = project.root / "migrations" / "alembic.ini"
    if not ini.exists():  # older Alembic writes alembic.ini next to the folder
        (project.root / "alembic.ini").rename(ini)
    text = ini.read_text()
    text = re.sub(r"^sqlalchemy\.url = .*$", "sqlalchemy.url = "
                  + project.url.replace("%", "%%"), text, flags=re.M)
    text = re.sub(r"^script_location = .*$", "script_location = %(here)s", text, flags=re.M)
    text = re.sub(r"^prepend_sys_path = .*$", "prepend_sys_path = %(here)s/..", text, flags=re.M)
    ini.write_text(text)
    (project.root / "migrations" / "env.py").write_text(env_py)


@pytest.fixture
def project(database_url: str, tmp_path: Path) -> Project:
    return Project(tmp_path / "proj", database_url)


def test_documented_env_py_cycle(project: Project) -> None:
    project.models(V1)
    _alembic_project(project, documented_env_py())

    _alembic(project, "revision", "--autogenerate", "-m", "create")
    (first,) = project.scripts()
    text = first.read_text()
    assert "op.create_table('authors'" in text and "op.create_table('books'" in text
    assert project.tables() <= {"alembic_version"}, "env.py must not create the tables"
    _alembic(project, "upgrade", "head")
    assert {"authors", "books"} <= project.tables()
    project.execute("INSERT INTO authors (name) VALUES ('Ann')")
    project.execute("INSERT INTO books (title, author_id) VALUES ('A', 1)")
    _alembic(project, "check")

    project.models(V2)
    _alembic(project, "revision", "--autogenerate", "-m", "pages and shelves")
    second = project.scripts()[-1].read_text()
    assert "add_column" in second and "'pages'" in second
    assert "op.create_table('shelves'" in second and "create_index" in second
    if project.url.startswith("sqlite"):
        assert "batch_alter_table('books'" in second
    _alembic(project, "upgrade", "head")
    assert "pages" in project.columns("books")
    assert project.execute("SELECT title, pages FROM books") == [("A", None)]
    assert "No new upgrade operations detected" in _alembic(project, "check").stdout
    _alembic(project, "downgrade", "-1")
    assert "pages" not in project.columns("books") and "shelves" not in project.tables()


def test_without_defer_creation_importing_the_models_still_creates_no_table(
        project: Project) -> None:
    """Tables are created on a model's first use, not at import: an env.py importing the
    models without ``defer_creation()`` no longer gets an empty first migration (registers
    0.1 created the tables at import, behind Alembic's back)."""
    project.models(V1)
    plain = documented_env_py().replace(
        "with defer_creation():  # register the models without creating their tables\n"
        "    import app.models  # noqa: F401\n",
        "import app.models  # noqa: F401\n",
    )
    assert plain != documented_env_py()
    _alembic_project(project, plain)
    _alembic(project, "revision", "--autogenerate", "-m", "create")
    (first,) = project.scripts()
    assert "create_table('authors'" in first.read_text()
    assert not {"authors", "books"} & project.tables()
