"""Per-backend SQL: everything that differs between SQLite, PostgreSQL and MySQL.

The rest of ``registers.db`` is dialect-neutral; when a statement or an error needs
to be spelt differently per backend, the difference lives here.
"""

from __future__ import annotations

import contextlib
import re
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ConstraintViolation",
    "Dialect",
    "classify_integrity_error",
    "is_transient",
    "is_unavailable",
    "is_unraised_violation",
    "value_error_kind",
]


@dataclass(frozen=True)
class ConstraintViolation:
    """What an integrity error was about, as far as the driver reports it."""

    kind: str  # "primary", "unique", "foreign_key", "not_null", "check", "other"
    constraint: str | None = None
    columns: tuple[str, ...] = ()


class Dialect:
    """SQL spelling for one backend family (``sqlite``, ``postgresql``, ``mysql``)."""

    def __init__(self, family: str, sa_dialect: Any, placeholder: str) -> None:
        self.family = family
        self.placeholder = placeholder
        self._preparer = sa_dialect.identifier_preparer
        # MySQL cannot RETURNING from UPDATE; SQLite >= 3.35 and PostgreSQL can.
        self.update_returning = family in ("sqlite", "postgresql")
        self.insert_returning = family == "postgresql"
        # SQLite's lower() folds ASCII only: a Python function folds all of Unicode there.
        self.lower = "registers_lower" if family == "sqlite" else "LOWER"

    def quote(self, name: str) -> str:
        return str(self._preparer.quote(name))

    def params(self, count: int) -> str:
        return ", ".join([self.placeholder] * count)

    # --- upsert -----------------------------------------------------------------------

    def upsert(
        self,
        table: str,
        columns: Sequence[str],
        conflict: Sequence[str],
        key: str,
        key_is_int: bool = True,
        returning: bool | str = True,
        keep: Sequence[str] = (),
        assign: Sequence[str] = (),
    ) -> str:
        """One atomic INSERT-or-UPDATE on ``conflict`` columns, yielding the row's key.

        SQLite and PostgreSQL return the key with RETURNING (or the columns ``returning``
        lists, when it is a string); MySQL reports it through ``LAST_INSERT_ID`` (read as
        the cursor's ``lastrowid``). ``keep`` columns are written by the insert only
        (``auto_now_add`` times, fields an upsert was not given); ``assign`` holds further
        ``SET`` terms of the update branch (``upsert(on_conflict=...)``), placed first.
        """
        q = self.quote
        cols = ", ".join(q(c) for c in columns)
        values = self.params(len(columns))
        updates = [c for c in columns if c not in conflict and c not in keep]
        head = f"INSERT INTO {q(table)} ({cols}) VALUES ({values})"
        if self.family == "mysql":
            sets = [*assign, *(f"{q(c)} = VALUES({q(c)})" for c in updates)]
            if key_is_int and returning:
                sets.append(f"{q(key)} = LAST_INSERT_ID({q(key)})")
            if not sets:
                sets.append(f"{q(key)} = {q(key)}")
            return f"{head} ON DUPLICATE KEY UPDATE {', '.join(sets)}"
        target = ", ".join(q(c) for c in conflict)
        sets = [*assign, *(f"{q(c)} = excluded.{q(c)}" for c in updates)]
        if not sets:
            # Nothing to change, but RETURNING must still yield the existing row.
            sets.append(f"{q(conflict[0])} = excluded.{q(conflict[0])}")
        action = f"DO UPDATE SET {', '.join(sets)}"
        tail = f" RETURNING {q(key) if returning is True else returning}" if returning else ""
        return f"{head} ON CONFLICT ({target}) {action}{tail}"

    # --- text lookups ---------------------------------------------------------------

    def text_match(
        self, column: str, value: str, prefix: bool, suffix: bool, insensitive: bool
    ) -> tuple[str, list[Any]]:
        """A predicate matching ``value`` literally inside ``column``, and its parameters.

        ``prefix``/``suffix`` say whether anything may come before/after ``value``
        (contains: both; startswith: suffix only; endswith: prefix only).
        """
        p = self.placeholder
        if self.family == "sqlite" and not insensitive:
            # SQLite's LIKE ignores ASCII case and GLOB stops at a NUL: compare exactly.
            if not value:
                return f"{column} IS NOT NULL", []
            if prefix and suffix:
                return f"instr({column}, {p}) > 0", [value]
            if suffix:
                return f"instr({column}, {p}) = 1", [value]
            encoded = value.encode("utf-8")  # bytes: substr on text would stop at a NUL
            return f"substr(CAST({column} AS BLOB), {p}) = {p}", [-len(encoded), encoded]
        body = value.replace("!", "!!").replace("%", "!%").replace("_", "!_")
        pattern = f"{'%' if prefix else ''}{body}{'%' if suffix else ''}"
        if insensitive:
            lower = self.lower
            return f"{lower}({column}) LIKE {lower}({p}) ESCAPE '!'", [pattern]
        if self.family == "mysql":
            return f"{column} LIKE BINARY {p} ESCAPE '!'", [pattern]
        return f"{column} LIKE {p} ESCAPE '!'", [pattern]

    def match(self, columns: Sequence[str]) -> str:
        """``a = ? AND b = ?``: a row matching one value per column."""
        return " AND ".join(f"{self.quote(c)} = {self.placeholder}" for c in columns)

    def insert_defaults(self, quoted_table: str) -> str:
        """An INSERT of a row made only of defaults (a generated key)."""
        if self.family == "mysql":
            return f"INSERT INTO {quoted_table} () VALUES ()"
        return f"INSERT INTO {quoted_table} DEFAULT VALUES"

    def truncate(self, table: str) -> list[str]:
        if self.family == "sqlite":
            return [f"DELETE FROM {self.quote(table)}"]
        return [f"TRUNCATE TABLE {self.quote(table)}"]


