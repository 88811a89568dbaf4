"""Per-backend SQL: everything that differs between SQLite, PostgreSQL and MySQL.

The rest of ``registers.db`` is dialect-neutral; when a statement or an error needs
to be spelt differently per backend, the difference lives here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["ConstraintViolation", "Dialect", "classify_integrity_error", "is_transient"]


@dataclass(frozen=True)
class ConstraintViolation:
    """What an integrity error was about, as far as the driver reports it."""

    kind: str  # "primary", "unique", "foreign_key", "not_null", "other"
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
        returning: bool = True,
    ) -> str:
        """One atomic INSERT-or-UPDATE on ``conflict`` columns, yielding the row's key.

        SQLite and PostgreSQL return the key with RETURNING; MySQL reports it through
        ``LAST_INSERT_ID`` (read as the cursor's ``lastrowid``).
        """
        q = self.quote
        cols = ", ".join(q(c) for c in columns)
        values = self.params(len(columns))
        updates = [c for c in columns if c not in conflict]
        head = f"INSERT INTO {q(table)} ({cols}) VALUES ({values})"
        if self.family == "mysql":
            sets = [f"{q(c)} = VALUES({q(c)})" for c in updates]
            if key_is_int and returning:
                sets.append(f"{q(key)} = LAST_INSERT_ID({q(key)})")
            if not sets:
                sets.append(f"{q(key)} = {q(key)}")
            return f"{head} ON DUPLICATE KEY UPDATE {', '.join(sets)}"
        target = ", ".join(q(c) for c in conflict)
        if updates:
            sets_sql = ", ".join(f"{q(c)} = excluded.{q(c)}" for c in updates)
            action = f"DO UPDATE SET {sets_sql}"
        else:
            # Nothing to change, but RETURNING must still yield the existing row.
            action = f"DO UPDATE SET {q(conflict[0])} = excluded.{q(conflict[0])}"
        tail = f" RETURNING {q(key)}" if returning else ""
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


_SQLITE_COLUMNS = re.compile(r"constraint failed: (.+)$")
_MYSQL_KEY = re.compile(r"for key '([^']+)'")


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
            return ConstraintViolation("unique", None, columns)
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
            return ConstraintViolation("unique", constraint)
        if sqlstate == "23503":
            return ConstraintViolation("foreign_key", constraint)
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
        return ConstraintViolation("not_null")
    return ConstraintViolation("other")
