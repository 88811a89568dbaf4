"""configure_database: one place per database for timeouts, pool size and SQLite durability."""

from __future__ import annotations

import math
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import BaseModel

from registers.db import (
    ConfigurationError,
    DatabaseError,
    DatabaseOptions,
    DatabaseUnavailableError,
    RegistryError,
    configure_database,
    database_registry,
    dispose_engine,
    get_database,
)
from registers.db.async_engine import async_database
from registers.db.connect import DEFAULT_OPTIONS

SLACK = 4.0  # a bound on waiting, not a speed measurement: a loaded CI machine


class Note(BaseModel):
    id: int | None = None
    text: str


def _register(url: str, **options: Any) -> Any:
    return database_registry(url, table_name="notes", **options)(
        type("Note", (Note,), {"__module__": __name__})
    )


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    path = tmp_path / "app.db"
    url = f"sqlite:///{path}"
    yield url, path
    dispose_engine(url)


# --- validation -----------------------------------------------------------------------


def test_defaults_are_bounded() -> None:
    options = DatabaseOptions()
    assert options.connect_timeout == 10
    assert options.pool_timeout == 10
    assert options.read_timeout == 120
    assert options.statement_timeout is None
    assert options.busy_timeout == 30
    assert (options.pool_size, options.max_overflow) == (10, 20)
    assert options.sqlite_synchronous == "normal"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("connect_timeout", 0), ("connect_timeout", -1), ("connect_timeout", math.inf),
        ("connect_timeout", math.nan), ("connect_timeout", None), ("connect_timeout", "5"),
        ("connect_timeout", True), ("pool_timeout", 0), ("read_timeout", 0),
        ("read_timeout", -5), ("statement_timeout", 0), ("statement_timeout", math.inf),
        ("pool_size", 0), ("pool_size", 2.5), ("pool_size", True), ("max_overflow", -1),
    ],
)
def test_out_of_range_server_options_are_refused(name: str, value: Any) -> None:
    with pytest.raises(ConfigurationError, match=name):
        configure_database("postgresql+psycopg://u@127.0.0.1:1/db", **{name: value})


@pytest.mark.parametrize(
    ("name", "value"),
    [("busy_timeout", -1), ("busy_timeout", math.nan), ("sqlite_synchronous", "off"),
     ("sqlite_synchronous", "FULL "), ("sqlite_synchronous", None)],
)
def test_out_of_range_sqlite_options_are_refused(name: str, value: Any, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=name):
        configure_database(str(tmp_path / "x.db"), **{name: value})


def test_read_timeout_must_outlast_statement_timeout() -> None:
    with pytest.raises(ConfigurationError, match=r"read_timeout .* statement_timeout"):
        configure_database("mysql+pymysql://u@127.0.0.1:1/db", statement_timeout=30,
                           read_timeout=30)


@pytest.mark.parametrize("option", ["pool_size", "pool_timeout", "statement_timeout",
                                    "read_timeout", "connect_timeout", "max_overflow"])
def test_server_options_do_not_apply_to_sqlite(option: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=f"{option} does not apply to SQLite"):
        configure_database(f"sqlite:///{tmp_path / 'x.db'}", **{option: 3})


@pytest.mark.parametrize("option", [{"busy_timeout": 1}, {"sqlite_synchronous": "full"}])
def test_sqlite_options_do_not_apply_to_servers(option: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="does not apply to a server database"):
        configure_database("postgresql+psycopg://u@127.0.0.1:1/db", **option)


