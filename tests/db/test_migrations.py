"""registers.db.migrations: autogenerate coverage per backend, bad input, locks, rollback."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from registers.db import ConfigurationError, MigrationError, migrations
from registers.db.migrations import import_models

from ._project import Project

pytestmark = pytest.mark.slow


class Lab(Project):
    """A project whose model versions are imported in this process (one module per version)."""

    def __init__(self, root: Path, url: str) -> None:
        super().__init__(root, url, package=f"mig_{uuid.uuid4().hex[:10]}")
        self.versions = 0
        self.directory = root / "migrations"

    def version(self, body: str) -> str:
        """Write and import the next models module; returns its name."""
        self.versions += 1
        name = f"models_v{self.versions}"
        header = (
            "from __future__ import annotations\n\n"
            "from pydantic import BaseModel\n\n"
            "from registers.db import database_registry, db_field\n\n"
            f"URL = {self.url!r}\n\n"
        )
        (self.root / self.package / f"{name}.py").write_text(header + body, encoding="utf-8")
        module = f"{self.package}.{name}"
        import_models(module, root=self.root)
        if self.versions == 1:
            migrations.init(module, url=self.url, directory=self.directory, root=self.root)
        return module

    def revision(self, message: str, **kwargs: Any) -> str:
        path = migrations.revision(message, url=self.url, directory=self.directory, **kwargs)
        assert path is not None, "a change was expected"
        return path.read_text(encoding="utf-8")

    def upgrade(self, revision: str = "head") -> list[str]:
        return migrations.upgrade(self.url, revision, directory=self.directory)

    def downgrade(self, revision: str = "-1") -> list[str]:
        return migrations.downgrade(revision, self.url, directory=self.directory)

    def check(self) -> list[str]:
        return migrations.check(self.url, directory=self.directory)

    def cycle(self, body: str, message: str) -> str:
        """Model change -> autogenerate -> upgrade -> in sync -> downgrade -> upgrade."""
        self.version(body)
        script = self.revision(message)
        assert self.upgrade(), script
        assert self.check() == [], script
        self.downgrade()
        assert self.check() != []
        self.upgrade()
        assert self.check() == []
        return script


@pytest.fixture
def lab(database_url: str, tmp_path: Path) -> Lab:
    return Lab(tmp_path / "proj", database_url)


BASE = '''
@database_registry(URL, table_name="owners")
class Owner(BaseModel):
    id: int | None = None
    name: str


@database_registry(URL, table_name="items")
class Item(BaseModel):
    id: int | None = None
    sku: str = db_field(max_length=40)
    qty: int = 0
    note: str | None = None
'''


def _start(lab: Lab, rows: int = 2) -> None:
    lab.version(BASE)
    lab.revision("create")
    lab.upgrade()
    assert lab.check() == []
    lab.execute("INSERT INTO owners (name) VALUES ('Ann')")
    for n in range(rows):
        lab.execute("INSERT INTO items (sku, qty, note) VALUES (:s, :q, NULL)", s=f"s{n}", q=n)


# --- autogenerate: what it covers, on every backend ---------------------------------------


def test_new_not_null_field_with_a_default_is_back_filled(lab: Lab) -> None:
    _start(lab)
    script = lab.cycle(BASE + "    unit: str = 'pcs'\n    active: bool = True\n"
                              "    weight: float = 1.5\n", "add unit")
    assert "server_default=None" in script  # the DEFAULT is dropped again after the fill
    rows = lab.execute("SELECT sku, unit, active, weight FROM items ORDER BY sku")
    assert [(r[0], r[1], bool(r[2]), r[3]) for r in rows] == [
        ("s0", "pcs", True, 1.5), ("s1", "pcs", True, 1.5)]
    column = lab.columns("items")["unit"]
    assert column["nullable"] is False
    assert column.get("default") is None, "no DEFAULT left behind: the table matches the model"


def test_a_quote_in_the_default_is_a_literal_not_sql(lab: Lab) -> None:
    _start(lab)
    lab.cycle(BASE + "    unit: str = \"it's; DROP TABLE owners\"\n", "add unit")
    assert {r[0] for r in lab.execute("SELECT unit FROM items")} == {"it's; DROP TABLE owners"}
    assert "owners" in lab.tables()


def test_column_becoming_not_null_gets_its_default_in_null_rows(lab: Lab) -> None:
    _start(lab)
    script = lab.cycle(BASE.replace("note: str | None = None", "note: str = '-'"), "note")
    assert "UPDATE" in script
    assert {r[0] for r in lab.execute("SELECT note FROM items")} == {"-"}
    assert lab.columns("items")["note"]["nullable"] is False


def test_dropped_field_drops_the_column_and_downgrade_restores_it(lab: Lab) -> None:
    _start(lab)
    script = lab.cycle(BASE.replace("    note: str | None = None\n", ""), "drop note")
    assert re.search(r"drop_column\((?:'items', )?'note'\)", script)
    assert "note" not in lab.columns("items")


def test_type_change_is_detected_and_keeps_the_data(lab: Lab) -> None:
    _start(lab)
    script = lab.cycle(BASE.replace("qty: int = 0", "qty: float = 0"), "qty float")
    assert re.search(r"alter_column\((?:'items', )?'qty'", script) and "type_=" in script
    assert sorted(float(r[0]) for r in lab.execute("SELECT qty FROM items")) == [0.0, 1.0]


def test_unique_and_index_and_foreign_key_are_detected(lab: Lab) -> None:
    _start(lab)
    body = BASE.replace(
        'sku: str = db_field(max_length=40)', 'sku: str = db_field(max_length=40, unique=True)'
    ).replace(
        "qty: int = 0",
        "qty: int = db_field(default=0, index=True)\n"
        "    owner_id: int | None = db_field(default=None, foreign_key='owners.id')",
    )
    script = lab.cycle(body, "constraints")
    assert "create_unique_constraint('uq_items_sku'" in script
    assert "create_index" in script and "create_foreign_key('fk_items_owner_id'" in script
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        lab.execute("INSERT INTO items (sku, qty) VALUES ('s0', 9)")


CONSTRAINED = '''
@database_registry(URL, table_name="owners")
class Owner(BaseModel):
    id: int | None = None
    name: str


@database_registry(URL, table_name="items"{options})
class Item(BaseModel):
    id: int | None = None
    sku: str = db_field(max_length=40)
    qty: int = {qty}
    note: str | None = None
    first: str = db_field(default="", max_length=40)
    last: str = db_field(default="", max_length=40)
    owner_id: int | None = {owner}
'''


def test_composite_unique_composite_index_check_and_on_delete_are_detected(lab: Lab) -> None:
    plain = CONSTRAINED.format(options="", qty="0",
                               owner="db_field(default=None, foreign_key='owners.id')")
    lab.version(plain)
    lab.revision("create")
    lab.upgrade()
    lab.execute("INSERT INTO owners (name) VALUES ('Ann')")
    lab.execute("INSERT INTO items (sku, qty, first, last, owner_id) VALUES ('a', 1, 'x', 'y', 1)")
    declared = CONSTRAINED.format(
        options=', unique_fields=[("sku", "owner_id")], indexes=[("last", "first")]',
        qty='db_field(default=0, check="qty >= 0")',
        owner="db_field(default=None, foreign_key='owners.id', on_delete='cascade')",
    )
    script = lab.cycle(declared, "declared constraints")
    assert "create_unique_constraint" in script and "'sku', 'owner_id'" in script
    assert "create_index" in script and "'last', 'first'" in script
    assert "create_check_constraint" in script and "qty >= 0" in script
    assert "ondelete='CASCADE'" in script
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        lab.execute("INSERT INTO items (sku, qty, first, last, owner_id) "
                    "VALUES ('a', 2, '', '', 1)")
    with pytest.raises(Exception, match=r"(?i)check|constraint"):
        lab.execute("INSERT INTO items (sku, qty, first, last, owner_id) "
                    "VALUES ('b', -1, '', '', 1)")
    lab.execute("DELETE FROM owners")
    assert lab.execute("SELECT sku FROM items") == [], "ON DELETE CASCADE applied"
    # and back: the plain model again drops what was declared
    lab.cycle(plain, "undeclare")


def test_new_table_and_dropped_table(lab: Lab) -> None:
    _start(lab)
    body = BASE + '''

@database_registry(URL, table_name="tags")
class Tag(BaseModel):
    id: int | None = None
    label: str
'''
    script = lab.cycle(body, "tags")
    assert "op.create_table('tags'" in script and "op.drop_table('tags')" in script


def test_rename_is_a_one_line_edit_of_the_generated_script(lab: Lab) -> None:
    _start(lab)
    lab.version(BASE.replace("qty: int = 0", "quantity: int = 0"))
    path = migrations.revision("rename qty", url=lab.url, directory=lab.directory)
    assert path is not None
    text = path.read_text()
    # The documented edit (docs/migrations.md): the add_column/drop_column pair becomes one
    # alter_column line, keeping the type and nullability the add_column line shows.
    upgrade, downgrade = text.split("def downgrade")
    upgrade = _rename_edit(upgrade, "qty", "quantity")
    downgrade = _rename_edit(downgrade, "quantity", "qty")
    path.write_text(upgrade + "def downgrade" + downgrade)
    assert "new_column_name='quantity'" in upgrade and "new_column_name='qty'" in downgrade
    assert "add_column" not in upgrade and "drop_column" not in upgrade
    lab.upgrade()
    assert sorted(r[0] for r in lab.execute("SELECT quantity FROM items")) == [0, 1]
    assert lab.check() == []
    lab.downgrade()
    assert sorted(r[0] for r in lab.execute("SELECT qty FROM items")) == [0, 1]


def _rename_edit(text: str, old: str, new: str) -> str:
    add = re.search(
        rf"\n(\s*)(\w+)\.add_column\((?:'\w+', )?sa\.Column\('{new}', (.+?), "
        rf"(?:autoincrement=\w+, )?nullable=(\w+)\)\)", text)
    assert add, text
    indent, target, type_, nullable = add.groups()
    table = "" if target == "batch_op" else "'items', "
    line = (f"{target}.alter_column({table}'{old}', new_column_name='{new}', "
            f"existing_type={type_}, existing_nullable={nullable})")
    text = text.replace(add.group(0), "")
    drop = re.search(rf"\n\s*\w+\.drop_column\((?:'\w+', )?'{old}'\)", text)
    assert drop, text
    return text.replace(drop.group(0), f"\n{indent}{line}")


def test_no_change_writes_no_script_unless_asked(lab: Lab) -> None:
    _start(lab)
    before = lab.scripts()
    assert migrations.revision("nothing", url=lab.url, directory=lab.directory) is None
    assert lab.scripts() == before
    path = migrations.revision("data fix", url=lab.url, directory=lab.directory, empty=True)
    assert path is not None and "pass" in path.read_text()


def test_unchanged_models_give_no_difference_after_a_fresh_upgrade(lab: Lab) -> None:
    body = BASE + '''

@database_registry(URL, table_name="everything")
class Everything(BaseModel):
    id: int | None = None
    text: str
    short: str = db_field(max_length=20, unique=True)
    flag: bool = False
    number: float = 0.5
    count: int | None = db_field(default=None, index=True)
    owner_id: int = db_field(foreign_key="owners.id")
'''
    lab.version(body)
    lab.revision("create")
    lab.upgrade()
    assert lab.check() == []
    assert migrations.revision("again", url=lab.url, directory=lab.directory) is None


EVERY_KIND = '''
import datetime as dt
import uuid
from decimal import Decimal

from pydantic import Field, NaiveDatetime, SecretBytes


@database_registry(URL, table_name="kinds", unique_fields=[("code", "day")])
class Kinds(BaseModel):
    id: int | None = None
    text: str
    code: str = db_field(max_length=30, index=True)
    price: Decimal
    amount: Decimal | None = Field(default=None, max_digits=8, decimal_places=3)
    at: dt.datetime
    naive: NaiveDatetime | None = None
    clock: dt.time
    day: dt.date
    blob: bytes
    secret: SecretBytes | None = None
    meta: dict[str, int] = {}
    token: uuid.UUID
'''


def test_a_generated_script_with_every_column_type_runs_and_matches(lab: Lab) -> None:
    lab.version(EVERY_KIND)
    script = lab.revision("create")
    # registers' own types are written with their module, and the script imports it.
    assert "registers.db.column_types.ExactLongText()" in script
    assert "registers.db.column_types.ExactVarchar(length=30)" in script
    assert "registers.db.column_types.PreciseDateTime()" in script
    assert "registers.db.column_types.BinaryJSON()" in script
    assert "import registers.db.column_types" in script
    assert "sqlalchemy.dialects" not in script
    assert "typing_utils" not in script
    offline = migrations.sql(url=lab.url, directory=lab.directory)
    assert "CREATE TABLE kinds" in offline
    lab.upgrade()
    assert lab.check() == []
    assert migrations.revision("again", url=lab.url, directory=lab.directory) is None


def test_scripts_written_by_registers_2_1_still_run(lab: Lab) -> None:
    # 2.1 wrote registers.db.typing_utils.ExactVarchar / ExactLongText (MySQL types then)
    # and the dialects' own types (mysql.DATETIME(fsp=6), postgresql.JSONB()...).
    lab.version(EVERY_KIND)
    lab.revision("create")
    path = lab.scripts()[-1]
    old = {
        "registers.db.column_types.ExactLongText()": "registers.db.typing_utils.ExactLongText()",
        "registers.db.column_types.ExactVarchar(length=30)":
            "registers.db.typing_utils.ExactVarchar(length=30)",
        "registers.db.column_types.PreciseDateTime()": "mysql.DATETIME(fsp=6)",
        "registers.db.column_types.PreciseTime()": "mysql.TIME(fsp=6)",
        "registers.db.column_types.LongBinary()": "mysql.LONGBLOB()",
        "registers.db.column_types.BinaryJSON()": "postgresql.JSONB(astext_type=sa.Text())",
        "sa.DECIMAL(": "mysql.DECIMAL(",
        "import registers.db.column_types": "import registers.db.typing_utils\n"
                                            "from sqlalchemy.dialects import mysql, postgresql",
    }
    text = path.read_text(encoding="utf-8")
    for new, was in old.items():
        assert new in text, new
        text = text.replace(new, was)
    path.write_text(text, encoding="utf-8")
    lab.upgrade()
    assert lab.check() == []


# --- the documented programmatic twins ---------------------------------------------------


def test_history_and_current(lab: Lab) -> None:
    _start(lab)
    lab.version(BASE + "    unit: str = 'pcs'\n")
    lab.revision("add unit")
    lab.upgrade()
    items = migrations.history(directory=lab.directory)
    assert [i.message for i in items] == ["add unit", "create"]
    assert items[0].is_head and not items[1].is_head
    assert items[0].down_revision == (items[1].revision,)
    assert migrations.current(lab.url, directory=lab.directory) == [items[0].revision]
    lab.downgrade("base")
    assert migrations.current(lab.url, directory=lab.directory) == []
    assert lab.tables() <= {"alembic_version"}


def test_upgrade_to_a_revision_then_the_rest(lab: Lab) -> None:
    _start(lab)
    lab.version(BASE + "    unit: str = 'pcs'\n")
    lab.revision("add unit")
    first = migrations.history(directory=lab.directory)[-1].revision
    lab.downgrade("base")
    assert lab.upgrade(first[:6]) == [first]  # a unique prefix works
    assert len(lab.upgrade()) == 1


def test_sql_renders_without_a_connection(lab: Lab) -> None:
    lab.version(BASE)
    lab.revision("create")
    text = migrations.sql(url=lab.url, directory=lab.directory)
    assert "CREATE TABLE" in text and "items" in text
    assert lab.tables() == set(), "offline SQL touches no database"


# --- bad input: one line, nothing changed ---------------------------------------------


def _snapshot(lab: Lab) -> tuple[Any, ...]:
    tables = sorted(lab.tables())
    version = lab.execute("SELECT version_num FROM alembic_version") \
        if "alembic_version" in tables else []
    return tuple(tables), tuple(version), tuple(sorted(lab.columns("items"))) \
        if "items" in tables else ()


def test_database_ahead_of_the_scripts(lab: Lab) -> None:
    _start(lab)
    lab.execute("UPDATE alembic_version SET version_num = 'f00dfeedbeef'")
    before = _snapshot(lab)
    for call in (lab.upgrade, lab.check, lambda: lab.revision("x"),
                 lambda: migrations.current(lab.url, directory=lab.directory)):
        with pytest.raises(MigrationError, match=r"'f00dfeedbeef'.*ahead") as info:
            call()
        assert "\n" not in str(info.value)
    assert _snapshot(lab) == before


def test_two_heads(lab: Lab) -> None:
    _start(lab)
    (script,) = lab.scripts()
    text = script.read_text()
    lab.version(BASE + "    unit: str = 'pcs'\n")
    lab.revision("add unit")
    second = lab.scripts()[-1]
    rival = second.with_name("0000rival_rival.py")
    rival.write_text(re.sub(r"^revision: str = '\w+'", "revision: str = '0000rival'",
                            second.read_text(), flags=re.M))
    del text
    before = _snapshot(lab)
    for call in (lab.upgrade, lab.check, lambda: lab.revision("x")):
        with pytest.raises(MigrationError, match="2 heads") as info:
            call()
        assert "\n" not in str(info.value)
    assert _snapshot(lab) == before


def test_url_with_no_models(lab: Lab, tmp_path: Path) -> None:
    _start(lab)
    other = f"sqlite:///{tmp_path / 'other.db'}"
    with pytest.raises(ConfigurationError, match="no model is registered for") as info:
        migrations.upgrade(other, directory=lab.directory)
    assert "models are registered for" in str(info.value)
    assert not (tmp_path / "other.db").exists()


def test_no_migrations_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="registers db init"):
        migrations.upgrade("sqlite://", directory=tmp_path / "nowhere")


def test_unimportable_and_failing_models_modules(lab: Lab, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot import models module 'no_such_mod'"):
        import_models("no_such_mod")
    (tmp_path / "broken_models_x1.py").write_text("import no_such_dependency_x1\n")
    with pytest.raises(ConfigurationError, match=r"failed to import.*no_such_dependency_x1"):
        import_models("broken_models_x1", root=tmp_path)
    (tmp_path / "raising_models_x1.py").write_text("raise ValueError('bad config')\n")
    with pytest.raises(ConfigurationError, match="ValueError: bad config"):
        import_models("raising_models_x1", root=tmp_path)
    with pytest.raises(ConfigurationError, match="no models module"):
        import_models(" , ")


def test_init_refuses_a_folder_that_is_not_empty_and_writes_nothing_on_bad_input(
    tmp_path: Path,
) -> None:
    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations" / "x").write_text("")
    with pytest.raises(ConfigurationError, match="not empty"):
        migrations.init("anything", directory=tmp_path / "migrations")
    with pytest.raises(ConfigurationError, match="cannot import"):
        migrations.init("no_such_models_mod", directory=tmp_path / "m2", root=tmp_path)
    assert not (tmp_path / "m2").exists()


def test_failing_migration_changes_nothing_where_ddl_is_transactional(lab: Lab) -> None:
    if lab.url.startswith("mysql"):
        pytest.skip("MariaDB commits each DDL statement (documented)")
    _start(lab)
    before = _snapshot(lab)
    path = migrations.revision("bad", url=lab.url, directory=lab.directory, empty=True)
    assert path is not None
    text = re.sub(
        r"def upgrade\(\) -> None:\n.*?\n\n\ndef downgrade",
        "def upgrade() -> None:\n"
        "    op.create_table('half', sa.Column('id', sa.Integer, primary_key=True))\n"
        "    op.add_column('items', sa.Column('extra', sa.Integer))\n"
        "    op.execute('SELECT * FROM no_such_table_here')\n\n\ndef downgrade",
        path.read_text(), flags=re.S,
    )
    assert "no_such_table_here" in text
    path.write_text(text)
    with pytest.raises(MigrationError, match="no_such_table_here") as info:
        lab.upgrade()
    assert "\n" not in str(info.value)
    assert _snapshot(lab) == before


def test_registers_connection_setup_is_not_used_for_rebuilds_on_sqlite(
    sqlite_url: str, tmp_path: Path
) -> None:
    """A batch rebuild of a parent table must not cascade-delete its children."""
    lab = Lab(tmp_path / "proj", sqlite_url)
    body = '''
@database_registry(URL, table_name="parents")
class Parent(BaseModel):
    id: int | None = None
    name: str


@database_registry(URL, table_name="children")
class Child(BaseModel):
    id: int | None = None
    parent_id: int = db_field(foreign_key="parents.id")
'''
    lab.version(body)
    lab.revision("create")
    lab.upgrade()
    lab.execute("INSERT INTO parents (name) VALUES ('p')")
    lab.execute("INSERT INTO children (parent_id) VALUES (1)")
    lab.version(body.replace("    name: str\n", "    name: str\n    rank: float = 1.0\n"))
    lab.revision("rebuild parents")
    lab.upgrade()
    assert lab.execute("SELECT parent_id FROM children") == [(1,)]


# --- two processes starting together ------------------------------------------------


WORKER = '''
import sys, time
from pathlib import Path
from registers.db import migrations
go = Path(sys.argv[1])
print("ready", flush=True)
while not go.exists():
    time.sleep(0.01)
print("applied", migrations.upgrade(sys.argv[2], directory=sys.argv[3]), flush=True)
'''


def test_two_processes_starting_together_migrate_once(database_url: str, tmp_path: Path) -> None:
    project = Project(tmp_path / "proj", database_url)
    project.models('''
@database_registry(URL, table_name="items")
class Item(BaseModel):
    id: int | None = None
    sku: str
''')
    project.run("db", "init", "--models", project.module, "--url", database_url)
    project.run("db", "revision", "-m", "create")
    (script,) = project.scripts()
    # A slow migration with a side effect that must happen once: without the lock both
    # processes would see an empty database and run it.
    script.write_text(script.read_text().replace(
        "    # ### end Alembic commands ###\n\n\ndef downgrade",
        "    op.create_table('runs', sa.Column('n', sa.Integer))\n"
        "    op.execute('INSERT INTO runs (n) VALUES (1)')\n"
        "    import time; time.sleep(2)\n"
        "    # ### end Alembic commands ###\n\n\ndef downgrade", 1))
    go = tmp_path / "go"
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(go), database_url, str(project.root / "migrations")],
            cwd=project.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=project.env(),
        )
        for _ in range(2)
    ]
    for worker in workers:
        assert worker.stdout is not None
        assert worker.stdout.readline().strip() == "ready"
    go.write_text("")
    results = [worker.communicate(timeout=300) for worker in workers]
    assert [w.returncode for w in workers] == [0, 0], results
    applied = [out.strip().splitlines()[-1] for out, _ in results]
    assert sorted(line == "applied []" for line in applied) == [False, True], applied
    assert any(re.fullmatch(r"applied \['\w+'\]", line) for line in applied), applied
    assert project.execute("SELECT n FROM runs") == [(1,)]


# --- console script: bad input is one line, exit 1 ------------------------------------


def test_console_bad_input_is_one_line_and_exit_1(database_url: str, tmp_path: Path) -> None:
    project = Project(tmp_path / "proj", database_url)
    project.models('''
@database_registry(URL, table_name="items")
class Item(BaseModel):
    id: int | None = None
    sku: str
''')
    cases = [
        (["db", "init", "--models", "app.nope"], "cannot import models module 'app.nope'"),
        (["db", "init"], "--models is required"),
        (["db", "upgrade"], "no migrations in 'migrations'"),
    ]
    for args, expected in cases:
        done = project.run(*args, expect=1)
        assert done.stderr.count("\n") == 1 and expected in done.stderr, (args, done.stderr)
        assert done.stdout == ""
    assert not (project.root / "migrations").exists()
    project.run("db", "init", "--models", project.module)
    other = f"sqlite:///{tmp_path / 'other.db'}"
    done = project.run("db", "upgrade", "--url", other, expect=1)
    assert done.stderr.startswith("registers db upgrade: error: no model is registered for")
    assert done.stderr.count("\n") == 1
    project.run("db", "revision", "-m", "create")
    project.run("db", "upgrade")
    project.execute("UPDATE alembic_version SET version_num = 'abcdef123456'")
    done = project.run("db", "upgrade", expect=1)
    assert "'abcdef123456'" in done.stderr and done.stderr.count("\n") == 1
    done = project.run("db", "revision", expect=1)
    assert "a message is required" in done.stderr


def test_unreachable_server_is_one_line_and_exit_1(tmp_path: Path) -> None:
    # Port 1 on the loopback: nothing listens there.
    project = Project(tmp_path / "proj", "postgresql+psycopg://postgres@127.0.0.1:1/nowhere")
    project.models('''
@database_registry(URL, table_name="items", auto_create=False)
class Item(BaseModel):
    id: int | None = None
    sku: str
''')
    project.run("db", "init", "--models", project.module)
    for command in (["upgrade"], ["revision", "-m", "x"], ["check"], ["current"]):
        done = project.run("db", *command, expect=1)
        assert done.stderr.startswith(f"registers db {command[0]}: error: cannot "), done.stderr
        assert done.stderr.count("\n") == 1, done.stderr
    assert project.scripts() == []
    # offline SQL needs no server
    assert "CREATE" not in project.run("db", "sql").stdout


def test_without_alembic_the_commands_say_how_to_install_it(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['alembic'] = None\n"
        "from registers.__main__ import main\n"
        "main(['db', 'history', '--directory', 'nowhere'])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, env=Project(tmp_path, "sqlite://").env())
    assert done.returncode == 1
    assert done.stderr == ("registers db history: error: migrations need Alembic: "
                           "pip install 'registers[migrations]' (import of alembic halted; "
                           "None in sys.modules)\n")


def test_tables_created_by_auto_create_before_the_first_upgrade(lab: Lab) -> None:
    lab.version(BASE)
    lab.revision("create")
    lab.execute("CREATE TABLE owners (id INTEGER PRIMARY KEY, name TEXT)")
    with pytest.raises(MigrationError, match="auto_create=False") as info:
        lab.upgrade()
    assert "\n" not in str(info.value)
    if not lab.url.startswith("mysql"):  # transactional DDL: nothing else was created
        assert lab.tables() == {"owners"}
