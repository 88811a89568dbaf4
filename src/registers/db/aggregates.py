"""Aggregates: ``Count``, ``Sum``, ``Avg``, ``Min``, ``Max``, and what each one is in SQL.

``User.objects.where(active=True).aggregate(n=Count("id"), total=Sum("score"))`` and
``User.objects.values("role").annotate(n=Count("id"))`` name their aggregates with these
classes. This module validates an aggregate against a model (its field exists and has a
type the function takes) and resolves it into an :class:`Output`: the SQL it selects, the
SQL it is compared and ordered by (``HAVING``, ``order_by``), and how the selected values
become the Python result. :mod:`registers.db.grouping` builds the statements.

Results have one type on every backend: ``Count`` an ``int``; ``Sum``, ``Min`` and
``Max`` the field's type (an int field sums to an ``int``, a Decimal field to an exact
``Decimal``); ``Avg`` a ``float``, or a ``Decimal`` for a Decimal field. ``Avg`` is the
exact sum divided by the count in Python, so MariaDB's four decimal places and
PostgreSQL's ``numeric`` scale never show. SQLite keeps Decimal as exact text: its sums,
minimums and maximums go through ``registers_decimal_agg`` (Python's ``Decimal``), never
through SQLite's floating point.

A to-many relation (``Count("posts")``, ``Sum("posts__score")``) is aggregated per row of
the model first (see :class:`Derived`: a correlated subquery when its link column is
indexed, else one derived table), so rows never multiply: a ``Sum`` over the model's own
field next to a ``Count`` over a relation is exact (Django's single join would count each
row once per related row).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal
from typing import Any, ClassVar

from pydantic import TypeAdapter, ValidationError

from registers.db.exceptions import InvalidQueryError
from registers.db.filter_sql import _path, to_many_source
from registers.db.query_parts import _Field, _Hop, _Scope, _Statement, _Target

__all__ = ["Aggregate", "Avg", "Count", "Max", "Min", "Output", "Sum", "aggregates_of"]

_NUMERIC = ("int", "float", "decimal")
_ORDERED = ("int", "float", "decimal", "str", "string_like", "date", "datetime",
            "naive_datetime", "time")
_FLOAT_TYPES = {"sqlite": "REAL", "postgresql": "DOUBLE PRECISION", "mysql": "DOUBLE"}


class Aggregate:
    """An aggregate over one field: ``Count("id")``, ``Sum("score", distinct=True)``.

    ``field`` is a field of the model, a path through ``BelongsTo`` relations
    (``"author__score"``), or a to-many relation, alone (``Count("posts")`` counts the
    related rows) or with one of its model's fields (``Sum("posts__score")``).
    """

    function: ClassVar[str] = ""
    allows_distinct: ClassVar[bool] = True
    __slots__ = ("distinct", "field")

    def __init__(self, field: str, *, distinct: bool = False) -> None:
        name = type(self).__name__
        if not isinstance(field, str) or not field:
            raise InvalidQueryError(f"{name}() takes a field name, got {field!r}")
        if not isinstance(distinct, bool):
            raise InvalidQueryError(f"{name}(distinct=...) takes True or False, got {distinct!r}")
        if distinct and not self.allows_distinct:
            raise InvalidQueryError(f"{name}() does not take distinct=True (the minimum and "
                                    "maximum of distinct values are the same)")
        self.field = field
        self.distinct = distinct

    @property
    def default_alias(self) -> str:
        """The result's name when passed positionally: ``Count("id")`` -> ``id__count``."""
        return f"{self.field}__{self.function.lower()}"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and (
            (self.field, self.distinct) == (other.field, other.distinct))

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.field, self.distinct))

    def __repr__(self) -> str:
        distinct = ", distinct=True" if self.distinct else ""
        return f"{type(self).__name__}({self.field!r}{distinct})"


class Count(Aggregate):
    """How many values are not NULL (``distinct=True``: how many different ones); 0 when
    there are none."""

    function = "COUNT"
    __slots__ = ()


class Sum(Aggregate):
    """The sum of an int, float or Decimal field (None when there are no values)."""

    function = "SUM"
    __slots__ = ()


class Avg(Aggregate):
    """The mean of an int, float or Decimal field: a float, or a Decimal for a Decimal
    field (None when there are no values)."""

    function = "AVG"
    __slots__ = ()


class Min(Aggregate):
    """The smallest value (numbers, text, dates, datetimes, times); None when there are
    none."""

    function = "MIN"
    allows_distinct = False
    __slots__ = ()


