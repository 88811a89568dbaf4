"""Engines and connections: one :class:`Database` per URL, SQLite pragmas, transactions.

SQLAlchemy owns what it is good at here (URL parsing, dialects, the connection pool for
server databases, DDL). The manager's hot path talks to DBAPI connections directly:

* SQLite files: each thread keeps one connection (``isolation_level=None``; WAL,
  ``foreign_keys=ON``, a busy timeout). Write transactions start with ``BEGIN IMMEDIATE``
  so concurrent writers queue on the busy timeout instead of failing with
  "database is locked".
* ``sqlite:///:memory:``: one shared connection per URL, serialised by a lock.
* PostgreSQL / MySQL: a connection is checked out of SQLAlchemy's pool per operation.

The ambient transaction (:meth:`Database.transaction`) lives in a context variable, so a
``with Model.objects.transaction():`` block scopes every manager of the same database in
the current thread or asyncio task; nested blocks are savepoints.
"""

from __future__ import annotations

import contextlib
import contextvars
import operator
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from registers.db.errors import connect_error
from registers.db.exceptions import ConfigurationError

__all__ = [
    "Database",
    "configure_sqlite",
    "dispose_all",
    "dispose_engine",
    "get_database",
    "get_engine",
]

SQLITE_BUSY_TIMEOUT_MS = 30_000
# A server connection idle for longer than this is pinged before its next statement.
IDLE_CHECK_SECONDS = 5.0
_POOL_SIZE = 10


@dataclass
class _Transaction:
    connection: Any  # the DBAPI connection the managers use
    sa_connection: sa.Connection


