"""Criteria -> SQL: Django-style lookups, ``order_by``, and ``F`` expressions.

``field=value`` is equality (``None`` means IS NULL); ``field__op=value`` applies one of
:data:`LOOKUPS`. Values are validated against the field's type before any SQL runs, so
``filter(age="old")`` is an :class:`InvalidQueryError`, never a silent mismatch.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError

from registers.db.exceptions import InvalidQueryError

if TYPE_CHECKING:
    from registers.db.dialects import Dialect
    from registers.db.typing_utils import ColumnSpec

__all__ = ["LOOKUPS", "Expression", "F", "QueryCompiler"]

LOOKUPS = (
    "eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in", "like", "ilike",
    "contains", "icontains", "startswith", "endswith", "isnull", "between",
)
# ``IN`` lists longer than this are sent as one array parameter (see QueryCompiler._in_list).
LONG_IN = 5000
_COMPARISONS = {"eq": "=", "ne": "<>", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}
# lookup -> (prefix wildcard, suffix wildcard, case-insensitive)
_TEXT_LOOKUPS = {
    "contains": (True, True, False),
    "icontains": (True, True, True),
    "startswith": (False, True, False),
    "endswith": (True, False, False),
}


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


class QueryCompiler:
    """Builds WHERE / ORDER BY / SET clauses for one table."""

    def __init__(
        self, model_name: str, table: str, columns: Sequence[ColumnSpec], dialect: Dialect
    ) -> None:
        self.model_name = model_name
        self.table = table
        self.dialect = dialect
        self._columns = {c.name: c for c in columns}
        self._fields: dict[str, _Field] = {}

    def field(self, name: str) -> _Field:
        cached = self._fields.get(name)
        if cached is not None:
            return cached
        spec = self._columns.get(name)
        if spec is None:
            raise InvalidQueryError(
                f"{self.model_name} has no field {name!r} (fields: {', '.join(self._columns)})",
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
        )
        self._fields[name] = entry
        return entry

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

    # --- WHERE ----------------------------------------------------------------------

    def where(self, criteria: Mapping[str, Any]) -> tuple[str, list[Any]]:
        """`` WHERE ...`` (or ``""``) and its parameters."""
        if not criteria:
            return "", []
        clauses: list[str] = []
        params: list[Any] = []
        for key, value in criteria.items():
            name, separator, lookup = key.partition("__")
            if separator and not lookup:
                raise InvalidQueryError(
                    f"criteria key {key!r} for {self.model_name} ends with '__' "
                    f"(write {name}=... or {name}__<lookup>=...)",
                    model=self.model_name, field=name,
                )
            clauses.append(self._predicate(name, lookup or "eq", value, params))
        return " WHERE " + " AND ".join(clauses), params

    def _predicate(self, name: str, lookup: str, value: Any, params: list[Any]) -> str:
        if lookup not in LOOKUPS:
            raise InvalidQueryError(
                f"unknown lookup {lookup!r} in {name}__{lookup} for {self.model_name} "
                f"(known: {', '.join(LOOKUPS)})",
                model=self.model_name,
                field=name,
            )
        entry = self.field(name)
        col, p = entry.compared, self.dialect.placeholder
        if lookup in _COMPARISONS:
            if value is None:
                if lookup not in ("eq", "ne"):
                    raise self._bad(name, lookup, "None can only be compared with eq or ne")
                return f"{entry.quoted} IS {'NOT ' if lookup == 'ne' else ''}NULL"
            params.append(self._compare_param(entry, value, lookup))
            if lookup == "ne" and entry.spec.nullable:
                return f"({col} <> {p} OR {col} IS NULL)"
            return f"{col} {_COMPARISONS[lookup]} {p}"
        if lookup in ("in", "not_in"):
            values = self._sequence(name, lookup, value)
            if not values:
                return "1 = 0" if lookup == "in" else "1 = 1"
            if any(v is None for v in values):
                raise self._bad(name, lookup, "cannot hold None (use isnull)")
            return self._in_list(entry, lookup, [
                self._compare_param(entry, v, lookup) for v in values], params)
        if lookup == "isnull":
            if not isinstance(value, bool):
                raise self._bad(name, lookup, "expects True or False")
            return f"{entry.quoted} IS {'' if value else 'NOT '}NULL"
        if lookup == "between":
            bounds = self._sequence(name, lookup, value)
            if len(bounds) != 2:
                raise self._bad(name, lookup, "expects a (low, high) pair")
            params.extend(self._compare_param(entry, v, lookup) for v in bounds)
            return f"{col} BETWEEN {p} AND {p}"
        return self._text_predicate(entry, lookup, value, params)

    def _in_list(self, entry: _Field, lookup: str, values: list[Any],
                 params: list[Any]) -> str:
        """``col [NOT] IN (...)`` for any number of values: past :data:`LONG_IN` values
        PostgreSQL gets one array parameter (``= ANY``; it binds at most 65,535
        parameters) and SQLite one JSON array (its parameter limit may be 32,766)."""
        col, family = entry.compared, self.dialect.family
        negate = lookup == "not_in"
        if len(values) <= LONG_IN or family == "mysql" or (
                family == "sqlite" and any(isinstance(v, bytes) for v in values)):
            params.extend(values)
            sql = f"{col} {'NOT ' if negate else ''}IN ({self.dialect.params(len(values))})"
        elif family == "postgresql":
            params.append(values)
            sql = f"{col} <> ALL(%s)" if negate else f"{col} = ANY(%s)"
        else:
            params.append(json.dumps(values))
            sql = f"{col} {'NOT ' if negate else ''}IN (SELECT value FROM json_each(?))"
        if negate and entry.spec.nullable:  # as ne: a NULL is not one of the values
            return f"({sql} OR {entry.quoted} IS NULL)"
        return sql

    def _text_predicate(self, entry: _Field, lookup: str, value: Any, params: list[Any]) -> str:
        name = entry.spec.name
        if entry.spec.kind != "str":
            raise self._bad(name, lookup, "text lookups need a str field")
        if not isinstance(value, str):
            raise self._bad(name, lookup, f"expects a string, got {type(value).__name__}")
        col, p = entry.quoted, self.dialect.placeholder
        if lookup == "like":
            params.append(value)
            return f"{col} LIKE {p}"
        if lookup == "ilike":
            params.append(value)
            return f"{self.dialect.lower}({col}) LIKE {self.dialect.lower}({p})"
        prefix, suffix, insensitive = _TEXT_LOOKUPS[lookup]
        sql, extra = self.dialect.text_match(col, value, prefix, suffix, insensitive)
        params.extend(extra)
        return sql

    def _compare_param(self, entry: _Field, value: Any, lookup: str) -> Any:
        if entry.compare_param is None:
            return self.coerce(entry, value, lookup)
        self.coerce(entry, value, lookup)  # validates, raising InvalidQueryError
        return entry.compare_param(entry.adapter.validate_python(value))

    def _sequence(self, name: str, lookup: str, value: Any) -> list[Any]:
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            raise self._bad(name, lookup, "expects a list, tuple or set of values")
        return list(value)

    def _bad(self, name: str, lookup: str, why: str) -> InvalidQueryError:
        return InvalidQueryError(
            f"{self.model_name}: {name}__{lookup} {why}", model=self.model_name, field=name
        )

    # --- ORDER BY -------------------------------------------------------------------

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
