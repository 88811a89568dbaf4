"""The statements of ``aggregate()`` and of grouped queries (``values(...).annotate(...)``).

``aggregate()`` is one ``SELECT`` of aggregates over the filtered rows. A grouped query
is ``SELECT <values() fields>, <aggregates> ... GROUP BY <values() fields>``; a
``where()`` after ``annotate()`` naming annotations is its ``HAVING``, and ``order_by``
may name annotations. Groups come in one order on every backend: after the given
``order_by``, the ``values()`` fields break ties (ascending), with one NULL rule (NULLs
first ascending, last descending). Statements are compiled once per shape and cached on
the table's :class:`~registers.db.query.QueryCompiler`, like every other query.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import count
from typing import Any

from registers.db.aggregates import Aggregate, Derived, Output, resolve
from registers.db.criteria import Group, Q, _indexed, _shapes
from registers.db.exceptions import InvalidQueryError
from registers.db.filter_sql import _limit_sql, _node_sql, _path, _predicate
from registers.db.query_parts import Binder, _Node, _Scope, _Statement, _Target

__all__ = ["GroupedStatement", "compile_grouped", "is_having", "refuse_field_clash"]

Pairs = tuple[tuple[str, Aggregate], ...]
_CACHE_LIMIT = 1024


@dataclass
class GroupedStatement:
    """One grouped (or aggregate-only) statement compiled for one shape."""

    core: str  # SELECT ... FROM ... WHERE ... GROUP BY ... HAVING ...
    order: str
    where_binders: tuple[tuple[int, Binder], ...]
    having_binders: tuple[tuple[int, Binder], ...]
    names: tuple[str, ...]
    readers: tuple[tuple[int, int, Callable[..., Any]], ...]
    statements: dict[Any, str] = field(default_factory=dict)

    def params(self, values: Sequence[Any], having: Sequence[Any]) -> list[Any]:
        params: list[Any] = []
        for index, bind in self.where_binders:
            params.extend(bind(values[index]))
        for index, bind in self.having_binders:
            params.extend(bind(having[index]))
        return params

    def select(self, limit: int | None, offset: int | None) -> str:
        key = ("select", limit, offset)
        sql = self.statements.get(key)
        if sql is None:
            sql = f"{self.core}{self.order}{_limit_sql(limit, offset)}"
            if not offset:
                self.statements[key] = sql
        return sql

    def count(self, limit: int | None, offset: int | None) -> str:
        return f"SELECT COUNT(*) FROM ({self.core}{_limit_sql(limit, offset)}) AS registers_sub"

    def exists(self, limit: int | None, offset: int | None) -> str:
        return (f"SELECT 1 FROM ({self.core}{_limit_sql(limit, offset)}) AS registers_sub"
                " LIMIT 1")

    def values(self, row: Sequence[Any]) -> list[Any]:
        return [read(row[i]) if width == 1 else read(row[i], row[i + 1])
                for i, width, read in self.readers]

    def dicts(self, rows: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
        names = self.names
        if self.one_column_each:  # the common case: no Avg (which reads two columns)
            pairs = [(name, read) for name, (_, _, read) in zip(names, self.readers)]
            return [{name: read(v) for (name, read), v in zip(pairs, row)} for row in rows]
        return [dict(zip(names, self.values(row))) for row in rows]

    def tuples(self, rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
        if self.one_column_each:
            reads = [read for _, _, read in self.readers]
            return [tuple([read(v) for read, v in zip(reads, row)]) for row in rows]
        return [tuple(self.values(row)) for row in rows]

    @property
    def one_column_each(self) -> bool:
        return all(width == 1 for _, width, _ in self.readers)

    def one(self, rows: Sequence[Sequence[Any]]) -> dict[str, Any]:
        return dict(zip(self.names, self.values(rows[0])))


def compile_grouped(compiler: Any, groups: Sequence[Group], having: Sequence[Group],
                    fields: tuple[str, ...], pairs: Pairs,
                    order: tuple[str, ...] | None = None, reverse: bool = False,
                    ) -> tuple[GroupedStatement, list[Any]]:
    """The statement (cached per shape) and its parameters. No ``fields``: one row of
    aggregates over every filtered row (``aggregate()``)."""
    values: list[Any] = []
    having_values: list[Any] = []
    shape = _shapes(groups, values) if groups else ()
    having_shape = _shapes(having, having_values) if having else ()
    key = (shape, having_shape, fields, pairs, order, reverse)
    cache: dict[Any, GroupedStatement] = compiler.grouped
    compiled = cache.get(key)
    if compiled is None:
        compiled = _compile(compiler, shape, having_shape, fields, pairs, order, reverse)
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[key] = compiled
    return compiled, compiled.params(values, having_values)


def _compile(compiler: Any, shape: tuple[Any, ...], having_shape: tuple[Any, ...],
             fields: tuple[str, ...], pairs: Pairs, order: tuple[str, ...] | None,
             reverse: bool) -> GroupedStatement:
    st = _Statement(compiler.dialect)
    q = compiler.dialect.quote
    joins: list[str] = []
    scope = _Scope(compiler, q(compiler.table), joins, {})
    where = _node_sql(st, scope, _indexed(("GROUP", False, shape), count()))
    exprs: list[str] = []
    readers: list[tuple[int, int, Callable[..., Any]]] = []
    by_field: dict[str, str] = {}
    for name in fields:
        expr, entry, owner = _path(st, scope, name, "values()")
        readers.append((len(exprs), 1, owner.compiler.reader(entry)))
        by_field[name] = owner.compared(entry)
        exprs.append(expr)
    groups = list(exprs)
    derived: dict[str, Derived] = {}
    outputs: list[Output] = []
    for name, agg in pairs:
        output = resolve(st, scope, name, agg, derived)
        outputs.append(output)
        readers.append((len(exprs), len(output.selects), output.read))
        exprs.extend(output.selects)
    for table in derived.values():
        joins.append(table.join(st, scope))
    having_st = _Statement(compiler.dialect)
    targets = {output.name: output.target for output in outputs}
    having = _having_sql(having_st, compiler, _indexed(("GROUP", False, having_shape),
                                                        count()), targets)
    columns = ", ".join(f"{expr} AS {q(f'c{i}')}" for i, expr in enumerate(exprs))
    core = (f"SELECT {columns} FROM {q(compiler.table)}{''.join(joins)}"
            f"{f' WHERE {where}' if where else ''}"
            f"{' GROUP BY ' + ', '.join(groups) if groups else ''}"
            f"{f' HAVING {having}' if having else ''}")
    order_sql = _order(compiler, order, reverse, fields, by_field,
                       {o.name: o.compared for o in outputs}) if fields else ""
    return GroupedStatement(core, order_sql, tuple(st.binders), tuple(having_st.binders),
                            (*fields, *(name for name, _ in pairs)), tuple(readers))


def _having_sql(st: _Statement, compiler: Any, node: _Node,
                targets: dict[str, _Target]) -> str:
    parts: list[str] = []
    for child in node.children:
        if isinstance(child, _Node):
            parts.append(_having_sql(st, compiler, child, targets))
            continue
        name = _annotation_of(targets, child.key)
        if name is None:  # pragma: no cover - where() sorted the criteria already
            raise InvalidQueryError(f"{child.key!r} names no annotation")
        lookup = child.key[len(name) + 2:] or "eq"
        parts.append(_predicate(st, compiler, child, targets[name], lookup))
    if node.connector == "OR":
        sql = "(" + " OR ".join(p or "1 = 1" for p in parts) + ")" if parts else ""
    else:
        sql = " AND ".join(p for p in parts if p)
    if node.negated and sql:
        sql = f"NOT COALESCE(({sql}), FALSE)"  # NULL-aware, as exclude() on fields
    return sql


def _order(compiler: Any, order: tuple[str, ...] | None, reverse: bool,
           fields: tuple[str, ...], by_field: dict[str, str],
           by_annotation: dict[str, str]) -> str:
    terms: list[tuple[str, bool]] = []
    used: set[str] = set()
    for item in order or ():
        if not isinstance(item, str) or not item.removeprefix("-"):
            raise InvalidQueryError(f"order_by entries must be field names, got {item!r}")
        name = item.removeprefix("-")
        if name in by_annotation:
            expr = by_annotation[name]
        elif name in by_field:
            expr = by_field[name]
        else:
            raise InvalidQueryError(
                f"order_by {item!r} on a grouped {compiler.model_name} query: name one of "
                f"the values() fields ({', '.join(fields)}) or annotations "
                f"({', '.join(by_annotation)})", model=compiler.model_name, field=name)
        used.add(name)
        terms.append((expr, item.startswith("-")))
    # the groups are unique by their fields: ordering by them too makes ties one order
    terms.extend((by_field[name], False) for name in fields if name not in used)
    nulls = compiler.dialect.family == "postgresql"
    parts = []
    for expr, descending in terms:
        descending = descending != reverse
        if descending:
            parts.append(f"{expr} DESC{' NULLS LAST' if nulls else ''}")
        else:
            parts.append(f"{expr}{' NULLS FIRST' if nulls else ''}")
    return " ORDER BY " + ", ".join(parts)


# --- sorting the criteria of a where() after annotate() ---------------------------------

def _annotation_of(names: Any, key: str) -> str | None:
    """The annotation ``key`` names (``n`` for ``n__gt``), the longest when several do."""
    found = None
    for name in names:
        if (key == name or key.startswith(name + "__")) and (
                found is None or len(name) > len(found)):
            found = name
    return found


def _keys(q: Q) -> list[str]:
    keys: list[str] = []
    for child in q.children:
        keys.extend(_keys(child) if isinstance(child, Q) else [child[0]])
    return keys


def is_having(names: Sequence[str], q: Sequence[Q], criteria: dict[str, Any],
              model: str) -> bool:
    """Whether a ``where()`` after ``annotate()`` filters the groups (its keys name
    annotations: ``HAVING``) or the rows (they name fields: ``WHERE``). Both in one call is
    refused."""
    keys = [key for arg in q for key in _keys(arg)] + list(criteria)
    on_annotations = [key for key in keys if _annotation_of(names, key) is not None]
    if not on_annotations:
        return False
    if len(on_annotations) < len(keys):
        fields = [key for key in keys if key not in on_annotations]
        raise InvalidQueryError(
            f"a where() on a grouped {model} query filters either the rows (fields: "
            f"{', '.join(fields)}) or the groups (annotations: {', '.join(on_annotations)}), "
            "not both: split it into two where() calls", model=model)
    return True


def refuse_field_clash(compiler: Any, pairs: Pairs, taken: Sequence[str]) -> None:
    """An annotation may not reuse the name of a field or of another annotation (it may
    reuse a relation's: ``annotate(posts=Count("posts"))``)."""
    for name, _ in pairs:
        if name in compiler._columns:
            raise InvalidQueryError(
                f"annotation {name!r} clashes with a field of {compiler.model_name}: "
                "choose another name", model=compiler.model_name, field=name)
        if name in taken:
            raise InvalidQueryError(f"annotate() names {name!r} twice",
                                    model=compiler.model_name, field=name)
