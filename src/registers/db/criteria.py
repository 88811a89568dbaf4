"""What a filter says, values aside: ``F`` expressions, ``Q`` trees, and the *shape* of a
filter (the keys, lookups, which values are None, how many values an ``in`` has), which
decides its SQL (:class:`Compiled`, cached per shape by the compiler).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from registers.db.exceptions import InvalidQueryError
from registers.db.query_parts import (
    Binder,
    _Leaf,
    _Node,
)

if TYPE_CHECKING:
    pass


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
        if not other:  # holds no condition (Q(), Q(Q())): as Django, the other side alone
            return self
        if not self:
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
        """Whether this Q holds a condition at all: ``Q()``, ``Q(Q())``, ``~Q()`` and
        ``Q() | Q()`` do not (they compile to no WHERE), so ``update_where`` and
        ``delete_where`` refuse them as they refuse ``{}``."""
        return any(not isinstance(c, Q) or bool(c) for c in self.children)


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
            if child:  # a Q holding no condition adds none (not an always-true term)
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
        if arg:
            children.append(_q_shape(arg, values))
    for key, value in criteria.items():
        children.append((key, _value_shape(value, values)))
    return ("AND", False, tuple(children))


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
    # the model's own fields the WHERE reads (None: it follows a relation)
    reads: frozenset[str] | None
    statements: dict[Any, str] = field(default_factory=dict)

    def params(self, values: Sequence[Any]) -> list[Any]:
        params: list[Any] = []
        for index, bind in self.binders:
            params.extend(bind(values[index]))
        return params


def _is_zero(value: Any) -> bool:
    return not isinstance(value, (Expression, bool)) and isinstance(
        value, (int, float, Decimal)) and value == 0
