"""Upserts that change only what the caller gave, and ``on_conflict`` (issue 16).

``upsert(id=1, name="x")`` updates ``name`` of an existing row and leaves every other
column as stored (the fields the caller did not give take their model defaults only when
the row is inserted); ``upsert(instance)`` gives the fields in ``instance.model_fields_set``.
``upsert(..., on_conflict={"qty": F("qty") + 2})`` sets those values on an existing row
instead (an ``F`` expression reads the row's old values): an atomic insert-or-increment.

A caller who gives every field gets the one-statement upsert of :mod:`registers.db.plans`
unchanged; otherwise the stored row is returned: ``RETURNING`` it (SQLite, PostgreSQL), or
read it back inside the same transaction (MySQL/MariaDB, which has no ``RETURNING``).
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel

from registers.db import write_flows
from registers.db.criteria import Expression
from registers.db.exceptions import InvalidQueryError
from registers.db.flows import Cursor, Flow, Write
from registers.db.plans import OperationPlans
from registers.db.statements import Statement

__all__ = ["UpsertPlans"]

M = TypeVar("M", bound=BaseModel)


class UpsertPlans(OperationPlans[M]):
    """The partial and computed upserts, single and bulk (no I/O)."""

    def _given(self, instance: M | None, data: Mapping[str, Any]) -> set[str]:
        """The fields an ``upsert(instance, **data)`` caller gave."""
        given = set(data)
        if isinstance(instance, BaseModel):
            given.update(instance.model_fields_set)
        return given

    def _plan_upsert(self, instance: M, given: Collection[str] | None = None,
                     on_conflict: Mapping[str, Any] | None = None) -> Write[M]:
        """``upsert``: the one-statement upsert when every field is given (and for
        ``save()``: ``given`` None), else the partial one returning the stored row."""
        if given is None and on_conflict is None:
            return super()._plan_upsert(instance)
        if on_conflict is None and given is not None and not self.sql.keep \
                and self._every_field.issubset(given):
            return super()._plan_upsert(instance)  # the hot path: kept() would say None
        values = instance.__dict__
        target = self._conflict_target(values)
        assign, assign_params, computed = self._on_conflict(on_conflict, target)
        if target is None:  # nothing to conflict on: a plain insert
            return super()._plan_upsert(instance)
        with_key = values[self.key] is not None
        kept = self.sql.kept(with_key, target, given if given is not None else self.names,
                             self.config.auto_now_columns, also=on_conflict or ())
        if kept is None and not assign and not self.sql.keep:
            return super()._plan_upsert(instance)  # every field given: the returned
            # instance is the row as stored (auto_now_add would keep an older time)
        names = self.names if with_key else self._insert_names
        if kept is None:  # every field given (on_conflict or auto_now_add ask for the row)
            kept = tuple(n for n in names if n in target or n == self.key or n in self.sql.keep)
        if self._stamps:
            self.config.stamp(values, instance.model_fields_set)
        if self._hashed:
            self._hash_passwords(values)
        params = list(self._params(values, names))
        if self.database.family == "mysql":
            return self._plan_mysql_upsert(values, with_key, target, names, params, kept,
                                           on_conflict or {}, assign, assign_params, computed)
        sync = with_key and self.managed_key and self.database.family == "postgresql"
        returning = f"{self.sql.passed_sequence}, {self.sql.select_list}" if sync else \
            self.sql.select_list
        sql = self.sql.upsert(with_key, target, returning=returning, keep=kept, assign=assign)
        params.extend(assign_params)
        if sync:
            params.extend(self.sql.sequence_args)
        if not (sync or computed):  # one statement
            return sql, params, self._row_model, False, values, None
        check = functools.partial(self._checked_rows, computed, operation="upsert()") \
            if computed else None
        flow = functools.partial(write_flows.upsert_returning, Statement(sql, params),
                                 self.sql if sync else None, check)
        return flow, None, self._to_model, bool(computed), values, None

    def _plan_mysql_upsert(self, values: Mapping[str, Any], with_key: bool,
                           target: tuple[str, ...], names: Sequence[str], params: list[Any],
                           kept: tuple[str, ...], on_conflict: Mapping[str, Any],
                           assign: tuple[str, ...], assign_params: list[Any],
                           computed: list[str]) -> Write[M]:
        """MySQL/MariaDB: ``ON DUPLICATE KEY UPDATE`` then the row read back, in one
        transaction; or lock-and-decide where that statement would be wrong (a second
        unique constraint, or ``on_conflict`` expressions reading fields it set before)."""
        by_name = dict(zip(names, params))
        target_params = [by_name[c] for c in target]
        if not (self._needs_guarded_upsert(target) or _reads_assigned(on_conflict)):
            sql = self.sql.upsert(with_key, target, returning=True, keep=kept, assign=assign)
            flow = functools.partial(
                write_flows.upsert_read_back, self.sql, Statement(sql, [*params, *assign_params]),
                values[self.key] if with_key else None, target, target_params)
            return flow, None, self._to_model, True, values, None
        updates = {n: values[n] for n in names if n not in kept}
        updates.update(on_conflict)
        set_sql, set_params = self._set_clause(updates, joined=bool(computed))
        insert = Statement(self.sql.insert_full if with_key else self.sql.insert_nokey, params)
        flow = functools.partial(write_flows.guarded_upsert_row, self.sql, target,
                                 target_params, insert, with_key, values[self.key], set_sql,
                                 set_params, bool(computed))
        return flow, None, self._to_model, True, values, self._lost_insert_race(target)

    def _on_conflict(self, on_conflict: Mapping[str, Any] | None,
                     target: tuple[str, ...] | None
                     ) -> tuple[tuple[str, ...], list[Any], list[str]]:
        """The ``SET`` terms of ``on_conflict`` (validated), their parameters, and the
        fields it computes with ``F`` expressions."""
        if on_conflict is None:
            return (), [], []
        if not isinstance(on_conflict, Mapping):
            raise InvalidQueryError(
                f"upsert() on {self.model_name}: on_conflict must be a dict of field names "
                f"to values or F expressions, got {type(on_conflict).__name__}",
                model=self.model_name)
        for name in on_conflict:
            self._check_on_conflict_name(name, target)
        if not on_conflict:
            return (), [], []
        set_sql, params = self._set_clause(on_conflict, source=f"{self.sql.table}.")
        computed = [n for n, v in on_conflict.items() if isinstance(v, Expression)]
        return (set_sql,), params, computed

    def _check_on_conflict_name(self, name: Any, target: tuple[str, ...] | None) -> None:
        where = f"upsert() on {self.model_name}: on_conflict"
        if name == self.key:
            raise InvalidQueryError(f"{where} cannot set {name!r}: it is the key",
                                    model=self.model_name, field=name)
        if name not in self._field_set:
            raise InvalidQueryError(
                f"{where} names unknown field {name!r} (fields: {', '.join(self.names)})",
                model=self.model_name, field=str(name))
        if target is not None and name in target:
            raise InvalidQueryError(
                f"{where} cannot set {name!r}: the upsert matches rows on it",
                model=self.model_name, field=name)

    def _row_model(self, cursor: Cursor) -> M:
        return self._to_model(cursor.fetchall()[0])

    # --- bulk -----------------------------------------------------------------------

    def _plan_bulk_upsert(self, models: list[M]) -> Write[list[M]] | None:
        """``bulk_upsert``: items that gave only some fields are read back after the
        batched upserts (same transaction), so each comes back as stored."""
        write = super()._plan_bulk_upsert(models)
        if write is None:
            return None
        auto_now = self.config.auto_now_columns
        partial = [i for i, m in enumerate(models) if self._partial_item(m, auto_now)]
        if not partial:
            return write
        work, params, finish, atomic, data, retry_if = write
        assert not isinstance(work, str)
        flow = functools.partial(_read_back_items, self.sql, work, partial)
        done = functools.partial(self._bulk_upserted, models, finish, partial)
        return flow, params, done, atomic, data, retry_if

    def _partial_item(self, model: M, auto_now: Sequence[str]) -> bool:
        values = model.__dict__
        target = self._conflict_target(values)
        return target is not None and self.sql.kept(
            values[self.key] is not None, target, model.model_fields_set, auto_now) is not None

    def _bulk_upserted(self, models: list[M], finish: Any, partial: list[int],
                       outcome: tuple[list[Any], dict[Any, Any]]) -> list[M]:
        keys, rows = outcome
        done: list[M] = finish(keys)
        for index in partial:
            done[index] = self._to_model(rows[self._stored_key(keys[index])])
        return done


def _reads_assigned(on_conflict: Mapping[str, Any]) -> bool:
    """Whether an ``on_conflict`` expression reads a field set before it in the clause
    (MySQL's ``SET`` would then see the new value, not the old one)."""
    seen: set[str] = set()
    for name, value in on_conflict.items():
        if isinstance(value, Expression) and any(f in seen for f in value.fields()):
            return True
        seen.add(name)
    return False


def _read_back_items(st: Any, upsert: Any, partial: list[int]
                     ) -> Flow[tuple[list[Any], dict[Any, Any]]]:
    """``bulk_upsert``'s flow, then the stored rows of the ``partial`` items by key."""
    keys: list[Any] = yield from upsert()
    wanted = list(dict.fromkeys(keys[i] for i in partial))
    entry = st.query.field(st.key)
    stored = [k if entry.to_db is None else entry.to_db(k) for k in wanted]
    rows: dict[Any, Any] = {}
    index = st.names.index(st.key)
    for chunk in write_flows.key_chunks(stored):
        for row in (yield Statement(st.select + st.key_in(len(chunk)), list(chunk))).fetchall():
            rows[row[index]] = row
    return keys, rows

