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

import datetime as _dt
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import count
from typing import TYPE_CHECKING, Any, NamedTuple

from pydantic import BaseModel, TypeAdapter, ValidationError

from registers.db.exceptions import InvalidQueryError
from registers.db.lookup_sql import DATE_PARTS, JsonPath, date_part, regex

if TYPE_CHECKING:
    from registers.db.dialects import Dialect
    from registers.db.typing_utils import ColumnSpec

__all__ = ["LOOKUPS", "Compiled", "Expression", "F", "Q", "QueryCompiler"]

LOOKUPS = (
    "eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in", "like", "ilike",
    "contains", "icontains", "startswith", "endswith", "isnull", "between",
    "iexact", "istartswith", "iendswith", "regex", "iregex",
)
_JSON_ONLY = ("has_key",)
# ``IN`` lists longer than this are sent as one array parameter (see _in_list).
LONG_IN = 5000
_COMPARISONS = {"eq": "=", "ne": "<>", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}
# lookup -> (prefix wildcard, suffix wildcard, case-insensitive)
_TEXT_LOOKUPS = {
    "contains": (True, True, False),
    "icontains": (True, True, True),
    "startswith": (False, True, False),
    "endswith": (True, False, False),
    "istartswith": (False, True, True),
    "iendswith": (True, False, True),
}
_DATE_KINDS = ("date", "datetime", "naive_datetime")
_JSON_KEY = re.compile(r"[A-Za-z0-9_-]+")
_CACHE_LIMIT = 2048



class Expression:
    """Arithmetic on columns, evaluated by the database (atomic read-modify-write)."""

    def __init__(self, sql_parts: tuple[Any, ...]) -> None:
        self.parts = sql_parts

    def _combine(self, op: str, other: Any, reverse: bool = False) -> Expression:
        left, right = (other, self) if reverse else (self, other)
        return Expression((left, op, right))

    def __add__(self, other: Any) -> Expression:
        return self._combine("+", other)

    def __radd__(self, other: Any) -> Expression:
        return self._combine("+", other, reverse=True)

    def __sub__(self, other: Any) -> Expression:
        return self._combine("-", other)

    def __rsub__(self, other: Any) -> Expression:
        return self._combine("-", other, reverse=True)

    def __mul__(self, other: Any) -> Expression:
        return self._combine("*", other)

    def __rmul__(self, other: Any) -> Expression:
        return self._combine("*", other, reverse=True)

    def __truediv__(self, other: Any) -> Expression:
        return self._combine("/", other)

    def __rtruediv__(self, other: Any) -> Expression:
        return self._combine("/", other, reverse=True)

    def fields(self) -> list[str]:
        found: list[str] = []
        for part in self.parts:
            if isinstance(part, F):
                found.append(part.name)
            elif isinstance(part, Expression):
                found.extend(part.fields())
        return found


class F(Expression):
    """A reference to a column's current value: ``update_where({...}, hits=F("hits") + 1)``."""

    def __init__(self, name: str) -> None:
        super().__init__(())
        self.name = name

    def __repr__(self) -> str:
        return f"F({self.name!r})"


