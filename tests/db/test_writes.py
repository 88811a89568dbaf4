"""SPEC D3: create, upsert, update_where, delete, delete_where, bulk_create, bulk_upsert."""

import threading
from collections.abc import Callable
from typing import Any

import pydantic
import pytest
from pydantic import BaseModel, ValidationError

from registers.db import (
    DuplicateKeyError,
    F,
    InvalidPrimaryKeyAssignmentError,
    InvalidQueryError,
    UniqueConstraintError,
    database_registry,
)

from ._helpers import RawSQL, by_id


@pytest.fixture
def User(database_url: str) -> Any:
    @database_registry(database_url, table_name="users", unique_fields=["email"])
    class User(BaseModel):
        id: int | None = None
        name: str
        email: str
        role: str = "trial"
        age: int | None = None

    return User


@pytest.fixture
def Sku(database_url: str) -> Any:
    """A model with a manual (caller-supplied) key."""

    @database_registry(database_url, table_name="skus")
    class Sku(BaseModel):
        id: int
        name: str
        stock: int = 0

    return Sku


@pytest.fixture
def Counter(database_url: str) -> Any:
    @database_registry(database_url, table_name="counters")
    class Counter(BaseModel):
        id: int
        hits: int = 0
        misses: int = 0

    return Counter


def _seed(User: Any, n: int, role: str = "trial") -> list[Any]:
    return [User.objects.create(name=f"u{i}", email=f"u{i}@x.io", role=role) for i in range(n)]


# ---------------------------------------------------------------------------------- create


@pytest.mark.parametrize("method", ["create", "strict_create"])
def test_create_returns_the_model_with_its_generated_key(User: Any, method: str) -> None:
    user = getattr(User.objects, method)(name="Ada", email="ada@x.io")

    assert isinstance(user, User)
    assert user == User(id=1, name="Ada", email="ada@x.io")
    assert User.objects.get(1) == user


def test_create_assigns_increasing_keys(User: Any) -> None:
    assert [u.id for u in _seed(User, 3)] == [1, 2, 3]


def test_create_accepts_explicit_none_for_a_managed_key(User: Any) -> None:
    assert User.objects.create(id=None, name="a", email="a@x.io").id == 1


def test_create_stores_defaults(User: Any, raw: RawSQL) -> None:
    User.objects.create(name="Ada", email="ada@x.io")

    assert raw.rows("users") == [
        {"id": 1, "name": "Ada", "email": "ada@x.io", "role": "trial", "age": None}
    ]


def test_create_issues_a_single_insert(User: Any, database_url: str, count_statements) -> None:
    with count_statements(database_url) as log:
        User.objects.create(name="Ada", email="ada@x.io")

    assert len(log.matching("INSERT")) == 1
    assert log[0].lstrip().upper().startswith("INSERT")


@pytest.mark.parametrize("method", ["create", "strict_create"])
def test_create_with_an_existing_manual_key_raises_duplicate_key(Sku: Any, method: str) -> None:
    Sku.objects.create(id=7, name="first")

    with pytest.raises(DuplicateKeyError) as info:
        getattr(Sku.objects, method)(id=7, name="second")

    message = str(info.value)
    assert "7" in message
    assert "Sku" in message or "skus" in message
    assert Sku.objects.get(7).name == "first"
    assert info.value.__cause__ is not None


def test_create_with_a_taken_unique_value_raises_unique_constraint(User: Any) -> None:
    User.objects.create(name="Ada", email="ada@x.io")

    with pytest.raises(UniqueConstraintError) as info:
        User.objects.create(name="Other", email="ada@x.io")

    assert "email" in str(info.value)
    assert User.objects.count() == 1


@pytest.mark.parametrize("key", [0, 1, 5, -3])
def test_create_with_a_managed_key_raises_invalid_key_assignment(User: Any, key: int) -> None:
    with pytest.raises(InvalidPrimaryKeyAssignmentError) as info:
        User.objects.create(id=key, name="a", email="a@x.io")

    assert "id" in str(info.value)
    assert User.objects.count() == 0


@pytest.mark.parametrize(
    "data",
    [
        {"name": "a"},
        {"name": "a", "email": None},
        {"name": ["a"], "email": "a@x.io"},
        {"name": "a", "email": "a@x.io", "age": "old"},
    ],
    ids=["missing-field", "none-for-required", "wrong-type", "uncoercible"],
)
def test_invalid_data_raises_validation_error_before_any_sql(
    User: Any, database_url: str, count_statements, data: dict[str, Any]
) -> None:
    with count_statements(database_url) as log, pytest.raises(ValidationError):
        User.objects.create(**data)

    assert log == []
    assert User.objects.count() == 0


