"""SPEC D4: get, require, filter, all, first, last, exists, count, lookups, iterate."""

import enum
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import pytest
from pydantic import BaseModel, Field, ValidationError

from registers.db import (
    InvalidQueryError,
    RecordNotFoundError,
    database_registry,
)

from ._helpers import RawSQL


class Tier(enum.Enum):
    FREE = "free"
    PRO = "pro"


class Person(BaseModel):
    id: int | None = None
    name: str
    email: str
    age: int | None = None
    score: float = 0.0
    tier: Tier = Tier.FREE
    born: date | None = None


PEOPLE = [
    {
        "name": "Alice",
        "email": "alice@x.io",
        "age": 30,
        "score": 9.5,
        "tier": Tier.PRO,
        "born": date(1994, 5, 1),
    },
    {"name": "bob", "email": "bob@x.io", "age": 25, "score": 7.0, "born": date(1999, 1, 1)},
    {"name": "Carol", "email": "carol@y.org", "age": None, "score": 8.0, "tier": Tier.PRO},
    {"name": "dave", "email": "dave@y.org", "age": 41, "score": 3.5},
    {"name": "Eve_100%", "email": "eve@z.net", "age": 25, "score": 7.0},
]


@pytest.fixture
def People(database_url: str) -> Any:
    model = type("Person", (Person,), {"__module__": __name__})
    People = database_registry(database_url, table_name="people", unique_fields=["email"])(model)
    People.objects.bulk_create(PEOPLE)
    return People


def names(records: list[Any]) -> list[str]:
    return [r.name for r in records]


# ------------------------------------------------------------------------------ get/require


def test_get_by_key(People: Any) -> None:
    alice = People.objects.get(1)

    assert isinstance(alice, People)
    assert alice.name == "Alice"
    assert alice.tier is Tier.PRO
    assert alice.born == date(1994, 5, 1)


def test_get_missing_key_returns_none(People: Any) -> None:
    assert People.objects.get(999) is None


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        ({"email": "bob@x.io"}, "bob"),
        ({"name": "Carol", "age": None}, "Carol"),
        ({"email__endswith": "@z.net"}, "Eve_100%"),
        ({"email": "nobody@x.io"}, None),
    ],
)
def test_get_by_criteria(People: Any, criteria: dict[str, Any], expected: str | None) -> None:
    found = People.objects.get(**criteria)

    assert (found.name if found else None) == expected


