"""Issue 16: upsert changes only the fields given; on_conflict applies to an existing row."""

import threading
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from registers.db import (
    DuplicateKeyError,
    F,
    InvalidQueryError,
    UniqueConstraintError,
    database_registry,
    db_field,
)

from ._helpers import STORABLE_CHARS, RawSQL


@pytest.fixture
def User(database_url: str) -> Any:
    @database_registry(database_url, table_name="users", unique_fields=["email"])
    class User(BaseModel):
        id: int | None = None
        name: str
        email: str | None = None
        role: str = "member"
        score: int = 0

    return User


@pytest.fixture
def Item(database_url: str) -> Any:
    """Inventory: a caller-supplied key."""

    @database_registry(database_url, table_name="items", key_field="sku")
    class Item(BaseModel):
        sku: str
        qty: int = 0
        price: Decimal = Decimal("0")
        label: str = ""

    return Item


@pytest.fixture
def Stamped(database_url: str) -> Any:
    @database_registry(database_url, table_name="stamped", unique_fields=["code"])
    class Stamped(BaseModel):
        id: int | None = None
        code: str
        note: str = ""
        created: datetime | None = db_field(default=None, auto_now_add=True)
        updated: datetime | None = db_field(default=None, auto_now=True)

    return Stamped


# --------------------------------------------------------------------- fields not given


def test_a_role_not_given_keeps_its_stored_value(User: Any) -> None:
    User.objects.create(name="Ada", role="admin", score=7)
    updated = User.objects.upsert(id=1, name="x")
    assert (updated.name, updated.role, updated.score) == ("x", "admin", 7)
    stored = User.objects.require(1)
    assert (stored.name, stored.role, stored.score) == ("x", "admin", 7)


def test_fields_not_given_take_model_defaults_on_insert(User: Any) -> None:
    made = User.objects.upsert(id=5, name="new")
    assert (made.id, made.role, made.score, made.email) == (5, "member", 0, None)
    assert User.objects.require(5).role == "member"


def test_upsert_by_unique_field_keeps_what_was_not_given(User: Any) -> None:
    first = User.objects.create(name="Ada", email="ada@x.io", role="admin")
    again = User.objects.upsert(name="Ada L.", email="ada@x.io")
    assert again.id == first.id
    assert (again.name, again.role) == ("Ada L.", "admin")
    assert User.objects.count() == 1


def test_an_instance_gives_its_model_fields_set(User: Any) -> None:
    User.objects.create(name="Ada", role="admin", score=3)
    partial = User(id=1, name="Ada 2")             # role and score: defaults, not given
    assert User.objects.upsert(partial).role == "admin"
    loaded = User.objects.require(1)               # every field given (read from the row)
    loaded.score = 9
    assert User.objects.upsert(loaded).score == 9
    loaded.role = "member"                          # an assignment marks the field given
    assert User.objects.upsert(loaded).role == "member"


def test_an_instance_plus_keywords_gives_both(User: Any) -> None:
    User.objects.create(name="Ada", role="admin", score=3)
    result = User.objects.upsert(User(id=1, name="Ada"), score=4)
    assert (result.role, result.score) == ("admin", 4)


def test_giving_every_field_is_still_one_statement(Item: Any, database_url: str,
                                                  count_statements: Any) -> None:
    Item.objects.create(sku="A", qty=1)
    with count_statements(database_url) as log:
        Item.objects.upsert(sku="A", qty=2, price=Decimal("1"), label="x")
    assert len(log) == 1 and len(log.matching("INSERT")) == 1


def test_a_partial_upsert_is_one_statement_where_returning_exists(
        User: Any, database_url: str, count_statements: Any, backend: str) -> None:
    User.objects.create(name="Ada", email="a@x.io", role="admin")
    with count_statements(database_url) as log:
        User.objects.upsert(email="a@x.io", name="B")
    statements = [s for s in log if s.split()[0].upper() not in ("BEGIN", "COMMIT")]
    assert len(statements) == (2 if backend == "mysql" else 1)


