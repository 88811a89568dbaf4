"""Multi-statement algorithms, written once as generators, driven sync or async.

A *flow* is a generator that yields :class:`~registers.db.statements.Statement` objects
and receives a cursor (a :class:`Cursor`) for each (the technique of psycopg 3's
``generators.py``, and of httpx's ``Auth.auth_flow``). It returns the operation's value.
It never touches a connection, so the same flow runs on a sync DBAPI connection through
:func:`drive` and on an async one through :func:`adrive`; the two runners are the only
code that differs::

    def count_twice(statements):            # a flow
        first = yield Statement("SELECT COUNT(*) FROM t")
        second = yield Statement("SELECT COUNT(*) FROM t")
        return first.fetchall()[0][0] + second.fetchall()[0][0]

    drive(count_twice(st), execute)          # sync: execute(statement) -> cursor
    await adrive(count_twice(st), aexecute)  # async: await aexecute(statement) -> result

A flow reads what it needs of each cursor before it yields its next statement: on a
sync connection the next statement may be sent on the same cursor.

A single-statement operation needs no flow: its plan carries the statement itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from typing import Any, NamedTuple, Protocol, TypeVar

from registers.db.statements import IN_CHUNK, Statement, Statements

__all__ = [
    "WRITE_ATTEMPTS",
    "Cursor",
    "Flow",
    "Read",
    "Result",
    "RetryIf",
    "Write",
    "adrive",
    "bulk_create",
    "bulk_upsert",
    "drive",
    "guarded_upsert",
    "keys_for",
    "keys_for_sets",
    "returned_key",
    "returns_rows",
    "update_checked",
    "update_then_read",
    "update_then_reselect",
    "upsert_passing_sequence",
]

T = TypeVar("T")


class Cursor(Protocol):
    """What a statement gives back: a DBAPI cursor, SQLAlchemy's ``CursorResult`` or a
    :class:`Result`. ``fetchall()`` is only called on statements that return rows, and
    ``lastrowid`` only on MySQL/MariaDB and SQLite."""

    @property
    def rowcount(self) -> int: ...

    @property
    def lastrowid(self) -> Any: ...

    def fetchall(self) -> Sequence[Any]: ...


class Result(NamedTuple):
    """A statement's outcome fetched in full (rows, affected row count, last inserted id),
    for connections that must be given back before the operation finishes."""

    rows: list[Any]
    rowcount: int
    lastrowid: Any
    columns: Sequence[str] | None = None  # the rows' column names (Described statements)

    def fetchall(self) -> list[Any]:
        return self.rows


def returns_rows(cursor: Any) -> bool:
    """Whether a DBAPI cursor's last statement produced rows to fetch.

    psycopg builds a ``Column`` per column, type lookups included, each time
    ``description`` is read (a third of an async ``aget``'s own time): its result's
    status says the same for nothing.
    """
    result = getattr(cursor, "pgresult", None)
    if result is not None:
        return bool(result.status == _TUPLES_OK)
    return cursor.description is not None


_TUPLES_OK = 2  # libpq's PGRES_TUPLES_OK (psycopg.pq.ExecStatus.TUPLES_OK)

Flow = Generator[Statement, Cursor, T]

RetryIf = Callable[[BaseException], bool]

# How many times a write of its own runs that keeps hitting a deadlock, a serialization
# failure or a lost race (``retry_if``), sync and async alike.
WRITE_ATTEMPTS = 6

# A planned read: (SELECT, its parameters, rows -> the operation's result).
Read = tuple[str, Sequence[Any], Callable[[Sequence[Any]], T]]

# A planned write: (work, params, finish, atomic, data, retry_if).
#   work      the SQL of one statement (sent with ``params``; ``finish`` then receives
#             its cursor), or a function starting a flow (``params`` is None; ``finish``
#             receives the flow's value; a retried write starts the flow again)
#   atomic    a transaction of its own is needed (more than one statement)
#   data      what error messages may quote (field values)
#   retry_if  further driver errors after which the whole write is retried
# Plans are plain tuples: building one costs no Python frame on the hot path.
Write = tuple[
    "str | Callable[[], Flow[Any]]",
    Any,
    Callable[[Any], T],
    bool,
    "Mapping[str, Any] | None",
    "RetryIf | None",
]


def drive(flow: Flow[T], execute: Callable[[Statement], Cursor]) -> T:
    """Run ``flow`` to its end, sending each statement through ``execute``."""
    result: Any = None
    while True:
        try:
            statement = flow.send(result)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        result = execute(statement)


async def adrive(flow: Flow[T], execute: Callable[[Statement], Awaitable[Cursor]]) -> T:
    """Run ``flow`` to its end, awaiting ``execute`` for each statement."""
    result: Any = None
    while True:
        try:
            statement = flow.send(result)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        result = await execute(statement)


# --- the flows ------------------------------------------------------------------------

def returned_key(st: Statements, cursor: Cursor) -> Any:
    """The key an insert-or-update without a known key reports: ``RETURNING`` (SQLite,
    PostgreSQL) or ``LAST_INSERT_ID`` (MySQL/MariaDB)."""
    return cursor.lastrowid if st.dialect.family == "mysql" else cursor.fetchall()[0][0]


def upsert_passing_sequence(st: Statements, statement: Statement) -> Flow[None]:
    """PostgreSQL upsert with an explicit key (:meth:`Statements.upsert_telling_insert`):
    if the key it inserted is past the key sequence, move the sequence past it."""
    if (yield statement).fetchall()[0][0]:
        yield from advance_sequence(st)


def advance_sequence(st: Statements) -> Flow[None]:
    """Move the PostgreSQL key sequence past every key (after explicit keys)."""
    yield st.sync_sequence()


def guarded_upsert(st: Statements, values: Mapping[str, Any], with_key: bool,
                   target: tuple[str, ...], names: Sequence[str],
                   params: Sequence[Any], keep: Sequence[str] | None = None) -> Flow[Any]:
    """MySQL with a second unique constraint, where ``ON DUPLICATE KEY UPDATE`` would
    fire on any unique index: lock the row owning the ``target`` values (the key, or one
    unique set) and decide; returns its key."""
    by_name = dict(zip(names, params))
    found = (yield Statement(st.lock_by(target), [by_name[c] for c in target])).fetchall()
    if not found:
        result = yield Statement(st.insert_full if with_key else st.insert_nokey, params)
        return values[st.key] if with_key else result.lastrowid
    kept = st.keep if keep is None else keep
    changed = [n for n in names if n not in target and n != st.key and n not in kept]
    if changed:
        yield Statement(st.update_by_key(changed), [*(by_name[n] for n in changed), found[0][0]])
    return values[st.key] if with_key else found[0][0]


# The aliases of MySQL's self-joined UPDATE: the row written, and its old values.
NEW_ROW = "registers_row"
OLD_ROW = "registers_old"

Check = Callable[[Sequence[Any]], Sequence[Any]]


def update_checked(sql: str, params: Sequence[Any], check: Check) -> Flow[Sequence[Any]]:
    """``UPDATE ... RETURNING`` whose returned rows are checked before the transaction
    commits (``check`` raises to roll it back); returns the rows."""
    return check((yield Statement(sql, params)).fetchall())


def update_then_read(st: Statements, where: str, where_params: list[Any], set_sql: str,
                     set_params: list[Any], joined: bool = False,
                     check: Check | None = None) -> Flow[list[Any]]:
    """``UPDATE`` where ``RETURNING`` is missing (MySQL): lock the matching keys, then
    update and re-read them in chunks; returns the updated rows. ``joined``: ``set_sql``
    reads the old row through the self-join :data:`OLD_ROW`. ``check`` vets the rows
    before the transaction commits."""
    locked = yield Statement(st.lock_keys(where), where_params)
    keys = [row[0] for row in locked.fetchall()]
    rows: list[Any] = []
    for start in range(0, len(keys), IN_CHUNK):
        chunk = keys[start:start + IN_CHUNK]
        in_sql = st.key_in(len(chunk))
        update = st.update_joined(set_sql, len(chunk)) if joined else \
            st.update(set_sql, in_sql)
        yield Statement(update, set_params + chunk)
        rows.extend((yield Statement(st.select + in_sql, chunk)).fetchall())
    if check is not None:
        check(rows)
    return rows


def update_then_reselect(st: Statements, where: str, where_params: list[Any],
                         set_sql: str, set_params: list[Any]) -> Flow[list[Any]]:
    """``UPDATE ... WHERE w`` then ``SELECT ... WHERE w`` where ``RETURNING`` is missing
    (MySQL), for constant ``SET`` values on fields ``w`` does not read (``w`` reading only
    the table's own columns); returns the updated rows.

    The updated rows are locked by this transaction and still match ``w``, so the
    ``SELECT`` returns them and perhaps more (rows another transaction committed since,
    visible under READ COMMITTED or from an older REPEATABLE READ snapshot). When it
    returns exactly as many rows as the ``UPDATE`` matched (``rowcount``: SQLAlchemy's
    MySQL connections report matched rows, ``CLIENT.FOUND_ROWS``) they are the updated
    rows. Otherwise :func:`update_then_read` runs in the same transaction: the constant
    values are written again, idempotently, to the rows it locks, which include every
    row updated so far.
    """
    matched = (yield Statement(st.update(set_sql, where), set_params + where_params)).rowcount
    rows = (yield Statement(st.select + where, where_params)).fetchall()
    if len(rows) == matched:
        return list(rows)
    return (yield from update_then_read(st, where, where_params, set_sql, set_params))


def insert_batches(st: Statements, names: Sequence[str],
                   rows: Sequence[Sequence[Any]]) -> Flow[list[Any]]:
    """Insert rows with database-generated keys; returns the keys in row order."""
    if st.is_sqlite:
        yield Statement(st.insert(names), rows, many=True)
        last = (yield Statement("SELECT last_insert_rowid()")).fetchall()[0][0]
        # Inside one write transaction SQLite hands out consecutive rowids.
        return list(range(last - len(rows) + 1, last + 1))
    keys: list[Any] = []
    for statement, count in st.multi_row_inserts(names, rows):
        result = yield statement
        if st.dialect.insert_returning:
            keys.extend(row[0] for row in result.fetchall())
        else:
            # MySQL/MariaDB: consecutive ids from the first one of a multi-row INSERT.
            keys.extend(range(result.lastrowid, result.lastrowid + count))
    return keys


def keys_for_sets(st: Statements, fields: tuple[str, ...],
                  values: Sequence[tuple[Any, ...]]) -> Flow[list[Any]]:
    """The keys of the rows whose composite unique ``fields`` hold ``values`` (tuples,
    same order)."""
    entries = [st.query.field(f) for f in fields]

    def stored(row: Sequence[Any], read: bool) -> tuple[Any, ...]:
        return tuple(
            v if e.to_db is None or v is None else
            e.to_db(e.adapter.validate_python(v) if read else v)
            for e, v in zip(entries, row)
        )

    wanted = [stored(v, False) for v in values]
    found: dict[tuple[Any, ...], Any] = {}
    chunk_size = max(1, IN_CHUNK // len(fields))
    for start in range(0, len(wanted), chunk_size):
        chunk = wanted[start:start + chunk_size]
        params = [v for row in chunk for v in row]
        result = yield Statement(st.keys_for_sets(fields, len(chunk)), params)
        for *row, key in result.fetchall():
            found[stored(row, True)] = key
    return [found.get(v) for v in wanted]


def keys_for(st: Statements, field: str, values: Sequence[Any]) -> Flow[list[Any]]:
    """The keys of the rows whose unique ``field`` holds ``values`` (same order)."""
    entry = st.query.field(field)
    to_db = entry.to_db
    stored = [v if to_db is None else to_db(v) for v in values]
    found: dict[Any, Any] = {}
    for start in range(0, len(stored), IN_CHUNK):
        chunk = stored[start:start + IN_CHUNK]
        for value, key in (yield Statement(st.keys_for(field, len(chunk)), chunk)).fetchall():
            found[value if to_db is None else to_db(entry.adapter.validate_python(value))] = key
    return [found.get(v) for v in stored]


def bulk_create(st: Statements, names: Sequence[str], rows: Sequence[Sequence[Any]],
                keys: Sequence[Any] | None) -> Flow[list[Any]]:
    """Insert every row; ``keys`` are the rows' explicit keys, or None when the database
    generates them. Returns the keys in row order."""
    if keys is not None:
        yield Statement(st.insert(names), rows, many=True)
        return list(keys)
    return (yield from insert_batches(st, names, rows))


class UpsertGroup(NamedTuple):
    """Rows of a bulk upsert that conflict the same way: on the key or a unique set
    (``target``), or not at all (None: plain inserts)."""

    with_key: bool
    target: tuple[str, ...] | None
    indexes: list[int]
    rows: list[Sequence[Any]]
    values: list[Mapping[str, Any]]
    keep: tuple[str, ...] | None = None  # columns the update leaves alone (None: default)


def bulk_upsert(st: Statements, groups: Sequence[UpsertGroup], size: int,
                guarded: Callable[[tuple[str, ...]], bool],
                sync_sequence: bool) -> Flow[list[Any]]:
    """Upsert every group with one batched statement each; returns keys in item order."""
    keys: list[Any] = [None] * size
    for group in groups:
        names = st.names if group.with_key else st.insert_names
        if group.target is None:
            found = yield from insert_batches(st, names, group.rows)
        elif guarded(group.target):
            found = []
            for values, row in zip(group.values, group.rows):
                found.append((yield from guarded_upsert(
                    st, values, group.with_key, group.target, names, row, group.keep)))
        else:
            yield Statement(st.upsert(group.with_key, group.target, returning=False,
                                      keep=group.keep), group.rows, many=True)
            target = group.target
            if group.with_key:
                found = [v[st.key] for v in group.values]
            elif len(target) == 1:
                found = yield from keys_for(st, target[0], [v[target[0]] for v in group.values])
            else:
                found = yield from keys_for_sets(
                    st, target, [tuple(v[f] for f in target) for v in group.values])
        for index, key in zip(group.indexes, found):
            keys[index] = key
    if sync_sequence:
        yield from advance_sequence(st)
    return keys