def test_get_key_from_string_is_coerced(People: Any) -> None:
    assert People.objects.get("2").name == "bob"


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((1,), {"email": "alice@x.io"}),
        ((1, 2), {}),
    ],
    ids=["key-and-criteria", "two-positionals"],
)
def test_get_rejects_mixed_or_multiple_positional_forms(
    People: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    with pytest.raises(InvalidQueryError):
        People.objects.get(*args, **kwargs)


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((1,), {"email": "alice@x.io"}), ((1, 2), {})],
    ids=["key-and-criteria", "two-positionals"],
)
def test_require_rejects_mixed_or_multiple_positional_forms(
    People: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    with pytest.raises(InvalidQueryError):
        People.objects.require(*args, **kwargs)


def test_require_returns_the_record(People: Any) -> None:
    assert People.objects.require(2).name == "bob"
    assert People.objects.require(email="dave@y.org").name == "dave"


@pytest.mark.parametrize(
    ("args", "kwargs", "mentions"),
    [
        ((999,), {}, ["Person", "999"]),
        ((), {"email": "ghost@x.io"}, ["Person", "email", "ghost@x.io"]),
        ((), {"name": "Alice", "age": 99}, ["Person", "name", "Alice", "age", "99"]),
    ],
    ids=["by-key", "by-criteria", "by-two-criteria"],
)
def test_require_missing_raises_record_not_found_naming_model_and_criteria(
    People: Any, args: tuple[Any, ...], kwargs: dict[str, Any], mentions: list[str]
) -> None:
    with pytest.raises(RecordNotFoundError) as info:
        People.objects.require(*args, **kwargs)

    for word in mentions:
        assert word in str(info.value)


# ----------------------------------------------------------------------------- filter / all


def test_all_and_get_all_return_every_row(People: Any) -> None:
    assert sorted(names(People.objects.all())) == sorted(p["name"] for p in PEOPLE)
    assert People.objects.get_all() == People.objects.all()


def test_filter_without_criteria_returns_every_row(People: Any) -> None:
    assert len(People.objects.filter()) == len(PEOPLE)


def test_filter_by_equality(People: Any) -> None:
    assert sorted(names(People.objects.filter(age=25))) == ["Eve_100%", "bob"]
    assert sorted(names(People.objects.filter(age=25, score=7.0))) == ["Eve_100%", "bob"]
    assert names(People.objects.filter(age=25, name="bob")) == ["bob"]


def test_filter_none_means_is_null(People: Any) -> None:
    assert names(People.objects.filter(age=None)) == ["Carol"]
    assert names(People.objects.filter(born=None, order_by="id")) == ["Carol", "dave", "Eve_100%"]


def test_filter_by_enum_member(People: Any) -> None:
    assert names(People.objects.filter(tier=Tier.PRO, order_by="id")) == ["Alice", "Carol"]


def test_filter_coerces_values_to_field_types(People: Any) -> None:
    assert names(People.objects.filter(age="41")) == ["dave"]
    assert names(People.objects.filter(born="1999-01-01")) == ["bob"]
    assert names(People.objects.filter(tier="pro", order_by="id")) == ["Alice", "Carol"]


LOOKUPS = [
    ({"age__eq": 25}, ["bob", "Eve_100%"]),
    ({"name__ne": "bob"}, ["Alice", "Carol", "dave", "Eve_100%"]),
    ({"age__lt": 30}, ["bob", "Eve_100%"]),
    ({"age__lte": 30}, ["Alice", "bob", "Eve_100%"]),
    ({"age__gt": 30}, ["dave"]),
    ({"age__gte": 30}, ["Alice", "dave"]),
    ({"score__gt": 7.0}, ["Alice", "Carol"]),
    ({"born__lt": date(1995, 1, 1)}, ["Alice"]),
    ({"name__in": ["bob", "dave", "nobody"]}, ["bob", "dave"]),
    ({"name__in": ("bob",)}, ["bob"]),
    ({"name__in": []}, []),
    ({"name__not_in": ["bob", "dave"]}, ["Alice", "Carol", "Eve_100%"]),
    ({"age__in": [25, 41]}, ["bob", "dave", "Eve_100%"]),
    ({"tier__in": [Tier.PRO]}, ["Alice", "Carol"]),
    ({"email__like": "%@y.org"}, ["Carol", "dave"]),
    ({"name__ilike": "ALICE"}, ["Alice"]),
    ({"name__ilike": "%o%"}, ["bob", "Carol"]),
    ({"email__contains": "x.io"}, ["Alice", "bob"]),
    ({"name__contains": "a"}, ["Carol", "dave"]),
    ({"name__icontains": "A"}, ["Alice", "Carol", "dave"]),
    ({"name__startswith": "d"}, ["dave"]),
    ({"name__startswith": "D"}, []),
    ({"name__endswith": "e"}, ["Alice", "dave"]),
    ({"name__contains": "%"}, ["Eve_100%"]),
    ({"name__contains": "_"}, ["Eve_100%"]),
    ({"name__startswith": "Eve_"}, ["Eve_100%"]),
    ({"name__endswith": "0%"}, ["Eve_100%"]),
    ({"age__isnull": True}, ["Carol"]),
    ({"age__isnull": False}, ["Alice", "bob", "dave", "Eve_100%"]),
    ({"age__between": (25, 30)}, ["Alice", "bob", "Eve_100%"]),
    ({"age__between": [26, 40]}, ["Alice"]),
    ({"born__between": (date(1990, 1, 1), date(1999, 1, 1))}, ["Alice", "bob"]),
    ({"age__gte": 25, "age__lt": 41, "name__ne": "bob"}, ["Alice", "Eve_100%"]),
]


@pytest.mark.parametrize(
    ("criteria", "expected"),
    LOOKUPS,
    ids=[next(iter(c)) + f"-{i}" for i, (c, _) in enumerate(LOOKUPS)],
)
def test_lookup_operators(People: Any, criteria: dict[str, Any], expected: list[str]) -> None:
    assert names(People.objects.filter(order_by="id", **criteria)) == expected
    assert People.objects.count(**criteria) == len(expected)
    assert People.objects.exists(**criteria) is bool(expected)


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        ("name", ["Alice", "Carol", "Eve_100%", "bob", "dave"]),
        (["-score", "id"], ["Alice", "Carol", "bob", "Eve_100%", "dave"]),
        (["age", "-id"], ["Carol", "Eve_100%", "bob", "Alice", "dave"]),
        (["-age", "id"], ["dave", "Alice", "bob", "Eve_100%", "Carol"]),
        ("id", ["Alice", "bob", "Carol", "dave", "Eve_100%"]),
        ("-id", ["Eve_100%", "dave", "Carol", "bob", "Alice"]),
    ],
)
def test_order_by(People: Any, order_by: Any, expected: list[str]) -> None:
    result = names(People.objects.filter(order_by=order_by))
    if "age" in str(order_by):
        # NULLs sort first or last depending on the backend: compare the non-null part.
        assert [n for n in result if n != "Carol"] == [n for n in expected if n != "Carol"]
    elif order_by == "name":
        assert sorted(result, key=str) == sorted(expected, key=str)
        assert result.index("Alice") < result.index("Carol") < result.index("Eve_100%")
    else:
        assert result == expected


