"""SPEC D2: fields map to columns, and every value round-trips exactly."""

import enum
import uuid
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Annotated, Any, Literal

import pydantic
import pytest
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, NaiveDatetime, PrivateAttr, computed_field

from registers.db import database_registry, db_field

from ._helpers import RawSQL


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Size(enum.IntEnum):
    SMALL = 1
    LARGE = 2


class Status(str, enum.Enum):
    ACTIVE = "active"
    INACTIVE = "inactive"


class Address(BaseModel):
    street: str
    city: str
    zip: str | None = None


class Order(BaseModel):
    lines: list[Address]
    note: str = ""


INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
UNICODE = "Zoë ✓ 漢字 🎉 Ελληνικά عربى"
IST = timezone(timedelta(hours=5, minutes=30))

# (annotation, value) pairs: every value must come back equal, with the same type.
ROUND_TRIPS: list[Any] = [
    pytest.param(int, 0, id="int-zero"),
    pytest.param(int, -1, id="int-negative"),
    pytest.param(int, INT64_MAX, id="int64-max"),
    pytest.param(int, INT64_MIN, id="int64-min"),
    pytest.param(str, "", id="str-empty"),
    pytest.param(str, "hello", id="str-ascii"),
    pytest.param(str, UNICODE, id="str-unicode"),
    pytest.param(str, 'O\'Brien "quoted" ; DROP TABLE x; --', id="str-sql-chars"),
    pytest.param(str, "  padded  ", id="str-whitespace"),
    pytest.param(str, "line1\nline2\ttab\\backslash", id="str-control"),
    pytest.param(str, "x" * 70_000, id="str-70k"),
    pytest.param(float, 0.0, id="float-zero"),
    pytest.param(float, 0.1, id="float-0.1"),
    pytest.param(float, -3.141592653589793, id="float-pi"),
    pytest.param(float, 1.7976931348623157e308, id="float-max"),
    pytest.param(float, 5e-324, id="float-denormal"),
    pytest.param(bool, True, id="bool-true"),
    pytest.param(bool, False, id="bool-false"),
    pytest.param(date, date(2024, 2, 29), id="date-leap"),
    pytest.param(date, date(1970, 1, 1), id="date-epoch"),
    pytest.param(date, date(9999, 12, 31), id="date-max"),
    pytest.param(NaiveDatetime, datetime(2024, 1, 2, 3, 4, 5), id="datetime-naive"),
    pytest.param(NaiveDatetime, datetime(2024, 1, 2, 3, 4, 5, 678901), id="datetime-naive-micro"),
    pytest.param(time, time(0, 0), id="time-midnight"),
    pytest.param(time, time(23, 59, 59, 999999), id="time-micro"),
    pytest.param(time, time(12, 30, 15), id="time-noon"),
    pytest.param(Decimal, Decimal("0"), id="decimal-zero"),
    pytest.param(Decimal, Decimal("19.99"), id="decimal-price"),
    pytest.param(Decimal, Decimal("-0.01"), id="decimal-negative"),
    pytest.param(Decimal, Decimal("1234567890.0123456789"), id="decimal-20-digits"),
    pytest.param(Decimal, Decimal("0.1"), id="decimal-not-a-float"),
    pytest.param(
        Annotated[Decimal, Field(max_digits=10, decimal_places=2)],
        Decimal("99999999.99"),
        id="decimal-constrained",
    ),
    pytest.param(uuid.UUID, uuid.UUID("12345678-1234-5678-1234-567812345678"), id="uuid"),
    pytest.param(uuid.UUID, uuid.UUID(int=0), id="uuid-nil"),
    pytest.param(uuid.UUID, uuid.UUID(int=2**128 - 1), id="uuid-max"),
    pytest.param(bytes, b"", id="bytes-empty"),
    pytest.param(bytes, bytes(range(256)), id="bytes-all-octets"),
    pytest.param(bytes, b"\x00" * 10 + b"tail", id="bytes-nul"),
    pytest.param(bytes, bytes(100_000), id="bytes-100k"),
    pytest.param(Color, Color.GREEN, id="enum"),
    pytest.param(Size, Size.LARGE, id="int-enum"),
    pytest.param(Status, Status.INACTIVE, id="str-enum"),
    pytest.param(dict, {}, id="dict-empty"),
    pytest.param(
        dict[str, Any],
        {"a": 1, "nested": {"b": [1, 2, None]}, "text": UNICODE, "f": 1.5, "t": True},
        id="dict-nested",
    ),
    pytest.param(list, [], id="list-empty"),
    pytest.param(list[Any], [1, "two", 3.5, None, {"x": True}, [UNICODE]], id="list-mixed"),
    pytest.param(list[int], [INT64_MAX, INT64_MIN, 0], id="list-int64"),
    pytest.param(dict[str, int], {"a": 1, "b": 2}, id="dict-str-int"),
    pytest.param(Address, Address(street="1 Main St", city=UNICODE), id="nested-model"),
    pytest.param(
        list[Address],
        [Address(street="a", city="b", zip="1"), Address(street="c", city="d")],
        id="list-of-models",
    ),
    pytest.param(Order, Order(lines=[Address(street="a", city="b")], note=""), id="deep-model"),
    pytest.param(Literal["draft", "published"], "published", id="literal"),
]

