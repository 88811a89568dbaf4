"""Issue 16: get_or_create, update_or_create, bulk_update, in_bulk and raw."""

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from registers.db import (
    F,
    InvalidPrimaryKeyAssignmentError,
    InvalidQueryError,
    UniqueConstraintError,
    database_registry,
    db_field,
    is_password_hash,
)

from ._helpers import STORABLE_CHARS, RawSQL


@pytest.fixture
def User(database_url: str) -> Any:
    @database_registry(database_url, table_name="users", unique_fields=["email"])
    class User(BaseModel):
        id: int | None = None
        name: str
        email: str
        role: str = "member"
        score: int = 0
        note: str | None = None

    return User


@pytest.fixture
def Item(database_url: str) -> Any:
    @database_registry(database_url, table_name="items", key_field="sku")
    class Item(BaseModel):
        sku: str
        qty: int = 0
        label: str = ""

    return Item


@pytest.fixture
def Pair(database_url: str) -> Any:
    """A composite unique set, and a field that is not unique."""

    @database_registry(database_url, table_name="pairs", unique_fields=[("tenant", "slug")])
    class Pair(BaseModel):
        id: int | None = None
        tenant: str
        slug: str
        title: str = ""

    return Pair


def _race(threads: int, work: Callable[[int], Any]) -> tuple[list[Any], list[BaseException]]:
    barrier = threading.Barrier(threads)
    results: list[Any] = []
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            barrier.wait()
            results.append(work(n))
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return results, errors


# --------------------------------------------------------------------------- get_or_create


def test_get_or_create_creates_then_gets(User: Any) -> None:
    made, created = User.objects.get_or_create(email="a@x.io", defaults={"name": "Ada"})
    assert created is True and made.id is not None and made.name == "Ada"
    got, created = User.objects.get_or_create(email="a@x.io", defaults={"name": "Other"})
    assert created is False and got == made
    assert User.objects.count() == 1


def test_get_or_create_returns_the_first_match_by_key(User: Any) -> None:
    User.objects.create(name="b", email="b@x.io", role="staff")
    User.objects.create(name="c", email="c@x.io", role="staff")
    got, created = User.objects.get_or_create(role="staff", defaults={"name": "x",
                                                                      "email": "x@x.io"})
    assert (got.name, created) == ("b", False)


def test_get_or_create_lookups_with_operators_only_select(User: Any) -> None:
    made, created = User.objects.get_or_create(
        email="d@x.io", name__startswith="D", defaults={"name": "Dora"})
    assert created and made.name == "Dora"
    again, created = User.objects.get_or_create(email="d@x.io", name__startswith="D")
    assert not created and again.id == made.id


def test_get_or_create_calls_callable_defaults(User: Any) -> None:
    made, _ = User.objects.get_or_create(email="e@x.io", defaults={"name": lambda: "Eve"})
    assert made.name == "Eve"


def test_get_or_create_validates_only_when_creating(User: Any, database_url: str,
                                                    count_statements: Any) -> None:
    User.objects.create(name="Ada", email="a@x.io")
    got, created = User.objects.get_or_create(email="a@x.io")  # no name: fine, it exists
    assert not created and got.name == "Ada"
    with count_statements(database_url) as log, pytest.raises(ValidationError):
        User.objects.get_or_create(email="new@x.io")            # name is required
    assert not log.matching("INSERT") and User.objects.count() == 1


@pytest.mark.parametrize(("kwargs", "named"), [
    ({}, "needs lookup criteria"),
    ({"email": "a@x.io", "defaults": {"nmae": "x"}}, "unknown field 'nmae'"),
    ({"emial": "a@x.io"}, "emial"),
    ({"email": "a@x.io", "defaults": ["name"]}, "defaults must be a dict"),
])
def test_get_or_create_bad_input_is_refused_before_sql(User: Any, database_url: str,
                                                       count_statements: Any,
                                                       kwargs: dict[str, Any],
                                                       named: str) -> None:
    with count_statements(database_url) as log, pytest.raises(InvalidQueryError, match=named):
        User.objects.get_or_create(**kwargs)
    assert log == []


def test_get_or_create_with_a_managed_key_creates_as_create_does(User: Any) -> None:
    with pytest.raises(InvalidPrimaryKeyAssignmentError):
        User.objects.get_or_create(id=7, defaults={"name": "x", "email": "x@x.io"})
    assert User.objects.count() == 0


