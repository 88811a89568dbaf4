"""Differential test of aggregates and grouping: generated data sets, stored on each
backend, aggregated and grouped there, compared with the same computation in plain Python.

``derandomize=True``: every backend gets the same generated data sets (and hypothesis
prints a failing one as a literal). The reference states the semantics every backend
shares: NULLs are skipped by every aggregate; ``Count`` of nothing is 0 and the others
None; sums of ints are ints, of Decimals exact Decimals; ``Avg`` is the exact sum over the
count (a float, or a Decimal in Python's default context); groups sort by the given
order, then by their fields, NULLs first ascending and last descending; text by code
point. Floats are multiples of 0.25, so their sums are exact in any order. Budget:
``REGISTERS_DIFFERENTIAL_EXAMPLES`` (default 20) data sets per backend.
"""

from __future__ import annotations

import asyncio
import os
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from registers.db import Avg, Count, HasMany, Max, Min, Sum, aio, database_registry

EXAMPLES = int(os.environ.get("REGISTERS_DIFFERENTIAL_EXAMPLES", "20"))
ROLES = [None, "a", "b", "B", "b ", "é", ""]


def _models(url: str, indexed: bool) -> tuple[Any, Any]:
    @database_registry(url, table_name="diff_agg_users")
    class User(BaseModel):
        id: int | None = None
        role: str | None = None
        score: int | None = None
        weight: float = 0.0
        balance: Decimal | None = None

    @database_registry(url, table_name="diff_agg_posts",
                       indexes=["user_id"] if indexed else ())
    class Post(BaseModel):
        id: int | None = None
        user_id: int
        likes: int | None = None

    User.posts = HasMany(Post, foreign_key="user_id")  # type: ignore[attr-defined]
    return User, Post


user = st.fixed_dictionaries({
    "role": st.sampled_from(ROLES),
    "score": st.one_of(st.none(), st.integers(-5, 5), st.sampled_from([10**12, -(10**12)])),
    "weight": st.integers(-40, 40).map(lambda n: n / 4),
    "balance": st.one_of(st.none(), st.decimals(-10**6, 10**6, places=2, allow_nan=False,
                                                allow_infinity=False)),
    "likes": st.lists(st.one_of(st.none(), st.integers(0, 9)), max_size=3),
})
data_sets = st.lists(user, max_size=12)
ORDERS = [(), ("-n",), ("total",), ("-mean", "role"), ("-money",), ("posts", "-likes")]
queries = st.tuples(st.sampled_from(ORDERS), st.one_of(st.none(), st.integers(0, 3)),
                    st.one_of(st.none(), st.integers(-5, 5)))


# --- the reference -------------------------------------------------------------------------

def _count(values: list[Any]) -> int:
    return sum(v is not None for v in values)


def _sum(values: list[Any]) -> Any:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def _mean(values: list[Any]) -> Any:
    present = [v for v in values if v is not None]
    if not present:
        return None
    if isinstance(present[0], Decimal):
        return sum(present) / Decimal(len(present))
    return sum(present) / len(present)


def _least(values: list[Any], pick: Any) -> Any:
    present = [v for v in values if v is not None]
    return pick(present) if present else None


def _stats(rows: list[dict[str, Any]]) -> dict[str, Any]:
    likes = [like for row in rows for like in row["likes"]]
    return {
        "n": len(rows),
        "total": _sum([r["score"] for r in rows]),
        "mean": _mean([r["score"] for r in rows]),
        "weight": _sum([r["weight"] for r in rows]) if rows else None,
        "money": _sum([r["balance"] for r in rows]),
        "avg_money": _mean([r["balance"] for r in rows]),
        "low": _least([r["score"] for r in rows], min),
        "role_max": _least([r["role"] for r in rows], max),
        "roles": len({r["role"] for r in rows if r["role"] is not None}),
        "posts": len(likes),
        "likes": _sum(likes),
    }


