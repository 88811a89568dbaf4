"""One round trip per single statement on the servers (no ping, no BEGIN, no ROLLBACK).

PostgreSQL: libpq's own protocol trace of the thread's connection counts the messages
that end a round trip (``Sync`` of the extended protocol, ``Query`` of the simple one).
MariaDB: the server's per-session ``Questions`` counter counts every statement the
connection sent (the counter query itself is one of them).
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from pydantic import BaseModel

from registers.db import database_registry


def _model(url: str) -> Any:
    @database_registry(url, table_name="trips", unique_fields=["code"])
    class Item(BaseModel):
        id: int | None = None
        code: str | None = None
        name: str

    return Item


# name -> (manager method, args, kwargs); the async test calls the "a" twin of each
CALLS: dict[str, tuple[str, tuple[Any, ...], dict[str, Any]]] = {
    "get by key": ("get", (1,), {}),
    "get by criteria": ("get", (), {"name": "a"}),
    "filter": ("filter", (), {"name__startswith": "a"}),
    "count": ("count", (), {}),
    "exists": ("exists", (), {"code": "A"}),
    "create": ("create", (), {"name": "x"}),
    "upsert existing key": ("upsert", (), {"id": 1, "name": "a2", "code": "A"}),
    "upsert by unique": ("upsert", (), {"code": "B", "name": "b"}),
    "update_where": ("update_where", ({"id": 1},), {"name": "a3"}),
    "update_where on the field it sets": ("update_where", ({"name__in": ["a", "a5"]},),
                                          {"name": "a5"}),
    "delete": ("delete", (999,), {}),
    "delete_where": ("delete_where", (), {"name": "nobody"}),
}


def _call(model: Any, name: str, prefix: str = "") -> Any:
    method, args, kwargs = CALLS[name]
    return getattr(model.objects, prefix + method)(*args, **kwargs)


# MySQL has no UPDATE ... RETURNING: update_where updates and re-reads by the same WHERE in
# a transaction (BEGIN, UPDATE, SELECT, COMMIT); when the WHERE reads a field it sets, it
# locks the keys first and re-reads by key (BEGIN, SELECT ... FOR UPDATE, UPDATE, SELECT,
# COMMIT). Its ON DUPLICATE KEY UPDATE fires on any unique index, so an upsert by key on a
# table with another unique column locks the row and decides (BEGIN, SELECT ... FOR
# UPDATE, UPDATE, COMMIT) rather than risk updating the row that owns the other value.
MYSQL_TRIPS = {"update_where": 4, "update_where on the field it sets": 5,
               "upsert existing key": 4}


@contextmanager
def _pg_trace(conn: Any) -> Iterator[list[int]]:
    """libpq's protocol trace of ``conn`` during the block; afterwards the list holds the
    round trips it shows (``Sync`` of the extended protocol, ``Query`` of the simple one)."""
    counted: list[int] = []
    with tempfile.TemporaryFile("w+") as trace:
        conn.pgconn.trace(trace.fileno())
        try:
            yield counted
        finally:
            conn.pgconn.untrace()
        trace.seek(0)
        lines = [line.split("\t") for line in trace.read().splitlines()]
    counted.append(sum(1 for f in lines
                       if len(f) > 3 and f[1] == "F" and f[3].strip() in ("Sync", "Query")))


def _pg_round_trips(conn: Any, operation: Callable[[], Any]) -> int:
    with _pg_trace(conn) as counted:
        operation()
    return counted[0]


def _mysql_statements(conn: Any, operation: Callable[[], Any]) -> int:
    def questions() -> int:
        cursor = conn.cursor()
        cursor.execute("SHOW SESSION STATUS LIKE 'Questions'")
        return int(cursor.fetchall()[0][1])

    before = questions()
    operation()
    return questions() - before - 1  # the second SHOW counts itself


@pytest.mark.parametrize("name", list(CALLS))
def test_a_single_statement_is_one_round_trip(database_url: str, name: str) -> None:
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite has no round trips")
    Item = _model(database_url)
    Item.objects.create(name="a", code="A")  # opens the thread's connection
    conn = Item.objects.database.autocommit_connection()
    _call(Item, name)  # warm: statement caches, sequences
    if database_url.startswith("postgresql"):
        assert _pg_round_trips(conn, lambda: _call(Item, name)) == 1
    else:
        assert _mysql_statements(conn, lambda: _call(Item, name)) == MYSQL_TRIPS.get(name, 1)


def _mysql_waits(conn: Any, operation: Callable[[], Any]) -> int:
    """How many times PyMySQL waited for the server during ``operation``: a read of an
    answer right after something was sent (answers read back to back are one wait)."""
    waits, sent = [0], [False]
    execute, read = conn._execute_command, conn._read_query_result

    def counted_execute(*args: Any, **kwargs: Any) -> Any:
        sent[0] = True
        return execute(*args, **kwargs)

    def counted_read(*args: Any, **kwargs: Any) -> Any:
        if sent[0]:
            waits[0] += 1
            sent[0] = False
        return read(*args, **kwargs)

    conn._execute_command, conn._read_query_result = counted_execute, counted_read
    try:
        operation()
    finally:
        del conn._execute_command, conn._read_query_result
    return waits[0]


@pytest.mark.parametrize("name", list(MYSQL_TRIPS))
def test_on_mysql_a_transactions_begin_goes_with_its_first_statement(
        database_url: str, name: str) -> None:
    """The writes that need a transaction on MySQL/MariaDB send BEGIN together with their
    first statement (PyMySQL): every statement still runs (the server counts them all),
    in one wait fewer."""
    if not database_url.startswith("mysql"):
        pytest.skip("MySQL's multi-statement writes")
    Item = _model(database_url)
    Item.objects.create(name="a", code="A")
    conn = Item.objects.database.autocommit_connection()
    _call(Item, name)
    assert _mysql_statements(conn, lambda: _call(Item, name)) == MYSQL_TRIPS[name]
    assert _mysql_waits(conn, lambda: _call(Item, name)) == MYSQL_TRIPS[name] - 1


def test_the_thread_connection_is_replaced_after_the_server_dropped_it(database_url: str,
                                                                       raw: Any) -> None:
    """A killed connection: the next read reconnects and answers; nothing is lost."""
    if database_url.startswith("sqlite"):
        pytest.skip("no server connection to kill")
    Item = _model(database_url)
    Item.objects.create(name="a", code="A")
    conn = Item.objects.database.autocommit_connection()
    if database_url.startswith("postgresql"):
        pid = conn.info.backend_pid
        raw.execute(f"SELECT pg_terminate_backend({int(pid)})")
    else:
        raw.execute(f"KILL {int(conn.thread_id())}")
    assert Item.objects.get(1).name == "a"  # a read is sent again on a new connection
    assert Item.objects.database.autocommit_connection() is not conn
    assert Item.objects.create(name="b").id is not None


def test_explicit_keys_move_the_postgresql_sequence_only_when_they_overtake_it(
        database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL sequences")
    Item = _model(database_url)
    Item.objects.upsert(id=50, name="explicit")
    assert Item.objects.create(name="next").id == 51  # never collides with 50
    Item.objects.delete(51)
    assert Item.objects.create(name="again").id == 52  # a deleted key is not reused
    conn = Item.objects.database.autocommit_connection()
    assert _pg_round_trips(conn, lambda: Item.objects.upsert(id=10, name="below")) == 1
    assert _pg_round_trips(conn, lambda: Item.objects.upsert(id=90, name="above")) == 2
    assert Item.objects.create(name="after").id == 91




# --- async: the direct connection of the running event loop ---------------------------------

def _direct_connection(model: Any) -> Any:
    """The loop's idle direct connection (the one the next statement takes)."""
    from registers.db.async_engine import async_database

    direct = async_database(model.objects.database).direct()
    assert direct is not None and direct._idle, "no direct connection is open"
    assert len(direct._idle) == 1
    return direct._idle[-1].raw