class Database:
    """Everything ``registers`` keeps for one database URL."""

    def __init__(self, url: str) -> None:
        try:
            self.url: sa.URL = sa.make_url(url)
            self.dialect_name = self.url.get_dialect().name
        except Exception as exc:
            raise ConfigurationError(f"unsupported database URL {url!r}: {exc}") from exc
        self.key = url
        self.family = "mysql" if self.dialect_name in ("mysql", "mariadb") else self.dialect_name
        self.is_sqlite = self.family == "sqlite"
        database = self.url.database or ""
        self.is_memory = self.is_sqlite and (database in ("", ":memory:") or "mode=memory" in url)
        self.engine = self._create_engine()
        self.dialect = self.engine.dialect
        self.placeholder = "?" if self.dialect.paramstyle == "qmark" else "%s"
        # What the driver raises for a failed statement. OverflowError: sqlite3 refuses
        # ints beyond 64 bits before the database sees them; UnicodeEncodeError: text
        # that is not valid UTF-8 (lone surrogates).
        self.driver_errors: tuple[type[BaseException], ...] = (
            self.dialect.loaded_dbapi.Error, OverflowError, UnicodeEncodeError,
        )
        self._tx: contextvars.ContextVar[_Transaction | None] = contextvars.ContextVar(
            f"registers_tx_{id(self)}", default=None
        )
        self._local = threading.local()
        self._thread_connections: weakref.WeakSet[Any] = weakref.WeakSet()
        self._memory_lock = threading.RLock()
        self._memory_connection: sqlite3.Connection | None = None
        self.metadata = sa.MetaData()

    # --- engine ---------------------------------------------------------------------

    def _create_engine(self) -> sa.Engine:
        try:
            if self.is_sqlite:
                if self.is_memory:
                    return sa.create_engine(
                        self.url,
                        creator=self._memory_creator,
                        poolclass=sa.pool.StaticPool,
                    )
                return sa.create_engine(
                    self.url, creator=self._sqlite_connect, poolclass=sa.pool.NullPool
                )
            options: dict[str, Any] = {
                "pool_size": _POOL_SIZE,
                "max_overflow": 2 * _POOL_SIZE,
                "pool_pre_ping": True,
                "pool_recycle": 1800,
            }
            if self.family == "postgresql":
                return sa.create_engine(self.url, **options)
            return sa.create_engine(self.url, **options)
        except ImportError as exc:
            extra = "postgres" if self.family == "postgresql" else "mysql"
            raise ConfigurationError(
                f"the driver for {self.url.drivername!r} is not installed: "
                f"pip install 'registers[{extra}]' ({exc})"
            ) from exc
        except Exception as exc:
            raise ConfigurationError(f"cannot use database URL {self.key!r}: {exc}") from exc

    def sqlite_target(self) -> tuple[str, bool]:
        """What ``sqlite3.connect`` opens for this SQLite URL: (path, whether it is a URI)."""
        path = self.url.database or ""
        uri = str(self.url.query.get("uri", "false")).lower() == "true" or path.startswith("file:")
        return path, uri

    def _sqlite_connect(self) -> sqlite3.Connection:
        path, uri = self.sqlite_target()
        conn = sqlite3.connect(
            path,
            timeout=SQLITE_BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,
            check_same_thread=False,
            uri=uri,
        )
        configure_sqlite(conn, memory=self.is_memory)
        return conn

    def _memory_creator(self) -> sqlite3.Connection:
        with self._memory_lock:
            if self._memory_connection is None:
                self._memory_connection = self._sqlite_connect()
            return self._memory_connection

    # --- connections ----------------------------------------------------------------

    def current_transaction(self) -> _Transaction | None:
        return self._tx.get()

    def acquire(self) -> tuple[Any, bool]:
        """A DBAPI connection for one operation, and whether this operation owns it.

        Inside a transaction block the block's connection is returned (not owned).
        Otherwise it is the thread's own connection (see :meth:`autocommit_connection`);
        an operation of several statements brackets them with :meth:`begin` and
        :meth:`commit`.
        """
        tx = self._tx.get()
        if tx is not None:
            return tx.connection, False
        if self.is_memory:
            self._memory_lock.acquire()
            return self._memory_creator(), True
        holder = getattr(self._local, "holder", None)
        if holder is not None and holder.pid == os.getpid():
            if not self.is_sqlite:
                self._check_idle(holder)
                holder = self._local.holder
            return holder.connection, True
        if self.is_sqlite:
            return self._new_thread_connection(), True
        return self._new_server_connection().connection, True

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
        if self.is_memory or self._tx.get() is not None:
            return None
        holder = getattr(self._local, "holder", None)
        if self.is_sqlite:
            if holder is None or self.engine.dispatch.before_cursor_execute:
                return None
            return holder.connection
        if holder is None or holder.pid != os.getpid():
            holder = self._new_server_connection()
        else:
            self._check_idle(holder)
            holder = self._local.holder
        return holder.connection

    def _check_idle(self, holder: _ConnectionHolder) -> None:
        """Replace the thread's server connection if it sat idle and no longer answers."""
        now = time.monotonic()
        if now - holder.used > IDLE_CHECK_SECONDS and not self._alive(holder.connection):
            self.discard_autocommit_connection()
            holder = self._new_server_connection()
        holder.used = now

    def discard_autocommit_connection(self) -> None:
        """Forget (and close) the thread's autocommit connection, e.g. after it died."""
        holder = getattr(self._local, "holder", None)
        self._local.holder = None
        if holder is not None:
            holder.close()

    def is_disconnect(self, exc: BaseException, connection: Any) -> bool:
        """Whether ``exc`` means ``connection`` is gone (server restarted, link cut)."""
        try:
            return bool(self.dialect.is_disconnect(exc, connection, None))  # type: ignore[arg-type]
        except Exception:  # pragma: no cover - a dialect that cannot tell
            return False

    def _alive(self, connection: Any) -> bool:
        try:
            cursor = connection.cursor()
            cursor.execute("SELECT 1")
            cursor.fetchall()
            cursor.close()
            return True
        except Exception:
            return False

    def _new_server_connection(self) -> _ConnectionHolder:
        try:
            fairy = self.engine.raw_connection()
        except sa.exc.SQLAlchemyError as exc:
            raise connect_error(self.url.render_as_string(hide_password=True), exc) from exc
        fairy.detach()  # ours for the thread's lifetime, not the pool's
        connection = fairy.dbapi_connection
        assert connection is not None
        self.dialect.set_isolation_level(connection, "AUTOCOMMIT")
        holder = _ConnectionHolder(connection)
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
        holder = _ConnectionHolder(conn)
        self._local.holder = holder
        self._thread_connections.add(holder)
        return conn

    def release(self, conn: Any, owned: bool) -> None:
        """Give back a connection from :meth:`acquire` (after commit or rollback)."""
        if owned and self.is_memory:
            self._memory_lock.release()

    def begin(self, conn: Any) -> None:
        """Start a write transaction on an owned connection."""
        _run(conn, "BEGIN IMMEDIATE" if self.is_sqlite else "BEGIN")

    def commit(self, conn: Any) -> None:
        if self.is_sqlite:
            _sqlite_end(conn, "COMMIT")
        else:
            _run(conn, "COMMIT")

    def rollback(self, conn: Any) -> None:
        try:
            if self.is_sqlite:
                _sqlite_end(conn, "ROLLBACK")
            else:
                _run(conn, "ROLLBACK")
        except Exception:  # the original error matters more than a failed rollback
            pass

    # --- transactions ---------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """Scope every manager operation on this database to one transaction.

        Yields a SQLAlchemy ``Connection`` in that transaction, for raw SQL
        (``conn.execute(sa.text(...))``). Nested blocks become savepoints; an exception
        rolls back the innermost block and propagates.
        """
        tx = self._tx.get()
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
            except BaseException:
                connection.close()
                raise
            token = self._tx.set(_Transaction(dbapi_connection, connection))
            try:
                yield connection
            except BaseException:
                with contextlib.suppress(Exception):
                    root.rollback()
                raise
            else:
                root.commit()
            finally:
                self._tx.reset(token)
                connection.close()
        finally:
            if self.is_memory:
                self._memory_lock.release()

    def _connect(self) -> sa.Connection:
        try:
            return self.engine.connect()
        except sa.exc.SQLAlchemyError as exc:
            raise connect_error(self.url.render_as_string(hide_password=True), exc) from exc

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

    def close_connections(self) -> None:
        for holder in list(self._thread_connections):
            holder.close()
        self._thread_connections = weakref.WeakSet()
        self._local = threading.local()

    def dispose(self) -> None:
        """Close every connection of this database (the pool and per-thread ones)."""
        self.close_connections()
        if self._memory_connection is not None:
            self._memory_connection.close()
            self._memory_connection = None
        self.engine.dispose()


class _ConnectionHolder:
    """A thread's own connection; closed when the thread (and its locals) go away."""

    __slots__ = ("__weakref__", "connection", "pid", "used")

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.pid = os.getpid()
        self.used = time.monotonic()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.connection.close()

    def __del__(self) -> None:
        if self.pid == os.getpid():
            self.close()