class Max(Aggregate):
    """The largest value (numbers, text, dates, datetimes, times); None when there are
    none."""

    function = "MAX"
    allows_distinct = False
    __slots__ = ()


def aggregates_of(action: str, args: Sequence[Any],
                  named: dict[str, Any]) -> tuple[tuple[str, Aggregate], ...]:
    """``(name, aggregate)`` pairs of an ``aggregate()`` / ``annotate()`` call, positional
    ones named by their :attr:`~Aggregate.default_alias`."""
    pairs: list[tuple[str, Aggregate]] = []
    for arg in args:
        if not isinstance(arg, Aggregate):
            raise InvalidQueryError(
                f"{action}() takes aggregates (Count, Sum, Avg, Min, Max), got "
                f"{type(arg).__name__} {arg!r}")
        pairs.append((arg.default_alias, arg))
    for name, value in named.items():
        if not isinstance(value, Aggregate):
            raise InvalidQueryError(
                f"{action}({name}=...) takes an aggregate (Count, Sum, Avg, Min, Max), got "
                f"{type(value).__name__} {value!r}")
        pairs.append((name, value))
    if not pairs:
        raise InvalidQueryError(
            f"{action}() needs at least one aggregate, e.g. {action}(n=Count(\"id\"))")
    names = [name for name, _ in pairs]
    for name in names:
        if names.count(name) > 1:
            raise InvalidQueryError(f"{action}() names {name!r} twice")
    return tuple(pairs)


# --- resolving an aggregate against a model ---------------------------------------------

@dataclass(frozen=True)
class Output:
    """One resolved aggregate: what it selects, how it compares, how it reads."""

    name: str
    selects: tuple[str, ...]
    compared: str
    read: Callable[..., Any]
    target: _Target


@dataclass
class Derived:
    """The per-row aggregates of one to-many relation. When the column linking the
    related rows is indexed, each is a correlated subquery (``(SELECT COUNT(...) FROM
    posts WHERE posts.author_id = authors.id)``: an index probe per row, so a filtered
    query reads only its rows' children); otherwise one derived table aggregates every
    related row once (``LEFT JOIN (SELECT key, aggregates FROM target GROUP BY key)``),
    instead of a full scan per row."""

    hop: _Hop
    alias: str
    inner: str
    columns: list[str]
    correlated: bool

    def column(self, st: _Statement, scope: _Scope, sql: str) -> str:
        q = st.dialect.quote
        if self.correlated:
            source, link = to_many_source(st, self.hop, self.inner)
            return f"(SELECT {sql} FROM {source} WHERE {link} = {scope.col(q(self.hop.local))})"
        name = f"a{len(self.columns)}"
        self.columns.append(f"{sql} AS {q(name)}")
        return f"{self.alias}.{q(name)}"

    def join(self, st: _Statement, scope: _Scope) -> str:
        if self.correlated:
            return ""
        q, hop = st.dialect.quote, self.hop
        key = q("k")
        source, link = to_many_source(st, hop, self.inner)
        return (f" LEFT JOIN (SELECT {link} AS {key}, {', '.join(self.columns)} FROM {source} "
                f"GROUP BY {link}) AS {self.alias} ON {self.alias}.{key} = "
                f"{scope.col(q(hop.local))}")


def _link_indexed(hop: _Hop) -> bool:
    """Whether an index of the table holding the link column starts with it (declared:
    the key, ``unique_fields``, ``indexes``, ``db_field(unique=/index=)``; on MySQL and
    MariaDB a ``foreign_key`` too, which InnoDB indexes)."""
    from registers.db.relations import _manager

    holder = hop.through if hop.through is not None else hop.target
    config = _manager(holder.model, "target").config
    column = hop.remote
    if column == config.key_field:
        return True
    if any(group[0] == column for group in (*config.unique_sets, *config.index_sets)):
        return True
    spec = holder._columns[column]
    return holder.dialect.family == "mysql" and bool(spec.options.foreign_key)


def resolve(st: _Statement, scope: _Scope, name: str, agg: Aggregate,
            derived: dict[str, Derived]) -> Output:
    """``agg`` as SQL on ``scope``'s table (to-many relations add to ``derived``)."""
    try:
        expr, entry, owner, hop = _source(st, scope, agg)
    except InvalidQueryError as exc:
        raise InvalidQueryError(f"{agg!r}: {exc}", model=scope.compiler.model_name,
                                field=agg.field) from None
    kind = entry.spec.kind
    wanted = _NUMERIC if isinstance(agg, (Sum, Avg)) else _ORDERED if isinstance(
        agg, (Min, Max)) else None
    if wanted is not None and kind not in wanted:
        what = ("an int, float or Decimal field" if wanted is _NUMERIC
                else "a number, text, date, datetime or time field")
        raise InvalidQueryError(
            f"{agg!r}: {owner.model_name}.{entry.spec.name} is "
            f"{'an' if kind in ('int', 'enum') else 'a'} {kind} field; "
            f"{type(agg).__name__} needs {what}",
            model=scope.compiler.model_name, field=agg.field)
    sql = _Sql(st.dialect.family, kind, agg.distinct)
    if hop is None:
        selects, compared = sql.direct(agg, expr)
    else:
        selects, compared = _composed(st, scope, agg, hop, entry, sql, derived)
    return Output(name, selects, compared, _reader(agg, owner, entry),
                  _target(scope.compiler, name, agg, owner, entry, compared))


