"""The flows of the write helpers: partial and computed upserts, get-or-create,
update-or-create, bulk updates and raw queries.

Like :mod:`registers.db.flows`, each is a generator of
:class:`~registers.db.statements.Statement` objects driven sync or async; none touches a
connection. The plans (:mod:`registers.db.upserts`, :mod:`registers.db.write_helpers`)
build every statement they can in advance; a flow only decides which one comes next.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from registers.db.flows import Check, Cursor, Flow, advance_sequence, returned_key
from registers.db.statements import IN_CHUNK, Described, Statement, Statements

__all__ = [
    "Insert",
    "bulk_update",
    "columns_of",
    "get_or_create",
    "guarded_upsert_row",
    "raw_rows",
    "read_back",
    "update_or_create",
    "upsert_read_back",
    "upsert_returning",
]

# Builds (the INSERT, what turns its cursor into the new model) when a row must be created:
# validation happens only then, so an existing row is returned whatever the defaults hold.
Insert = Callable[[], tuple[Statement, Callable[[Cursor], Any]]]


def upsert_returning(statement: Statement, sync: Statements | None,
                     check: Check | None) -> Flow[Sequence[Any]]:
    """An upsert ``RETURNING`` the stored row (SQLite, PostgreSQL); returns the row.

    ``sync`` (PostgreSQL, explicit managed key): the statement returns
    ``Statements.passed_sequence`` first, and when true the sequence moves past the key.
    ``check`` vets the row before the transaction commits (computed values that do not
    fit their field)."""
    row: Sequence[Any] = (yield statement).fetchall()[0]
    if sync is not None:
        passed, *row = row
        if passed:
            yield from advance_sequence(sync)
    if check is not None:
        check([row])
    return row


def upsert_read_back(st: Statements, statement: Statement, key: Any,
                     target: tuple[str, ...], target_params: Sequence[Any]) -> Flow[Any]:
    """MySQL: ``INSERT ... ON DUPLICATE KEY UPDATE``, then the stored row (inside the
    transaction, so it is the row this upsert left). ``key``: the known key, or None
    (read from ``LAST_INSERT_ID`` for an integer key, else the row is found by
    ``target``)."""
    cursor = yield statement
    if key is None and st.key_is_int:
        key = returned_key(st, cursor)
    if key is None:
        return (yield from read_back(st, target, target_params))
    return (yield from read_back(st, (st.key,), [key]))


def read_back(st: Statements, fields: Sequence[str], params: Sequence[Any]) -> Flow[Any]:
    """The row whose ``fields`` hold ``params``."""
    sql = f"{st.select} WHERE {st.dialect.match(fields)}"
    return (yield Statement(sql, params)).fetchall()[0]


def guarded_upsert_row(st: Statements, target: tuple[str, ...], target_params: Sequence[Any],
                       insert: Statement, with_key: bool, key: Any, update_sql: str,
                       update_params: Sequence[Any], joined: bool) -> Flow[Any]:
    """MySQL when one statement cannot do it (a second unique constraint, or computed
    values reading each other): lock the row owning ``target``, insert or update it
    (``update_sql``: its ``SET`` terms; ``joined``: they read the old row through the
    self-join), then read it back."""
    found = (yield Statement(st.lock_by(target), target_params)).fetchall()
    if not found:
        result = yield insert
        new_key = key if with_key else result.lastrowid
        return (yield from read_back(st, (st.key,), [new_key]))
    existing = found[0][0]
    if update_sql:
        sql = st.update_joined(update_sql, 1) if joined else \
            f"{st.update(update_sql, st.key_in(1))}"
        yield Statement(sql, [*update_params, existing])
    return (yield from read_back(st, (st.key,), [existing]))


def get_or_create(select: Statement, insert: Insert) -> Flow[tuple[Any, bool]]:
    """The first row ``select`` finds (a raw row, False), else the created model (True).

    A lost race (another caller inserted the same unique values in between) fails the
    insert; the plan's ``retry_if`` then runs this flow again, and its select finds it."""
    rows = (yield select).fetchall()
    if rows:
        return rows[0], False
    statement, finish = insert()
    return finish((yield statement)), True


def update_or_create(st: Statements, lock: Statement, insert: Insert, set_sql: str,
                     set_params: Sequence[Any], joined: bool,
                     check: Check | None) -> Flow[tuple[Any, bool]]:
    """Lock the first row matching the lookup; update it with ``set_sql`` and return it
    (a raw row, False), or create it (the model, True)."""
    locked = (yield lock).fetchall()
    if not locked:
        statement, finish = insert()
        return finish((yield statement)), True
    key = locked[0][0]
    if not set_sql:
        return (yield Statement(st.get, [key])).fetchall()[0], False
    if st.dialect.update_returning:
        rows = (yield Statement(f"{st.update_returning(set_sql, st.key_in(1))}",
                                [*set_params, key])).fetchall()
    else:
        update = st.update_joined(set_sql, 1) if joined else st.update(set_sql, st.key_in(1))
        yield Statement(update, [*set_params, key])
        rows = (yield Statement(st.get, [key])).fetchall()
    if check is not None:
        check(rows)
    return rows[0], False


def bulk_update(statements: Sequence[Statement]) -> Flow[int]:
    """Send every chunk's ``UPDATE``; returns how many rows they matched."""
    total = 0
    for statement in statements:
        total += (yield statement).rowcount
    return total


def columns_of(cursor: Any) -> list[str] | None:
    """The column names of a statement's rows (a DBAPI cursor, or a Result), or None
    when the statement returns no rows."""
    if isinstance(cursor, tuple):  # a Result (async)
        columns = getattr(cursor, "columns", None)
        return None if columns is None else [str(c) for c in columns]
    description = getattr(cursor, "description", None)
    return None if description is None else [str(d[0]) for d in description]


def raw_rows(statement: Described) -> Flow[tuple[list[str] | None, Sequence[Any]]]:
    """Run a caller's SQL; returns its column names and rows."""
    cursor = yield statement
    names = columns_of(cursor)
    return names, ([] if names is None else cursor.fetchall())


def key_chunks(keys: Sequence[Any]) -> list[Sequence[Any]]:
    """``keys`` in ``IN (...)`` lists every backend accepts."""
    return [keys[i:i + IN_CHUNK] for i in range(0, len(keys), IN_CHUNK)]
