"""Async twins of the manager's reads and writes (SPEC D12), on SQLAlchemy's async engine.

Every ``a*`` method of :class:`AsyncOperations` is its sync twin's plan
(:mod:`registers.db.plans`), one awaited line of I/O and the same finish, so it validates
its input, sends its SQL and builds its result exactly like the sync method; multi-statement
writes drive the same flows (:func:`registers.db.flows.adrive`). Connections, engines and
the SQLite fast path live in :mod:`registers.db.async_engine`.

That machinery is imported by a database's first async call, not by ``import
registers.db`` nor by decorating a model (so ``app --help`` never pays for it): every
operation reaches it through the database's :class:`~registers.db.async_engine.AsyncDatabase`
(:meth:`AsyncOperations._adb`), kept on the :class:`~registers.db.database.Database` once
made, and this module imports it only for type checking.

Statements never run as sync database code in a worker thread. Two steps do, so the
event loop keeps serving other tasks meanwhile: password hashing (PBKDF2, ~0.3 s per
value; hashlib releases the GIL) and, once, creating the tables of ``auto_create`` models
on their first use (:meth:`AsyncDatabase.prepare`), both through :func:`asyncio.to_thread`.

``async with Model.objects.atransaction():`` scopes every async operation of any model on
the same database in the current task (a context variable); nested blocks are savepoints.
Sync and async transactions do not mix.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from pydantic import BaseModel

from registers.db.dialects import is_transient
from registers.db.errors import driver_error
from registers.db.exceptions import InvalidQueryError
from registers.db.flows import WRITE_ATTEMPTS, Flow, Read, RetryIf, Write, adrive
from registers.db.plans import OperationPlans
from registers.db.query import Q
from registers.db.statements import Pages, Statement, unique_name
from registers.db.write_helpers import WritePlans

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from registers.db.async_direct import DirectConnection, DirectConnections
    from registers.db.async_engine import AsyncDatabase, AsyncTransaction

__all__ = ["AsyncOperations"]

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


class _PasswordsOffLoop(WritePlans[M]):
    """Password hashing off the event loop, before an async operation is planned."""

    async def _ahashed(self, instance: M) -> M:
        """``instance`` with its plain-text passwords hashed in a worker thread."""
        return (await self._ahashed_all([instance]))[0]

    async def _ahashed_all(self, instances: list[M]) -> list[M]:
        """``instances`` with their plain-text passwords hashed in a worker thread (PBKDF2
        takes ~0.3 s a value and releases the GIL, so the loop keeps serving other tasks).
        The plan's own hashing then finds nothing left to do."""
        todo = [i.__dict__ for i in instances if self._plain_passwords(i.__dict__)]
        if todo:
            await _hash_off_loop(self, todo)
        return instances

    async def _ahashed_values(self, values: Mapping[str, Any]) -> Mapping[str, Any]:
        """``values`` with plain-text passwords hashed off the loop."""
        if not isinstance(values, Mapping):
            return values  # the plan refuses it
        plain = {n: values[n] for n in self._plain_passwords(values)}
        if plain:
            await _hash_off_loop(self, [plain])
        return {**values, **plain} if plain else values

    async def _ahashed_updates(self, criteria: Any,
                               updates: dict[str, Any]) -> dict[str, Any]:
        """``updates`` with plain-text passwords hashed off the loop (when the update
        will run at all: the plan refuses empty criteria first)."""
        if not (isinstance(criteria, (Mapping, Q)) and criteria):
            return updates
        plain = {n: updates[n] for n in self._plain_passwords(updates)}
        if plain:
            await _hash_off_loop(self, [plain])
        return {**updates, **plain} if plain else updates


