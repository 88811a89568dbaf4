"""``iterate()`` while its next page is already on the way. On MySQL/MariaDB (PyMySQL) the
pages after the first run on a stream connection of their own, each sent before the page
before it is handed out (registers.db.pipeline); on PostgreSQL through a server-side
cursor; on SQLite page by page. What a user relies on is the same on every backend, and
these tests hold each to it: every row once and in order whatever the loop body does on
the same thread meanwhile (writes, other iterations, leaving early, dropping the
iterator), with threads, after the stream's connection is killed, and with statement
listeners seeing every statement."""

from __future__ import annotations

import contextlib
import gc
import os
import threading
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import BaseModel

from registers.db import SchemaError, database_registry

ROWS = 57  # 5 full pages of 11 and a short one: several pages in flight
PAGE = 11


class Row(BaseModel):
    id: int | None = None
    n: int
    note: str = ""


@pytest.fixture
def Rows(database_url: str) -> Any:
    model = database_registry(database_url, table_name="piped")(
        type("Row", (Row,), {"__module__": __name__}))
    model.objects.bulk_create([{"n": i} for i in range(ROWS)])
    return model


def _session_count(url: str) -> int | None:
    """Server sessions on the test database (None on SQLite)."""
    if url.startswith("sqlite"):
        return None
    sql = ("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
           if url.startswith("postgresql") else
           "SELECT count(*) FROM information_schema.processlist WHERE db = DATABASE()")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(sql)).scalar_one())
    finally:
        engine.dispose()


def test_the_loop_body_writes_on_the_same_thread_while_pages_are_in_flight(Rows: Any) -> None:
    seen = []
    for row in Rows.objects.iterate(batch_size=PAGE):
        seen.append(row.n)
        Rows.objects.update_where({"id": row.id}, note=f"seen {row.n}")  # a write
        assert Rows.objects.count(n=row.n) == 1  # a read
        if row.n < 1000 and row.n % 10 == 0:
            Rows.objects.create(n=1000 + row.n)  # its key sorts after every original
    # the original rows once each, in order; rows created meanwhile (keys after every
    # original) come after them, each at most once, if the stream reaches them
    assert seen[:ROWS] == list(range(ROWS))
    assert len(set(seen)) == len(seen) and all(n >= 1000 for n in seen[ROWS:])
    assert all(r.note == f"seen {r.n}" for r in Rows.objects.filter(n__lt=1000))
    assert Rows.objects.count(n__gte=1000) == 6


def test_iterations_nested_and_interleaved_each_see_every_row(Rows: Any) -> None:
    outer = Rows.objects.iterate(batch_size=PAGE)
    other = Rows.objects.iterate(batch_size=PAGE + 2, order_by="-n")
    pairs = []
    for a in outer:
        b = next(other, None)
        pairs.append((a.n, None if b is None else b.n))
        if a.n == 20:
            assert [r.n for r in Rows.objects.iterate(batch_size=3)] == list(range(ROWS))
    assert [a for a, _ in pairs] == list(range(ROWS))
    assert [b for _, b in pairs] == list(reversed(range(ROWS)))


def test_leaving_early_or_dropping_the_iterator_leaves_nothing_behind(
        Rows: Any, database_url: str) -> None:
    """A loop left in the middle of a page (its successor sent and never read), an
    iterator dropped unfinished, and one closed: the statements after them get their
    own answers, and the server's sessions do not grow with every left stream."""
    list(Rows.objects.iterate(batch_size=PAGE))  # the stream connection exists now
    sessions = _session_count(database_url)
    for cut in range(1, 40, 3):
        for row in Rows.objects.iterate(batch_size=PAGE):
            if row.n == cut:
                break
        assert Rows.objects.count() == ROWS
        dropped = Rows.objects.iterate(batch_size=PAGE)
        assert [next(dropped).n for _ in range(cut)] == list(range(cut))
        del dropped
        gc.collect()
        closed = Rows.objects.iterate(batch_size=PAGE)
        next(closed)
        closed.close()
        assert [r.n for r in Rows.objects.filter(n__lt=3)] == [0, 1, 2]
    assert [r.n for r in Rows.objects.iterate(batch_size=PAGE)] == list(range(ROWS))
    if sessions is not None:
        assert _session_count(database_url) <= sessions + 1