def test_configure_returns_the_options_and_a_refused_call_changes_nothing(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    options = configure_database(url, busy_timeout=2)
    assert options == DatabaseOptions(busy_timeout=2)
    with pytest.raises(ConfigurationError):
        configure_database(url, busy_timeout=-2)
    assert get_database(url).options.busy_timeout == 2
    dispose_engine(url)


def test_a_bare_path_and_its_url_share_the_options(tmp_path: Path) -> None:
    path = tmp_path / "y.db"
    configure_database(str(path), sqlite_synchronous="full")
    assert get_database(f"sqlite:///{path}").options.sqlite_synchronous == "full"
    dispose_engine(str(path))


# --- SQLite durability: synchronous ----------------------------------------------------


def _pragma(conn: Any, name: str) -> Any:
    return conn.execute(f"PRAGMA {name}").fetchone()[0]


@pytest.mark.parametrize(("setting", "expected"), [("normal", 1), ("full", 2)])
def test_sqlite_synchronous_on_a_real_connection(sqlite_file: tuple[str, Path],
                                                 setting: str, expected: int) -> None:
    url, _ = sqlite_file
    configure_database(url, sqlite_synchronous=setting)  # type: ignore[arg-type]
    model = _register(url)
    model.objects.create(text="a")
    db = get_database(url)
    assert _pragma(db._local.holder.connection, "synchronous") == expected
    assert _pragma(db._local.holder.connection, "journal_mode") == "wal"
    with model.objects.transaction() as conn:  # the engine's connections too
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == expected


def test_switching_to_full_after_registration_reopens_connections(
    sqlite_file: tuple[str, Path],
) -> None:
    url, _ = sqlite_file
    model = _register(url)
    model.objects.create(text="a")
    assert _pragma(get_database(url)._local.holder.connection, "synchronous") == 1
    configure_database(url, sqlite_synchronous="full")
    model.objects.create(text="b")
    assert _pragma(get_database(url)._local.holder.connection, "synchronous") == 2
    assert [n.text for n in model.objects.all()] == ["a", "b"]


@pytest.mark.parametrize(("setting", "expected"), [("normal", 1), ("full", 2)])
async def test_async_sqlite_synchronous_on_a_real_connection(
    sqlite_file: tuple[str, Path], setting: str, expected: int
) -> None:
    url, _ = sqlite_file
    configure_database(url, sqlite_synchronous=setting)  # type: ignore[arg-type]
    model = _register(url)
    await model.objects.acreate(text="a")
    async with model.objects.atransaction() as conn:  # SQLAlchemy's async engine
        assert (await conn.exec_driver_sql("PRAGMA synchronous")).scalar() == expected
    direct = async_database(get_database(url)).direct()  # the direct aiosqlite path
    assert direct is not None
    fast = await direct.take(write=True)
    assert fast is not None
    rows = await fast.raw.execute_fetchall("PRAGMA synchronous")
    assert next(iter(rows))[0] == expected
    await model.objects.adispose()


# --- SQLite: the lock wait is bounded and named ------------------------------------------


@pytest.fixture
def locked(sqlite_file: tuple[str, Path]) -> Iterator[tuple[Any, str]]:
    """A model on a file another connection holds the write lock of."""
    url, path = sqlite_file
    configure_database(url, busy_timeout=0.5)
    model = _register(url)
    model.objects.create(text="acked")
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        yield model, url
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_a_transaction_that_cannot_get_the_lock_says_it_failed_entering(
    locked: tuple[Any, str],
) -> None:
    model, _ = locked
    entered = []
    started = time.monotonic()
    with pytest.raises(DatabaseError) as info, model.objects.transaction():
        entered.append(True)
    elapsed = time.monotonic() - started
    assert not entered
    message = str(info.value)
    assert "cannot begin a transaction" in message
    assert "commit" not in message
    assert "database is locked" in message and "busy_timeout=0.5s" in message
    assert not isinstance(info.value, DatabaseUnavailableError)
    assert isinstance(info.value.__cause__, (sqlite3.OperationalError, sa.exc.OperationalError))
    assert elapsed < 0.5 + SLACK


async def test_an_async_transaction_that_cannot_get_the_lock_says_it_failed_entering(
    locked: tuple[Any, str],
) -> None:
    model, _ = locked
    with pytest.raises(DatabaseError, match="cannot begin a transaction") as info:
        async with model.objects.atransaction():
            pass
    assert "commit" not in str(info.value)
    await model.objects.adispose()


WRITES = {
    "create": lambda M: M.objects.create(text="lost"),
    "update_where": lambda M: M.objects.update_where({"id": 1}, text="lost"),
    "bulk_create": lambda M: M.objects.bulk_create([{"text": "lost"}] * 3),
    "delete": lambda M: M.objects.delete(1),
}
AWRITES = {
    "acreate": lambda M: M.objects.acreate(text="lost"),
    "aupdate_where": lambda M: M.objects.aupdate_where({"id": 1}, text="lost"),
    "abulk_create": lambda M: M.objects.abulk_create([{"text": "lost"}] * 3),
    "adelete": lambda M: M.objects.adelete(1),
}


@pytest.mark.parametrize("op", WRITES)
def test_a_write_waits_about_busy_timeout_for_the_lock(locked: tuple[Any, str],
                                                        op: str) -> None:
    """Retries of a busy error stop once busy_timeout has passed (they used to multiply
    the wait: 0.5 s busy timeout, 4 s wait)."""
    model, _ = locked
    started = time.monotonic()
    with pytest.raises(DatabaseError, match="database is locked"):
        WRITES[op](model)
    elapsed = time.monotonic() - started
    assert 0.5 <= elapsed < 2 * 0.5 + 2.0
    assert [n.text for n in model.objects.all()] == ["acked"]  # reads are not blocked


@pytest.mark.parametrize("op", AWRITES)
async def test_an_async_write_waits_about_busy_timeout_for_the_lock(
    locked: tuple[Any, str], op: str
) -> None:
    model, _ = locked
    started = time.monotonic()
    with pytest.raises(DatabaseError, match="database is locked"):
        await AWRITES[op](model)
    elapsed = time.monotonic() - started
    assert 0.5 <= elapsed < 2 * 0.5 + 2.0
    assert [n.text for n in await model.objects.aall()] == ["acked"]
    await model.objects.adispose()


# --- SQLite: the switch to WAL waits for a writer too --------------------------------


@pytest.fixture
def journal_writer(sqlite_file: tuple[str, Path]) -> Iterator[tuple[str, sqlite3.Connection]]:
    """A rollback-journal file (made by another program) whose write lock is held.

    Switching such a file to WAL is refused at once while another connection holds
    its write lock, whatever the busy timeout (SQLite does not call its busy handler
    there); processes opening a new file together meet exactly that.
    """
    url, path = sqlite_file
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text VARCHAR NOT NULL)")
    other.execute("INSERT INTO notes (text) VALUES ('acked')")
    other.execute("BEGIN IMMEDIATE")
    try:
        yield url, other
    finally:
        if other.in_transaction:
            other.execute("ROLLBACK")
        other.close()