class Q:
    """A condition to combine: ``Q(name="Ada") | ~Q(age__lt=18)``.

    Keyword criteria inside one ``Q`` are AND-ed; ``|`` is OR, ``&`` is AND and ``~``
    negates (NULL-aware, as Django's ``exclude``: a row whose field is NULL is not
    equal to anything, so ``~Q(x=1)`` keeps it). An empty ``Q()`` is no condition.
    Pass them positionally, before keyword criteria: ``User.objects.filter(Q(a=1) |
    Q(b=2), active=True)``.
    """

    __slots__ = ("children", "connector", "negated")

    def __init__(self, *args: Q, **criteria: Any) -> None:
        for arg in args:
            if not isinstance(arg, Q):
                raise InvalidQueryError(
                    f"Q() takes Q objects positionally and lookups as keywords, got {arg!r}"
                )
        self.children: tuple[Q | tuple[str, Any], ...] = (*args, *criteria.items())
        self.connector = "AND"
        self.negated = False

    @classmethod
    def _make(cls, children: tuple[Q | tuple[str, Any], ...], connector: str,
              negated: bool) -> Q:
        made = cls.__new__(cls)
        made.children, made.connector, made.negated = children, connector, negated
        return made

    def _combine(self, other: Any, connector: str) -> Q:
        if not isinstance(other, Q):
            raise InvalidQueryError(
                f"cannot combine a Q with {type(other).__name__} {other!r}: "
                "use Q(...) on both sides of | and &"
            )
        if not other.children:
            return self
        if not self.children:
            return other
        children: list[Q | tuple[str, Any]] = []
        for side in (self, other):
            if side.connector == connector and not side.negated:
                children.extend(side.children)
            else:
                children.append(side)
        return Q._make(tuple(children), connector, False)

    def __or__(self, other: Any) -> Q:
        return self._combine(other, "OR")

    def __and__(self, other: Any) -> Q:
        return self._combine(other, "AND")

    def __ror__(self, other: Any) -> Q:
        return self._combine(other, "OR")  # ``other`` is not a Q: raises

    def __rand__(self, other: Any) -> Q:
        return self._combine(other, "AND")

    def __invert__(self) -> Q:
        return Q._make(self.children, self.connector, not self.negated)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Q) and (
            (self.children, self.connector, self.negated)
            == (other.children, other.connector, other.negated)
        )

    def __hash__(self) -> int:
        return hash((self.connector, self.negated, len(self.children)))

    def __repr__(self) -> str:
        parts = [repr(c) if isinstance(c, Q) else f"{c[0]}={c[1]!r}" for c in self.children]
        if self.connector == "OR":
            body = " | ".join(parts)
            text = f"({body})" if self.negated else body
        else:
            text = f"Q({', '.join(parts)})"
        return f"~{text}" if self.negated else text

    def __bool__(self) -> bool:
        return bool(self.children)


# One filter call: its positional Q objects and keyword criteria (AND-ed together).
Group = tuple[Sequence[Q], Mapping[str, Any]]


# --- shapes: what decides the SQL of a filter, values aside ---------------------------

def _seq_kind(items: Sequence[Any]) -> str:
    if all(isinstance(v, str) for v in items):
        return "s"
    if all(isinstance(v, (int, float, Decimal)) and not isinstance(v, bool) for v in items):
        return "n"
    return "x"


def _value_shape(value: Any, values: list[Any]) -> Any:
    kind = type(value)
    if kind is str:
        values.append(value)
        return "s" if value else ""
    if value is None or kind is bool:
        values.append(value)
        return value
    if kind is int or kind is float:
        values.append(value)
        return kind
    if kind is list or kind is tuple or (
        not isinstance(value, (str, bytes, bytearray, Mapping, BaseModel))
        and hasattr(value, "__iter__")
    ):
        items = value if kind is list or kind is tuple else tuple(value)
        values.append(items)
        return (len(items), _seq_kind(items))
    values.append(value)
    if isinstance(value, str):
        return "s" if value else ""
    return kind


def _q_shape(node: Q, values: list[Any]) -> tuple[Any, ...]:
    children: list[Any] = []
    for child in node.children:
        if isinstance(child, Q):
            children.append(_q_shape(child, values))
        else:
            children.append((child[0], _value_shape(child[1], values)))
    return (node.connector, node.negated, tuple(children))


def _shapes(groups: Sequence[Group], values: list[Any]) -> tuple[Any, ...]:
    if len(groups) == 1:
        return (_group_shape(groups[0], values),)
    return tuple([_group_shape(group, values) for group in groups])


def _group_shape(group: Group, values: list[Any]) -> tuple[Any, ...]:
    args, criteria = group
    children: list[Any] = []
    for arg in args:
        if not isinstance(arg, Q):
            raise InvalidQueryError(
                f"positional criteria must be Q objects, got {type(arg).__name__} {arg!r}"
            )
        children.append(_q_shape(arg, values))
    for key, value in criteria.items():
        children.append((key, _value_shape(value, values)))
    return ("AND", False, tuple(children))


class _Leaf(NamedTuple):
    pos: int
    key: str
    shape: Any


class _Node(NamedTuple):
    connector: str  # AND, OR, or GROUP (AND of separate filter calls)
    negated: bool
    children: tuple[Any, ...]