def test_create_coerces_values_like_pydantic(User: Any) -> None:
    user = User.objects.create(name="a", email="a@x.io", age="42")

    assert user.age == 42
    assert User.objects.get(1).age == 42


# ---------------------------------------------------------------------------------- upsert


def test_upsert_by_key_inserts_when_missing(Sku: Any) -> None:
    sku = Sku.objects.upsert(id=3, name="bolt", stock=10)

    assert sku == Sku(id=3, name="bolt", stock=10)
    assert Sku.objects.all() == [sku]


def test_upsert_by_key_updates_when_present(Sku: Any) -> None:
    Sku.objects.create(id=3, name="bolt", stock=10)

    sku = Sku.objects.upsert(id=3, name="bolt", stock=99)

    assert sku == Sku(id=3, name="bolt", stock=99)
    assert Sku.objects.all() == [sku]


def test_upsert_accepts_an_instance(Sku: Any) -> None:
    Sku.objects.upsert(Sku(id=1, name="a"))
    updated = Sku.objects.upsert(Sku(id=1, name="b", stock=2))

    assert updated == Sku(id=1, name="b", stock=2)
    assert Sku.objects.count() == 1


def test_upsert_by_managed_key_updates_existing_row(User: Any) -> None:
    User.objects.create(name="Bob", email="bob@x.io")

    user = User.objects.upsert(id=1, name="Robert", email="bob@x.io")

    assert user == User(id=1, name="Robert", email="bob@x.io")
    assert User.objects.all() == [user]


def test_upsert_without_key_falls_back_to_unique_fields(User: Any) -> None:
    inserted = User.objects.upsert(name="Bob", email="bob@x.io")
    updated = User.objects.upsert(name="Robert", email="bob@x.io", role="admin")

    assert inserted.id == 1
    assert updated == User(id=1, name="Robert", email="bob@x.io", role="admin")
    assert User.objects.all() == [updated]


def test_upsert_is_one_atomic_statement_without_a_prior_select(
    User: Any, database_url: str, count_statements
) -> None:
    User.objects.create(name="Bob", email="bob@x.io")

    with count_statements(database_url) as log:
        User.objects.upsert(name="Robert", email="bob@x.io")

    assert log[0].lstrip().upper().startswith("INSERT")
    assert len(log.matching("INSERT")) == 1
    insert = log.matching("INSERT")[0].upper()
    assert "ON CONFLICT" in insert or "ON DUPLICATE KEY UPDATE" in insert
    assert len(log) <= 2


def test_upsert_colliding_with_another_rows_unique_value_raises(User: Any) -> None:
    User.objects.create(name="Ada", email="ada@x.io")
    User.objects.create(name="Bob", email="bob@x.io")

    with pytest.raises(UniqueConstraintError):
        User.objects.upsert(id=2, name="Bob", email="ada@x.io")

    assert User.objects.get(2).email == "bob@x.io"


def test_upsert_validates_before_any_sql(Sku: Any, database_url: str, count_statements) -> None:
    with count_statements(database_url) as log, pytest.raises(ValidationError):
        Sku.objects.upsert(id=1, name="a", stock="many")
    assert log == []


@pytest.mark.parametrize("threads", [8])
def test_concurrent_upserts_of_one_key_never_raise(Sku: Any, threads: int) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads)

    def work(n: int) -> None:
        try:
            barrier.wait()
            for i in range(15):
                Sku.objects.upsert(id=1, name=f"t{n}", stock=i)
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()

    assert errors == []
    assert Sku.objects.count() == 1


def test_concurrent_upserts_by_unique_field_never_raise(User: Any) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def work(n: int) -> None:
        try:
            barrier.wait()
            for _ in range(10):
                User.objects.upsert(name=f"t{n}", email="same@x.io")
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()

    assert errors == []
    assert User.objects.count() == 1


# ----------------------------------------------------------------------------- update_where


