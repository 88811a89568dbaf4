"""Differential test: generated operation sequences, run on each backend and on a small
in-memory reference model, must give identical results at every step.

Each sequence is plain data (tuples), so a failing one is printed by hypothesis as a
Python literal: paste it into :data:`REGRESSIONS` and it stays a regular test on every
backend. The example budget (``REGISTERS_DIFFERENTIAL_EXAMPLES``, default 20 sequences of
up to 12 steps per backend) keeps the run to seconds per backend in CI; raise it locally
to search harder (``REGISTERS_DIFFERENTIAL_EXAMPLES=500 pytest tests/db/test_differential.py``).

The reference states the semantics every backend must share:

* text is exact (case and trailing spaces matter), ordered by code point;
* ``ne`` and ``not_in`` keep NULLs; other comparisons never match NULL;
* NULLs sort first ascending and last descending, the key breaking ties;
* ``F`` expressions see the row's old values; ``/`` on ints truncates toward zero; a
  result outside 64 bits fails the whole ``update_where`` and changes nothing;
* ``upsert`` matches the unique ``code`` exactly.

Rows are compared without their generated key (sequences may skip values differently
after a failed insert or an upsert), but in key order, which is insertion order on every
backend.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from registers.db import F, aio, database_registry
from registers.db.exceptions import InvalidQueryError, RegistryError, UniqueConstraintError

EXAMPLES = int(os.environ.get("REGISTERS_DIFFERENTIAL_EXAMPLES", "20"))
INT64 = range(-(2**63), 2**63)

CODES = ["k", "K", "k ", "kk", "ß", "é", "a_b", "a%b"]
LABELS = [None, "x", "X", "x ", "xy", "yx", "Ü", "ü", ""]
FIELDS = ["code", "n", "m", "label"]


def _model(url: str) -> Any:
    @database_registry(url, table_name="diff_items", unique_fields=["code"])
    class Item(BaseModel):
        id: int | None = None
        code: str
        n: int = 0
        m: int = 0
        label: str | None = None

    return Item


# --- the reference model ---------------------------------------------------------------

Row = dict[str, Any]


class Reference:
    """The semantics every backend must share, in plain Python."""

    def __init__(self) -> None:
        self.rows: list[Row] = []  # in key (insertion) order

    def by_code(self, code: str) -> Row | None:
        return next((r for r in self.rows if r["code"] == code), None)

    def matches(self, row: Row, criteria: Sequence[tuple[str, Any]]) -> bool:
        return all(_match(row[key.partition("__")[0]], key.partition("__")[2] or "eq", value)
                   for key, value in criteria)

    def select(self, criteria: Sequence[tuple[str, Any]]) -> list[Row]:
        return [r for r in self.rows if self.matches(r, criteria)]

    def ordered(self, rows: list[Row], order: Sequence[str]) -> list[Row]:
        result = list(rows)
        for item in reversed(order):
            name, descending = item.removeprefix("-"), item.startswith("-")
            if name == "id":
                index = {id(r): i for i, r in enumerate(self.rows)}
                result.sort(key=lambda r: index[id(r)], reverse=descending)
                continue
            present = sorted((r for r in result if r[name] is not None),
                             key=lambda r: r[name], reverse=descending)
            nulls = [r for r in result if r[name] is None]
            result = present + nulls if descending else nulls + present
        return result


def _match(value: Any, lookup: str, arg: Any) -> bool:
    if lookup == "eq":
        return value is None if arg is None else value == arg
    if lookup == "ne":
        return value is not None if arg is None else value != arg
    if lookup == "isnull":
        return (value is None) == arg
    if lookup == "not_in":
        return value is None or value not in arg
    if value is None:
        return False
    if lookup == "in":
        return value in arg
    if lookup == "lt":
        return bool(value < arg)
    if lookup == "lte":
        return bool(value <= arg)
    if lookup == "gt":
        return bool(value > arg)
    if lookup == "gte":
        return bool(value >= arg)
    if lookup == "between":
        return bool(arg[0] <= value <= arg[1])
    if lookup == "contains":
        return arg in value
    if lookup == "icontains":
        return arg.lower() in value.lower()
    if lookup == "startswith":
        return bool(value.startswith(arg))
    if lookup == "endswith":
        return bool(value.endswith(arg))
    raise AssertionError(lookup)


def _evaluate(expr: Any, row: Row) -> int:
    """An F expression on the reference row (old values), ints only."""
    kind = expr[0]
    if kind == "F":
        return int(row[expr[1]])
    if kind == "lit":
        return int(expr[1])
    _, op, left, right = expr
    a, b = _evaluate(left, row), _evaluate(right, row)
    if op == "/":
        if b == 0:
            raise ZeroDivisionError
        quotient = abs(a) // abs(b)
        result = quotient if (a >= 0) == (b >= 0) else -quotient
    else:
        result = {"+": a + b, "-": a - b, "*": a * b}[op]
    if result not in INT64:
        raise OverflowError
    return result


def _literal_zero_divisor(expr: Any) -> bool:
    if expr[0] != "op":
        return False
    _, op, left, right = expr
    return (op == "/" and right == ("lit", 0)) or _literal_zero_divisor(left) or \
        _literal_zero_divisor(right)


def _to_f(expr: Any) -> Any:
    kind = expr[0]
    if kind == "F":
        return F(expr[1])
    if kind == "lit":
        return expr[1]
    _, op, left, right = expr
    a, b = _to_f(left), _to_f(right)
    return {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b,
            "/": lambda: a / b}[op]()


# --- the strategies --------------------------------------------------------------------

small_ints = st.integers(-20, 20)
ints = st.one_of(small_ints, st.sampled_from([2**31, -(2**40), 2**62, -(2**62), 2**63 - 1]))
codes = st.sampled_from(CODES)
labels = st.sampled_from(LABELS)
item = st.fixed_dictionaries({"code": codes, "n": ints, "m": small_ints, "label": labels})

criterion = st.one_of(
    st.tuples(st.sampled_from(["n", "n__ne", "n__lt", "n__lte", "n__gt", "n__gte",
                               "m", "m__gt", "m__lte"]), small_ints),
    st.tuples(st.sampled_from(["n__in", "n__not_in", "m__in", "m__not_in"]),
              st.lists(small_ints, max_size=4)),
    st.tuples(st.just("m__between"), st.tuples(small_ints, small_ints)),
    st.tuples(st.sampled_from(["code", "code__ne", "code__gt", "code__lt"]), codes),
    st.tuples(st.sampled_from(["code__in", "code__not_in"]), st.lists(codes, max_size=3)),
    st.tuples(st.sampled_from(["label", "label__ne"]), labels),
    st.tuples(st.sampled_from(["label__gte", "label__lt", "label__contains", "label__icontains",
                               "label__startswith", "label__endswith"]),
              st.sampled_from([v for v in LABELS if v is not None])),
    st.tuples(st.just("label__isnull"), st.booleans()),
    st.tuples(st.sampled_from(["label__in", "label__not_in"]),
              st.lists(st.sampled_from([v for v in LABELS if v is not None]), max_size=3)),
)
criteria = st.lists(criterion, max_size=2, unique_by=lambda c: c[0])
some_criteria = st.lists(criterion, min_size=1, max_size=2, unique_by=lambda c: c[0])
orderings = st.lists(
    st.sampled_from([*FIELDS, *(f"-{f}" for f in FIELDS), "id", "-id"]),
    max_size=3, unique_by=lambda s: s.removeprefix("-"))

operand = st.one_of(st.tuples(st.just("F"), st.sampled_from(["n", "m"])),
                    st.tuples(st.just("lit"), st.one_of(small_ints, st.sampled_from(
                        [2**31, 2**62, -(2**62)]))))
expression = st.recursive(
    operand,
    lambda inner: st.tuples(st.just("op"), st.sampled_from(["+", "-", "*", "/"]), inner, inner),
    max_leaves=3,
)


def _computed(expr: Any) -> bool:
    """Every operation of ``expr`` involves a field (Python would compute literals)."""
    if expr[0] == "F":
        return True
    if expr[0] == "lit":
        return False
    return (_computed(expr[2]) or _computed(expr[3])) and all(
        part[0] != "op" or _computed(part) for part in expr[2:])


updates = st.dictionaries(
    st.sampled_from(["n", "m", "label"]),
    st.one_of(st.tuples(st.just("value"), small_ints),
              st.tuples(st.just("expr"), expression.filter(_computed))),
    min_size=1, max_size=2,
).map(lambda d: sorted(d.items()))

operation = st.one_of(
    st.tuples(st.just("create"), item),
    st.tuples(st.just("bulk_create"), st.lists(item, max_size=4)),
    st.tuples(st.just("upsert"), item),
    st.tuples(st.just("bulk_upsert"), st.lists(item, max_size=4, unique_by=lambda i: i["code"])),
    st.tuples(st.just("update_where"), some_criteria, updates),
    st.tuples(st.just("delete_where"), some_criteria),
    st.tuples(st.just("filter"), criteria, orderings, st.one_of(st.none(), st.integers(0, 4)),
              st.one_of(st.none(), st.integers(0, 3))),
    st.tuples(st.just("iterate"), criteria, orderings, st.integers(1, 4)),
    st.tuples(st.just("count"), criteria),
    st.tuples(st.just("get"), codes),
)
program = st.lists(st.tuples(operation, st.booleans()), max_size=12)


# --- running a program -----------------------------------------------------------------

def _plain(rows: Sequence[Any]) -> list[tuple[Any, ...]]:
    return [tuple(getattr(r, f) if not isinstance(r, dict) else r[f] for f in FIELDS)
            for r in rows]


class Outcome:
    """What the reference expects of one step: a value, or an error class."""

    def __init__(self, value: Any = None, error: type[Exception] | None = None) -> None:
        self.value = value
        self.error = error


def _expect(ref: Reference, op: tuple[Any, ...]) -> Outcome:
    name = op[0]
    if name == "create":
        data = op[1]
        if ref.by_code(data["code"]) is not None:
            return Outcome(error=UniqueConstraintError)
        ref.rows.append(dict(data))
        return Outcome(_plain([data]))
    if name == "bulk_create":
        seen = {r["code"] for r in ref.rows}
        for data in op[1]:
            if data["code"] in seen:
                return Outcome(error=UniqueConstraintError)
            seen.add(data["code"])
        ref.rows.extend(dict(d) for d in op[1])
        return Outcome(_plain(op[1]))
    if name in ("upsert", "bulk_upsert"):
        items = [op[1]] if name == "upsert" else op[1]
        for data in items:
            found = ref.by_code(data["code"])
            if found is None:
                ref.rows.append(dict(data))
            else:
                found.update(data)
        return Outcome(_plain(items))
    if name == "update_where":
        if any(kind == "expr" and _literal_zero_divisor(value) for _, (kind, value) in op[2]):
            return Outcome(error=InvalidQueryError)  # refused before anything is sent
        targets = ref.select(op[1])
        new_values = []
        for row in targets:
            changed = {}
            for field, (kind, value) in op[2]:
                if kind == "value":
                    changed[field] = value if field != "label" else f"v{value}"
                    continue
                if field == "label":
                    return Outcome(error=InvalidQueryError)  # F on a str field
                try:
                    changed[field] = _evaluate(value, row)
                except (ZeroDivisionError, OverflowError):
                    return Outcome(error=InvalidQueryError)
            new_values.append(changed)
        if any(kind == "expr" and field == "label" for field, (kind, _) in op[2]):
            return Outcome(error=InvalidQueryError)
        for row, changed in zip(targets, new_values):
            row.update(changed)
        return Outcome(_plain(targets))
    if name == "delete_where":
        doomed = ref.select(op[1])
        ref.rows = [r for r in ref.rows if r not in doomed]
        return Outcome(len(doomed))
    if name == "filter":
        _, crit, order, limit, offset = op
        rows = ref.ordered(ref.select(crit), order or ["id"])
        start = offset or 0
        rows = rows[start:] if limit is None else rows[start:start + limit]
        return Outcome(_plain(rows))
    if name == "iterate":
        return Outcome(_plain(ref.ordered(ref.select(op[1]), op[2] or ["id"])))
    if name == "count":
        return Outcome(len(ref.select(op[1])))
    if name == "get":
        found = ref.by_code(op[1])
        return Outcome(None if found is None else _plain([found]))
    raise AssertionError(name)


def _updates(op: tuple[Any, ...]) -> dict[str, Any]:
    return {field: (_to_f(value) if kind == "expr" else
                    (value if field != "label" else f"v{value}"))
            for field, (kind, value) in op[2]}


async def _perform(Item: Any, op: tuple[Any, ...], use_async: bool) -> Any:
    objects = Item.objects
    name = op[0]
    if name == "create":
        row = await objects.acreate(**op[1]) if use_async else objects.create(**op[1])
        return _plain([row])
    if name in ("bulk_create", "bulk_upsert"):
        method = getattr(objects, f"a{name}" if use_async else name)
        result = method(op[1])
        return _plain(await result if use_async else result)
    if name == "upsert":
        row = await objects.aupsert(**op[1]) if use_async else objects.upsert(**op[1])
        return _plain([row])
    if name == "update_where":
        crit, new = dict(op[1]), _updates(op)
        rows = await objects.aupdate_where(crit, **new) if use_async else \
            objects.update_where(crit, **new)
        return _plain(rows)
    if name == "delete_where":
        crit = dict(op[1])
        return await objects.adelete_where(**crit) if use_async else objects.delete_where(**crit)
    if name == "filter":
        _, crit, order, limit, offset = op
        kwargs = {"order_by": order or None, "limit": limit, "offset": offset, **dict(crit)}
        rows = await objects.afilter(**kwargs) if use_async else objects.filter(**kwargs)
        return _plain(rows)
    if name == "iterate":
        kwargs = {"order_by": op[2] or None, "batch_size": op[3], **dict(op[1])}
        if use_async:
            return _plain([r async for r in objects.aiterate(**kwargs)])
        return _plain(list(objects.iterate(**kwargs)))
    if name == "count":
        crit = dict(op[1])
        return await objects.acount(**crit) if use_async else objects.count(**crit)
    if name == "get":
        row = await objects.aget(code=op[1]) if use_async else objects.get(code=op[1])
        return None if row is None else _plain([row])
    raise AssertionError(name)


async def _run(Item: Any, steps: Sequence[tuple[tuple[Any, ...], bool]]) -> None:
    ref = Reference()
    try:
        for number, (op, use_async) in enumerate(steps):
            expected = _expect(ref, op)
            where = f"step {number} {op!r} ({'async' if use_async else 'sync'})"
            if expected.error is not None:
                with pytest.raises(RegistryError) as caught:
                    await _perform(Item, op, use_async)
                assert isinstance(caught.value, expected.error), f"{where}: {caught.value!r}"
            else:
                got = await _perform(Item, op, use_async)
                assert got == expected.value, where
            assert _plain(Item.objects.filter(order_by="id")) == _plain(ref.rows), where
    finally:
        await aio.adispose_all()


def run_program(Item: Any, steps: Sequence[tuple[tuple[Any, ...], bool]]) -> None:
    Item.objects.truncate()
    asyncio.run(_run(Item, steps))


@pytest.fixture
def Item(database_url: str) -> Any:
    return _model(database_url)


@settings(max_examples=EXAMPLES, deadline=None, print_blob=True,
          phases=[Phase.explicit, Phase.reuse, Phase.generate]
          if os.environ.get("REGISTERS_DIFFERENTIAL_NO_SHRINK") else list(Phase),
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=program)
def test_every_backend_agrees_with_the_reference(Item: Any, steps: Any) -> None:
    run_program(Item, steps)


# Sequences that once failed (found by the test above or by hand): kept on every backend.
REGRESSIONS: list[list[tuple[tuple[Any, ...], bool]]] = [
    # MariaDB: upsert matched another owner's code ignoring case / trailing spaces.
    [(("create", {"code": "k", "n": 1, "m": 0, "label": "x"}), False),
     (("upsert", {"code": "K", "n": 2, "m": 0, "label": "X"}), False),
     (("upsert", {"code": "k ", "n": 3, "m": 0, "label": "x "}), True),
     (("filter", [("label", "x")], [], None, None), False),
     (("count", [("code__in", ["K", "kk"])]), True)],
    # MariaDB: SET evaluated left to right (n = m - n, m = n saw the new n).
    [(("bulk_create", [{"code": "k", "n": 7, "m": 10, "label": None},
                       {"code": "K", "n": -7, "m": 10, "label": None}]), False),
     (("update_where", [("n__gte", -20)],
       [("m", ("expr", ("F", "n"))),
        ("n", ("expr", ("op", "-", ("F", "m"), ("F", "n"))))]), False),
     (("update_where", [("m__ne", 99)],
       [("n", ("expr", ("op", "/", ("F", "n"), ("lit", 2))))]), True)],
    # SQLite: an overflowing product committed a REAL into the INTEGER column.
    [(("create", {"code": "k", "n": 2**62, "m": 0, "label": None}), False),
     (("update_where", [("m", 0)], [("n", ("expr", ("op", "*", ("F", "n"), ("lit", 4))))]),
      False),
     (("iterate", [], ["-n"], 1), True),
     (("update_where", [("m", 0)], [("m", ("expr", ("op", "/", ("F", "m"), ("F", "m"))))]),
      True)],
    # PostgreSQL: filter() without order_by returned updated rows last (no defined order).
    [(("create", {"code": "k", "n": 0, "m": 0, "label": None}), False),
     (("create", {"code": "k", "n": 0, "m": 0, "label": None}), False),
     (("bulk_upsert", [{"code": "k ", "n": 0, "m": 0, "label": None},
                       {"code": "k", "n": 0, "m": 0, "label": None},
                       {"code": "K", "n": 0, "m": 0, "label": None}]), False),
     (("filter", [], [], None, None), False),
     (("filter", [], ["m"], 2, 1), True)],
    # 0 / F("n") had no Expression.__rtruediv__.
    [(("create", {"code": "k", "n": 5, "m": 0, "label": None}), False),
     (("update_where", [("m", 0)], [("n", ("expr", ("op", "/", ("lit", 0), ("F", "n"))))]),
      False)],
    # SQLite: icontains folded ASCII only (its lower()).
    [(("create", {"code": "K", "n": 0, "m": 0, "label": "Ü"}), False),
     (("update_where", [("label__icontains", "ü")], [("n", ("value", 0))]), False),
     (("count", [("label__icontains", "Ü")]), True)],
    # NULLs: ne / not_in keep them; ordering puts them first ascending.
    [(("bulk_create", [{"code": "k", "n": 1, "m": 0, "label": None},
                       {"code": "kk", "n": 1, "m": 0, "label": "x"}]), False),
     (("count", [("label__ne", "x")]), False),
     (("count", [("label__not_in", ["x", "y"])]), True),
     (("filter", [], ["label", "-code"], 1, 0), False),
     (("iterate", [], ["-label"], 1), True)],
]


@pytest.mark.parametrize("steps", REGRESSIONS, ids=range(len(REGRESSIONS)))
def test_regression_sequences(Item: Any, steps: Any) -> None:
    run_program(Item, steps)


def test_reference_agrees_with_itself_on_a_known_answer() -> None:
    """The reference is code too: pin a few of its answers by hand."""
    ref = Reference()
    _expect(ref, ("bulk_create", [{"code": "a", "n": -7, "m": 2, "label": None},
                                  {"code": "b", "n": 7, "m": 2, "label": "x"}]))
    assert _expect(ref, ("count", [("label__ne", "x")])).value == 1
    assert _expect(ref, ("filter", [], ["-label"], None, None)).value[0][0] == "b"
    outcome = _expect(ref, ("update_where", [("m", 2)],
                            [("n", ("expr", ("op", "/", ("F", "n"), ("F", "m"))))]))
    assert [r[1] for r in outcome.value] == [-3, 3]
    assert _expect(ref, ("update_where", [("m", 2)], [("n", ("expr", (
        "op", "*", ("lit", 2**62), ("lit", 2**62))))])).error is InvalidQueryError
    assert [r["n"] for r in ref.rows] == [-3, 3]