def is_transient(family: str, exc: BaseException) -> bool:
    """Whether retrying the whole (single-operation) transaction may succeed.

    Deadlocks and serialization failures (PostgreSQL 40P01/40001, MySQL 1213/1205) and
    SQLite's busy/locked errors that outlived the busy timeout.
    """
    if family == "postgresql":
        return getattr(exc, "sqlstate", None) in ("40P01", "40001")
    if family == "mysql":
        return bool(exc.args) and exc.args[0] in (1213, 1205)
    name = getattr(exc, "sqlite_errorname", "") or ""
    return name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "database is locked" in str(exc)


# Constraint violations PyMySQL does not raise as IntegrityError: MariaDB's 4025 and
# MySQL's 3819 (CHECK), 1364 (a NOT NULL column without a default left out of an INSERT).
_MYSQL_UNRAISED = frozenset({4025, 3819, 1364})


def is_unraised_violation(family: str, exc: BaseException) -> bool:
    """Whether ``exc`` is a constraint violation the driver does not raise as an
    IntegrityError (PyMySQL: CHECK and a missing NOT NULL value, as OperationalError)."""
    return family == "mysql" and bool(exc.args) and exc.args[0] in _MYSQL_UNRAISED


_PG_VALUE_ERRORS = {"22001": "too_long", "22003": "out_of_range"}
# 1406 data too long; 1264 out of range value; 1690 out of range in arithmetic.
_MYSQL_VALUE_ERRORS = {1406: "too_long", 1264: "out_of_range", 1690: "out_of_range"}


def value_error_kind(family: str, exc: BaseException) -> str | None:
    """``"too_long"`` or ``"out_of_range"`` when the server refused a value for its
    column's type (``VARCHAR(5)``, ``SMALLINT``, ``NUMERIC(5, 2)``), else None.

    SQLite never refuses one (it has no length or range limits on its columns).
    """
    if family == "postgresql":
        return _PG_VALUE_ERRORS.get(getattr(exc, "sqlstate", None) or "")
    if family == "mysql" and exc.args and isinstance(exc.args[0], int):
        return _MYSQL_VALUE_ERRORS.get(exc.args[0])
    return None


# PostgreSQL SQLSTATEs meaning the server cannot serve this session: class 08 (connection
# exception), 53300 too_many_connections, 57P01-57P05 (shutdown, crash, cannot connect now,
# database dropped, idle session timeout).
_PG_UNAVAILABLE_PREFIXES = ("08", "53300", "57P0")
# MySQL/MariaDB codes: client side 2002/2003 cannot connect, 2005 unknown host, 2006 gone
# away, 2013 lost connection, 2055 lost at system error, 2026 SSL; server side 1040 too
# many connections, 1053 shutdown, 1077 normal shutdown, 1081 cannot create socket,
# 1129/1130 host blocked or not allowed, 1152/1159/1161 aborted / net read or write
# timeout, 1927 connection killed, 4031 disconnected by the server for inactivity.
_MYSQL_UNAVAILABLE = frozenset({
    2002, 2003, 2005, 2006, 2013, 2026, 2055, 1040, 1053, 1077, 1081, 1129, 1130,
    1152, 1159, 1161, 1927, 4031,
})
_CLOSED_MESSAGES = ("connection is closed", "the connection is lost", "server closed the",
                    "connection already closed", "consuming input failed",
                    "sending query failed", "connection refused", "read_timeout")


