"""SPEC D15 (issue 13) on the write paths: automatic timestamps on every write, composite
unique sets as upsert conflict targets, sync and async, on every backend."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pydantic import BaseModel

from registers.db import UniqueConstraintError, database_registry, db_field

# ----------------------------------------------------------------------- timestamps


@pytest.fixture
def Doc(database_url: str) -> Any:
    @database_registry(database_url, table_name="docs", unique_fields=["slug"])
    class Doc(BaseModel):
        id: int | None = None
        slug: str
        body: str = ""
        created_at: dt.datetime = db_field(auto_now_add=True)
        updated_at: dt.datetime = db_field(auto_now=True)

    return Doc


def _utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.timezone.utc) if value.tzinfo else \
        value.replace(tzinfo=dt.timezone.utc)


def _between(value: dt.datetime, start: dt.datetime, end: dt.datetime) -> bool:
    return start - dt.timedelta(seconds=1) <= _utc(value) <= end + dt.timedelta(seconds=1)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def test_create_sets_both_timestamps(Doc: Any) -> None:
    start = _now()
    doc = Doc.objects.create(slug="a")
    end = _now()

    stored = Doc.objects.require(doc.id)
    assert _between(stored.created_at, start, end)
    assert _between(stored.updated_at, start, end)
    assert stored == doc


def test_an_explicit_created_at_is_kept_on_insert(Doc: Any) -> None:
    old = dt.datetime(2001, 2, 3, 4, 5, 6, tzinfo=dt.timezone.utc)

    doc = Doc.objects.create(slug="a", created_at=old)

    assert _utc(Doc.objects.require(doc.id).created_at) == old


def _age(Doc: Any, key: int) -> dt.datetime:
    """Move both timestamps of a row into the past (so a later write is visible)."""
    past = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
    Doc.objects.update_where({"id": key}, created_at=past)
    # auto_now is stamped on update_where too, so age it behind registers' back.
    column = Doc.objects.dialect.quote("updated_at")
    table = Doc.objects.dialect.quote("docs")
    with Doc.objects.transaction() as conn:
        conn.exec_driver_sql(
            f"UPDATE {table} SET {column} = {Doc.objects.dialect.placeholder} "
            f"WHERE {Doc.objects.dialect.quote('id')} = {Doc.objects.dialect.placeholder}",
            (_stored(Doc, past), key),
        )
    return past


def _stored(Doc: Any, value: dt.datetime) -> Any:
    codec = Doc.objects.query.field("updated_at").to_db
    return value if codec is None else codec(value)


WRITES = ["save", "upsert_by_key", "upsert_by_unique", "update_where", "bulk_upsert"]


def _write(Doc: Any, how: str, doc: Any) -> None:
    if how == "save":
        doc = Doc.objects.require(doc.id)
        doc.body = "changed"
        doc.save()
    elif how == "upsert_by_key":
        Doc.objects.upsert(id=doc.id, slug=doc.slug, body="changed")
    elif how == "upsert_by_unique":
        Doc.objects.upsert(slug=doc.slug, body="changed")
    elif how == "update_where":
        Doc.objects.update_where({"id": doc.id}, body="changed")
    else:
        Doc.objects.bulk_upsert([{"slug": doc.slug, "body": "changed"}])


@pytest.mark.parametrize("how", WRITES)
def test_every_update_path_refreshes_auto_now_and_keeps_auto_now_add(
    Doc: Any, how: str
) -> None:
    doc = Doc.objects.create(slug="a")
    past = _age(Doc, doc.id)
    start = _now()

    _write(Doc, how, doc)

    stored = Doc.objects.require(doc.id)
    assert stored.body == "changed"
    assert _utc(stored.created_at) == past, "auto_now_add must survive updates"
    assert _between(stored.updated_at, start, _now()), "auto_now must be the write's time"
    assert Doc.objects.count() == 1


def test_update_where_returns_the_new_timestamp(Doc: Any) -> None:
    doc = Doc.objects.create(slug="a")
    _age(Doc, doc.id)
    start = _now()

    [updated] = Doc.objects.update_where({"id": doc.id}, body="x")

    assert _between(updated.updated_at, start, _now())


def test_bulk_create_stamps_every_row(Doc: Any) -> None:
    start = _now()
    docs = Doc.objects.bulk_create([{"slug": "a"}, Doc(slug="b")])
    end = _now()

    for doc in [*docs, *Doc.objects.all()]:
        assert _between(doc.created_at, start, end)
        assert _between(doc.updated_at, start, end)


def test_an_instance_built_long_before_its_save_gets_the_save_time(Doc: Any) -> None:
    doc = Doc(slug="a")
    doc.updated_at = dt.datetime(1999, 1, 1, tzinfo=dt.timezone.utc)
    start = _now()

    doc.save()

    assert _between(Doc.objects.require(doc.id).updated_at, start, _now())
    assert _between(doc.updated_at, start, _now())  # reflected onto the instance


async def test_async_writes_stamp_too(Doc: Any) -> None:
    start = _now()
    doc = await Doc.objects.acreate(slug="a")
    past = _age(Doc, doc.id)

    await Doc.objects.aupsert(slug="a", body="async")
    [updated] = await Doc.objects.aupdate_where({"id": doc.id}, body="again")

    stored = await Doc.objects.aget(doc.id)
    assert _utc(stored.created_at) == past
    assert _between(stored.updated_at, start, _now())
    assert updated.updated_at == stored.updated_at
    created = await Doc.objects.abulk_create([{"slug": "b"}])
    assert _between(created[0].updated_at, start, _now())


# ------------------------------------------------------------ composite upsert targets


@pytest.fixture
def Seat(database_url: str) -> Any:
    @database_registry(database_url, table_name="seats",
                       unique_fields=[("tenant_id", "email")])
    class Seat(BaseModel):
        id: int | None = None
        tenant_id: int
        email: str
        role: str = "member"

    return Seat


@pytest.fixture
def Badge(database_url: str) -> Any:
    """A composite unique set next to a single one (MySQL's guarded upsert path)."""
    @database_registry(database_url, table_name="badges",
                       unique_fields=[("tenant_id", "email"), "code"])
    class Badge(BaseModel):
        id: int | None = None
        tenant_id: int
        email: str
        code: str | None = None
        role: str = "member"

    return Badge


def test_upsert_on_a_composite_unique_updates_the_matching_row(Seat: Any) -> None:
    first = Seat.objects.upsert(tenant_id=1, email="a@x")
    again = Seat.objects.upsert(tenant_id=1, email="a@x", role="admin")

    assert again.id == first.id
    assert [(s.id, s.role) for s in Seat.objects.all()] == [(first.id, "admin")]


def test_upsert_on_another_tenant_inserts(Seat: Any) -> None:
    one = Seat.objects.upsert(tenant_id=1, email="a@x")
    two = Seat.objects.upsert(tenant_id=2, email="a@x")

    assert one.id != two.id and Seat.objects.count() == 2


def test_bulk_upsert_uses_the_composite_target(Seat: Any) -> None:
    Seat.objects.create(tenant_id=1, email="a@x")

    result = Seat.objects.bulk_upsert([
        {"tenant_id": 1, "email": "a@x", "role": "admin"},
        {"tenant_id": 1, "email": "b@x"},
        {"tenant_id": 2, "email": "a@x"},
    ])

    assert Seat.objects.count() == 3
    assert [r.id for r in result] == [
        Seat.objects.require(tenant_id=t, email=e).id
        for t, e in ((1, "a@x"), (1, "b@x"), (2, "a@x"))
    ]
    assert Seat.objects.require(tenant_id=1, email="a@x").role == "admin"


def test_a_single_unique_value_decides_before_a_composite_one(Badge: Any) -> None:
    original = Badge.objects.create(tenant_id=1, email="a@x", code="C1")

    moved = Badge.objects.upsert(tenant_id=1, email="a@x", code="C1", role="admin")

    assert moved.id == original.id
    assert Badge.objects.count() == 1 and Badge.objects.require(original.id).role == "admin"


def test_the_composite_target_with_a_second_unique_updates_the_right_row(Badge: Any) -> None:
    Badge.objects.create(tenant_id=9, email="other@x", code="TAKEN")
    mine = Badge.objects.create(tenant_id=1, email="a@x")

    updated = Badge.objects.upsert(tenant_id=1, email="a@x", role="admin")

    assert updated.id == mine.id
    assert {b.email: b.role for b in Badge.objects.all()} == {
        "other@x": "member", "a@x": "admin",
    }


def test_an_upsert_whose_update_collides_on_the_other_unique_set_names_it(
    Badge: Any,
) -> None:
    Badge.objects.create(tenant_id=9, email="other@x", code="TAKEN")
    Badge.objects.create(tenant_id=1, email="a@x")

    # "code" decides (single unique fields first): its row would take (1, "a@x").
    with pytest.raises(UniqueConstraintError) as info:
        Badge.objects.upsert(tenant_id=1, email="a@x", code="TAKEN")

    assert info.value.fields == ("tenant_id", "email")
    assert {b.email: b.code for b in Badge.objects.all()} == {"other@x": "TAKEN", "a@x": None}


async def test_aupsert_uses_the_composite_target(Badge: Any) -> None:
    first = await Badge.objects.aupsert(tenant_id=1, email="a@x")
    again = await Badge.objects.aupsert(tenant_id=1, email="a@x", role="admin")

    assert again.id == first.id
    assert (await Badge.objects.acount()) == 1
    result = await Badge.objects.abulk_upsert([{"tenant_id": 1, "email": "a@x", "role": "x"}])
    assert result[0].id == first.id


# ------------------------------------------------------------- async error translation


async def test_async_constraint_violations_name_the_constraint(database_url: str) -> None:
    from registers.db import ConstraintError

    @database_registry(database_url, table_name="stock",
                       unique_fields=[("tenant_id", "sku")])
    class Stock(BaseModel):
        id: int | None = None
        tenant_id: int
        sku: str
        qty: int = db_field(0, check="qty >= 0")

    await Stock.objects.acreate(tenant_id=1, sku="A")

    with pytest.raises(UniqueConstraintError) as unique:
        await Stock.objects.acreate(tenant_id=1, sku="A")
    with pytest.raises(ConstraintError) as check:
        await Stock.objects.acreate(tenant_id=2, sku="A", qty=-1)

    assert unique.value.fields == ("tenant_id", "sku")
    assert "ck_stock_qty" in str(check.value)
    assert await Stock.objects.acount() == 1
