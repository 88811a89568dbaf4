# The mixin's methods declare ``self: DatabaseRegistry[M]`` so that the manager's prepared
# pieces are typed and ``await User.objects.aget(1)`` is ``User | None``; mypy reports such
# subclass self-types as [misc] (it wants a supertype), which is what is silenced here.
# mypy: disable-error-code="misc"
"""Async twins of the manager's reads and writes (SPEC D12), on SQLAlchemy's async engine.

Every ``a*`` method of :class:`AsyncOperations` (a mixin of
:class:`~registers.db.registry.DatabaseRegistry`) validates its input exactly like its sync
twin, then sends the *same* SQL the sync manager prepared once per table through an
:class:`~sqlalchemy.ext.asyncio.AsyncEngine` whose driver uses the sync driver's parameter
style, so no statement is rebuilt:

==============================================  ==============================
sync URL                                        async driver
==============================================  ==============================
``sqlite:///file.db``                           ``sqlite+aiosqlite``
``postgresql://``, ``postgresql+psycopg://``    ``postgresql+psycopg`` (async)
``mysql://``, ``mysql+pymysql://``, mariadb     ``+aiomysql``
==============================================  ==============================

Nothing runs sync database code in a worker thread (aiosqlite keeps one thread per
connection of its own, as every asyncio SQLite driver must). The one CPU-bound step,
password hashing (PBKDF2, ~0.3 s per value), runs through :func:`asyncio.to_thread`
(hashlib releases the GIL), so the event loop keeps serving other tasks meanwhile. One
async engine per database URL is created on first async use and released by
:meth:`AsyncOperations.adispose` or :func:`adispose_all`. SQLite connections get the sync
side's pragmas (WAL, ``foreign_keys=ON``, a 30 s busy timeout) and write transactions
begin with ``BEGIN IMMEDIATE``. ``sqlite:///:memory:`` is not supported asynchronously:
its single in-process connection belongs to the sync side.

SQLite fast path: a single statement outside ``atransaction()`` (every read, and
``acreate``, ``aupsert``, ``aupdate_where``, ``adelete``, ``adelete_where``) skips the
engine and goes straight to one of two autocommit aiosqlite connections kept per database
and event loop, one for reads and one for writes (so a read never queues behind a write
waiting on the busy timeout), set up with the same pragmas. Multi-statement writes
(``abulk_create``, ``abulk_upsert``) keep their ``BEGIN IMMEDIATE`` transaction on the
engine. The engine path is also taken whenever a ``before_cursor_execute`` or
``after_cursor_execute`` listener is registered for the async engine (so statement hooks
see every statement), and to retry a statement that failed on a busy/locked database.

``async with Model.objects.atransaction():`` scopes every async operation of any model on
the same database in the current task (a context variable); nested blocks are savepoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import sqlite3
import threading
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from pydantic import BaseModel

from registers.db.dialects import is_transient
from registers.db.engine import (
    SQLITE_BUSY_TIMEOUT_MS,
    Database,
    configure_sqlite,
    sqlite_functions,
    sqlite_pragmas,
)
from registers.db.exceptions import (
    ConfigurationError,
    DatabaseError,
    ImmutableFieldError,
    InvalidQueryError,
    RecordNotFoundError,
)
from registers.db.query import Q
from registers.db.security import is_password_hash

if TYPE_CHECKING:
    import aiosqlite
    from sqlalchemy.engine import CursorResult
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

    from registers.db.registry import DatabaseRegistry

__all__ = ["AsyncOperations", "adispose_all", "async_url"]

M = TypeVar("M", bound=BaseModel)

_RETRIES = 6
_POOL_SIZE = 10
_IN_CHUNK = 5000
_MISSING = object()
_SAVEPOINT_IDS = itertools.count(1)
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
_EXTRAS = {"aiosqlite": "aiosqlite", "psycopg": "psycopg[binary]", "aiomysql": "aiomysql"}


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


class _AsyncTransaction:
    """The connection of an ``atransaction()`` block, and a lock serialising its users."""

    __slots__ = ("connection", "lock")

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection
        self.lock = asyncio.Lock()  # tasks spawned inside the block share the connection


class _AsyncDatabase:
    """The async side of one :class:`~registers.db.engine.Database`."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.url = async_url(database)
        self.tx: ContextVar[_AsyncTransaction | None] = ContextVar(
            f"registers_atx_{id(self)}", default=None
        )
        self._engine: AsyncEngine | None = None
        self._loop: weakref.ref[asyncio.AbstractEventLoop] | None = None
        self._lean: _LeanSQLite | None = None  # SQLite fast path, for the engine's loop

    def engine(self) -> AsyncEngine:
        """The async engine, (re)created for the running event loop.

        Pooled asyncio connections belong to the loop that opened them, so a new loop
        (a second ``asyncio.run``) gets a fresh engine.
        """
        loop = asyncio.get_running_loop()
        engine = self._engine
        if engine is not None and self._loop is not None and self._loop() is loop:
            return engine
        if engine is not None:
            engine.sync_engine.dispose(close=False)
        self.retire_lean()
        self._engine = engine = self._create_engine()
        self._loop = weakref.ref(loop)
        return engine

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
                        "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
                    },
                )
                sa.event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
                return engine
            engine = create_async_engine(
                self.url,
                pool_size=_POOL_SIZE,
                max_overflow=2 * _POOL_SIZE,
                pool_pre_ping=True,
                pool_recycle=1800,
            )
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

    async def connect(self) -> AsyncConnection:
        try:
            return await self.engine().connect()
        except sa.exc.SQLAlchemyError as exc:
            original = getattr(exc, "orig", None) or exc
            detail = (str(original).strip().splitlines() or [type(original).__name__])[0]
            shown = self.database.url.render_as_string(hide_password=True)
            raise DatabaseError(f"cannot connect to {shown}: {detail}") from exc

    def lean(self) -> _LeanSQLite | None:
        """The SQLite fast path for this loop, or None when statements must go through the
        engine: not SQLite, or a statement listener wants to see them."""
        if not self.database.is_sqlite:
            return None
        events = self.engine().sync_engine.dispatch
        if events.before_cursor_execute or events.after_cursor_execute:
            return None
        lean = self._lean
        if lean is None:
            lean = self._lean = _LeanSQLite(self.database)
        return lean

    def retire_lean(self) -> None:
        """Stop the fast-path connections without awaiting (their loop may be gone)."""
        lean, self._lean = self._lean, None
        if lean is not None:
            lean.stop()

    async def dispose(self) -> None:
        engine, self._engine, self._loop = self._engine, None, None
        lean, self._lean = self._lean, None
        if lean is not None:
            await lean.close()
        if engine is not None:
            await engine.dispose()