def test_update_where_updates_matching_rows_and_returns_them(User: Any) -> None:
    _seed(User, 3, role="trial")
    User.objects.create(name="admin", email="admin@x.io", role="admin")

    updated = User.objects.update_where({"role": "trial"}, role="active")

    assert [(u.id, u.role) for u in by_id(updated)] == [(1, "active"), (2, "active"), (3, "active")]
    assert all(isinstance(u, User) for u in updated)
    assert User.objects.get(4).role == "admin"
    assert User.objects.count(role="active") == 3


def test_update_where_supports_lookups_in_criteria(User: Any) -> None:
    for age in (10, 20, 30):
        User.objects.create(name=f"a{age}", email=f"{age}@x.io", age=age)

    updated = User.objects.update_where({"age__gte": 20}, role="adult")

    assert sorted(u.age for u in updated) == [20, 30]
    assert User.objects.get(1).role == "trial"


def test_update_where_with_several_fields(User: Any) -> None:
    _seed(User, 2)

    updated = User.objects.update_where({"id": 1}, name="Ada", age=36)

    assert updated == [User(id=1, name="Ada", email="u0@x.io", age=36)]
    assert User.objects.get(2).name == "u1"


def test_update_where_without_matches_returns_empty_list(User: Any) -> None:
    _seed(User, 2)

    assert User.objects.update_where({"role": "nobody"}, role="x") == []
    assert User.objects.count(role="trial") == 2


def test_update_where_can_set_null(User: Any) -> None:
    User.objects.create(name="a", email="a@x.io", age=3)

    assert User.objects.update_where({"id": 1}, age=None)[0].age is None
    assert User.objects.get(1).age is None


@pytest.mark.parametrize("rows", [3, 60])
def test_update_where_issues_a_bounded_number_of_statements(
    User: Any, database_url: str, count_statements, rows: int
) -> None:
    User.objects.bulk_create([{"name": f"u{i}", "email": f"u{i}@x.io"} for i in range(rows)])

    with count_statements(database_url) as log:
        updated = User.objects.update_where({"role": "trial"}, role="active")

    assert len(updated) == rows
    assert len(log) <= 4, log
    assert len(log.matching("UPDATE")) == 1


def test_update_where_statement_count_does_not_grow_with_rows(
    User: Any, database_url: str, count_statements
) -> None:
    counts = []
    for batch, rows in enumerate((2, 40)):
        role = f"r{batch}"
        User.objects.bulk_create(
            [{"name": "n", "email": f"{batch}-{i}@x.io", "role": role} for i in range(rows)]
        )
        with count_statements(database_url) as log:
            User.objects.update_where({"role": role}, age=1)
        counts.append(len(log))

    assert counts[0] == counts[1]


def test_update_where_is_all_or_nothing(User: Any) -> None:
    User.objects.create(name="a", email="a@x.io", role="x")
    User.objects.create(name="b", email="b@x.io", role="x")

    with pytest.raises(UniqueConstraintError):
        User.objects.update_where({"role": "x"}, email="same@x.io")

    assert [u.email for u in User.objects.filter(order_by="id")] == ["a@x.io", "b@x.io"]


@pytest.mark.parametrize(
    ("criteria", "updates"),
    [
        ({}, {"role": "x"}),
        ({"role": "trial"}, {}),
        ({}, {}),
    ],
    ids=["empty-criteria", "empty-updates", "both-empty"],
)
def test_update_where_rejects_empty_criteria_or_updates(
    User: Any, criteria: dict[str, Any], updates: dict[str, Any]
) -> None:
    _seed(User, 2)

    with pytest.raises(InvalidQueryError):
        User.objects.update_where(criteria, **updates)

    assert User.objects.count(role="trial") == 2


@pytest.mark.parametrize(
    ("criteria", "updates", "named"),
    [
        ({"nope": 1}, {"role": "x"}, "nope"),
        ({"role": "trial"}, {"nope": "x"}, "nope"),
        ({"role__fuzzy": "t"}, {"role": "x"}, "fuzzy"),
    ],
    ids=["unknown-criteria-field", "unknown-update-field", "unknown-operator"],
)
def test_update_where_rejects_unknown_names(
    User: Any, criteria: dict[str, Any], updates: dict[str, Any], named: str
) -> None:
    _seed(User, 1)

    with pytest.raises(InvalidQueryError) as info:
        User.objects.update_where(criteria, **updates)

    assert named in str(info.value)


