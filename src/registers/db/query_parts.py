"""The pieces a filter is compiled from: the lookups, a filter tree's leaves and nodes,
the fields, relation hops and join scopes of one statement being compiled.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from itertools import count
from typing import TYPE_CHECKING, Any, NamedTuple

from pydantic import TypeAdapter

if TYPE_CHECKING:
    from registers.db.dialects import Dialect
    from registers.db.typing_utils import ColumnSpec


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


class _Leaf(NamedTuple):
    pos: int
    key: str
    shape: Any


class _Node(NamedTuple):
    connector: str  # AND, OR, or GROUP (AND of separate filter calls)
    negated: bool
    children: tuple[Any, ...]


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
    target: Any
    local: str  # the owner's column the relation starts from
    remote: str  # the column of the target (BelongsTo, HasMany) or through model it meets
    through: Any | None = None
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

    def __init__(self, compiler: Any, ref: str | None, joins: list[str],
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
