"""SPEC D1/D11: URLs, engines per URL, disposal, SQLite defaults and concurrency."""

import subprocess
import sys
import textwrap
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import BaseModel

from registers.db import database_registry, dispose_all, dispose_engine, get_engine


def _model(url: str | None, table: str, **options: Any) -> Any:
    class Item(BaseModel):
        id: int | None = None
        name: str

    return database_registry(url, table_name=table, **options)(Item)


# ------------------------------------------------------------------------ one engine per URL


def test_get_engine_returns_one_engine_per_url(database_url: str) -> None:
    engine = get_engine(database_url)

    assert isinstance(engine, sa.Engine)
    assert get_engine(database_url) is engine


def test_models_of_one_url_share_the_engine(database_url: str, count_statements: Any) -> None:
    first = _model(database_url, "firsts")
    second = _model(database_url, "seconds")

    with count_statements(database_url) as log:
        first.objects.create(name="a")
        second.objects.create(name="b")

    assert len(log.matching("INSERT")) == 2


def test_different_urls_get_different_engines(tmp_path: Path) -> None:
    a, b = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    try:
        assert get_engine(a) is not get_engine(b)
    finally:
        dispose_engine(a)
        dispose_engine(b)


def test_models_keep_working_after_dispose(database_url: str) -> None:
    Item = _model(database_url, "items")
    Item.objects.create(name="before")

    Item.objects.dispose()
    Item.objects.create(name="after manager dispose")
    dispose_engine(database_url)
    Item.objects.create(name="after dispose_engine")
    dispose_all()

    assert [i.name for i in Item.objects.filter(order_by="id")] == [
        "before",
        "after manager dispose",
        "after dispose_engine",
    ]


def test_statement_listener_sees_manager_statements_after_dispose(
    database_url: str, count_statements: Any
) -> None:
    Item = _model(database_url, "items")
    dispose_engine(database_url)

    with count_statements(database_url) as log:
        Item.objects.create(name="x")

    assert len(log.matching("INSERT")) == 1


def test_dispose_engine_of_an_unknown_url_is_harmless(tmp_path: Path) -> None:
    dispose_engine(f"sqlite:///{tmp_path / 'never-used.db'}")


# ------------------------------------------------------------------------------ SQLite URLs


def test_bare_path_means_a_sqlite_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    Item = _model("app.db", "items")
    try:
        Item.objects.create(name="x")
        assert (tmp_path / "app.db").exists()
        assert get_engine("app.db").dialect.name == "sqlite"
        with sa.create_engine(f"sqlite:///{tmp_path / 'app.db'}").connect() as conn:
            assert conn.execute(sa.text("SELECT name FROM items")).scalar() == "x"
    finally:
        dispose_engine("app.db")


@pytest.mark.parametrize("url", ["app.db", "sqlite:///app.db", "./app.db"])
async def test_a_relative_path_names_the_file_of_the_directory_it_was_declared_in(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, url: str
) -> None:
    declared, later = tmp_path / "declared", tmp_path / "later"
    declared.mkdir()
    later.mkdir()
    monkeypatch.chdir(declared)
    Item = _model(url, "items")  # decorating connects to nothing: no file yet
    assert not (declared / "app.db").exists()
    monkeypatch.chdir(later)  # the first use comes after a chdir()
    try:
        Item.objects.create(name="sync")
        await Item.objects.acreate(name="async")
        assert sorted(i.name for i in Item.objects.all()) == ["async", "sync"]
        assert (declared / "app.db").exists()
        assert list(later.iterdir()) == []  # nothing opened or created here
    finally:
        monkeypatch.chdir(declared)
        dispose_all()


def test_absolute_bare_path_means_a_sqlite_file(tmp_path: Path) -> None:
    path = str(tmp_path / "data.sqlite3")
    Item = _model(path, "items")
    try:
        Item.objects.create(name="x")
        assert Path(path).exists()
    finally:
        dispose_engine(path)


def test_no_url_means_a_sqlite_file_named_after_the_table(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)

    class Widget(BaseModel):
        id: int | None = None
        name: str

    Widget = database_registry()(Widget)
    try:
        Widget.objects.create(name="x")
        assert (tmp_path / "widgets.db").exists()
    finally:
        dispose_all()