def _source(st: _Statement, scope: _Scope, agg: Aggregate) -> tuple[str, _Field, Any,
                                                                     _Hop | None]:
    """The aggregated column: (SQL, field, its compiler, to-many hop or None)."""
    compiler = scope.compiler
    head, sep, rest = agg.field.partition("__")
    if head in compiler._columns or not compiler.is_relation(head):
        expr, entry, owner = _path(st, scope, agg.field, "aggregate")
        return expr, entry, owner.compiler, None
    hop = compiler.relation(head)
    if hop.single:
        if not sep:  # Count("author"): the rows that have one
            entry = compiler.field(hop.local)
            return scope.col(entry.quoted), entry, compiler, None
        expr, entry, owner = _path(st, scope, agg.field, "aggregate")
        return expr, entry, owner.compiler, None
    target = hop.target
    if "__" in rest:
        raise InvalidQueryError(
            f"{compiler.model_name}.{head} is a to-many relationship: aggregate one of its "
            f"fields ({head}__<field>), not a path beyond it")
    rows = isinstance(agg, Count) and rest in ("", target.key) and hop.through is None
    if agg.distinct and not rows:
        raise InvalidQueryError(
            f"distinct=True across the to-many relationship {compiler.model_name}.{head} is "
            "not supported (only Count of the related rows themselves)")
    entry = target.field(rest or target.key)
    return "", entry, target, hop


class _Sql:
    """The SQL of each function for one backend and one kind of field."""

    def __init__(self, family: str, kind: str, distinct: bool) -> None:
        self.family = family
        self.text_decimal = kind == "decimal" and family == "sqlite"
        self.distinct = distinct
        self.float = _FLOAT_TYPES[family]

    def count(self, expr: str) -> str:
        if self.text_decimal and self.distinct:  # 1.0 and 1.00 are one value
            return f"registers_decimal_agg('count_distinct', group_concat({expr}))"
        return f"COUNT({'DISTINCT ' if self.distinct else ''}{expr})"

    def plain(self, function: str, expr: str) -> str:
        """SUM / MIN / MAX of ``expr`` (exact Decimal text on SQLite)."""
        if self.text_decimal:
            op = function.lower() + ("_distinct" if self.distinct else "")
            return f"registers_decimal_agg('{op}', group_concat({expr}))"
        return f"{function}({'DISTINCT ' if self.distinct else ''}{expr})"

    def compared(self, sql: str) -> str:
        return f"CAST({sql} AS REAL)" if self.text_decimal else sql

    def mean(self, total: str, count: str) -> str:
        return f"(CAST({total} AS {self.float}) / NULLIF({count}, 0))"

    def direct(self, agg: Aggregate, expr: str) -> tuple[tuple[str, ...], str]:
        if isinstance(agg, Count):
            sql = self.count(expr)
            return (sql,), sql
        if isinstance(agg, Avg):
            total, count = self.plain("SUM", expr), self.count(expr)
            return (total, count), self.mean(total, count)
        sql = self.plain(agg.function, expr)
        return (sql,), self.compared(sql)


def _composed(st: _Statement, scope: _Scope, agg: Aggregate, hop: _Hop, entry: _Field,
              sql: _Sql, derived: dict[str, Derived]) -> tuple[tuple[str, ...], str]:
    """An aggregate over a to-many relation: per row in the derived table, then over the
    rows of the group (a count is the sum of the counts, a mean the sum of the sums over
    the sum of the counts)."""
    table = derived.get(hop.name)
    if table is None:
        table = derived[hop.name] = Derived(hop, st.alias(), st.alias(), [],
                                            _link_indexed(hop))
    column = f"{table.inner}.{entry.quoted}"
    sql.distinct = False  # only Count of the related rows, which are distinct per row
    outer = _Sql(sql.family, entry.spec.kind, False)
    if isinstance(agg, Count):
        total = f"COALESCE(SUM({table.column(st, scope, sql.count(column))}), 0)"
        return (total,), total
    if isinstance(agg, Avg):
        total = outer.plain("SUM", table.column(st, scope, sql.plain("SUM", column)))
        count = f"COALESCE(SUM({table.column(st, scope, sql.count(column))}), 0)"
        return (total, count), outer.mean(total, count)
    function = "SUM" if isinstance(agg, Sum) else agg.function
    value = outer.plain(function, table.column(st, scope, sql.plain(function, column)))
    return (value,), outer.compared(value)