def test_get_or_create_whose_defaults_collide_elsewhere_raises(User: Any) -> None:
    User.objects.create(name="taken", email="t@x.io")
    with pytest.raises(UniqueConstraintError):
        User.objects.get_or_create(name="new", defaults={"email": "t@x.io"})
    assert User.objects.count() == 1


@pytest.mark.parametrize("lookup", ["unique", "key", "composite"])
def test_racing_get_or_create_creates_exactly_once(User: Any, Item: Any, Pair: Any,
                                                   lookup: str) -> None:
    manager = {"unique": User, "key": Item, "composite": Pair}[lookup].objects
    for round_ in range(5):  # several rounds: the race window is small
        def work(n: int, r: int = round_) -> tuple[Any, bool]:
            if lookup == "unique":
                return User.objects.get_or_create(email=f"{r}@x.io", defaults={"name": f"{n}"})
            if lookup == "key":
                return Item.objects.get_or_create(sku=f"{r}", defaults={"qty": n})
            return Pair.objects.get_or_create(tenant="t", slug=f"{r}", defaults={"title": f"{n}"})

        results, errors = _race(8, work)
        assert errors == []
        assert sorted(created for _, created in results) == [False] * 7 + [True]
        assert len({repr(model) for model, _ in results}) == 1
    assert manager.count() == 5


# ------------------------------------------------------------------------ update_or_create


def test_update_or_create_creates_then_updates_only_defaults(User: Any) -> None:
    made, created = User.objects.update_or_create(
        email="a@x.io", defaults={"name": "Ada", "role": "admin"})
    assert created and made.role == "admin"
    User.objects.update_where({"id": made.id}, score=5)
    updated, created = User.objects.update_or_create(email="a@x.io", defaults={"name": "A"})
    assert not created and (updated.name, updated.role, updated.score) == ("A", "admin", 5)
    assert User.objects.require(made.id) == updated


def test_update_or_create_with_an_expression(Item: Any) -> None:
    Item.objects.create(sku="A", qty=1)
    updated, created = Item.objects.update_or_create(sku="A", defaults={"qty": F("qty") + 2})
    assert not created and updated.qty == 3


def test_update_or_create_needs_only_the_updated_fields_of_an_existing_row(
        User: Any) -> None:
    User.objects.create(name="Ada", email="a@x.io")
    updated, created = User.objects.update_or_create(id=1, defaults={"score": 3})
    assert not created and (updated.name, updated.score) == ("Ada", 3)


def test_update_or_create_refuses_bad_defaults_before_sql(User: Any, database_url: str,
                                                          count_statements: Any) -> None:
    with count_statements(database_url) as log, pytest.raises(ValidationError):
        User.objects.update_or_create(email="a@x.io", defaults={"score": "lots"})
    assert log == []


def test_racing_update_or_create_creates_exactly_once(User: Any) -> None:
    results, errors = _race(8, lambda n: User.objects.update_or_create(
        email="same@x.io", defaults={"name": f"t{n}", "score": n}))
    assert errors == []
    assert sorted(created for _, created in results) == [False] * 7 + [True]
    [row] = User.objects.all()
    assert row.name == f"t{row.score}"


def test_racing_update_or_create_increments_lose_none(Item: Any) -> None:
    Item.objects.create(sku="hot")
    _, errors = _race(8, lambda n: [Item.objects.update_or_create(
        sku="hot", defaults={"qty": F("qty") + 1}) for _ in range(20)])
    assert errors == []
    assert Item.objects.require("hot").qty == 160


# ----------------------------------------------------------------------------- bulk_update


def _users(User: Any, n: int) -> list[Any]:
    return User.objects.bulk_create(
        [{"name": f"u{i}", "email": f"u{i}@x.io", "score": i} for i in range(n)])


def test_bulk_update_writes_the_fields_named(User: Any) -> None:
    users = _users(User, 5)
    for user in users:
        user.score += 100
        user.name = f"{user.name}é"   # unicode
        user.role = "ignored"          # not in fields
    assert User.objects.bulk_update(users, ["score", "name"]) == 5
    stored = User.objects.all()
    assert [(u.score, u.name, u.role) for u in stored] == [
        (100 + i, f"u{i}é", "member") for i in range(5)]