def _release_later(connection: sqlite3.Connection, seconds: float) -> threading.Timer:
    timer = threading.Timer(seconds, connection.execute, args=("ROLLBACK",))
    timer.start()
    return timer


def _journal_mode(url: str) -> str:
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0])


def test_the_first_connection_waits_for_a_writer_to_switch_to_wal(
    journal_writer: tuple[str, sqlite3.Connection],
) -> None:
    url, other = journal_writer
    model = _register(url)
    timer = _release_later(other, 0.3)
    assert [n.text for n in model.objects.all()] == ["acked"]
    timer.join()
    assert _journal_mode(url) == "wal"


async def test_the_first_async_connection_waits_for_a_writer_to_switch_to_wal(
    journal_writer: tuple[str, sqlite3.Connection],
) -> None:
    url, other = journal_writer
    model = _register(url, auto_create=False)  # the async connection is the first one
    timer = _release_later(other, 0.3)
    assert [n.text for n in await model.objects.aall()] == ["acked"]
    timer.join()
    assert _journal_mode(url) == "wal"
    await model.objects.adispose()


async def test_the_async_fast_paths_own_connection_waits_for_the_switch_too(
    journal_writer: tuple[str, sqlite3.Connection],
) -> None:
    from registers.db.async_direct import _open_sqlite

    url, other = journal_writer
    timer = _release_later(other, 0.3)
    conn = await _open_sqlite(get_database(url))
    try:
        assert await (await conn.execute("SELECT text FROM notes")).fetchall() == [("acked",)]
    finally:
        await conn.close()
    timer.join()
    assert _journal_mode(url) == "wal"