def _indexed(shape: tuple[Any, ...], counter: Iterable[int]) -> _Node:
    """The shape as a tree whose leaves know their value's position (walk order)."""
    children: list[Any] = []
    numbers = iter(counter)
    for child in shape[2]:
        if len(child) == 3:
            children.append(_indexed(child, numbers))
        else:
            children.append(_Leaf(next(numbers), child[0], child[1]))
    return _Node(shape[0], shape[1], tuple(children))


def _shape_name(shape: Any) -> str:
    if shape is None:
        return "None"
    if shape in ("s", ""):
        return "str"
    if isinstance(shape, bool):
        return "bool"
    if isinstance(shape, tuple):
        return "a sequence"
    return shape.__name__ if isinstance(shape, type) else type(shape).__name__


Binder = Callable[[Any], list[Any]]


@dataclass
class Compiled:
    """A filter (and ordering, and selected columns) compiled for one shape."""

    joins: str
    where: str
    order: str
    columns: str
    column_list: tuple[str, ...]
    readers: tuple[tuple[str, Callable[[Any], Any]], ...] | None
    visible: int
    width: int
    qualified: bool
    binders: tuple[tuple[int, Binder], ...]
    statements: dict[Any, str] = field(default_factory=dict)

    def params(self, values: Sequence[Any]) -> list[Any]:
        params: list[Any] = []
        for index, bind in self.binders:
            params.extend(bind(values[index]))
        return params


@dataclass(frozen=True)
class _Field:
    spec: ColumnSpec
    quoted: str
    adapter: TypeAdapter[Any]
    to_db: Callable[[Any], Any] | None
    # How the column is compared and sorted: SQLite keeps Decimal as exact text, so
    # comparisons and ORDER BY go through its numeric value instead.
    compared: str
    compare_param: Callable[[Any], Any] | None
    # The field's full type, constraints included: what update_where validates against.
    value_adapter: TypeAdapter[Any]
    from_db: Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Target:
    """What a lookup compares: a column, a date part, or a value inside JSON."""

    model: str
    name: str
    raw: str
    compared: str
    nullable: bool
    text: bool
    bind: Callable[[Any, str], Any]


@dataclass(frozen=True)
class _Hop:
    """One declared relationship, as the compiler follows it."""

    name: str
    single: bool
    target: QueryCompiler
    local: str  # the owner's column the relation starts from
    remote: str  # the column of the target (BelongsTo, HasMany) or through model it meets
    through: QueryCompiler | None = None
    target_key: str = ""  # HasManyThrough: the through column naming the target
    target_pk: str = ""


