"""SPEC D8 amended (issue 13): add_column / ensure_column back-fill, so a model read after
any documented evolution step validates, and the table ends up as the model declares."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel, Field

from registers.db import ConstraintError, MigrationError, UniqueConstraintError, db_field
from registers.db import database_registry as registry

from ._helpers import RawSQL


def _v1(url: str) -> Any:
    @registry(url, table_name="items")
    class Item(BaseModel):
        id: int | None = None
        name: str

    Item.objects.bulk_create([{"name": n} for n in ("a", "b", "c")])
    return Item


def test_the_documented_sequence_reads_back_the_default(database_url: str) -> None:
    """The exact failing sequence of issue 13: a field with a default, ensure_column, all()."""
    _v1(database_url)

    @registry(database_url, table_name="items")
    class Item(BaseModel):
        id: int | None = None
        name: str
        unit: str = "pcs"

    assert Item.objects.ensure_column("unit", str) is True

    assert [(i.name, i.unit) for i in Item.objects.all()] == [
        ("a", "pcs"), ("b", "pcs"), ("c", "pcs"),
    ]
    assert Item.objects.schema_diff() == []  # NOT NULL, as the model declares
    created = Item.objects.create(name="d")
    assert created.unit == "pcs" and Item.objects.require(created.id) == created


def test_ensure_column_takes_the_annotation_and_default_from_the_model(
    database_url: str, raw: RawSQL
) -> None:
    _v1(database_url)

    @registry(database_url, table_name="items")
    class Item(BaseModel):
        id: int | None = None
        name: str
        qty: int = 7
        price: Decimal = Decimal("1.50")
        seen: dt.date = dt.date(2030, 1, 2)
        active: bool = True
        tags: list[str] = Field(default_factory=lambda: ["new"])

    for name in ("qty", "price", "seen", "active", "tags"):
        assert Item.objects.ensure_column(name) is True
        assert Item.objects.ensure_column(name) is False

    first = Item.objects.require(1)
    assert (first.qty, first.price, first.seen, first.active, first.tags) == (
        7, Decimal("1.50"), dt.date(2030, 1, 2), True, ["new"],
    )
    assert Item.objects.schema_diff() == []
    nullable = {c["name"]: c["nullable"] for c in raw.columns("items")}
    assert not any(nullable[n] for n in ("qty", "price", "seen", "active", "tags"))


def test_an_explicit_default_wins_over_the_models(database_url: str) -> None:
    _v1(database_url)

    @registry(database_url, table_name="items")
    class Item(BaseModel):
        id: int | None = None
        name: str
        unit: str = "pcs"

    Item.objects.add_column("unit", str, default="kg")

    assert {i.unit for i in Item.objects.all()} == {"kg"}
    assert Item.objects.create(name="new").unit == "pcs"


def test_a_column_the_model_does_not_have_takes_an_explicit_default(
    database_url: str, raw: RawSQL
) -> None:
    Item = _v1(database_url)

    Item.objects.add_column("legacy", int, nullable=False, default=5)

    assert [r["legacy"] for r in raw.rows("items")] == [5, 5, 5]
    assert {c["name"]: c["nullable"] for c in raw.columns("items")}["legacy"] is False
    assert len(Item.objects.all()) == 3  # the old model ignores the extra column


def test_a_nullable_column_with_a_default_is_back_filled(database_url: str, raw: RawSQL) -> None:
    Item = _v1(database_url)

    Item.objects.add_column("note", str | None, default="it's \"quoted\" % ?")

    assert {r["note"] for r in raw.rows("items")} == {"it's \"quoted\" % ?"}
    assert {c["name"]: c["nullable"] for c in raw.columns("items")}["note"] is True


def test_a_default_factory_is_called_once_per_row(database_url: str) -> None:
    _v1(database_url)

    @registry(database_url, table_name="items")
    class Item(BaseModel):
        id: int | None = None
        name: str
        token: uuid.UUID = db_field(default_factory=uuid.uuid4, unique=True)

    Item.objects.ensure_column("token")

    tokens = [i.token for i in Item.objects.all()]
    assert len(set(tokens)) == 3
    with pytest.raises(UniqueConstraintError):
        Item.objects.create(name="dup", token=tokens[0])


def test_an_optional_field_added_without_default_stays_null(database_url: str) -> None:
    _v1(database_url)

    @registry(database_url, table_name="items")
    class Item(BaseModel):
        id: int | None = None
        name: str
        verified_at: dt.datetime | None = None

    assert Item.objects.ensure_column("verified_at") is True
    assert [i.verified_at for i in Item.objects.all()] == [None, None, None]
    assert Item.objects.schema_diff() == []


def test_not_null_without_any_default_on_a_populated_table_changes_nothing(
    database_url: str, raw: RawSQL
) -> None:
    Item = _v1(database_url)

    with pytest.raises(MigrationError) as info:
        Item.objects.add_column("score", int, nullable=False)

    assert "score" in str(info.value) and "default" in str(info.value)
    assert "score" not in raw.column_names("items")


def test_not_null_without_default_on_an_empty_table_is_allowed(
    database_url: str, raw: RawSQL
) -> None:
    @registry(database_url, table_name="items")
    class Item(BaseModel):
        id: int | None = None
        name: str

    Item.objects.add_column("score", int)

    assert {c["name"]: c["nullable"] for c in raw.columns("items")}["score"] is False


def test_an_invalid_default_is_refused_before_any_ddl(database_url: str, raw: RawSQL) -> None:
    Item = _v1(database_url)

    with pytest.raises(MigrationError) as info:
        Item.objects.add_column("qty", int, default="many")

    assert "qty" in str(info.value) and "'many'" in str(info.value)
    assert "qty" not in raw.column_names("items")


def test_an_unknown_field_needs_an_annotation(database_url: str) -> None:
    Item = _v1(database_url)

    with pytest.raises(MigrationError, match="has no field 'ghost'"):
        Item.objects.ensure_column("ghost")


def test_an_added_field_gets_its_declared_constraints(database_url: str) -> None:
    _v1(database_url)

    @registry(database_url, table_name="items")
    class Item(BaseModel):
        id: int | None = None
        name: str
        qty: int = db_field(0, check="qty >= 0")
        code: str | None = db_field(None, unique=True, index=True)

    Item.objects.ensure_column("qty")
    Item.objects.ensure_column("code")

    Item.objects.update_where({"id": 1}, code="X")
    with pytest.raises(UniqueConstraintError):
        Item.objects.update_where({"id": 2}, code="X")
    with pytest.raises(ConstraintError, match="ck_items_qty"):
        Item.objects.update_where({"id": 1}, qty=-1)
    assert Item.objects.schema_diff() == []


def test_a_check_the_old_rows_break_is_refused_and_nothing_is_added(
    database_url: str, raw: RawSQL
) -> None:
    _v1(database_url)

    @registry(database_url, table_name="items")
    class Item(BaseModel):
        id: int | None = None
        name: str
        qty: int = db_field(-1, check="qty >= 0")

    with pytest.raises(MigrationError):
        Item.objects.ensure_column("qty")

    assert "qty" not in raw.column_names("items")  # MySQL: the ADD COLUMN is undone
    assert len(raw.rows("items")) == 3


def test_a_unique_the_back_filled_rows_break_is_refused_and_nothing_is_added(
    database_url: str, raw: RawSQL
) -> None:
    _v1(database_url)

    @registry(database_url, table_name="items")
    class Item(BaseModel):
        id: int | None = None
        name: str
        code: str = db_field("same", unique=True)

    with pytest.raises(MigrationError) as info:
        Item.objects.ensure_column("code")

    assert "code" in str(info.value)
    assert "code" not in raw.column_names("items")
    assert Item.objects.ensure_column("code", default=None, nullable=True) is True


@pytest.mark.parametrize(
    ("annotation", "default"),
    [
        (str, "x'y\"z\\\\"),
        (str, "é ü 中文 🎉"),
        (int, -(2**62)),
        (float, 1.5e-300),
        (bool, False),
        (bytes, b"\x00\xff'"),
        (Decimal, Decimal("-0.001")),
        (dt.datetime, dt.datetime(2030, 5, 6, 7, 8, 9, 123456, tzinfo=dt.timezone.utc)),
        (dt.time, dt.time(23, 59, 58, 999999)),
        (uuid.UUID, uuid.UUID(int=42)),
        (dict[str, Any], {"k": [1, "two", None]}),
    ],
    ids=lambda v: type(v).__name__ if not isinstance(v, type) else v.__name__,
)
def test_every_column_type_back_fills_exactly(
    database_url: str, annotation: Any, default: Any
) -> None:
    _v1(database_url)

    model = type("Item", (BaseModel,), {
        "__annotations__": {"id": int | None, "name": str, "extra": annotation},
        "id": None,
        "extra": default,
    })
    Item = registry(database_url, table_name="items")(model)

    assert Item.objects.ensure_column("extra") is True

    assert [i.extra for i in Item.objects.all()] == [default] * 3
    assert Item.objects.schema_diff() == []


def test_concurrent_start_ups_ensuring_the_same_column_add_it_once(database_url: str) -> None:
    import threading

    _v1(database_url)

    @registry(database_url, table_name="items")
    class Item(BaseModel):
        id: int | None = None
        name: str
        unit: str = "pcs"

    barrier = threading.Barrier(4)
    results: list[Any] = []

    def start_up() -> None:
        barrier.wait()
        try:
            results.append(Item.objects.ensure_column("unit"))
        except Exception as exc:
            results.append(exc)

    threads = [threading.Thread(target=start_up) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results, key=repr) == [False, False, False, True]
    assert {i.unit for i in Item.objects.all()} == {"pcs"}
    assert Item.objects.schema_diff() == []


def test_ensure_column_inside_a_transaction_joins_it(database_url: str) -> None:
    _v1(database_url)

    @registry(database_url, table_name="items")
    class Item(BaseModel):
        id: int | None = None
        name: str
        unit: str = "pcs"

    with Item.objects.transaction():
        assert Item.objects.ensure_column("unit") is True
        Item.objects.create(name="inside")

    assert [i.unit for i in Item.objects.all()] == ["pcs"] * 4


def test_a_table_name_with_percent_and_quotes_back_fills(database_url: str) -> None:
    @registry(database_url, table_name="it%ems's")
    class Item(BaseModel):
        id: int | None = None
        name: str

    Item.objects.create(name="a")

    @registry(database_url, table_name="it%ems's")
    class Item(BaseModel):  # type: ignore[no-redef]
        id: int | None = None
        name: str
        unit: str = db_field("100%", check="unit <> ''")

    assert Item.objects.ensure_column("unit") is True
    assert Item.objects.require(1).unit == "100%"
    Item.truncate()
    assert Item.objects.create(name="b").id == 2


def test_composite_constraints_come_once_all_their_columns_exist(database_url: str) -> None:
    _v1(database_url)

    @registry(database_url, table_name="items", unique_fields=[("name", "code")],
              indexes=[("shelf", "code")])
    class Item(BaseModel):
        id: int | None = None
        name: str
        code: uuid.UUID = Field(default_factory=uuid.uuid4)
        shelf: int = 0

    assert {d.kind for d in Item.objects.schema_diff()} >= {"missing_unique", "missing_index"}

    Item.objects.ensure_column("code")
    Item.objects.ensure_column("shelf")

    assert Item.objects.schema_diff() == []
    existing = Item.objects.require(1)
    with pytest.raises(UniqueConstraintError) as info:
        Item.objects.create(name=existing.name, code=existing.code)
    assert info.value.fields == ("name", "code")


def test_an_index_the_live_column_cannot_hold_fails_cleanly(
    database_url: str, raw: RawSQL
) -> None:
    """MySQL/MariaDB create a str column that was not indexed as LONGTEXT, which no plain
    index can cover: a new index over it needs a migration. Elsewhere it just works."""
    _v1(database_url)

    @registry(database_url, table_name="items", indexes=[("shelf", "name")])
    class Item(BaseModel):
        id: int | None = None
        name: str
        shelf: int = 0

    if raw.engine.dialect.name in ("mysql", "mariadb"):
        with pytest.raises(MigrationError, match="shelf"):
            Item.objects.ensure_column("shelf")
        assert "shelf" not in raw.column_names("items")  # the ADD COLUMN was undone
    else:
        assert Item.objects.ensure_column("shelf") is True
        assert Item.objects.schema_diff() == []