AWARE_DATETIMES = [
    pytest.param(datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc), id="utc"),
    pytest.param(datetime(2024, 6, 30, 23, 59, 59, tzinfo=IST), id="plus-0530"),
    pytest.param(datetime(1999, 12, 31, 20, 0, tzinfo=timezone(timedelta(hours=-8))), id="m8"),
]


def _holder(url: str, annotation: Any, default: Any = ..., **options: Any) -> Any:
    model = pydantic.create_model("Holder", id=(int | None, None), value=(annotation, default))
    return database_registry(url, table_name="holders", **options)(model)


def _same_type(got: Any, expected: Any) -> bool:
    if isinstance(expected, enum.Enum):
        return got is expected
    return type(got) is type(expected)


@pytest.mark.parametrize(("annotation", "value"), ROUND_TRIPS)
def test_value_round_trips_exactly(database_url: str, annotation: Any, value: Any) -> None:
    Holder = _holder(database_url, annotation)

    created = Holder.objects.create(value=value)
    fetched = Holder.objects.get(created.id)

    assert fetched.value == value
    assert _same_type(fetched.value, value)
    assert created.value == value
    assert Holder.objects.all()[0].value == value


@pytest.mark.parametrize(("annotation", "value"), ROUND_TRIPS)
def test_none_round_trips_in_an_optional_field(
    database_url: str, annotation: Any, value: Any
) -> None:
    Holder = _holder(database_url, annotation | None, None)

    empty = Holder.objects.create()
    filled = Holder.objects.create(value=value)

    assert Holder.objects.get(empty.id).value is None
    assert Holder.objects.get(filled.id).value == value
    assert Holder.objects.filter(value=None) == [Holder(id=empty.id, value=None)]


@pytest.mark.parametrize("value", AWARE_DATETIMES)
@pytest.mark.parametrize("annotation", [datetime, pydantic.AwareDatetime])
def test_aware_datetime_comes_back_aware_and_equal(
    database_url: str, annotation: Any, value: datetime
) -> None:
    Holder = _holder(database_url, annotation)

    Holder.objects.create(value=value)
    fetched = Holder.objects.get(1).value

    assert fetched.tzinfo is not None
    assert fetched.utcoffset() is not None
    assert fetched == value


def test_naive_and_aware_values_keep_their_kind_in_one_column_on_sqlite(sqlite_url: str) -> None:
    Holder = _holder(sqlite_url, datetime)
    naive = datetime(2024, 5, 6, 7, 8, 9)
    aware = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)

    Holder.objects.create(value=naive)
    Holder.objects.create(value=aware)

    assert Holder.objects.get(1).value.tzinfo is None
    assert Holder.objects.get(1).value == naive
    assert Holder.objects.get(2).value.tzinfo is not None
    assert Holder.objects.get(2).value == aware


