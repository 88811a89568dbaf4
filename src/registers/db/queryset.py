"""``Query``: a lazy, immutable, chainable query, with Django's QuerySet names.

``User.objects.where(active=True).exclude(role="bot").order_by("-joined")[:20]`` builds
a :class:`Query` and runs nothing; a result is asked for with ``all()``, iteration,
``first()``, ``count()``... (``aall()``, ``async for``, ``acount()``... on the event
loop). Every method returns a new query; the original is never changed, so a query can
be kept and reused. The statements come from the table's compiled-statement cache
(:class:`~registers.db.query.QueryCompiler`), so ``where(...).first()`` in a loop builds
its SQL once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, Generic, TypeVar

from registers.db.aggregates import Aggregate, aggregates_of
from registers.db.exceptions import InvalidQueryError, RecordNotFoundError
from registers.db.grouping import GroupedStatement, compile_grouped, is_having, refuse_field_clash
from registers.db.query import Compiled, Group, Q, check_window
from registers.db.statements import Pages

__all__ = ["Query"]

T = TypeVar("T")

_MODELS, _DICTS, _TUPLES, _FLAT = "models", "dicts", "tuples", "flat"


class _QueryState(Generic[T]):
    """What a :class:`Query` holds, and the statements it compiles (no I/O)."""

    __slots__ = (
        "_annotations",
        "_distinct",
        "_fields",
        "_groups",
        "_having",
        "_limit",
        "_manager",
        "_mode",
        "_offset",
        "_order",
    )

    def __init__(self, manager: Any, groups: tuple[Group, ...] = (),
                 order: tuple[str, ...] | None = None, limit: int | None = None,
                 offset: int | None = None, distinct: bool = False,
                 fields: tuple[str, ...] | None = None, mode: str = _MODELS,
                 annotations: tuple[tuple[str, Aggregate], ...] = (),
                 having: tuple[Group, ...] = ()) -> None:
        self._manager = manager
        self._groups = groups
        self._order = order
        self._limit = limit
        self._offset = offset
        self._distinct = distinct
        self._fields = fields
        self._mode = mode
        self._annotations = annotations
        self._having = having

    @property
    def _sliced(self) -> bool:
        return self._limit is not None or bool(self._offset)

    def _refuse_sliced(self, action: str) -> None:
        if self._sliced:
            raise InvalidQueryError(
                f"cannot {action} a {self._manager.model_name} query once a slice or "
                "limit/offset has been taken"
            )

    # --- statements (shared by the sync and async runners) --------------------------

    def _order_fields(self) -> tuple[tuple[str, ...] | None, tuple[str, ...] | None]:
        order: tuple[str, ...] | None = self._order
        models = self._mode == _MODELS
        if order is None and (models or not self._distinct):
            order = (self._manager.key,)
        return order, None if models else self._fields

    def _compiled(self) -> tuple[Compiled, list[Any]]:
        order, fields = self._order_fields()
        compiled, values = self._manager.query.compile(self._groups, order, fields=fields)
        return compiled, compiled.params(values)

    def _select(self, reverse: bool = False, window: tuple[int | None, int | None] | None = None
                ) -> tuple[str, list[Any], Callable[[Sequence[Any]], list[Any]]]:
        limit, offset = window if window is not None else (self._limit, self._offset)
        if self._annotations:
            grouped, params = self._grouped(reverse)
            convert = grouped.dicts if self._mode == _DICTS else grouped.tuples
            return grouped.select(limit, offset), params, convert
        order, fields = self._order_fields()
        sql, params, compiled = self._manager.query.select_statement(
            self._groups, order, reverse=reverse, fields=fields, limit=limit, offset=offset,
            distinct=self._distinct)
        return sql, params, self._converter(compiled)

    def _converter(self, compiled: Compiled) -> Callable[[Sequence[Any]], list[Any]]:
        manager, visible = self._manager, compiled.visible
        trim = compiled.width > visible
        if self._mode == _MODELS:
            if trim:
                return lambda rows: manager._to_models([row[:visible] for row in rows])
            return manager._to_models  # type: ignore[no-any-return]
        readers = compiled.readers or ()
        names = [name for name, _ in readers]
        reads = [read for _, read in readers]
        if self._mode == _DICTS:
            return lambda rows: [
                dict(zip(names, [read(v) for read, v in zip(reads, row)])) for row in rows
            ]
        if self._mode == _TUPLES:
            return lambda rows: [tuple(read(v) for read, v in zip(reads, row)) for row in rows]
        read = reads[0]
        return lambda rows: [read(row[0]) for row in rows]

    def _grouped(self, reverse: bool = False) -> tuple[GroupedStatement, list[Any]]:
        return compile_grouped(self._manager.query, self._groups, self._having,
                               self._fields or (), self._annotations, self._order, reverse)

    def _aggregate_read(self, args: tuple[Any, ...], named: dict[str, Any]
                        ) -> tuple[str, list[Any], Callable[[Sequence[Any]], dict[str, Any]]]:
        model = self._manager.model_name
        if self._annotations:
            raise InvalidQueryError(f"aggregate() on an annotated {model} query is not "
                                    "supported: aggregate the rows before annotate()")
        if self._sliced or self._distinct:
            raise InvalidQueryError(f"aggregate() on a {model} query after a slice, "
                                    "limit/offset or distinct() is not supported")
        pairs = aggregates_of("aggregate", args, named)
        grouped, params = compile_grouped(self._manager.query, self._groups, (), (), pairs)
        return grouped.select(None, None), params, grouped.one

    def _count_sql(self) -> tuple[str, list[Any]]:
        if self._annotations:
            grouped, params = self._grouped()
            return grouped.count(self._limit, self._offset), params
        compiled, params = self._compiled()
        return self._manager.query.count(compiled, limit=self._limit, offset=self._offset,
                                         distinct=self._distinct), params

    def _exists_sql(self) -> tuple[str, list[Any]] | None:
        if self._limit == 0:
            return None
        if self._annotations:
            grouped, params = self._grouped()
            return grouped.exists(None, self._offset), params
        compiled, params = self._compiled()
        return self._manager.query.exists(compiled, offset=self._offset), params

    def _first_window(self) -> tuple[int | None, int | None]:
        limit = 1 if self._limit is None else min(1, self._limit)
        return limit, self._offset

    def _last_args(self) -> tuple[bool, tuple[int | None, int | None]]:
        self._refuse_sliced("reverse")
        return True, (1, None)

    def _one(self, found: list[Any], q: tuple[Q, ...], criteria: dict[str, Any]) -> Any:
        if len(found) == 1:
            return found[0]
        what = ", ".join([*map(repr, q), *(f"{k}={v!r}" for k, v in criteria.items())])
        model = self._manager.model_name
        if not found:
            raise RecordNotFoundError(
                f"no {model} matches the query{f' ({what})' if what else ''}",
                model=model, table=self._manager.table_name,
            )
        raise InvalidQueryError(
            f"get() on a {model} query matched more than one row; narrow it or use first()",
            model=model,
        )

    def _write_sql(self, action: str, updates: dict[str, Any] | None = None
                   ) -> tuple[str, list[Any]]:
        self._refuse_sliced(action)
        manager = self._manager
        if self._annotations:
            raise InvalidQueryError(f"cannot {action} a grouped {manager.model_name} query "
                                    "(values().annotate()): filter the rows instead")
        compiled, values = manager.query.compile(self._groups)
        params = compiled.params(values)
        where = manager.query.standalone_where(compiled)
        table = manager.dialect.quote(manager.table_name)
        if updates is None:
            return f"DELETE FROM {table}{where}", params
        if not updates:
            raise InvalidQueryError(
                f"update() on a {manager.model_name} query needs at least one field to update",
                model=manager.model_name,
            )
        set_sql, set_params = manager._set_clause(updates)
        return f"UPDATE {table} SET {set_sql}{where}", set_params + params

    def _pages(self, batch_size: int) -> Pages | None:
        """Keyset pagination (``Pages``) when rows are whole models in an order of the
        table's own fields; None when the query pages by offset instead."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidQueryError(f"batch_size must be a positive int, got {batch_size!r}")
        manager = self._manager
        order = self._order or (manager.key,)
        if (self._mode != _MODELS or self._distinct or self._sliced
                or any("__" in item for item in order)):
            return None
        compiled, values = manager.query.compile(self._groups)
        where = manager.query.standalone_where(compiled)
        terms = manager.query.order_terms(order)
        if all(entry.spec.name != manager.key for entry, _ in terms):
            terms.append((manager.query.field(manager.key), False))
        return Pages(manager.sql, where, compiled.params(values), terms, batch_size)


