"""How ``registers`` opens connections: per-database options and bounded waits.

:func:`configure_database` is the one place to set, per database URL, how long a caller
may wait (to connect, for a pooled connection, for the server's answer, for SQLite's
lock), how large the pool is, and how durable SQLite commits are. The engines of
:mod:`registers.db.engine` (sync) and :mod:`registers.db.async_engine` (async) read these options
when they open a connection, so a change takes effect for every new connection.

What each bound becomes per driver:

==================  =====================================  ============================
option              PostgreSQL (psycopg)                   MariaDB/MySQL (PyMySQL,
                                                           aiomysql)
==================  =====================================  ============================
connect_timeout     ``connect_timeout`` (libpq: whole      socket connect and each
                    connect, at least 2 s)                 handshake read
read_timeout        each wait for the server inside one    socket read/write timeout
                    driver call (``Connection.wait``)      (aiomysql: per read)
statement_timeout   ``SET statement_timeout`` (server)     ``max_statement_time``
                                                           (MariaDB) /
                                                           ``max_execution_time`` (MySQL)
pool_timeout        SQLAlchemy ``QueuePool(timeout=)``     same
==================  =====================================  ============================

SQLite has no network: ``busy_timeout`` bounds the wait for another connection's lock and
``sqlite_synchronous`` chooses ``NORMAL`` (fast; an OS crash or power loss can undo the
last commits) or ``FULL`` (every commit reaches the disk before it returns).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import math
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from registers.db.exceptions import ConfigurationError

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = [
    "DEFAULT_OPTIONS",
    "ConnectingDatabase",
    "DatabaseOptions",
    "configure_database",
    "database_options",
    "driver_missing",
    "install_connect_hooks",
    "on_configure",
    "require_driver",
]

# Each SQLAlchemy driver name: the module it imports, and what installs it (a driver not
# listed is found by importing it, on first use).
_DRIVERS = {
    "psycopg": ("psycopg", "pip install 'registers[postgres]'"),
    "pymysql": ("pymysql", "pip install 'registers[mysql]'"),
    "asyncpg": ("asyncpg", "pip install 'registers[async]'"),
    "aiomysql": ("aiomysql", "pip install 'registers[async]'"),
    "psycopg2": ("psycopg2", "pip install psycopg2-binary, or use postgresql+psycopg:// "
                             "with pip install 'registers[postgres]'"),
    "pg8000": ("pg8000", "pip install pg8000, or use postgresql+psycopg:// "
                         "with pip install 'registers[postgres]'"),
    "mysqldb": ("MySQLdb", "pip install mysqlclient, or use mysql+pymysql:// "
                           "with pip install 'registers[mysql]'"),
    "mysqlconnector": ("mysql.connector", "pip install mysql-connector-python, or use "
                                          "mysql+pymysql:// with pip install 'registers[mysql]'"),
    "mariadbconnector": ("mariadb", "pip install mariadb, or use mysql+pymysql:// "
                                    "with pip install 'registers[mysql]'"),
}


def require_driver(url: sa.URL) -> None:
    """Raise the ``ConfigurationError`` of :func:`driver_missing` now if ``url``'s driver
    is not installed. The driver is looked for, not imported: the engine that imports
    it is made on first use, so decorating a model stays cheap (a CLI's ``--help``)."""
    known = _DRIVERS.get(url.get_dialect().driver)
    if known is None:
        return
    try:
        found = importlib.util.find_spec(known[0]) is not None
    except (ImportError, ValueError):  # a parent package missing, or a broken one
        found = False
    if not found:
        raise driver_missing(url, ModuleNotFoundError(f"No module named {known[0]!r}"))


def driver_missing(url: sa.URL, exc: BaseException) -> ConfigurationError:
    """The error for a URL whose driver cannot be imported, saying what installs it (the
    ``mysql://`` and ``postgresql://`` defaults, MySQLdb and psycopg2, are not the drivers
    the extras install)."""
    driver = url.get_dialect().driver
    extra = "postgres" if url.get_backend_name() == "postgresql" else "mysql"
    install = _DRIVERS.get(driver, ("", f"pip install 'registers[{extra}]'"))[1]
    return ConfigurationError(
        f"the driver for {url.drivername!r} ({driver}) is not installed: {install} ({exc})"
    )


SqliteSynchronous = Literal["normal", "full"]


@dataclass(frozen=True)
class DatabaseOptions:
    """The connection options of one database (see :func:`configure_database`)."""

    connect_timeout: float = 10.0
    pool_timeout: float = 10.0
    read_timeout: float | None = 120.0
    statement_timeout: float | None = None
    busy_timeout: float = 30.0
    pool_size: int = 10
    max_overflow: int = 20
    sqlite_synchronous: SqliteSynchronous = "normal"

    @property
    def busy_timeout_ms(self) -> int:
        return int(self.busy_timeout * 1000)

    def pool_arguments(self) -> dict[str, Any]:
        """``create_engine`` / ``create_async_engine`` keywords of a server pool: the
        configured size and checkout timeout, a liveness ping on checkout (the pool serves
        ``transaction()`` blocks, which cannot be resent), recycled after 30 minutes."""
        return {"pool_size": self.pool_size, "max_overflow": self.max_overflow,
                "pool_timeout": self.pool_timeout, "pool_pre_ping": True,
                "pool_recycle": 1800}


DEFAULT_OPTIONS = DatabaseOptions()

_SERVER_ONLY = ("pool_timeout", "read_timeout", "statement_timeout", "pool_size",
                "max_overflow", "connect_timeout")
_SQLITE_ONLY = ("busy_timeout", "sqlite_synchronous")

_options: dict[str, DatabaseOptions] = {}
_options_lock = threading.Lock()
# Called with (url, options) after configure_database() stored them: the engine modules
# register here to rebuild what they have open (this module imports neither).
_on_configure: list[Callable[[str, DatabaseOptions], None]] = []


def on_configure(listener: Callable[[str, DatabaseOptions], None]) -> None:
    """Call ``listener(url, options)`` whenever :func:`configure_database` runs."""
    _on_configure.append(listener)


def database_options(url: str) -> DatabaseOptions:
    """The options configured for ``url`` (a normalised URL), or the defaults."""
    return _options.get(url, DEFAULT_OPTIONS)


def configure_database(
    url: str,
    *,
    connect_timeout: float = DEFAULT_OPTIONS.connect_timeout,
    pool_timeout: float = DEFAULT_OPTIONS.pool_timeout,
    read_timeout: float | None = DEFAULT_OPTIONS.read_timeout,
    statement_timeout: float | None = DEFAULT_OPTIONS.statement_timeout,
    busy_timeout: float = DEFAULT_OPTIONS.busy_timeout,
    pool_size: int = DEFAULT_OPTIONS.pool_size,
    max_overflow: int = DEFAULT_OPTIONS.max_overflow,
    sqlite_synchronous: SqliteSynchronous = DEFAULT_OPTIONS.sqlite_synchronous,
) -> DatabaseOptions:
    """Set how ``registers`` connects to the database at ``url``; returns the options.

    Call it before or after models of ``url`` are registered: the connections already
    open are closed, and every new one (sync and async) uses the new options. Options
    not given get their default (each call replaces the whole set). Times are seconds.

    Args:
        url: The database URL, as given to ``@database_registry`` (a bare path means
            SQLite).
        connect_timeout: Longest wait to open a connection (servers). Default 10 s.
        pool_timeout: Longest wait for a free pooled connection when ``pool_size +
            max_overflow`` are all in use (servers). Default 10 s.
        read_timeout: Longest wait for the server to answer inside one operation (a
            stalled server or network); the connection is then closed. Must exceed
            ``statement_timeout``. ``None`` waits forever. Default 120 s.
        statement_timeout: The server cancels a statement running longer (PostgreSQL
            ``statement_timeout``, MariaDB ``max_statement_time``). Default: no limit.
        busy_timeout: SQLite: longest wait for another connection's lock. Default 30 s.
        pool_size: Connections kept open per process (servers). Default 10.
        max_overflow: Extra connections opened under load (servers). Default 20.
        sqlite_synchronous: ``"normal"`` (default; with WAL, an OS crash or power loss
            can undo the last commits, an application crash cannot) or ``"full"``
            (every commit is on disk before it returns; slower).

    Raises:
        ConfigurationError: a value is out of range, or an option does not apply to
            this backend (``pool_size`` on SQLite, ``busy_timeout`` on PostgreSQL...).

    Example:
        >>> from registers.db import configure_database
        >>> configure_database("sqlite:///app.db", sqlite_synchronous="full")
        DatabaseOptions(...)
    """
    from registers.db.typing_utils import normalize_url

    try:
        key = normalize_url(url, "")
    except ValueError as exc:
        raise ConfigurationError(f"configure_database: {exc}") from exc
    options = DatabaseOptions(
        connect_timeout=_seconds("connect_timeout", connect_timeout),
        pool_timeout=_seconds("pool_timeout", pool_timeout),
        read_timeout=_seconds("read_timeout", read_timeout, optional=True),
        statement_timeout=_seconds("statement_timeout", statement_timeout, optional=True),
        busy_timeout=_seconds("busy_timeout", busy_timeout, zero=True),
        pool_size=_count("pool_size", pool_size, minimum=1),
        max_overflow=_count("max_overflow", max_overflow, minimum=0),
        sqlite_synchronous=_synchronous(sqlite_synchronous),
    )
    if (options.read_timeout is not None and options.statement_timeout is not None
            and options.read_timeout <= options.statement_timeout):
        raise ConfigurationError(
            f"read_timeout ({options.read_timeout:g} s) must be longer than "
            f"statement_timeout ({options.statement_timeout:g} s): the server needs time "
            "to report the cancelled statement"
        )
    _check_backend(key, options)
    with _options_lock:
        _options[key] = options
    for listener in list(_on_configure):
        listener(key, options)
    return options


def _seconds(name: str, value: Any, *, optional: bool = False, zero: bool = False) -> Any:
    if value is None and optional:
        return None
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(
        value) and (value >= 0 if zero else value > 0)
    if not ok:
        allowed = "a number of seconds" + (" >= 0" if zero else " > 0")
        raise ConfigurationError(
            f"{name} must be {allowed}{' or None' if optional else ''}, got {value!r}"
        )
    return float(value)


def _count(name: str, value: Any, *, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigurationError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def _synchronous(value: Any) -> SqliteSynchronous:
    if value not in ("normal", "full"):
        raise ConfigurationError(f"sqlite_synchronous must be 'normal' or 'full', got {value!r}")
    result: SqliteSynchronous = value
    return result


def _check_backend(key: str, options: DatabaseOptions) -> None:
    is_sqlite = key.startswith("sqlite")
    wrong = _SERVER_ONLY if is_sqlite else _SQLITE_ONLY
    given = [n for n in wrong if getattr(options, n) != getattr(DEFAULT_OPTIONS, n)]
    if given:
        where = "SQLite" if is_sqlite else f"a server database ({key.split(':')[0]})"
        raise ConfigurationError(
            f"configure_database: {', '.join(given)} does not apply to {where}"
        )


# --- server connections -----------------------------------------------------------------


def server_connect_arguments(family: str, driver: str, is_async: bool,
                             options: DatabaseOptions, cparams: dict[str, Any]) -> None:
    """Add the connect-time bounds of ``options`` to a driver's keyword arguments.

    Values the URL sets itself (``?connect_timeout=3``) win over the options.
    """
    if family == "postgresql":
        cparams.setdefault("connect_timeout", max(2, math.ceil(options.connect_timeout)))
        for name, value in (("keepalives", 1), ("keepalives_idle", 30),
                            ("keepalives_interval", 10), ("keepalives_count", 3)):
            cparams.setdefault(name, value)
        if options.statement_timeout is not None:
            ms = max(1, int(options.statement_timeout * 1000))
            extra = f"-c statement_timeout={ms}"
            current = cparams.get("options")
            cparams["options"] = f"{current} {extra}" if current else extra
        if driver == "psycopg" and is_async:
            cparams["async_creator_fn"] = _psycopg_async_creator(options)
        return
    if family == "mysql":
        cparams.setdefault("connect_timeout", options.connect_timeout)
        if driver == "aiomysql":
            cparams["async_creator_fn"] = _aiomysql_creator(options)
            return
        # PyMySQL: the handshake reads use read_timeout; keep them within connect_timeout
        # until the connection is up (after_connect then sets the real read_timeout).
        cparams.setdefault("read_timeout", options.connect_timeout)
        cparams.setdefault("write_timeout", options.connect_timeout)


def psycopg_connect(options: DatabaseOptions, cargs: Any, cparams: dict[str, Any]) -> Any:
    """A sync psycopg connection whose every wait for the server is bounded."""
    cls = _bounded_psycopg() if _psycopg_can_bound() else None
    if cls is None:
        import psycopg

        return psycopg.connect(*cargs, **cparams)
    conn = cls.connect(*cargs, **cparams)
    conn._registers_read_timeout = options.read_timeout
    return conn


@functools.cache
def _psycopg_can_bound() -> bool:
    """Whether this psycopg's ``Connection.wait`` takes a timeout (psycopg >= 3.2);
    warns once when it does not, since read_timeout then cannot apply."""
    import inspect

    import psycopg
    from psycopg import errors

    known = hasattr(errors, "_WaitTimeout") and "timeout" in inspect.signature(
        psycopg.Connection.wait).parameters
    if not known:
        warnings.warn(
            f"psycopg {psycopg.__version__} cannot bound a wait for the server: "
            "read_timeout does not apply to PostgreSQL until psycopg >= 3.2 is installed",
            RuntimeWarning, stacklevel=2,
        )
    return known


_MAX_SORT_LENGTH = 65_536  # sort keys the default sort_buffer_size holds (8 MiB, the
# largest allowed, fails with "Out of sort memory")


def after_connect(family: str, driver: str, options: DatabaseOptions, dbapi_conn: Any) -> None:
    """Per-connection setup once connected: read bounds and MySQL statement timeout."""
    if family != "mysql":
        return
    raw = getattr(dbapi_conn, "driver_connection", None) or dbapi_conn
    if driver in ("pymysql", "mysqldb") and hasattr(raw, "_read_timeout"):
        raw._read_timeout = options.read_timeout
        raw._write_timeout = options.read_timeout
    # ORDER BY (and so keyset pages, which compare whole values) sorts by whole values,
    # not by their first max_sort_length bytes (1,024 by default): long texts that share
    # a prefix came back in the wrong order, and iterate() could skip or repeat them.
    settings = [f"max_sort_length = {_MAX_SORT_LENGTH}"]
    cursor = dbapi_conn.cursor()
    try:
        if options.statement_timeout is not None:
            version = getattr(raw, "server_version", None)  # PyMySQL and aiomysql know it
            if not isinstance(version, str):
                cursor.execute("SELECT VERSION()")
                version = str(cursor.fetchone()[0])
            if "mariadb" in version.lower():
                settings.append(f"max_statement_time = {options.statement_timeout}")
            else:
                ms = max(1, int(options.statement_timeout * 1000))
                settings.append(f"max_execution_time = {ms}")
        cursor.execute("SET SESSION " + ", ".join(settings))
    finally:
        cursor.close()


@functools.cache
def _bounded_psycopg() -> Any:
    import psycopg
    from psycopg import errors

    class BoundedConnection(psycopg.Connection[Any]):
        """psycopg's connection with a limit on every wait for the server."""

        _registers_read_timeout: float | None = None

        def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
            limit = self._registers_read_timeout
            if timeout is not None or limit is None:
                return super().wait(gen, interval, timeout)
            try:
                return super().wait(gen, interval, limit)
            except errors._WaitTimeout:
                _break_psycopg(self)
                raise psycopg.OperationalError(_stalled_message(limit)) from None

    return BoundedConnection


@functools.cache
def _bounded_psycopg_async() -> Any:
    import psycopg
    from psycopg import errors

    class BoundedAsyncConnection(psycopg.AsyncConnection[Any]):
        """psycopg's async connection with a limit on every wait for the server."""

        _registers_read_timeout: float | None = None

        async def wait(self, gen: Any, interval: float = 0.1,
                       timeout: float | None = None) -> Any:
            limit = self._registers_read_timeout
            if timeout is not None or limit is None:
                return await super().wait(gen, interval, timeout)
            try:
                return await super().wait(gen, interval, limit)
            except errors._WaitTimeout:
                _break_psycopg(self)
                raise psycopg.OperationalError(_stalled_message(limit)) from None

    return BoundedAsyncConnection


def _break_psycopg(conn: Any) -> None:
    # The protocol is mid-exchange: the connection can never be used again. finish()
    # closes the socket without waiting for the server.
    with contextlib.suppress(Exception):  # already closed
        conn.pgconn.finish()


def _stalled_message(limit: float) -> str:
    return (f"the server did not answer within read_timeout={limit:g}s; "
            "the connection was closed")


def _psycopg_async_creator(options: DatabaseOptions) -> Any:
    async def connect(*args: Any, **kwargs: Any) -> Any:
        if not _psycopg_can_bound():
            import psycopg

            return await psycopg.AsyncConnection.connect(*args, **kwargs)
        conn = await _bounded_psycopg_async().connect(*args, **kwargs)
        conn._registers_read_timeout = options.read_timeout
        return conn

    return connect


@functools.cache
def _bounded_aiomysql() -> Any:
    import asyncio

    import aiomysql  # type: ignore[import-untyped]
    from pymysql.err import OperationalError  # type: ignore[import-untyped]

    class BoundedConnection(aiomysql.Connection):  # type: ignore[misc]
        """aiomysql's connection with a limit on each read from the server."""

        _registers_read_timeout: float | None = None
        _registers_stalled = False

        async def _read_bytes(self, num_bytes: int) -> Any:
            limit = self._registers_read_timeout
            buffered = getattr(getattr(self, "_reader", None), "_buffer", b"")
            if limit is None or len(buffered) >= num_bytes:
                # already received: no wait to bound (a timer per read was 35% of a
                # streamed result's time)
                return await super()._read_bytes(num_bytes)
            handle = asyncio.get_running_loop().call_later(limit, self._registers_stall)
            try:
                return await super()._read_bytes(num_bytes)
            except OperationalError as exc:
                if self._registers_stalled:
                    raise OperationalError(2013, _stalled_message(limit)) from exc
                raise
            finally:
                handle.cancel()

        def _registers_stall(self) -> None:
            self._registers_stalled = True
            writer = getattr(self, "_writer", None)
            if writer is not None:
                writer.transport.abort()

    return BoundedConnection


def _aiomysql_creator(options: DatabaseOptions) -> Any:
    async def connect(*args: Any, **kwargs: Any) -> Any:
        cls = _bounded_aiomysql()
        conn = cls(*args, **kwargs)
        # the handshake is part of connecting: bound it by connect_timeout
        conn._registers_read_timeout = options.connect_timeout
        try:
            await conn._connect()
        except BaseException:
            conn.close()
            raise
        conn._registers_read_timeout = options.read_timeout
        return conn

    return connect


class ConnectingDatabase(Protocol):
    """What :func:`install_connect_hooks` reads of a database."""

    family: str

    @property
    def options(self) -> DatabaseOptions: ...


def install_connect_hooks(engine: sa.Engine, database: ConnectingDatabase) -> None:
    """Make ``engine`` (sync, or an async engine's ``sync_engine``) open connections with
    the bounds of ``database.options``, read at each connect."""
    family = database.family

    def do_connect(dialect: Any, record: Any, cargs: Any, cparams: dict[str, Any]) -> Any:
        options = database.options
        driver = dialect.driver
        server_connect_arguments(family, driver, dialect.is_async, options, cparams)
        if driver == "psycopg" and not dialect.is_async:
            return psycopg_connect(options, cargs, cparams)
        return None

    def on_connect(dbapi_connection: Any, record: Any) -> None:
        after_connect(family, engine.dialect.driver, database.options, dbapi_connection)

    from sqlalchemy import event

    event.listen(engine, "do_connect", do_connect)
    event.listen(engine, "connect", on_connect)