def test_plain_datetime_naive_values_follow_the_documented_backend_rule(
    database_url: str, backend: str
) -> None:
    """SQLite keeps naive values naive; PostgreSQL/MySQL store an instant, naive taken as UTC."""
    Holder = _holder(database_url, datetime)
    Holder.objects.create(value=datetime(2024, 5, 6, 7, 8, 9))

    expected = datetime(2024, 5, 6, 7, 8, 9)
    if backend != "sqlite":
        expected = expected.replace(tzinfo=timezone.utc)
    fetched = Holder.objects.get(1).value
    assert fetched == expected
    assert (fetched.tzinfo is None) == (backend == "sqlite")


def test_naive_datetime_fields_stay_naive_on_every_backend(database_url: str) -> None:
    Holder = _holder(database_url, NaiveDatetime)
    Holder.objects.create(value=datetime(2024, 5, 6, 7, 8, 9, 10))

    fetched = Holder.objects.get(1).value
    assert fetched.tzinfo is None
    assert fetched == datetime(2024, 5, 6, 7, 8, 9, 10)


SCALAR_FILTERS = [
    pytest.param(int, INT64_MAX, id="int64-max"),
    pytest.param(str, UNICODE, id="str-unicode"),
    pytest.param(str, "", id="str-empty"),
    pytest.param(float, 0.1, id="float"),
    pytest.param(bool, False, id="bool"),
    pytest.param(date, date(2024, 2, 29), id="date"),
    pytest.param(NaiveDatetime, datetime(2024, 1, 2, 3, 4, 5, 678901), id="datetime-naive"),
    pytest.param(datetime, datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc), id="dt-aware"),
    pytest.param(time, time(23, 59, 59, 999999), id="time"),
    pytest.param(Decimal, Decimal("19.99"), id="decimal"),
    pytest.param(uuid.UUID, uuid.UUID(int=7), id="uuid"),
    pytest.param(bytes, b"\x00\xff", id="bytes"),
    pytest.param(Color, Color.GREEN, id="enum"),
]


@pytest.mark.parametrize(("annotation", "value"), SCALAR_FILTERS)
def test_stored_value_is_found_by_equality_filter(
    database_url: str, annotation: Any, value: Any
) -> None:
    Holder = _holder(database_url, annotation)
    Holder.objects.create(value=value)

    assert [h.value for h in Holder.objects.filter(value=value)] == [value]
    assert Holder.objects.count(value=value) == 1


def test_enum_is_stored_by_value(database_url: str, raw: RawSQL) -> None:
    Holder = _holder(database_url, Color)
    Holder.objects.create(value=Color.GREEN)

    assert raw.rows("holders")[0]["value"] == "green"
    assert Holder.objects.filter(value="green")[0].value is Color.GREEN


def test_enum_filter_accepts_member_or_value(database_url: str) -> None:
    Holder = _holder(database_url, Status)
    Holder.objects.create(value=Status.ACTIVE)
    Holder.objects.create(value="inactive")

    assert [h.id for h in Holder.objects.filter(value=Status.ACTIVE)] == [1]
    assert [h.id for h in Holder.objects.filter(value="inactive")] == [2]


# ------------------------------------------------------------------------------ the schema


def test_columns_follow_field_order(database_url: str, raw: RawSQL) -> None:
    @database_registry(database_url, table_name="wides")
    class Wide(BaseModel):
        id: int | None = None
        zeta: str
        alpha: int
        middle: float | None = None
        beta: bool = False

    assert raw.column_names("wides") == ["id", "zeta", "alpha", "middle", "beta"]
    assert list(Wide.objects.table.columns.keys()) == ["id", "zeta", "alpha", "middle", "beta"]


def test_aliases_never_become_column_names(database_url: str, raw: RawSQL) -> None:
    @database_registry(database_url, table_name="aliased")
    class Aliased(BaseModel):
        model_config = ConfigDict(populate_by_name=True)

        id: int | None = None
        full_name: str = Field(alias="fullName")

    assert raw.column_names("aliased") == ["id", "full_name"]
    created = Aliased.objects.create(full_name="Ada Lovelace")
    assert Aliased.objects.get(created.id).full_name == "Ada Lovelace"
    assert Aliased.objects.filter(full_name="Ada Lovelace") == [created]