class _LeanResult:
    """The part of SQLAlchemy's ``CursorResult`` the manager reads, over sqlite3's rows."""

    __slots__ = ("_rows", "lastrowid", "rowcount")

    def __init__(self, rows: list[Any], rowcount: int, lastrowid: int) -> None:
        self._rows = rows
        self.rowcount = rowcount
        self.lastrowid = lastrowid

    def fetchall(self) -> list[Any]:
        return self._rows

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def scalar_one(self) -> Any:
        if len(self._rows) != 1:
            raise (sa.exc.NoResultFound("No row was found when one was required")
                   if not self._rows else
                   sa.exc.MultipleResultsFound("Multiple rows were found when exactly one "
                                               "was required"))
        return self._rows[0][0]


class _LeanConnection:
    """One autocommit aiosqlite connection; each statement is one trip to its thread.

    A statement that returns rows (``SELECT``, ``... RETURNING``) is executed and fetched
    in the same trip (``execute_fetchall``), so no statement (and no implicit transaction)
    stays open between trips, even if the awaiting task is cancelled; any other statement
    runs to completion inside ``execute``.
    """

    __slots__ = ("raw",)

    def __init__(self, raw: aiosqlite.Connection) -> None:
        self.raw = raw

    async def exec_driver_sql(self, sql: str, params: Any) -> _LeanResult:
        if sql.startswith("SELECT") or " RETURNING " in sql:
            rows = list(await self.raw.execute_fetchall(sql, params))
            return _LeanResult(rows, len(rows), 0)
        cursor = await self.raw.execute(sql, params)
        rows = [] if cursor.description is None else list(await cursor.fetchall())
        return _LeanResult(rows, cursor.rowcount, cursor.lastrowid or 0)

    async def exec_many(self, sql: str, rows: list[tuple[Any, ...]]) -> _LeanResult:
        cursor = await self.raw.executemany(sql, rows)
        return _LeanResult([], cursor.rowcount, cursor.lastrowid or 0)


class _LeanSQLite:
    """The SQLite fast path of one database on one event loop: two autocommit connections.

    Reads share one connection and single-statement writes another (aiosqlite runs each
    connection's statements one at a time on its thread). WAL readers never wait for the
    write lock, so keeping them apart means a read never queues behind a write that is
    waiting out the busy timeout.
    """

    __slots__ = ("_lock", "database", "reader", "writer")

    def __init__(self, database: Database) -> None:
        self.database = database
        self.reader: _LeanConnection | None = None
        self.writer: _LeanConnection | None = None
        self._lock: asyncio.Lock | None = None

    async def connection(self, write: bool) -> _LeanConnection | None:
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
                    found = _LeanConnection(await _open_lean(self.database))
                except (sqlite3.Error, OSError, ValueError):
                    return None
                if write:
                    self.writer = found
                else:
                    self.reader = found
            return found

    def _take(self) -> list[_LeanConnection]:
        taken = [c for c in (self.reader, self.writer) if c is not None]
        self.reader = self.writer = None
        return taken

    async def close(self) -> None:
        for conn in self._take():
            with contextlib.suppress(Exception):
                await conn.raw.close()

    def stop(self) -> None:
        for conn in self._take():
            with contextlib.suppress(Exception):
                conn.raw.stop()


if TYPE_CHECKING:
    from typing import TypeAlias

    # what a write's work function runs its statements on
    _Conn: TypeAlias = "AsyncConnection | _LeanConnection"


