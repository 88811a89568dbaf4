"""The write helpers people reach for (issue 16): ``get_or_create``, ``update_or_create``,
``bulk_update``, ``in_bulk`` and ``raw``.

Each is a plan here (no I/O) driven by the sync and the async manager alike; the
multi-statement ones are flows of :mod:`registers.db.write_flows`.

Races. ``get_or_create`` and ``update_or_create`` look the row up first and insert only
when it is missing. When the plain lookups cover the key or a unique field set, a
concurrent caller that inserted the same row in between makes the insert fail on that
constraint: the whole operation is then retried (``retry_if``), and its lookup finds the
row. So exactly one caller creates it, and nobody sees an error. Without such a
constraint two callers may both create a row (nothing in the database says they must
not), as in Django.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar, cast

from pydantic import BaseModel, ValidationError
from pydantic_core import SchemaValidator

from registers.db import write_flows
from registers.db.criteria import Expression
from registers.db.dialects import classify_integrity_error
from registers.db.exceptions import InvalidQueryError
from registers.db.fields import utc_now
from registers.db.flows import Cursor, Read, RetryIf, Write
from registers.db.statements import Described, Statement
from registers.db.table import PERSISTED_KEY, field_error
from registers.db.upserts import UpsertPlans

__all__ = ["WritePlans"]

M = TypeVar("M", bound=BaseModel)


class WritePlans(UpsertPlans[M]):
    """Plans of the write helpers (no I/O)."""

    # --- get_or_create / update_or_create -------------------------------------------

    def _plan_get_or_create(self, defaults: Mapping[str, Any] | None,
                            lookup: Mapping[str, Any]) -> Write[tuple[M, bool]]:
        """``get_or_create``: the first row (by key) matching ``lookup``, else a new one
        made of the plain ``field=value`` lookups and ``defaults``."""
        data = self._creation_data("get_or_create", defaults, lookup)
        sql, params = self.sql.select_where(lookup, self.key, 1, None)
        flow = functools.partial(write_flows.get_or_create, Statement(sql, params),
                                 functools.partial(self._insert_new, data))
        return flow, None, self._got, False, data, self._lost_race(lookup, data)

    def _plan_update_or_create(self, defaults: Mapping[str, Any] | None,
                               lookup: Mapping[str, Any]) -> Write[tuple[M, bool]]:
        """``update_or_create``: lock the first row matching ``lookup`` and set
        ``defaults`` on it, else create it, in one transaction."""
        data = self._creation_data("update_or_create", defaults, lookup)
        updates = dict(defaults or {})
        if updates and self._stamps and self.config.auto_now_columns:
            updates.update(dict.fromkeys(self.config.auto_now_columns, utc_now()))
        computed = [n for n, v in updates.items() if isinstance(v, Expression)]
        joined = bool(computed) and self.database.family == "mysql"
        set_sql, set_params = self._set_clause(updates, joined) if updates else ("", [])
        where, where_params = self.query.where(dict(lookup))
        lock = f"SELECT {self.sql.quoted_key} FROM {self.sql.table}{where} ORDER BY " \
               f"{self.sql.quoted_key} LIMIT 1"
        if not self.database.is_sqlite:  # SQLite: the write transaction is exclusive
            lock += " FOR UPDATE"
        check = functools.partial(self._checked_rows, computed,
                                  operation="update_or_create()") if computed else None
        flow = functools.partial(write_flows.update_or_create, self.sql,
                                 Statement(lock, where_params),
                                 functools.partial(self._insert_new, data), set_sql,
                                 set_params, joined, check)
        return flow, None, self._got, True, data, self._lost_race(lookup, data)

    def _creation_data(self, method: str, defaults: Mapping[str, Any] | None,
                       lookup: Mapping[str, Any]) -> dict[str, Any]:
        """What a created row is made of: the plain lookups (``field__lookup`` ones
        select only, as in Django) and ``defaults`` (callables are called)."""
        if not lookup:
            raise InvalidQueryError(
                f"{method}() on {self.model_name} needs lookup criteria (field=value)",
                model=self.model_name)
        if defaults is None:
            defaults = {}
        if not isinstance(defaults, Mapping):
            raise InvalidQueryError(
                f"{method}() on {self.model_name}: defaults must be a dict of field values, "
                f"got {type(defaults).__name__}", model=self.model_name)
        unknown = [n for n in defaults if n not in self._field_set]
        if unknown:
            raise InvalidQueryError(
                f"{method}() on {self.model_name}: defaults names unknown field "
                f"{unknown[0]!r} (fields: {', '.join(self.names)})",
                model=self.model_name, field=str(unknown[0]))
        data = {k: v for k, v in lookup.items() if "__" not in k}
        data.update({k: v() if callable(v) else v for k, v in defaults.items()})
        return data

    def _insert_new(self, data: Mapping[str, Any]) -> tuple[Statement, Callable[[Cursor], M]]:
        """The INSERT of the row ``data`` describes (validated now: only when needed)."""
        sql, params, finish, *_ = self._plan_insert(self._new(data))
        assert isinstance(sql, str)
        return Statement(sql, params), finish

    def _got(self, outcome: tuple[Any, bool]) -> tuple[M, bool]:
        found, created = outcome
        return (found, True) if created else (self._to_model(found), False)

    def _lost_race(self, lookup: Mapping[str, Any], data: Mapping[str, Any]) -> RetryIf | None:
        """Whether an insert failed because a concurrent caller inserted the row the
        plain lookups identify (their key or a unique set): then a retry finds it. Or,
        for a key the database generates, because that key was already stored (see
        ``ErrorTranslator.generated_key_taken``): then a retry draws the next."""
        taken = self._sequence_retry if data.get(self.key) is None else None
        plain = {k for k in lookup if "__" not in k}
        covered = [s for s in [(self.key,), *self.config.unique_sets] if set(s) <= plain]
        if not covered:
            return taken
        names = self.config.unique_names
        family, table = self.database.family, self.table_name

        def check(exc: BaseException) -> bool:
            if not isinstance(exc, self.errors.integrity_error):
                return False
            if taken is not None and taken(exc):
                return True
            violation = classify_integrity_error(family, exc, table)
            if violation.kind == "primary":
                return (self.key,) in covered
            if violation.kind != "unique":
                return False
            fields = names.get((violation.constraint or "").rsplit(".", 1)[-1])
            return (fields or violation.columns) in covered
        return check

    # --- bulk_update ----------------------------------------------------------------

    def _plan_bulk_update(self, models: Iterable[M],
                          fields: Sequence[str]) -> Write[int] | None:
        """``bulk_update``: chunked ``UPDATE ... FROM VALUES`` (SQLite, PostgreSQL) or
        ``UPDATE ... JOIN`` a derived table (MySQL), all in one transaction."""
        names = self._bulk_update_fields(fields)
        items = list(models) if not isinstance(models, list) else models
        rows: dict[Any, Sequence[Any]] = {}
        pick = operator.itemgetter(*names)
        one = len(names) == 1
        model_type = self.model
        for position, model in enumerate(items):  # flat: this loop runs once per row
            if not isinstance(model, model_type):
                self._saved_key(model, position)  # raises
            values = model.__dict__
            key = values.get(PERSISTED_KEY)
            if key is None:
                key = self._saved_key(model, position)
            rows[key] = (pick(values),) if one else pick(values)
        if not rows:
            return None
        stamped = self.config.auto_now_columns if self._stamps else []
        auto_now = [n for n in stamped if n not in names]
        now = utc_now() if stamped else None
        codecs = [self._to_db[self.names.index(n)] for n in auto_now]
        extra = [[now if codec is None else codec(now)] * len(rows) for codec in codecs]
        given = list(zip(*rows.values()))  # one tuple of values per field
        encoded_columns = [self._bulk_column(n, v, now if n in stamped else None)
                           for n, v in zip(names, given)]
        encoded = [list(row) for row in zip(rows, *encoded_columns, *extra)]
        columns = [*names, *auto_now]
        statements = [Statement(*self._bulk_update_sql(columns, chunk))
                      for chunk in self._chunks(encoded, len(columns) + 1)]
        finish = functools.partial(_stamped, items, stamped, now)
        flow = functools.partial(write_flows.bulk_update, statements)
        return flow, None, finish, len(statements) > 1, None, None

    def _bulk_update_fields(self, fields: Sequence[str]) -> list[str]:
        where = f"bulk_update() on {self.model_name}"
        if isinstance(fields, str) or not isinstance(fields, (list, tuple)) or not fields:
            raise InvalidQueryError(
                f"{where} needs a non-empty list of field names, got {fields!r}",
                model=self.model_name)
        for name in fields:
            if name == self.key:
                raise InvalidQueryError(f"{where}: {name!r} is the key: it identifies the "
                                        "rows and cannot be updated", model=self.model_name,
                                        field=name)
            if name not in self._field_set:
                raise InvalidQueryError(
                    f"{where}: unknown field {name!r} (fields: {', '.join(self.names)})",
                    model=self.model_name, field=str(name))
        return list(dict.fromkeys(fields))

    def _saved_key(self, model: Any, position: int) -> Any:
        where = f"bulk_update() on {self.model_name}"
        if not isinstance(model, self.model):
            raise InvalidQueryError(
                f"{where} takes {self.model_name} instances, got {type(model).__name__} "
                f"at position {position}", model=self.model_name)
        key = model.__dict__.get(PERSISTED_KEY)
        if key is None:
            key = model.__dict__.get(self.key)
            if key is None:
                raise InvalidQueryError(
                    f"{where}: the item at position {position} has no {self.key}: it was "
                    "never saved", model=self.model_name, field=self.key)
            key = self._coerce_key(key)
        return key

    def _bulk_column(self, name: str, values: Sequence[Any], now: Any) -> list[Any]:
        """One field's parameters for ``bulk_update``: checked, validated, hashed and
        encoded as a single-row write would (``now``: the time of an auto_now field)."""
        entry = self.query.field(name)
        to_db = entry.to_db
        if now is not None:
            return [now if to_db is None else to_db(now)] * len(values)
        if any(isinstance(v, Expression) for v in values):
            raise InvalidQueryError(
                f"bulk_update() on {self.model_name}: {name} holds an F expression "
                "(use update_where for computed values)", model=self.model_name, field=name)
        if not entry.spec.nullable and any(v is None for v in values):
            raise InvalidQueryError(f"{self.model_name}.{name} cannot be None",
                                    model=self.model_name, field=name)
        if entry.spec.hashed:
            values = [self._hashed_value(v) for v in values]
        adapter = entry.value_adapter
        validator = adapter.validator
        validate = validator.validate_python if isinstance(validator, SchemaValidator) \
            else adapter.validate_python
        try:
            checked = [None if v is None else validate(v) for v in values]
        except ValidationError as exc:
            error = field_error(self.model_name, name, exc, entry.spec.hashed)
            raise error from None
        if to_db is None:
            return checked
        return [None if v is None else to_db(v) for v in checked]

    def _chunks(self, rows: list[list[Any]], width: int) -> list[list[list[Any]]]:
        chunks = self.sql.chunks(rows, width)  # slices of ``rows``: lists of its lists
        return cast("list[list[list[Any]]]", [list(chunk) for chunk in chunks])

    def _bulk_update_sql(self, columns: Sequence[str],
                         rows: Sequence[Sequence[Any]]) -> tuple[str, list[Any]]:
        """One chunk's ``UPDATE`` of ``columns`` for ``rows`` (key first) and its
        parameters."""
        q, p, st = self.dialect.quote, self.dialect.placeholder, self.sql
        params = [v for row in rows for v in row]
        if self.database.family == "mysql":
            first = ", ".join([f"{p} AS k", *(f"{p} AS c{i}" for i in range(len(columns)))])
            rest = f" UNION ALL SELECT {self.dialect.params(len(columns) + 1)}"
            derived = f"SELECT {first}{rest * (len(rows) - 1)}"
            sets = ", ".join(f"t.{q(c)} = v.c{i}" for i, c in enumerate(columns))
            return (f"UPDATE {st.table} AS t JOIN ({derived}) AS v ON t.{st.quoted_key} = "
                    f"v.k SET {sets}"), params
        one = f"({self.dialect.params(len(columns) + 1)})"
        first = one
        if self.database.family == "postgresql":  # VALUES are typed by their first row
            types = [self._sql_type(self.key), *(self._sql_type(c) for c in columns)]
            first = f"({', '.join(f'CAST({p} AS {t})' for t in types)})"
        values = ", ".join([first, *([one] * (len(rows) - 1))])
        sets = ", ".join(f"{q(c)} = v.column{i + 2}" for i, c in enumerate(columns))
        return (f"UPDATE {st.table} SET {sets} FROM (VALUES {values}) AS v WHERE "
                f"{st.table}.{st.quoted_key} = v.column1"), params

    def _sql_type(self, name: str) -> str:
        return str(self.table.c[name].type.compile(dialect=self.database.dialect))

    # --- in_bulk, raw ---------------------------------------------------------------

    def _plan_in_bulk(self, keys: Iterable[Any] | None,
                      field: str | None) -> tuple[list[Read[list[M]]], str]:
        """``in_bulk``: one read per chunk of ``keys`` (every row when None) and the
        field the result is keyed by."""
        field = self.key if field is None else field
        if field not in self._field_set:
            raise InvalidQueryError(
                f"in_bulk() on {self.model_name}: unknown field {field!r} "
                f"(fields: {', '.join(self.names)})", model=self.model_name, field=str(field))
        if field != self.key and (field,) not in self.config.unique_sets:
            raise InvalidQueryError(
                f"in_bulk() on {self.model_name}: {field!r} is not unique (use the key or "
                "a unique field)", model=self.model_name, field=field)
        if keys is None:
            return [self._plan_filter(None, None, self.key, {})], field
        if isinstance(keys, (str, bytes, Mapping)) or not isinstance(keys, Iterable):
            raise InvalidQueryError(
                f"in_bulk() on {self.model_name} takes a list of values, got {keys!r}",
                model=self.model_name)
        try:
            wanted = list(dict.fromkeys(k for k in keys if k is not None))
        except TypeError as exc:
            raise InvalidQueryError(f"in_bulk() on {self.model_name}: {exc}",
                                    model=self.model_name) from None
        return [self._plan_filter(None, None, self.key, {f"{field}__in": list(chunk)})
                for chunk in write_flows.key_chunks(wanted)], field

    def _plan_raw(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None
                  ) -> Write[list[M]]:
        """``raw``: the caller's SQL (values bound), its rows validated into models."""
        if not isinstance(sql, str) or not sql.strip():
            raise InvalidQueryError(f"raw() on {self.model_name} needs an SQL string, got "
                                    f"{sql!r}", model=self.model_name)
        if params is None:
            params = ()
        if isinstance(params, (str, bytes)) or not isinstance(params, (Sequence, Mapping)):
            raise InvalidQueryError(
                f"raw() on {self.model_name}: params must be a list, tuple or dict, got "
                f"{type(params).__name__}", model=self.model_name)
        bound = params if isinstance(params, Mapping) else list(params)
        flow = functools.partial(write_flows.raw_rows, Described(sql, bound))
        return flow, None, self._raw_models, False, None, None

    def _raw_models(self, outcome: tuple[list[str] | None, Sequence[Any]]) -> list[M]:
        columns, rows = outcome
        where = f"raw() on {self.model_name}"
        if columns is None:
            raise InvalidQueryError(f"{where}: the statement returned no rows (raw() is for "
                                    f"queries returning {self.table_name} rows)",
                                    model=self.model_name)
        repeated = sorted({c for c in columns if columns.count(c) > 1 and c in self.names})
        if repeated:
            raise InvalidQueryError(f"{where}: column {repeated[0]!r} appears more than once",
                                    model=self.model_name, field=repeated[0])
        missing = [n for n in self.names if n not in columns]
        if missing:
            raise InvalidQueryError(
                f"{where}: the rows have no column {', '.join(map(repr, missing))} "
                f"(got: {', '.join(columns)})", model=self.model_name, field=missing[0])
        order = [columns.index(n) for n in self.names]
        if order == list(range(len(self.names))) and len(columns) == len(self.names):
            return self._to_models(rows)
        return self._to_models([[row[i] for i in order] for row in rows])


def _stamped(models: list[Any], stamped: Sequence[str], now: Any, count: int) -> int:
    """``bulk_update``'s finish: the ``auto_now`` time onto the models; the row count."""
    if stamped:
        for model in models:
            for name in stamped:
                model.__dict__[name] = now
    return count