def test_a_writer_that_keeps_the_lock_fails_the_open_after_busy_timeout(
    journal_writer: tuple[str, sqlite3.Connection],
) -> None:
    url, _ = journal_writer
    configure_database(url, busy_timeout=0.5)
    model = _register(url)
    started = time.monotonic()
    with pytest.raises(ConfigurationError, match="cannot open SQLite database") as info:
        model.objects.count()
    elapsed = time.monotonic() - started
    assert "database is locked" in str(info.value)
    assert 0.5 <= elapsed < 0.5 + SLACK
    assert _journal_mode(url) == "delete"  # nothing half-done to the file


# --- SQLite URL options ----------------------------------------------------------------


def test_read_only_uri_reads_and_refuses_writes(sqlite_file: tuple[str, Path]) -> None:
    url, path = sqlite_file
    writer = _register(url)
    writer.objects.create(text="kept")
    dispose_engine(url)
    ro_url = f"sqlite:///{path}?mode=ro&uri=true"
    reader = _register(ro_url)
    try:
        assert [n.text for n in reader.objects.all()] == ["kept"]
        assert reader.objects.count() == 1
        for write in (lambda: reader.objects.create(text="x"),
                      lambda: reader.objects.update_where({"id": 1}, text="x"),
                      lambda: reader.objects.delete(1),
                      lambda: reader.objects.bulk_create([{"text": "x"}])):
            with pytest.raises(DatabaseError, match="opened read-only"):
                write()
        with pytest.raises(DatabaseError, match="opened read-only"), \
                reader.objects.transaction():
            reader.objects.create(text="x")
    finally:
        dispose_engine(ro_url)
    assert [n.text for n in writer.objects.all()] == ["kept"]


async def test_async_read_only_uri_reads_and_refuses_writes(
    sqlite_file: tuple[str, Path],
) -> None:
    url, path = sqlite_file
    writer = _register(url)
    writer.objects.create(text="kept")
    dispose_engine(url)
    ro_url = f"sqlite:///{path}?mode=ro&uri=true"
    reader = _register(ro_url)
    try:
        assert [n.text for n in await reader.objects.aall()] == ["kept"]
        with pytest.raises(DatabaseError, match="opened read-only"):
            await reader.objects.acreate(text="x")
        with pytest.raises(DatabaseError, match="opened read-only"):
            await reader.objects.aupdate_where({"id": 1}, text="x")
    finally:
        await reader.objects.adispose()
        dispose_engine(ro_url)
    assert writer.objects.count() == 1


def test_read_only_uri_of_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'missing.db'}?mode=ro&uri=true"
    model = _register(url)  # decorating opens nothing
    assert not (tmp_path / "missing.db").exists()
    with pytest.raises(RegistryError, match="unable to open database file"):
        model.objects.count()
    assert not (tmp_path / "missing.db").exists()
    dispose_engine(url)


def test_uri_options_reach_sqlite(sqlite_file: tuple[str, Path]) -> None:
    url, path = sqlite_file
    _register(url).objects.create(text="a")
    target, uri = get_database(f"sqlite:///{path}?mode=ro&uri=true").sqlite_target()
    assert uri and target == f"file:{path}?mode=ro"
    assert get_database(url).sqlite_target() == (str(path), False)
    dispose_engine(f"sqlite:///{path}?mode=ro&uri=true")


def test_defaults_unchanged_for_unconfigured_urls(tmp_path: Path) -> None:
    assert get_database(f"sqlite:///{tmp_path / 'z.db'}").options == DEFAULT_OPTIONS
    dispose_engine(f"sqlite:///{tmp_path / 'z.db'}")