def is_unavailable(family: str, exc: BaseException) -> bool:
    """Whether ``exc`` means the database cannot be reached (no verdict on the data).

    True for SQLAlchemy's pool timeout and invalidated connections, socket errors, and the
    driver errors of a refused, lost, timed-out, killed or overloaded connection. False for
    everything the server decided (constraint, syntax, statement timeout, deadlock...).
    """
    import sqlalchemy as sa

    if isinstance(exc, sa.exc.TimeoutError):  # no pooled connection within pool_timeout
        return True
    if isinstance(exc, sa.exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        exc = exc.orig if isinstance(exc.orig, BaseException) else exc
    if isinstance(exc, (ConnectionError, TimeoutError, socket.gaierror)):
        return True
    if family == "sqlite":
        return False
    if family == "postgresql":
        sqlstate = getattr(exc, "sqlstate", None)
        if sqlstate is not None:
            return str(sqlstate).startswith(_PG_UNAVAILABLE_PREFIXES)
        name = type(exc).__name__
        if name in ("OperationalError", "InterfaceError", "ConnectionTimeout",
                    "ConnectionFailure"):
            return True  # no SQLSTATE: the client library failed, not the server
        return any(m in str(exc).lower() for m in _CLOSED_MESSAGES)
    code = exc.args[0] if exc.args else None
    if code in _MYSQL_UNAVAILABLE:
        return True
    # PyMySQL raises InterfaceError(0, '') on a connection it already closed
    return type(exc).__name__ == "InterfaceError"


_SQLITE_COLUMNS = re.compile(r"constraint failed: (.+)$")
_SQLITE_CHECK = re.compile(r"CHECK constraint failed: (.+)$")
_SQLITE_INDEX = re.compile(r"index '(.+)'$")
# PyMySQL escapes these characters with a backslash, doubling them in the statement.
_MYSQL_ESCAPED = ("\\", "'", '"', "\0", "\n", "\r", "\x1a")


def is_packet_too_large(family: str, exc: BaseException) -> bool:
    """MySQL error 1153: a statement over ``max_allowed_packet`` (the server then closes
    the connection)."""
    return family == "mysql" and bool(getattr(exc, "args", None)) and exc.args[0] == 1153


def mysql_statement_bytes(values: Iterable[Any]) -> int:
    """About how many bytes ``values`` (text and binary) take in a MySQL statement once
    encoded and escaped (an estimate from below: the rest of the SQL is not counted)."""
    total = 0
    for value in values:
        if isinstance(value, str):
            total += len(value.encode("utf-8", "surrogatepass"))
            total += sum(value.count(c) for c in _MYSQL_ESCAPED)
        elif isinstance(value, (bytes, bytearray, memoryview)):
            raw = bytes(value)
            total += len(raw) + sum(raw.count(c.encode()) for c in _MYSQL_ESCAPED)
    return total


def _mysql_lookup(connect: Callable[[], Any], sql: str,
                  params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]] | None:
    """The rows of one query run on a connection from ``connect`` (a DBAPI connection
    factory) and closed after, or None if the server cannot be reached: the error
    path's questions to the server, which never fail the error they explain."""
    try:
        conn = connect()
    except Exception:
        return None
    try:
        cursor = conn.cursor()
        cursor.execute(sql, params)
        return [tuple(row) for row in cursor.fetchall()]
    except Exception:
        return None
    finally:
        with contextlib.suppress(Exception):
            conn.close()


def mysql_packet_limit(connect: Callable[[], Any]) -> int | None:
    """The server's ``max_allowed_packet``, or None if the server cannot be reached."""
    rows = _mysql_lookup(connect, "SELECT @@max_allowed_packet")
    return int(rows[0][0]) if rows else None


