"""``registers db``: the real console script, end to end, on a fresh project per backend."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from ._project import REGISTERS, Project

pytestmark = pytest.mark.slow

V1 = '''
@database_registry(URL, table_name="authors", auto_create=False)
class Author(BaseModel):
    id: int | None = None
    name: str


@database_registry(URL, table_name="books", unique_fields=["isbn"])
class Book(BaseModel):
    id: int | None = None
    title: str
    isbn: str
    author_id: int = db_field(foreign_key="authors.id")
'''

# A new NOT NULL field with a default, a new nullable field, an index.
V2 = V1.replace(
    "    author_id: int = db_field(foreign_key=\"authors.id\")\n",
    "    author_id: int = db_field(foreign_key=\"authors.id\")\n"
    "    unit: str = \"pcs\"\n"
    "    pages: int | None = db_field(default=None, index=True)\n",
)


@pytest.fixture
def project(database_url: str, tmp_path: Path) -> Project:
    return Project(tmp_path / "proj", database_url)


def test_the_console_script_is_installed() -> None:
    assert REGISTERS.exists(), "pip install -e . installs the `registers` console script"


def test_fresh_project_init_revision_upgrade_change_downgrade_check(project: Project) -> None:
    project.models(V1)

    out = project.run("db", "init", "--models", project.module)
    assert "wrote" in out.stdout
    folder = project.root / "migrations"
    assert {p.name for p in folder.iterdir()} >= {"alembic.ini", "env.py", "script.py.mako",
                                                 "versions"}
    assert project.tables() == set(), "importing the models must not create tables"

    missing = project.run("db", "check", expect=1)
    assert "add table authors" in missing.stdout and "add table books" in missing.stdout
    assert missing.stderr.strip().endswith("difference(s) between the models and the database")

    project.run("db", "revision", "-m", "create tables")
    (first,) = project.scripts()
    text = first.read_text()
    assert "op.create_table('authors'" in text and "op.create_table('books'" in text
    assert project.tables() == set(), "revision writes a script, not tables"

    out = project.run("db", "upgrade")
    assert out.stdout.startswith("applied 1 script(s)")
    assert {"authors", "books", "alembic_version"} <= project.tables()
    project.run("db", "check")
    project.execute("INSERT INTO authors (name) VALUES ('Ann')")
    project.execute("INSERT INTO books (title, isbn, author_id) VALUES ('A', '1', 1)")

    project.models(V2)
    assert "add column books.unit" in project.run("db", "check", expect=1).stdout
    project.run("db", "revision", "-m", "add unit and pages")
    second = project.scripts()[-1]
    assert "add_column" in second.read_text() and "'pcs'" in second.read_text()
    project.run("db", "upgrade")
    assert project.execute("SELECT unit, pages FROM books") == [("pcs", None)]
    assert not project.columns("books")["unit"]["nullable"]
    project.run("db", "check")

    current = project.run("db", "current").stdout.split()
    assert current[0] == re.search(r"^revision: str = '(\w+)'", second.read_text(), re.M)[1]
    assert "(head)" in current
    history = project.run("db", "history").stdout.splitlines()
    assert len(history) == 2 and "(head), add unit and pages" in history[0]

    out = project.run("db", "downgrade", "-1")
    assert out.stdout.startswith("reverted 1 script(s)")
    assert "unit" not in project.columns("books")
    assert project.execute("SELECT title FROM books") == [("A",)], "rows survive a downgrade"
    behind = project.run("db", "check", expect=1)
    assert "not at the newest script" in behind.stdout

    project.run("db", "upgrade")
    project.run("db", "check")
    assert project.run("db", "upgrade").stdout.strip() == "already up to date"

    # Offline SQL: on SQLite only changes made in place render (a table rebuild reflects
    # the live table), so the first script there; everything on the servers.
    first_id = re.search(r"^revision: str = '(\w+)'", first.read_text(), re.M)[1]
    target = first_id if project.url.startswith("sqlite") else "head"
    sql = project.run("db", "sql", target).stdout
    assert "CREATE TABLE" in sql and "alembic_version" in sql
    if target == "head":
        assert "pcs" in sql


def test_python_dash_m_registers_is_the_same_program(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "registers", "db", "--help"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0
    for command in ("init", "revision", "upgrade", "downgrade", "current", "history", "check",
                    "sql"):
        assert f"  {command} " in done.stdout
