"""Issue 11: one semantics on every backend. Each case once failed (or differed) on one
backend; each runs on sqlite, postgresql and mysql."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel, Field

from registers.db import F, database_registry
from registers.db.exceptions import InvalidQueryError, RegistryError, UniqueConstraintError

# --- MySQL/MariaDB: exact text -----------------------------------------------------------


@pytest.fixture
def Token(database_url: str) -> Any:
    @database_registry(database_url, table_name="tokens", unique_fields=["token"])
    class Token(BaseModel):
        id: int | None = None
        token: str
        owner: str
        note: str | None = None

    return Token


def test_upsert_by_unique_text_is_exact(Token: Any) -> None:
    alice = Token.objects.create(token="SeCrEt-Token", owner="alice")
    mallory = Token.objects.upsert(token="secret-TOKEN", owner="mallory")
    trailing = Token.objects.upsert(token="SeCrEt-Token ", owner="eve")
    assert mallory.id != alice.id and trailing.id not in (alice.id, mallory.id)
    assert Token.objects.require(alice.id).owner == "alice"
    assert sorted((t.token, t.owner) for t in Token.objects.all()) == [
        ("SeCrEt-Token", "alice"), ("SeCrEt-Token ", "eve"), ("secret-TOKEN", "mallory")]
    again = Token.objects.upsert(token="SeCrEt-Token", owner="alice2")
    assert again.id == alice.id and Token.objects.count() == 3


def test_unique_text_is_exact_and_duplicates_still_refused(Token: Any) -> None:
    Token.objects.create(token="abc", owner="a")
    Token.objects.create(token="ABC", owner="b")
    Token.objects.create(token="abc ", owner="c")
    with pytest.raises(UniqueConstraintError):
        Token.objects.create(token="abc", owner="d")
    assert Token.objects.count() == 3


def test_text_equality_and_lookups_are_exact(Token: Any) -> None:
    Token.objects.bulk_create([
        {"token": "Apple", "owner": "x", "note": "Big Apple"},
        {"token": "apple", "owner": "x", "note": "apple pie "},
        {"token": "apple ", "owner": "x", "note": None},
    ])
    assert [t.token for t in Token.objects.filter(token="apple")] == ["apple"]
    assert [t.token for t in Token.objects.filter(token="apple ")] == ["apple "]
    assert Token.objects.count(token__in=["APPLE", "Apple"]) == 1
    assert Token.objects.count(token__gt="Apple") == 2  # binary order: 'A' < 'a'
    assert Token.objects.count(token__startswith="app") == 2
    assert Token.objects.count(note__contains="apple") == 1
    assert Token.objects.count(note__icontains="APPLE") == 2
    assert Token.objects.count(token__ilike="APP%") == 3
    assert Token.objects.count(token__like="app%") == 2
    assert Token.objects.count(token__like="APP%") == 0
    assert [t.token for t in Token.objects.filter(order_by="token")] == [
        "Apple", "apple", "apple "]


def test_emoji_and_any_script_are_stored_whatever_the_server_default(Token: Any) -> None:
    values = ["😀🎉", "ключ", "鍵", "مفتاح", "𝔘𝔫𝔦", "e\u0301"]
    for value in values:
        Token.objects.create(token=value, owner=value * 3, note=value)
    assert sorted(t.token for t in Token.objects.all()) == sorted(values)
    assert Token.objects.require(token="😀🎉").owner == "😀🎉" * 3
    assert Token.objects.count(token="é") == 0  # no normalisation: exact code points


def test_indexed_text_longer_than_the_column_is_refused_before_writing(Token: Any) -> None:
    Token.objects.create(token="x" * 255, owner="a")
    if Token.objects.database.family != "mysql":
        Token.objects.create(token="y" * 256, owner="b")  # TEXT everywhere else
        return
    with pytest.raises(InvalidQueryError, match="VARCHAR"):
        Token.objects.create(token="y" * 256, owner="b")
    assert Token.objects.count() == 1


# --- F expressions -------------------------------------------------------------------------


@pytest.fixture
def Num(database_url: str) -> Any:
    @database_registry(database_url, table_name="nums")
    class Num(BaseModel):
        id: int | None = None
        n: int
        m: int = 0
        f: float = 0.0
        d: Decimal = Decimal(0)
        label: str = ""
        small: int = Field(default=0, ge=0)

    return Num


def test_every_expression_sees_the_old_row(Num: Any) -> None:
    Num.objects.bulk_create([{"n": 7, "m": 10}, {"n": -7, "m": 10}])
    rows = Num.objects.update_where({"id__in": [1, 2]}, n=F("m") - F("n"), m=F("n"))
    assert [(r.n, r.m) for r in rows] == [(3, 7), (17, -7)]
    rows = Num.objects.update_where({"id__in": [1, 2]}, m=F("n"), n=F("m"))  # swap
    assert [(r.n, r.m) for r in rows] == [(7, 3), (-7, 17)]
    assert [(r.n, r.m) for r in Num.objects.all()] == [(7, 3), (-7, 17)]


@pytest.mark.parametrize(("n", "divisor", "expected"), [
    (7, 2, 3), (-7, 2, -3), (7, -2, -3), (-7, -2, 3), (1, 3, 0), (2**62, 3, 2**62 // 3)])
def test_integer_division_truncates_toward_zero(Num: Any, n: int, divisor: int,
                                                expected: int) -> None:
    Num.objects.create(n=n, m=divisor)
    (row,) = Num.objects.update_where({"id": 1}, n=F("n") / divisor)
    assert row.n == expected
    Num.objects.update_where({"id": 1}, n=n)
    (row,) = Num.objects.update_where({"id": 1}, n=F("n") / F("m"))
    assert row.n == expected == Num.objects.require(1).n


def test_float_and_decimal_division(Num: Any) -> None:
    Num.objects.create(n=7, f=7.0, d=Decimal("7"))
    (row,) = Num.objects.update_where({"id": 1}, f=F("f") / 2, d=F("d") / 2)
    assert row.f == 3.5 and row.d == Decimal("3.5")
    (row,) = Num.objects.update_where({"id": 1}, f=F("n") / 2.0)
    assert row.f == 3.5


def test_division_by_zero_is_refused_on_every_backend(Num: Any) -> None:
    Num.objects.create(n=7, m=0, d=Decimal(1))
    with pytest.raises(InvalidQueryError, match="zero"):
        Num.objects.update_where({"id": 1}, n=F("n") / 0)
    with pytest.raises(InvalidQueryError, match="zero"):
        Num.objects.update_where({"id": 1}, n=F("n") / F("m"))
    with pytest.raises(InvalidQueryError, match="zero"):
        Num.objects.update_where({"id": 1}, d=F("d") / F("m"))
    assert Num.objects.require(1).n == 7


@pytest.mark.parametrize("expression", [
    lambda: F("n") * 4, lambda: F("n") + 2**62 + 2**62, lambda: F("n") - 2**63 - 2**63,
    lambda: (F("n") * 4) / 4])
def test_integer_overflow_fails_atomically(Num: Any, expression: Any) -> None:
    Num.objects.bulk_create([{"n": 1}, {"n": 2**62}])
    with pytest.raises(InvalidQueryError) as caught:
        Num.objects.update_where({"id__in": [1, 2]}, n=expression(), m=F("m") + 1)
    assert isinstance(caught.value, RegistryError)
    assert [(r.n, r.m) for r in Num.objects.all()] == [(1, 0), (2**62, 0)]
    assert Num.objects.count(n__gt=0) == 2  # later reads are fine
    Num.objects.update_where({"id": 1}, n=F("n") + 1)
    assert Num.objects.require(1).n == 2


def test_computed_value_breaking_a_constraint_fails_atomically(Num: Any) -> None:
    Num.objects.bulk_create([{"n": 1, "small": 5}, {"n": 2, "small": 0}])
    with pytest.raises(InvalidQueryError, match="small"):
        Num.objects.update_where({"n__gte": 1}, small=F("small") - 1)
    assert [r.small for r in Num.objects.all()] == [5, 0]


@pytest.mark.parametrize(("field", "expression", "match"), [
    ("n", lambda: F("n") * 1.5, "computes a float"),
    ("n", lambda: F("f") + 1, "computes a float"),
    ("n", lambda: F("d") + 1, "computes a decimal"),
    ("d", lambda: F("d") * 1.5, "mixes Decimal and float"),
    ("label", lambda: F("n") + 1, "str field"),
    ("n", lambda: F("label") + 1, "str field"),
    ("n", lambda: F("n") + 2**64, "64-bit"),
    ("f", lambda: F("f") * float("inf"), "not finite"),
])
def test_expressions_whose_result_cannot_fit_are_refused_before_sending(
        Num: Any, field: str, expression: Any, match: str) -> None:
    Num.objects.create(n=3)
    with pytest.raises(InvalidQueryError, match=match):
        Num.objects.update_where({"id": 1}, **{field: expression()})
    assert Num.objects.require(1).n == 3


async def test_async_update_where_has_the_same_semantics(Num: Any) -> None:
    from registers.db import aio

    try:
        await Num.objects.abulk_create([{"n": 7, "m": 10}, {"n": 2**62, "m": 1}])
        rows = await Num.objects.aupdate_where({"id": 1}, n=F("m") - F("n"), m=F("n"))
        assert [(r.n, r.m) for r in rows] == [(3, 7)]
        with pytest.raises(InvalidQueryError):
            await Num.objects.aupdate_where({"id": 2}, n=F("n") * 4)
        assert (await Num.objects.aget(2)).n == 2**62
        rows = await Num.objects.aupdate_where({"id": 1}, n=F("n") / -2)
        assert rows[0].n == -1
    finally:
        await aio.adispose_all()


# --- values that cannot round-trip ---------------------------------------------------------


def test_values_round_trip_exactly_or_are_refused_before_writing(database_url: str) -> None:
    @database_registry(database_url, table_name="values")
    class Value(BaseModel):
        id: int | None = None
        d: Decimal | None = None
        t: dt.time | None = None
        n: int | None = None
        f: float | None = None

    exact = [Decimal("1E-30"), Decimal("-12345678901234567890.123456789012345678901234567890"),
             Decimal("0.1"), Decimal("99999999999999999999999999999999999")]
    for value in exact:
        assert Value.objects.require(Value.objects.create(d=value).id).d == value
    for value in (Decimal("1E-31"), Decimal("1E+35") * 10,
                  Decimal("0.1234567890123456789012345678901")):
        if Value.objects.database.family == "mysql":
            with pytest.raises(InvalidQueryError, match="DECIMAL"):
                Value.objects.create(d=value)
        else:
            assert Value.objects.require(Value.objects.create(d=value).id).d == value
    with pytest.raises(InvalidQueryError, match="UTC offset"):
        Value.objects.create(t=dt.time(1, 2, 3, tzinfo=dt.timezone(dt.timedelta(hours=2))))
    with pytest.raises(InvalidQueryError, match="UTC offset"):
        Value.objects.bulk_create([{"t": dt.time(1, tzinfo=dt.timezone.utc)}])
    naive = dt.time(23, 59, 59, 999999)
    assert Value.objects.require(Value.objects.create(t=naive).id).t == naive
    for n in (2**63 - 1, -(2**63)):
        assert Value.objects.require(Value.objects.create(n=n).id).n == n
    for n in (2**63, -(2**63) - 1):
        with pytest.raises(InvalidQueryError):
            Value.objects.create(n=n)
    for f in (0.1, 1e308, 5e-324, -2.5e-10, 1 / 3):
        assert Value.objects.require(Value.objects.create(f=f).id).f == f
    count = Value.objects.count()
    with pytest.raises(InvalidQueryError):
        Value.objects.bulk_create([{"n": 1}, {"n": 2**64}])
    assert Value.objects.count() == count


def test_datetimes_keep_microseconds(database_url: str) -> None:
    @database_registry(database_url, table_name="stamps")
    class Stamp(BaseModel):
        id: int | None = None
        at: dt.datetime

    value = dt.datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=dt.timezone.utc)
    assert Stamp.objects.require(Stamp.objects.create(at=value).id).at == value


# --- queries ---------------------------------------------------------------------------


def test_in_with_more_values_than_any_backend_binds(Num: Any) -> None:
    Num.objects.bulk_create([{"n": i, "label": f"l{i}"} for i in range(10)])
    many = list(range(-70_000, 3))
    assert Num.objects.count(n__in=many) == 3
    assert Num.objects.count(n__not_in=many) == 7
    assert [r.n for r in Num.objects.filter(n__in=many, order_by="-n", limit=2)] == [2, 1]
    labels = [f"l{i}" for i in range(70_000)]
    assert Num.objects.count(label__in=labels) == 10
    assert Num.objects.delete_where(n__in=many) == 3
    rows = Num.objects.update_where({"n__in": list(range(70_000))}, m=F("m") + 1)
    assert len(rows) == 7


def test_not_in_keeps_nulls_like_ne(database_url: str) -> None:
    @database_registry(database_url, table_name="maybe")
    class Maybe(BaseModel):
        id: int | None = None
        v: int | None = None

    Maybe.objects.bulk_create([{"v": 1}, {"v": None}, {"v": 2}])
    assert Maybe.objects.count(v__ne=1) == Maybe.objects.count(v__not_in=[1]) == 2
    assert Maybe.objects.count(v__not_in=list(range(1, 6000))) == 1
    with pytest.raises(InvalidQueryError, match="isnull"):
        Maybe.objects.count(v__in=[1, None])


@pytest.mark.parametrize("bad", [{"limit": 2**63}, {"offset": 2**63}, {"limit": 2**64},
                                 {"limit": -1}, {"offset": -1}, {"limit": 1.0}])
def test_limit_and_offset_out_of_range(Num: Any, bad: dict[str, Any]) -> None:
    with pytest.raises(InvalidQueryError, match=r"limit|offset"):
        Num.objects.filter(**bad)


def test_largest_limit_and_offset_work(Num: Any) -> None:
    Num.objects.create(n=1)
    assert len(Num.objects.filter(limit=2**63 - 1)) == 1
    assert Num.objects.filter(offset=2**63 - 1) == []


@pytest.mark.parametrize("call", [
    lambda o: o.get(label__="x"), lambda o: o.filter(n__=1), lambda o: o.count(n__=1),
    lambda o: o.delete_where(n__=1), lambda o: o.update_where({"n__": 1}, m=1)])
def test_criteria_key_with_trailing_separator(Num: Any, call: Any) -> None:
    Num.objects.create(n=1, label="x")
    with pytest.raises(InvalidQueryError, match="ends with '__'"):
        call(Num.objects)
    assert Num.objects.require(1).m == 0


def test_long_texts_sharing_a_prefix_sort_by_their_whole_value(database_url: str) -> None:
    """MariaDB sorted only the first 1,024 bytes (max_sort_length): texts equal there
    came back in insertion order, and keyset pages over them could skip or repeat rows."""
    from pydantic import BaseModel

    from registers.db import database_registry

    @database_registry(database_url, table_name="long_texts")
    class Long(BaseModel):
        id: int | None = None
        s: str

    prefix = "p" * 3000
    values = [prefix + tail for tail in ("b", "a", "c", "b2", "a1")]
    Long.objects.bulk_create([{"s": v} for v in values])
    assert [x.s for x in Long.objects.filter(order_by="s")] == sorted(values)
    assert [x.s for x in Long.objects.filter(order_by="-s")] == sorted(values, reverse=True)
    paged = [x.s for x in Long.objects.iterate(order_by="-s", batch_size=2)]
    assert paged == sorted(values, reverse=True)


def test_a_bulk_create_larger_than_the_servers_packet_limit_is_split(database_url: str) -> None:
    """24 MB of text in one call: MariaDB drops the connection for a statement over its
    max_allowed_packet (16 MiB by default), so multi-row statements are cut by size too."""

    @database_registry(database_url, table_name="big_rows")
    class Big(BaseModel):
        id: int | None = None
        s: str

    made = Big.objects.bulk_create([{"s": f"{i:04d}" + "x" * 60_000} for i in range(400)])
    assert [m.id for m in made] == sorted(m.id for m in made)  # keys in row order
    assert Big.objects.count() == 400
    assert {m.id: m.s[:4] for m in made} == {b.id: b.s[:4] for b in Big.objects.all()}
    updated = Big.objects.bulk_update([m.model_copy(update={"s": m.s + "!"}) for m in made],
                                      ["s"])
    assert updated == 400
    assert all(b.s.endswith("!") for b in Big.objects.iterate(batch_size=100))


@pytest.mark.parametrize("value", [Decimal("1.5"), Decimal("0.000000001"), Decimal("123456789012")])
def test_max_digits_without_decimal_places_keeps_every_digit(database_url: str,
                                                             value: Decimal) -> None:
    """``max_digits=12`` alone: PostgreSQL's NUMERIC(12) rounded 1.5 to 2 (scale 0), and
    MariaDB refused the CREATE TABLE (DECIMAL(12, 30))."""

    @database_registry(database_url, table_name="priced")
    class Priced(BaseModel):
        id: int | None = None
        price: Decimal = Field(max_digits=12)

    made = Priced.objects.create(price=value)
    assert Priced.objects.require(made.id).price == value
    assert Priced.objects.schema_diff() == []