def test_bulk_update_sets_nulls_and_counts_only_existing_rows(User: Any) -> None:
    users = _users(User, 3)
    users[0].note = "x"
    User.objects.delete(users[2].id)
    assert User.objects.bulk_update(users, ["note"]) == 2
    assert [u.note for u in User.objects.all()] == ["x", None]


def test_bulk_update_of_the_same_row_twice_keeps_the_last(User: Any) -> None:
    [user] = _users(User, 1)
    twin = user.model_copy()
    user.score, twin.score = 1, 2
    assert User.objects.bulk_update([user, twin], ["score"]) == 1
    assert User.objects.require(user.id).score == 2


def test_bulk_update_uses_a_bounded_number_of_statements(User: Any, database_url: str,
                                                         count_statements: Any) -> None:
    users = _users(User, 2500)
    for user in users:
        user.score = -user.score
    with count_statements(database_url) as log:
        assert User.objects.bulk_update(users, ["score"]) == 2500
    assert len(log.matching("UPDATE")) <= 3
    assert len(log) <= 6
    assert User.objects.count(score__gt=0) == 0


def test_bulk_update_is_all_or_nothing(User: Any) -> None:
    users = _users(User, 1500)
    for user in users:
        user.name = "changed"
    users[-1].email = users[0].email  # collides: the last chunk fails
    with pytest.raises(UniqueConstraintError):
        User.objects.bulk_update(users, ["name", "email"])
    assert User.objects.count(name="changed") == 0


@pytest.mark.parametrize(("make", "fields", "named"), [
    (lambda U, us: [*us, U(name="new", email="n@x.io")], ["name"], "never saved"),
    (lambda U, us: us, ["nmae"], "unknown field 'nmae'"),
    (lambda U, us: us, ["id"], "'id' is the key"),
    (lambda U, us: us, [], "non-empty list"),
    (lambda U, us: us, "name", "non-empty list"),
    (lambda U, us: [*us, {"id": 1, "name": "x"}], ["name"], "takes User instances"),
])
def test_bulk_update_bad_input_writes_nothing(User: Any, database_url: str,
                                              count_statements: Any, make: Any,
                                              fields: Any, named: str) -> None:
    users = _users(User, 2)
    for user in users:
        user.name = "changed"
    with count_statements(database_url) as log, pytest.raises(InvalidQueryError, match=named):
        User.objects.bulk_update(make(User, users), fields)
    assert log == []
    assert User.objects.count(name="changed") == 0


def test_bulk_update_validates_values_before_sql(User: Any, database_url: str,
                                                 count_statements: Any) -> None:
    users = _users(User, 2)
    users[1].score = "many"  # assignment is not validated by pydantic
    with count_statements(database_url) as log, pytest.raises(ValidationError):
        User.objects.bulk_update(users, ["score"])
    assert log == []


def test_bulk_update_of_nothing_sends_nothing(User: Any, database_url: str,
                                              count_statements: Any) -> None:
    with count_statements(database_url) as log:
        assert User.objects.bulk_update([], ["name"]) == 0
    assert log == []


def test_bulk_update_hashes_passwords_and_stamps_auto_now(database_url: str) -> None:
    @database_registry(database_url, table_name="accounts")
    class Account(BaseModel):
        id: int | None = None
        password: str
        updated: datetime | None = db_field(default=None, auto_now=True)

    [account] = Account.objects.bulk_create([{"password": "old secret"}])
    before = Account.objects.require(account.id).updated
    account.password = "new secret"
    assert Account.objects.bulk_update([account], ["password"]) == 1
    stored = Account.objects.require(account.id)
    assert is_password_hash(stored.password) and stored.verify_password("new secret")
    assert stored.updated is not None and before is not None and stored.updated >= before
    assert account.updated == stored.updated


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 9), st.integers(-(2**63), 2**63 - 1),
                          st.text(STORABLE_CHARS, max_size=4)),
                max_size=30))
def test_bulk_update_matches_saving_each(Item: Any, raw: RawSQL,
                                         changes: list[tuple[int, int, str]]) -> None:
    Item.objects.truncate()
    items = Item.objects.bulk_create([{"sku": f"s{i}"} for i in range(10)])
    expected = {i.sku: (0, "") for i in items}
    chosen = []
    for index, qty, label in changes:
        item = items[index].model_copy()
        item.qty, item.label = qty, label
        chosen.append(item)
        expected[item.sku] = (qty, label)
    assert Item.objects.bulk_update(chosen, ["qty", "label"]) == len({c.sku for c in chosen})
    assert {i.sku: (i.qty, i.label) for i in Item.objects.all()} == expected


