"""Criteria -> SQL: Django-style lookups, ``Q`` objects, relations, JSON paths, ``F``.

``field=value`` is equality (``None`` means IS NULL); ``field__op=value`` applies one of
:data:`LOOKUPS`. Values are validated against the field's type before any SQL runs, so
``filter(age="old")`` is an :class:`InvalidQueryError`, never a silent mismatch.

Beyond a model's own columns a key may follow a declared relationship
(``author__name``: a join for ``BelongsTo``, an ``EXISTS`` for ``HasMany`` and
``HasManyThrough``, so each row comes once), walk into a JSON field (``data__color``,
``data__size__gt``, ``data__has_key``, ``tags__contains``), or take a date part
(``created__year``, ``__month``, ``__day``, ``__date``).

Statements are compiled once per *shape* (the keys, lookups, which values are None,
how many values an ``in`` has, ...) and cached per table; each call then only validates
and binds its values.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from itertools import count
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from registers.db.criteria import (
    Compiled,
    Expression,
    F,
    Group,
    Q,
    _indexed,
    _is_zero,
    _shapes,
)
from registers.db.exceptions import InvalidQueryError
from registers.db.filter_sql import (
    _limit_sql,
    _node_sql,
    _order_sql,
    _path,
    _same_database,
    check_window,
)
from registers.db.query_parts import (
    LOOKUPS,
    _Field,
    _Hop,
    _Node,
    _relation_names,
    _Scope,
    _Statement,
)

if TYPE_CHECKING:
    from registers.db.dialects import Dialect
    from registers.db.typing_utils import ColumnSpec

__all__ = [
    "LOOKUPS",
    "Compiled",
    "Expression",
    "F",
    "Group",
    "Q",
    "QueryCompiler",
    "check_window",
]

_CACHE_LIMIT = 2048


class QueryCompiler:
    """Builds WHERE / ORDER BY / SET clauses and SELECTs for one table."""

    def __init__(
        self, model_name: str, table: str, columns: Sequence[ColumnSpec], dialect: Dialect,
        *, model: type[BaseModel] | None = None, key: str | None = None,
    ) -> None:
        self.model_name = model_name
        self.table = table
        self.dialect = dialect
        self.model = model
        self.key = key
        self._columns = {c.name: c for c in columns}
        self._fields: dict[str, _Field] = {}
        self._hops: dict[str, _Hop] = {}
        self._cache: dict[Any, Compiled] = {}
        self._selects: dict[Any, tuple[Compiled, str]] = {}
        self.grouped: dict[Any, Any] = {}  # registers.db.grouping's statements

    # --- fields and relations -------------------------------------------------------

    def field(self, name: str) -> _Field:
        cached = self._fields.get(name)
        if cached is not None:
            return cached
        spec = self._columns.get(name)
        if spec is None:
            raise InvalidQueryError(
                f"{self.model_name} has no field {name!r} ({self._choices()})",
                model=self.model_name,
                table=self.table,
                field=name,
            )
        quoted = self.dialect.quote(name)
        numeric_text = spec.kind == "decimal" and self.dialect.family == "sqlite"
        entry = _Field(
            spec,
            quoted,
            TypeAdapter(spec.python_type),
            spec.to_db(self.dialect.family),
            f"CAST({quoted} AS REAL)" if numeric_text else quoted,
            float if numeric_text else None,
            TypeAdapter(spec.value_annotation()),
            spec.from_db(self.dialect.family),
        )
        self._fields[name] = entry
        return entry

    def _choices(self) -> str:
        relations = _relation_names(self.model)
        text = f"fields: {', '.join(self._columns)}"
        return f"{text}; relations: {', '.join(relations)}" if relations else text

    def is_relation(self, name: str) -> bool:
        return name not in self._columns and name in _relation_names(self.model)

    def relation(self, name: str) -> _Hop:
        """The declared relationship ``name`` of this model, as a join step."""
        hop = self._hops.get(name)
        if hop is not None:
            return hop
        from registers.db.relations import BelongsTo, HasMany, HasManyThrough, Relationship

        descriptor = getattr(self.model, name, None) if name in _relation_names(
            self.model) else None
        if not isinstance(descriptor, Relationship):
            raise InvalidQueryError(
                f"{self.model_name} has no field {name!r} ({self._choices()})",
                model=self.model_name, table=self.table, field=name,
            )
        assert self.model is not None
        descriptor._bind(self.model)
        if isinstance(descriptor, BelongsTo):
            target = descriptor._target
            hop = _Hop(name, True, target.query, descriptor.local_key,
                       descriptor.remote_key or target.key)
        elif isinstance(descriptor, HasMany):
            target = descriptor._target
            hop = _Hop(name, False, target.query, descriptor.local_key or self.key or "",
                       descriptor.foreign_key)
        elif isinstance(descriptor, HasManyThrough):
            target = descriptor._target
            hop = _Hop(name, False, target.query, descriptor._owner.key,
                       descriptor.source_key, descriptor._through.query,
                       descriptor.target_key, target.key)
        else:  # pragma: no cover - every relationship kind is handled above
            raise InvalidQueryError(f"{self.model_name}.{name}: unsupported relationship")
        if not _same_database(self, hop.target):
            raise InvalidQueryError(
                f"{self.model_name}.{name} leads to {hop.target.model_name}, which lives in "
                "another database: relation lookups need both tables in one database",
                model=self.model_name, field=name,
            )
        self._hops[name] = hop
        return hop

    # --- values ---------------------------------------------------------------------

    def coerce(self, entry: _Field, value: Any, lookup: str = "eq") -> Any:
        """``value`` validated as the field's type and converted for the driver."""
        if value is None:
            return None
        try:
            value = entry.adapter.validate_python(value)
        except ValidationError as exc:
            shown = "<hidden>" if entry.spec.hashed else repr(value)[:100]
            raise InvalidQueryError(
                f"invalid value {shown} for {self.model_name}.{entry.spec.name} "
                f"({lookup}): {exc.errors()[0]['msg']}",
                model=self.model_name,
                table=self.table,
                field=entry.spec.name,
            ) from exc
        return entry.to_db(value) if entry.to_db is not None else value

    def _compare_param(self, entry: _Field, value: Any, lookup: str) -> Any:
        if entry.compare_param is None:
            return self.coerce(entry, value, lookup)
        self.coerce(entry, value, lookup)  # validates, raising InvalidQueryError
        return entry.compare_param(entry.adapter.validate_python(value))

    def reader(self, entry: _Field) -> Callable[[Any], Any]:
        """Stored value -> the field's Python value (for ``values()``)."""
        # the core validator itself: TypeAdapter.validate_python's wrapper costs as much
        validate = getattr(entry.adapter, "validator", entry.adapter).validate_python
        from_db = entry.from_db
        if from_db is None:
            exact = entry.spec.python_type
            if exact in (str, int, float):
                # the adapter has no constraints: a value of exactly its type is valid
                def same(raw: Any) -> Any:
                    return raw if raw is None or type(raw) is exact else validate(raw)

                return same

            def read(raw: Any) -> Any:
                return None if raw is None else validate(raw)

            return read

        def decode(raw: Any) -> Any:
            return None if raw is None else validate(from_db(raw))

        return decode

    def _bad(self, name: str, lookup: str, why: str) -> InvalidQueryError:
        return InvalidQueryError(
            f"{self.model_name}: {name}__{lookup} {why}", model=self.model_name, field=name
        )

    # --- compiling ------------------------------------------------------------------

    def compile(
        self,
        groups: Sequence[Group],
        order: str | Sequence[str] | None = None,
        *,
        reverse: bool = False,
        fields: Sequence[str] | None = None,
    ) -> tuple[Compiled, list[Any]]:
        """The compiled filter for ``groups`` (AND-ed filter calls) and its values
        (``compiled.params(values)`` validates and converts them for the driver).

        The SQL is built once per shape and cached.
        """
        values: list[Any] = []
        shape = _shapes(groups, values)
        if order is not None and type(order) is not str:
            order = tuple(order)
        return self._compiled(shape, order, reverse, fields), values

    def _compiled(self, shape: tuple[Any, ...], order: str | Sequence[str] | None,
                  reverse: bool, fields: Sequence[str] | None) -> Compiled:
        key = (shape, order, reverse, None if fields is None else tuple(fields))
        compiled = self._cache.get(key)
        if compiled is None:
            compiled = self._compile(shape, order, reverse, fields)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = compiled
        return compiled

    def select_statement(
        self,
        groups: Sequence[Group],
        order: str | Sequence[str] | None = None,
        *,
        reverse: bool = False,
        fields: tuple[str, ...] | None = None,
        limit: int | None = None,
        offset: int | None = None,
        distinct: bool = False,
    ) -> tuple[str, list[Any], Compiled]:
        """The whole ``SELECT`` for a filter, its parameters and its compiled form.

        One dictionary lookup per call once the shape has been seen: the hot path of
        ``first()``, ``filter()`` and ``Query`` reads.
        """
        if (limit is not None and type(limit) is not int) or (
                offset is not None and type(offset) is not int):
            check_window(limit, offset)  # raises: True would pass for 1 in the cache key
        values: list[Any] = []
        shape = _shapes(groups, values)
        if order is not None and type(order) is not str:
            order = tuple(order)
        key = (shape, order, reverse, fields, limit, offset, distinct)
        hit = self._selects.get(key)
        if hit is None:
            check_window(limit, offset)
            compiled = self._compiled(shape, order, reverse, fields)
            hit = (compiled, self.select(compiled, limit=limit, offset=offset, distinct=distinct))
            if not offset:  # pagination by offset would fill the cache with one-offs
                if len(self._selects) >= _CACHE_LIMIT:
                    self._selects.clear()
                self._selects[key] = hit
        compiled, sql = hit
        return sql, compiled.params(values), compiled

    def _compile(self, shape: tuple[Any, ...], order: str | Sequence[str] | None,
                 reverse: bool, fields: Sequence[str] | None) -> Compiled:
        st = _Statement(self.dialect)
        root = _indexed(("GROUP", False, shape), count())
        items = [] if order is None else [order] if isinstance(order, str) else list(order)
        if items and fields is None and self.key and all(
                isinstance(i, str) and i.removeprefix("-") != self.key for i in items):
            # the key breaks ties: one order on every backend (PostgreSQL's sort is not
            # stable), the order iterate()'s keyset pagination follows too
            items.append(self.key)
        reads = self._reads(root)  # None: the filter follows a relation
        qualified = reads is None or any(
            isinstance(i, str) and "__" in i for i in (*items, *(fields or ()))
        )
        q = self.dialect.quote
        joins: list[str] = []
        scope = _Scope(self, q(self.table) if qualified else None, joins, {})
        where = _node_sql(st, scope, root)
        order_sql, order_exprs = _order_sql(st, scope, items, reverse)
        readers: tuple[tuple[str, Callable[[Any], Any]], ...] | None = None
        if fields is None:
            exprs = [scope.col(self.field(n).quoted) for n in self._columns]
        else:
            exprs, found = [], []
            for name in fields or self._columns:
                expr, entry, target = _path(st, scope, name, "values()")
                exprs.append(expr)
                found.append((name, target.compiler.reader(entry)))
            readers = tuple(found)
        visible = len(exprs)
        hidden = [e for e in order_exprs if e not in exprs]
        return Compiled(
            joins="".join(joins),
            where=f" WHERE {where}" if where else "",
            order=order_sql,
            columns=", ".join([*exprs, *hidden]),
            column_list=(*exprs, *hidden),
            readers=readers,
            visible=visible,
            width=visible + len(hidden),
            qualified=qualified,
            binders=tuple(st.binders),
            reads=reads,
        )

    def _reads(self, node: _Node) -> frozenset[str] | None:
        """The fields of this model the filter ``node`` reads; None when it follows a
        relation."""
        names: set[str] = set()
        for child in node.children:
            if isinstance(child, _Node):
                inner = self._reads(child)
                if inner is None:
                    return None
                names |= inner
                continue
            name = child.key.partition("__")[0]
            if name not in self._columns:
                return None
            names.add(name)
        return frozenset(names)

    # --- statements -----------------------------------------------------------------

    def where(self, criteria: Mapping[str, Any] | Q, q: Sequence[Q] = ()) -> tuple[str, list[Any]]:
        """`` WHERE ...`` (or ``""``) and its parameters, usable in any statement on the
        table alone (UPDATE, DELETE, COUNT): relation filters become a key subquery."""
        where, params, _ = self.where_reading(criteria, q)
        return where, params

    def where_reading(self, criteria: Mapping[str, Any] | Q,
                      q: Sequence[Q] = ()) -> tuple[str, list[Any], frozenset[str] | None]:
        """:meth:`where`, and the fields of this model it reads (None: it follows a
        relation)."""
        if isinstance(criteria, Q):
            q, criteria = (criteria, *q), {}
        if not criteria and not q:
            return "", [], frozenset()
        compiled, values = self.compile(((q, criteria),))
        return self.standalone_where(compiled), compiled.params(values), compiled.reads

    def standalone_where(self, compiled: Compiled) -> str:
        if not compiled.qualified or not compiled.where:
            return compiled.where
        cached = compiled.statements.get("standalone")
        if cached is None:
            q = self.dialect.quote
            table, key = q(self.table), q(self.key or "")
            cached = (
                f" WHERE {key} IN (SELECT {key} FROM (SELECT {table}.{key} AS {key} "
                f"FROM {table}{compiled.joins}{compiled.where}) AS registers_sub)"
            )
            compiled.statements["standalone"] = cached
        return cached

    def select(self, compiled: Compiled, *, limit: int | None = None, offset: int | None = None,
               distinct: bool = False) -> str:
        """``SELECT`` of the compiled columns (cached per limit/offset/distinct)."""
        key = ("select", limit, offset, distinct)
        sql = compiled.statements.get(key)
        if sql is None:
            sql = (
                f"SELECT {'DISTINCT ' if distinct else ''}{compiled.columns} "
                f"FROM {self.dialect.quote(self.table)}{compiled.joins}{compiled.where}"
                f"{compiled.order}{_limit_sql(limit, offset)}"
            )
            if not offset:  # pagination by offset would fill the cache with one-offs
                compiled.statements[key] = sql
        return sql

    def count(self, compiled: Compiled, *, limit: int | None = None,
              offset: int | None = None, distinct: bool = False) -> str:
        key = ("count", limit, offset, distinct)
        sql = compiled.statements.get(key)
        if sql is None:
            if distinct or limit is not None or offset:
                # aliased: a derived table may not repeat a column name (MySQL)
                aliased = ", ".join(
                    f"{expr} AS {self.dialect.quote(f'c{i}')}"
                    for i, expr in enumerate(compiled.column_list)
                )
                inner = (
                    f"SELECT {'DISTINCT ' if distinct else ''}{aliased} "
                    f"FROM {self.dialect.quote(self.table)}{compiled.joins}{compiled.where}"
                    f"{_limit_sql(limit, offset)}"
                )
                sql = f"SELECT COUNT(*) FROM ({inner}) AS registers_sub"
            else:
                sql = (f"SELECT COUNT(*) FROM {self.dialect.quote(self.table)}"
                       f"{compiled.joins}{compiled.where}")
            compiled.statements[key] = sql
        return sql

    def exists(self, compiled: Compiled, *, offset: int | None = None) -> str:
        key = ("exists", offset)
        sql = compiled.statements.get(key)
        if sql is None:
            sql = (f"SELECT 1 FROM {self.dialect.quote(self.table)}{compiled.joins}"
                   f"{compiled.where}{_limit_sql(1, offset)}")
            compiled.statements[key] = sql
        return sql

    # --- ORDER BY of this table's own fields (keyset pagination) ----------------------

    def order_terms(self, order: str | Sequence[str] | None,
                    reverse: bool = False) -> list[tuple[_Field, bool]]:
        """The validated ``order_by`` entries: (field, descending) each."""
        if order is None:
            return []
        items = [order] if isinstance(order, str) else list(order)
        terms = []
        for item in items:
            if not isinstance(item, str) or not item.removeprefix("-"):
                raise InvalidQueryError(f"order_by entries must be field names, got {item!r}")
            descending = item.startswith("-") != reverse
            terms.append((self.field(item.removeprefix("-")), descending))
        return terms

    def order_sql(self, terms: Sequence[tuple[_Field, bool]]) -> str:
        """`` ORDER BY ...`` for ``terms``, NULLs first ascending and last descending on
        every backend (SQLite and MariaDB do so natively; PostgreSQL is told)."""
        if not terms:
            return ""
        pg = self.dialect.family == "postgresql"
        parts = []
        for entry, descending in terms:
            # A column that holds no NULL sorts the same either way; leaving the NULLS
            # clause off lets PostgreSQL read it in order from its index (a b-tree is
            # NULLS LAST ascending) instead of sorting the whole table for every page.
            nulls = pg and self.may_be_null(entry)
            parts.append(f"{entry.compared} DESC{' NULLS LAST' if nulls else ''}" if descending
                         else f"{entry.compared}{' NULLS FIRST' if nulls else ''}")
        return " ORDER BY " + ", ".join(parts)

    def may_be_null(self, entry: _Field) -> bool:
        """Whether this table's column ``entry`` can hold NULL (the key never does)."""
        return entry.spec.nullable and entry.spec.name != self.key

    def order_by(self, order: str | Sequence[str] | None, *, reverse: bool = False) -> str:
        if order is None:
            return ""
        return self.order_sql(self.order_terms(order, reverse))

    # --- SET ------------------------------------------------------------------------

    def expression_kind(self, expr: Any) -> str:
        """What an ``F`` expression computes, the same on every backend: ``"int"`` (only
        int fields and int literals; ``/`` truncates toward zero), ``"float"`` (a float
        field or literal takes part) or ``"decimal"`` (exact). Anything else is refused."""
        if isinstance(expr, F):
            kind = self.field(expr.name).spec.kind
            if kind not in ("int", "float", "decimal"):
                raise InvalidQueryError(
                    f"F({expr.name!r}) is a {kind} field: F expressions compute with int, "
                    "float and Decimal fields only", model=self.model_name, field=expr.name)
            return kind
        if isinstance(expr, Expression):
            left, op, right = expr.parts
            kinds = {self.expression_kind(left), self.expression_kind(right)}
            if op == "/" and _is_zero(right):
                raise InvalidQueryError(f"F expression divides by zero: {right!r}",
                                        model=self.model_name)
            if kinds == {"int"}:
                return "int"
            if kinds == {"decimal", "float"}:
                raise InvalidQueryError(
                    "F expression mixes Decimal and float (convert one: float arithmetic "
                    "is not exact)", model=self.model_name)
            return "decimal" if "decimal" in kinds else "float"
        if isinstance(expr, bool) or not isinstance(expr, (int, float, Decimal)):
            raise InvalidQueryError(f"F expressions combine fields and numbers, got {expr!r}")
        if isinstance(expr, int):
            if not -(2**63) <= expr < 2**63:
                raise InvalidQueryError(f"F expression literal {expr} does not fit a 64-bit "
                                        "integer", model=self.model_name)
            return "int"
        if isinstance(expr, float):
            if not math.isfinite(expr):
                raise InvalidQueryError(f"F expression literal {expr!r} is not finite",
                                        model=self.model_name)
            return "float"
        if not expr.is_finite():
            raise InvalidQueryError(f"F expression literal {expr!r} is not finite",
                                    model=self.model_name)
        return "decimal"

    def expression(self, expr: Expression, params: list[Any], exact: bool = False,
                   source: str = "") -> str:
        """SQL for an ``F`` expression; ``exact`` does Decimal arithmetic on SQLite text.
        ``source`` qualifies column references (MySQL reads old values through a
        self-join, since its ``SET`` sees the values assigned before it)."""
        if isinstance(expr, F):
            return source + self.field(expr.name).quoted
        left, op, right = expr.parts
        if exact or self._uses_text_decimal(expr):
            # SQLite keeps Decimal as exact text: compute with Python's Decimal through a
            # function registered on every connection (see engine.py), never in REAL.
            return (
                f"registers_decimal('{op}', {self._operand(left, params, True, source)}, "
                f"{self._operand(right, params, True, source)})"
            )
        a = self._operand(left, params, False, source)
        b = self._operand(right, params, False, source)
        integer = self.expression_kind(expr) == "int"
        if op == "/":
            if self.dialect.family == "sqlite":
                # SQLite divides by zero into NULL: refuse like the servers do.
                b = f"registers_divisor({b})"
            elif self.dialect.family == "mysql" and integer:
                return f"({a} DIV {b})"  # MySQL's / is exact: 7 / 2 = 3.5, then rounded
        if integer and self.dialect.family == "sqlite":
            # SQLite turns an overflowing integer into a REAL: refuse like the servers do.
            return f"registers_int({a} {op} {b})"
        return f"({a} {op} {b})"

    def _uses_text_decimal(self, expr: Expression) -> bool:
        return any(self.field(name).compare_param is not None for name in expr.fields())

    def _operand(self, value: Any, params: list[Any], exact: bool = False,
                 source: str = "") -> str:
        if isinstance(value, Expression):
            return self.expression(value, params, exact, source)
        if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
            raise InvalidQueryError(f"F expressions combine fields and numbers, got {value!r}")
        params.append(str(value) if exact else value)
        return self.dialect.placeholder