@pytest.mark.parametrize(
    ("limit", "offset", "expected"),
    [
        (2, None, ["Alice", "bob"]),
        (2, 2, ["Carol", "dave"]),
        (None, 3, ["dave", "Eve_100%"]),
        (10, 4, ["Eve_100%"]),
        (3, 10, []),
        (0, None, []),
    ],
)
def test_pagination(
    People: Any, limit: int | None, offset: int | None, expected: list[str]
) -> None:
    assert names(People.objects.filter(limit=limit, offset=offset, order_by="id")) == expected


def test_pagination_with_criteria(People: Any) -> None:
    page = People.objects.filter(age__isnull=False, limit=2, offset=1, order_by="-age")

    assert names(page) == ["Alice", "bob"] or names(page) == ["Alice", "Eve_100%"]


# ----------------------------------------------------------------- first / last / count / exists


def test_first_and_last_follow_key_order(People: Any) -> None:
    assert People.objects.first().name == "Alice"
    assert People.objects.last().name == "Eve_100%"


def test_first_and_last_with_criteria(People: Any) -> None:
    assert People.objects.first(tier=Tier.PRO).name == "Alice"
    assert People.objects.last(tier=Tier.PRO).name == "Carol"
    assert People.objects.first(age=25).name == "bob"
    assert People.objects.last(age=25).name == "Eve_100%"


def test_first_and_last_with_order_by(People: Any) -> None:
    assert People.objects.first(order_by="-score").name == "Alice"
    assert People.objects.last(order_by="-score").name == "dave"
    assert People.objects.last(order_by="score").name == "Alice"


def test_first_and_last_without_match_return_none(People: Any) -> None:
    assert People.objects.first(name="nobody") is None
    assert People.objects.last(name="nobody") is None


def test_first_and_last_on_empty_table_return_none(database_url: str) -> None:
    @database_registry(database_url, table_name="empties")
    class Empty(BaseModel):
        id: int | None = None

    assert Empty.objects.first() is None
    assert Empty.objects.last() is None
    assert Empty.objects.all() == []
    assert Empty.objects.count() == 0
    assert Empty.objects.exists() is False