class Query(_QueryState[T]):
    """Rows of one model matching AND-ed filter calls; nothing runs until asked.

    Obtain one from ``Model.objects.where(*q, **criteria)``.
    """

    __slots__ = ()

    # --- building ----------------------------------------------------------------------

    def _clone(self, **changes: Any) -> Query[Any]:
        state: dict[str, Any] = {
            "manager": self._manager, "groups": self._groups, "order": self._order,
            "limit": self._limit, "offset": self._offset, "distinct": self._distinct,
            "fields": self._fields, "mode": self._mode, "annotations": self._annotations,
            "having": self._having,
        }
        state.update(changes)
        return Query(**state)

    def where(self, *q: Q, **criteria: Any) -> Query[T]:
        """Rows also matching ``q`` and ``criteria`` (AND). Alias: :meth:`filter`."""
        self._refuse_sliced("filter")
        for arg in q:
            if not isinstance(arg, Q):
                raise InvalidQueryError(
                    f"positional criteria must be Q objects, got {type(arg).__name__} {arg!r}"
                )
        if not q and not criteria:
            return self
        return self._filtered((q, criteria))

    filter = where

    def exclude(self, *q: Q, **criteria: Any) -> Query[T]:
        """Rows *not* matching ``q`` and ``criteria`` (NULL-aware, like Django)."""
        self._refuse_sliced("filter")
        if not q and not criteria:
            return self
        return self._filtered(((~Q(*q, **criteria),), {}))

    def _filtered(self, group: Group) -> Query[T]:
        if self._annotations and is_having([name for name, _ in self._annotations],
                                           group[0], dict(group[1]),
                                           self._manager.model_name):
            return self._clone(having=(*self._having, group))
        return self._clone(groups=(*self._groups, group))

    def order_by(self, *fields: str) -> Query[T]:
        """Order by ``fields`` (``"-name"`` descends; ``"author__name"`` follows a
        BelongsTo relation). No argument: the default (key) order."""
        self._refuse_sliced("reorder")
        if len(fields) == 1 and not isinstance(fields[0], str) and isinstance(
                fields[0], Sequence):
            fields = tuple(fields[0])
        return self._clone(order=tuple(fields) or None)

    def distinct(self) -> Query[T]:
        """Drop duplicate rows (``SELECT DISTINCT``)."""
        return self._clone(distinct=True)

    def values(self, *fields: str) -> Query[dict[str, Any]]:
        """Iterate dicts of ``fields`` (all fields when none), relation paths allowed.

        Followed by :meth:`annotate`, the fields are what the rows are grouped by."""
        self._refuse_annotated("values")
        return self._clone(mode=_DICTS, fields=tuple(fields) or tuple(self._manager.names))

    def values_list(self, *fields: str, flat: bool = False) -> Query[Any]:
        """Iterate tuples of ``fields`` (or single values with ``flat=True``)."""
        self._refuse_annotated("values_list")
        if flat and len(fields) != 1:
            raise InvalidQueryError(
                f"values_list(flat=True) takes exactly one field, got {len(fields)}"
            )
        return self._clone(mode=_FLAT if flat else _TUPLES,
                           fields=tuple(fields) or tuple(self._manager.names))

    def annotate(self, *args: Aggregate, **aggregates: Aggregate) -> Query[T]:
        """One row per group of the ``values()`` fields, with these aggregates:
        ``values("role").annotate(n=Count("id"))`` iterates ``{"role": ..., "n": ...}``.

        Annotations may be named in a following ``order_by`` and ``where`` (which then
        filters the groups: SQL's ``HAVING``); positional aggregates are named
        ``<field>__<function>`` (``Count("id")`` -> ``id__count``).
        """
        manager = self._manager
        if self._mode not in (_DICTS, _TUPLES):
            raise InvalidQueryError(
                f"annotate() on a {manager.model_name} query needs values(...) or "
                "values_list(...) first: the fields to group by (annotating whole models is "
                "not supported)", model=manager.model_name)
        self._refuse_sliced("annotate")
        pairs = aggregates_of("annotate", args, aggregates)
        refuse_field_clash(manager.query, pairs, [name for name, _ in self._annotations])
        compile_grouped(manager.query, (), (), self._fields or (), pairs)  # validates
        return self._clone(annotations=(*self._annotations, *pairs))

    def _refuse_annotated(self, action: str) -> None:
        if self._annotations:
            raise InvalidQueryError(
                f"{action}() after annotate() on a {self._manager.model_name} query: call "
                f"{action}() first (its fields are the groups)")

    def limit(self, count: int) -> Query[T]:
        """At most ``count`` rows (``query[:count]``)."""
        check_window(count, None)
        return self._slice(0, count)

    def offset(self, count: int) -> Query[T]:
        """Skip ``count`` rows (``query[count:]``)."""
        check_window(None, count)
        return self._slice(count, None)

    def _slice(self, start: int, stop: int | None) -> Query[T]:
        offset = (self._offset or 0) + start
        limit = self._limit
        if stop is not None:
            size = max(0, stop - start)
            limit = size if limit is None else min(size, max(0, limit - start))
        elif limit is not None:
            limit = max(0, limit - start)
        return self._clone(limit=limit, offset=offset or None)

    def __getitem__(self, item: int | slice) -> Any:
        if isinstance(item, slice):
            if item.step not in (None, 1):
                raise InvalidQueryError("query slices take no step")
            start, stop = item.start or 0, item.stop
            for bound in (start, stop):
                if bound is not None and (isinstance(bound, bool) or not isinstance(bound, int)
                                          or bound < 0):
                    raise InvalidQueryError(
                        f"query slices take non-negative ints (no negative indexing), "
                        f"got {bound!r}"
                    )
            return self._slice(start, stop)
        if isinstance(item, bool) or not isinstance(item, int) or item < 0:
            raise InvalidQueryError(
                f"query indexes are non-negative ints (no negative indexing), got {item!r}"
            )
        found = self._slice(item, item + 1).all()
        if not found:
            raise IndexError(f"{self._manager.model_name} query index {item} out of range")
        return found[0]

    # --- sync results ---------------------------------------------------------------

    def _get_query(self, q: tuple[Q, ...], criteria: dict[str, Any]) -> Query[T]:
        query = self.where(*q, **criteria) if (q or criteria) else self
        return query._slice(0, 2)

    def all(self) -> list[T]:
        """Every matching row, as a list."""
        sql, params, convert = self._select()
        return self._manager._read((sql, params, convert))  # type: ignore[no-any-return]

    def __iter__(self) -> Iterator[T]:
        return iter(self.all())

    def __bool__(self) -> bool:
        return self.exists()

    def first(self) -> T | None:
        """The first row (by ``order_by``, else key order), or None."""
        if self._mode == _MODELS and self._limit is None and not self._distinct:
            # the hot path (``where(...).first()`` in a loop): one cached statement
            manager = self._manager
            sql, params, _ = manager.query.select_statement(
                self._groups, self._order or (manager.key,), limit=1, offset=self._offset)
            return manager._read((sql, params, manager._first))  # type: ignore[no-any-return]
        sql, params, convert = self._select(window=self._first_window())
        found = self._manager._read((sql, params, convert))
        return found[0] if found else None

    def last(self) -> T | None:
        """The last row (by ``order_by``, else key order), or None."""
        reverse, window = self._last_args()
        sql, params, convert = self._select(reverse, window)
        found = self._manager._read((sql, params, convert))
        return found[0] if found else None

    def get(self, *q: Q, **criteria: Any) -> T:
        """The one row matching (also ``q`` and ``criteria``).

        Raises:
            RecordNotFoundError: no row matches.
            InvalidQueryError: more than one row matches.
        """
        query = self._get_query(q, criteria)
        sql, params, convert = query._select()
        return self._one(self._manager._read((sql, params, convert)), q, criteria)  # type: ignore[no-any-return]

    def exists(self) -> bool:
        statement = self._exists_sql()
        return statement is not None and bool(self._manager._read((*statement, bool)))

    def count(self) -> int:
        """How many rows match (of a grouped query: how many groups)."""
        return int(self._manager._read((*self._count_sql(), _scalar_int)))

    def aggregate(self, *args: Aggregate, **aggregates: Aggregate) -> dict[str, Any]:
        """Aggregates over every matching row, in one statement: ``{"n": 3, "total": 42}``.

        ``Count`` is 0 and ``Sum``/``Avg``/``Min``/``Max`` are None when no row matches.
        Positional aggregates are named ``<field>__<function>``.

        Raises:
            InvalidQueryError: no aggregate, an argument that is not one, an unknown field,
                or a field the function does not take (``Sum`` of a str), before any SQL.
        """
        return self._manager._read(self._aggregate_read(args, aggregates))  # type: ignore[no-any-return]

    def iterate(self, batch_size: int = 1000) -> Iterator[T]:
        """Stream the rows in batches of ``batch_size`` (memory stays flat): keyset
        pagination when the order is the table's own fields, else by offset."""
        manager = self._manager
        pages = self._pages(batch_size)
        if pages is None:
            start = 0
            while True:
                batch = self._slice(start, start + batch_size).all()
                yield from batch
                if len(batch) < batch_size:
                    return
                start += batch_size
        yield from manager._stream(pages)

    def update(self, **updates: Any) -> int:
        """Update every matching row in one statement; returns how many matched.

        Values may be ``F`` expressions. Nothing is re-read (see ``update_where`` for
        the updated models).
        """
        sql, params = self._write_sql("update", updates)
        return int(self._manager._write((sql, params, _rowcount, False, updates, None)))

    def delete(self) -> int:
        """Delete every matching row in one statement; returns how many."""
        sql, params = self._write_sql("delete")
        return int(self._manager._write((sql, params, _rowcount, False, None, None)))

    # --- async results --------------------------------------------------------------

    async def aall(self) -> list[T]:
        sql, params, convert = self._select()
        return await self._manager._aread((sql, params, convert))  # type: ignore[no-any-return]

    async def __aiter__(self) -> AsyncIterator[T]:
        for item in await self.aall():
            yield item

    async def afirst(self) -> T | None:
        sql, params, convert = self._select(window=self._first_window())
        found = await self._manager._aread((sql, params, convert))
        return found[0] if found else None

    async def alast(self) -> T | None:
        reverse, window = self._last_args()
        sql, params, convert = self._select(reverse, window)
        found = await self._manager._aread((sql, params, convert))
        return found[0] if found else None

    async def aget(self, *q: Q, **criteria: Any) -> T:
        query = self._get_query(q, criteria)
        sql, params, convert = query._select()
        return self._one(await self._manager._aread((sql, params, convert)), q, criteria)  # type: ignore[no-any-return]

    async def aexists(self) -> bool:
        statement = self._exists_sql()
        return statement is not None and bool(await self._manager._aread((*statement, bool)))

    async def acount(self) -> int:
        return int(await self._manager._aread((*self._count_sql(), _scalar_int)))

    async def aaggregate(self, *args: Aggregate, **aggregates: Aggregate) -> dict[str, Any]:
        """Async :meth:`aggregate`."""
        return await self._manager._aread(self._aggregate_read(args, aggregates))  # type: ignore[no-any-return]

    async def aiterate(self, batch_size: int = 1000) -> AsyncIterator[T]:
        manager = self._manager
        pages = self._pages(batch_size)
        if pages is None:
            start = 0
            while True:
                batch = await self._slice(start, start + batch_size).aall()
                for item in batch:
                    yield item
                if len(batch) < batch_size:
                    return
                start += batch_size
        async for model in manager._astream(pages):
            yield model

    async def aupdate(self, **updates: Any) -> int:
        import asyncio

        manager = self._manager
        self._refuse_sliced("update")
        # passwords are hashed off the event loop (the plan then finds them hashed)
        plain = {name: updates[name] for name in manager._plain_passwords(updates)}
        if plain:
            await asyncio.to_thread(manager._hash_passwords, plain)
        sql, params = self._write_sql("update", {**updates, **plain})
        return int(await manager._awrite((sql, params, _rowcount, False, updates, None)))

    async def adelete(self) -> int:
        sql, params = self._write_sql("delete")
        return int(await self._manager._awrite((sql, params, _rowcount, False, None, None)))

    def __repr__(self) -> str:
        parts = [f"<Query {self._manager.model_name}"]
        if self._groups:
            parts.append(f" filters={len(self._groups)}")
        if self._order:
            parts.append(f" order_by={list(self._order)}")
        if self._sliced:
            parts.append(f" offset={self._offset or 0} limit={self._limit}")
        if self._mode != _MODELS:
            parts.append(f" {self._mode}={list(self._fields or ())}")
        if self._annotations:
            parts.append(f" annotate={dict(self._annotations)}")
        return "".join(parts) + ">"


def _rowcount(cursor: Any) -> int:
    return int(cursor.rowcount)


def _scalar_int(rows: Sequence[Any]) -> int:
    return int(rows[0][0])