def test_update_where_rejects_uncoercible_values_before_sql(
    User: Any, database_url: str, count_statements
) -> None:
    _seed(User, 1)

    with count_statements(database_url) as log, pytest.raises((ValidationError, InvalidQueryError)):
        User.objects.update_where({"id": 1}, age="not a number")

    assert log == []
    assert User.objects.get(1).age is None


def test_update_where_rejects_null_for_a_required_field(User: Any) -> None:
    _seed(User, 1)

    with pytest.raises((ValidationError, InvalidQueryError)):
        User.objects.update_where({"id": 1}, name=None)

    assert User.objects.get(1).name == "u0"


# ------------------------------------------------------------------------- F expressions


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        (lambda: F("hits") + 1, 11),
        (lambda: F("hits") - 3, 7),
        (lambda: F("hits") + F("misses"), 14),
        (lambda: F("hits") * 2, 20),
    ],
    ids=["plus", "minus", "column-plus-column", "times"],
)
def test_update_where_with_f_expression(
    Counter: Any, expression: Callable[[], Any], expected: int
) -> None:
    Counter.objects.create(id=1, hits=10, misses=4)
    Counter.objects.create(id=2, hits=100)

    updated = Counter.objects.update_where({"id": 1}, hits=expression())

    assert [c.hits for c in updated] == [expected]
    assert Counter.objects.get(1).hits == expected
    assert Counter.objects.get(2).hits == 100


def test_f_expression_applies_per_row(Counter: Any) -> None:
    Counter.objects.bulk_create([{"id": i, "hits": i * 10} for i in range(1, 4)])

    Counter.objects.update_where({"id__gte": 1}, hits=F("hits") + 1)

    assert [c.hits for c in Counter.objects.filter(order_by="id")] == [11, 21, 31]


def test_concurrent_f_increments_lose_no_update(Counter: Any) -> None:
    Counter.objects.create(id=1)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(25):
                Counter.objects.update_where({"id": 1}, hits=F("hits") + 1)
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=work) for _ in range(6)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()

    assert errors == []
    assert Counter.objects.get(1).hits == 150


def test_f_expression_on_unknown_field_raises(Counter: Any) -> None:
    Counter.objects.create(id=1)

    with pytest.raises(InvalidQueryError) as info:
        Counter.objects.update_where({"id": 1}, hits=F("nope") + 1)

    assert "nope" in str(info.value)
    assert Counter.objects.get(1).hits == 0


# ---------------------------------------------------------------------------------- delete


def test_delete_by_key_reports_whether_a_row_was_deleted(User: Any) -> None:
    _seed(User, 2)

    assert User.objects.delete(1) is True
    assert User.objects.delete(1) is False
    assert User.objects.delete(999) is False
    assert [u.id for u in User.objects.all()] == [2]


def test_delete_where_returns_the_row_count(User: Any) -> None:
    _seed(User, 3, role="inactive")
    _seed_more = User.objects.create(name="k", email="k@x.io", role="active")

    assert User.objects.delete_where(role="inactive") == 3
    assert User.objects.delete_where(role="inactive") == 0
    assert User.objects.all() == [_seed_more]


def test_delete_where_supports_lookups(User: Any) -> None:
    for age in (10, 20, 30):
        User.objects.create(name=f"a{age}", email=f"{age}@x.io", age=age)

    assert User.objects.delete_where(age__lt=25) == 2
    assert [u.age for u in User.objects.all()] == [30]


def test_delete_where_without_criteria_is_rejected(User: Any) -> None:
    _seed(User, 2)

    with pytest.raises(InvalidQueryError):
        User.objects.delete_where()

    assert User.objects.count() == 2


def test_delete_where_with_unknown_field_is_rejected(User: Any) -> None:
    _seed(User, 2)

    with pytest.raises(InvalidQueryError) as info:
        User.objects.delete_where(nope=1)

    assert "nope" in str(info.value)
    assert User.objects.count() == 2


# ------------------------------------------------------------------------------------ bulk


def test_bulk_create_takes_models_and_dicts_and_returns_keys(User: Any) -> None:
    created = User.objects.bulk_create(
        [
            User(name="a", email="a@x.io"),
            {"name": "b", "email": "b@x.io", "role": "admin"},
            User(name="c", email="c@x.io"),
        ]
    )

    assert [(u.id, u.name) for u in created] == [(1, "a"), (2, "b"), (3, "c")]
    assert all(isinstance(u, User) for u in created)
    assert User.objects.filter(order_by="id") == created


