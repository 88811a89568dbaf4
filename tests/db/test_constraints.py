"""SPEC D15 (issue 13): declared constraints are enforced by the database on every
backend, and anything registers does not implement is refused at decoration."""

from __future__ import annotations

import datetime as dt
import warnings
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from registers.db import (
    ConfigurationError,
    ConstraintError,
    UniqueConstraintError,
    database_registry,
    db_field,
)

from ._helpers import RawSQL

# ------------------------------------------------------------------ composite unique


@pytest.fixture
def Member(database_url: str) -> Any:
    @database_registry(database_url, table_name="members",
                       unique_fields=[("tenant_id", "email"), "badge"])
    class Member(BaseModel):
        id: int | None = None
        tenant_id: int
        email: str
        badge: str | None = None

    return Member


def test_a_composite_unique_allows_the_same_value_in_another_tenant(Member: Any) -> None:
    Member.objects.create(tenant_id=1, email="a@x")
    Member.objects.create(tenant_id=2, email="a@x")

    assert Member.objects.count() == 2


def test_a_composite_unique_refuses_the_same_pair_naming_both_fields(Member: Any) -> None:
    Member.objects.create(tenant_id=1, email="a@x")

    with pytest.raises(UniqueConstraintError) as info:
        Member.objects.create(tenant_id=1, email="a@x")

    assert info.value.fields == ("tenant_id", "email")
    assert "(tenant_id, email)" in str(info.value) and "'a@x'" in str(info.value)
    assert Member.objects.count() == 1


def test_a_single_unique_next_to_a_composite_one_is_still_enforced(Member: Any) -> None:
    Member.objects.create(tenant_id=1, email="a@x", badge="B1")

    with pytest.raises(UniqueConstraintError) as info:
        Member.objects.create(tenant_id=2, email="b@x", badge="B1")

    assert info.value.field == "badge" and info.value.fields == ("badge",)


def test_nulls_never_collide_in_a_unique_constraint(Member: Any) -> None:
    Member.objects.create(tenant_id=1, email="a@x")
    Member.objects.create(tenant_id=1, email="b@x")  # both badges NULL

    assert Member.objects.count() == 2


def test_composite_unique_violations_roll_back_a_bulk_create(Member: Any) -> None:
    with pytest.raises(UniqueConstraintError):
        Member.objects.bulk_create([
            {"tenant_id": 1, "email": "a@x"}, {"tenant_id": 1, "email": "a@x"},
        ])

    assert Member.objects.count() == 0


def test_composite_unique_is_enforced_on_update_where(Member: Any) -> None:
    Member.objects.create(tenant_id=1, email="a@x")
    other = Member.objects.create(tenant_id=1, email="b@x")

    with pytest.raises(UniqueConstraintError) as info:
        Member.objects.update_where({"id": other.id}, email="a@x")

    assert info.value.fields == ("tenant_id", "email")