async def _apg_round_trips(conn: Any, operation: Callable[[], Awaitable[Any]]) -> int:
    with _pg_trace(conn) as counted:
        await operation()
    return counted[0]


async def _amysql_statements(conn: Any, operation: Callable[[], Awaitable[Any]]) -> int:
    async def questions() -> int:
        cursor = await conn.cursor()
        await cursor.execute("SHOW SESSION STATUS LIKE 'Questions'")
        return int((await cursor.fetchall())[0][1])

    before = await questions()
    await operation()
    return await questions() - before - 1  # the second SHOW counts itself


@pytest.mark.parametrize("name", list(CALLS))
async def test_a_single_async_statement_is_one_round_trip(database_url: str, name: str) -> None:
    """No pool checkout ping, no BEGIN, no reset-on-return ROLLBACK: what the sync thread
    connection does, per event loop."""
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite has no round trips")
    Item = _model(database_url)
    await Item.objects.acreate(name="a", code="A")  # opens the loop's connection
    await _call(Item, name, "a")  # warm: statement caches, sequences
    conn = _direct_connection(Item)
    if database_url.startswith("postgresql"):
        assert await _apg_round_trips(conn, lambda: _call(Item, name, "a")) == 1
    else:
        expected = MYSQL_TRIPS.get(name, 1)
        assert await _amysql_statements(conn, lambda: _call(Item, name, "a")) == expected
    await Item.objects.adispose()


async def test_the_loop_connection_is_replaced_after_the_server_dropped_it(
        database_url: str, raw: Any) -> None:
    """A killed direct connection: the next read is sent again on a new one; a write on a
    killed connection is never resent (it may have been applied) but fails cleanly."""
    if database_url.startswith("sqlite"):
        pytest.skip("no server connection to kill")
    from registers.db import DatabaseUnavailableError

    Item = _model(database_url)
    await Item.objects.acreate(name="a", code="A")

    def kill(conn: Any) -> None:
        if database_url.startswith("postgresql"):
            raw.execute(f"SELECT pg_terminate_backend({int(conn.info.backend_pid)})")
        else:
            raw.execute(f"KILL {int(conn.server_thread_id[0])}")

    conn = _direct_connection(Item)
    kill(conn)
    assert (await Item.objects.aget(1)).name == "a"
    assert _direct_connection(Item) is not conn
    kill(_direct_connection(Item))
    with pytest.raises(DatabaseUnavailableError):
        await Item.objects.acreate(name="maybe")
    assert (await Item.objects.acreate(name="b")).id is not None  # a new connection serves
    assert {i.name for i in await Item.objects.aall()} >= {"a", "b"}
    await Item.objects.adispose()


async def test_concurrent_tasks_each_get_a_connection_bounded_by_the_pool_size(
        database_url: str) -> None:
    """Tasks of one loop never share a server connection mid-statement, and no more than
    pool_size + max_overflow are open at once."""
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite shares one reader and one writer")
    from registers.db import configure_database
    from registers.db.async_engine import async_database

    Item = _model(database_url)
    configure_database(Item.objects.database.key, pool_size=2, max_overflow=1)
    await Item.objects.acreate(name="a", code="A")
    results = await asyncio.gather(*[Item.objects.acreate(name=f"n{i}") for i in range(40)],
                                   *[Item.objects.acount() for _ in range(40)])
    assert len({r.id for r in results[:40]}) == 40
    assert await Item.objects.acount() == 41
    direct = async_database(Item.objects.database).direct()
    assert direct is not None and 1 <= len(direct._idle) <= 3
    await Item.objects.adispose()