def configure_sqlite(connection: Any, *, memory: bool = False) -> None:
    """Set up one SQLite DBAPI connection the way every ``registers`` connection is.

    WAL (files only), ``synchronous=NORMAL``, ``foreign_keys=ON``, the busy timeout, and the
    ``registers_decimal`` function behind exact ``F()`` arithmetic on Decimal text. Used by
    the sync connections here and by the async engine's ``connect`` hook.
    """
    cursor = connection.cursor()
    try:
        for pragma in sqlite_pragmas(memory=memory):
            cursor.execute(pragma)
    finally:
        cursor.close()
    for name, arity, function in sqlite_functions():
        connection.create_function(name, arity, function, deterministic=True)


def sqlite_pragmas(*, memory: bool = False) -> list[str]:
    """The pragmas :func:`configure_sqlite` runs, in order (for drivers it cannot reach)."""
    pragmas = [f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}"]
    if not memory:
        pragmas += ["PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL"]
    pragmas.append("PRAGMA foreign_keys = ON")
    # LIKE is case-sensitive, as on PostgreSQL and (binary collation) MySQL/MariaDB.
    pragmas.append("PRAGMA case_sensitive_like = ON")
    return pragmas


def sqlite_functions() -> list[tuple[str, int, Callable[..., Any]]]:
    """The deterministic SQL functions :func:`configure_sqlite` registers: (name, arity, fn)."""
    return [("registers_decimal", 3, _decimal_op), ("registers_divisor", 1, _divisor),
            ("registers_int", 1, _checked_int), ("registers_lower", 1, _lower)]


