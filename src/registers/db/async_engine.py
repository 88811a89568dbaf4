"""Async connections: the async side of one :class:`~registers.db.engine.Database`.

One SQLAlchemy :class:`~sqlalchemy.ext.asyncio.AsyncEngine` per database URL and event
loop, whose driver uses the sync driver's parameter style, so every statement the
manager builds runs unchanged:

==============================================  ==============================
sync URL                                        async driver
==============================================  ==============================
``sqlite:///file.db``                           ``sqlite+aiosqlite``
``postgresql://``, ``postgresql+psycopg://``    ``postgresql+psycopg`` (async)
``mysql://``, ``mysql+pymysql://``, mariadb     ``+aiomysql``
==============================================  ==============================

SQLite connections get the sync side's pragmas (WAL, ``foreign_keys=ON``, a 30 s busy
timeout). ``sqlite:///:memory:`` is not supported asynchronously: its single in-process
connection belongs to the sync side.

The fast path: a single statement outside ``atransaction()`` (and, on the servers, a write
of several statements) skips the engine's pool and runs on a direct autocommit driver
connection kept per database and event loop (:mod:`registers.db.async_direct`). The
engine path is taken whenever a ``before_cursor_execute`` or ``after_cursor_execute``
listener is registered for the async engine (so statement hooks see every statement).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import weakref
from collections.abc import AsyncGenerator, Sequence
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from registers.db.async_direct import (
    DirectConnection,
    DirectConnections,
    ServerConnections,
    SQLiteConnections,
    close_driver_now,
)
from registers.db.connect import on_configure
from registers.db.engine import Database, get_database, install_connect_hooks
from registers.db.exceptions import ConfigurationError
from registers.db.flows import Result
from registers.db.sqlite_setup import configure_sqlite
from registers.db.statements import Described, Statement

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

__all__ = [
    "AsyncDatabase",
    "AsyncTransaction",
    "adispose_all",
    "aexecute",
    "async_database",
    "async_url",
    "get_async_engine",
]

# sync driver name -> async driver with the same parameter style ('?' or '%s')
_ASYNC_DRIVERS = {
    ("sqlite", "pysqlite"): "aiosqlite",
    ("postgresql", "psycopg"): "psycopg",
    ("postgresql", "psycopg2"): "psycopg",
    ("mysql", "pymysql"): "aiomysql",
    ("mysql", "mysqldb"): "aiomysql",
    ("mariadb", "pymysql"): "aiomysql",
    ("mariadb", "mysqldb"): "aiomysql",
}


def async_url(database: Database) -> sa.URL:
    """The async driver URL for ``database`` (same server, same parameter style).

    Raises:
        ConfigurationError: an in-memory SQLite database, or a driver with no async twin.
    """
    url = database.url
    if database.is_memory:
        raise ConfigurationError(
            f"async operations do not support in-memory SQLite ({database.key!r}): its one "
            "shared connection belongs to the sync API; use a SQLite file "
            "(e.g. 'sqlite:///app.db') or a server database"
        )
    backend, driver = url.get_backend_name(), url.get_driver_name()
    async_driver = _ASYNC_DRIVERS.get((backend, driver))
    if async_driver is None:
        raise ConfigurationError(
            f"no async driver for {url.drivername!r}: async operations support sqlite, "
            "postgresql+psycopg and mysql+pymysql URLs"
        )
    return url.set(drivername=f"{backend}+{async_driver}")


_LOADED_DRIVERS: set[str] = set()  # async drivers whose modules are imported


def _import_async_layer(url: sa.URL) -> None:
    """Import SQLAlchemy's asyncio extension and the async driver (about 300 ms cold).

    Run in a worker thread by :meth:`AsyncDatabase.load`; a missing driver is not reported
    here but by :meth:`AsyncDatabase.engine`, with the extra to install.
    """
    with contextlib.suppress(Exception):
        import sqlalchemy.ext.asyncio  # noqa: F401

        url.get_dialect().import_dbapi()


async def aexecute(conn: AsyncConnection | DirectConnection, statement: Statement) -> Result:
    """Send one statement on an async connection (the engine's or a direct one)."""
    if isinstance(conn, DirectConnection):
        return await conn.execute(statement)
    sql, params, many = statement
    args = [tuple(row) for row in params] if many else tuple(params)
    result = await conn.exec_driver_sql(sql, args)
    rows = list(result.fetchall()) if result.returns_rows else []
    try:
        lastrowid = result.lastrowid
    except Exception:  # drivers without lastrowid (psycopg)
        lastrowid = None
    columns = list(result.keys()) if type(statement) is Described and result.returns_rows \
        else None
    return Result(rows, result.rowcount, lastrowid, columns)


async def close_quietly(conn: AsyncConnection) -> None:
    """Give a connection back; one a failure broke is discarded, never raised about."""
    try:
        await conn.close()
    except Exception:
        with contextlib.suppress(Exception):
            await conn.invalidate()


class AsyncTransaction:
    """The connection of an ``atransaction()`` block, and a lock serialising its users."""

    __slots__ = ("connection", "lock")

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection
        self.lock = asyncio.Lock()  # tasks spawned inside the block share the connection


class AsyncDatabase:
    """The async side of one :class:`~registers.db.engine.Database`."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.url = async_url(database)
        self.tx: ContextVar[AsyncTransaction | None] = ContextVar(
            f"registers_atx_{id(self)}", default=None
        )
        # What each event loop uses, by loop (several can run at once, one per thread),
        # and the one the last statement used (the lookup of nearly every statement).
        self._sides: dict[asyncio.AbstractEventLoop, LoopSide] = {}
        self._last: LoopSide | None = None
        self._sides_lock = threading.Lock()
        # Whether the async layer is imported; until then callers await load() first.
        self.loaded = "sqlalchemy.ext.asyncio" in sys.modules and self.url.get_driver_name() \
            in _LOADED_DRIVERS

    # The manager reaches the async machinery through this object only, so that
    # `import registers.db` never imports this module (see registers.db.async_ops).
    execute = staticmethod(aexecute)
    release = staticmethod(close_quietly)

    def enter(self, connection: AsyncConnection) -> Token[AsyncTransaction | None]:
        """Make ``connection`` the current task's ``atransaction()`` (undone by
        ``self.tx.reset(token)``)."""
        return self.tx.set(AsyncTransaction(connection))

    async def load(self) -> None:
        """Import SQLAlchemy's asyncio layer and this URL's async driver in a worker thread,
        so the first async call of a process does not block the event loop for the
        ~300 ms the imports take. Callers check :attr:`loaded` first (no await then)."""
        driver = self.url.get_driver_name()
        if driver not in _LOADED_DRIVERS:
            await asyncio.to_thread(_import_async_layer, self.url)
            _LOADED_DRIVERS.add(driver)
        self.loaded = True

    def engine(self) -> AsyncEngine:
        """The async engine of the running event loop (made on its first statement).

        Pooled asyncio connections belong to the loop that opened them, so each loop has
        an engine of its own: a second ``asyncio.run`` gets a fresh one, and loops
        running at once in different threads each keep theirs.
        """
        return self.side().engine

    def side(self) -> LoopSide:
        """The running event loop's engine and fast-path connections."""
        loop = asyncio.get_running_loop()
        last = self._last
        if last is not None and last.loop is loop:
            return last
        side = self._sides.get(loop)
        if side is None:
            with self._sides_lock:
                side = self._sides.get(loop)
                if side is None:
                    self._close_closed_loops()
                    side = LoopSide(loop, self._create_engine())
                    self._sides[loop] = side
        self._last = side
        return side

    def _close_closed_loops(self) -> None:
        """Close, without awaiting, what loops that have been closed left open (an
        ``asyncio.run`` ends without a word to registers): their loop cannot run the
        drivers' own close any more."""
        for loop in [loop for loop in self._sides if loop.is_closed()]:
            self._sides.pop(loop).close_now()

    def _create_engine(self) -> AsyncEngine:
        from sqlalchemy.ext.asyncio import create_async_engine

        driver = self.url.get_driver_name()
        try:
            if self.database.is_sqlite:
                # isolation_level=None: the driver never opens transactions on its own;
                # reads and single statements autocommit, write transactions say
                # BEGIN IMMEDIATE themselves (as the sync side does).
                engine = create_async_engine(
                    self.url,
                    connect_args={
                        "isolation_level": None,
                        "timeout": self.database.options.busy_timeout,
                    },
                )
                sa.event.listen(engine.sync_engine, "connect", self._sqlite_pragmas)
                return engine
            engine = create_async_engine(self.url, **self.database.options.pool_arguments())
            install_connect_hooks(engine.sync_engine, self.database)
            if driver == "aiomysql":
                sa.event.listen(engine.sync_engine, "connect", _aiomysql_bytes)
            return engine
        except ImportError as exc:
            raise ConfigurationError(
                f"async access to {self.database.url.drivername!r} needs {driver!r} and "
                f"greenlet: pip install 'registers[async]' ({exc})"
            ) from exc
        except Exception as exc:
            raise ConfigurationError(
                f"cannot use database URL {self.database.key!r} asynchronously: {exc}"
            ) from exc

    async def prepare(self) -> None:
        """Before the first statement: import the async layer (:meth:`load`), and create
        the tables of models registered since (in a worker thread, with the sync engine:
        the DDL runs once, and never blocks the event loop)."""
        if not self.loaded:
            await self.load()
        if self.database.pending_tables:
            await asyncio.to_thread(self.database.create_pending)

    async def connect(self) -> AsyncConnection:
        if not self.loaded or self.database.pending_tables:
            await self.prepare()
        engine = self.engine()
        try:
            return await engine.connect()
        except Exception as exc:  # refused, timed out, pool exhausted, ...
            raise self.database.connect_error(exc) from exc

    async def cursor_batches(self, tx: AsyncTransaction | None, name: str, sql: str,
                             params: Sequence[Any], batch_size: int,
                             ) -> AsyncGenerator[list[Any] | None, None]:
        """PostgreSQL: the rows of ``sql`` through the server-side cursor ``name``,
        ``batch_size`` a fetch (the rest of an ``aiterate`` after its first page); driver errors
        propagate as they are.

        Outside ``atransaction()`` the cursor is ``WITH HOLD`` on one of this loop's
        direct connections, held until the stream ends; if that connection drops, the
        last item is None (the caller carries on with keyset pages after the last row it
        read). Inside a block, or when a statement listener wants to see the statement,
        it is the block's (or the engine's) connection, the cursor in its transaction.
        """
        direct = self.direct() if tx is None else None
        if direct is not None:
            conn = await direct.take(write=False)
            assert conn is not None  # None is SQLite's answer, and SQLite has no cursor here
            cursor = conn.raw.cursor(name=name, withhold=True)
            try:
                await cursor.execute(sql, params)
                while rows := await cursor.fetchmany(batch_size):
                    yield rows
                await cursor.close()
            except GeneratorExit:  # the loop stopped early: close the cursor, keep the link
                try:
                    await cursor.close()
                except BaseException:
                    direct.drop(conn)
                    raise
                direct.give(conn)
                raise
            except Exception as exc:
                if not self.database.is_disconnect(exc, conn.raw):
                    direct.give(conn)
                    raise
                direct.drop(conn)
            except BaseException:  # cancelled mid-fetch: the connection's state is unknown
                direct.drop(conn)
                raise
            else:
                direct.give(conn)
                return
            yield None
            return
        conn_sa = tx.connection if tx is not None else await self.connect()
        lock: Any = tx.lock if tx is not None else contextlib.nullcontext()
        try:
            raw: Any = (await conn_sa.get_raw_connection()).driver_connection
            cursor = raw.cursor(name=name)
            for listener in self.engine().sync_engine.dispatch.before_cursor_execute:
                listener(raw, cursor, sql, params, None, False)
            try:
                async with lock:
                    await cursor.execute(sql, params)
                while True:
                    async with lock:
                        rows = await cursor.fetchmany(batch_size)
                    if not rows:
                        return
                    yield rows
            finally:
                async with lock:
                    with contextlib.suppress(Exception):
                        await cursor.close()
        finally:
            if tx is None:
                await close_quietly(conn_sa)

    def _sqlite_pragmas(self, dbapi_connection: Any, record: Any) -> None:
        """Every async SQLite connection is set up like the sync ones."""
        db = self.database
        configure_sqlite(dbapi_connection, options=db.options, read_only=db.sqlite_read_only)

    def direct(self) -> DirectConnections | None:
        """The fast path's connections for this loop, or None when statements must go
        through the engine (a statement listener wants to see them)."""
        side = self.side()
        events = side.engine.sync_engine.dispatch
        if events.before_cursor_execute or events.after_cursor_execute:
            return None
        direct = side.direct
        if direct is None:
            if self.database.is_sqlite:
                direct = SQLiteConnections(self.database)
            else:
                direct = ServerConnections(self.database, side.engine)
            side.direct = direct
        return direct

    def retire(self) -> None:
        """Drop every loop's engine and fast-path connections without awaiting (their
        loops may be gone or running in other threads): the next statement of each loop
        makes new ones (configure_database)."""
        with self._sides_lock:
            sides, self._sides, self._last = list(self._sides.values()), {}, None
        for side in sides:
            side.retire()

    def forget_parents_connections(self) -> None:
        """In a forked child: drop the parent's engines, fast-path connections and
        ``atransaction()`` blocks without closing them (closing would end the parent's
        server sessions: psycopg sends Terminate, and aiomysql unregisters the socket
        from the event loop's epoll set, which parent and child share). The child's task
        contexts are copies of the forking task's, so the block variable is replaced."""
        self.tx = ContextVar(f"registers_atx_{id(self)}", default=None)
        self._sides_lock = threading.Lock()  # a thread of the parent's may have held it
        sides, self._sides, self._last = list(self._sides.values()), {}, None
        for side in sides:
            side.abandon()
        # Kept from the garbage collector for the child's life, for the connections a
        # task had checked out at the fork (abandon() reaches only the idle ones).
        _parents_objects.append(sides)

    async def dispose(self) -> None:
        """Close the running loop's connections (awaited), and what closed loops left."""
        loop = asyncio.get_running_loop()
        with self._sides_lock:
            side = self._sides.pop(loop, None)
            if self._last is side:
                self._last = None
            self._close_closed_loops()
        if side is not None:
            await side.close()