def test_count_and_exists(People: Any) -> None:
    assert People.objects.count() == 5
    assert People.objects.count(age=25) == 2
    assert People.objects.count(name="nobody") == 0
    assert People.objects.exists() is True
    assert People.objects.exists(email="alice@x.io") is True
    assert People.objects.exists(email="nobody@x.io") is False


# ------------------------------------------------------------------------------ bad queries


BAD_QUERIES = [
    ({"nope": 1}, "nope"),
    ({"nope__gt": 1}, "nope"),
    ({"age__regex": "1"}, "regex"),
    ({"age__gt__lt": 1}, "gt__lt"),
    ({"age": "not a number"}, "age"),
    ({"age__gt": "old"}, "age"),
    ({"age__in": ["x"]}, "age"),
    ({"age__in": 5}, "age"),
    ({"born": "yesterday-ish"}, "born"),
    ({"tier": "platinum"}, "tier"),
    ({"age__between": (1,)}, "age"),
    ({"age__between": (1, 2, 3)}, "age"),
    ({"age__between": 5}, "age"),
    ({"age__isnull": "maybe"}, "age"),
    ({"name": 123}, "name"),
]


@pytest.mark.parametrize(("criteria", "named"), BAD_QUERIES, ids=[str(c) for c, _ in BAD_QUERIES])
@pytest.mark.parametrize("method", ["filter", "get", "first", "count", "exists", "delete_where"])
def test_bad_criteria_raise_invalid_query_naming_the_problem(
    People: Any, method: str, criteria: dict[str, Any], named: str
) -> None:
    with pytest.raises(InvalidQueryError) as info:
        getattr(People.objects, method)(**criteria)

    assert named in str(info.value)
    assert People.objects.count() == 5


@pytest.mark.parametrize(
    ("order_by", "named"),
    [("nope", "nope"), ("-nope", "nope"), (["name", "nope"], "nope"), ("--name", "name")],
)
def test_order_by_unknown_field_raises_invalid_query(
    People: Any, order_by: Any, named: str
) -> None:
    with pytest.raises(InvalidQueryError) as info:
        People.objects.filter(order_by=order_by)

    assert named in str(info.value)


@pytest.mark.parametrize(("limit", "offset"), [(-1, None), (None, -1), ("ten", None)])
def test_invalid_pagination_raises_invalid_query(People: Any, limit: Any, offset: Any) -> None:
    with pytest.raises(InvalidQueryError):
        People.objects.filter(limit=limit, offset=offset)


def test_design_doc_type_check_on_filter(database_url: str) -> None:
    @database_registry(database_url, table_name="users")
    class User(BaseModel):
        id: int | None = None
        role: str

    with pytest.raises(InvalidQueryError) as info:
        User.objects.filter(role=123)
    assert "role" in str(info.value)


# ------------------------------------------------------------------------------ corrupt rows


class Strict(BaseModel):
    id: int | None = None
    code: str = Field(pattern=r"^[A-Z]+$")
    qty: int = Field(default=0, ge=0)


@pytest.mark.parametrize(
    ("column", "value"),
    [("code", "lowercase"), ("qty", -5)],
)
@pytest.mark.parametrize("read", ["get", "filter", "all", "first", "require", "iterate"])
def test_corrupt_row_raises_validation_error_on_read(
    database_url: str, raw: RawSQL, column: str, value: Any, read: str
) -> None:
    model = type("Strict", (Strict,), {"__module__": __name__})
    Model = database_registry(database_url, table_name="stricts")(model)
    Model.objects.create(code="OK")
    raw.execute(f"UPDATE stricts SET {column} = :v WHERE id = 1", {"v": value})

    calls = {
        "get": lambda: Model.objects.get(1),
        "filter": lambda: Model.objects.filter(id=1),
        "all": lambda: Model.objects.all(),
        "first": lambda: Model.objects.first(),
        "require": lambda: Model.objects.require(1),
        "iterate": lambda: list(Model.objects.iterate()),
    }
    with pytest.raises(ValidationError):
        calls[read]()


