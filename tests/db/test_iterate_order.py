"""``iterate(order_by=...)``: keyset pagination, exact with ties and NULLs on every backend.

Each generated case fills a table with few distinct values (so ties are everywhere) and
NULLs, picks an ordering and a batch size, and compares the streamed rows with Python's
sort under the documented rule: NULL first ascending, last descending, the key breaking
ties. Every row must come exactly once, in that order, sync and async.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from registers.db import F, aio, database_registry

FIELDS = ["a", "b", "label"]


def _model(url: str) -> Any:
    @database_registry(url, table_name="orderings")
    class Row(BaseModel):
        id: int | None = None
        a: int | None = None
        b: int | None = None
        label: str | None = None

    return Row


def _expected(rows: Sequence[dict[str, Any]], order: Sequence[str]) -> list[int]:
    result = sorted(rows, key=lambda r: r["id"])
    for item in reversed(order):
        name, descending = item.removeprefix("-"), item.startswith("-")
        # NULL is the smallest value: first ascending, last descending.
        present = sorted((r for r in result if r[name] is not None),
                         key=lambda r: r[name], reverse=descending)
        # sorted() is stable but reverse=True keeps equal items in order too.
        nulls = [r for r in result if r[name] is None]
        result = present + nulls if descending else nulls + present
    return [r["id"] for r in result]


rows_strategy = st.lists(
    st.fixed_dictionaries({
        "a": st.one_of(st.none(), st.integers(0, 2)),
        "b": st.one_of(st.none(), st.integers(-1, 1)),
        "label": st.one_of(st.none(), st.sampled_from(["x", "y", "z"])),
    }),
    max_size=30,
)
order_strategy = st.lists(
    st.sampled_from([*FIELDS, *(f"-{f}" for f in FIELDS), "id", "-id"]),
    min_size=1, max_size=3, unique_by=lambda s: s.removeprefix("-"),
)


@pytest.fixture
def Row(database_url: str) -> Any:
    return _model(database_url)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=rows_strategy, order=order_strategy, batch_size=st.integers(1, 7))
def test_iterate_streams_every_row_once_in_order(Row: Any, rows: list[dict[str, Any]],
                                                 order: list[str], batch_size: int) -> None:
    Row.objects.truncate()
    created = Row.objects.bulk_create(rows)
    stored = [m.model_dump() for m in created]

    streamed = [r.id for r in Row.objects.iterate(batch_size=batch_size, order_by=order)]

    assert streamed == _expected(stored, order)
    assert [r.id for r in Row.objects.filter(order_by=order)] == _expected(stored, order)


async def test_aiterate_matches_iterate_with_ties_and_nulls(Row: Any) -> None:
    Row.objects.bulk_create(
        [{"a": i % 3 if i % 4 else None, "b": i % 2, "label": "xyz"[i % 3]} for i in range(23)])
    order = ["-a", "label"]
    try:
        streamed = [r.id async for r in Row.objects.aiterate(batch_size=4, order_by=order)]
    finally:
        await aio.adispose_all()
    assert streamed == [r.id for r in Row.objects.iterate(batch_size=4, order_by=order)]
    assert sorted(streamed) == list(range(1, 24))


def test_iterate_order_is_stable_while_rows_are_updated_behind_the_cursor(Row: Any) -> None:
    """Rows already passed may change; rows not reached yet keep their place."""
    Row.objects.bulk_create([{"a": i % 2, "label": "same"} for i in range(12)])
    seen = []
    for row in Row.objects.iterate(batch_size=3, order_by=["a", "label"]):
        seen.append(row.id)
        Row.objects.update_where({"id": row.id}, b=F("a") + 1)  # does not move rows
    assert sorted(seen) == list(range(1, 13))
    assert len(seen) == len(set(seen))


@pytest.mark.parametrize("order", [["label"], ["-label", "-a"], "b"])
def test_iterate_with_criteria_and_order(Row: Any, order: Any) -> None:
    Row.objects.bulk_create([{"a": i % 3, "b": None if i % 5 == 0 else i % 2,
                              "label": None if i % 4 == 0 else "ab"[i % 2]}
                             for i in range(40)])
    stored = [m.model_dump() for m in Row.objects.filter(a__in=[0, 2])]
    names = [order] if isinstance(order, str) else order
    streamed = [r.id for r in Row.objects.iterate(batch_size=6, order_by=order, a__in=[0, 2])]
    assert streamed == _expected(stored, names)