def test_private_attributes_and_computed_fields_are_not_columns(
    database_url: str, raw: RawSQL
) -> None:
    @database_registry(database_url, table_name="computeds")
    class Computed(BaseModel):
        id: int | None = None
        first: str
        last: str
        _cache: dict[str, Any] = PrivateAttr(default_factory=dict)

        @computed_field  # type: ignore[prop-decorator]
        @property
        def full(self) -> str:
            return f"{self.first} {self.last}"

    assert raw.column_names("computeds") == ["id", "first", "last"]
    Computed.objects.create(first="Ada", last="Lovelace")
    fetched = Computed.objects.get(1)
    assert fetched.full == "Ada Lovelace"
    assert fetched._cache == {}


@pytest.mark.parametrize(
    ("annotation", "default", "nullable"),
    [
        (str, ..., False),
        (str, "x", False),
        (str | None, None, True),
        (int | None, None, True),
        (int, 0, False),
        (dict[str, Any], ..., False),
        (dict[str, Any] | None, None, True),
        (Color | None, None, True),
    ],
    ids=["str", "str-default", "opt-str", "opt-int", "int-default", "json", "opt-json", "enum"],
)
def test_nullability_follows_the_annotation(
    database_url: str, raw: RawSQL, annotation: Any, default: Any, nullable: bool
) -> None:
    _holder(database_url, annotation, default)

    column = {c["name"]: c for c in raw.columns("holders")}["value"]
    assert column["nullable"] is nullable


def test_key_column_is_the_primary_key(database_url: str, raw: RawSQL) -> None:
    _holder(database_url, str)

    pk = sa.inspect(raw.engine).get_pk_constraint("holders")
    assert pk["constrained_columns"] == ["id"]


def test_int_column_holds_int64_for_a_primary_key(database_url: str) -> None:
    @database_registry(database_url, table_name="bigs")
    class Big(BaseModel):
        id: int
        name: str

    Big.objects.create(id=INT64_MAX, name="max")
    Big.objects.create(id=INT64_MIN, name="min")
    assert Big.objects.get(INT64_MAX).name == "max"
    assert Big.objects.get(INT64_MIN).name == "min"


# ------------------------------------------------------------------------------- db_field


def test_db_field_unique_adds_a_unique_constraint(database_url: str) -> None:
    from registers.db import UniqueConstraintError

    @database_registry(database_url, table_name="handles")
    class Handle(BaseModel):
        id: int | None = None
        handle: str = db_field(unique=True)

    Handle.objects.create(handle="ada")
    with pytest.raises(UniqueConstraintError):
        Handle.objects.create(handle="ada")
    assert Handle.objects.count() == 1


def test_db_field_index_creates_an_index(database_url: str, raw: RawSQL) -> None:
    @database_registry(database_url, table_name="indexed")
    class Indexed(BaseModel):
        id: int | None = None
        slug: str = db_field(index=True)

    indexes = sa.inspect(raw.engine).get_indexes("indexed")
    assert any(ix["column_names"] == ["slug"] for ix in indexes)


def test_db_field_foreign_key_creates_a_foreign_key(database_url: str, raw: RawSQL) -> None:
    @database_registry(database_url, table_name="parents")
    class Parent(BaseModel):
        id: int | None = None

    @database_registry(database_url, table_name="children")
    class Child(BaseModel):
        id: int | None = None
        parent_id: int = db_field(foreign_key="parents.id")

    fks = sa.inspect(raw.engine).get_foreign_keys("children")
    assert len(fks) == 1
    assert fks[0]["constrained_columns"] == ["parent_id"]
    assert fks[0]["referred_table"] == "parents"
    assert fks[0]["referred_columns"] == ["id"]
    parent = Parent.objects.create()
    assert Child.objects.create(parent_id=parent.id).parent_id == parent.id


