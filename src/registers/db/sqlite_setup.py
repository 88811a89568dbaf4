"""How every SQLite connection of ``registers`` is set up (sync, async engine, fast path).

WAL (files only), ``synchronous`` (``NORMAL`` unless ``configure_database`` says ``FULL``),
``foreign_keys=ON``, the busy timeout, and the deterministic SQL functions registers
relies on (``registers_decimal`` behind exact ``F()`` arithmetic on Decimal text,
``registers_regexp`` behind the ``regex`` lookups, ``registers_decimal_agg`` behind exact
Decimal ``Sum``/``Min``/``Max``).
"""

from __future__ import annotations

import operator
import sqlite3
import time
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from registers.db.connect import DEFAULT_OPTIONS, DatabaseOptions

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["BusyRetry", "configure_sqlite", "sqlite_end", "sqlite_functions", "sqlite_pragmas",
           "sqlite_target"]

# what sqlite3.connect takes from a SQLite URL; every other query parameter of a
# ``?uri=true`` URL belongs to the SQLite URI (as in SQLAlchemy's pysqlite dialect)
_PYSQLITE_ARGS = frozenset(
    {"uri", "timeout", "isolation_level", "detect_types", "check_same_thread",
     "cached_statements"}
)


def sqlite_target(url: sa.URL) -> tuple[str, bool]:
    """What ``sqlite3.connect`` opens for the SQLite ``url``: (path, whether it is a URI).

    With ``?uri=true`` the other query parameters are SQLite URI parameters
    (``mode=ro``, ``cache=shared``, ``immutable=1``...), as SQLAlchemy reads them.
    """
    path = url.database or ""
    uri = str(url.query.get("uri", "false")).lower() == "true" or path.startswith("file:")
    if not uri:
        return path, False
    if not path.startswith("file:"):
        path = f"file:{path}"
    extra = {k: v for k, v in url.query.items() if k not in _PYSQLITE_ARGS}
    if extra:
        sep = "&" if "?" in path else "?"
        path += sep + "&".join(f"{k}={v}" for k, v in sorted(extra.items()))
    return path, True


def configure_sqlite(connection: Any, *, memory: bool = False,
                     options: DatabaseOptions = DEFAULT_OPTIONS,
                     read_only: bool = False) -> None:
    """Set up one SQLite DBAPI connection the way every ``registers`` connection is.

    WAL (files only), ``synchronous`` as configured (``NORMAL`` by default),
    ``foreign_keys=ON``, the busy timeout, and the ``registers_decimal`` function behind
    exact ``F()`` arithmetic on Decimal text. Used by the sync connections here and by the
    async engine's ``connect`` hook.
    """
    cursor = connection.cursor()
    try:
        for pragma in sqlite_pragmas(memory=memory, options=options, read_only=read_only):
            retry = BusyRetry(options.busy_timeout)
            while True:
                try:
                    cursor.execute(pragma)
                    break
                except sqlite3.OperationalError as exc:
                    delay = retry.delay_after(exc)
                    if delay is None:
                        raise
                time.sleep(delay)
    finally:
        cursor.close()
    for name, arity, function in sqlite_functions():
        connection.create_function(name, arity, function, deterministic=True)


class BusyRetry:
    """When to try a set-up pragma again that SQLite refused as busy without waiting.

    Switching a new file to WAL takes an exclusive lock that bypasses the busy handler:
    with several processes opening a new database at once, all but one get "database
    is locked" at once. Such a refusal is retried, with short sleeps, until the busy
    timeout has passed; any other error is not.
    """

    def __init__(self, timeout: float) -> None:
        self.deadline = time.monotonic() + timeout
        self.delay = 0.001

    def delay_after(self, exc: sqlite3.OperationalError) -> float | None:
        """Seconds to sleep before the next attempt, or None to raise ``exc``."""
        code = getattr(exc, "sqlite_errorcode", None)
        busy = code & 0xFF == 5 if code is not None else "database is locked" in str(exc)
        if not busy or time.monotonic() >= self.deadline:
            return None
        delay, self.delay = self.delay, min(self.delay * 2, 0.05)
        return delay


def sqlite_end(conn: sqlite3.Connection, statement: str) -> None:
    """``COMMIT`` or ``ROLLBACK`` the connection's transaction, if one is open."""
    if conn.in_transaction:
        conn.execute(statement)


def sqlite_pragmas(*, memory: bool = False, options: DatabaseOptions = DEFAULT_OPTIONS,
                   read_only: bool = False) -> list[str]:
    """The pragmas :func:`configure_sqlite` runs, in order (for drivers it cannot reach).

    A read-only connection cannot switch the journal mode (that writes the file); it
    reads a WAL database as it is.
    """
    pragmas = [f"PRAGMA busy_timeout = {options.busy_timeout_ms}"]
    if not memory:
        if not read_only:
            pragmas.append("PRAGMA journal_mode = WAL")
        pragmas.append(f"PRAGMA synchronous = {options.sqlite_synchronous.upper()}")
    pragmas.append("PRAGMA foreign_keys = ON")
    # LIKE is case-sensitive, as on PostgreSQL and (binary collation) MySQL/MariaDB.
    pragmas.append("PRAGMA case_sensitive_like = ON")
    return pragmas


def sqlite_functions() -> list[tuple[str, int, Callable[..., Any]]]:
    """The deterministic SQL functions :func:`configure_sqlite` registers: (name, arity, fn)."""
    from registers.db.aggregates import sqlite_decimal_aggregate
    from registers.db.lookup_sql import sqlite_regexp

    return [("registers_decimal", 3, _decimal_op), ("registers_divisor", 1, _divisor),
            ("registers_int", 1, _checked_int), ("registers_lower", 1, _lower),
            ("registers_regexp", 3, sqlite_regexp),
            ("registers_decimal_agg", 2, sqlite_decimal_aggregate)]


class ExpressionFailed(ValueError):
    """Raised inside a SQLite function of an ``F()`` expression (sqlite3 reports it as
    "user-defined function raised exception"; the error translator names it)."""


def _lower(value: Any) -> Any:
    """Unicode lower case for ``icontains``/``ilike`` (SQLite's lower() is ASCII only)."""
    return value.lower() if isinstance(value, str) else value


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
