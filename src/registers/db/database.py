"""One database's connections: :class:`Database` (engine, pool, thread connections,
SQLite pragmas, the ambient transaction).

SQLAlchemy owns what it is good at here (URL parsing, dialects, the pool of
``transaction()`` blocks, DDL). The manager's hot path talks to DBAPI connections directly:

* SQLite files: each thread keeps one connection (``isolation_level=None``; WAL,
  ``foreign_keys=ON``, a busy timeout). Write transactions start with ``BEGIN IMMEDIATE``
  so concurrent writers queue on the busy timeout instead of failing with
  "database is locked".
* ``sqlite:///:memory:``: one shared connection per URL, serialised by a lock.
* PostgreSQL / MySQL: each thread keeps one autocommit connection for manager operations
  (one round trip per statement); ``transaction()`` blocks use the pool.

The ambient transaction (:meth:`Database.transaction`) lives in a context variable, so a
``with Model.objects.transaction():`` block scopes every manager of the same database in
the current thread or asyncio task; nested blocks are savepoints.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from registers.db.connect import (
    DEFAULT_OPTIONS,
    DatabaseOptions,
    database_options,
    driver_missing,
    install_connect_hooks,
    require_driver,
)
from registers.db.dialects import is_packet_too_large
from registers.db.errors import connect_error, driver_error, first_line, transaction_error
from registers.db.exceptions import ConfigurationError, RegistryError, SchemaError
from registers.db.held_connection import ConnectionHolder
from registers.db.identity import database_identity
from registers.db.sqlite_setup import configure_sqlite, sqlite_end, sqlite_target

__all__ = ["IDLE_CHECK_SECONDS", "SQLITE_BUSY_TIMEOUT_MS", "Database", "detached_connection"]

SQLITE_BUSY_TIMEOUT_MS = DEFAULT_OPTIONS.busy_timeout_ms
# A server connection idle for longer than this is pinged before its next statement.
IDLE_CHECK_SECONDS = 5.0
# Rows of a result a kept cursor may go on holding once it was read (see
# Database.release_large_result).
KEPT_RESULT_ROWS = 1000
@dataclass
class _Transaction:
    connection: Any  # the DBAPI connection the managers use
    sa_connection: sa.Connection
    cursor: Any  # the managers' cursor on it
    done: bool = False  # the block was left (set first thing: see Database.transaction)


class Database:
    """Everything ``registers`` keeps for one database URL."""

    def __init__(self, url: str) -> None:
        try:
            self.url: sa.URL = sa.make_url(url)
            self.dialect_name = (dialect_class := self.url.get_dialect()).name
        except Exception as exc:
            raise ConfigurationError(f"unsupported database URL {url!r}: {exc}") from exc
        self.key = url
        self.identity = database_identity(url)  # fixed now: a relative path means today's cwd
        self.family = "mysql" if self.dialect_name in ("mysql", "mariadb") else self.dialect_name
        self.is_sqlite = self.family == "sqlite"
        database = self.url.database or ""
        self.is_memory = self.is_sqlite and (database in ("", ":memory:") or "mode=memory" in url)
        if self.is_sqlite and self.identity != url and not os.path.isabs(database):
            # the file the identity names (not in-memory, not a URI): after a chdir() too
            self.url = self.url.set(database=os.path.abspath(database))
        require_driver(self.url)  # found, not imported (see __getattr__)
        self.quoting_dialect: sa.Dialect = dialect_class()  # for every model's SQL: no driver
        self.options: DatabaseOptions = database_options(url)
        self.placeholder = "?" if self.is_sqlite else "%s"  # the driver's paramstyle
        self._engine_lock = threading.Lock()
        self._tx: contextvars.ContextVar[_Transaction | None] = contextvars.ContextVar(
            f"registers_tx_{id(self)}", default=None
        )
        self._local = threading.local()
        self._thread_connections: weakref.WeakSet[Any] = weakref.WeakSet()
        self._memory_lock = threading.RLock()
        self._memory_connection: sqlite3.Connection | None = None
        # auto_create of registered models, run on first use (so importing or decorating
        # never connects): table name -> its create_schema
        self.pending_tables: dict[str, Callable[[], None]] = {}
        # tables whose CREATE the database refused, with the error their model reports
        self.refused_tables: dict[str, SchemaError] = {}
        self._pending_lock = threading.RLock()
        self._creating: int | None = None  # the thread running create_pending()
        self.metadata = sa.MetaData()
        # the async side (an AsyncDatabase, registers.db.async_engine), made by the first
        # async call: until then the async machinery is not even imported
        self.async_side: Any = None
        self.stream_connections: Any = None  # MySQL iterate()'s (registers.db.pipeline)

    # --- engine ---------------------------------------------------------------------

    # Made on first use (__getattr__), not with the Database: decorating a model imports
    # no driver (psycopg alone adds about 0.1 s to a server URL's CLI --help).
    engine: sa.Engine
    dialect: sa.Dialect
    # What the driver raises for a failed statement. OverflowError: sqlite3 refuses ints
    # beyond 64 bits before the database sees them; UnicodeEncodeError: text that is not
    # valid UTF-8 (lone surrogates).
    driver_errors: tuple[type[BaseException], ...]

    def __getattr__(self, name: str) -> Any:
        """The engine, its dialect or the driver's errors: made by the first lookup of
        any of them, then found in the instance (this runs once)."""
        if name not in ("engine", "dialect", "driver_errors"):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        with self._engine_lock:
            if "engine" not in self.__dict__:
                engine = self._create_engine()
                self.dialect = engine.dialect
                self.driver_errors = (engine.dialect.loaded_dbapi.Error, OverflowError,
                                      UnicodeEncodeError)
                self.engine = engine  # last: the others are in place once it is
        return self.__dict__[name]

    def made_engine(self) -> bool:
        """Whether the engine is made (nothing to close or resize before that)."""
        return "engine" in self.__dict__

    def _create_engine(self) -> sa.Engine:
        try:
            if self.is_sqlite:
                if self.is_memory:
                    return sa.create_engine(self.url, creator=self._memory_creator,
                                            poolclass=sa.pool.StaticPool)
                return sa.create_engine(
                    self.url, creator=self._sqlite_connect, poolclass=sa.pool.NullPool
                )
            engine = sa.create_engine(self.url, **self.options.pool_arguments())
            install_connect_hooks(engine, self)
            return engine
        except ImportError as exc:
            raise driver_missing(self.url, exc) from exc
        except Exception as exc:
            raise ConfigurationError(f"cannot use database URL {self.key!r}: {exc}") from exc

    def reconfigure(self, options: DatabaseOptions) -> None:
        """Use ``options`` from now on: open connections are closed, the pool resized."""
        self.options = options
        self.dispose()
        if self.is_sqlite or not self.made_engine():
            return  # (an engine made later reads the new options)
        old = self.engine.pool
        self.engine.pool = sa.pool.QueuePool(
            old._creator,
            pool_size=options.pool_size,
            max_overflow=options.max_overflow,
            timeout=options.pool_timeout,
            pre_ping=True,
            recycle=1800,
            echo=old.echo,
            logging_name=old._orig_logging_name,
            reset_on_return=old._reset_on_return,
            _dispatch=old.dispatch,
            dialect=old._dialect,
        )

    def sqlite_target(self) -> tuple[str, bool]:
        """What ``sqlite3.connect`` opens for this SQLite URL (see :func:`sqlite_target`)."""
        return sqlite_target(self.url)

    @property
    def sqlite_read_only(self) -> bool:
        """Whether this SQLite URL opens the file read-only (``mode=ro``, ``immutable=1``)."""
        path, uri = self.sqlite_target()
        return uri and ("mode=ro" in path or "immutable=1" in path)

    def _sqlite_connect(self) -> sqlite3.Connection:
        path, uri = self.sqlite_target()
        conn = sqlite3.connect(
            path,
            timeout=self.options.busy_timeout,
            isolation_level=None,
            check_same_thread=False,
            uri=uri,
        )
        try:
            configure_sqlite(conn, memory=self.is_memory, options=self.options,
                             read_only=self.sqlite_read_only)
        except BaseException:
            conn.close()
            raise
        return conn

    def _memory_creator(self) -> sqlite3.Connection:
        with self._memory_lock:
            if self._memory_connection is None:
                self._memory_connection = self._sqlite_connect()
            return self._memory_connection

    # --- connections ----------------------------------------------------------------

    # --- tables created on first use -----------------------------------------------

    def create_later(self, table_name: str, create: Callable[[], None]) -> None:
        """Run ``create`` (a model's ``create_schema``) before this database's first use."""
        with self._pending_lock:
            self.pending_tables[table_name] = create

    def create_pending(self) -> None:
        """Create the tables of models registered with ``auto_create`` that are not yet
        created, parents before the tables whose foreign keys point at them.

        Every connection entry point calls this while tables are pending; other threads
        wait for it. A table the database refuses (a ``SchemaError``: a CHECK naming an
        unknown column, a name the server does not take) leaves the others alone: it is
        recorded in :attr:`refused_tables`, and its own model's operations report that
        error. When the database cannot be reached, everything stays pending and the
        error propagates (the next use tries again).
        """
        me = threading.get_ident()
        if self._creating == me:
            return  # the creation's own statements
        with self._pending_lock:
            self._creating = me
            try:
                order = {t.name: i for i, t in enumerate(self.metadata.sorted_tables)}
                for name in sorted(self.pending_tables, key=lambda n: order.get(n, -1)):
                    try:
                        self.pending_tables[name]()
                    except SchemaError as exc:
                        self.refused_tables[name] = exc
                    del self.pending_tables[name]
            finally:
                self._creating = None

    def ready_engine(self) -> sa.Engine:
        """The engine, once the pending tables exist (raw SQL must find them)."""
        if self.pending_tables:
            self.create_pending()
        return self.engine

    def current_transaction(self) -> _Transaction | None:
        """The ``transaction()`` block this context is in, if any."""
        tx = self._tx.get()
        if tx is not None and tx.done:  # left while an interrupt cut its cleanup short
            self._tx.set(None)
            return None
        return tx

    def acquire(self) -> tuple[Any, bool]:
        """A DBAPI connection for one operation, and whether this operation owns it.

        Inside a transaction block the block's connection is returned (not owned).
        Otherwise it is the thread's own connection (see :meth:`autocommit_connection`);
        an operation of several statements brackets them with :meth:`begin` and
        :meth:`commit`.
        """
        if self.pending_tables:
            self.create_pending()
        tx = self.current_transaction()
        if tx is not None:
            return tx.connection, False
        if self.is_memory:
            self._memory_lock.acquire()
            return self._memory_creator(), True
        holder = getattr(self._local, "holder", None)
        if holder is not None:  # a forked child starts without (engine._after_fork_in_child)
            if not self.is_sqlite:
                self._check_idle(holder)
                holder = self._local.holder
            return holder.connection, True
        if self.is_sqlite:
            return self._new_thread_connection(), True
        return self._new_server_connection().connection, True

    def shown_url(self) -> str:
        """The URL for messages (password hidden)."""
        return self.url.render_as_string(hide_password=True)

    def connect_error(self, exc: BaseException) -> RegistryError:
        """The error for a connection that could not be opened or checked out."""
        if isinstance(exc, RegistryError):  # the engine could not be made (its driver)
            return exc
        if self.is_sqlite:
            detail = first_line(driver_error(exc))
            return ConfigurationError(f"cannot open SQLite database {self.url.database!r}: "
                                      f"{detail}")
        return connect_error(self.shown_url(), exc, self.options)

    def autocommit_connection(self) -> Any:
        """The thread's own DBAPI connection, in autocommit, when a single statement may
        run on it directly (outside ``transaction()``); else None.

        The shortest path there is: one round trip per statement, no pool checkout, no
        liveness ping, no BEGIN/ROLLBACK. SQLite files keep one connection per thread
        (None here until :meth:`acquire` opened it, and None while a statement listener
        is registered: the SQLite fast path skips the cursor that listeners see).
        PostgreSQL and MySQL get one per thread on first use, detached from the pool and
        closed with the thread. A server connection idle for longer than
        ``IDLE_CHECK_SECONDS`` is pinged before use, so one left stale by a server
        restart is replaced instead of failing the next write.
        """
        if self.pending_tables:
            self.create_pending()
        if self.is_memory or self._tx.get() is not None:
            return None
        holder = getattr(self._local, "holder", None)
        if self.is_sqlite:
            if holder is None or self.engine.dispatch.before_cursor_execute:
                return None
            return holder.connection
        if holder is None:
            holder = self._new_server_connection()
        else:
            self._check_idle(holder)
            holder = self._local.holder
        return holder.connection

    def _check_idle(self, holder: ConnectionHolder) -> None:
        """Replace the thread's server connection if it sat idle and no longer answers."""
        now = time.monotonic()
        if now - holder.used > IDLE_CHECK_SECONDS and not self.answers(holder.connection):
            self.discard_connection()
            holder = self._new_server_connection()
        holder.used = now

    def discard_connection(self, connection: Any = None) -> None:
        """Never use a connection again, e.g. after it died: forget (and close) the
        thread's autocommit connection; with ``connection``, only if that is still the
        thread's, or invalidate it if it is the ``transaction()`` block's (the block's
        rollback then skips it, and the pool never hands it out again)."""
        holder = getattr(self._local, "holder", None)
        if connection is not None and (holder is None or holder.connection is not connection):
            tx = self._tx.get()
            if tx is not None and tx.connection is connection:
                with contextlib.suppress(Exception):
                    tx.sa_connection.invalidate()
            return
        self._local.holder = None
        if holder is not None:
            holder.close()

    def cursor(self, connection: Any) -> Any:
        """A cursor to send one statement on ``connection``: the one kept for the thread's
        own server connection or for the ``transaction()`` block's connection, else a
        new one."""
        owner = self._cursor_owner(connection)
        kept = None if owner is None else owner.cursor
        return connection.cursor() if kept is None else kept

    def _cursor_owner(self, connection: Any) -> _Transaction | ConnectionHolder | None:
        """What keeps a cursor for ``connection``: the current block, or the thread."""
        tx = self._tx.get()
        if tx is not None:
            return tx if tx.connection is connection else None
        holder = getattr(self._local, "holder", None)
        return holder if holder is not None and holder.connection is connection else None

    def release_large_result(self, connection: Any) -> None:
        """After a statement's rows were read: if the kept cursor on ``connection`` holds
        more than ``KEPT_RESULT_ROWS`` rows, close it (a new one is made), so the
        driver's copy of a large result is not kept while the connection sits idle."""
        owner = self._cursor_owner(connection)
        if owner is None or owner.cursor is None or owner.cursor.rowcount <= KEPT_RESULT_ROWS:
            return
        kept, owner.cursor = owner.cursor, connection.cursor()
        with contextlib.suppress(Exception):
            kept.close()

    def is_disconnect(self, exc: BaseException, connection: Any) -> bool:
        """Whether ``exc`` means ``connection`` is gone (server restarted, link cut; MySQL
        closes it after error 1153, a statement over ``max_allowed_packet``)."""
        if is_packet_too_large(self.family, exc):
            return True
        try:
            return bool(self.dialect.is_disconnect(exc, connection, None))  # type: ignore[arg-type]
        except Exception:  # pragma: no cover - a dialect that cannot tell
            return False

    def answers(self, connection: Any) -> bool:
        """Whether a server ``connection`` still answers (``SELECT 1``)."""
        try:
            cursor = self.cursor(connection)
            cursor.execute("SELECT 1")
            cursor.fetchall()
            return True
        except Exception:
            return False
        except BaseException:  # Ctrl-C while it answers: its answer may still come
            self.discard_connection(connection)
            raise

    def spare_connection(self) -> Any:
        """A new DBAPI connection outside the pool, which the caller closes: the error
        path's questions to the server never wait on an exhausted pool."""
        return self.engine.pool._creator()  # type: ignore[call-arg]

    def _new_server_connection(self) -> ConnectionHolder:
        connection = detached_connection(self)  # the thread's for its lifetime
        holder = ConnectionHolder(connection, connection.cursor())
        self._local.holder = holder
        self._thread_connections.add(holder)
        return holder

    def _new_thread_connection(self) -> sqlite3.Connection:
        try:
            conn = self._sqlite_connect()
        except sqlite3.Error as exc:
            raise ConfigurationError(
                f"cannot open SQLite database {self.url.database!r}: {exc}"
            ) from exc
        holder = ConnectionHolder(conn)
        self._local.holder = holder
        self._thread_connections.add(holder)
        return conn

    def release(self, conn: Any, owned: bool) -> None:
        """Give back a connection from :meth:`acquire` (after commit or rollback)."""
        if owned and self.is_memory:
            self._memory_lock.release()

    def may_retry(self, started: float) -> bool:
        """Whether a write that began at ``started`` (``time.monotonic()``) and hit a
        transient error may try again. On SQLite a busy error already waited out the busy
        timeout, so retrying stops once ``busy_timeout`` has passed in total: the caller
        waits about ``busy_timeout`` (at most twice that), not once per attempt."""
        return not self.is_sqlite or time.monotonic() - started < self.options.busy_timeout

    def begin(self, conn: Any) -> None:
        """Start a write transaction on an owned connection."""
        self.cursor(conn).execute("BEGIN IMMEDIATE" if self.is_sqlite else "BEGIN")

    def commit(self, conn: Any) -> None:
        if self.is_sqlite:
            sqlite_end(conn, "COMMIT")
        else:
            self.cursor(conn).execute("COMMIT")

    def rollback(self, conn: Any) -> None:
        try:
            if self.is_sqlite:
                sqlite_end(conn, "ROLLBACK")
            else:
                self.cursor(conn).execute("ROLLBACK")
        except Exception:  # the original error matters more than a failed rollback
            # a server connection that cannot even roll back is broken: never reuse it
            holder = getattr(self._local, "holder", None)
            if not self.is_sqlite and holder is not None and holder.connection is conn:
                self.discard_connection()

    # --- transactions ---------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """Scope every manager operation on this database to one transaction.

        Yields a SQLAlchemy ``Connection`` in that transaction, for raw SQL
        (``conn.execute(sa.text(...))``). Nested blocks become savepoints; an exception
        rolls back the innermost block and propagates.
        """
        if self.pending_tables:
            self.create_pending()
        tx = self.current_transaction()
        if tx is not None:
            yield from self._savepoint(tx)
            return
        if self.is_memory:
            self._memory_lock.acquire()
        try:
            connection = self._connect()
            try:
                root = connection.begin()
                dbapi_connection = connection.connection.dbapi_connection
                if self.is_sqlite:
                    # IMMEDIATE takes the write lock now (waiting on the busy timeout),
                    # so the block can never fail later on a lock upgrade.
                    dbapi_connection.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]
                cursor = dbapi_connection.cursor()  # type: ignore[union-attr]
                block = _Transaction(dbapi_connection, connection, cursor)
                owner = os.getpid()
            except BaseException as exc:
                connection.close()
                if isinstance(exc, Exception) and self._is_driver_error(exc):
                    raise self._tx_error(exc, "begin a transaction on") from exc
                raise
            try:
                self._tx.set(block)  # inside the try: Ctrl-C can land right after a call
                yield connection
            except BaseException:
                if os.getpid() != owner:
                    raise  # a forked child left the block: the transaction is the parent's
                with contextlib.suppress(Exception):
                    root.rollback()
                raise
            else:
                if os.getpid() != owner:
                    return  # a forked child left the block: commit nothing, close nothing
                try:
                    root.commit()
                except Exception as exc:
                    with contextlib.suppress(Exception):
                        root.rollback()
                    if self._is_driver_error(exc):
                        raise self._tx_error(exc, "commit the transaction on") from exc
                    raise
            finally:
                # First, before any call (Ctrl-C lands right after one): the block is
                # done, so nothing uses it even if an interrupt cuts the rest short.
                block.done = True
                # Left as it was found: outside any (this is the outermost block). A
                # forked child has a context var of its own, where the block is not set.
                if self._tx.get() is block:
                    self._tx.set(None)
                    with contextlib.suppress(Exception):  # a broken connection is discarded
                        connection.close()
        finally:
            if self.is_memory:
                self._memory_lock.release()

    def _tx_error(self, exc: BaseException, action: str) -> RegistryError:
        return transaction_error(self.shown_url(), self.family, exc, action,
                                 self.options.busy_timeout)

    def _is_driver_error(self, exc: BaseException) -> bool:
        return isinstance(exc, (sa.exc.SQLAlchemyError, self.dialect.loaded_dbapi.Error,
                                OSError))

    def _connect(self) -> sa.Connection:
        try:
            return self.engine.connect()
        except Exception as exc:
            raise self.connect_error(exc) from exc

    def _savepoint(self, tx: _Transaction) -> Iterator[sa.Connection]:
        nested = tx.sa_connection.begin_nested()
        try:
            yield tx.sa_connection
        except BaseException:
            nested.rollback()
            raise
        else:
            nested.commit()

    # --- lifecycle ------------------------------------------------------------------

    def forget_parents_connections(self) -> None:
        """In a forked child: no connection, outside any ``transaction()`` or
        ``atransaction()`` of the parent's (its connections stay its, never closed here)."""
        self._local = threading.local()
        self._thread_connections = weakref.WeakSet()
        self._tx = contextvars.ContextVar(f"registers_tx_{id(self)}", default=None)
        if self.made_engine():
            self.engine.dispose(close=False)
        if self.async_side is not None:
            self.async_side.forget_parents_connections()

    def close_connections(self) -> None:
        for holder in [*self._thread_connections, *filter(None, [self.stream_connections])]:
            holder.close()
        self._thread_connections = weakref.WeakSet()
        self._local = threading.local()

    def dispose(self) -> None:
        """Close every connection of this database (the pool and per-thread ones)."""
        self.close_connections()
        if self._memory_connection is not None:
            self._memory_connection.close()
            self._memory_connection = None
        if self.made_engine():
            self.engine.dispose()


def detached_connection(database: Database) -> Any:
    """A new autocommit DBAPI connection from the pool (hooks run), then the caller's."""
    try:
        fairy = database.engine.raw_connection()
    except Exception as exc:  # the pool raises the driver's own errors
        raise database.connect_error(exc) from exc
    fairy.detach()
    connection = fairy.dbapi_connection
    assert connection is not None
    database.dialect.set_isolation_level(connection, "AUTOCOMMIT")
    return connection