@pytest.mark.parametrize(
    ("unique_fields", "message"),
    [
        ([("tenant_id", "nope")], "has no field 'nope'"),
        ([("tenant_id", "tenant_id")], "names a field twice"),
        ([()], "non-empty tuple"),
        ([("tenant_id", "email"), ("tenant_id", "email")], "duplicates"),
        ([42], "neither a field name"),
        ([("tenant_id", 3)], "has no field 3"),
    ],
)
def test_malformed_unique_fields_are_configuration_errors(
    database_url: str, unique_fields: Any, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        @database_registry(database_url, table_name="members", unique_fields=unique_fields)
        class Member(BaseModel):
            id: int | None = None
            tenant_id: int
            email: str


# ------------------------------------------------------------------------- indexes


def test_single_and_composite_indexes_are_created(database_url: str, raw: RawSQL) -> None:
    @database_registry(database_url, table_name="people",
                       indexes=[("last_name", "first_name"), "city"])
    class Person(BaseModel):
        id: int | None = None
        first_name: str
        last_name: str
        city: str
        zip_code: str = db_field(index=True)

    live = sa.inspect(raw.engine).get_indexes("people")
    indexes = {ix["name"]: ix["column_names"] for ix in live}

    assert indexes == {
        "ix_people_last_name_first_name": ["last_name", "first_name"],
        "ix_people_city": ["city"],
        "ix_people_zip_code": ["zip_code"],
    }
    assert Person.objects.schema_diff() == []
    Person.objects.create(first_name="Ada", last_name="L", city="L", zip_code="1")
    Person.objects.create(first_name="Ada", last_name="L", city="L", zip_code="1")  # not unique


@pytest.mark.parametrize("indexes", [["ghost"], [("city", "ghost")], ["city", "city"]])
def test_malformed_indexes_are_configuration_errors(database_url: str, indexes: Any) -> None:
    with pytest.raises(ConfigurationError, match="indexes"):
        @database_registry(database_url, table_name="people", indexes=indexes)
        class Person(BaseModel):
            id: int | None = None
            city: str


# --------------------------------------------------------------------------- CHECK


@pytest.fixture
def Stock(database_url: str) -> Any:
    @database_registry(database_url, table_name="stock")
    class Stock(BaseModel):
        id: int | None = None
        qty: int = db_field(check="qty >= 0")
        low: int = db_field(-1000, check="low <= qty")
        size: int = Field(0, ge=0)

    return Stock


@pytest.mark.parametrize("write", ["create", "bulk_create", "update_where", "upsert", "save"])
def test_a_check_violation_is_a_constraint_error_naming_the_constraint(
    Stock: Any, write: str
) -> None:
    kept = Stock.objects.create(qty=5)

    with pytest.raises(ConstraintError) as info:
        if write == "create":
            Stock.objects.create(qty=-1)
        elif write == "bulk_create":
            Stock.objects.bulk_create([{"qty": 1}, {"qty": -1}])
        elif write == "update_where":
            Stock.objects.update_where({"id": kept.id}, qty=-1)
        elif write == "upsert":
            Stock.objects.upsert(id=kept.id, qty=-1)
        else:
            kept.qty = -1
            kept.save()

    assert "ck_stock_qty" in str(info.value)
    assert not isinstance(info.value, UniqueConstraintError)
    assert [(s.id, s.qty) for s in Stock.objects.all()] == [(kept.id, 5)]


def test_a_check_may_compare_columns(Stock: Any) -> None:
    with pytest.raises(ConstraintError, match="ck_stock_low"):
        Stock.objects.create(qty=1, low=2)

    assert Stock.objects.create(qty=2, low=2).low == 2


def test_the_boundary_value_of_a_check_passes(Stock: Any) -> None:
    assert Stock.objects.create(qty=0).qty == 0


def test_pydantic_constraints_still_validate_in_python(Stock: Any, count_statements: Any,
                                                        database_url: str) -> None:
    with count_statements(database_url) as log, pytest.raises(ValidationError):
        Stock.objects.create(qty=1, size=-1)

    assert log.matching("INSERT") == []


def test_a_check_is_enforced_on_raw_sql_too(Stock: Any, raw: RawSQL) -> None:
    with pytest.raises(sa.exc.DBAPIError):
        raw.execute("INSERT INTO stock (qty, low, size) VALUES (-5, 0, 0)")


# --------------------------------------------------------------------- foreign keys


def _parent_child(url: str, on_delete: str, nullable: bool = False) -> tuple[Any, Any]:
    @database_registry(url, table_name="parents")
    class Parent(BaseModel):
        id: int | None = None

    if nullable:
        @database_registry(url, table_name="children")
        class Child(BaseModel):
            id: int | None = None
            parent_id: int | None = db_field(None, foreign_key="parents.id",
                                             on_delete=on_delete)
    else:
        @database_registry(url, table_name="children")
        class Child(BaseModel):  # type: ignore[no-redef]
            id: int | None = None
            parent_id: int = db_field(foreign_key="parents.id", on_delete=on_delete)

    return Parent, Child


def test_on_delete_cascade_deletes_the_children(database_url: str) -> None:
    Parent, Child = _parent_child(database_url, "cascade")
    keep, gone = Parent.objects.create(), Parent.objects.create()
    Child.objects.bulk_create([{"parent_id": keep.id}, {"parent_id": gone.id},
                               {"parent_id": gone.id}])

    assert Parent.objects.delete(gone.id) is True

    assert [c.parent_id for c in Child.objects.all()] == [keep.id]
    assert Child.objects.schema_diff() == []


def test_on_delete_set_null_clears_the_reference(database_url: str) -> None:
    Parent, Child = _parent_child(database_url, "SET NULL", nullable=True)
    parent = Parent.objects.create()
    child = Child.objects.create(parent_id=parent.id)

    parent.delete()

    assert Child.objects.require(child.id).parent_id is None
    assert Child.objects.schema_diff() == []


def test_on_delete_restrict_refuses_the_delete(database_url: str) -> None:
    Parent, Child = _parent_child(database_url, "restrict")
    parent = Parent.objects.create()
    Child.objects.create(parent_id=parent.id)

    with pytest.raises(ConstraintError, match="foreign key"):
        Parent.objects.delete(parent.id)

    assert Parent.objects.count() == 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"foreign_key": "parents.id", "on_delete": "explode"}, "on_delete must be one of"),
        ({"on_delete": "cascade"}, "needs foreign_key"),
        ({"foreign_key": "parents.id", "on_delete": 1}, "on_delete must be one of"),
        ({"foreign_key": "parents"}, "table.column"),
    ],
)
def test_bad_foreign_key_options_are_configuration_errors(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        db_field(**options)


def test_set_null_on_a_field_that_cannot_be_none_is_refused(database_url: str) -> None:
    with pytest.raises(ConfigurationError, match=r"parent_id.*allows None"):
        _parent_child(database_url, "set null", nullable=False)


# --------------------------------------------------------- unimplemented options refused


@pytest.mark.parametrize("option", ["checks", "ondelete", "server_default", "nullable",
                                    "auto_now_update", "sa_column"])
def test_an_option_db_field_does_not_implement_is_refused_by_name(option: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not pydantic's deprecation warning: an error
        with pytest.raises(ConfigurationError, match=repr(option)):
            db_field(**{option: True})


@pytest.mark.parametrize("option", ["unique", "index", "check", "on_delete", "foreign_key",
                                    "auto_now", "primary_key"])
def test_a_column_option_given_to_pydantic_field_is_refused_at_decoration(
    database_url: str, option: str
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        info = Field(json_schema_extra={option: True})
    with pytest.raises(ConfigurationError, match=rf"{option!r}.*db_field"):
        @database_registry(database_url, table_name="things")
        class Thing(BaseModel):
            id: int | None = None
            name: str = info


def test_autoincrement_on_a_field_that_is_not_the_key_is_refused(database_url: str) -> None:
    with pytest.raises(ConfigurationError, match="counter: autoincrement"):
        @database_registry(database_url, table_name="things")
        class Thing(BaseModel):
            id: int | None = None
            counter: int | None = db_field(None, autoincrement=True)


def test_extra_allow_models_are_refused(database_url: str) -> None:
    with pytest.raises(ConfigurationError, match="extra='allow'"):
        @database_registry(database_url, table_name="things")
        class Thing(BaseModel):
            model_config = ConfigDict(extra="allow")
            id: int | None = None


def test_auto_now_on_a_field_that_is_not_a_datetime_is_refused(database_url: str) -> None:
    with pytest.raises(ConfigurationError, match="stamp: auto_now needs"):
        @database_registry(database_url, table_name="things")
        class Thing(BaseModel):
            id: int | None = None
            stamp: dt.date = db_field(auto_now=True)


def test_auto_now_and_auto_now_add_together_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="exclude each other"):
        db_field(auto_now=True, auto_now_add=True)


@pytest.mark.parametrize("check", ["", "   ", 5])
def test_an_empty_check_is_refused(check: Any) -> None:
    with pytest.raises(ConfigurationError, match="check must be"):
        db_field(check=check)


def test_a_field_name_longer_than_any_backend_allows_is_refused(database_url: str) -> None:
    model = type("Thing", (BaseModel,), {"__annotations__": {"id": int | None, "x" * 64: int},
                                          "id": None})
    with pytest.raises(ConfigurationError, match="at most 63 bytes"):
        database_registry(database_url, table_name="things")(model)


# --------------------------------------------------------------- managed keys not reused


def test_a_deleted_newest_key_is_never_handed_out_again(database_url: str) -> None:
    @database_registry(database_url, table_name="tickets")
    class Ticket(BaseModel):
        id: int | None = None
        title: str

    Ticket.objects.create(title="one")
    two = Ticket.objects.create(title="two")
    assert two.id == 2

    Ticket.objects.delete(2)

    assert Ticket.objects.create(title="three").id == 3
    Ticket.objects.delete(3)
    assert [t.id for t in Ticket.objects.bulk_create([{"title": "a"}, {"title": "b"}])] == [4, 5]


def test_keys_keep_counting_after_truncate(database_url: str) -> None:
    @database_registry(database_url, table_name="tickets")
    class Ticket(BaseModel):
        id: int | None = None
        title: str

    Ticket.objects.bulk_create([{"title": "a"}, {"title": "b"}])

    Ticket.truncate()

    assert Ticket.objects.create(title="after").id == 3


def test_sqlite_tables_use_autoincrement(sqlite_url: str, raw: Any) -> None:
    @database_registry(sqlite_url, table_name="tickets")
    class Ticket(BaseModel):
        id: int | None = None

    Ticket.objects.count()  # creates the table
    with sa.create_engine(sqlite_url).connect() as conn:
        sql = conn.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE name = 'tickets'").scalar()
    assert "AUTOINCREMENT" in sql


# ------------------------------------------------------------- schema_diff of constraints


def _bare_members(url: str) -> None:
    from registers.db import get_engine

    metadata = sa.MetaData()
    sa.Table(
        "members", metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("tenant_id", sa.BigInteger, nullable=False),
        sa.Column("email", sa.String(255), nullable=False),
        sa.Column("qty", sa.BigInteger, nullable=False),
        sa.Column("parent_id", sa.BigInteger, nullable=True),
        sa.Column("legacy", sa.String(20), nullable=True, index=True),
        sa.UniqueConstraint("legacy", name="uq_members_legacy"),
    )
    metadata.create_all(get_engine(url))


def test_schema_diff_reports_every_missing_and_extra_constraint(database_url: str) -> None:
    @database_registry(database_url, table_name="parents")
    class Parent(BaseModel):
        id: int | None = None

    _bare_members(database_url)

    @database_registry(database_url, table_name="members",
                       unique_fields=[("tenant_id", "email")], indexes=["email"])
    class Member(BaseModel):
        id: int | None = None
        tenant_id: int
        email: str
        qty: int = db_field(check="qty >= 0")
        parent_id: int | None = db_field(None, foreign_key="parents.id", on_delete="cascade")
        legacy: str | None = None

    found = {(d.kind, d.column) for d in Member.objects.schema_diff()}

    assert found == {
        ("missing_unique", "tenant_id, email"),
        ("extra_unique", "legacy"),
        ("missing_index", "email"),
        ("extra_index", "legacy"),
        ("missing_check", "ck_members_qty"),
        ("missing_foreign_key", "parent_id"),
    }


def test_schema_diff_reports_a_different_on_delete(database_url: str, raw: RawSQL) -> None:
    @database_registry(database_url, table_name="parents")
    class Parent(BaseModel):
        id: int | None = None

    @database_registry(database_url, table_name="children")
    class Child(BaseModel):
        id: int | None = None
        parent_id: int = db_field(foreign_key="parents.id")

    raw_children = Child
    raw_children.objects.count()  # the table as first declared

    @database_registry(database_url, table_name="children")
    class Child(BaseModel):  # type: ignore[no-redef]
        id: int | None = None
        parent_id: int = db_field(foreign_key="parents.id", on_delete="cascade")

    diff = Child.objects.schema_diff()

    assert [(d.kind, d.column) for d in diff] == [("foreign_key_mismatch", "parent_id")]
    assert "CASCADE" in str(diff[0])
    assert raw_children.objects.schema_diff() == []


def test_schema_diff_of_a_table_with_every_constraint_is_empty(database_url: str) -> None:
    @database_registry(database_url, table_name="parents")
    class Parent(BaseModel):
        id: int | None = None

    @database_registry(database_url, table_name="members",
                       unique_fields=[("tenant_id", "email"), "code"],
                       indexes=[("email", "tenant_id"), "qty"])
    class Member(BaseModel):
        id: int | None = None
        tenant_id: int
        email: str
        code: str | None = db_field(None, index=True)
        qty: int = db_field(check="qty >= 0")
        parent_id: int | None = db_field(None, foreign_key="parents.id", on_delete="set null")
        data: dict[str, int] = {}

    assert Member.objects.schema_diff() == []


# ------------------------------------------------------ identifier lengths of derived names


LONG = "t" * 63  # the longest table name PostgreSQL allows


@pytest.mark.parametrize("length", [59, 61, 63])
def test_a_table_name_at_the_limit_gets_valid_constraint_names(
    database_url: str, raw: RawSQL, length: int
) -> None:
    @database_registry(database_url, table_name="p" * 63)
    class Parent(BaseModel):
        id: int | None = None

    @database_registry(database_url, table_name="t" * length,
                       unique_fields=[("tenant_id", "email")], indexes=["email"])
    class Long(BaseModel):
        id: int | None = None
        tenant_id: int
        email: str
        qty: int = db_field(0, check="qty >= 0")
        parent_id: int | None = db_field(None, foreign_key=f"{'p' * 63}.id",
                                         on_delete="cascade")

    names = [c.name for c in Long.objects.table.constraints] + \
        [ix.name for ix in Long.objects.table.indexes]
    assert all(len(str(n).encode()) <= 63 for n in names)
    assert len(set(names)) == len(names)

    Long.objects.create(tenant_id=1, email="a")
    with pytest.raises(UniqueConstraintError) as info:
        Long.objects.create(tenant_id=1, email="a")
    assert info.value.fields == ("tenant_id", "email")
    with pytest.raises(ConstraintError, match="CHECK"):
        Long.objects.create(tenant_id=2, email="a", qty=-1)
    parent = Parent.objects.create()
    Long.objects.create(tenant_id=3, email="c", parent_id=parent.id)
    parent.delete()
    assert Long.objects.count() == 1
    assert Long.objects.schema_diff() == []


def test_shortened_names_are_stable_and_distinct() -> None:
    from registers.db.metadata import constraint_name

    first = constraint_name("uq", LONG, ["alpha", "beta"])
    assert first == constraint_name("uq", LONG, ["alpha", "beta"])
    assert first != constraint_name("uq", LONG, ["alpha", "gamma"])
    assert len(first.encode()) == 63 and first.startswith("uq_ttt")
    assert constraint_name("uq", "items", ["a"]) == "uq_items_a"
    multibyte = constraint_name("ix", "é" * 31, ["x"])
    assert len(multibyte.encode()) <= 63
    multibyte.encode().decode("utf-8")  # never cut inside a character


@pytest.mark.parametrize("explicit", ["upsert", "save", "bulk_upsert"])
def test_an_explicit_key_write_never_moves_the_key_counter_back(
    database_url: str, explicit: str
) -> None:
    @database_registry(database_url, table_name="tickets")
    class Ticket(BaseModel):
        id: int | None = None
        title: str

    Ticket.objects.bulk_create([{"title": t} for t in "abc"])
    Ticket.objects.delete(3)

    if explicit == "upsert":
        Ticket.objects.upsert(id=1, title="again")
    elif explicit == "save":
        Ticket(id=1, title="again").save()
    else:
        Ticket.objects.bulk_upsert([{"id": 1, "title": "again"}])

    assert Ticket.objects.create(title="new").id == 4


def test_derived_names_always_fit_and_never_collide() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from registers.db.metadata import IDENTIFIER_LIMIT, constraint_name

    names = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                    min_size=1, max_size=70)

    @settings(deadline=None, max_examples=300)
    @given(st.sampled_from(["pk", "uq", "ix", "ck", "fk"]), names,
           st.lists(names, max_size=3), st.lists(names, max_size=3))
    def check(prefix: str, table: str, one: list[str], other: list[str]) -> None:
        first = constraint_name(prefix, table, one)
        assert len(first.encode("utf-8")) <= IDENTIFIER_LIMIT
        assert first.startswith(prefix + "_")
        assert first == constraint_name(prefix, table, one)
        if "_".join(one) != "_".join(other):
            assert first != constraint_name(prefix, table, other)

    check()


def test_a_check_naming_an_unknown_column_fails_at_first_use(database_url: str,
                                                             raw: RawSQL) -> None:
    from registers.db import SchemaError

    @database_registry(database_url, table_name="things")
    class Thing(BaseModel):
        id: int | None = None
        qty: int = db_field(check="nope >= 0")

    with pytest.raises(SchemaError) as info:  # the database refuses the CREATE TABLE
        Thing.objects.count()
    assert "things" in str(info.value)
    with pytest.raises(SchemaError, match="nope"):  # its operations say why, every time
        Thing.objects.create(qty=1)
    assert not raw.has_table("things")


def test_a_model_the_database_refuses_does_not_block_the_others(database_url: str,
                                                                raw: RawSQL) -> None:
    from registers.db import SchemaError

    @database_registry(database_url, table_name="refused")
    class Refused(BaseModel):
        id: int | None = None
        qty: int = db_field(check="nope >= 0")

    @database_registry(database_url, table_name="fine")
    class Fine(BaseModel):
        id: int | None = None
        qty: int

    assert Fine.objects.create(qty=1).id is not None  # the first use: both tried
    assert Fine.objects.count() == 1
    with pytest.raises(SchemaError, match="cannot create table 'refused'"):
        Refused.objects.count()
    assert raw.has_table("fine") and not raw.has_table("refused")
    assert not raw.has_table("things")