def test_bulk_create_of_nothing_returns_empty_list(
    User: Any, database_url: str, count_statements
) -> None:
    with count_statements(database_url) as log:
        assert User.objects.bulk_create([]) == []
    assert log == []


def test_bulk_create_validates_everything_before_writing(
    User: Any, database_url: str, count_statements
) -> None:
    items = [{"name": f"u{i}", "email": f"u{i}@x.io"} for i in range(5)]
    items.append({"name": "bad", "email": "bad@x.io", "age": "old"})

    with count_statements(database_url) as log, pytest.raises(ValidationError):
        User.objects.bulk_create(items)

    assert log == []
    assert User.objects.count() == 0


@pytest.mark.parametrize("where", ["in-batch", "against-table"])
def test_bulk_create_is_all_or_nothing_on_unique_collision(User: Any, where: str) -> None:
    if where == "against-table":
        User.objects.create(name="old", email="dup@x.io")
        items = [{"name": "a", "email": "a@x.io"}, {"name": "b", "email": "dup@x.io"}]
    else:
        items = [
            {"name": "a", "email": "a@x.io"},
            {"name": "b", "email": "dup@x.io"},
            {"name": "c", "email": "dup@x.io"},
        ]
    before = User.objects.count()

    with pytest.raises(UniqueConstraintError):
        User.objects.bulk_create(items)

    assert User.objects.count() == before
    assert not User.objects.exists(email="a@x.io")


def test_bulk_create_is_all_or_nothing_on_key_collision(Sku: Any) -> None:
    Sku.objects.create(id=2, name="old")

    with pytest.raises(DuplicateKeyError):
        Sku.objects.bulk_create([Sku(id=1, name="a"), Sku(id=2, name="b"), Sku(id=3, name="c")])

    assert [s.id for s in Sku.objects.all()] == [2]


def test_bulk_create_rejects_a_managed_key(User: Any) -> None:
    with pytest.raises(InvalidPrimaryKeyAssignmentError):
        User.objects.bulk_create(
            [{"name": "a", "email": "a@x.io"}, {"id": 9, "name": "b", "email": "b@x.io"}]
        )
    assert User.objects.count() == 0


def test_bulk_create_issues_batched_statements(
    User: Any, database_url: str, count_statements
) -> None:
    items = [{"name": f"u{i}", "email": f"u{i}@x.io"} for i in range(500)]

    with count_statements(database_url) as log:
        created = User.objects.bulk_create(items)

    assert len(created) == 500
    assert [u.id for u in created] == list(range(1, 501))
    assert len(log) <= 10


def test_bulk_upsert_inserts_new_and_updates_existing(Sku: Any) -> None:
    Sku.objects.create(id=1, name="a", stock=1)

    result = Sku.objects.bulk_upsert(
        [Sku(id=1, name="a2", stock=5), {"id": 2, "name": "b", "stock": 7}]
    )

    assert by_id(result) == [Sku(id=1, name="a2", stock=5), Sku(id=2, name="b", stock=7)]
    assert Sku.objects.filter(order_by="id") == by_id(result)


def test_bulk_upsert_by_unique_fields_returns_keys(User: Any) -> None:
    User.objects.create(name="Ada", email="ada@x.io")

    result = User.objects.bulk_upsert(
        [{"name": "Ada L.", "email": "ada@x.io"}, {"name": "Bob", "email": "bob@x.io"}]
    )

    by_email = {u.email: u for u in result}
    assert by_email["ada@x.io"].id == 1
    assert by_email["ada@x.io"].name == "Ada L."
    assert by_email["bob@x.io"].id not in (None, 1)  # servers may skip sequence values
    assert User.objects.get(email="bob@x.io").id == by_email["bob@x.io"].id
    assert User.objects.count() == 2


def test_bulk_upsert_validates_everything_first(
    Sku: Any, database_url: str, count_statements
) -> None:
    Sku.objects.create(id=1, name="a", stock=1)

    with count_statements(database_url) as log, pytest.raises(ValidationError):
        Sku.objects.bulk_upsert([{"id": 1, "name": "a2"}, {"id": 2, "name": "b", "stock": "x"}])

    assert log == []
    assert Sku.objects.all() == [Sku(id=1, name="a", stock=1)]