def test_no_url_with_explicit_table_name(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    Item = _model(None, "gadgets")
    try:
        Item.objects.create(name="x")
        assert (tmp_path / "gadgets.db").exists()
    finally:
        dispose_all()


def test_memory_database_is_shared_per_url() -> None:
    url = "sqlite:///:memory:"
    suffix = uuid.uuid4().hex[:8]
    first = _model(url, f"mem_a_{suffix}")
    second = _model(url, f"mem_b_{suffix}")
    try:
        first.objects.create(name="a")
        second.objects.create(name="b")
        assert first.objects.count() == 1
        assert second.objects.get(1).name == "b"
        with get_engine(url).connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
        assert {f"mem_a_{suffix}", f"mem_b_{suffix}"} <= tables
    finally:
        first.drop_schema()
        second.drop_schema()


def test_memory_database_is_shared_across_threads() -> None:
    url = "sqlite:///:memory:"
    Item = _model(url, f"mem_{uuid.uuid4().hex[:8]}")
    seen: list[int] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            Item.objects.create(name="from thread")
            seen.append(Item.objects.count())
        except BaseException as exc:
            errors.append(exc)

    try:
        Item.objects.create(name="main")
        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
        assert errors == []
        assert seen == [2]
        assert Item.objects.count() == 2
    finally:
        Item.drop_schema()


# -------------------------------------------------------------------------- SQLite pragmas


def _pragma(url: str, name: str) -> Any:
    with get_engine(url).connect() as conn:
        return conn.exec_driver_sql(f"PRAGMA {name}").scalar()


def test_sqlite_file_uses_wal(sqlite_url: str) -> None:
    _model(sqlite_url, "items").objects.create(name="x")

    assert str(_pragma(sqlite_url, "journal_mode")).lower() == "wal"


def test_sqlite_enforces_foreign_keys(sqlite_url: str) -> None:
    _model(sqlite_url, "items")

    assert _pragma(sqlite_url, "foreign_keys") == 1


def test_sqlite_has_a_busy_timeout(sqlite_url: str) -> None:
    _model(sqlite_url, "items")

    assert _pragma(sqlite_url, "busy_timeout") >= 1000


def test_pragmas_apply_to_every_pooled_connection(sqlite_url: str) -> None:
    _model(sqlite_url, "items")
    engine = get_engine(sqlite_url)
    connections = [engine.connect() for _ in range(3)]
    try:
        for conn in connections:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        for conn in connections:
            conn.close()


# ---------------------------------------------------------------------------- concurrency


def test_many_threads_write_without_losing_rows(database_url: str) -> None:
    Item = _model(database_url, "items")
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(25):
                Item.objects.create(name=f"{n}-{i}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert Item.objects.count() == 200
    assert len({i.name for i in Item.objects.all()}) == 200


def test_many_processes_write_one_sqlite_file(sqlite_url: str) -> None:
    _model(sqlite_url, "items")
    script = textwrap.dedent(
        f"""
        import sys
        from pydantic import BaseModel
        from registers.db import database_registry

        @database_registry({sqlite_url!r}, table_name="items")
        class Item(BaseModel):
            id: int | None = None
            name: str

        for i in range(30):
            Item.objects.create(name=f"{{sys.argv[1]}}-{{i}}")
            Item.objects.count()
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(n)], stderr=subprocess.PIPE, text=True)
        for n in range(4)
    ]
    failures = []
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        if proc.returncode:
            failures.append(err)

    assert failures == []
    with sa.create_engine(sqlite_url).connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM items")).scalar() == 120


# ------------------------------------------------------- every statement reaches the engine

OPERATIONS = {
    "create": lambda M: M.objects.create(name="new"),
    "get": lambda M: M.objects.get(1),
    "get-criteria": lambda M: M.objects.get(name="a"),
    "require": lambda M: M.objects.require(1),
    "filter": lambda M: M.objects.filter(name__startswith="a"),
    "all": lambda M: M.objects.all(),
    "first": lambda M: M.objects.first(),
    "last": lambda M: M.objects.last(),
    "count": lambda M: M.objects.count(),
    "exists": lambda M: M.objects.exists(name="a"),
    "iterate": lambda M: list(M.objects.iterate(batch_size=1)),
    "upsert": lambda M: M.objects.upsert(id=1, name="b"),
    "update_where": lambda M: M.objects.update_where({"id": 1}, name="c"),
    "delete": lambda M: M.objects.delete(1),
    "delete_where": lambda M: M.objects.delete_where(name="a"),
    "bulk_create": lambda M: M.objects.bulk_create([{"name": "x"}]),
    "bulk_upsert": lambda M: M.objects.bulk_upsert([{"id": 1, "name": "y"}]),
    "save": lambda M: M.objects.get(1).save(),
    "refresh": lambda M: M.objects.get(1).refresh(),
    "instance-delete": lambda M: M.objects.get(1).delete(),
    "truncate": lambda M: M.truncate(),
}


@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_statement_listener_sees_every_operation(
    database_url: str, count_statements: Any, operation: str
) -> None:
    Item = _model(database_url, "items")
    Item.objects.create(name="a")

    with count_statements(database_url) as log:
        OPERATIONS[operation](Item)

    assert len(log) >= 1


@pytest.mark.parametrize(
    "operation", ["get", "get-criteria", "require", "filter", "all", "count", "exists", "create"]
)
def test_simple_operations_issue_one_statement(
    database_url: str, count_statements: Any, operation: str
) -> None:
    Item = _model(database_url, "items")
    Item.objects.create(name="a")

    with count_statements(database_url) as log:
        OPERATIONS[operation](Item)

    assert len(log) == 1, log


def test_statement_listener_sees_transaction_operations(
    database_url: str, count_statements: Any
) -> None:
    Item = _model(database_url, "items")

    with count_statements(database_url) as log, Item.objects.transaction():
        Item.objects.create(name="a")
        Item.objects.count()

    assert len(log.matching("INSERT")) == 1
    assert len(log.matching("SELECT")) == 1