class _Statement:
    """Compile-time state of one statement: table aliases and parameter binders."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._aliases = count(1)
        self.binders: list[tuple[int, Binder]] = []

    def alias(self) -> str:
        return self.dialect.quote(f"r{next(self._aliases)}")

    def bind(self, index: int, binder: Binder) -> None:
        self.binders.append((index, binder))


class _Scope:
    """A table in a statement: its compiler, how its columns are referred to, and the
    joins of the FROM clause it belongs to."""

    def __init__(self, compiler: QueryCompiler, ref: str | None, joins: list[str],
                 joined: dict[tuple[str, ...], _Scope], path: tuple[str, ...] = ()) -> None:
        self.compiler = compiler
        self.ref = ref
        self.joins = joins
        self.joined = joined
        self.path = path

    def col(self, quoted: str) -> str:
        return f"{self.ref}.{quoted}" if self.ref else quoted

    def compared(self, entry: _Field) -> str:
        raw = self.col(entry.quoted)
        return f"CAST({raw} AS REAL)" if entry.compare_param is not None else raw

    def join(self, st: _Statement, hop: _Hop) -> _Scope:
        """The scope of a BelongsTo target, LEFT JOINed once per path."""
        path = (*self.path, hop.name)
        found = self.joined.get(path)
        if found is not None:
            return found
        q = st.dialect.quote
        alias = st.alias()
        self.joins.append(
            f" LEFT JOIN {q(hop.target.table)} AS {alias} "
            f"ON {alias}.{q(hop.remote)} = {self.col(q(hop.local))}"
        )
        scope = _Scope(hop.target, alias, self.joins, self.joined, path)
        self.joined[path] = scope
        return scope


def _relation_names(model: Any) -> list[str]:
    from registers.db.relations import Relationship

    names: list[str] = []
    for klass in getattr(model, "__mro__", ()):
        for name, value in vars(klass).items():
            if isinstance(value, Relationship) and name not in names:
                names.append(name)
    return names


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
        from_db, validate = entry.from_db, entry.adapter.validate_python

        def read(raw: Any) -> Any:
            if raw is None:
                return None
            return validate(from_db(raw) if from_db is not None else raw)

        return read

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
        qualified = self._uses_relations(root) or any(
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
        )

    def _uses_relations(self, node: _Node) -> bool:
        for child in node.children:
            if isinstance(child, _Node):
                if self._uses_relations(child):
                    return True
            elif child.key.partition("__")[0] not in self._columns:
                return True
        return False

    # --- statements -----------------------------------------------------------------

    def where(self, criteria: Mapping[str, Any] | Q, q: Sequence[Q] = ()) -> tuple[str, list[Any]]:
        """`` WHERE ...`` (or ``""``) and its parameters, usable in any statement on the
        table alone (UPDATE, DELETE, COUNT): relation filters become a key subquery."""
        if isinstance(criteria, Q):
            q, criteria = (criteria, *q), {}
        if not criteria and not q:
            return "", []
        compiled, values = self.compile(((q, criteria),))
        return self.standalone_where(compiled), compiled.params(values)

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
        nulls = self.dialect.family == "postgresql"
        parts = [
            f"{entry.compared} DESC{' NULLS LAST' if nulls else ''}" if descending
            else f"{entry.compared}{' NULLS FIRST' if nulls else ''}"
            for entry, descending in terms
        ]
        return " ORDER BY " + ", ".join(parts)

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


def _is_zero(value: Any) -> bool:
    return not isinstance(value, (Expression, bool)) and isinstance(
        value, (int, float, Decimal)) and value == 0


# --- compiling a filter tree --------------------------------------------------------

def _node_sql(st: _Statement, scope: _Scope, node: _Node) -> str:
    if node.connector == "AND":
        sql = _and_group(st, scope, node.children)
    else:
        parts = [
            _node_sql(st, scope, c) if isinstance(c, _Node) else _and_group(st, scope, (c,))
            for c in node.children
        ]
        if node.connector == "OR":
            sql = "(" + " OR ".join(p or "1 = 1" for p in parts) + ")" if parts else ""
        else:  # GROUP: separate filter calls, never merged into one relation join
            sql = " AND ".join(p for p in parts if p)
    if node.negated and sql:
        # NULL-aware: a condition that is unknown (NULL) counts as false, so its
        # negation keeps the row, as Django's exclude() does.
        sql = f"NOT COALESCE(({sql}), FALSE)"
    return sql


def _and_group(st: _Statement, scope: _Scope, children: Sequence[Any]) -> str:
    flat: list[Any] = []

    def add(items: Sequence[Any]) -> None:
        for item in items:
            if isinstance(item, _Node) and item.connector == "AND" and not item.negated:
                add(item.children)
            else:
                flat.append(item)

    add(children)
    compiler = scope.compiler
    parts: list[str] = []
    groups: dict[str, list[_Leaf]] = {}
    for child in flat:
        if isinstance(child, _Node):
            parts.append(_node_sql(st, scope, child))
            continue
        head, sep, rest = child.key.partition("__")
        if child.key.endswith("__"):
            raise InvalidQueryError(
                f"criteria key {child.key!r} for {compiler.model_name} ends with '__' "
                f"(write {child.key.rstrip('_')}=... or {child.key}<lookup>=...)",
                model=compiler.model_name, field=head,
            )
        if head in compiler._columns:
            parts.append(_leaf_sql(st, scope, child, head, rest))
            continue
        compiler.relation(head)  # raises, listing the choices, when unknown
        if not sep or rest in LOOKUPS:
            raise InvalidQueryError(
                f"{compiler.model_name}.{head} is a relationship: filter on one of its "
                f"fields ({head}__<field>=...) instead of {child.key}",
                model=compiler.model_name, field=head,
            )
        groups.setdefault(head, []).append(_Leaf(child.pos, rest, child.shape))
    for head, leaves in groups.items():
        parts.append(_relation_sql(st, scope, compiler.relation(head), leaves))
    return " AND ".join(p for p in parts if p)


def _relation_sql(st: _Statement, scope: _Scope, hop: _Hop, leaves: list[_Leaf]) -> str:
    if hop.single:
        return _and_group(st, scope.join(st, hop), leaves)
    q = st.dialect.quote
    alias = st.alias()
    inner = _Scope(hop.target, alias, [], {})
    if hop.through is None:
        source = f"{q(hop.target.table)} AS {alias}"
        link = f"{alias}.{q(hop.remote)} = {scope.col(q(hop.local))}"
    else:
        middle = st.alias()
        source = (f"{q(hop.through.table)} AS {middle} JOIN {q(hop.target.table)} AS {alias} "
                  f"ON {alias}.{q(hop.target_pk)} = {middle}.{q(hop.target_key)}")
        link = f"{middle}.{q(hop.remote)} = {scope.col(q(hop.local))}"
    condition = _and_group(st, inner, leaves)
    tail = f" AND {condition}" if condition else ""
    return f"EXISTS (SELECT 1 FROM {source}{''.join(inner.joins)} WHERE {link}{tail})"


def _leaf_sql(st: _Statement, scope: _Scope, leaf: _Leaf, name: str, rest: str) -> str:
    compiler = scope.compiler
    entry = compiler.field(name)
    parts = rest.split("__") if rest else []
    kind = entry.spec.kind
    if kind == "json" and parts and (
        len(parts) > 1 or parts[0] not in LOOKUPS or parts[0] == "contains"
    ):
        return _json_sql(st, scope, leaf, entry, parts)
    if parts and parts[0] in DATE_PARTS:
        return _date_sql(st, scope, leaf, entry, parts)
    if len(parts) > 1 or (parts and parts[0] not in LOOKUPS):
        raise InvalidQueryError(
            f"{compiler.model_name}.{name} is not a relationship or a JSON field, so "
            f"{leaf.key!r} cannot go past it ({compiler._choices()}; "
            f"lookups: {', '.join(LOOKUPS)})",
            model=compiler.model_name, field=name,
        )
    target = _Target(
        compiler.model_name, name, scope.col(entry.quoted), scope.compared(entry),
        entry.spec.nullable, kind == "str",
        lambda value, lookup: compiler._compare_param(entry, value, lookup),
    )
    return _predicate(st, compiler, leaf, target, parts[0] if parts else "eq")


def _date_sql(st: _Statement, scope: _Scope, leaf: _Leaf, entry: _Field,
              parts: list[str]) -> str:
    compiler, name, part = scope.compiler, entry.spec.name, parts[0]
    kind = entry.spec.kind
    if kind not in _DATE_KINDS or (part == "date" and kind == "date"):
        need = "a datetime" if part == "date" else "a date or datetime"
        raise compiler._bad(name, part, f"needs {need} field ({name} is {kind})")
    if len(parts) > 2:
        raise compiler._bad(name, part, f"takes one lookup after it, got {'__'.join(parts[1:])}")
    family = st.dialect.family
    sql = date_part(family, kind, scope.col(entry.quoted), part)
    adapter: TypeAdapter[Any] = TypeAdapter(_dt.date) if part == "date" else TypeAdapter(int)
    iso = part == "date" and family == "sqlite"

    def bind(value: Any, lookup: str) -> Any:
        if isinstance(value, bool) or (part != "date" and isinstance(value, float)):
            raise compiler._bad(name, f"{part}__{lookup}", f"expects {adapter_name}, got {value!r}")
        try:
            checked = adapter.validate_python(value)
        except ValidationError as exc:
            raise compiler._bad(name, f"{part}__{lookup}",
                                f"expects {adapter_name}: {exc.errors()[0]['msg']}") from exc
        return checked.isoformat() if iso else checked

    adapter_name = "a date" if part == "date" else "an int"
    target = _Target(compiler.model_name, f"{name}__{part}", sql, sql, entry.spec.nullable,
                     False, bind)
    lookup = parts[1] if len(parts) > 1 else "eq"
    if lookup not in _COMPARISONS and lookup not in ("in", "not_in", "between", "isnull"):
        raise compiler._bad(name, f"{part}__{lookup}",
                            "supports eq ne lt lte gt gte in not_in between isnull")
    return _predicate(st, compiler, leaf, target, lookup)


def _predicate(st: _Statement, compiler: QueryCompiler, leaf: _Leaf, target: _Target,
               lookup: str) -> str:
    name, shape, index = target.name, leaf.shape, leaf.pos
    if lookup not in LOOKUPS:
        raise InvalidQueryError(
            f"unknown lookup {lookup!r} in {leaf.key} for {target.model} "
            f"(known: {', '.join(LOOKUPS)})",
            model=target.model, field=name,
        )
    p, col, bind = st.dialect.placeholder, target.compared, target.bind
    if lookup in _COMPARISONS:
        if shape is None:
            if lookup not in ("eq", "ne"):
                raise compiler._bad(name, lookup, "None can only be compared with eq or ne")
            return f"{target.raw} IS {'NOT ' if lookup == 'ne' else ''}NULL"
        st.bind(index, lambda v: [bind(v, lookup)])
        if lookup == "ne" and target.nullable:
            return f"({col} <> {p} OR {col} IS NULL)"
        return f"{col} {_COMPARISONS[lookup]} {p}"
    if lookup in ("in", "not_in", "between"):
        if not isinstance(shape, tuple):
            raise compiler._bad(name, lookup, "expects a list, tuple or set of values")
        size = shape[0]
        if lookup == "between":
            if size != 2:
                raise compiler._bad(name, lookup, "expects a (low, high) pair")
            st.bind(index, lambda v: [bind(x, lookup) for x in v])
            return f"{col} BETWEEN {p} AND {p}"
        if not size:
            return "1 = 0" if lookup == "in" else "1 = 1"
        return _in_list(st, compiler, target, index, lookup, size)
    if lookup == "isnull":
        if not isinstance(shape, bool):
            raise compiler._bad(name, lookup, "expects True or False")
        return f"{target.raw} IS {'' if shape else 'NOT '}NULL"
    return _text_predicate(st, compiler, leaf, target, lookup)


def _in_list(st: _Statement, compiler: QueryCompiler, target: _Target, index: int,
             lookup: str, size: int) -> str:
    """``col [NOT] IN (...)`` for any number of values: past :data:`LONG_IN` values
    PostgreSQL gets one array parameter (``= ANY``; it binds at most 65,535 parameters)
    and SQLite one JSON array (its parameter limit may be 32,766). ``not_in`` keeps NULLs,
    as ``ne`` does; a None among the values is refused (use ``isnull``)."""
    col, family, name, bind = target.compared, st.dialect.family, target.name, target.bind

    def values(v: Any) -> list[Any]:
        if any(x is None for x in v):
            raise compiler._bad(name, lookup, "cannot hold None (use isnull)")
        return [bind(x, lookup) for x in v]

    negate = lookup == "not_in"
    if size <= LONG_IN or family == "mysql":
        st.bind(index, values)
        sql = f"{col} {'NOT ' if negate else ''}IN ({st.dialect.params(size)})"
    elif family == "postgresql":
        st.bind(index, lambda v: [values(v)])
        sql = f"{col} <> ALL(%s)" if negate else f"{col} = ANY(%s)"
    else:
        def as_json(v: Any) -> list[Any]:
            found = values(v)
            if any(isinstance(x, bytes) for x in found):
                raise compiler._bad(name, lookup, f"takes at most {LONG_IN} bytes values")
            return [json.dumps(found)]

        st.bind(index, as_json)
        sql = f"{col} {'NOT ' if negate else ''}IN (SELECT value FROM json_each(?))"
    if negate and target.nullable:  # as ne: a NULL is not one of the values
        return f"({sql} OR {target.raw} IS NULL)"
    return sql


def _text_predicate(st: _Statement, compiler: QueryCompiler, leaf: _Leaf, target: _Target,
                    lookup: str) -> str:
    name, shape = target.name, leaf.shape
    if not target.text:
        raise compiler._bad(name, lookup, "text lookups need a str field")
    if shape not in ("s", ""):
        raise compiler._bad(name, lookup, f"expects a string, got {_shape_name(shape)}")
    col, p, dialect = target.raw, st.dialect.placeholder, st.dialect
    if lookup in ("like", "ilike", "iexact"):
        st.bind(leaf.pos, lambda v: [v])
        if lookup == "like":
            return f"{col} LIKE {p}"
        lower = dialect.lower  # Unicode folding on every backend (SQLite: a function)
        if lookup == "ilike":
            return f"{lower}({col}) LIKE {lower}({p})"
        return f"{lower}({col}) = {lower}({p})"
    if lookup in ("regex", "iregex"):
        insensitive = lookup == "iregex"

        def check(value: str) -> list[Any]:
            try:
                re.compile(value)
            except re.error as exc:
                raise compiler._bad(name, lookup, f"is not a valid regular expression: {exc}") \
                    from exc
            return [value]

        st.bind(leaf.pos, check)
        return regex(dialect.family, col, p, insensitive)
    prefix, suffix, insensitive = _TEXT_LOOKUPS[lookup]
    sql, _ = dialect.text_match(col, "x" if shape else "", prefix, suffix, insensitive)
    st.bind(leaf.pos, lambda v: dialect.text_match(col, v, prefix, suffix, insensitive)[1])
    return sql


# --- JSON -----------------------------------------------------------------------------

def _json_category(shape: Any) -> str | None:
    if shape in ("s", ""):
        return "string"
    if shape is True:
        return "true"
    if shape is False:
        return "false"
    if shape in (int, float, Decimal):
        return "number"
    return None


def _json_scalar(compiler: QueryCompiler, name: str, lookup: str, value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (str, int, float)):
        return value
    raise compiler._bad(name, lookup, f"compares str, int, float or bool values, got {value!r}")


def _json_sql(st: _Statement, scope: _Scope, leaf: _Leaf, entry: _Field,
              parts: list[str]) -> str:
    compiler, name = scope.compiler, entry.spec.name
    keys = list(parts)
    lookup = "eq"
    if keys[-1] in LOOKUPS or keys[-1] in _JSON_ONLY:
        lookup = keys.pop()
    for key in keys:
        if not _JSON_KEY.fullmatch(key):
            raise InvalidQueryError(
                f"{compiler.model_name}: JSON key {key!r} in {leaf.key} is not allowed "
                "(keys are letters, digits, _ and -)",
                model=compiler.model_name, field=name,
            )
    _check_json_keys(compiler, entry, keys, leaf.key)
    shown = "__".join([name, *keys])
    path = JsonPath(st.dialect.family, scope.col(entry.quoted), keys)
    shape, index, p = leaf.shape, leaf.pos, st.dialect.placeholder
    if lookup == "has_key":
        if shape != "s":
            raise compiler._bad(shown, lookup, f"expects a key name, got {_shape_name(shape)}")

        def key_param(value: str) -> list[Any]:
            if '"' in value or "\\" in value:
                raise compiler._bad(shown, lookup, f"key {value!r} contains a quote or backslash")
            return [path.child_param(value)]

        st.bind(index, key_param)
        return path.child(p)
    if lookup == "isnull":
        if not isinstance(shape, bool):
            raise compiler._bad(shown, lookup, "expects True or False")
        exists = path.is_("exists")
        return f"NOT COALESCE({exists}, FALSE)" if shape else exists
    category = _json_category(shape)
    if lookup == "contains":
        if category is None:
            raise compiler._bad(shown, lookup,
                                f"expects a str, int, float or bool, got {_shape_name(shape)}")
        st.bind(index, lambda v: path.element_param(_json_scalar(compiler, shown, lookup, v)))
        member = path.has_element(category, p)
        if category != "string":
            return member
        text = path.text()
        sql, _ = st.dialect.text_match(text, "x" if shape else "", True, True, False)
        st.bind(index, lambda v: st.dialect.text_match(text, v, True, True, False)[1])
        return f"({member} OR {sql})"
    if shape is None and lookup in ("eq", "ne"):
        null = path.is_("null")
        return null if lookup == "eq" else f"NOT COALESCE({null}, FALSE)"
    if category in ("true", "false"):
        if lookup not in ("eq", "ne"):
            raise compiler._bad(shown, lookup, "booleans compare with eq or ne only")
        test = path.is_(category)
        return test if lookup == "eq" else f"NOT COALESCE({test}, FALSE)"
    if isinstance(shape, tuple):
        category = {"s": "string", "n": "number"}.get(shape[1]) if shape[0] else "string"
        if category is None:
            raise compiler._bad(shown, lookup, "expects all strings or all numbers")
    if category not in ("string", "number"):
        raise compiler._bad(shown, lookup,
                            f"compares str, int, float, bool or None, got {_shape_name(shape)}")
    expr = path.text() if category == "string" else path.number()
    target = _Target(compiler.model_name, shown, expr, expr, True, category == "string",
                     lambda v, lk: _json_scalar(compiler, shown, lk, v))
    if category == "number" and lookup not in (*_COMPARISONS, "in", "not_in", "between"):
        raise compiler._bad(shown, lookup, "expects a string (numbers support eq ne lt lte gt gte "
                                            "in not_in between)")
    return _predicate(st, compiler, leaf, target, lookup)


def _check_json_keys(compiler: QueryCompiler, entry: _Field, keys: list[str],
                     shown: str) -> None:
    """Keys into a nested model must be its fields (further down, anything goes)."""
    from registers.db.typing_utils import unwrap_annotation

    current: Any = entry.spec.python_type
    for key in keys:
        current = unwrap_annotation(current)
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return
        info = current.model_fields.get(key)
        if info is None:
            raise InvalidQueryError(
                f"{compiler.model_name}: {shown}: {current.__name__} has no field {key!r} "
                f"(fields: {', '.join(current.model_fields)})",
                model=compiler.model_name, field=entry.spec.name,
            )
        current = info.annotation


# --- ORDER BY, selected paths, LIMIT ----------------------------------------------------

def _path(st: _Statement, scope: _Scope, item: str, where: str) -> tuple[str, _Field, _Scope]:
    """A field name or ``relation__...__field`` through single-valued relations."""
    name = item
    while True:
        compiler = scope.compiler
        head, sep, rest = name.partition("__")
        if head in compiler._columns:
            if sep:
                raise InvalidQueryError(
                    f"{where} {item!r}: {compiler.model_name}.{head} is a field, not a "
                    f"relationship ({compiler._choices()})",
                    model=compiler.model_name, field=head,
                )
            entry = compiler.field(head)
            return scope.col(entry.quoted), entry, scope
        hop = compiler.relation(head)
        if not sep:
            raise InvalidQueryError(
                f"{where} {item!r}: {compiler.model_name}.{head} is a relationship; name one "
                f"of its fields ({head}__<field>)",
                model=compiler.model_name, field=head,
            )
        if not hop.single:
            raise InvalidQueryError(
                f"{where} {item!r}: {compiler.model_name}.{head} is a to-many relationship; "
                "it would repeat rows (only BelongsTo relations can be followed here)",
                model=compiler.model_name, field=head,
            )
        scope = scope.join(st, hop)
        name = rest


def _order_sql(st: _Statement, scope: _Scope, items: list[Any],
               reverse: bool) -> tuple[str, list[str]]:
    parts: list[str] = []
    exprs: list[str] = []
    for item in items:
        if not isinstance(item, str) or not item.removeprefix("-"):
            raise InvalidQueryError(f"order_by entries must be field names, got {item!r}")
        descending = item.startswith("-")
        _, entry, owner = _path(st, scope, item.removeprefix("-"), "order_by")
        expr = owner.compared(entry)
        exprs.append(expr)
        if reverse:
            descending = not descending
        # one NULL rule on every backend (see QueryCompiler.order_sql)
        if st.dialect.family == "postgresql":
            parts.append(f"{expr} DESC NULLS LAST" if descending else f"{expr} NULLS FIRST")
        else:
            parts.append(f"{expr}{' DESC' if descending else ''}")
    return (" ORDER BY " + ", ".join(parts) if parts else ""), exprs


# The largest LIMIT/OFFSET every backend accepts (a signed 64-bit integer).
MAX_LIMIT = 2**63 - 1


def check_window(limit: Any, offset: Any) -> None:
    for name, value in (("limit", limit), ("offset", offset)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int)
            or not 0 <= value <= MAX_LIMIT
        ):
            raise InvalidQueryError(
                f"{name} must be an int from 0 to {MAX_LIMIT} (2**63 - 1, what every "
                f"backend accepts), got {value!r}")


def _limit_sql(limit: int | None, offset: int | None) -> str:
    if limit is None and not offset:
        return ""
    check_window(limit, offset)
    sql = f" LIMIT {int(2**62 if limit is None else limit)}"
    return f"{sql} OFFSET {int(offset)}" if offset else sql


def _same_database(a: QueryCompiler, b: QueryCompiler) -> bool:
    from registers.db.relations import _manager

    if a.model is None or b.model is None:
        return False
    return _manager(a.model, "owner").database is _manager(b.model, "target").database
