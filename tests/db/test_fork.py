"""A forked child (multiprocessing's default on Linux, pre-forking servers) gets its own
connections: it never reuses the parent's, and never closes them."""

from __future__ import annotations

import gc
import os
import traceback
from typing import Any

import pytest
from pydantic import BaseModel

from registers.db import async_engine, database_registry

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def _model(url: str) -> Any:
    @database_registry(url, table_name="forked")
    class Item(BaseModel):
        id: int | None = None
        name: str

    return Item


def _session(url: str, conn: Any) -> Any:
    """What identifies the server session (or SQLite connection) behind ``conn``."""
    if url.startswith("postgresql"):
        return conn.info.backend_pid
    if url.startswith("mysql"):
        cursor = conn.cursor()
        cursor.execute("SELECT CONNECTION_ID()")
        return cursor.fetchall()[0][0]
    return id(conn)


def _servers_only(url: str) -> None:
    if url.startswith("sqlite"):
        # SQLite keeps a process's file locks in memory shared by its connections: a
        # child forked while the parent holds the write lock inherits that record, so
        # none of its connections can write the file (docs/databases.md).
        pytest.skip("SQLite: a child forked inside a write transaction cannot write")


def _in_child(work: Any) -> int:
    """Run ``work`` in a forked child; its exit status (0: it returned True)."""
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        status = 1
        try:
            status = 0 if work() else 2
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_a_forked_child_uses_connections_of_its_own(database_url: str) -> None:
    Item = _model(database_url)
    Item.objects.create(name="parent")
    database = Item.objects.database
    conn = database.autocommit_connection() or database.acquire()[0]
    session = _session(database_url, conn)

    def child() -> bool:
        made = Item.objects.create(name="child")
        names = sorted(i.name for i in Item.objects.filter())
        mine = database.autocommit_connection() or database.acquire()[0]
        gc.collect()  # the parent's connection objects, unreferenced here, are finalized
        return mine is not conn and names == ["child", "parent"] and made.id is not None

    assert _in_child(child) == 0
    # the parent's connection is still open, still the same session, and sees the child's row
    assert (database.autocommit_connection() or database.acquire()[0]) is conn
    assert _session(database_url, conn) == session
    assert sorted(i.name for i in Item.objects.filter()) == ["child", "parent"]
    Item.objects.create(name="parent again")
    assert Item.objects.count() == 3


def test_a_forked_child_inside_a_transaction_block_does_not_share_it(
        database_url: str) -> None:
    """A child forked inside ``transaction()`` starts outside any block: its writes are
    its own, and the parent's block commits or rolls back only its own."""
    _servers_only(database_url)
    Item = _model(database_url)
    Item.objects.create(name="before")
    with pytest.raises(RuntimeError), Item.objects.database.transaction():
        Item.objects.create(name="rolled back")

        def child() -> bool:
            Item.objects.create(name="from the child")
            return True

        assert _in_child(child) == 0
        raise RuntimeError("roll the parent's block back")
    assert sorted(i.name for i in Item.objects.filter()) == ["before", "from the child"]


def test_a_child_that_leaves_the_parents_block_commits_nothing_of_it(
        database_url: str) -> None:
    """``os.fork()`` inside ``transaction()``, and the child runs on to the end of the
    block: neither commits nor rolls back the parent's transaction for it."""
    _servers_only(database_url)
    Item = _model(database_url)
    database = Item.objects.database
    parent = os.getpid()
    pid = 0
    status = 1  # the child's exit status
    try:
        with database.transaction():
            Item.objects.create(name="the parent's")
            pid = os.fork()
            if pid == 0:
                with database.transaction():  # the child's own block, its own connection
                    Item.objects.create(name="the child's")
            # the child runs on and leaves the parent's block here
        status = 0
    except BaseException:
        if os.getpid() == parent:
            raise
        traceback.print_exc()
    finally:
        if os.getpid() != parent:
            os._exit(status)  # never return into pytest
    _, waited = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(waited) == 0
    assert sorted(i.name for i in Item.objects.filter()) == ["the child's", "the parent's"]


def test_a_forked_child_runs_async_operations_on_its_own_connections(
        database_url: str) -> None:
    """A multiprocessing worker forked after the parent used the async API."""
    import asyncio

    Item = _model(database_url)

    async def parent_work() -> int:
        await Item.objects.acreate(name="parent")
        return await Item.objects.acount()

    assert asyncio.run(parent_work()) == 1

    def child() -> bool:
        async def work() -> list[str]:
            await Item.objects.acreate(name="child")
            names = sorted(i.name for i in await Item.objects.afilter())
            await Item.objects.adispose()
            return names

        return asyncio.run(work()) == ["child", "parent"]

    assert _in_child(child) == 0
    assert asyncio.run(parent_work()) == 3  # the child's row and the parent's second


def _session_sql(url: str) -> str:
    if url.startswith("postgresql"):
        return "SELECT pg_backend_pid()"
    if url.startswith("mysql"):
        return "SELECT CONNECTION_ID()"
    return "SELECT 1"  # SQLite has no server session: the rows still have to come back


def test_a_child_forked_from_a_running_loop_leaves_its_async_connections_alone(
        database_url: str) -> None:
    """A worker forked from inside a long-running event loop (a ProcessPoolExecutor's
    first submit, a pre-forking server) and using the async API itself: the parent's
    idle async connection is still the same open session afterwards."""
    import asyncio

    Item = _model(database_url)
    session_sql = _session_sql(database_url)

    async def child_work() -> list[str]:
        await Item.objects.acreate(name="child")
        names = sorted(i.name for i in await Item.objects.afilter())
        await Item.objects.adispose()
        # What the child's interpreter exit does: finalize the parent's connection objects
        # (aiomysql's closes its transport, psycopg's would send Terminate).
        async_engine._parents_objects.clear()
        gc.collect()
        return names

    async def parent() -> None:
        await Item.objects.acreate(name="parent")
        session = await Item.objects.arows(session_sql)
        assert _in_child(lambda: asyncio.run(child_work()) == ["child", "parent"]) == 0
        assert await Item.objects.arows(session_sql) == session  # not reconnected
        await Item.objects.acreate(name="parent again")
        assert await Item.objects.acount() == 3

    asyncio.run(parent())


def test_a_child_forked_inside_atransaction_does_not_share_it(database_url: str) -> None:
    """A child forked inside ``atransaction()`` whose own event loop uses the async API
    starts outside the parent's block (the block's task context is the child's too): its
    writes are its own, and the parent's block rolls back only the parent's."""
    import asyncio

    _servers_only(database_url)
    Item = _model(database_url)

    async def child_work() -> bool:
        await Item.objects.acreate(name="from the child")
        await Item.objects.adispose()
        return True

    async def parent() -> None:
        await Item.objects.acreate(name="before")
        with pytest.raises(RuntimeError):
            async with Item.objects.atransaction():
                await Item.objects.acreate(name="rolled back")
                assert _in_child(lambda: asyncio.run(asyncio.wait_for(child_work(), 30))) == 0
                raise RuntimeError("roll the parent's block back")
        names = sorted(i.name for i in await Item.objects.afilter())
        assert names == ["before", "from the child"]

    asyncio.run(parent())