async def _open_lean(database: Database) -> aiosqlite.Connection:
    """An autocommit aiosqlite connection set up like every sync one (configure_sqlite)."""
    import aiosqlite

    path, uri = database.sqlite_target()
    pending = aiosqlite.connect(path, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000,
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
        for pragma in sqlite_pragmas():
            await conn.execute(pragma)
        for name, arity, function in sqlite_functions():
            await conn.create_function(name, arity, function, deterministic=True)
    except BaseException:
        with contextlib.suppress(Exception):
            await conn.close()
        raise
    return conn


def _sqlite_pragmas(dbapi_connection: Any, record: Any) -> None:
    """Every async SQLite connection is set up like the sync ones."""
    configure_sqlite(dbapi_connection)


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


_async_databases: dict[str, _AsyncDatabase] = {}
_async_lock = threading.Lock()


def _async_database(database: Database) -> _AsyncDatabase:
    adb = _async_databases.get(database.key)
    if adb is not None and adb.database is database:
        return adb
    with _async_lock:
        adb = _async_databases.get(database.key)
        if adb is None or adb.database is not database:
            if adb is not None:
                adb.retire_lean()
            adb = _async_databases[database.key] = _AsyncDatabase(database)
        return adb


async def adispose_all() -> None:
    """Close the pooled async connections of every database (they reopen on next use)."""
    for adb in list(_async_databases.values()):
        await adb.dispose()


async def _execute(conn: _Conn, sql: str, params: Any,
                   many: bool = False) -> CursorResult[Any] | _LeanResult:
    if many:
        rows = [tuple(row) for row in params]
        if isinstance(conn, _LeanConnection):
            return await conn.exec_many(sql, rows)
        return await conn.exec_driver_sql(sql, rows)
    return await conn.exec_driver_sql(sql, tuple(params))


def _driver_error(exc: BaseException) -> BaseException:
    """The driver's exception inside SQLAlchemy's wrapper (what ``_error`` classifies)."""
    original = getattr(exc, "orig", None)
    return original if isinstance(original, BaseException) else exc


class _Transient(Exception):
    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def _hash_each(manager: DatabaseRegistry[Any], rows: list[dict[str, Any]]) -> None:
    for values in rows:
        manager._hash_passwords(values)


class AsyncOperations:
    """Mixin of ``DatabaseRegistry``: ``acreate``, ``aget``, ... on SQLAlchemy's async engine.

    Each method behaves exactly like its sync twin (same validation, SQL, errors and
    return values); see :mod:`registers.db.aio` for engines and transactions.
    """

    __slots__ = ()

    # --- plumbing -------------------------------------------------------------------

    def _adb(self: DatabaseRegistry[Any]) -> _AsyncDatabase:
        return _async_database(self.database)

    def _aerrors(self: DatabaseRegistry[Any]) -> tuple[type[BaseException], ...]:
        """What an operation maps to a RegistryError: SQLAlchemy's wrappers, plus what
        the sync side catches from the driver (OverflowError, UnicodeEncodeError, ...)."""
        return (sa.exc.SQLAlchemyError, *self._dbapi_error)

    def _ambient(self: DatabaseRegistry[Any], adb: _AsyncDatabase) -> _AsyncTransaction | None:
        tx = adb.tx.get()
        if tx is None and self.database.current_transaction() is not None:
            raise InvalidQueryError(
                f"async operations on {self.model_name} cannot join a sync transaction() "
                "block; use 'async with Model.objects.atransaction():' instead",
                model=self.model_name,
            )
        return tx

    async def _ahash_passwords(self: DatabaseRegistry[Any],
                               rows: Sequence[dict[str, Any]]) -> None:
        """Hash the plain-text passwords of ``rows`` (model ``__dict__``s) off the loop.

        PBKDF2 at the default cost takes ~0.3 s per value; hashlib releases the GIL, so a
        worker thread keeps the event loop serving other tasks. The sync manager's own
        ``_hash_passwords`` does the work there (values that are hashes already are left
        alone); nothing goes to a thread when there is nothing to hash.
        """
        hashed = self._hashed
        if not hashed:
            return
        todo = [values for values in rows if any(
            isinstance(value := values.get(name), str) and not is_password_hash(value)
            for name in hashed)]
        if todo:
            await asyncio.to_thread(_hash_each, self, todo)

    async def _ahash_updates(self: DatabaseRegistry[Any],
                             updates: dict[str, Any]) -> dict[str, Any]:
        """``updates`` with plain-text passwords hashed off the loop, for ``_set_clause``
        (which hashes what is still plain text, and leaves hashes alone)."""
        plain = {name: updates[name] for name in self._hashed if name in updates}
        await self._ahash_passwords([plain])
        return {**updates, **plain} if plain else updates

    async def _aread(self: DatabaseRegistry[Any], sql: str, params: Sequence[Any]) -> list[Any]:
        adb = self._adb()
        tx = self._ambient(adb)
        if tx is None:
            lean = adb.lean()
            fast = None if lean is None else await lean.connection(write=False)
            if fast is not None:
                try:
                    return list(await fast.raw.execute_fetchall(sql, tuple(params)))
                except self._aerrors() as exc:
                    if not is_transient(self.database.family, exc):
                        raise self._error(exc, "read from") from exc
                    # busy/locked past the timeout: one more try on the engine below
        try:
            if tx is not None:
                async with tx.lock:
                    return list((await _execute(tx.connection, sql, params)).fetchall())
            conn = await adb.connect()
            try:
                return list((await _execute(conn, sql, params)).fetchall())
            finally:
                await conn.close()
        except self._aerrors() as exc:
            original = _driver_error(exc)
            raise self._error(original, "read from") from original

    async def _awrite(self: DatabaseRegistry[Any],
                      work: Callable[[_Conn], Awaitable[Any]], *,
                      data: Mapping[str, Any] | None = None, atomic: bool = True,
                      retry_if: Callable[[BaseException], bool] | None = None) -> Any:
        """Await ``work(conn)`` as one transaction (or inside the ambient one).

        Like the sync ``_write``: a transaction of its own that hits a deadlock or a
        serialization failure is retried with backoff; inside ``atransaction()`` the
        error propagates, since only the caller can retry the whole block.

        ``atomic=False`` promises ``work`` sends a single statement: on SQLite outside a
        transaction it then runs on the fast path's autocommit writer connection; a
        busy/locked failure there is retried on the engine.
        """
        adb = self._adb()
        tx = self._ambient(adb)
        if tx is None and not atomic:
            lean = adb.lean()
            fast = None if lean is None else await lean.connection(write=True)
            if fast is not None:
                try:
                    return await work(fast)
                except self._aerrors() as exc:
                    original = _driver_error(exc)
                    if not (isinstance(original, sqlite3.Error) and (
                        is_transient(self.database.family, original)
                        or (retry_if is not None and retry_if(original))
                    )):
                        raise self._error(original, "write to", data) from original
                    # a single autocommit statement that failed changed nothing: retry below
        try:
            if tx is not None:
                async with tx.lock:
                    return await self._awrite_joined(tx.connection, work, atomic)
            for attempt in range(_RETRIES):
                try:
                    return await self._awrite_once(adb, work, atomic, retry_if)
                except _Transient as transient:
                    if attempt == _RETRIES - 1:
                        raise transient.error from None
                    await asyncio.sleep(0.01 * (2**attempt) * (1 + random.random()))
        except self._aerrors() as exc:
            original = _driver_error(exc)
            raise self._error(original, "write to", data) from original
        raise AssertionError("unreachable")  # pragma: no cover

    async def _awrite_joined(self: DatabaseRegistry[Any], conn: AsyncConnection,
                             work: Callable[[_Conn], Awaitable[Any]],
                             atomic: bool) -> Any:
        """Run ``work`` inside the caller's transaction, as the sync ``_write_once`` does.

        A write that fails must leave no partial rows and (on PostgreSQL) must not poison
        the caller's transaction, so it gets a savepoint; a single statement elsewhere is
        already atomic.
        """
        if not (atomic or self.database.family == "postgresql"):
            return await work(conn)
        savepoint = f"registers_aw{next(_SAVEPOINT_IDS)}"
        await conn.exec_driver_sql(f"SAVEPOINT {savepoint}")
        try:
            result = await work(conn)
        except BaseException:
            with contextlib.suppress(Exception):
                await conn.exec_driver_sql(f"ROLLBACK TO SAVEPOINT {savepoint}")
                await conn.exec_driver_sql(f"RELEASE SAVEPOINT {savepoint}")
            raise
        await conn.exec_driver_sql(f"RELEASE SAVEPOINT {savepoint}")
        return result

    async def _awrite_once(self: DatabaseRegistry[Any], adb: _AsyncDatabase,
                           work: Callable[[_Conn], Awaitable[Any]],
                           atomic: bool,
                           retry_if: Callable[[BaseException], bool] | None) -> Any:
        conn = await adb.connect()
        try:
            if atomic and self.database.is_sqlite:
                await conn.exec_driver_sql("BEGIN IMMEDIATE")
            result = await work(conn)
            await conn.commit()
            return result
        except BaseException as exc:
            with contextlib.suppress(Exception):  # the original error matters more
                await conn.rollback()
            original = _driver_error(exc)
            if isinstance(exc, sa.exc.DBAPIError) and (
                is_transient(self.database.family, original)
                or (retry_if is not None and retry_if(original))
            ):
                raise _Transient(exc) from exc
            raise
        finally:
            await conn.close()

    # --- writes ---------------------------------------------------------------------

    async def acreate(self: DatabaseRegistry[M], **data: Any) -> M:
        """Async :meth:`~registers.db.registry.DatabaseRegistry.create`.

        Raises:
            pydantic.ValidationError: ``data`` is not a valid model (before any SQL).
            InvalidPrimaryKeyAssignmentError: a database-managed key was supplied.
            DuplicateKeyError: the key exists. UniqueConstraintError: a unique value exists.
        """
        self._check_managed_key(data)
        return await self._ainsert(self._build(data))

    async def astrict_create(self: DatabaseRegistry[M], **data: Any) -> M:
        """Alias of :meth:`acreate`."""
        return await self.acreate(**data)

    async def _ainsert(self: DatabaseRegistry[M], instance: M) -> M:
        from registers.db.registry import PERSISTED_KEY

        values = instance.__dict__
        await self._ahash_passwords([values])
        with_key = not (self.managed_key and values[self.key] is None)
        names = self.names if with_key else self._insert_names
        sql = self.sql_insert_full if with_key else self.sql_insert_nokey
        params = self._params(values, names)

        async def work(conn: _Conn) -> Any:
            result = await _execute(conn, sql, params)
            if with_key:
                return values[self.key]
            if self.dialect.insert_returning:
                return result.scalar_one()
            return result.lastrowid

        key = await self._awrite(work, data=values, atomic=False)
        values[self.key] = key
        values[PERSISTED_KEY] = self._stored_key(key)
        return instance

    async def aupsert(self: DatabaseRegistry[M], instance: M | None = None, /,
                      **data: Any) -> M:
        """Async :meth:`~registers.db.registry.DatabaseRegistry.upsert`."""
        from registers.db.registry import _field_values

        if instance is not None:
            if not isinstance(instance, self.model):
                raise InvalidQueryError(
                    f"upsert() takes a {self.model_name} instance or field values, "
                    f"got {type(instance).__name__}",
                    model=self.model_name,
                )
            instance = self._build({**_field_values(instance, self.names), **data})
        else:
            instance = self._build(data)
        return await self._aupsert(instance)

    async def _aupsert(self: DatabaseRegistry[M], instance: M) -> M:
        from registers.db.registry import PERSISTED_KEY

        values = instance.__dict__
        await self._ahash_passwords([values])
        target = self._conflict_target(values)
        if target is None:
            return await self._ainsert(instance)
        with_key = values[self.key] is not None
        names = self.names if with_key else self._insert_names
        params = self._params(values, names)
        guarded = self._needs_guarded_upsert(target)

        async def work(conn: _Conn) -> Any:
            key = await self._aupsert_row(conn, values, with_key, target, names, params,
                                          guarded)
            if with_key and self.managed_key:
                await self._async_sequence(conn)
            return key

        key = await self._awrite(work, data=values, atomic=guarded,
                                 retry_if=self._lost_insert_race(target) if guarded else None)
        values[self.key] = self._key_adapter.validate_python(key) if key is not None else key
        values[PERSISTED_KEY] = self._stored_key(values[self.key])
        return instance

    async def _aupsert_row(self: DatabaseRegistry[Any], conn: _Conn,
                           values: Mapping[str, Any], with_key: bool, target: str,
                           names: Sequence[str], params: Sequence[Any], guarded: bool) -> Any:
        """Async ``_upsert_row``: upsert one row on ``conn``; returns its key.

        ``guarded`` (MySQL with a second unique column): lock the target row and decide,
        since ON DUPLICATE KEY UPDATE would fire on any unique index.
        """
        if not guarded:
            result = await _execute(conn, self._upsert_sql(with_key, target), params)
            if self.database.family == "mysql":
                return values[self.key] if with_key else result.lastrowid
            return result.scalar_one()
        q = self.dialect.quote
        by_name = dict(zip(names, params))
        table, key = q(self.table_name), q(self.key)
        found = (await _execute(
            conn, f"SELECT {key} FROM {table} WHERE {q(target)} = %s FOR UPDATE",
            [by_name[target]],
        )).first()
        if found is None:
            sql = self.sql_insert_full if with_key else self.sql_insert_nokey
            result = await _execute(conn, sql, params)
            return values[self.key] if with_key else result.lastrowid
        changed = [n for n in names if n not in (target, self.key)]
        if changed:
            sets = ", ".join(f"{q(n)} = %s" for n in changed)
            await _execute(conn, f"UPDATE {table} SET {sets} WHERE {key} = %s",
                           [*(by_name[n] for n in changed), found[0]])
        return values[self.key] if with_key else found[0]

    async def _async_sequence(self: DatabaseRegistry[Any], conn: _Conn) -> None:
        """After an explicit key on PostgreSQL, move the key sequence past it."""
        if self.database.family != "postgresql":
            return
        q = self.dialect.quote
        await _execute(
            conn,
            f"SELECT setval(pg_get_serial_sequence(%s, %s), "
            f"GREATEST((SELECT COALESCE(MAX({q(self.key)}), 0) FROM {q(self.table_name)}), 1))",
            (q(self.table_name), self.key),
        )

    async def aupdate_where(self: DatabaseRegistry[M], criteria: Mapping[str, Any] | Q,
                            **updates: Any) -> list[M]:
        """Async :meth:`~registers.db.registry.DatabaseRegistry.update_where`."""
        from registers.db.registry import PERSISTED_KEY

        hashed_updates = updates
        if isinstance(criteria, (Mapping, Q)) and criteria:  # else _update_statement refuses
            hashed_updates = await self._ahash_updates(updates)
        update, set_sql, set_params, where, where_params = self._update_statement(
            criteria, hashed_updates
        )
        if self.dialect.update_returning:
            sql = f"{update} RETURNING {self.select_list}"

            async def returning(conn: _Conn) -> list[Any]:
                return list((await _execute(conn, sql, set_params + where_params)).fetchall())

            rows = await self._awrite(returning, data=updates, atomic=False)
        else:
            async def then_read(conn: _Conn) -> list[Any]:
                return await self._aupdate_then_read(conn, where, where_params,
                                                     set_sql, set_params)

            rows = await self._awrite(then_read, data=updates)
        models = self._to_models(rows)
        models.sort(key=lambda m: m.__dict__[PERSISTED_KEY])
        return models

    async def _aupdate_then_read(self: DatabaseRegistry[Any], conn: _Conn,
                                 where: str, where_params: list[Any], set_sql: str,
                                 set_params: list[Any]) -> list[Any]:
        q = self.dialect.quote
        key, table = q(self.key), q(self.table_name)
        found = await _execute(conn, f"SELECT {key} FROM {table}{where} FOR UPDATE",
                               where_params)
        keys = [r[0] for r in found.fetchall()]
        rows: list[Any] = []
        for start in range(0, len(keys), _IN_CHUNK):
            chunk = keys[start:start + _IN_CHUNK]
            in_sql = f" WHERE {key} IN ({self.dialect.params(len(chunk))})"
            await _execute(conn, f"UPDATE {table} SET {set_sql}{in_sql}", set_params + chunk)
            rows.extend((await _execute(conn, f"{self.sql_select}{in_sql}", chunk)).fetchall())
        return rows

    async def adelete(self: DatabaseRegistry[Any], key: Any) -> bool:
        """Async :meth:`~registers.db.registry.DatabaseRegistry.delete`."""
        params = [self._coerce_key(key)]

        async def work(conn: _Conn) -> int:
            return (await _execute(conn, self.sql_delete, params)).rowcount

        return bool(await self._awrite(work, atomic=False))

    async def adelete_where(self: DatabaseRegistry[Any], *q: Q, **criteria: Any) -> int:
        """Async :meth:`~registers.db.registry.DatabaseRegistry.delete_where`."""
        sql, params = self._delete_where_statement(criteria, q)

        async def work(conn: _Conn) -> int:
            return (await _execute(conn, sql, params)).rowcount

        return int(await self._awrite(work, atomic=False))

    async def abulk_create(self: DatabaseRegistry[M],
                           items: Iterable[M | Mapping[str, Any]]) -> list[M]:
        """Async :meth:`~registers.db.registry.DatabaseRegistry.bulk_create` (all or nothing)."""
        models = [self._coerce_item(item) for item in items]
        if not models:
            return []
        for model in models:
            self._check_managed_key(model)
        await self._ahash_passwords([m.__dict__ for m in models])
        generate = self.managed_key
        names = self._insert_names if generate else self.names
        rows = [self._params(m.__dict__, names) for m in models]

        async def work(conn: _Conn) -> list[Any]:
            if not generate:
                await _execute(conn, self._insert_sql(names), rows, many=True)
                return [m.__dict__[self.key] for m in models]
            return await self._ainsert_batches(conn, names, rows)

        return self._set_keys(models, await self._awrite(work))

    def _set_keys(self: DatabaseRegistry[M], models: list[M], keys: list[Any]) -> list[M]:
        from registers.db.registry import PERSISTED_KEY

        for model, key in zip(models, keys):
            model.__dict__[self.key] = key
            model.__dict__[PERSISTED_KEY] = self._stored_key(key)
        return models

    async def _ainsert_batches(self: DatabaseRegistry[Any], conn: _Conn,
                               names: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[Any]:
        """Insert rows with database-generated keys; return the keys in row order."""
        if self.database.is_sqlite:
            await _execute(conn, self._insert_sql(names), rows, many=True)
            last = (await _execute(conn, "SELECT last_insert_rowid()", ())).scalar_one()
            # Inside one write transaction SQLite hands out consecutive rowids.
            return list(range(last - len(rows) + 1, last + 1))
        keys: list[Any] = []
        for sql, params, count in self._multi_row_inserts(names, rows):
            result = await _execute(conn, sql, params)
            if self.dialect.insert_returning:
                keys.extend(r[0] for r in result.fetchall())
            else:
                # MySQL/MariaDB: consecutive ids from the first one of a multi-row INSERT.
                keys.extend(range(result.lastrowid, result.lastrowid + count))
        return keys

    async def abulk_upsert(self: DatabaseRegistry[M],
                           items: Iterable[M | Mapping[str, Any]]) -> list[M]:
        """Async :meth:`~registers.db.registry.DatabaseRegistry.bulk_upsert` (all or nothing)."""
        models = [self._coerce_item(item) for item in items]
        if not models:
            return []
        await self._ahash_passwords([m.__dict__ for m in models])
        groups: dict[tuple[bool, str | None], list[int]] = {}
        for index, model in enumerate(models):
            values = model.__dict__
            target = self._conflict_target(values)
            groups.setdefault((values[self.key] is not None, target), []).append(index)

        async def work(conn: _Conn) -> list[Any]:
            keys: list[Any] = [None] * len(models)
            for (with_key, target), indexes in groups.items():
                names = self.names if with_key else self._insert_names
                rows = [self._params(models[i].__dict__, names) for i in indexes]
                if target is None:
                    found = await self._ainsert_batches(conn, names, rows)
                elif self._needs_guarded_upsert(target):
                    found = [
                        await self._aupsert_row(conn, models[i].__dict__, with_key, target,
                                                names, row, True)
                        for i, row in zip(indexes, rows)
                    ]
                else:
                    sql = self._upsert_sql(with_key, target, returning=False)
                    await _execute(conn, sql, rows, many=True)
                    if with_key:
                        found = [models[i].__dict__[self.key] for i in indexes]
                    else:
                        found = await self._akeys_for(
                            conn, target, [models[i].__dict__[target] for i in indexes])
                for index, key in zip(indexes, found):
                    keys[index] = key
            if self.managed_key and any(with_key for with_key, _ in groups):
                await self._async_sequence(conn)
            return keys

        return self._set_keys(models, await self._awrite(work))

    async def _akeys_for(self: DatabaseRegistry[Any], conn: _Conn, field: str,
                         values: list[Any]) -> list[Any]:
        """The keys of the rows whose unique ``field`` holds ``values`` (same order)."""
        entry = self.query.field(field)
        stored = [v if entry.to_db is None else entry.to_db(v) for v in values]
        q = self.dialect.quote
        found: dict[Any, Any] = {}
        for start in range(0, len(stored), _IN_CHUNK):
            chunk = stored[start:start + _IN_CHUNK]
            sql = (
                f"SELECT {q(field)}, {q(self.key)} FROM {q(self.table_name)} "
                f"WHERE {q(field)} IN ({self.dialect.params(len(chunk))})"
            )
            for row in (await _execute(conn, sql, chunk)).fetchall():
                value = row[0]
                found[value if entry.to_db is None else entry.to_db(
                    entry.adapter.validate_python(value))] = row[1]
        return [found.get(v) for v in stored]

    # --- reads ----------------------------------------------------------------------

    async def aget(self: DatabaseRegistry[M], *args: Any, **criteria: Any) -> M | None:
        """Async :meth:`~registers.db.registry.DatabaseRegistry.get`."""
        key_params = self._get_key_params(args, criteria)
        if key_params is not None:
            rows = await self._aread(self.sql_get, key_params)
            return self._to_model(rows[0]) if rows else None
        return await self.afirst(*args, **criteria)

    async def arequire(self: DatabaseRegistry[M], *args: Any, **criteria: Any) -> M:
        """Like :meth:`aget`, but raise :class:`RecordNotFoundError` when nothing matches."""
        found = await self.aget(*args, **criteria)
        if found is None:
            raise self._not_found(args, criteria)
        return found

    async def afilter(self: DatabaseRegistry[M], *q: Q, limit: int | None = None,
                      offset: int | None = None, order_by: str | Sequence[str] | None = None,
                      **criteria: Any) -> list[M]:
        """Async :meth:`~registers.db.registry.DatabaseRegistry.filter`."""
        sql, params = self._select(criteria, order_by, limit, offset, q=q)
        return self._to_models(await self._aread(sql, params))

    async def aexclude(self: DatabaseRegistry[M], *q: Q, **criteria: Any) -> list[M]:
        """Async :meth:`~registers.db.registry.DatabaseRegistry.exclude`."""
        return await self.afilter(~Q(*q, **criteria))

    async def aall(self: DatabaseRegistry[M]) -> list[M]:
        """Every row, in key order."""
        return await self.afilter(order_by=self.key)

    async def aget_all(self: DatabaseRegistry[M]) -> list[M]:
        """Alias of :meth:`aall`."""
        return await self.afilter(order_by=self.key)

    async def afirst(self: DatabaseRegistry[M], *q: Q,
                     order_by: str | Sequence[str] | None = None, **criteria: Any) -> M | None:
        """The first matching row by key order (or ``order_by``), or None."""
        sql, params = self._select(criteria, order_by or self.key, 1, None, q=q)
        rows = await self._aread(sql, params)
        return self._to_model(rows[0]) if rows else None

    async def alast(self: DatabaseRegistry[M], *q: Q,
                    order_by: str | Sequence[str] | None = None, **criteria: Any) -> M | None:
        """The last matching row by key order (or ``order_by``), or None."""
        sql, params = self._select(criteria, order_by or self.key, 1, None, reverse=True, q=q)
        rows = await self._aread(sql, params)
        return self._to_model(rows[0]) if rows else None

    async def aexists(self: DatabaseRegistry[Any], *q: Q, **criteria: Any) -> bool:
        """Whether any row matches ``q`` and ``criteria``."""
        return bool(await self._aread(*self._count_sql(q, criteria, exists=True)))

    async def acount(self: DatabaseRegistry[Any], *q: Q, **criteria: Any) -> int:
        """How many rows match ``q`` and ``criteria``."""
        return int((await self._aread(*self._count_sql(q, criteria)))[0][0])

    def aiterate(self: DatabaseRegistry[M], *q: Q, batch_size: int = 1000,
                 order_by: str | Sequence[str] | None = None,
                 **criteria: Any) -> AsyncIterator[M]:
        """Stream matching rows in batches (``async for user in User.objects.aiterate():``).

        Without ``order_by`` rows come in key order using keyset pagination.
        """
        from registers.db.queryset import Query

        query: Query[M] = Query(self).where(*q, **criteria)
        if order_by is not None:
            query = query.order_by(*([order_by] if isinstance(order_by, str) else order_by))
        return query.aiterate(batch_size)

    # --- instances ------------------------------------------------------------------

    async def asave_instance(self: DatabaseRegistry[M], instance: M) -> M:
        """Async :meth:`~registers.db.registry.DatabaseRegistry.save_instance`."""
        from registers.db.registry import PERSISTED_KEY, _by_input_key, _field_values

        values = instance.__dict__
        persisted = values.get(PERSISTED_KEY, _MISSING)
        current = values.get(self.key)
        if persisted is not _MISSING and persisted != self._stored_key(current):
            raise ImmutableFieldError(
                f"{self.model_name}.{self.key} is immutable once saved "
                f"(stored {persisted!r}, now {current!r})",
                model=self.model_name, table=self.table_name, field=self.key,
            )
        fresh = self._validate(_by_input_key(_field_values(instance, self.names),
                                             self.names, self._input_keys))
        if persisted is _MISSING and self.managed_key and current is None:
            await self._ainsert(fresh)
        else:
            await self._aupsert(fresh)
        for name in self.names:
            values[name] = fresh.__dict__[name]
        values[PERSISTED_KEY] = fresh.__dict__[PERSISTED_KEY]
        return instance

    async def adelete_instance(self: DatabaseRegistry[Any], instance: BaseModel) -> bool:
        """Async :meth:`~registers.db.registry.DatabaseRegistry.delete_instance`."""
        from registers.db.registry import PERSISTED_KEY

        values = instance.__dict__
        key = values.get(PERSISTED_KEY, _MISSING)
        if key is _MISSING:
            key = values.get(self.key)
            if key is None:
                return False
            key = self._stored_key(key)

        async def work(conn: _Conn) -> int:
            return (await _execute(conn, self.sql_delete, [key])).rowcount

        deleted = await self._awrite(work, atomic=False)
        values.pop(PERSISTED_KEY, None)
        return bool(deleted)

    async def arefresh_instance(self: DatabaseRegistry[M], instance: M) -> M:
        """Async :meth:`~registers.db.registry.DatabaseRegistry.refresh_instance`."""
        from registers.db.registry import PERSISTED_KEY

        values = instance.__dict__
        key = values.get(PERSISTED_KEY, _MISSING)
        if key is _MISSING:
            key = values.get(self.key)
        if key is None:
            raise RecordNotFoundError(
                f"{self.model_name} instance has no {self.key}: it was never saved",
                model=self.model_name, table=self.table_name,
            )
        stored = key if PERSISTED_KEY in values else self._coerce_key(key)
        rows = await self._aread(self.sql_get, [stored])
        if not rows:
            raise RecordNotFoundError(
                f"no {self.model_name} with {self.key}={values.get(self.key)!r} in table "
                f"{self.table_name!r} (deleted?)",
                model=self.model_name, table=self.table_name,
            )
        return self._to_model(rows[0])

    # --- transactions, lifecycle ----------------------------------------------------

    @asynccontextmanager
    async def atransaction(self: DatabaseRegistry[Any]) -> AsyncIterator[AsyncConnection]:
        """One transaction for every async manager call on this database in the block.

        Scoped to the current asyncio task (tasks it spawns share the connection, one
        statement at a time). Nested blocks are savepoints; an exception rolls the
        block back and propagates. Yields SQLAlchemy's ``AsyncConnection``::

            async with User.objects.atransaction():
                user = await User.objects.acreate(name="Ada")
                await Post.objects.acreate(author_id=user.id, title="Notes")
        """
        adb = self._adb()
        tx = self._ambient(adb)
        if tx is not None:
            async with self._asavepoint(tx) as conn:
                yield conn
            return
        conn = await adb.connect()
        try:
            try:
                await conn.begin()
                if self.database.is_sqlite:
                    # Take the write lock now (waiting on the busy timeout), so the block
                    # never fails later on a lock upgrade.
                    await conn.exec_driver_sql("BEGIN IMMEDIATE")
            except self._aerrors() as exc:
                original = _driver_error(exc)
                raise self._error(original, "begin a transaction on") from original
            token = adb.tx.set(_AsyncTransaction(conn))
            try:
                yield conn
            except BaseException:
                with contextlib.suppress(Exception):  # the block's error matters more
                    await conn.rollback()
                raise
            finally:
                adb.tx.reset(token)
            try:
                await conn.commit()
            except self._aerrors() as exc:
                original = _driver_error(exc)
                raise self._error(original, "commit to") from original
        finally:
            await conn.close()

    @asynccontextmanager
    async def _asavepoint(self: DatabaseRegistry[Any],
                          tx: _AsyncTransaction) -> AsyncIterator[AsyncConnection]:
        conn = tx.connection
        try:
            async with tx.lock:
                nested = await conn.begin_nested()
        except self._aerrors() as exc:
            original = _driver_error(exc)
            raise self._error(original, "begin a savepoint on") from original
        try:
            yield conn
        except BaseException:
            async with tx.lock:
                await nested.rollback()
            raise
        try:
            async with tx.lock:
                await nested.commit()
        except self._aerrors() as exc:
            original = _driver_error(exc)
            raise self._error(original, "commit to") from original

    async def adispose(self: DatabaseRegistry[Any]) -> None:
        """Close this database's pooled async connections (they reopen on next use)."""
        adb = _async_databases.get(self.database.key)
        if adb is not None:
            await adb.dispose()