def test_partial_upsert_never_overwrites_the_row_owning_a_unique_value(User: Any) -> None:
    User.objects.create(name="one", email="one@x.io", role="admin")
    User.objects.create(name="two", email="two@x.io", role="staff")
    with pytest.raises(UniqueConstraintError):
        User.objects.upsert(id=1, name="one", email="two@x.io")
    rows = [(u.id, u.name, u.email, u.role) for u in User.objects.all()]
    assert rows == [(1, "one", "one@x.io", "admin"), (2, "two", "two@x.io", "staff")]


def test_partial_upsert_with_an_explicit_managed_key_moves_the_sequence(User: Any) -> None:
    User.objects.upsert(id=10, name="ten")
    assert User.objects.create(name="next").id == 11


def test_auto_now_add_is_kept_and_auto_now_moves(Stamped: Any) -> None:
    first = Stamped.objects.upsert(code="a", note="one")
    again = Stamped.objects.upsert(code="a", note="two")
    assert again.created == first.created
    assert again.updated is not None and again.updated >= first.updated
    stored = Stamped.objects.require(first.id)
    assert (stored.note, stored.created, stored.updated) == ("two", again.created, again.updated)


# ----------------------------------------------------------------------------- on_conflict


def test_inventory_add_two_items(Item: Any) -> None:
    add = {"qty": F("qty") + 2}
    assert Item.objects.upsert(sku="MUG", qty=2, on_conflict=add).qty == 2    # inserted
    assert Item.objects.upsert(sku="MUG", qty=2, on_conflict=add).qty == 4    # incremented
    assert Item.objects.require("MUG").qty == 4


def test_on_conflict_plain_values_and_other_fields(Item: Any) -> None:
    Item.objects.create(sku="TEA", qty=5, label="green")
    done = Item.objects.upsert(sku="TEA", qty=1, label="new", on_conflict={"qty": 0})
    assert (done.qty, done.label) == (0, "new")


def test_on_conflict_expressions_read_old_values(Item: Any) -> None:
    Item.objects.create(sku="A", qty=3, price=Decimal("1.50"))
    # swapping through expressions: each side reads the row as it was
    swapped = Item.objects.upsert(sku="A", on_conflict={
        "qty": F("qty") * 2, "price": F("price") + F("qty")})
    assert swapped.qty == 6 and swapped.price == Decimal("4.50")


def test_on_conflict_decimal_arithmetic_is_exact(Item: Any) -> None:
    for _ in range(3):
        Item.objects.upsert(sku="D", price=Decimal("0.10"),
                            on_conflict={"price": F("price") + Decimal("0.10")})
    assert Item.objects.require("D").price == Decimal("0.30")


def test_on_conflict_overflow_changes_nothing(Item: Any) -> None:
    Item.objects.create(sku="BIG", qty=2**62)
    with pytest.raises(InvalidQueryError, match=r"qty|out of range|overflow"):
        Item.objects.upsert(sku="BIG", on_conflict={"qty": F("qty") * 4})
    assert Item.objects.require("BIG").qty == 2**62


@pytest.mark.parametrize(("on_conflict", "named"), [
    ({"sku": "B"}, "'sku': it is the key"),
    ({"qtty": 1}, "unknown field 'qtty'"),
    ({"qty": F("nope") + 1}, "nope"),
    ({"label": F("label") + 1}, "label"),
    ([("qty", 1)], "must be a dict"),
])
def test_bad_on_conflict_is_refused_before_sql(Item: Any, database_url: str,
                                               count_statements: Any, on_conflict: Any,
                                               named: str) -> None:
    with count_statements(database_url) as log, pytest.raises(InvalidQueryError, match=named):
        Item.objects.upsert(sku="A", qty=1, on_conflict=on_conflict)
    assert log == []
    assert Item.objects.count() == 0


def test_on_conflict_cannot_change_the_matched_unique_field(User: Any) -> None:
    with pytest.raises(InvalidQueryError, match="matches rows on it"):
        User.objects.upsert(name="a", email="a@x.io", on_conflict={"email": "b@x.io"})
    assert User.objects.count() == 0


def test_on_conflict_with_a_key_collision_elsewhere_still_refuses(User: Any) -> None:
    User.objects.create(name="one", email="one@x.io")
    User.objects.create(name="two", email="two@x.io")
    with pytest.raises((UniqueConstraintError, DuplicateKeyError)):
        User.objects.upsert(id=1, name="x", email="two@x.io",
                            on_conflict={"score": F("score") + 1})
    assert [u.score for u in User.objects.all()] == [0, 0]