def test_threads_iterating_at_once_each_get_every_row(Rows: Any) -> None:
    results: dict[int, list[int]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def work(i: int) -> None:
        try:
            start.wait()
            got: list[int] = []
            for _ in range(5):
                got = [r.n for r in Rows.objects.iterate(batch_size=PAGE - i)]
                assert got == list(range(ROWS))
            results[i] = got
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert sorted(results) == [0, 1, 2, 3]


def _server_session(conn: Any) -> int:
    """The server's id of a DBAPI connection (psycopg: backend PID; PyMySQL: thread id)."""
    info = getattr(conn, "info", None)
    return int(info.backend_pid) if info is not None else int(conn.thread_id())


def test_a_stream_whose_connections_are_killed_mid_way_still_gives_every_row_once(
        Rows: Any, database_url: str, count_statements: Any) -> None:
    """The server kills the stream's sessions between two pages (the thread's, and on
    MySQL the stream connection): the iteration carries on after the last row it handed
    out, on new connections. Only this stream's sessions are killed, never another
    test's on the same database."""
    if database_url.startswith("sqlite"):
        pytest.skip("no server sessions to kill")
    kill = "SELECT pg_terminate_backend(:id)" if database_url.startswith("postgresql") \
        else "KILL :id"
    seen = []
    killed: set[int] = set()
    with count_statements(database_url) as log:
        for row in Rows.objects.iterate(batch_size=PAGE):
            seen.append(row.n)
            if row.n in (15, 40):
                sessions = {_server_session(c) for c in log.connections}
                assert sessions - killed, "the stream's sessions were seen"
                engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
                with engine.connect() as conn:
                    for session in sessions - killed:
                        with contextlib.suppress(sa.exc.DBAPIError):  # ended meanwhile
                            conn.execute(sa.text(kill), {"id": session})
                engine.dispose()
                killed |= sessions
    assert seen == list(range(ROWS))
    assert Rows.objects.count() == ROWS
    now = Rows.objects.rows("SELECT pg_backend_pid()" if database_url.startswith("postgresql")
                            else "SELECT CONNECTION_ID()")[0][0]
    assert now not in killed  # the kills did end the sessions: the thread reconnected


def test_statement_listeners_see_every_page(Rows: Any, database_url: str,
                                           count_statements: Any) -> None:
    with count_statements(database_url) as log:
        assert [r.n for r in Rows.objects.iterate(batch_size=PAGE)] == list(range(ROWS))
    selects = log.matching("SELECT")
    if database_url.startswith("postgresql"):
        assert len(selects) == 2  # the first page, then one cursor for the rest
    else:
        assert len(selects) == ROWS // PAGE + 1  # a page each (the last one short)


def test_on_mysql_the_next_page_is_on_its_way_before_a_page_is_handed_out(
        Rows: Any, database_url: str, count_statements: Any) -> None:
    """The order of what happens: on MySQL/MariaDB the query of page 3 goes out before the
    first row of page 2 is handed out, and pages 2 onwards run on a connection that is
    not the thread's; elsewhere each page is asked for once the one before is used up."""
    events: list[tuple[str, Any]] = []
    with count_statements(database_url) as log:
        for row in Rows.objects.iterate(batch_size=PAGE):
            events.append(("row", row.n))
            events.append(("selects so far", len(log.matching("SELECT"))))
    selects_when = dict((n, sent) for (_, n), (_, sent) in zip(events[::2], events[1::2]))
    if database_url.startswith("mysql"):
        assert selects_when[PAGE] == 3  # page 3 sent before page 2's first row
        assert selects_when[2 * PAGE] == 4
        thread, stream = log.connections[0], log.connections[1]
        assert stream is not thread and set(log.connections[1:]) == {stream}
    elif database_url.startswith("postgresql"):
        assert selects_when[PAGE] == 2  # one cursor for the rest
    else:
        assert selects_when[PAGE] == 2 and selects_when[2 * PAGE] == 3


def test_a_table_dropped_mid_stream_is_a_schema_error_and_the_next_one_works(
        Rows: Any, database_url: str) -> None:
    stream = Rows.objects.iterate(batch_size=PAGE)
    assert [next(stream).n for _ in range(PAGE + 1)] == list(range(PAGE + 1))
    engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE piped"))
    engine.dispose()
    if database_url.startswith("postgresql"):
        # the rest comes through a WITH HOLD cursor, whose rows PostgreSQL copied when
        # its statement committed: the stream ends as it began
        assert [r.n for r in stream] == list(range(PAGE + 1, ROWS))
    else:
        with pytest.raises(SchemaError):
            for _ in stream:
                pass
    Rows.objects.create_schema()
    assert Rows.objects.count() == 0
    Rows.objects.create(n=1)
    assert [r.n for r in Rows.objects.iterate(batch_size=PAGE)] == [1]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_iterates_on_connections_of_its_own(Rows: Any) -> None:
    assert [r.n for r in Rows.objects.iterate(batch_size=PAGE)] == list(range(ROWS))
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        status = 1
        try:
            ok = [r.n for r in Rows.objects.iterate(batch_size=PAGE)] == list(range(ROWS))
            status = 0 if ok else 2
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # the parent's idle stream connection (if any) still works
    assert [r.n for r in Rows.objects.iterate(batch_size=PAGE)] == list(range(ROWS))
