"""The kept cursor of a server connection (PostgreSQL, MySQL/MariaDB).

Every single statement on the thread's connection (sync) or on an event loop's direct
connection (async), and every statement of a ``transaction()`` block, is sent on one
cursor instead of a new one each time (a new psycopg cursor costs about 10 us). What
users rely on: every result is still exactly its own statement's, whatever ran before
(an error, a large result, a stream), and a large result is not kept in memory by the
driver after it was read.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel

from registers.db import UniqueConstraintError, database_registry
from registers.db.database import KEPT_RESULT_ROWS

LARGE = KEPT_RESULT_ROWS + 200


def _model(url: str) -> Any:
    if url.startswith("sqlite"):
        pytest.skip("SQLite statements run on the connection itself")

    @database_registry(url, table_name="kept", unique_fields=["code"])
    class Row(BaseModel):
        id: int | None = None
        code: str | None = None
        n: int = 0

    return Row


def _held_rows(cursor: Any) -> int:
    """How many rows of its last result ``cursor`` still holds (the driver's copy)."""
    pgresult = getattr(cursor, "pgresult", None)
    if hasattr(cursor, "pgresult"):  # psycopg
        return 0 if pgresult is None else int(pgresult.ntuples)
    return len(cursor._rows or ())  # PyMySQL / aiomysql


def _thread_cursor(model: Any) -> Any:
    database = model.objects.database
    return database.cursor(database.autocommit_connection())


def test_single_statements_share_the_thread_connections_cursor(database_url: str) -> None:
    Row = _model(database_url)
    first = Row.objects.create(code="a", n=1)
    cursor = _thread_cursor(Row)
    assert Row.objects.get(first.id).n == 1
    assert Row.objects.count() == 1
    Row.objects.upsert(id=first.id, code="a", n=2)
    assert [r.n for r in Row.objects.filter(code="a")] == [2]
    assert _thread_cursor(Row) is cursor


def test_a_failed_statement_leaves_nothing_for_the_next_one(database_url: str) -> None:
    Row = _model(database_url)
    Row.objects.create(code="a", n=1)
    with pytest.raises(UniqueConstraintError):
        Row.objects.create(code="a", n=2)
    assert Row.objects.count() == 1
    assert [(r.code, r.n) for r in Row.objects.filter()] == [("a", 1)]
    with pytest.raises(UniqueConstraintError):
        Row.objects.create(code="a", n=3)
    assert Row.objects.get(code="a").n == 1


def test_a_large_result_is_not_kept_once_read(database_url: str) -> None:
    Row = _model(database_url)
    Row.objects.bulk_create([Row(code=f"c{i}", n=i) for i in range(LARGE)])
    rows = Row.objects.filter()
    assert len(rows) == LARGE
    assert _held_rows(_thread_cursor(Row)) == 0
    updated = Row.objects.update_where({"n__gte": 0}, n=7)  # RETURNING / re-read rows
    assert len(updated) == LARGE and {r.n for r in updated} == {7}
    assert _held_rows(_thread_cursor(Row)) <= KEPT_RESULT_ROWS
    small = Row.objects.filter(n=7, code__in=["c1", "c2"])
    assert sorted(r.code for r in small) == ["c1", "c2"]  # nothing of the large result


def test_iterate_with_statements_in_its_loop_body(database_url: str) -> None:
    """The loop body's statements run on the cursor the pages were read on."""
    Row = _model(database_url)
    Row.objects.bulk_create([Row(code=f"c{i:04}", n=i) for i in range(LARGE)])
    seen = []
    for row in Row.objects.iterate(batch_size=300):
        seen.append(row.n)
        if row.n % 250 == 0:
            assert Row.objects.get(row.id).code == row.code
            assert Row.objects.count(n__lt=row.n) == row.n
    assert seen == list(range(LARGE))


def test_a_transactions_statements_share_one_cursor(database_url: str) -> None:
    Row = _model(database_url)
    Row.objects.create(code="a", n=1)
    database = Row.objects.database
    with database.transaction():
        conn, _ = database.acquire()
        cursor = database.cursor(conn)
        Row.objects.create(code="b", n=2)
        assert Row.objects.count() == 2
        with pytest.raises(UniqueConstraintError):
            Row.objects.create(code="b", n=3)  # its savepoint keeps the block usable
        Row.objects.bulk_create([Row(code=f"c{i}", n=i) for i in range(LARGE)])
        assert len(Row.objects.filter()) == LARGE + 2
        assert database.cursor(conn) is not cursor  # the large result's was closed
        assert _held_rows(database.cursor(conn)) == 0
        assert Row.objects.get(code="b").n == 2
    assert Row.objects.count() == LARGE + 2


# --- async: the loop's direct connection ----------------------------------------------------

def _direct(model: Any) -> Any:
    from registers.db.async_engine import async_database

    direct = async_database(model.objects.database).direct()
    assert direct is not None and len(direct._idle) == 1
    return direct._idle[-1]


async def test_async_statements_share_the_connections_cursor(database_url: str) -> None:
    Row = _model(database_url)
    first = await Row.objects.acreate(code="a", n=1)
    cursor = _direct(Row).cursor
    assert (await Row.objects.aget(first.id)).n == 1
    with pytest.raises(UniqueConstraintError):
        await Row.objects.acreate(code="a", n=2)
    assert await Row.objects.acount() == 1
    await Row.objects.aupsert(id=first.id, code="a", n=2)
    assert [r.n for r in await Row.objects.afilter(code="a")] == [2]
    assert _direct(Row).cursor is cursor
    await Row.objects.adispose()


async def test_an_async_large_result_is_not_kept_once_read(database_url: str) -> None:
    Row = _model(database_url)
    await Row.objects.abulk_create([Row(code=f"c{i}", n=i) for i in range(LARGE)])
    assert len(await Row.objects.afilter()) == LARGE
    assert _held_rows(_direct(Row).cursor) == 0
    small = await Row.objects.afilter(code__in=["c1", "c2"])
    assert sorted(r.code for r in small) == ["c1", "c2"]
    await Row.objects.adispose()


async def test_concurrent_tasks_never_read_each_others_results(database_url: str) -> None:
    """Each task's connection has its own cursor: under contention every result is the
    awaiting task's own."""
    Row = _model(database_url)
    made = await Row.objects.abulk_create([Row(code=f"c{i}", n=i) for i in range(50)])

    async def check(row: Any) -> None:
        for _ in range(5):
            assert (await Row.objects.aget(row.id)).n == row.n
            assert await Row.objects.acount(n__lt=row.n) == row.n

    await asyncio.gather(*(check(row) for row in made))
    await Row.objects.adispose()
