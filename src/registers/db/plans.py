"""The pure decisions of every manager operation, shared by its sync and async twin.

Each public operation is three steps: a *plan* (validate the input, choose and build the
statement or flow, compute the parameters: everything that needs no database), one line of
I/O (sync: :mod:`registers.db.sync_ops`; async: :mod:`registers.db.async_ops`), and a *finish*
(rows -> models, keys onto instances). :class:`OperationPlans` holds the plans and the
finishes, the way httpx's ``BaseClient`` serves both ``Client`` and ``AsyncClient``; a new
operation written here gets its async twin by adding the one-line I/O on each side.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from registers.db import flows
from registers.db.dialects import classify_integrity_error
from registers.db.exceptions import ImmutableFieldError, InvalidQueryError, RecordNotFoundError
from registers.db.fields import utc_now
from registers.db.flows import Cursor, Read, Write
from registers.db.query import Expression, Q
from registers.db.queryset import Query
from registers.db.statements import Pages, Statement
from registers.db.table import PERSISTED_KEY, ModelTable, field_error

__all__ = ["OperationPlans"]

M = TypeVar("M", bound=BaseModel)
_MISSING = object()


class OperationPlans(ModelTable[M]):
    """Plans and finishes of every manager operation (no I/O)."""

    # --- reads ----------------------------------------------------------------------

    def _plan_get(self, args: tuple[Any, ...], criteria: Mapping[str, Any]) -> Read[M | None]:
        """``get(key)`` or ``get(*q, **criteria)``: the first row by key order, or None."""
        if len(args) == 1 and not criteria and not isinstance(args[0], Q):  # get(key)
            return self.sql.get, [self._coerce_key(args[0])], self._first
        if args and all(isinstance(a, Q) for a in args):
            if not criteria and not any(args):  # Q() holds no condition: as get() alone
                raise InvalidQueryError(
                    f"get() on {self.model_name} needs a key or criteria (an empty Q() "
                    "has none)", model=self.model_name)
            sql, params = self.sql.select_where(criteria, self.key, 1, None, q=args)
            return sql, params, self._first
        if any(isinstance(a, Q) for a in args):
            raise InvalidQueryError(
                f"get() on {self.model_name} takes one key or Q objects, not both",
                model=self.model_name,
            )
        if args:
            if len(args) > 1 or criteria:
                raise InvalidQueryError(
                    f"get() on {self.model_name} takes one key or keyword criteria, not both",
                    model=self.model_name,
                )
            return self.sql.get, [self._coerce_key(args[0])], self._first
        if not criteria:
            raise InvalidQueryError(
                f"get() on {self.model_name} needs a key or criteria", model=self.model_name
            )
        sql, params = self.sql.select_where(criteria, self.key, 1, None)
        return sql, params, self._first

    def _plan_require(self, args: tuple[Any, ...], criteria: Mapping[str, Any]) -> Read[M]:
        sql, params, _ = self._plan_get(args, criteria)
        return sql, params, functools.partial(self._required, args, criteria)

    def _required(self, args: tuple[Any, ...], criteria: Mapping[str, Any],
                  rows: Sequence[Any]) -> M:
        found = self._first(rows)
        if found is None:
            raise self._not_found(args, criteria)
        return found

    def _plan_filter(self, limit: int | None, offset: int | None, order_by: Any,
                     criteria: Mapping[str, Any], q: Sequence[Q] = ()) -> Read[list[M]]:
        sql, params = self.sql.select_where(criteria, order_by, limit, offset, q=q)
        return sql, params, self._to_models

    def _plan_first(self, order_by: Any, criteria: Mapping[str, Any],
                    reverse: bool = False, q: Sequence[Q] = ()) -> Read[M | None]:
        sql, params = self.sql.select_where(criteria, order_by or self.key, 1, None, reverse,
                                            q=q)
        return sql, params, self._first

    def _plan_exists(self, criteria: Mapping[str, Any], q: Sequence[Q] = ()) -> Read[bool]:
        compiled, values = self.query.compile(((q, criteria),))
        return self.query.exists(compiled), compiled.params(values), bool

    def _plan_count(self, criteria: Mapping[str, Any], q: Sequence[Q] = ()) -> Read[int]:
        compiled, values = self.query.compile(((q, criteria),))
        return self.query.count(compiled), compiled.params(values), _scalar_int

    def _plan_exclude(self, q: tuple[Q, ...], criteria: Mapping[str, Any]) -> Read[list[M]]:
        """``exclude(*q, **criteria)``: the rows *not* matching (NULL-aware)."""
        return self._plan_filter(None, None, None, {}, (~Q(*q, **criteria),))

    def _where(self, q: tuple[Q, ...], criteria: dict[str, Any]) -> Query[M]:
        """``where(*q, **criteria)``: a lazy :class:`~registers.db.queryset.Query`."""
        for arg in q:
            if not isinstance(arg, Q):
                raise InvalidQueryError(
                    f"positional criteria must be Q objects, got {type(arg).__name__} {arg!r}"
                )
        manager: Any = self  # the DatabaseRegistry these plans belong to
        return Query(manager, ((q, criteria),) if q or criteria else ())

    def _plan_iterate(self, batch_size: int, order_by: Any,
                      criteria: Mapping[str, Any], q: Sequence[Q] = ()) -> Pages:
        """Pages of ``batch_size`` rows in ``order_by`` order (key order by default)."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidQueryError(f"batch_size must be a positive int, got {batch_size!r}")
        return self.sql.pages(criteria, order_by, batch_size, q)

    def _plan_refresh(self, instance: M) -> Read[M]:
        key = self._persisted(instance)
        if key is None:
            raise RecordNotFoundError(
                f"{self.model_name} instance has no {self.key}: it was never saved",
                model=self.model_name, table=self.table_name,
            )
        return self.sql.get, [key], functools.partial(self._refreshed, instance)

    def _refreshed(self, instance: BaseModel, rows: Sequence[Any]) -> M:
        if not rows:
            raise RecordNotFoundError(
                f"no {self.model_name} with {self.key}={instance.__dict__.get(self.key)!r} "
                f"in table {self.table_name!r} (deleted?)",
                model=self.model_name, table=self.table_name,
            )
        return self._to_model(rows[0])

    # --- single-row writes ----------------------------------------------------------

    def _new(self, data: Mapping[str, Any]) -> M:
        """The validated instance ``create(**data)`` inserts."""
        if self.managed_key and data.get(self.key) is not None:
            self._check_managed_key(data)  # raises
        return self._build(data)

    def _plan_insert(self, instance: M) -> Write[M]:
        values = instance.__dict__
        if self._stamps:
            self.config.stamp(values, instance.model_fields_set)
        if self._hashed:
            self._hash_passwords(values)
        with_key = not (self.managed_key and values[self.key] is None)
        names = self.names if with_key else self._insert_names
        sql = self.sql.insert_full if with_key else self.sql.insert_nokey
        finish = functools.partial(self._inserted, instance, with_key)
        retry_if = None if with_key else self._sequence_retry
        return sql, self._params(values, names), finish, False, values, retry_if

    def _inserted(self, instance: M, with_key: bool, cursor: Cursor) -> M:
        values = instance.__dict__
        if not with_key:
            values[self.key] = cursor.fetchall()[0][0] if self.dialect.insert_returning else \
                cursor.lastrowid
        values[PERSISTED_KEY] = self._stored_key(values[self.key])
        return instance

    def _upserted_instance(self, instance: M | None, data: Mapping[str, Any]) -> M:
        """The validated instance ``upsert(instance, **data)`` writes."""
        if instance is None:
            return self._build(data)
        if not isinstance(instance, self.model):
            raise InvalidQueryError(
                f"upsert() takes a {self.model_name} instance or field values, "
                f"got {type(instance).__name__}",
                model=self.model_name,
            )
        return self._revalidated(instance, data)

    def _conflict_target(self, values: Mapping[str, Any]) -> tuple[str, ...] | None:
        """The key when it has a value, else the first unique field (in field order),
        else the first composite unique set whose values are all given."""
        if values[self.key] is not None:
            return self._key_target
        for group in self._conflict_sets:  # flat loops: this is on upsert's hot path
            for name in group:
                if values.get(name) is None:
                    break
            else:
                return group
        return None

    def _plan_upsert(self, instance: M) -> Write[M]:
        values = instance.__dict__
        if self._stamps:
            self.config.stamp(values, instance.model_fields_set)
        if self._hashed:
            self._hash_passwords(values)
        target = self._conflict_target(values)
        if target is None:
            return self._plan_insert(instance)
        with_key = values[self.key] is not None
        names = self.names if with_key else self._insert_names
        params = self._params(values, names)
        guarded = self._needs_guarded_upsert(target)
        sync = with_key and self.managed_key and self.database.family == "postgresql"
        if not (guarded or sync):  # one statement
            sql = self.sql.upsert(with_key, target, returning=not with_key)
            finish = functools.partial(self._upserted_by, instance, with_key)
            return sql, params, finish, False, values, None
        if sync:  # PostgreSQL with an explicit key: did it pass the sequence?
            statement = Statement(self.sql.upsert_telling_insert(target),
                                  (*params, *self.sql.sequence_args))
            flow = functools.partial(flows.upsert_passing_sequence, self.sql, statement)
            return flow, None, functools.partial(self._upserted_by, instance, True), False, \
                values, None
        flow = functools.partial(flows.guarded_upsert, self.sql, values, with_key, target,
                                 names, params)
        return flow, None, functools.partial(self._upserted, instance), True, values, \
            self._lost_insert_race(target)

    def _upserted_by(self, instance: M, with_key: bool, cursor: Cursor) -> M:
        if with_key:
            instance.__dict__[PERSISTED_KEY] = self._stored_key(instance.__dict__[self.key])
            return instance
        return self._upserted(instance, flows.returned_key(self.sql, cursor))

    def _upserted(self, instance: M, key: Any) -> M:
        values = instance.__dict__
        values[self.key] = self._validate_key(key) if key is not None else key
        values[PERSISTED_KEY] = self._stored_key(values[self.key])
        return instance

    def _needs_guarded_upsert(self, target: tuple[str, ...]) -> bool:
        """MySQL's ON DUPLICATE KEY UPDATE fires on *any* unique index, so with a second
        unique constraint it would update the row owning that value: lock and decide
        instead. (A generated key cannot collide when no key is given.)"""
        if self.database.family != "mysql":
            return False
        others = [u for u in [(self.key,), *self.config.unique_sets] if u != target]
        if target != (self.key,) and self.managed_key:
            others.remove((self.key,))
        return bool(others)

    def _lost_insert_race(self, target: tuple[str, ...]) -> Callable[[BaseException], bool]:
        """A concurrent upsert inserted the same ``target`` first: retrying updates it."""
        names = self.config.unique_names

        def check(exc: BaseException) -> bool:
            if not isinstance(exc, self.errors.integrity_error):
                return False
            violation = classify_integrity_error(self.database.family, exc, self.table_name)
            name = (violation.constraint or "").rsplit(".", 1)[-1]
            return name == "PRIMARY" if target == (self.key,) else names.get(name) == target
        return check

    def _saving(self, instance: M) -> M:
        """The fresh validated copy ``instance.save()`` writes (its key must not have
        changed since it was last saved)."""
        values = instance.__dict__
        persisted = values.get(PERSISTED_KEY, _MISSING)
        current = values.get(self.key)
        if persisted is not _MISSING and persisted != self._stored_key(current):
            raise ImmutableFieldError(
                f"{self.model_name}.{self.key} is immutable once saved "
                f"(stored {persisted!r}, now {current!r})",
                model=self.model_name, table=self.table_name, field=self.key,
            )
        return self._revalidated(instance)

    def _plan_save(self, instance: M, fresh: M) -> Write[M]:
        """``instance.save()``: insert a new record, upsert a known one, by key."""
        new = PERSISTED_KEY not in instance.__dict__ and self.managed_key and \
            instance.__dict__.get(self.key) is None
        work, params, finish, atomic, data, retry_if = (
            self._plan_insert(fresh) if new else self._plan_upsert(fresh))
        saved = functools.partial(self._saved, instance, finish)
        return work, params, saved, atomic, data, retry_if

    def _saved(self, instance: M, finish: Callable[[Any], M], outcome: Any) -> M:
        fresh = finish(outcome)
        values = instance.__dict__
        for name in self.names:
            values[name] = fresh.__dict__[name]
        values[PERSISTED_KEY] = fresh.__dict__[PERSISTED_KEY]
        return instance

    def _plan_delete(self, key: Any) -> Write[bool]:
        return self.sql.delete, [self._coerce_key(key)], _deleted, False, None, None

    def _plan_delete_instance(self, instance: BaseModel) -> Write[bool] | None:
        key = self._persisted(instance)
        if key is None:
            return None
        return self.sql.delete, [key], functools.partial(_forget_key, instance), False, None, None

    def _plan_delete_where(self, criteria: Mapping[str, Any],
                           q: Sequence[Q] = ()) -> Write[int]:
        if not criteria and not any(q):
            raise InvalidQueryError(
                f"delete_where() on {self.model_name} needs criteria "
                "(use truncate() to delete every row)",
                model=self.model_name,
            )
        sql, params = self.sql.delete_where(criteria, q)
        return sql, params, _rowcount, False, None, None

    # --- update_where ---------------------------------------------------------------

    def _plan_update_where(self, criteria: Mapping[str, Any] | Q,
                           updates: Mapping[str, Any]) -> Write[list[M]]:
        """``UPDATE ... SET ... WHERE ...`` and the re-read of the updated rows
        (``criteria`` a dict or a ``Q``)."""
        if not isinstance(criteria, (Mapping, Q)) or not criteria:
            raise InvalidQueryError(
                f"update_where() on {self.model_name} needs non-empty criteria "
                "(refusing to update every row)",
                model=self.model_name,
            )
        if not updates:
            raise InvalidQueryError(
                f"update_where() on {self.model_name} needs at least one field to update",
                model=self.model_name,
            )
        if self._stamps and self.config.auto_now_columns:
            now = utc_now()  # auto_now: the time of every write, update_where's too
            updates = {**updates, **dict.fromkeys(self.config.auto_now_columns, now)}
        computed = [n for n, v in updates.items() if isinstance(v, Expression)]
        # MySQL's SET sees the values assigned before it: expressions read the old row
        # through a self-join there, so every expression sees the row's old values.
        joined = bool(computed) and self.database.family == "mysql"
        set_sql, set_params = self._set_clause(updates, joined)
        where, where_params, reads = self.query.where_reading(criteria)
        if self.dialect.update_returning:
            sql = self.sql.update_returning(set_sql, where)
            if not computed:
                return sql, set_params + where_params, self._updated_rows, False, updates, None
            # A computed value is checked before the transaction commits: one that does
            # not fit its field (an overflow, a constraint) fails and changes nothing.
            checked = functools.partial(flows.update_checked, sql, set_params + where_params,
                                        functools.partial(self._checked_rows, computed))
            return checked, None, self._sorted_models, True, updates, None
        if not computed and reads is not None and reads.isdisjoint(updates):
            # the rows updated still match the WHERE: re-read them by it (4 round trips,
            # where locking their keys first takes 5)
            flow = functools.partial(flows.update_then_reselect, self.sql, where, where_params,
                                     set_sql, set_params)
            return flow, None, self._sorted_models, True, updates, None
        check = functools.partial(self._checked_rows, computed) if computed else None
        flow = functools.partial(flows.update_then_read, self.sql, where, where_params, set_sql,
                                 set_params, joined, check)
        return flow, None, self._sorted_models, True, updates, None

    def _checked_rows(self, computed: Sequence[str], rows: Sequence[Any],
                      operation: str = "update_where()") -> Sequence[Any]:
        """``rows`` as updated, refused (InvalidQueryError) when a computed field's new
        value does not fit the field: SQLite turns an overflowing integer into a REAL."""
        ints = [self.names.index(n) for n in computed
                if self.query.field(n).spec.kind == "int"]
        for row in rows:
            for index in ints:
                if isinstance(row[index], float):
                    raise self._unfit(self.names[index], row[index], "overflows a 64-bit "
                                      "integer", operation)
            try:
                self._to_model(row)
            except ValidationError as exc:
                error = exc.errors()[0]
                name = str(error["loc"][0]) if error["loc"] else computed[0]
                raise self._unfit(name, row[self.names.index(name)]
                                  if name in self.names else None, error["msg"],
                                  operation) from None
        return rows

    def _unfit(self, name: str, value: Any, why: str,
               operation: str = "update_where()") -> InvalidQueryError:
        shown = "" if name in self._hashed else f" ({value!r})"
        return InvalidQueryError(
            f"{operation} on {self.model_name}: the new value of {name}{shown} does not "
            f"fit the field: {why}; nothing was changed",
            model=self.model_name, table=self.table_name, field=name,
        )

    def _updated_rows(self, cursor: Cursor) -> list[M]:
        return self._sorted_models(cursor.fetchall())

    def _sorted_models(self, rows: Sequence[Any]) -> list[M]:
        models = self._to_models(rows)
        models.sort(key=lambda m: m.__dict__[PERSISTED_KEY])
        return models

    def _set_clause(self, updates: Mapping[str, Any], joined: bool = False,
                    source: str = "") -> tuple[str, list[Any]]:
        """``SET`` terms for ``updates`` (validated); ``source`` qualifies the columns an
        expression reads (``joined``: MySQL's self-joined old row)."""
        parts: list[str] = []
        params: list[Any] = []
        target, source = (f"{flows.NEW_ROW}.", f"{flows.OLD_ROW}.") if joined else ("", source)
        for name, value in updates.items():
            entry = self.query.field(name)
            if name == self.key:
                raise ImmutableFieldError(
                    f"{self.model_name}.{name} is the primary key and cannot be updated",
                    model=self.model_name, field=name,
                )
            if isinstance(value, Expression):
                for ref in value.fields():
                    self.query.field(ref)
                self._check_expression_fits(name, entry.spec.kind, value)
                sql = self.query.expression(value, params, source=source)
                parts.append(f"{target}{entry.quoted} = {sql}")
                continue
            if value is None and not entry.spec.nullable:
                raise InvalidQueryError(
                    f"{self.model_name}.{name} cannot be None", model=self.model_name, field=name
                )
            if entry.spec.hashed:
                value = self._hashed_value(value)
            value = self._validate_field(entry, name, value)
            params.append(value if entry.to_db is None or value is None else entry.to_db(value))
            parts.append(f"{target}{entry.quoted} = {self.dialect.placeholder}")
        return ", ".join(parts), params

    def _check_expression_fits(self, name: str, kind: str, value: Expression) -> None:
        """An ``F`` expression's kind must fit its target: an int field takes int
        arithmetic only, a float field int or float, a Decimal field int or Decimal."""
        computed = self.query.expression_kind(value)
        allowed = {"int": ("int",), "float": ("int", "float"),
                   "decimal": ("int", "decimal")}.get(kind)
        if allowed is None:
            raise InvalidQueryError(
                f"{self.model_name}.{name} is a {kind} field: F expressions can only set "
                "int, float and Decimal fields", model=self.model_name, field=name)
        if computed not in allowed:
            raise InvalidQueryError(
                f"{self.model_name}.{name} is a {kind} field but the F expression computes "
                f"a {computed} (no backend would store it the same way)",
                model=self.model_name, field=name)

    def _validate_field(self, entry: Any, name: str, value: Any) -> Any:
        if value is None:
            return None
        try:
            return entry.value_adapter.validate_python(value)
        except ValidationError as exc:
            error = field_error(self.model_name, name, exc, entry.spec.hashed)
        raise error  # outside the handler: the original input is not chained

    # --- bulk writes ----------------------------------------------------------------

    def _bulk_models(self, items: Iterable[M | Mapping[str, Any]]) -> list[M]:
        """Every item validated into a fresh instance (before anything is written)."""
        return [self._coerce_item(item) for item in items]

    def _plan_bulk_create(self, models: list[M]) -> Write[list[M]] | None:
        if not models:
            return None
        if self.managed_key:
            for model in models:
                self._check_managed_key(model)
        if self._stamps:
            for model in models:
                self.config.stamp(model.__dict__, model.model_fields_set)
        if self._hashed:
            for model in models:
                self._hash_passwords(model.__dict__)
        generate = self.managed_key
        names = self._insert_names if generate else self.names
        rows = [self._params(m.__dict__, names) for m in models]
        keys = None if generate else [m.__dict__[self.key] for m in models]
        flow = functools.partial(flows.bulk_create, self.sql, names, rows, keys)
        retry_if = self._sequence_retry if generate else None
        return flow, None, functools.partial(self._set_keys, models), True, None, retry_if

    def _plan_bulk_upsert(self, models: list[M]) -> Write[list[M]] | None:
        if not models:
            return None
        grouped: dict[tuple[Any, ...], flows.UpsertGroup] = {}
        auto_now = self.config.auto_now_columns
        for index, model in enumerate(models):
            values = model.__dict__
            if self._stamps:
                self.config.stamp(values, model.model_fields_set)
            if self._hashed:
                self._hash_passwords(values)
            with_key = values[self.key] is not None
            target = self._conflict_target(values)
            # the fields an item did not give keep their stored value
            kept = None if target is None else self.sql.kept(
                with_key, target, model.model_fields_set, auto_now)
            group = grouped.get((with_key, target, kept))
            if group is None:
                group = grouped[with_key, target, kept] = flows.UpsertGroup(
                    with_key, target, [], [], [], kept)
            group.indexes.append(index)
            group.rows.append(self._params(values, self.names if with_key else
                                           self._insert_names))
            group.values.append(values)
        sync = self.managed_key and self.database.family == "postgresql" and any(
            with_key for with_key, _, _ in grouped)
        flow = functools.partial(flows.bulk_upsert, self.sql, list(grouped.values()),
                                 len(models), self._needs_guarded_upsert, sync)
        return flow, None, functools.partial(self._set_keys, models), True, None, None

    def _set_keys(self, models: list[M], keys: Sequence[Any]) -> list[M]:
        for model, key in zip(models, keys):
            model.__dict__[self.key] = key
            model.__dict__[PERSISTED_KEY] = self._stored_key(key)
        return models


def _scalar_int(rows: Sequence[Any]) -> int:
    return int(rows[0][0])


def _rowcount(cursor: Cursor) -> int:
    return int(cursor.rowcount)


def _deleted(cursor: Cursor) -> bool:
    return bool(cursor.rowcount)


def _forget_key(instance: BaseModel, cursor: Cursor) -> bool:
    instance.__dict__.pop(PERSISTED_KEY, None)
    return bool(cursor.rowcount)
