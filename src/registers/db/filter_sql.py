"""A filter tree compiled into SQL: AND/OR/NOT groups, predicates per lookup, relation
joins and ``EXISTS``, JSON key paths, date parts, ORDER BY paths and LIMIT/OFFSET.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from registers.db.exceptions import InvalidQueryError
from registers.db.lookup_sql import DATE_PARTS, JsonPath, date_part, regex
from registers.db.query_parts import (
    _COMPARISONS,
    _DATE_KINDS,
    _JSON_KEY,
    _JSON_ONLY,
    _TEXT_LOOKUPS,
    LONG_IN,
    LOOKUPS,
    _Field,
    _Hop,
    _Leaf,
    _Node,
    _Scope,
    _shape_name,
    _Statement,
    _Target,
)

if TYPE_CHECKING:
    pass


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
    alias = st.alias()
    inner = _Scope(hop.target, alias, [], {})
    source, column = to_many_source(st, hop, alias)
    link = f"{column} = {scope.col(st.dialect.quote(hop.local))}"
    condition = _and_group(st, inner, leaves)
    tail = f" AND {condition}" if condition else ""
    return f"EXISTS (SELECT 1 FROM {source}{''.join(inner.joins)} WHERE {link}{tail})"


def to_many_source(st: _Statement, hop: _Hop, alias: str) -> tuple[str, str]:
    """The FROM of a to-many relation's rows (the target ``AS alias``, joined to the
    through table for HasManyThrough) and the column that links them to the owner."""
    q = st.dialect.quote
    if hop.through is None:
        return f"{q(hop.target.table)} AS {alias}", f"{alias}.{q(hop.remote)}"
    middle = st.alias()
    source = (f"{q(hop.through.table)} AS {middle} JOIN {q(hop.target.table)} AS {alias} "
              f"ON {alias}.{q(hop.target_pk)} = {middle}.{q(hop.target_key)}")
    return source, f"{middle}.{q(hop.remote)}"


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


def _predicate(st: _Statement, compiler: Any, leaf: _Leaf, target: _Target,
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


def _in_list(st: _Statement, compiler: Any, target: _Target, index: int,
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


def _text_predicate(st: _Statement, compiler: Any, leaf: _Leaf, target: _Target,
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


def _json_scalar(compiler: Any, name: str, lookup: str, value: Any) -> Any:
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


def _check_json_keys(compiler: Any, entry: _Field, keys: list[str],
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
                f"{name} must be a non-negative int no larger than 2**63 - 1 (what every "
                f"backend accepts), got {value!r}")


def _limit_sql(limit: int | None, offset: int | None) -> str:
    if limit is None and not offset:
        return ""
    check_window(limit, offset)
    sql = f" LIMIT {int(2**62 if limit is None else limit)}"
    return f"{sql} OFFSET {int(offset)}" if offset else sql


def _same_database(a: Any, b: Any) -> bool:
    from registers.db.relations import _manager

    if a.model is None or b.model is None:
        return False
    return _manager(a.model, "owner").database is _manager(b.model, "target").database