AGGREGATES = {
    "n": Count("id"), "total": Sum("score"), "mean": Avg("score"), "weight": Sum("weight"),
    "money": Sum("balance"), "avg_money": Avg("balance"), "low": Min("score"),
    "role_max": Max("role"), "roles": Count("role", distinct=True), "posts": Count("posts"),
    "likes": Sum("posts__likes"),
}
GROUPED = ("n", "total", "mean", "money", "posts", "likes")


class _Reversed:
    def __init__(self, value: Any) -> None:
        self.value = value

    def __lt__(self, other: _Reversed) -> bool:
        return bool(other.value < self.value) if self.value is not None else False

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reversed) and other.value == self.value


def _expected_groups(rows: list[dict[str, Any]], order: tuple[str, ...],
                     at_least: int | None) -> list[dict[str, Any]]:
    by_role: dict[Any, list[dict[str, Any]]] = {}
    for row in rows:
        by_role.setdefault(row["role"], []).append(row)
    groups = []
    for role, members in by_role.items():
        stats = _stats(members)
        groups.append({"role": role, **{name: stats[name] for name in GROUPED}})
    if at_least is not None:
        groups = [g for g in groups if g["n"] >= at_least]
    def key(group: dict[str, Any]) -> tuple[Any, ...]:
        parts: list[Any] = []
        for item in (*order, "role"):
            value = group[item.removeprefix("-")]
            if item.startswith("-"):
                parts.append((value is None, _Reversed(value)))
            else:
                parts.append((value is not None, value))
        return tuple(parts)
    return sorted(groups, key=key)


# --- running ---------------------------------------------------------------------------------

def _store(User: Any, Post: Any, rows: list[dict[str, Any]]) -> None:
    Post.objects.truncate()
    User.objects.truncate()
    users = User.objects.bulk_create([{k: v for k, v in r.items() if k != "likes"}
                                      for r in rows])
    Post.objects.bulk_create([{"user_id": u.id, "likes": like}
                              for u, r in zip(users, rows) for like in r["likes"]])


def _same(got: Any, expected: Any, where: str) -> None:
    assert got == expected, f"{where}: {got!r} != {expected!r}"
    if isinstance(got, dict):
        for name, value in got.items():
            if value is not None and name in ("total", "low", "n", "posts", "likes", "roles"):
                assert type(value) is int, f"{where}: {name} is {type(value).__name__}"
            if value is not None and name in ("money", "avg_money"):
                assert type(value) is Decimal, f"{where}: {name} is {type(value).__name__}"


@pytest.fixture(params=[False, True], ids=["derived", "correlated"])
def models(database_url: str, request: pytest.FixtureRequest) -> tuple[Any, Any]:
    """Posts' link to users unindexed (a derived table) and indexed (correlated)."""
    return _models(database_url, request.param)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, print_blob=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(rows=data_sets, query=queries)
def test_aggregates_agree_with_python(models: tuple[Any, Any], rows: list[dict[str, Any]],
                                      query: tuple[Any, ...]) -> None:
    User, Post = models
    _store(User, Post, rows)
    order, at_least, floor = query
    chosen = [r for r in rows if floor is None or (r["score"] is not None
                                                   and r["score"] >= floor)]
    filtered = User.objects.where() if floor is None else User.objects.where(score__gte=floor)
    _same(filtered.aggregate(**AGGREGATES), _stats(chosen), "aggregate")

    grouped = User.objects.values("role").annotate(**{n: AGGREGATES[n] for n in GROUPED})
    if at_least is not None:
        grouped = grouped.where(n__gte=at_least)
    grouped = grouped.order_by(*order)
    expected = _expected_groups(rows, order, at_least)
    got = grouped.all()
    assert got == expected, f"grouped {order} n>={at_least}"
    for group in got:
        _same(group, group, "group types")
    assert grouped.count() == len(expected)

    async def twins() -> tuple[Any, Any]:
        try:
            return await filtered.aaggregate(**AGGREGATES), await grouped.aall()
        finally:
            await aio.adispose_all()

    assert asyncio.run(twins()) == (_stats(chosen), expected)