def mysql_unique_keys(connect: Callable[[], Any],
                      table: str) -> dict[str, tuple[str, ...]] | None:
    """``table``'s unique keys in the current database: key name -> its columns, in
    key order; a key with a part on an expression (MySQL 8) has no columns. None if
    the server cannot be reached. MySQL names only the key in a duplicate-entry error,
    and a key registers did not create is named after its first column, or anything."""
    rows = _mysql_lookup(
        connect,
        "SELECT index_name, column_name FROM information_schema.statistics "
        "WHERE table_schema = DATABASE() AND table_name = %s AND non_unique = 0 "
        "ORDER BY index_name, seq_in_index",
        (table,),
    )
    if rows is None:
        return None
    keys: dict[str, list[str | None]] = {}
    for name, column in rows:
        keys.setdefault(str(name), []).append(None if column is None else str(column))
    return {name: () if None in columns else tuple(c for c in columns if c is not None)
            for name, columns in keys.items()}


_MYSQL_KEY = re.compile(r"for key '([^']+)'")
# 1048: Column 'x' cannot be null; 1364: Field 'x' doesn't have a default value.
_MYSQL_NULL_COLUMN = re.compile(r"^(?:Column|Field) '([^']+)'")
# PostgreSQL's DETAIL of a unique violation: Key (a, "B c")=(1, x) already exists.
_POSTGRES_KEY = re.compile(r'Key \((.+?)\)=\(')
# MariaDB: CONSTRAINT `ck_x` failed for `db`.`t`; MySQL 8: Check constraint 'ck_x' is violated.
_MYSQL_CHECK = re.compile(r"constraint [`']([^`']+)[`'] (?:failed|is violated)", re.IGNORECASE)


def classify_integrity_error(family: str, exc: BaseException, table: str) -> ConstraintViolation:
    """Classify a driver's integrity error by the constraint the driver names."""
    if family == "sqlite":
        name = getattr(exc, "sqlite_errorname", "") or ""
        message = str(exc)
        match = _SQLITE_COLUMNS.search(message)
        columns = tuple(
            part.strip().split(".", 1)[-1] for part in match.group(1).split(",")
        ) if match else ()
        if name.endswith("PRIMARYKEY"):
            return ConstraintViolation("primary", None, columns)
        if name.endswith("UNIQUE") or message.startswith("UNIQUE constraint failed"):
            index = _SQLITE_INDEX.match(match.group(1)) if match else None
            if index:  # a unique index on an expression: named, no columns
                return ConstraintViolation("unique", index.group(1))
            return ConstraintViolation("unique", None, columns)
        if name.endswith("CHECK") or message.startswith("CHECK constraint failed"):
            match = _SQLITE_CHECK.search(message)
            return ConstraintViolation("check", match.group(1).strip() if match else None)
        if name.endswith("FOREIGNKEY") or "FOREIGN KEY" in message:
            return ConstraintViolation("foreign_key")
        if name.endswith("NOTNULL") or "NOT NULL" in message:
            return ConstraintViolation("not_null", None, columns)
        return ConstraintViolation("other")
    if family == "postgresql":
        diag = getattr(exc, "diag", None)
        constraint = getattr(diag, "constraint_name", None)
        sqlstate = getattr(exc, "sqlstate", None)
        if sqlstate == "23505":
            if constraint and constraint.startswith("pk_"):
                return ConstraintViolation("primary", constraint)
            # a table registers did not create names its key `<table>_pkey` (or anything):
            # the columns of the DETAIL tell a key collision from a unique one
            match = _POSTGRES_KEY.match(getattr(diag, "message_detail", None) or "")
            columns = tuple(part.strip().strip('"') for part in match.group(1).split(",")) \
                if match else ()
            return ConstraintViolation("unique", constraint, columns)
        if sqlstate == "23503":
            return ConstraintViolation("foreign_key", constraint)
        if sqlstate == "23514":
            return ConstraintViolation("check", constraint)
        if sqlstate == "23502":
            column = getattr(diag, "column_name", None)
            return ConstraintViolation("not_null", constraint, (column,) if column else ())
        return ConstraintViolation("other", constraint)
    code = exc.args[0] if exc.args else None
    message = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
    if code == 1062:
        match = _MYSQL_KEY.search(message)
        key = match.group(1).rsplit(".", 1)[-1] if match else None
        if key == "PRIMARY":
            return ConstraintViolation("primary", key)
        return ConstraintViolation("unique", key)
    if code in (1451, 1452, 1216, 1217):
        return ConstraintViolation("foreign_key")
    if code in (1048, 1364):
        match = _MYSQL_NULL_COLUMN.match(message)
        return ConstraintViolation("not_null", None, (match.group(1),) if match else ())
    if code in (4025, 3819):
        match = _MYSQL_CHECK.search(message)
        return ConstraintViolation("check", match.group(1) if match else None)
    return ConstraintViolation("other")
