"""Direct driver connections: the async fast path for statements outside ``atransaction()``.

A single statement needs no pool checkout, no liveness ping, no BEGIN and no
reset-on-return ROLLBACK: it runs on an autocommit driver connection kept per database
and event loop, one round trip (as the sync side's thread connection,
:meth:`registers.db.database.Database.autocommit_connection`).

- SQLite (:class:`SQLiteConnections`): two shared aiosqlite connections, one for reads and
  one for single-statement writes; aiosqlite runs each connection's statements one at a
  time on its thread, and WAL readers never wait for the writer.
- PostgreSQL and MariaDB (:class:`ServerConnections`): psycopg's ``AsyncConnection`` /
  aiomysql connections in autocommit, each used by one task at a time (taken, given back);
  a write of several statements brackets them with ``BEGIN``/``COMMIT`` on its connection.
  They are opened through the async engine (its connect hooks set them up like every other
  connection, and opening one waits on the pool's ``pool_timeout`` when it is exhausted),
  then detached from its pool. At most ``pool_size + max_overflow`` are in use at once;
  one idle for longer than ``IDLE_CHECK_SECONDS`` is pinged before use.

Which async PostgreSQL driver: psycopg's async mode, by measurement
(``benchmarks/async_bench.py`` prints both floors). On a quiet machine raw asyncpg is 1.14x
raw psycopg async for a get by key (1.24x count, 1.16x iterate) and registers on psycopg
reaches 0.82x of the asyncpg floor; psycopg also takes the sync side's ``%s`` statements,
codecs and error classes unchanged, where asyncpg would need every statement renumbered
to ``$n``, its strict parameter types and its own errors at the translation seam.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import socket
import sqlite3
import threading
import time
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from registers.db.database import IDLE_CHECK_SECONDS, KEPT_RESULT_ROWS, Database
from registers.db.flows import Result, returns_rows
from registers.db.sqlite_setup import BusyRetry, sqlite_functions, sqlite_pragmas
from registers.db.statements import Described, Statement

if TYPE_CHECKING:
    import aiosqlite
    from sqlalchemy.ext.asyncio import AsyncEngine

SETTLE_SECONDS = 5.0  # longest a cancelled write is waited for (psycopg's bound)

__all__ = [
    "DirectConnection",
    "DirectConnections",
    "SQLiteConnection",
    "SQLiteConnections",
    "ServerConnection",
    "ServerConnections",
]


class DirectConnection:
    """One autocommit driver connection; :meth:`execute` sends one statement."""

    __slots__ = ("raw", "used")

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.used = time.monotonic()

    async def execute(self, statement: Statement) -> Result:  # pragma: no cover - abstract
        raise NotImplementedError


class SQLiteConnection(DirectConnection):
    """An autocommit aiosqlite connection; each statement is one trip to its thread.

    A statement that returns rows (``SELECT``, ``... RETURNING``) is executed and fetched
    in the same trip (``execute_fetchall``), so no statement (and no implicit transaction)
    stays open between trips, even if the awaiting task is cancelled; any other statement
    runs to completion inside ``execute``.
    """

    __slots__ = ()

    async def execute(self, statement: Statement) -> Result:
        sql, params, many = statement
        raw: aiosqlite.Connection = self.raw
        if many:
            cursor = await raw.executemany(sql, [tuple(row) for row in params])
            return Result([], cursor.rowcount, cursor.lastrowid)
        described = type(statement) is Described  # raw(): the column names are needed
        if (sql.startswith("SELECT") or " RETURNING " in sql) and not described:
            rows = list(await raw.execute_fetchall(sql, tuple(params)))
            return Result(rows, len(rows), None)
        cursor = await raw.execute(sql, tuple(params))
        rows = [] if cursor.description is None else list(await cursor.fetchall())
        return Result(rows, cursor.rowcount, cursor.lastrowid,
                      _columns(cursor) if described else None)


class ServerConnection(DirectConnection):
    """A psycopg ``AsyncConnection`` or an aiomysql connection, in autocommit, with the
    one cursor every statement on it is sent on (a new psycopg cursor sets up its
    adapters again, about 10 us a statement; each result is read out before the next
    statement)."""

    __slots__ = ("cursor",)

    def __init__(self, raw: Any, cursor: Any) -> None:
        super().__init__(raw)
        self.cursor = cursor

    async def execute(self, statement: Statement) -> Result:
        sql, params, many = statement
        cursor = self.cursor
        if many:
            await cursor.executemany(sql, [tuple(row) for row in params])
            return Result([], cursor.rowcount, getattr(cursor, "lastrowid", None))
        await cursor.execute(sql, tuple(params))
        rows = list(await cursor.fetchall()) if returns_rows(cursor) else []
        columns = _columns(cursor) if type(statement) is Described else None
        result = Result(rows, cursor.rowcount, getattr(cursor, "lastrowid", None), columns)
        if len(rows) > KEPT_RESULT_ROWS:  # do not keep the driver's copy while idle
            await self._renew_cursor()
        return result

    async def _renew_cursor(self) -> None:
        """A new cursor for the next statements (no round trip: the result was read)."""
        old, fresh = self.cursor, self.raw.cursor()
        self.cursor = await fresh if inspect.isawaitable(fresh) else fresh
        with contextlib.suppress(Exception):  # the statement succeeded: never fail it here
            closed = old.close()
            if closed is not None:
                await closed

    async def alive(self) -> bool:
        try:
            await self.execute(Statement("SELECT 1"))
            return True
        except Exception:
            return False

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):
            closed = self.raw.close()
            if closed is not None:
                await closed

    def close_now(self) -> None:
        """Close without awaiting (the connection's event loop may be gone)."""
        close_driver_now(self.raw)

    def abandon(self) -> None:
        """In a forked child: point this connection's socket descriptor at /dev/null, so
        nothing the child does with the object, its finalizer included, reaches the
        parent's server session or unregisters the socket from the event loop's epoll set
        (which parent and child share)."""
        fd = self._fileno()
        if fd is None:
            return
        devnull = os.open(os.devnull, os.O_RDWR)
        try:
            os.dup2(devnull, fd)
        finally:
            os.close(devnull)

    def _fileno(self) -> int | None:
        with contextlib.suppress(Exception):
            pgconn = getattr(self.raw, "pgconn", None)
            if pgconn is not None:
                return int(pgconn.socket)
            writer = self.raw._writer  # aiomysql: the stream over its socket
            return int(writer.transport.get_extra_info("socket").fileno())
        return None


def close_driver_now(raw: Any) -> None:
    """Close an async driver connection without awaiting, its event loop possibly closed:
    psycopg ends the session with libpq's own call. aiosqlite is told to close and stop
    its thread from a thread without an event loop: asked from the running loop, its
    thread answers through that loop, which may be closed by then (an error printed from
    aiosqlite's thread). aiomysql closes its transport, which through a closed loop gets
    only as far as marking it closing (so its finalizer does not try again through the
    dead loop); the socket is shut down first, so the server ends the session now rather
    than when the garbage collector closes the socket."""
    pgconn = getattr(raw, "pgconn", None)
    with contextlib.suppress(Exception):
        if pgconn is not None:
            pgconn.finish()
            return
        if hasattr(raw, "stop"):
            threading.Thread(target=raw.stop, name="registers-aiosqlite-stop",
                             daemon=True).start()
            return
        writer = raw._writer  # aiomysql's stream; None once closed
        if writer is not None:
            writer.get_extra_info("socket").shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(Exception):
        raw.close()


class DirectConnections:
    """The direct connections of one database on one event loop."""

    shared = False  # whether every task shares one connection (then no multi-statement work)

    async def take(self, write: bool) -> DirectConnection | None:  # pragma: no cover
        raise NotImplementedError

    def give(self, conn: DirectConnection) -> None:
        """Hand back a connection after a statement that left it usable."""

    def drop(self, conn: DirectConnection) -> None:
        """Forget a connection a failure (or a cancellation) may have left unusable."""

    async def settle(self, conn: DirectConnection) -> None:
        """After a task was cancelled during a write on ``conn`` (given back or dropped):
        return once the write can no longer change, applied or not, so what the task's
        caller reads next is final. psycopg does this itself (it cancels the statement in
        the server and waits for the answer)."""

    async def close(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def stop(self) -> None:
        """Close every connection without awaiting (their loop may be gone)."""

    def abandon(self) -> None:
        """In a forked child: make sure the parent's connections are never used or closed
        from here (the objects themselves are kept alive by the caller)."""


class SQLiteConnections(DirectConnections):
    """Two shared autocommit aiosqlite connections: reads on one, writes on the other, so
    a read never queues behind a write waiting out the busy timeout."""

    shared = True
    __slots__ = ("_lock", "database", "reader", "writer")

    def __init__(self, database: Database) -> None:
        self.database = database
        self.reader: SQLiteConnection | None = None
        self.writer: SQLiteConnection | None = None
        self._lock: asyncio.Lock | None = None

    async def take(self, write: bool) -> SQLiteConnection | None:
        """The reader or writer connection, opened on first use; None if it cannot be
        opened (the engine path then reports why)."""
        found = self.writer if write else self.reader
        if found is not None:
            return found
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            found = self.writer if write else self.reader
            if found is None:
                try:
                    found = SQLiteConnection(await _open_sqlite(self.database))
                except (sqlite3.Error, OSError, ValueError):
                    return None
                if write:
                    self.writer = found
                else:
                    self.reader = found
            return found

    async def settle(self, conn: DirectConnection) -> None:
        """aiosqlite runs every queued call, cancelled tasks' too, in order: a no-op
        queued behind the write has run once the write has (waiting on a lock, that is
        up to ``SETTLE_SECONDS``)."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(conn.raw.execute_fetchall("SELECT 1"), SETTLE_SECONDS)

    def _take_all(self) -> list[SQLiteConnection]:
        taken = [c for c in (self.reader, self.writer) if c is not None]
        self.reader = self.writer = None
        return taken

    async def close(self) -> None:
        for conn in self._take_all():
            with contextlib.suppress(Exception):
                await conn.raw.close()

    def stop(self) -> None:
        for conn in self._take_all():
            close_driver_now(conn.raw)


class ServerConnections(DirectConnections):
    """Autocommit driver connections of one server database on one event loop, each
    used by one task at a time; at most ``pool_size + max_overflow`` in use at once."""

    __slots__ = ("_idle", "_slots", "_timeout", "database", "engine")

    def __init__(self, database: Database, engine: AsyncEngine) -> None:
        self.database = database
        self.engine = engine
        options = database.options
        self._idle: list[ServerConnection] = []  # most recently used last
        self._slots = asyncio.Semaphore(max(1, options.pool_size + options.max_overflow))
        self._timeout = options.pool_timeout

    async def take(self, write: bool) -> ServerConnection:
        """A connection for this task alone: the most recently used idle one (pinged
        first if it sat idle too long), or a new one.

        Raises:
            DatabaseUnavailableError: no connection could be opened, or none was free
                within ``pool_timeout``.
        """
        slots = self._slots
        if slots.locked():
            try:
                await asyncio.wait_for(slots.acquire(), self._timeout)
            except asyncio.TimeoutError as exc:
                raise self.database.connect_error(sa.exc.TimeoutError(str(exc))) from None
        else:
            await slots.acquire()
        try:
            idle = self._idle
            while idle:
                conn = idle.pop()
                if time.monotonic() - conn.used <= IDLE_CHECK_SECONDS or await conn.alive():
                    return conn
                await conn.aclose()
            return await self._open()
        except BaseException:
            slots.release()
            raise

    def give(self, conn: DirectConnection) -> None:
        conn.used = time.monotonic()
        self._idle.append(conn)  # type: ignore[arg-type]
        self._slots.release()

    def drop(self, conn: DirectConnection) -> None:
        assert isinstance(conn, ServerConnection)
        conn.close_now()
        self._slots.release()

    async def settle(self, conn: DirectConnection) -> None:
        """MySQL/MariaDB: the dropped connection's server session may still be running
        the write (the server notices the closed socket only when it answers). Kill it
        from another connection (a transaction it was in rolls back) and wait until it
        has ended, for up to ``SETTLE_SECONDS``."""
        if self.database.family != "mysql":
            return
        session = conn.raw.thread_id()
        with contextlib.suppress(Exception):  # the cancellation is what the caller sees
            await asyncio.wait_for(self._end_session(session), SETTLE_SECONDS)

    async def _end_session(self, session: int) -> None:
        other = await self.take(write=False)
        try:
            with contextlib.suppress(Exception):  # it may have ended already
                await other.execute(Statement("KILL %s", [session]))
            ended = Statement("SELECT COUNT(*) FROM information_schema.PROCESSLIST "
                              "WHERE ID = %s", [session])
            while (await other.execute(ended)).rows[0][0]:
                await asyncio.sleep(0.001)
        except BaseException:
            self.drop(other)
            raise
        self.give(other)

    async def _open(self) -> ServerConnection:
        try:
            fairy = await self.engine.raw_connection()
        except Exception as exc:  # refused, timed out, pool exhausted, ...
            raise self.database.connect_error(exc) from exc
        raw: Any = fairy.driver_connection
        fairy.detach()  # ours for this loop's lifetime, not the pool's
        try:
            if self.database.family == "postgresql":
                if raw.info.transaction_status:  # a connect hook's statement left one open
                    await raw.rollback()
                await raw.set_autocommit(True)
                return ServerConnection(raw, raw.cursor())
            await raw.autocommit(True)
            return ServerConnection(raw, await raw.cursor())
        except BaseException as exc:
            ServerConnection(raw, None).close_now()
            if isinstance(exc, Exception):
                raise self.database.connect_error(exc) from exc
            raise

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.aclose()

    def stop(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close_now()

    def abandon(self) -> None:
        for conn in self._idle:
            conn.abandon()


async def _open_sqlite(database: Database) -> aiosqlite.Connection:
    """An autocommit aiosqlite connection set up like every sync one (configure_sqlite)."""
    import aiosqlite

    path, uri = database.sqlite_target()
    options = database.options
    pending = aiosqlite.connect(path, timeout=options.busy_timeout,
                                isolation_level=None, uri=uri)
    # A daemon worker thread, as SQLAlchemy's aiosqlite dialect does, so a connection
    # nobody closed never keeps the interpreter from exiting (aiosqlite < 0.22: the
    # connection is the thread).
    thread = pending if isinstance(pending, threading.Thread) else getattr(
        pending, "_thread", None)
    if isinstance(thread, threading.Thread):
        thread.daemon = True
    conn = await pending
    try:
        for pragma in sqlite_pragmas(options=options, read_only=database.sqlite_read_only):
            retry = BusyRetry(options.busy_timeout)
            while True:
                try:
                    await conn.execute(pragma)
                    break
                except sqlite3.OperationalError as exc:
                    delay = retry.delay_after(exc)
                    if delay is None:
                        raise
                await asyncio.sleep(delay)
        for name, arity, function in sqlite_functions():
            await conn.create_function(name, arity, function, deterministic=True)
    except BaseException:
        with contextlib.suppress(Exception):
            await conn.close()
        raise
    return conn


def _columns(cursor: Any) -> list[str] | None:
    """The column names of a cursor's rows (None: the statement returns none)."""
    return None if cursor.description is None else [d[0] for d in cursor.description]