class LoopSide:
    """One event loop's part of an :class:`AsyncDatabase`: its engine, its fast-path
    connections, and every driver connection the engine opened (to close them without
    the loop once the loop is closed)."""

    __slots__ = ("direct", "engine", "loop", "opened")

    def __init__(self, loop: asyncio.AbstractEventLoop, engine: AsyncEngine) -> None:
        self.loop = loop
        self.engine = engine
        self.direct: DirectConnections | None = None
        self.opened: weakref.WeakSet[Any] = weakref.WeakSet()
        sa.event.listen(engine.sync_engine, "connect", self._opened)

    def _opened(self, dbapi_connection: Any, record: Any) -> None:
        self.opened.add(record.driver_connection)

    async def close(self) -> None:
        direct, self.direct = self.direct, None
        if direct is not None:
            await direct.close()
        await self.engine.dispose()

    def close_now(self) -> None:
        """The loop is closed: close its connections with the drivers' synchronous parts
        (the pool's too, which would otherwise try to close through the dead loop when
        collected, and print "Event loop is closed")."""
        self.retire()
        for raw in list(self.opened):
            close_driver_now(raw)

    def retire(self) -> None:
        direct, self.direct = self.direct, None
        if direct is not None:
            direct.stop()
        self.engine.sync_engine.dispose(close=False)

    def abandon(self) -> None:
        direct, self.direct = self.direct, None
        if direct is not None:
            direct.abandon()
        self.engine.sync_engine.dispose(close=False)