def test_db_field_primary_key_names_the_key(database_url: str) -> None:
    @database_registry(database_url, table_name="countries", key_field="code")
    class Country(BaseModel):
        code: str = db_field(primary_key=True)
        name: str

    Country.objects.create(code="fr", name="France")
    assert Country.objects.get("fr") is not None


def test_db_field_autoincrement_key(database_url: str) -> None:
    @database_registry(database_url, table_name="tickets")
    class Ticket(BaseModel):
        id: int | None = db_field(default=None, primary_key=True, autoincrement=True)
        title: str

    assert [Ticket.objects.create(title=t).id for t in "ab"] == [1, 2]


def test_db_field_passes_field_kwargs_to_pydantic(database_url: str) -> None:
    @database_registry(database_url, table_name="labels")
    class Label(BaseModel):
        id: int | None = None
        text: str = db_field(default="none", max_length=5, description="short text")

    assert Label.model_fields["text"].description == "short text"
    assert Label.objects.create().text == "none"
    with pytest.raises(pydantic.ValidationError):
        Label.objects.create(text="far too long")
    assert Label.objects.count() == 1


def test_db_field_result_is_a_pydantic_field(database_url: str) -> None:
    from pydantic.fields import FieldInfo

    assert isinstance(db_field(unique=True), FieldInfo)


UPDATES = [
    pytest.param(int, 1, INT64_MIN, id="int64"),
    pytest.param(str, "a", UNICODE, id="str-unicode"),
    pytest.param(float, 1.0, 0.1, id="float"),
    pytest.param(bool, False, True, id="bool"),
    pytest.param(date, date(2020, 1, 1), date(2024, 2, 29), id="date"),
    pytest.param(
        NaiveDatetime, datetime(2020, 1, 1), datetime(2024, 1, 2, 3, 4, 5, 6), id="dt"
    ),
    pytest.param(
        datetime,
        datetime(2020, 1, 1, tzinfo=timezone.utc),
        datetime(2024, 6, 30, 23, 59, 59, tzinfo=IST),
        id="dt-aware",
    ),
    pytest.param(time, time(1, 2), time(23, 59, 59, 999999), id="time"),
    pytest.param(Decimal, Decimal("1"), Decimal("1234567890.0123456789"), id="decimal"),
    pytest.param(uuid.UUID, uuid.UUID(int=1), uuid.UUID(int=2**128 - 1), id="uuid"),
    pytest.param(bytes, b"a", bytes(range(256)), id="bytes"),
    pytest.param(Color, Color.RED, Color.GREEN, id="enum"),
    pytest.param(dict[str, Any], {}, {"k": [1, {"n": None}], "u": UNICODE}, id="dict"),
    pytest.param(list[Address], [], [Address(street="s", city=UNICODE)], id="list-models"),
    pytest.param(Address, Address(street="a", city="b"), Address(street="c", city="d"), id="model"),
]


@pytest.mark.parametrize(("annotation", "before", "after"), UPDATES)
@pytest.mark.parametrize("how", ["update_where", "save", "upsert", "bulk_upsert"])
def test_updated_value_round_trips_exactly(
    database_url: str, annotation: Any, before: Any, after: Any, how: str
) -> None:
    Holder = _holder(database_url, annotation)
    holder = Holder.objects.create(value=before)

    if how == "update_where":
        (returned,) = Holder.objects.update_where({"id": holder.id}, value=after)
        assert returned.value == after
    elif how == "save":
        holder.value = after
        holder.save()
    elif how == "upsert":
        assert Holder.objects.upsert(id=holder.id, value=after).value == after
    else:
        assert Holder.objects.bulk_upsert([{"id": holder.id, "value": after}])[0].value == after

    fetched = Holder.objects.get(holder.id).value
    assert fetched == after
    assert _same_type(fetched, after)


@pytest.mark.parametrize(("annotation", "value"), SCALAR_FILTERS)
def test_stored_value_is_found_by_in_lookup(database_url: str, annotation: Any, value: Any) -> None:
    Holder = _holder(database_url, annotation)
    Holder.objects.create(value=value)

    assert [h.value for h in Holder.objects.filter(value__in=[value])] == [value]
    assert Holder.objects.count(value__not_in=[value]) == 0