def test_corrupt_json_row_raises_validation_error(database_url: str, raw: RawSQL) -> None:
    class Address(BaseModel):
        street: str
        city: str

    @database_registry(database_url, table_name="homes")
    class Home(BaseModel):
        id: int | None = None
        address: Address

    Home.objects.create(address=Address(street="a", city="b"))
    raw.execute("UPDATE homes SET address = :v WHERE id = 1", {"v": '{"city": "b"}'})

    with pytest.raises(ValidationError):
        Home.objects.get(1)


# ---------------------------------------------------------------------------------- iterate


def test_iterate_yields_every_row_in_batches(People: Any) -> None:
    iterator = People.objects.iterate(batch_size=2, order_by="id")

    assert isinstance(iterator, Iterator)
    assert names(list(iterator)) == [p["name"] for p in PEOPLE]


@pytest.mark.parametrize("batch_size", [1, 2, 3, 5, 1000])
def test_iterate_batch_size_does_not_change_the_result(People: Any, batch_size: int) -> None:
    rows = list(People.objects.iterate(batch_size=batch_size, order_by="-id"))

    assert names(rows) == [p["name"] for p in reversed(PEOPLE)]
    assert all(isinstance(r, People) for r in rows)


def test_iterate_with_criteria(People: Any) -> None:
    rows = People.objects.iterate(batch_size=1, order_by="id", age__gte=25, tier=Tier.FREE)

    assert names(list(rows)) == ["bob", "dave", "Eve_100%"]


def test_iterate_default_order_is_by_key(People: Any) -> None:
    assert [r.id for r in People.objects.iterate(batch_size=2)] == [1, 2, 3, 4, 5]


def test_iterate_is_lazy(People: Any, database_url: str, count_statements) -> None:
    with count_statements(database_url) as log:
        iterator = People.objects.iterate(batch_size=2)
        assert log == []
        first = next(iterator)
    assert first.name == "Alice"


def test_iterate_streams_many_rows(database_url: str) -> None:
    @database_registry(database_url, table_name="many")
    class Many(BaseModel):
        id: int | None = None
        n: int

    Many.objects.bulk_create([{"n": i} for i in range(2500)])

    total = 0
    expected = 0
    for row in Many.objects.iterate(batch_size=1000):
        assert row.n == expected
        expected += 1
        total += row.n
    assert expected == 2500
    assert total == sum(range(2500))


@pytest.mark.parametrize(
    "kwargs",
    [{"nope": 1}, {"order_by": "nope"}, {"batch_size": 0}, {"batch_size": -5}, {"age": "x"}],
    ids=["unknown-field", "unknown-order", "zero-batch", "negative-batch", "uncoercible"],
)
def test_iterate_rejects_bad_arguments(People: Any, kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidQueryError):
        list(People.objects.iterate(**kwargs))


def test_reads_return_fresh_instances(People: Any) -> None:
    first = People.objects.get(1)
    first.name = "mutated"

    assert People.objects.get(1).name == "Alice"
    assert People.objects.get(1) is not People.objects.get(1)


def test_datetime_lookups(database_url: str) -> None:
    @database_registry(database_url, table_name="events")
    class Event(BaseModel):
        id: int | None = None
        at: datetime

    for day in (1, 2, 3):
        Event.objects.create(at=datetime(2024, 1, day, 12, 0))

    assert [e.id for e in Event.objects.filter(at__gt=datetime(2024, 1, 1, 12, 0))] == [2, 3]
    assert Event.objects.count(at__between=(datetime(2024, 1, 1), datetime(2024, 1, 2, 23))) == 2
    assert Event.objects.get(at=datetime(2024, 1, 3, 12, 0)).id == 3


