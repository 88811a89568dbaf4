"""``iterate(order_by=...)`` pages that the database can seek to (issue 14: linear cost).

A keyset page after ``(age=50, id=7)`` is ``age > 50 OR (age = 50 AND id > 7)``; alone, that
OR makes SQLite and PostgreSQL scan the index from its start for every page, so streaming
N rows costs O(N^2 / batch) (MariaDB's range optimizer copes). Each page after the first
therefore also carries the bound every alternative implies (``age >= 50``), and on
PostgreSQL a column that holds no NULL is ordered without ``NULLS FIRST``/``NULLS LAST``
(which no ascending b-tree serves, so every page was a sort of the whole table). Both must
keep the rows and their order exactly as before: the property test mixes NOT NULL and
nullable columns, ties everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from registers.db import database_registry, db_field


def _model(url: str) -> Any:
    @database_registry(url, table_name="paged")
    class Paged(BaseModel):
        id: int | None = None
        age: int = db_field(index=True)  # NOT NULL
        tag: str  # NOT NULL, no index
        note: str | None = None  # nullable

    return Paged


@pytest.fixture
def Paged(database_url: str) -> Any:
    return _model(database_url)


def _expected(rows: Sequence[dict[str, Any]], order: Sequence[str]) -> list[int]:
    result = sorted(rows, key=lambda r: r["id"])
    for item in reversed(order):
        name, descending = item.removeprefix("-"), item.startswith("-")
        present = sorted((r for r in result if r[name] is not None),
                         key=lambda r: r[name], reverse=descending)
        nulls = [r for r in result if r[name] is None]
        result = present + nulls if descending else nulls + present
    return [r["id"] for r in result]


rows_strategy = st.lists(
    st.fixed_dictionaries({
        "age": st.integers(-1, 2),
        "tag": st.sampled_from(["", "a", "b", "é"]),
        "note": st.one_of(st.none(), st.sampled_from(["x", "y"])),
    }),
    max_size=25,
)
order_strategy = st.lists(
    st.sampled_from(["age", "-age", "tag", "-tag", "note", "-note", "id", "-id"]),
    min_size=1, max_size=3, unique_by=lambda s: s.removeprefix("-"),
)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=rows_strategy, order=order_strategy, batch_size=st.integers(1, 6))
def test_pages_keep_every_row_once_in_order(Paged: Any, rows: list[dict[str, Any]],
                                            order: list[str], batch_size: int) -> None:
    Paged.objects.truncate()
    stored = [m.model_dump() for m in Paged.objects.bulk_create(rows)]
    streamed = [r.id for r in Paged.objects.iterate(batch_size=batch_size, order_by=order)]
    assert streamed == _expected(stored, order)


def _pages(Paged: Any, url: str, count_statements: Any, order: Any) -> list[str]:
    Paged.objects.bulk_create([{"age": i % 3, "tag": "t"} for i in range(9)])
    with count_statements(url) as log:
        assert len(list(Paged.objects.iterate(batch_size=4, order_by=order))) == 9
    return log.matching("SELECT")


@pytest.mark.parametrize(("order", "bound"), [("age", ">="), ("-age", "<=")])
def test_later_pages_bound_the_first_term(Paged: Any, database_url: str,
                                          count_statements: Any, order: str,
                                          bound: str) -> None:
    first, *later = _pages(Paged, database_url, count_statements, order)
    # PostgreSQL reads everything after the first page through one server-side cursor
    # (tests/db/test_iterate_cursor.py), the others a page a statement.
    assert len(later) == (1 if database_url.startswith("postgresql") else 2)
    assert " WHERE " not in first
    for sql in later:
        lead = sql.split(" WHERE ", 1)[1].split(" AND ", 1)[0]
        assert "age" in lead and f" {bound} " in lead and "OR" not in lead, sql


def test_no_bound_for_a_nullable_descending_first_term(Paged: Any, database_url: str,
                                                       count_statements: Any) -> None:
    # NULLs sort last descending: a "note <= ?" bound would drop them.
    Paged.objects.bulk_create([{"age": 1, "tag": "t", "note": None if i % 2 else "n"}
                               for i in range(9)])
    with count_statements(database_url) as log:
        got = [r.id for r in Paged.objects.iterate(batch_size=2, order_by="-note")]
    assert got == [1, 3, 5, 7, 9, 2, 4, 6, 8]  # "n" first, then the NULLs
    assert all("<=" not in sql for sql in log.matching("SELECT"))


def test_key_order_pages_are_a_plain_range(Paged: Any, database_url: str,
                                           count_statements: Any) -> None:
    _, *later = _pages(Paged, database_url, count_statements, None)
    assert later and all(" AND " not in sql.split(" WHERE ", 1)[1] for sql in later)


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_postgresql_orders_not_null_columns_without_a_nulls_clause(
        Paged: Any, database_url: str, count_statements: Any) -> None:
    sqls = _pages(Paged, database_url, count_statements, ["age", "-tag", "note"])
    order = sqls[0].split(" ORDER BY ", 1)[1]
    assert order == "age, tag DESC, note NULLS FIRST, id LIMIT 4", order


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sqlite_seeks_to_each_page(Paged: Any, database_url: str, count_statements: Any,
                                   raw: Any) -> None:
    _, later, _ = _pages(Paged, database_url, count_statements, "age")
    with raw.engine.connect() as conn:
        plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql(
            f"EXPLAIN QUERY PLAN {later}", (1, 1, 1, 5)))
    assert "SEARCH" in plan and "ix_paged_age" in plan, plan