def test_bulk_upsert_is_all_or_nothing(User: Any) -> None:
    User.objects.create(name="Ada", email="ada@x.io")
    User.objects.create(name="Bob", email="bob@x.io")

    with pytest.raises(UniqueConstraintError):
        User.objects.bulk_upsert(
            [
                {"id": 1, "name": "Ada 2", "email": "ada@x.io"},
                {"id": 2, "name": "Bob 2", "email": "ada@x.io"},
            ]
        )

    assert [u.name for u in User.objects.filter(order_by="id")] == ["Ada", "Bob"]


def test_bulk_upsert_of_nothing_returns_empty_list(Sku: Any) -> None:
    assert Sku.objects.bulk_upsert([]) == []


def test_writes_return_instances_independent_of_input(Sku: Any) -> None:
    item = Sku(id=1, name="a")
    created = Sku.objects.bulk_create([item])[0]

    created.name = "changed"
    assert Sku.objects.get(1).name == "a"


def test_model_validation_config_is_respected(database_url: str) -> None:
    @database_registry(database_url, table_name="stricts")
    class Strict(BaseModel):
        model_config = pydantic.ConfigDict(strict=True)
        id: int | None = None
        count: int

    with pytest.raises(ValidationError):
        Strict.objects.create(count="3")
    assert Strict.objects.create(count=3).count == 3


# ------------------------------------------------------------ identifiers that need quoting


@pytest.mark.parametrize("table", ["order", "select", "MixedCase", "user accounts"])
def test_reserved_words_and_mixed_case_identifiers_work_everywhere(
    database_url: str, table: str
) -> None:
    @database_registry(database_url, table_name=table, unique_fields=["key"])
    class Keyword(BaseModel):
        id: int | None = None
        key: str
        order: int = 0
        group: str | None = None
        select: bool = False
        userName: str = ""

    first = Keyword.objects.create(key="a", order=2, group="g", userName="Ada")
    Keyword.objects.bulk_create([{"key": "b", "order": 1}, {"key": "c", "order": 3}])
    Keyword.objects.upsert(key="a", order=5, group="g", userName="Ada L.")
    Keyword.objects.bulk_upsert([{"key": "b", "order": 0, "select": True}])
    Keyword.objects.update_where({"group": "g"}, select=True, order=F("order") + 1)

    assert [k.key for k in Keyword.objects.filter(order_by="-order")] == ["a", "c", "b"]
    assert Keyword.objects.get(userName="Ada L.").order == 6
    assert Keyword.objects.count(select=True) == 2
    assert first.refresh().group == "g"
    assert [k.key for k in Keyword.objects.iterate(batch_size=1, order_by="order")] == [
        "b",
        "c",
        "a",
    ]
    assert Keyword.objects.delete_where(order__gte=3) == 2
    Keyword.truncate()
    assert Keyword.objects.count() == 0


def test_bulk_create_of_many_wide_rows(database_url: str) -> None:
    fields = {f"f{i}": (int, 0) for i in range(12)}
    model = pydantic.create_model("Wide", id=(int | None, None), **fields)
    Wide = database_registry(database_url, table_name="wides")(model)

    rows = [{f"f{i}": n + i for i in range(12)} for n in range(4000)]
    created = Wide.objects.bulk_create(rows)

    assert len(created) == 4000
    assert len({w.id for w in created}) == 4000
    assert Wide.objects.count() == 4000
    assert Wide.objects.get(created[-1].id).f11 == 3999 + 11


def test_bulk_upsert_issues_batched_statements(
    Sku: Any, database_url: str, count_statements
) -> None:
    Sku.objects.bulk_create([{"id": i, "name": f"s{i}"} for i in range(0, 300, 2)])

    with count_statements(database_url) as log:
        result = Sku.objects.bulk_upsert([{"id": i, "name": f"new{i}"} for i in range(300)])

    assert len(result) == 300
    assert Sku.objects.count() == 300
    assert Sku.objects.count(name__startswith="new") == 300
    assert len(log) <= 10


def test_f_expression_with_decimal_operand_is_exact(database_url: str) -> None:
    from decimal import Decimal

    @database_registry(database_url, table_name="accounts")
    class Account(BaseModel):
        id: int
        balance: Decimal

    Account.objects.create(id=1, balance=Decimal("10.10"))

    (updated,) = Account.objects.update_where({"id": 1}, balance=F("balance") + Decimal("0.20"))

    assert updated.balance == Decimal("10.30")
    assert Account.objects.get(1).balance == Decimal("10.30")