def _aiomysql_bytes(dbapi_connection: Any, record: Any) -> None:
    """Escape ``bytes`` parameters as PyMySQL does (``X'<hex>'``).

    aiomysql's own escaping of bytes calls a helper PyMySQL >= 1.1 no longer provides
    (``TypeError: 'str' object is not callable``).
    """
    driver = record.driver_connection
    escape = driver.escape

    def escape_bytes_too(obj: Any) -> Any:
        if isinstance(obj, (bytes, bytearray)):
            return f"X'{obj.hex()}'"
        return escape(obj)

    driver.escape = escape_bytes_too


# Every async side made, for adispose_all: at most one per Database, and a Database
# lives as long as the process (engine.get_database keeps one per database and user).
_async_databases: list[AsyncDatabase] = []
_async_lock = threading.Lock()
# In a forked child: the parent's async engines and connections, never finalized here.
_parents_objects: list[Any] = []


def async_database(database: Database) -> AsyncDatabase:
    """The async side of ``database``: made by its first async call, then kept on it
    (``database.async_side``, which the manager reads directly)."""
    adb: AsyncDatabase | None = database.async_side
    if adb is not None:
        return adb
    with _async_lock:
        adb = database.async_side
        if adb is None:
            adb = AsyncDatabase(database)
            _async_databases.append(adb)
            database.async_side = adb
        return adb


def reconfigure(url: str, options: Any = None) -> None:
    """Drop the async engines of ``url`` (configure_database): the next operation of
    each loop opens one with the new options. Pooled connections are left to the garbage
    collector, since their event loop may be gone."""
    for adb in [a for a in _async_databases if a.database.key == url]:
        adb.retire()


async def adispose_all() -> None:
    """Close the pooled async connections of every database (they reopen on next use)."""
    for adb in list(_async_databases):
        await adb.dispose()


def get_async_engine(url: str) -> AsyncEngine:
    """The async SQLAlchemy engine ``registers`` uses for ``url`` on the running loop."""
    from registers.db.typing_utils import normalize_url

    return async_database(get_database(normalize_url(url, ""))).engine()


on_configure(reconfigure)