def _reader(agg: Aggregate, owner: Any, entry: _Field) -> Callable[..., Any]:
    kind = entry.spec.kind
    if isinstance(agg, Count):
        return _as_int
    if isinstance(agg, Sum):
        return _as_int if kind == "int" else _as_float if kind == "float" else _as_decimal
    if isinstance(agg, Avg):
        return _decimal_mean if kind == "decimal" else _int_mean if kind == "int" else \
            _float_mean
    read: Callable[[Any], Any] = owner.reader(entry)
    return read


def _as_int(value: Any) -> int | None:
    if type(value) is int or value is None:
        return value
    return int(value)  # PostgreSQL and MariaDB sum integers into a Decimal


def _as_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _as_decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, Decimal):
        return value
    return Decimal(str(value))


def _int_mean(total: Any, count: Any) -> float | None:
    if total is None or not count:
        return None
    # the exact integer sum (PostgreSQL and MariaDB return it as a Decimal), divided once:
    # the same correctly rounded float on every backend
    return int(total) / int(count)


def _float_mean(total: Any, count: Any) -> float | None:
    if total is None or not count:
        return None
    return float(total) / int(count)


def _decimal_mean(total: Any, count: Any) -> Decimal | None:
    if total is None or not count:
        return None
    return Decimal(str(total)) / Decimal(int(count))


# --- HAVING: comparing an annotation with a value ---------------------------------------

_INT: TypeAdapter[Any] = TypeAdapter(int)
_NUMBER: TypeAdapter[Any] = TypeAdapter(int | float)
_DECIMAL: TypeAdapter[Any] = TypeAdapter(Decimal)


def _target(compiler: Any, name: str, agg: Aggregate, owner: Any, entry: _Field,
            compared: str) -> _Target:
    kind = entry.spec.kind
    text_decimal = kind == "decimal" and compiler.dialect.family == "sqlite"
    if isinstance(agg, Count):
        adapter = _INT
    elif isinstance(agg, (Sum, Avg)):
        adapter = _DECIMAL if kind == "decimal" else _NUMBER
    else:
        def field_value(value: Any, lookup: str) -> Any:
            _refuse_bool(compiler, name, lookup, value)
            try:
                return owner._compare_param(entry, value, lookup)
            except InvalidQueryError as exc:
                raise compiler._bad(name, lookup, f"takes a {kind} value: {exc}") from None

        return _Target(compiler.model_name, name, compared, compared, True,
                       kind in ("str", "string_like"), field_value)

    def number(value: Any, lookup: str) -> Any:
        _refuse_bool(compiler, name, lookup, value)
        try:
            checked = adapter.validate_python(value)
        except ValidationError as exc:
            raise compiler._bad(name, lookup, f"takes a number: {exc.errors()[0]['msg']}") \
                from None
        return float(checked) if text_decimal else checked

    return _Target(compiler.model_name, name, compared, compared, not isinstance(agg, Count),
                   False, number)


def _refuse_bool(compiler: Any, name: str, lookup: str, value: Any) -> None:
    if isinstance(value, bool):
        raise compiler._bad(name, lookup, f"takes a number, got {value!r}")


# --- registers_decimal_agg: SQLite's exact Decimal aggregates --------------------------

_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)


def sqlite_decimal_aggregate(op: str, joined: Any) -> Any:
    """``registers_decimal_agg(op, group_concat(x))``: an exact aggregate of SQLite's
    Decimal text (``sum``, ``min``, ``max``, ``sum_distinct``, ``count_distinct``)."""
    if joined is None:
        return 0 if op == "count_distinct" else None
    texts = str(joined).split(",")
    if op in ("min", "max"):
        pick = min if op == "min" else max
        return pick(texts, key=Decimal)  # the stored text itself
    values = [Decimal(text) for text in texts]
    if op.endswith("_distinct"):
        values = list(set(values))  # Decimal("1.0") == Decimal("1.00")
        if op == "count_distinct":
            return len(values)
    total = Decimal(0)
    for value in values:
        total = _EXACT.add(total, value)
    return str(total)