def _lower(value: Any) -> Any:
    """Unicode lower case for ``icontains``/``ilike`` (SQLite's lower() is ASCII only)."""
    return value.lower() if isinstance(value, str) else value


class ExpressionFailed(ValueError):
    """Raised inside a SQLite function of an ``F()`` expression (sqlite3 reports it as
    "user-defined function raised exception"; the error translator names it)."""


def _checked_int(value: Any) -> Any:
    """An integer step of an ``F()`` expression on SQLite, which would turn an overflow
    into a REAL: refused, as PostgreSQL and MySQL refuse it."""
    if isinstance(value, float):
        raise ExpressionFailed("integer overflow")
    return value


def _divisor(value: Any) -> Any:
    """The divisor of an ``F()`` division on SQLite, refusing zero as the servers do."""
    if value is not None and value == 0:
        raise ExpressionFailed("division by zero")
    return value


_DECIMAL_OPS = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
}


def _decimal_op(op: str, left: Any, right: Any) -> str | None:
    """Exact arithmetic on SQLite's Decimal text (``F("balance") + Decimal("0.20")``)."""
    if left is None or right is None:
        return None
    if op == "/" and Decimal(str(right)) == 0:
        raise ExpressionFailed("division by zero")
    return str(_DECIMAL_OPS[op](Decimal(str(left)), Decimal(str(right))))


def _run(conn: Any, statement: str) -> None:
    """Send a transaction-control statement on a DBAPI connection (no listener sees it)."""
    cursor = conn.cursor()
    try:
        cursor.execute(statement)
    finally:
        cursor.close()


def _sqlite_end(conn: sqlite3.Connection, statement: str) -> None:
    if conn.in_transaction:
        conn.execute(statement)


_databases: dict[str, Database] = {}
_databases_lock = threading.Lock()


def get_database(url: str) -> Database:
    """The :class:`Database` for ``url``, created on first use."""
    db = _databases.get(url)
    if db is not None:
        return db
    with _databases_lock:
        db = _databases.get(url)
        if db is None:
            db = _databases[url] = Database(url)
        return db


def get_engine(url: str) -> sa.Engine:
    """The one SQLAlchemy engine ``registers`` uses for ``url``.

    A bare path such as ``"app.db"`` means ``sqlite:///app.db``.
    """
    from registers.db.typing_utils import normalize_url

    return get_database(normalize_url(url, "")).engine


def dispose_engine(url: str) -> bool:
    """Release every connection held for ``url``. Returns whether one was held.

    Models of that URL keep working: connections are opened again on next use.
    """
    from registers.db.typing_utils import normalize_url

    db = _databases.get(normalize_url(url, ""))
    if db is None:
        return False
    db.dispose()
    return True


def dispose_all() -> None:
    """Release the connections of every database."""
    for db in list(_databases.values()):
        db.dispose()


def _after_fork_in_child() -> None:
    # A forked child must never reuse the parent's SQLite connections or pool.
    for db in _databases.values():
        db._local = threading.local()
        db._thread_connections = weakref.WeakSet()
        db.engine.dispose(close=False)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