def test_concurrent_increments_lose_none(Item: Any) -> None:
    threads, each = 8, 100
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            barrier.wait()
            for _ in range(each):
                Item.objects.upsert(sku="HOT", qty=1, on_conflict={"qty": F("qty") + 1})
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == []
    assert Item.objects.require("HOT").qty == threads * each


def test_concurrent_partial_upserts_never_raise_or_reset(User: Any) -> None:
    User.objects.create(name="Ada", email="a@x.io", role="admin")
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            barrier.wait()
            for i in range(10):
                User.objects.upsert(id=1, name=f"t{n}-{i}")          # by key
                User.objects.upsert(email="b@x.io", name=f"b{n}")     # by unique field
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == []
    assert User.objects.count() == 2
    assert User.objects.require(1).role == "admin"


# ---------------------------------------------------------------------------- bulk_upsert


def test_bulk_upsert_keeps_fields_an_item_did_not_give(User: Any, database_url: str,
                                                       count_statements: Any,
                                                       backend: str) -> None:
    User.objects.bulk_create([{"name": f"u{i}", "role": "admin", "score": i}
                              for i in range(50)])
    items = [{"id": i + 1, "name": f"n{i}"} for i in range(50)] + [{"id": 99, "name": "new"}]
    with count_statements(database_url) as log:
        done = User.objects.bulk_upsert(items)
    if backend != "mysql":  # MySQL locks row by row when a second unique constraint exists
        assert len(log) <= 6  # batched: does not grow with the rows
    assert [(u.name, u.role, u.score) for u in done[:2]] == [("n0", "admin", 0),
                                                             ("n1", "admin", 1)]
    assert (done[-1].id, done[-1].role) == (99, "member")
    assert {u.role for u in User.objects.all() if u.id <= 50} == {"admin"}


def test_bulk_upsert_of_partial_items_is_batched(Item: Any, database_url: str,
                                                 count_statements: Any) -> None:
    Item.objects.bulk_create([{"sku": f"s{i}", "qty": i, "label": "keep"} for i in range(300)])
    with count_statements(database_url) as log:
        done = Item.objects.bulk_upsert([{"sku": f"s{i}", "qty": 0} for i in range(600)])
    assert len(log) <= 8
    assert [(d.qty, d.label) for d in done[299:301]] == [(0, "keep"), (0, "")]


def test_bulk_upsert_mixes_full_and_partial_items(User: Any) -> None:
    User.objects.create(name="a", email="a@x.io", role="admin", score=1)
    full = User(id=1, name="b", email="a@x.io", role="staff", score=2)
    full.__pydantic_fields_set__ = set(User.model_fields)
    done = User.objects.bulk_upsert([full, {"email": "z@x.io", "name": "z"},
                                     {"email": "a@x.io", "name": "c"}])
    assert [(u.name, u.role) for u in done] == [("b", "staff"), ("z", "member"),
                                                ("c", "staff")]


# --------------------------------------------------------------- differential (hypothesis)

_FIELDS = ("name", "role", "score")


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(1, 3), st.dictionaries(
    st.sampled_from(_FIELDS),
    st.one_of(st.text(STORABLE_CHARS, max_size=5),
              st.integers(-5, 5)),
    max_size=3)), max_size=8))
def test_partial_upserts_match_a_dictionary_model(User: Any, raw: RawSQL,
                                                  ops: list[tuple[int, dict[str, Any]]]) -> None:
    User.objects.truncate()
    expected: dict[int, dict[str, Any]] = {}
    for key, fields in ops:
        data = {k: (str(v) if k != "score" else (v if isinstance(v, int) else len(v)))
                for k, v in fields.items()}
        data.setdefault("name", "n")
        row = expected.get(key, {"name": None, "role": "member", "score": 0})
        expected[key] = {**row, **data}
        result = User.objects.upsert(id=key, **data)
        assert {f: getattr(result, f) for f in _FIELDS} == expected[key]
    stored = {u.id: {f: getattr(u, f) for f in _FIELDS} for u in User.objects.all()}
    assert stored == expected
