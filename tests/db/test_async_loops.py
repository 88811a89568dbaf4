"""The async API under several event loops: one ``asyncio.run`` after another (a CLI, a
test suite, a sync framework calling into async code), and loops running at once in
different threads. Each loop keeps its own engine and connections while it runs; what a
closed loop left open is closed by the next loop's first statement, quietly."""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import BaseModel

from registers.db import database_registry
from registers.db.aio import get_async_engine


def _model(url: str) -> Any:
    @database_registry(url, table_name="looped")
    class Item(BaseModel):
        id: int | None = None
        name: str

    return Item


def _session_sql(url: str) -> str | None:
    if url.startswith("postgresql"):
        return "SELECT pg_backend_pid()"
    if url.startswith("mysql"):
        return "SELECT CONNECTION_ID()"
    return None  # SQLite: no server session


def _open_sessions(url: str) -> set[int]:
    """The server's sessions on the test database right now (read on a connection of
    this function's own)."""
    if url.startswith("postgresql"):
        sql = "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
    else:
        sql = "SELECT id FROM information_schema.processlist WHERE db = DATABASE()"
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return {int(r[0]) for r in conn.execute(sa.text(sql))}
    finally:
        engine.dispose()


@pytest.fixture
def unraisable() -> Iterator[list[str]]:
    """What finalizers raised meanwhile (printed as "Exception ignored in ..." otherwise)."""
    seen: list[str] = []
    previous = sys.unraisablehook
    sys.unraisablehook = lambda info: seen.append(f"{info.exc_type.__name__}: {info.exc_value}")
    try:
        yield seen
    finally:
        gc.collect()
        sys.unraisablehook = previous


def test_loops_running_at_once_in_two_threads_each_keep_their_engine(
        database_url: str) -> None:
    """Two threads, each in its own ``asyncio.run``, interleaving statements: each loop
    keeps one engine and one server session for all its statements (before, every
    statement from the other loop replaced them: about 9x slower on PostgreSQL)."""
    Item = _model(database_url)
    Item.objects.create(name="seed")
    session_sql = _session_sql(database_url)
    start = threading.Barrier(2)
    found: dict[int, tuple[bool, bool, int]] = {}
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        async def work() -> None:
            engine = get_async_engine(database_url)
            session = await Item.objects.arows(session_sql) if session_sql else None
            await asyncio.to_thread(start.wait)
            for i in range(60):
                await Item.objects.acreate(name=f"{n}-{i}")
                assert await Item.objects.acount() >= i + 1
                await asyncio.sleep(0)  # the other thread's loop runs meanwhile
            same_session = session_sql is None or \
                await Item.objects.arows(session_sql) == session
            found[n] = (get_async_engine(database_url) is engine, same_session,
                        await Item.objects.acount(name__startswith=f"{n}-"))
            await Item.objects.adispose()

        try:
            asyncio.run(work())
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert found == {1: (True, True, 60), 2: (True, True, 60)}
    assert Item.objects.count() == 121


def test_one_asyncio_run_after_another_leaves_nothing_open_or_noisy(
        database_url: str, unraisable: list[str]) -> None:
    """Ten ``asyncio.run`` calls, each writing on the fast path and in ``atransaction()``:
    no finalizer complains about a closed event loop (aiomysql printed "Exception
    ignored ... Event loop is closed" once a run), and the server sessions of a finished
    run are closed by the next run's first statement, not left to the garbage collector."""
    Item = _model(database_url)
    session_sql = _session_sql(database_url)
    sessions: list[int] = []

    async def run(i: int) -> None:
        await Item.objects.acreate(name=f"direct {i}")
        async with Item.objects.atransaction():
            await Item.objects.acreate(name=f"in a block {i}")
            if session_sql:
                sessions.append((await Item.objects.arows(session_sql))[0][0])
        if session_sql:
            sessions.append((await Item.objects.arows(session_sql))[0][0])

    gc.disable()  # nothing may depend on the collector running
    try:
        for i in range(10):
            asyncio.run(run(i))
        assert Item.objects.count() == 20
        if session_sql:
            asyncio.run(Item.objects.acount())  # the last run's sessions are closed now
            left = _open_sessions(database_url) & set(sessions)
            assert not left, f"sessions of finished runs still open: {left}"
    finally:
        gc.enable()
    gc.collect()
    assert unraisable == []


def test_closing_what_a_closed_loop_left_prints_nothing_from_driver_threads(
        database_url: str) -> None:
    """A loop whose only statement is ``adispose()`` closes what the loops before it
    left (aiosqlite's connections among them), then ends at once: no driver thread
    reports an error about the closed loop afterwards."""
    import time

    Item = _model(database_url)
    thread_errors: list[str] = []
    previous = threading.excepthook
    threading.excepthook = lambda args: thread_errors.append(repr(args.exc_value))
    try:
        for i in range(5):
            async def work(i: int = i) -> None:
                async with Item.objects.atransaction():
                    await Item.objects.acreate(name=f"in a block {i}")

            asyncio.run(work())
            asyncio.run(Item.objects.adispose())
        time.sleep(0.2)  # what the drivers' threads still had to say
    finally:
        threading.excepthook = previous
    assert thread_errors == []
    assert Item.objects.count() == 5