# --------------------------------------------------------------------------------- in_bulk


def test_in_bulk_by_key_and_by_unique_field(User: Any) -> None:
    users = _users(User, 4)
    by_key = User.objects.in_bulk([users[0].id, users[2].id, 999])
    assert by_key == {users[0].id: users[0], users[2].id: users[2]}
    by_email = User.objects.in_bulk(["u1@x.io", "u3@x.io"], field="email")
    assert list(by_email) == ["u1@x.io", "u3@x.io"] and by_email["u1@x.io"] == users[1]
    assert User.objects.in_bulk() == {u.id: u for u in users}


def test_in_bulk_coerces_values_and_skips_none(User: Any) -> None:
    [user] = _users(User, 1)
    assert User.objects.in_bulk([str(user.id), None]) == {user.id: user}


def test_in_bulk_of_nothing_sends_nothing(User: Any, database_url: str,
                                          count_statements: Any) -> None:
    with count_statements(database_url) as log:
        assert User.objects.in_bulk([]) == {}
    assert log == []


def test_in_bulk_chunks_long_key_lists(Item: Any, database_url: str,
                                       count_statements: Any) -> None:
    Item.objects.bulk_create([{"sku": f"s{i}"} for i in range(12_000)])
    with count_statements(database_url) as log:
        found = Item.objects.in_bulk([f"s{i}" for i in range(12_000)] + ["missing"])
    assert len(found) == 12_000 and len(log) == 3


def test_in_bulk_with_a_composite_unique_field_is_refused(Pair: Any) -> None:
    with pytest.raises(InvalidQueryError, match="'slug' is not unique"):
        Pair.objects.in_bulk(["a"], field="slug")


@pytest.mark.parametrize(("args", "kwargs", "named"), [
    ((["x"],), {"field": "role"}, "'role' is not unique"),
    ((["x"],), {"field": "nope"}, "unknown field 'nope'"),
    (("abc",), {}, "takes a list"),
    ((["not a number"],), {}, "not a number"),
])
def test_in_bulk_bad_input(User: Any, args: Any, kwargs: Any, named: str) -> None:
    with pytest.raises(InvalidQueryError, match=named):
        User.objects.in_bulk(*args, **kwargs)


# ------------------------------------------------------------------------------------- raw


def test_raw_validates_rows_into_models(User: Any) -> None:
    users = _users(User, 3)
    p = User.objects.dialect.placeholder
    found = User.objects.raw(f"SELECT * FROM users WHERE score >= {p} ORDER BY score DESC",
                             [1])
    assert found == [users[2], users[1]]


def test_raw_binds_values(User: Any) -> None:
    _users(User, 2)
    p = User.objects.dialect.placeholder
    assert User.objects.raw(f"SELECT * FROM users WHERE name = {p}", ["x' OR '1'='1"]) == []
    assert User.objects.count() == 2


def test_raw_maps_columns_by_name_and_ignores_extra_ones(User: Any) -> None:
    [user] = _users(User, 1)
    sql = ("SELECT note, score, email, role, name, id, 42 AS answer FROM users")
    assert User.objects.raw(sql) == [user]


@pytest.mark.parametrize(("sql", "named"), [
    ("SELECT id, name FROM users", "no column 'email'"),
    ("SELECT id, id, name, email, role, score, note FROM users", "'id' appears more than once"),
    ("", "needs an SQL string"),
])
def test_raw_refuses_rows_it_cannot_validate(User: Any, sql: str, named: str) -> None:
    _users(User, 1)
    with pytest.raises(InvalidQueryError, match=named):
        User.objects.raw(sql)


def test_raw_statement_without_rows_is_an_error(User: Any) -> None:
    with pytest.raises(InvalidQueryError, match="returned no rows"):
        User.objects.raw("DELETE FROM users")


def test_raw_params_must_be_a_sequence_or_mapping(User: Any) -> None:
    with pytest.raises(InvalidQueryError, match="params must be"):
        User.objects.raw("SELECT * FROM users", "abc")
