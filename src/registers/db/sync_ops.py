"""The sync operations of the manager, and the sync connection policy they run on.

Every public method is its plan (:mod:`registers.db.plans`), one line of I/O and its
finish. The I/O is :meth:`SyncOperations._read` or :meth:`SyncOperations._write`: they take
the connection :class:`~registers.db.engine.Database` offers (the thread's autocommit
SQLite connection for a single statement, else a pooled or the ambient transaction's
connection), run the statement or drive the flow (:func:`registers.db.flows.drive`), retry
deadlocks and serialization failures of a transaction of their own, and translate every
driver error at one seam (:class:`registers.db.errors.ErrorTranslator`).
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from registers.db.database import KEPT_RESULT_ROWS, Database
from registers.db.dialects import is_transient
from registers.db.exceptions import RegistryError
from registers.db.flows import (
    WRITE_ATTEMPTS,
    Flow,
    Read,
    Result,
    RetryIf,
    Write,
    drive,
    returns_rows,
)
from registers.db.pipeline import (
    BeginFailed,
    StreamConnections,
    on_pymysql,
    receive,
    send,
    send_begin_with,
    stream_connections,
)
from registers.db.query import Q
from registers.db.queryset import Query
from registers.db.statements import Pages, unique_name
from registers.db.write_helpers import WritePlans

__all__ = ["SyncOperations"]

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


class SyncOperations(WritePlans[M]):
    """``create``, ``get``, ``filter``, ...: the sync half of ``Model.objects``."""

    # --- reads ----------------------------------------------------------------------

    def get(self, *args: Any, **criteria: Any) -> M | None:
        """The row with key ``args[0]``, or the first matching ``criteria``; else None."""
        return self._read(self._plan_get(args, criteria))

    def require(self, *args: Any, **criteria: Any) -> M:
        """Like :meth:`get`, but raise :class:`RecordNotFoundError` when nothing matches."""
        return self._read(self._plan_require(args, criteria))

    def filter(self, *q: Q, limit: int | None = None, offset: int | None = None,
               order_by: str | Sequence[str] | None = None, **criteria: Any) -> list[M]:
        """Rows matching ``q`` and ``criteria`` (``field=value`` or ``field__lookup=value``)."""
        return self._read(self._plan_filter(limit, offset, order_by, criteria, q))

    def exclude(self, *q: Q, **criteria: Any) -> list[M]:
        """Rows *not* matching ``q`` and ``criteria`` (NULL-aware, as Django's exclude)."""
        return self._read(self._plan_exclude(q, criteria))

    def where(self, *q: Q, **criteria: Any) -> Query[M]:
        """A lazy, chainable :class:`~registers.db.queryset.Query` of the matching rows
        (``Query`` has the sync and the async results: ``all()``/``aall()``, ...)."""
        return self._where(q, criteria)

    def all(self) -> list[M]:
        """Every row, in key order."""
        return self.filter(order_by=self.key)

    get_all = all

    def first(self, *q: Q, order_by: str | Sequence[str] | None = None,
              **criteria: Any) -> M | None:
        """The first matching row by key order (or ``order_by``), or None."""
        return self._read(self._plan_first(order_by, criteria, q=q))

    def last(self, *q: Q, order_by: str | Sequence[str] | None = None,
             **criteria: Any) -> M | None:
        """The last matching row by key order (or ``order_by``), or None."""
        return self._read(self._plan_first(order_by, criteria, reverse=True, q=q))

    def exists(self, *q: Q, **criteria: Any) -> bool:
        """Whether any row matches ``q`` and ``criteria``."""
        return self._read(self._plan_exists(criteria, q))

    def count(self, *q: Q, **criteria: Any) -> int:
        """How many rows match ``q`` and ``criteria``."""
        return self._read(self._plan_count(criteria, q))

    def iterate(self, *q: Q, batch_size: int = 1000,
                order_by: str | Sequence[str] | None = None, **criteria: Any) -> Iterator[M]:
        """Stream matching rows in batches of ``batch_size`` (memory stays flat).

        Rows come in ``order_by`` order (key order by default) through keyset
        pagination, so a row written meanwhile never shifts a page: no row is returned
        twice or skipped, whatever the ties and NULLs.
        """
        return self._stream(self._plan_iterate(batch_size, order_by, criteria, q))

    def _stream(self, pages: Pages) -> Iterator[M]:
        """The models of every page, read one page at a time (for ``iterate``)."""
        sql, params = pages.first
        while True:
            rows = self.rows(sql, params)
            # One model at a time: the consumer decides what stays alive, so memory stays
            # flat and the garbage collector never scans a whole batch of models.
            yield from self._models(rows)
            if len(rows) < pages.batch_size:
                return
            last = rows[-1]
            if pages.by_cursor:
                last = yield from self._cursor_rest(pages, last)
                if last is None:
                    return
            elif (streams := stream_connections(self.database)) is not None:
                last = yield from self._pipelined_rest(streams, pages, last)
                if last is None:
                    return
            sql, params = pages.after(last)

    def _cursor_rest(self, pages: Pages, row: Sequence[Any]) -> Generator[M, None, Any]:
        """PostgreSQL: the models after ``row`` through one server-side cursor, a batch a
        fetch. Returns None at the end; if the thread's connection dropped, the last row
        read, for the keyset pages to carry on from (a read may be sent again).

        Outside ``transaction()`` the cursor is ``WITH HOLD`` on the thread's autocommit
        connection, so statements the loop body runs on it meanwhile commit as usual;
        inside, it lives in the block's transaction and sees its writes.
        """
        db = self.database
        conn, own = db.acquire()
        sql, params = pages.rest(row)
        cursor = conn.cursor(name=pages.cursor_name(), withhold=own)
        try:
            self._execute(conn, sql, params, cursor=cursor)
            while rows := cursor.fetchmany(pages.batch_size):
                yield from self._models(rows)
                row = rows[-1]
            return None
        except db.driver_errors as exc:
            if own and db.is_disconnect(exc, conn):
                db.discard_connection(conn)
                return row
            raise self.errors(exc, "read from") from exc
        except GeneratorExit:  # closed early, at a model: the cursor is between fetches
            raise
        except BaseException as exc:
            _cut_short(db, conn, exc)
            raise
        finally:
            try:
                with contextlib.suppress(Exception):  # a dropped connection closed it already
                    cursor.close()
            except BaseException as exc:  # interrupted while the server closes it
                _cut_short(db, conn, exc)
                raise

    def _pipelined_rest(self, streams: StreamConnections, pages: Pages,
                        row: Sequence[Any]) -> Generator[M, None, Any]:
        """MySQL on PyMySQL: the models after ``row``, in keyset pages on a stream
        connection, each page's successor sent before the page is handed out
        (:mod:`registers.db.pipeline`). Returns None at the end; the last row handed out
        if no stream connection could be had or it dropped (the caller carries on with
        plain pages on the thread's connection: a read may be sent again)."""
        db = self.database
        conn = streams.take()
        if conn is None:
            return row
        cursor, pending = conn.cursor(), False
        listeners = db.engine.dispatch.before_cursor_execute
        try:
            send(conn, cursor, *pages.after(row), listeners)
            pending = True
            while True:
                rows = receive(conn, cursor)
                pending = False
                more = len(rows) == pages.batch_size
                if more:
                    send(conn, cursor, *pages.after(rows[-1]), listeners)
                    pending = True
                yield from self._models(rows)
                if not more:
                    streams.give(conn, pending)
                    return None
                row = rows[-1]
        except GeneratorExit:  # closed early, at a model: the protocol is where we left it
            streams.give(conn, pending)
            raise
        except db.driver_errors as exc:
            streams.discard(conn)
            if db.is_disconnect(exc, None):
                return row
            raise self.errors(exc, "read from") from exc
        except BaseException:  # interrupted anywhere: the connection's state is unknown
            streams.discard(conn)
            raise

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Rows of a ``SELECT`` on this model's database, through the manager's connection
        policy and error translation (for relationship loaders and raw reads)."""
        return self._read((sql, params, list))

    # --- writes ---------------------------------------------------------------------

    def create(self, **data: Any) -> M:
        """Insert a new row (strict: never overwrites) and return the model with its key.

        Raises:
            pydantic.ValidationError: ``data`` is not a valid model (before any SQL).
            InvalidPrimaryKeyAssignmentError: a database-managed key was supplied.
            DuplicateKeyError: the key exists. UniqueConstraintError: a unique value exists.
        """
        return self._write(self._plan_insert(self._new(data)))

    strict_create = create

    def upsert(self, instance: M | None = None, /, *,
               on_conflict: Mapping[str, Any] | None = None, **data: Any) -> M:
        """Insert, or update the row with the same key (or unique field), atomically;
        returns the row as stored.

        With no key value, the first of ``unique_fields`` that has a value decides which
        row is updated; with neither, this is a plain insert. An update changes only the
        fields given (``data``, and an ``instance``'s ``model_fields_set``); the others
        keep their stored value. ``on_conflict`` values (or ``F`` expressions, which read
        the existing row) are what an existing row gets instead:
        ``upsert(sku="A", qty=2, on_conflict={"qty": F("qty") + 2})``.

        Raises:
            InvalidQueryError: ``on_conflict`` names the key, a matched field or an
                unknown field (before any SQL).
        """
        return self._write(self._plan_upsert(self._upserted_instance(instance, data),
                                             self._given(instance, data), on_conflict))

    def get_or_create(self, defaults: Mapping[str, Any] | None = None,
                      **lookup: Any) -> tuple[M, bool]:
        """The first row (by key) matching ``lookup``, or a new row made of the plain
        ``field=value`` lookups and ``defaults``; and whether it was created.

        Race-free when the plain lookups include the key or a unique field set: exactly
        one concurrent caller creates the row, the others get it.
        """
        return self._write(self._plan_get_or_create(defaults, lookup))

    def update_or_create(self, defaults: Mapping[str, Any] | None = None,
                         **lookup: Any) -> tuple[M, bool]:
        """Set ``defaults`` on the first row (by key) matching ``lookup``, or create it
        from the plain lookups and ``defaults``, in one transaction; returns the stored
        row and whether it was created."""
        return self._write(self._plan_update_or_create(defaults, lookup))

    def bulk_update(self, models: Iterable[M], fields: Sequence[str]) -> int:
        """Write ``fields`` of every saved model to its row, in a bounded number of
        statements inside one transaction (all or nothing); returns the rows matched."""
        write = self._plan_bulk_update(models, fields)
        return 0 if write is None else self._write(write)

    def in_bulk(self, keys: Iterable[Any] | None = None, *,
                field: str | None = None) -> dict[Any, M]:
        """``{value: model}`` for the rows whose ``field`` (the key, or a unique field)
        holds one of ``keys`` (every row when None); missing values are left out."""
        reads, name = self._plan_in_bulk(keys, field)
        found: dict[Any, M] = {}
        for read in reads:
            for model in self._read(read):
                found[model.__dict__[name]] = model
        return found

    def raw(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None
            ) -> list[M]:
        """Rows of the caller's SQL (placeholders in the driver's style, values bound)
        validated into models: the escape hatch. Every field needs its column."""
        return self._write(self._plan_raw(sql, params))

    def update_where(self, criteria: Mapping[str, Any] | Q, **updates: Any) -> list[M]:
        """Update every row matching ``criteria`` (a dict or a ``Q``); return the updated
        rows (by key order).

        Values may be :class:`~registers.db.query.F` expressions for atomic arithmetic:
        ``update_where({"id": 1}, hits=F("hits") + 1)``.
        """
        return self._write(self._plan_update_where(criteria, updates))

    def delete(self, key: Any) -> bool:
        """Delete the row with ``key``. Returns whether a row was deleted."""
        return self._write(self._plan_delete(key))

    def delete_where(self, *q: Q, **criteria: Any) -> int:
        """Delete every row matching ``q`` and ``criteria``; returns how many were deleted."""
        return self._write(self._plan_delete_where(criteria, q))

    def bulk_create(self, items: Iterable[M | Mapping[str, Any]]) -> list[M]:
        """Validate every item, then insert them all in one transaction (all or nothing)."""
        write = self._plan_bulk_create(self._bulk_models(items))
        return [] if write is None else self._write(write)

    def bulk_upsert(self, items: Iterable[M | Mapping[str, Any]]) -> list[M]:
        """Validate every item, then upsert them all in one transaction (all or nothing).

        Items are grouped by how they conflict (by key, or by a unique field); each
        group is written with one batched statement, so the statement count does not
        grow with the number of rows.
        """
        write = self._plan_bulk_upsert(self._bulk_models(items))
        return [] if write is None else self._write(write)

    # --- instances ------------------------------------------------------------------

    def save_instance(self, instance: M) -> M:
        """Upsert ``instance`` by key; reflect generated values onto it."""
        return self._write(self._plan_save(instance, self._saving(instance)))

    def delete_instance(self, instance: BaseModel) -> bool:
        """Delete ``instance``'s row. Returns whether a row was deleted."""
        write = self._plan_delete_instance(instance)
        return False if write is None else bool(self._write(write))

    def refresh_instance(self, instance: M) -> M:
        """A fresh copy of ``instance`` from the database."""
        return self._read(self._plan_refresh(instance))

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """One transaction for every manager on this database inside the block.

        Nested blocks are savepoints. An exception rolls the block back and propagates.
        """
        try:
            with self.database.transaction() as conn:
                yield conn
        except self._dbapi_errors as exc:  # raw SQL of the block (begin/commit: engine)
            raise self.errors(exc, "run a transaction on") from exc

    # --- the connection policy ------------------------------------------------------

    @property
    def _dbapi_errors(self) -> tuple[type[BaseException], ...]:
        return self.database.driver_errors

    def _execute(self, conn: Any, sql: str, params: Any, many: bool = False,
                 cursor: Any = None) -> Any:
        """Send one statement on a DBAPI connection (statement listeners see it), on
        ``cursor`` if given; returns the cursor."""
        events = self.database.engine.dispatch.before_cursor_execute
        if cursor is None:
            if self.database.is_sqlite and not events:
                return conn.executemany(sql, params) if many else conn.execute(sql, params)
            cursor = self.database.cursor(conn)
        for listener in events:
            listener(conn, cursor, sql, params, None, many)
        if many:
            cursor.executemany(sql, params)
        else:
            cursor.execute(sql, params)
        return cursor

    def _perform(self, conn: Any, work: str | Callable[[], Flow[Any]], params: Any,
                 begin: bool = False) -> Any:
        """Send the write's statement (-> its cursor), or drive its flow (-> its value);
        ``begin``: a transaction is to be begun, BEGIN going with the first statement
        (PyMySQL, :func:`registers.db.pipeline.send_begin_with`)."""
        execute: Callable[..., Any] = self._execute
        if begin:
            execute = self._begun_with_first(conn)
        if type(work) is str:
            return execute(conn, work, params)
        value = drive(work(), lambda st: execute(conn, *st))  # type: ignore[operator]
        self.database.release_large_result(conn)
        return value

    def _begun_with_first(self, conn: Any) -> Callable[..., Any]:
        """``_execute``, the first statement sent with BEGIN (an executemany after a BEGIN
        of its own). If BEGIN's answer cannot be read the connection is closed."""
        db, pending = self.database, [True]

        def execute(conn: Any, sql: str, params: Any, many: bool = False) -> Any:
            if not pending:
                return self._execute(conn, sql, params, many)
            pending.clear()
            if many:
                db.begin(conn)
                return self._execute(conn, sql, params, many)
            cursor = db.cursor(conn)
            try:
                send_begin_with(conn, cursor, sql, params,
                                db.engine.dispatch.before_cursor_execute)
            except BeginFailed as failed:
                # The statement's answer is unread: the connection goes. (A BEGIN that
                # fails on a connection that stays up, which MariaDB does not do short of
                # running out of memory, would leave the statement run on its own.)
                db.discard_connection(conn)
                raise failed.error from None
            return cursor

        return execute

    def _read(self, read: Read[T]) -> T:
        sql, params, finish = read
        db = self.database
        conn = db.autocommit_connection()
        if conn is not None:
            try:
                if db.is_sqlite:
                    rows = conn.execute(sql, params).fetchall()
                else:
                    rows = self._execute(conn, sql, params).fetchall()
                    if len(rows) > KEPT_RESULT_ROWS:
                        db.release_large_result(conn)
                return finish(rows)
            except db.driver_errors as exc:
                if db.is_sqlite or not db.is_disconnect(exc, conn):
                    raise self.errors(exc, "read from") from exc
                # the server dropped the thread's connection: a read may simply be sent
                # again, on a new connection
                db.discard_connection()
            except BaseException as exc:
                _cut_short(db, conn, exc)
                raise
        conn, owned = db.acquire()
        try:
            rows = self._execute(conn, sql, params).fetchall()
            if len(rows) > KEPT_RESULT_ROWS:
                db.release_large_result(conn)
        except db.driver_errors as exc:
            if owned:
                db.rollback(conn)
            raise self.errors(exc, "read from") from exc
        except BaseException as exc:
            _cut_short(db, conn, exc)
            raise
        finally:
            db.release(conn, owned)
        return finish(rows)

    def _write(self, write: Write[T]) -> T:
        """Run ``write`` as one transaction (or inside the ambient one); its finish.

        A transaction of its own that hits a deadlock or serialization failure is
        retried (a few times, with backoff); inside an ambient transaction the error
        propagates, since only the caller can retry the whole block.
        """
        work, params, finish, atomic, data, retry_if = write
        db = self.database
        started = time.monotonic()
        conn = None if atomic else db.autocommit_connection()
        if conn is not None:
            try:
                if type(work) is str:
                    if db.is_sqlite:
                        return finish(conn.execute(work, params))
                    cursor = self._execute(conn, work, params)
                    result = finish(cursor)
                    if cursor.rowcount > KEPT_RESULT_ROWS:
                        db.release_large_result(conn)
                    return result
                return finish(self._perform(conn, work, params))
            except db.driver_errors as exc:
                if db.is_sqlite:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                elif db.is_disconnect(exc, conn):
                    # whether the server applied the statement is unknown: never resend
                    db.discard_connection()
                retry = is_transient(db.family, exc) or (retry_if is not None and retry_if(exc))
                if not (retry and db.may_retry(started)):
                    raise self.errors(exc, "write to", data) from exc
                # a deadlock, SQLite busy past the timeout or a lost race: retry below
            except BaseException as exc:
                _cut_short(db, conn, exc)
                raise
        for attempt in range(WRITE_ATTEMPTS):
            try:
                return finish(self._write_once(work, params, atomic, retry_if))
            except _Transient as transient:
                last = attempt == WRITE_ATTEMPTS - 1
                if last or not transient.owned or not db.may_retry(started):
                    raise self.errors(transient.error, "write to", data) from transient.error
                time.sleep(0.01 * (2**attempt) * (1 + random.random()))
            except db.driver_errors as exc:
                raise self.errors(exc, "write to", data) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _write_once(self, work: str | Callable[[], Flow[Any]], params: Any, atomic: bool,
                    retry_if: RetryIf | None) -> Any:
        db = self.database
        conn, owned = db.acquire()
        # Inside a caller's transaction, a write that fails must leave no partial rows
        # and (on PostgreSQL) must not poison the caller's transaction: give it a
        # savepoint. A single statement is already atomic elsewhere.
        savepoint = None if owned or not (atomic or db.family == "postgresql") else \
            unique_name("registers_w")
        try:
            ahead = owned and atomic and on_pymysql(db)
            if owned and atomic and not ahead:
                db.begin(conn)
            if savepoint:
                self._execute(conn, f"SAVEPOINT {savepoint}", ())
            outcome = self._perform(conn, work, params, ahead)
            if type(work) is str:  # read it out: the connection goes back before finishing
                outcome = _fetched(outcome)
                if len(outcome.rows) > KEPT_RESULT_ROWS:
                    db.release_large_result(conn)
            if savepoint:
                self._execute(conn, f"RELEASE SAVEPOINT {savepoint}", ())
            if owned:
                db.commit(conn)
            return outcome
        except db.driver_errors as exc:
            self._undo(conn, owned, savepoint)
            if owned and not db.is_sqlite and db.is_disconnect(exc, conn):
                db.discard_connection()
            if is_transient(db.family, exc) or (retry_if is not None and retry_if(exc)):
                raise _Transient(exc, owned) from exc
            raise
        except BaseException as exc:
            if not _cut_short(db, conn, exc):
                self._undo(conn, owned, savepoint)
            raise
        finally:
            db.release(conn, owned)

    def _undo(self, conn: Any, owned: bool, savepoint: str | None) -> None:
        if owned:
            self.database.rollback(conn)
        elif savepoint:
            with contextlib.suppress(Exception):
                cursor = conn.cursor()
                cursor.execute(f"ROLLBACK TO SAVEPOINT {savepoint}")
                cursor.execute(f"RELEASE SAVEPOINT {savepoint}")


def _cut_short(db: Database, conn: Any, exc: BaseException) -> bool:
    """After ``exc``, not a driver error, left a statement on ``conn``: whether it may
    have cut the statement short (Ctrl-C, SystemExit, an exception raised by a signal
    handler; not registers' own errors nor a model's validation), in which case a
    server's answer may still be on its way, for the next statement to read as its own:
    the connection is discarded. SQLite runs statements in-process (an interrupt lands
    between them), so its connections stay."""
    if db.is_sqlite or isinstance(exc, (RegistryError, ValidationError)):
        return False
    db.discard_connection(conn)
    return True


def _fetched(cursor: Any) -> Result:
    """A statement's cursor read out in full."""
    rows = cursor.fetchall() if returns_rows(cursor) else []
    return Result(rows, cursor.rowcount, getattr(cursor, "lastrowid", None))


class _Transient(Exception):
    """A deadlock, serialization failure or lost race: the whole write may be retried."""

    def __init__(self, error: BaseException, owned: bool) -> None:
        super().__init__(str(error))
        self.error = error
        self.owned = owned