# ----------------------------------------------------------- comparisons follow value order


def test_decimal_comparisons_and_ordering_are_numeric(database_url: str) -> None:
    from decimal import Decimal

    @database_registry(database_url, table_name="prices")
    class Price(BaseModel):
        id: int | None = None
        amount: Decimal

    for amount in ("100", "9.5", "19.99", "-3", "0.001"):
        Price.objects.create(amount=Decimal(amount))

    ordered = [p.amount for p in Price.objects.filter(order_by="amount")]
    assert ordered == sorted(ordered)
    assert [str(a.normalize()) for a in ordered] == ["-3", "0.001", "9.5", "19.99", "1E+2"]
    over_ten = Price.objects.filter(amount__gt=Decimal("10"), order_by="amount")
    assert [p.amount for p in over_ten] == [Decimal("19.99"), Decimal("100")]
    assert Price.objects.count(amount__between=(Decimal("0"), Decimal("10"))) == 2


def test_aware_datetime_comparisons_follow_the_instant(database_url: str) -> None:
    from datetime import timedelta, timezone

    ist = timezone(timedelta(hours=5, minutes=30))

    @database_registry(database_url, table_name="events")
    class Event(BaseModel):
        id: int | None = None
        at: datetime

    # 10:00+05:30 is 04:30 UTC, earlier than 05:00 UTC although "10:00" > "05:00".
    Event.objects.create(at=datetime(2024, 1, 1, 10, 0, tzinfo=ist))
    Event.objects.create(at=datetime(2024, 1, 1, 5, 0, tzinfo=timezone.utc))
    Event.objects.create(at=datetime(2024, 1, 1, 4, 0, tzinfo=timezone.utc))

    assert [e.id for e in Event.objects.filter(order_by="at")] == [3, 1, 2]
    cutoff = datetime(2024, 1, 1, 4, 45, tzinfo=timezone.utc)
    assert [e.id for e in Event.objects.filter(at__lt=cutoff, order_by="at")] == [3, 1]
    assert Event.objects.get(at=datetime(2024, 1, 1, 4, 30, tzinfo=timezone.utc)).id == 1


def test_like_lookups_escape_backslash_and_wildcards(database_url: str) -> None:
    @database_registry(database_url, table_name="paths")
    class Path(BaseModel):
        id: int | None = None
        text: str

    for text in ("a\\b", "a_b", "a%b", "ab", "axb"):
        Path.objects.create(text=text)

    def texts(**criteria: Any) -> list[str]:
        return [p.text for p in Path.objects.filter(order_by="id", **criteria)]

    assert texts(text__contains="\\") == ["a\\b"]
    assert texts(text__startswith="a\\") == ["a\\b"]
    assert texts(text__endswith="\\b") == ["a\\b"]
    assert texts(text__contains="_") == ["a_b"]
    assert texts(text__icontains="%B") == ["a%b"]
    assert texts(text__startswith="a%") == ["a%b"]


def test_in_lookup_with_thousands_of_values(People: Any) -> None:
    keys = list(range(-5000, 5000))

    assert len(People.objects.filter(id__in=keys)) == 5
    assert People.objects.count(id__not_in=keys) == 0
    assert People.objects.count(name__in=[f"n{i}" for i in range(5000)] + ["bob"]) == 1


@pytest.mark.parametrize("key", ["abc", 1.5, [1]])
def test_get_with_an_uncoercible_key_raises_invalid_query(People: Any, key: Any) -> None:
    with pytest.raises(InvalidQueryError):
        People.objects.get(key)


def test_saving_while_iterating(database_url: str) -> None:
    @database_registry(database_url, table_name="visits")
    class Visit(BaseModel):
        id: int | None = None
        n: int = 0

    Visit.objects.bulk_create([{"n": 0} for _ in range(35)])

    for visit in Visit.objects.iterate(batch_size=10):
        visit.n += 1
        visit.save()

    assert Visit.objects.count(n=1) == 35