class AsyncOperations(_PasswordsOffLoop[M]):
    """``acreate``, ``aget``, ...: the async half of ``Model.objects``."""

    # --- reads ----------------------------------------------------------------------

    async def aget(self, *args: Any, **criteria: Any) -> M | None:
        """Async :meth:`~registers.db.registry.DatabaseRegistry.get`."""
        return await self._aread(self._plan_get(args, criteria))

    async def arequire(self, *args: Any, **criteria: Any) -> M:
        """Like :meth:`aget`, but raise :class:`RecordNotFoundError` when nothing matches."""
        return await self._aread(self._plan_require(args, criteria))

    async def afilter(self, *q: Q, limit: int | None = None, offset: int | None = None,
                      order_by: str | Sequence[str] | None = None,
                      **criteria: Any) -> list[M]:
        """Async :meth:`~registers.db.registry.DatabaseRegistry.filter`."""
        return await self._aread(self._plan_filter(limit, offset, order_by, criteria, q))

    async def aexclude(self, *q: Q, **criteria: Any) -> list[M]:
        """Async :meth:`~registers.db.registry.DatabaseRegistry.exclude`."""
        return await self._aread(self._plan_exclude(q, criteria))

    async def aall(self) -> list[M]:
        """Every row, in key order."""
        return await self.afilter(order_by=self.key)

    aget_all = aall

    async def afirst(self, *q: Q, order_by: str | Sequence[str] | None = None,
                     **criteria: Any) -> M | None:
        """The first matching row by key order (or ``order_by``), or None."""
        return await self._aread(self._plan_first(order_by, criteria, q=q))

    async def alast(self, *q: Q, order_by: str | Sequence[str] | None = None,
                    **criteria: Any) -> M | None:
        """The last matching row by key order (or ``order_by``), or None."""
        return await self._aread(self._plan_first(order_by, criteria, reverse=True, q=q))

    async def aexists(self, *q: Q, **criteria: Any) -> bool:
        """Whether any row matches ``q`` and ``criteria``."""
        return await self._aread(self._plan_exists(criteria, q))

    async def acount(self, *q: Q, **criteria: Any) -> int:
        """How many rows match ``q`` and ``criteria``."""
        return await self._aread(self._plan_count(criteria, q))

    def aiterate(self, *q: Q, batch_size: int = 1000,
                 order_by: str | Sequence[str] | None = None,
                 **criteria: Any) -> AsyncIterator[M]:
        """Stream matching rows in batches (``async for user in User.objects.aiterate():``)."""
        return self._astream(self._plan_iterate(batch_size, order_by, criteria, q))

    async def _astream(self, pages: Pages) -> AsyncIterator[M]:
        """The models of every page, read one page at a time (for ``aiterate``), as the
        sync ``_stream`` (PostgreSQL: the rest after a full first page by a cursor)."""
        sql, params = pages.first
        while True:
            rows = await self.arows(sql, params)
            for model in self._models(rows):
                yield model
            if len(rows) < pages.batch_size:
                return
            last = rows[-1]
            if pages.by_cursor:
                adb = self._adb()
                batches = adb.cursor_batches(self._ambient(adb), pages.cursor_name(),
                                             *pages.rest(last), pages.batch_size)
                try:
                    async for batch in batches:
                        if batch is None:  # dropped: carry on after the last row read
                            break
                        for model in self._models(batch):
                            yield model
                        last = batch[-1]
                    else:
                        return
                except self._aerrors() as exc:
                    original = driver_error(exc)
                    raise await self.errors.atranslate(original, "read from") from original
                finally:
                    await batches.aclose()  # a loop left early closes the cursor now
            sql, params = pages.after(last)

    async def arows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Async :meth:`~registers.db.registry.DatabaseRegistry.rows`."""
        return await self._aread((sql, params, list))

    # --- writes ---------------------------------------------------------------------

    async def acreate(self, **data: Any) -> M:
        """Async :meth:`~registers.db.registry.DatabaseRegistry.create`.

        Raises:
            pydantic.ValidationError: ``data`` is not a valid model (before any SQL).
            InvalidPrimaryKeyAssignmentError: a database-managed key was supplied.
            DuplicateKeyError: the key exists. UniqueConstraintError: a unique value exists.
        """
        return await self._awrite(self._plan_insert(await self._ahashed(self._new(data))))

    astrict_create = acreate

    async def aupsert(self, instance: M | None = None, /, *,
                      on_conflict: Mapping[str, Any] | None = None, **data: Any) -> M:
        """Async :meth:`~registers.db.registry.DatabaseRegistry.upsert`."""
        given = self._given(instance, data)
        instance = await self._ahashed(self._upserted_instance(instance, data))
        if on_conflict:
            on_conflict = await self._ahashed_values(on_conflict)
        return await self._awrite(self._plan_upsert(instance, given, on_conflict))

    async def aget_or_create(self, defaults: Mapping[str, Any] | None = None,
                             **lookup: Any) -> tuple[M, bool]:
        """Async :meth:`~registers.db.registry.DatabaseRegistry.get_or_create`."""
        if defaults:
            defaults = await self._ahashed_values(defaults)
        return await self._awrite(self._plan_get_or_create(defaults, lookup))

    async def aupdate_or_create(self, defaults: Mapping[str, Any] | None = None,
                                **lookup: Any) -> tuple[M, bool]:
        """Async :meth:`~registers.db.registry.DatabaseRegistry.update_or_create`."""
        if defaults:
            defaults = await self._ahashed_values(defaults)
        return await self._awrite(self._plan_update_or_create(defaults, lookup))

    async def abulk_update(self, models: Iterable[M], fields: Sequence[str]) -> int:
        """Async :meth:`~registers.db.registry.DatabaseRegistry.bulk_update` (all or
        nothing); plain-text passwords are hashed off the loop (onto the models)."""
        items = list(models)
        if self._hashed:
            await self._ahashed_all([m for m in items if isinstance(m, self.model)])
        write = self._plan_bulk_update(items, fields)
        return 0 if write is None else await self._awrite(write)

    async def ain_bulk(self, keys: Iterable[Any] | None = None, *,
                       field: str | None = None) -> dict[Any, M]:
        """Async :meth:`~registers.db.registry.DatabaseRegistry.in_bulk`."""
        reads, name = self._plan_in_bulk(keys, field)
        found: dict[Any, M] = {}
        for read in reads:
            for model in await self._aread(read):
                found[model.__dict__[name]] = model
        return found

    async def araw(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None
                   ) -> list[M]:
        """Async :meth:`~registers.db.registry.DatabaseRegistry.raw`."""
        return await self._awrite(self._plan_raw(sql, params))

    async def aupdate_where(self, criteria: Mapping[str, Any] | Q, **updates: Any) -> list[M]:
        """Async :meth:`~registers.db.registry.DatabaseRegistry.update_where`."""
        updates = await self._ahashed_updates(criteria, updates)
        return await self._awrite(self._plan_update_where(criteria, updates))

    async def adelete(self, key: Any) -> bool:
        """Async :meth:`~registers.db.registry.DatabaseRegistry.delete`."""
        return await self._awrite(self._plan_delete(key))

    async def adelete_where(self, *q: Q, **criteria: Any) -> int:
        """Async :meth:`~registers.db.registry.DatabaseRegistry.delete_where`."""
        return await self._awrite(self._plan_delete_where(criteria, q))

    async def abulk_create(self, items: Iterable[M | Mapping[str, Any]]) -> list[M]:
        """Async :meth:`~registers.db.registry.DatabaseRegistry.bulk_create` (all or nothing)."""
        write = self._plan_bulk_create(await self._ahashed_all(self._bulk_models(items)))
        return [] if write is None else await self._awrite(write)

    async def abulk_upsert(self, items: Iterable[M | Mapping[str, Any]]) -> list[M]:
        """Async :meth:`~registers.db.registry.DatabaseRegistry.bulk_upsert` (all or nothing)."""
        write = self._plan_bulk_upsert(await self._ahashed_all(self._bulk_models(items)))
        return [] if write is None else await self._awrite(write)

    # --- instances ------------------------------------------------------------------

    async def asave_instance(self, instance: M) -> M:
        """Async :meth:`~registers.db.registry.DatabaseRegistry.save_instance`."""
        fresh = await self._ahashed(self._saving(instance))
        return await self._awrite(self._plan_save(instance, fresh))

    async def adelete_instance(self, instance: BaseModel) -> bool:
        """Async :meth:`~registers.db.registry.DatabaseRegistry.delete_instance`."""
        write = self._plan_delete_instance(instance)
        return False if write is None else bool(await self._awrite(write))

    async def arefresh_instance(self, instance: M) -> M:
        """Async :meth:`~registers.db.registry.DatabaseRegistry.refresh_instance`."""
        return await self._aread(self._plan_refresh(instance))

    # --- the async connection policy ------------------------------------------------

    def _adb(self) -> AsyncDatabase:
        """This database's async side: the way in to the async machinery, imported and
        made by the first async call on the database, then read off it."""
        adb: AsyncDatabase | None = self.database.async_side
        if adb is None:
            from registers.db.async_engine import async_database

            adb = async_database(self.database)
        return adb

    def _aerrors(self) -> tuple[type[BaseException], ...]:
        """What an operation maps to a RegistryError: SQLAlchemy's wrappers, plus what
        the sync side catches from the driver (OverflowError, UnicodeEncodeError, ...)."""
        return (sa.exc.SQLAlchemyError, *self.database.driver_errors)

    def _ambient(self, adb: AsyncDatabase) -> AsyncTransaction | None:
        tx = adb.tx.get()
        if tx is None and self.database.current_transaction() is not None:
            raise InvalidQueryError(
                f"async operations on {self.model_name} cannot join a sync transaction() "
                "block; use 'async with Model.objects.atransaction():' instead",
                model=self.model_name,
            )
        return tx

    async def _aperform(self, adb: AsyncDatabase, conn: AsyncConnection | DirectConnection,
                        work: str | Callable[[], Flow[Any]], params: Any) -> Any:
        """Send the write's statement (-> its result), or drive its flow (-> its value)."""
        if type(work) is str:
            return await adb.execute(conn, Statement(work, params))
        return await adrive(work(), lambda st: adb.execute(conn, st))  # type: ignore[operator]

    async def _aread(self, read: Read[T]) -> T:
        sql, params, finish = read
        adb = self._adb()
        tx = self._ambient(adb)
        statement = Statement(sql, params)
        try:
            if tx is not None:
                async with tx.lock:
                    return finish((await adb.execute(tx.connection, statement)).rows)
            if not adb.loaded or self.database.pending_tables:
                await adb.prepare()  # first use: the async layer, pending tables
            direct = adb.direct()
            if direct is not None:
                rows = await self._aread_direct(direct, statement)
                if rows is not None:
                    return finish(rows)
            conn = await adb.connect()
            try:
                rows = (await adb.execute(conn, statement)).rows
            finally:
                await adb.release(conn)
        except self._aerrors() as exc:
            original = driver_error(exc)
            raise await self.errors.atranslate(original, "read from") from original
        return finish(rows)

    async def _aread_direct(self, direct: DirectConnections,
                            statement: Statement) -> list[Any] | None:
        """The rows of a read on a direct connection; None when the engine should serve it
        (SQLite: the connection cannot be opened, or stayed busy past the timeout)."""
        for resend in (False, True):
            conn = await direct.take(write=False)
            if conn is None:
                return None
            try:
                rows = (await conn.execute(statement)).rows
            except self._aerrors() as exc:
                if direct.shared:
                    if is_transient(self.database.family, exc):
                        return None  # busy/locked past the timeout: one more try below
                    raise
                if not self.database.is_disconnect(exc, conn.raw):
                    direct.give(conn)
                    raise
                direct.drop(conn)
                if resend:
                    raise
                continue  # the server dropped the connection: a read may be sent again
            except BaseException:  # cancelled mid-statement: the connection's state is unknown
                direct.drop(conn)
                raise
            direct.give(conn)
            return rows
        raise AssertionError("unreachable")  # pragma: no cover

    async def _awrite(self, write: Write[T]) -> T:
        """Await ``write`` as one transaction (or inside the ambient one); its finish.

        Like the sync ``_write``: a transaction of its own that hits a deadlock or a
        serialization failure is retried with backoff; inside ``atransaction()`` the
        error propagates, since only the caller can retry the whole block. Outside a
        block the write runs on a direct connection (SQLite: a single statement on the
        shared writer; a write of several statements takes the engine's connection).
        """
        work, params, finish, atomic, data, retry_if = write
        adb = self._adb()
        tx = self._ambient(adb)
        started = time.monotonic()
        try:
            if tx is not None:
                async with tx.lock:
                    outcome = await self._awrite_joined(adb, tx.connection, work, params,
                                                         atomic)
                return finish(outcome)
            if not adb.loaded or self.database.pending_tables:
                await adb.prepare()  # first use: the async layer, pending tables
            direct = adb.direct()
            if direct is not None and direct.shared and atomic:
                direct = None  # SQLite: a transaction needs a connection of its own
            for attempt in range(WRITE_ATTEMPTS):
                try:
                    if direct is not None:
                        outcome = await self._awrite_direct(adb, direct, work, params, atomic)
                    else:
                        outcome = await self._awrite_once(adb, work, params, atomic)
                    break
                except self._aerrors() as exc:
                    if attempt == WRITE_ATTEMPTS - 1 or not self.database.may_retry(started) \
                            or not _retryable(self.database.family, retry_if, driver_error(exc)):
                        raise
                import asyncio  # a retry only (asyncio is not imported for registers.db)

                await asyncio.sleep(0.01 * (2**attempt) * (1 + random.random()))
        except self._aerrors() as exc:
            original = driver_error(exc)
            raise await self.errors.atranslate(original, "write to", data) from original
        return finish(outcome)

    async def _awrite_direct(self, adb: AsyncDatabase, direct: DirectConnections,
                             work: str | Callable[[], Flow[Any]], params: Any,
                             atomic: bool) -> Any:
        """A write on a direct connection: one statement, or several between BEGIN and
        COMMIT on a connection this task holds alone. Never resent after a disconnect
        (whether the server applied it is unknown)."""
        conn = await direct.take(write=True)
        if conn is None:  # SQLite could not open it: the engine reports why
            return await self._awrite_once(adb, work, params, atomic)
        try:
            if atomic:
                await conn.execute(Statement("BEGIN"))
            outcome = await self._aperform(adb, conn, work, params)
            if atomic:
                await conn.execute(Statement("COMMIT"))
        except BaseException as exc:
            usable = not atomic
            if atomic:
                with contextlib.suppress(Exception):  # the original error matters more
                    await conn.execute(Statement("ROLLBACK"))
                    usable = True
            if usable and isinstance(exc, self._aerrors()) \
                    and not self.database.is_disconnect(exc, conn.raw):
                direct.give(conn)
            else:  # broken, cancelled mid-statement, or stuck in a transaction
                direct.drop(conn)
            if not isinstance(exc, Exception):  # cancelled: the write's outcome is final
                await direct.settle(conn)  # once the task has ended
            raise
        direct.give(conn)
        return outcome

    async def _awrite_joined(self, adb: AsyncDatabase, conn: AsyncConnection,
                             work: str | Callable[[], Flow[Any]], params: Any,
                             atomic: bool) -> Any:
        """Run a write inside the caller's transaction, as the sync ``_write_once`` does.

        A write that fails must leave no partial rows and (on PostgreSQL) must not poison
        the caller's transaction, so it gets a savepoint; a single statement elsewhere is
        already atomic.
        """
        if not (atomic or self.database.family == "postgresql"):
            return await self._aperform(adb, conn, work, params)
        savepoint = unique_name("registers_aw")
        await adb.execute(conn, Statement(f"SAVEPOINT {savepoint}"))
        try:
            result = await self._aperform(adb, conn, work, params)
        except BaseException:
            with contextlib.suppress(Exception):
                await adb.execute(conn, Statement(f"ROLLBACK TO SAVEPOINT {savepoint}"))
                await adb.execute(conn, Statement(f"RELEASE SAVEPOINT {savepoint}"))
            raise
        await adb.execute(conn, Statement(f"RELEASE SAVEPOINT {savepoint}"))
        return result

    async def _awrite_once(self, adb: AsyncDatabase, work: str | Callable[[], Flow[Any]],
                           params: Any, atomic: bool) -> Any:
        """A write on a connection of the engine's pool, committed."""
        conn = await adb.connect()
        try:
            if atomic and self.database.is_sqlite:
                await conn.exec_driver_sql("BEGIN IMMEDIATE")
            result = await self._aperform(adb, conn, work, params)
            await conn.commit()
            return result
        except BaseException:
            with contextlib.suppress(Exception):  # the original error matters more
                await conn.rollback()
            raise
        finally:
            await adb.release(conn)

    # --- transactions, lifecycle ----------------------------------------------------

    @asynccontextmanager
    async def atransaction(self) -> AsyncIterator[AsyncConnection]:
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
                original = driver_error(exc)
                raise await self.errors.atranslate(original, "begin a transaction on") \
                    from original
            token = adb.enter(conn)
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
                original = driver_error(exc)
                raise await self.errors.atranslate(original, "commit to") from original
        finally:
            await adb.release(conn)

    @asynccontextmanager
    async def _asavepoint(self, tx: AsyncTransaction) -> AsyncIterator[AsyncConnection]:
        conn = tx.connection
        try:
            async with tx.lock:
                nested = await conn.begin_nested()
        except self._aerrors() as exc:
            original = driver_error(exc)
            raise await self.errors.atranslate(original, "begin a savepoint on") from original
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
            original = driver_error(exc)
            raise await self.errors.atranslate(original, "commit to") from original

    async def adispose(self) -> None:
        """Close this database's pooled async connections (they reopen on next use)."""
        adb = self.database.async_side
        if adb is not None:  # else it never opened one
            await adb.dispose()


def _retryable(family: str, retry_if: RetryIf | None, error: BaseException) -> bool:
    """Whether a failed write may be tried again: a deadlock or serialization failure, or
    what the write's own ``retry_if`` says (a lost insert race)."""
    return is_transient(family, error) or (retry_if is not None and retry_if(error))


async def _hash_off_loop(manager: OperationPlans[Any], rows: list[dict[str, Any]]) -> None:
    """Hash the plain-text passwords of ``rows`` in a worker thread."""
    import asyncio  # a password path only (asyncio is not imported for registers.db)

    await asyncio.to_thread(_hash_each, manager, rows)


def _hash_each(manager: OperationPlans[Any], rows: list[dict[str, Any]]) -> None:
    for values in rows:
        manager._hash_passwords(values)

