"""``iterate()`` on PostgreSQL: the rows after the first page come through one server-side
cursor (issue 14: a keyset page is a fresh query, and without statistics PostgreSQL sorts
the whole table for every page, so streaming cost grew with the square of the rows).

What a user relies on, and what these tests hold it to: every row once, in order (the
property tests of test_iterate_pages.py run the cursor path too: their batches are small);
the loop body may write on the same thread meanwhile and those writes commit as they
happen; inside ``transaction()`` the stream sees the block's own writes; a loop left early
leaves no cursor open; and the statement read is one, however many batches.
"""

from __future__ import annotations

import gc
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import BaseModel

from registers.db import database_registry

from ._helpers import RawSQL

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


class Row(BaseModel):
    id: int | None = None
    n: int


@pytest.fixture
def Rows(database_url: str) -> Any:
    model = database_registry(database_url, table_name="streamed")(
        type("Row", (Row,), {"__module__": __name__}))
    model.objects.bulk_create([{"n": i} for i in range(25)])
    return model


def _open_cursors(Rows: Any) -> int:
    # pg_cursors lists the cursors of the session that asks: the thread's connection
    return int(Rows.objects.rows("SELECT count(*) FROM pg_cursors")[0][0])


def test_the_rest_is_one_statement_whatever_the_batch(Rows: Any, database_url: str,
                                                      count_statements: Any) -> None:
    with count_statements(database_url) as log:
        assert [r.n for r in Rows.objects.iterate(batch_size=2)] == list(range(25))
    first, rest = log.matching("SELECT")
    assert first.endswith("LIMIT 2") and "LIMIT" not in rest, log
    assert _open_cursors(Rows) == 0


def test_one_page_needs_no_cursor(Rows: Any, database_url: str, count_statements: Any) -> None:
    with count_statements(database_url) as log:
        assert len(list(Rows.objects.iterate(batch_size=25))) == 25
        assert len(list(Rows.objects.iterate(batch_size=100))) == 25
    # a full first page may have more behind it: one cursor statement finds out
    assert len(log.matching("SELECT")) == 3


def test_writes_in_the_loop_body_commit_as_they_happen(Rows: Any, raw: RawSQL) -> None:
    seen = []
    for row in Rows.objects.iterate(batch_size=3):
        seen.append(row.n)
        if row.n == 10:  # deep inside the cursor's part of the stream
            Rows.objects.create(n=100)
            Rows.objects.update_where({"n": 0}, n=-1)
            # another connection sees both at once: nothing waits for the loop to end
            with raw.engine.connect() as conn:
                committed = {r[0] for r in conn.exec_driver_sql("SELECT n FROM streamed")}
            assert 100 in committed and -1 in committed and 0 not in committed
    # the stream reads the table as it was when the cursor opened (rows written after that
    # are not streamed): documented in docs/db.md
    assert seen == list(range(25))


def test_inside_a_transaction_the_stream_sees_the_blocks_writes(Rows: Any,
                                                                raw: RawSQL) -> None:
    class Rollback(Exception):
        pass

    with pytest.raises(Rollback), Rows.objects.transaction():
        Rows.objects.create(n=200)
        Rows.objects.delete_where(n=5)
        got = [r.n for r in Rows.objects.iterate(batch_size=4)]
        assert got == [n for n in range(25) if n != 5] + [200]
        raise Rollback
    with raw.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM streamed").scalar() == 25


@pytest.mark.parametrize("leave", ["break", "close", "drop"])
def test_a_loop_left_early_leaves_no_cursor_open(Rows: Any, leave: str) -> None:
    stream = Rows.objects.iterate(batch_size=2)
    assert [next(stream).n for _ in range(7)] == list(range(7))  # into the cursor's part
    assert _open_cursors(Rows) == 1
    if leave == "close":
        stream.close()
    elif leave == "drop":
        del stream
        gc.collect()
    else:
        for row in stream:
            if row.n == 9:
                break
        del stream
    assert _open_cursors(Rows) == 0
    assert Rows.objects.count() == 25  # the connection is still good


def test_two_streams_at_once(Rows: Any) -> None:
    pairs = list(zip(Rows.objects.iterate(batch_size=2),
                     Rows.objects.iterate(batch_size=3, order_by="-n")))
    assert [(a.n, b.n) for a, b in pairs] == [(i, 24 - i) for i in range(25)]


def test_an_error_in_the_stream_is_a_registry_error(Rows: Any, raw: RawSQL) -> None:
    from registers.db import RegistryError

    stream = Rows.objects.iterate(batch_size=2)
    next(stream)
    next(stream)
    with raw.engine.begin() as conn:  # the table goes away under the stream's next query
        conn.exec_driver_sql("DROP TABLE streamed")
    with pytest.raises(RegistryError):
        list(stream)


async def test_aiterate_uses_one_cursor_and_leaves_none_open(Rows: Any,
                                                             database_url: str) -> None:
    got = [r.n async for r in Rows.objects.aiterate(batch_size=2)]
    assert got == list(range(25))
    stream = Rows.objects.aiterate(batch_size=2)
    assert [(await stream.__anext__()).n for _ in range(7)] == list(range(7))
    await stream.aclose()
    assert await Rows.objects.acount() == 25
    # with a statement listener the engine's connection serves it: the same statements
    from registers.db.aio import get_async_engine

    sent: list[str] = []

    def listener(conn: Any, cursor: Any, sql: str, *rest: Any) -> None:
        sent.append(sql)

    engine = get_async_engine(database_url).sync_engine
    sa.event.listen(engine, "before_cursor_execute", listener)
    try:
        assert [r.n async for r in Rows.objects.aiterate(batch_size=2)] == list(range(25))
    finally:
        sa.event.remove(engine, "before_cursor_execute", listener)
    first, rest = [sql for sql in sent if sql.startswith("SELECT")]
    assert first.endswith("LIMIT 2") and "LIMIT" not in rest


async def test_aiterate_inside_atransaction_sees_the_blocks_writes(Rows: Any) -> None:
    async with Rows.objects.atransaction():
        await Rows.objects.acreate(n=300)
        got = [r.n async for r in Rows.objects.aiterate(batch_size=4)]
        # other statements of the block may run between the batches
        assert await Rows.objects.acount() == 26
    assert got == [*range(25), 300]
