"""SPEC D5: save(), delete() and refresh() on model instances."""

from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel

from registers.db import (
    ImmutableFieldError,
    RecordNotFoundError,
    UniqueConstraintError,
    database_registry,
)

from ._helpers import RawSQL


@pytest.fixture
def User(database_url: str) -> Any:
    @database_registry(database_url, table_name="users", unique_fields=["email"])
    class User(BaseModel):
        id: int | None = None
        name: str
        email: str
        visits: int = 0

    return User


@pytest.fixture
def Country(database_url: str) -> Any:
    @database_registry(database_url, table_name="countries", key_field="code")
    class Country(BaseModel):
        code: str
        name: str

    return Country


# ------------------------------------------------------------------------------------ save


def test_save_of_a_new_instance_inserts_and_sets_the_generated_key(User: Any) -> None:
    user = User(name="Ada", email="ada@x.io")

    user.save()

    assert user.id == 1
    assert User.objects.get(1) == user


def test_save_of_a_changed_instance_updates_the_row(User: Any, raw: RawSQL) -> None:
    user = User.objects.create(name="Ada", email="ada@x.io")

    user.name = "Ada Lovelace"
    user.visits = 3
    user.save()

    assert raw.rows("users") == [
        {"id": 1, "name": "Ada Lovelace", "email": "ada@x.io", "visits": 3}
    ]


def test_save_twice_does_not_duplicate(User: Any) -> None:
    user = User(name="Ada", email="ada@x.io")
    user.save()
    user.save()

    assert User.objects.count() == 1


def test_save_of_a_manual_key_instance_inserts_then_updates(Country: Any) -> None:
    country = Country(code="fr", name="France")
    country.save()
    country.name = "République française"
    country.save()

    assert Country.objects.all() == [Country(code="fr", name="République française")]


def test_save_reflects_generated_values_without_replacing_the_instance(User: Any) -> None:
    user = User(name="Ada", email="ada@x.io")
    same = user

    user.save()

    assert same is user
    assert same.id == 1


def test_save_with_a_unique_collision_raises(User: Any) -> None:
    User.objects.create(name="Ada", email="ada@x.io")
    other = User.objects.create(name="Bob", email="bob@x.io")

    other.email = "ada@x.io"
    with pytest.raises(UniqueConstraintError):
        other.save()

    assert User.objects.get(2).email == "bob@x.io"


SOURCES: dict[str, Callable[[Any], Any]] = {
    "create": lambda M: M.objects.create(name="Ada", email="ada@x.io"),
    "get": lambda M: (M.objects.create(name="Ada", email="ada@x.io"), M.objects.get(1))[1],
    "require": lambda M: (M.objects.create(name="Ada", email="ada@x.io"), M.objects.require(1))[1],
    "filter": lambda M: (M.objects.create(name="Ada", email="ada@x.io"), M.objects.filter())[1][0],
    "all": lambda M: (M.objects.create(name="Ada", email="ada@x.io"), M.objects.all())[1][0],
    "first": lambda M: (M.objects.create(name="Ada", email="ada@x.io"), M.objects.first())[1],
    "upsert": lambda M: M.objects.upsert(name="Ada", email="ada@x.io"),
    "bulk_create": lambda M: M.objects.bulk_create([{"name": "Ada", "email": "ada@x.io"}])[0],
    "iterate": lambda M: (
        M.objects.create(name="Ada", email="ada@x.io"),
        next(M.objects.iterate()),
    )[1],
    "saved": lambda M: (u := M(name="Ada", email="ada@x.io"), u.save(), u)[2],
}


@pytest.mark.parametrize("source", list(SOURCES))
def test_changing_a_persisted_key_and_saving_raises_immutable_field(User: Any, source: str) -> None:
    user = SOURCES[source](User)

    user.id = 999
    with pytest.raises(ImmutableFieldError) as info:
        user.save()

    assert "id" in str(info.value)
    assert User.objects.get(999) is None
    assert [u.id for u in User.objects.all()] == [1]


def test_changing_a_manual_key_and_saving_raises_immutable_field(Country: Any) -> None:
    country = Country.objects.create(code="fr", name="France")

    country.code = "de"
    with pytest.raises(ImmutableFieldError) as info:
        country.save()

    assert "code" in str(info.value)
    assert Country.objects.get("de") is None
    assert Country.objects.get("fr").name == "France"


def test_changing_the_key_back_allows_saving(User: Any) -> None:
    user = User.objects.create(name="Ada", email="ada@x.io")

    user.id = 5
    user.id = 1
    user.name = "Ada L."
    user.save()

    assert User.objects.get(1).name == "Ada L."


def test_a_model_copy_keeps_the_key_immutable(User: Any) -> None:
    user = User.objects.create(name="Ada", email="ada@x.io")

    copy = user.model_copy(update={"name": "Copy"})
    copy.save()

    assert User.objects.count() == 1
    assert User.objects.get(1).name == "Copy"


# ---------------------------------------------------------------------------------- delete


def test_delete_removes_the_row_and_reports_it(User: Any) -> None:
    user = User.objects.create(name="Ada", email="ada@x.io")
    keep = User.objects.create(name="Bob", email="bob@x.io")

    assert user.delete() is True
    assert User.objects.get(1) is None
    assert User.objects.all() == [keep]


def test_delete_twice_returns_false(User: Any) -> None:
    user = User.objects.create(name="Ada", email="ada@x.io")
    user.delete()

    assert user.delete() is False


def test_delete_of_a_never_saved_instance_returns_false(User: Any) -> None:
    User.objects.create(name="Ada", email="ada@x.io")

    assert User(name="Ghost", email="ghost@x.io").delete() is False
    assert User.objects.count() == 1


def test_delete_then_save_inserts_again(Country: Any) -> None:
    country = Country.objects.create(code="fr", name="France")
    country.delete()

    country.save()

    assert Country.objects.get("fr") == country


# --------------------------------------------------------------------------------- refresh


def test_refresh_returns_a_fresh_copy_from_the_database(User: Any) -> None:
    user = User.objects.create(name="Ada", email="ada@x.io")
    User.objects.update_where({"id": 1}, name="Changed elsewhere", visits=7)

    fresh = user.refresh()

    assert isinstance(fresh, User)
    assert fresh == User(id=1, name="Changed elsewhere", email="ada@x.io", visits=7)


def test_refresh_discards_unsaved_changes(User: Any) -> None:
    user = User.objects.create(name="Ada", email="ada@x.io")
    user.name = "unsaved"

    assert user.refresh().name == "Ada"


def test_refresh_of_a_deleted_row_raises_record_not_found(User: Any) -> None:
    user = User.objects.create(name="Ada", email="ada@x.io")
    User.objects.delete(1)

    with pytest.raises(RecordNotFoundError) as info:
        user.refresh()

    assert "User" in str(info.value)
    assert "1" in str(info.value)


def test_refreshed_copy_can_be_saved(User: Any) -> None:
    user = User.objects.create(name="Ada", email="ada@x.io")

    fresh = user.refresh()
    fresh.visits = 2
    fresh.save()

    assert User.objects.get(1).visits == 2


def test_instance_methods_do_not_leak_into_dumps(User: Any) -> None:
    user = User.objects.create(name="Ada", email="ada@x.io")
    user.save()

    assert user.model_dump() == {"id": 1, "name": "Ada", "email": "ada@x.io", "visits": 0}
    assert User.model_validate_json(user.model_dump_json()) == user
