"""Property-based: random operation sequences agree with an in-memory model of the table.

A hypothesis ``RuleBasedStateMachine`` drives create / upsert / update_where (plain and
``F``) / delete / delete_where / bulk_create / filter / count against one table, applying
the same operation to a dict of rows; after every step the table must equal the dict.
Failed writes (key or unique collisions) must change nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)
from pydantic import BaseModel

from registers.db import (
    ConstraintError,
    DuplicateKeyError,
    F,
    UniqueConstraintError,
    database_registry,
)

EXAMPLES = 20
STEPS = 25

keys = st.integers(min_value=1, max_value=8)
codes = st.sampled_from(["a", "b", "c", "d'; DROP TABLE items; --", "é", "%_"])
quantities = st.integers(min_value=-5, max_value=5)
tags = st.none() | st.sampled_from(["x", "y", "'; --", "ü", ""])
Row = dict[str, Any]


def machine_for(
    model: Any, counts: dict[str, int], unique_code: bool
) -> type[RuleBasedStateMachine]:
    objects = model.objects

    class TableMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            objects.truncate()
            self.rows: dict[int, Row] = {}
            counts["examples"] += 1

        # --- helpers ------------------------------------------------------------------

        def step(self, name: str) -> None:
            counts["steps"] += 1
            counts[name] = counts.get(name, 0) + 1

        def code_owner(self, code: str) -> int | None:
            if not unique_code:
                return None
            return next((k for k, r in self.rows.items() if r["code"] == code), None)

        def expect_failure(self, error: type[Exception], call: Callable[[], Any]) -> None:
            before = dict(self.rows)
            try:
                call()
            except error:
                counts["rejected"] = counts.get("rejected", 0) + 1
            else:
                raise AssertionError(f"expected {error.__name__}")
            assert self.rows == before

        def matching(self, field: str, op: str, value: Any) -> list[int]:
            def test(row: Row) -> bool:
                if op == "eq":
                    return bool(row[field] == value)
                return row[field] is not None and row[field] < value

            return sorted(k for k, r in self.rows.items() if test(r))

        # --- writes -------------------------------------------------------------------

        @rule(key=keys, code=codes, qty=quantities, tag=tags)
        def create(self, key: int, code: str, qty: int, tag: str | None) -> None:
            self.step("create")
            row = {"id": key, "code": code, "qty": qty, "tag": tag}
            owner = self.code_owner(code)
            if key in self.rows and owner not in (None, key):
                self.expect_failure(ConstraintError, lambda: objects.create(**row))
            elif key in self.rows:
                self.expect_failure(DuplicateKeyError, lambda: objects.create(**row))
            elif owner is not None:
                self.expect_failure(UniqueConstraintError, lambda: objects.create(**row))
            else:
                assert objects.create(**row).model_dump() == row
                self.rows[key] = row

        @rule(key=keys, code=codes, qty=quantities, tag=tags)
        def upsert(self, key: int, code: str, qty: int, tag: str | None) -> None:
            self.step("upsert")
            row = {"id": key, "code": code, "qty": qty, "tag": tag}
            if self.code_owner(code) not in (None, key):
                # The code belongs to another row: upsert is on the key, so this collides.
                self.expect_failure(UniqueConstraintError, lambda: objects.upsert(**row))
                return
            assert objects.upsert(**row).model_dump() == row
            self.rows[key] = row

        @rule(items=st.lists(st.tuples(keys, codes, quantities, tags), max_size=4))
        def bulk_create(self, items: list[tuple[int, str, int, str | None]]) -> None:
            self.step("bulk_create")
            batch = [{"id": k, "code": c, "qty": q, "tag": t} for k, c, q, t in items]
            ids = [r["id"] for r in batch]
            batch_codes = [r["code"] for r in batch]
            clash = (
                len(set(ids)) < len(ids)
                or (unique_code and len(set(batch_codes)) < len(batch_codes))
                or any(k in self.rows for k in ids)
                or any(self.code_owner(c) is not None for c in batch_codes)
            )
            if clash:
                self.expect_failure(ConstraintError, lambda: objects.bulk_create(batch))
                return
            created = objects.bulk_create(batch)
            assert [m.model_dump() for m in created] == batch
            for row in batch:
                self.rows[row["id"]] = row

        @rule(limit=quantities, qty=quantities)
        def update_qty_where_below(self, limit: int, qty: int) -> None:
            self.step("update_where")
            hit = self.matching("qty", "lt", limit)
            updated = objects.update_where({"qty__lt": limit}, qty=qty)
            assert [m.id for m in updated] == hit
            for k in hit:
                self.rows[k] = {**self.rows[k], "qty": qty}
            assert [m.model_dump() for m in updated] == [self.rows[k] for k in hit]

        @rule(tag=tags, delta=st.integers(min_value=-3, max_value=3))
        def increment_where_tag(self, tag: str | None, delta: int) -> None:
            self.step("update_where_F")
            hit = self.matching("tag", "eq", tag)
            updated = objects.update_where({"tag": tag}, qty=F("qty") + delta)
            for k in hit:
                self.rows[k] = {**self.rows[k], "qty": self.rows[k]["qty"] + delta}
            assert [m.model_dump() for m in updated] == [self.rows[k] for k in hit]

        @rule(key=keys, code=codes)
        def change_code(self, key: int, code: str) -> None:
            self.step("update_where_unique")
            if key not in self.rows:
                assert objects.update_where({"id": key}, code=code) == []
                return
            if self.code_owner(code) not in (None, key):
                self.expect_failure(
                    UniqueConstraintError, lambda: objects.update_where({"id": key}, code=code)
                )
                return
            (updated,) = objects.update_where({"id": key}, code=code)
            self.rows[key] = {**self.rows[key], "code": code}
            assert updated.model_dump() == self.rows[key]

        @rule(tag=tags)
        def delete_where_tag(self, tag: str | None) -> None:
            self.step("delete_where")
            hit = self.matching("tag", "eq", tag)
            assert objects.delete_where(tag=tag) == len(hit)
            for k in hit:
                del self.rows[k]

        @rule(key=keys)
        def delete(self, key: int) -> None:
            self.step("delete")
            assert objects.delete(key) is (key in self.rows)
            self.rows.pop(key, None)

        # --- reads --------------------------------------------------------------------

        @rule(low=quantities, descending=st.booleans())
        def filter_ordered(self, low: int, descending: bool) -> None:
            self.step("filter")
            expected = sorted(
                (r for r in self.rows.values() if r["qty"] >= low),
                key=lambda r: (r["qty"], r["id"]),
                reverse=descending,
            )
            order = ["-qty", "-id"] if descending else ["qty", "id"]
            found = objects.filter(qty__gte=low, order_by=order)
            assert [m.model_dump() for m in found] == expected

        @rule(tag=tags)
        def count_by_tag(self, tag: str | None) -> None:
            self.step("count")
            assert objects.count(tag=tag) == len(self.matching("tag", "eq", tag))

        @invariant()
        def table_matches_model(self) -> None:
            assert [m.model_dump() for m in objects.all()] == [
                self.rows[k] for k in sorted(self.rows)
            ]

    return TableMachine


@pytest.mark.parametrize("unique_code", [True, False], ids=["unique", "plain"])
def test_random_operation_sequences_match_an_in_memory_table(
    database_url: str, unique_code: bool, figures: Callable[[str, object], None]
) -> None:
    unique = ["code"] if unique_code else []

    @database_registry(database_url, table_name="items", unique_fields=unique)
    class Item(BaseModel):
        id: int
        code: str
        qty: int
        tag: str | None = None

    counts: dict[str, int] = {"examples": 0, "steps": 0}
    run_state_machine_as_test(
        machine_for(Item, counts, unique_code),
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            # No shrinking: keeps a failing backend's run short; failures print their steps.
            phases=[Phase.explicit, Phase.reuse, Phase.generate],
            suppress_health_check=[HealthCheck.function_scoped_fixture],
        ),
    )
    figures("sequences", counts["examples"])
    figures("operations", counts["steps"])
    figures("rejected writes checked", counts.get("rejected", 0))