@pytest.mark.parametrize(
    ("url", "module", "install"),
    [("postgresql+pg8000://u@127.0.0.1:1/db", "pg8000",
      "pip install pg8000, or use postgresql+psycopg:// with pip install 'registers[postgres]'"),
     ("mysql+mysqlconnector://u@127.0.0.1:1/db", "mysql.connector",
      "pip install mysql-connector-python, or use mysql+pymysql:// with "
      "pip install 'registers[mysql]'"),
     # mysql:// is MySQLdb, which the mysql extra does not install
     ("mysql://u@127.0.0.1:1/db", "MySQLdb",
      "pip install mysqlclient, or use mysql+pymysql:// with pip install 'registers[mysql]'")],
)
def test_a_missing_driver_is_refused_when_the_model_is_decorated(
    url: str, module: str, install: str
) -> None:
    """The engine is made on first use, but a driver that is not installed is still an error
    at decoration (looked for, not imported), naming the URL's driver and what installs it."""
    try:
        __import__(module)
    except ImportError:
        pass
    else:
        pytest.skip(f"{module} is installed here")
    driver = sa.make_url(url).get_dialect().driver
    expected = (f"the driver for '{url.split(':')[0]}' ({driver}) is not installed: "
                f"{install} (No module named '{module}')")
    with pytest.raises(ConfigurationError, match=f"^{re.escape(expected)}$"):
        _register(url)


def test_decorating_a_server_model_makes_no_engine_until_first_use() -> None:
    """Decoration neither connects nor imports the driver: the engine is made by the first
    statement (here refused by a closed port, as a DatabaseUnavailableError)."""
    url = "postgresql+psycopg://u@127.0.0.1:1/db_lazy_engine"
    configure_database(url, connect_timeout=1)
    model = _register(url)
    database = get_database(url)
    assert not database.made_engine()
    with pytest.raises(DatabaseUnavailableError):
        model.objects.count()
    assert database.made_engine()
    dispose_engine(url)


def test_concurrent_first_uses_make_one_engine(database_url: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Threads that all use a new database at once share the one engine made by the first
    of them (on every backend), and every one of them gets its answer."""
    def models(auto_create: bool) -> list[Any]:
        # a model (a table) per thread, on tables made by hand: nothing is pending, so no
        # table creation orders the first uses
        return [database_registry(database_url, table_name=f"first_use_{i}",
                                  auto_create=auto_create)(
            type("Note", (Note,), {"__module__": __name__})) for i in range(8)]

    private = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    metadata = sa.MetaData()
    for i in range(8):
        sa.Table(f"first_use_{i}", metadata, sa.Column("id", sa.Integer, primary_key=True),
                 sa.Column("text", sa.String(100), nullable=False))
    with private.begin() as connection:
        metadata.create_all(connection)
        for table in metadata.sorted_tables:
            connection.execute(table.insert(), [{"text": "x"}])
    private.dispose()
    registered = models(auto_create=False)
    database = get_database(database_url)
    assert not database.made_engine()
    made: list[Any] = []
    create = type(database)._create_engine

    def counted(self: Any) -> Any:
        time.sleep(0.05)  # widen the window in which the others look for the engine
        engine = create(self)
        made.append(engine)
        return engine

    monkeypatch.setattr(type(database), "_create_engine", counted)
    start = threading.Barrier(8)
    counts: list[int] = []
    errors: list[BaseException] = []

    def first_use(model: Any) -> None:
        start.wait()
        try:
            counts.append(model.objects.count())
        except BaseException as exc:  # a failure in a thread would otherwise vanish
            errors.append(exc)

    threads = [threading.Thread(target=first_use, args=(m,)) for m in registered]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(SLACK * 5)
    assert errors == []
    assert counts == [1] * 8
    assert len(made) == 1 and database.engine is made[0]
