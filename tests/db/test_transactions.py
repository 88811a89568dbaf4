"""SPEC D7: transactions scope every manager of the database; nested blocks are savepoints."""

import asyncio
import threading
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import BaseModel

from registers.db import DuplicateKeyError, RegistryError, database_registry


class Boom(Exception):
    """Raised by tests to abort a transaction."""


@pytest.fixture
def models(database_url: str) -> tuple[Any, Any]:
    @database_registry(database_url, table_name="users", unique_fields=["email"])
    class User(BaseModel):
        id: int | None = None
        name: str
        email: str

    @database_registry(database_url, table_name="profiles")
    class Profile(BaseModel):
        id: int | None = None
        user_id: int
        bio: str = ""

    return User, Profile


def _run_threads(targets: list[Any]) -> list[BaseException]:
    errors: list[BaseException] = []

    def wrap(fn: Any) -> Any:
        def run() -> None:
            try:
                fn()
            except BaseException as exc:
                errors.append(exc)

        return run

    threads = [threading.Thread(target=wrap(t)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    return errors


def test_transaction_commits_across_two_models(models: tuple[Any, Any]) -> None:
    User, Profile = models

    with User.objects.transaction():
        user = User.objects.create(name="Ada", email="ada@x.io")
        Profile.objects.create(user_id=user.id, bio="math")

    assert User.objects.count() == 1
    assert Profile.objects.all() == [Profile(id=1, user_id=1, bio="math")]


def test_exception_rolls_back_both_models_and_propagates(models: tuple[Any, Any]) -> None:
    User, Profile = models

    with pytest.raises(Boom), User.objects.transaction():
        user = User.objects.create(name="Ada", email="ada@x.io")
        Profile.objects.create(user_id=user.id)
        raise Boom

    assert User.objects.count() == 0
    assert Profile.objects.count() == 0


def test_rollback_covers_every_kind_of_write(models: tuple[Any, Any]) -> None:
    User, Profile = models
    User.objects.create(name="Keep", email="keep@x.io")
    User.objects.create(name="Gone", email="gone@x.io")
    Profile.objects.create(user_id=1, bio="original")

    with pytest.raises(Boom), Profile.objects.transaction():
        User.objects.update_where({"id": 1}, name="Changed")
        User.objects.delete(2)
        User.objects.upsert(name="New", email="new@x.io")
        User.objects.bulk_create([{"name": "Bulk", "email": "bulk@x.io"}])
        Profile.objects.delete_where(user_id=1)
        raise Boom

    assert [(u.id, u.name) for u in User.objects.filter(order_by="id")] == [
        (1, "Keep"),
        (2, "Gone"),
    ]
    assert Profile.objects.all() == [Profile(id=1, user_id=1, bio="original")]


def test_instance_methods_join_the_transaction(models: tuple[Any, Any]) -> None:
    User, _ = models
    existing = User.objects.create(name="Ada", email="ada@x.io")

    with pytest.raises(Boom), User.objects.transaction():
        existing.name = "Changed"
        existing.save()
        User(name="New", email="new@x.io").save()
        raise Boom

    assert existing.refresh().name == "Ada"
    assert User.objects.count() == 1


def test_reads_inside_the_block_see_its_writes(models: tuple[Any, Any]) -> None:
    User, Profile = models

    with User.objects.transaction():
        User.objects.create(name="Ada", email="ada@x.io")
        assert User.objects.count() == 1
        assert User.objects.get(email="ada@x.io").name == "Ada"
        assert Profile.objects.exists() is False


def _raw_insert(conn: Any) -> None:
    sql = "INSERT INTO users (name, email) VALUES ('Raw', 'raw@x.io')"
    if isinstance(conn, sa.Connection):
        conn.execute(sa.text(sql))
    else:  # a DBAPI connection
        cursor = conn.cursor()
        cursor.execute(sql)
        cursor.close()


def test_raw_sql_on_the_yielded_connection_joins_the_transaction(
    models: tuple[Any, Any],
) -> None:
    User, _ = models

    with pytest.raises(Boom), User.objects.transaction() as conn:
        _raw_insert(conn)
        assert User.objects.count() == 1
        raise Boom

    assert User.objects.count() == 0


def test_transaction_yields_a_sqlalchemy_connection(models: tuple[Any, Any]) -> None:
    User, _ = models

    with User.objects.transaction() as conn:
        assert isinstance(conn, sa.Connection)
        assert conn.execute(sa.text("SELECT COUNT(*) FROM users")).scalar() == 0


def test_every_statement_in_the_block_uses_one_connection(
    models: tuple[Any, Any], database_url: str, count_statements
) -> None:
    User, Profile = models

    with count_statements(database_url) as log, User.objects.transaction():
        User.objects.create(name="Ada", email="ada@x.io")
        Profile.objects.create(user_id=1)
        User.objects.all()
        Profile.objects.count()

    assert len(log) >= 4
    assert len({id(c) for c in log.connections}) == 1


def test_nested_block_is_a_savepoint(models: tuple[Any, Any]) -> None:
    User, Profile = models

    with User.objects.transaction():
        User.objects.create(name="Outer", email="outer@x.io")
        with pytest.raises(Boom), Profile.objects.transaction():
            User.objects.create(name="Inner", email="inner@x.io")
            Profile.objects.create(user_id=2)
            raise Boom
        User.objects.create(name="After", email="after@x.io")

    assert sorted(u.name for u in User.objects.all()) == ["After", "Outer"]
    assert Profile.objects.count() == 0


def test_nested_success_is_rolled_back_by_outer_failure(models: tuple[Any, Any]) -> None:
    User, _ = models

    with pytest.raises(Boom), User.objects.transaction():
        User.objects.create(name="Outer", email="outer@x.io")
        with User.objects.transaction():
            User.objects.create(name="Inner", email="inner@x.io")
        raise Boom

    assert User.objects.count() == 0


def test_three_levels_of_nesting(models: tuple[Any, Any]) -> None:
    User, _ = models

    with User.objects.transaction():
        User.objects.create(name="L1", email="l1@x.io")
        with User.objects.transaction():
            User.objects.create(name="L2", email="l2@x.io")
            with pytest.raises(Boom), User.objects.transaction():
                User.objects.create(name="L3", email="l3@x.io")
                raise Boom
        assert User.objects.count() == 2

    assert sorted(u.name for u in User.objects.all()) == ["L1", "L2"]


def test_a_failed_write_inside_a_savepoint_keeps_the_outer_transaction_usable(
    models: tuple[Any, Any],
) -> None:
    User, _ = models
    User.objects.create(name="Ada", email="ada@x.io")

    with User.objects.transaction():
        User.objects.create(name="Bob", email="bob@x.io")
        with pytest.raises(RegistryError), User.objects.transaction():
            User.objects.create(name="Dup", email="ada@x.io")
        User.objects.create(name="Cy", email="cy@x.io")

    assert sorted(u.name for u in User.objects.all()) == ["Ada", "Bob", "Cy"]


def test_registry_error_inside_a_block_rolls_back(models: tuple[Any, Any]) -> None:
    User, _ = models
    User.objects.create(name="Ada", email="ada@x.io")

    with pytest.raises(RegistryError), User.objects.transaction():
        User.objects.create(name="Bob", email="bob@x.io")
        User.objects.create(name="Dup", email="ada@x.io")

    assert [u.name for u in User.objects.all()] == ["Ada"]


def test_outside_a_block_each_operation_is_its_own_transaction(database_url: str) -> None:
    @database_registry(database_url, table_name="skus")
    class Sku(BaseModel):
        id: int
        name: str

    Sku.objects.create(id=1, name="a")
    with pytest.raises(DuplicateKeyError):
        Sku.objects.create(id=1, name="again")
    Sku.objects.create(id=2, name="b")

    assert [s.id for s in Sku.objects.filter(order_by="id")] == [1, 2]


def test_uncommitted_writes_are_invisible_to_other_threads(models: tuple[Any, Any]) -> None:
    User, _ = models
    seen: list[int] = []

    with User.objects.transaction():
        User.objects.create(name="Ada", email="ada@x.io")
        errors = _run_threads([lambda: seen.append(User.objects.count())])

    assert errors == []
    assert seen == [0]
    assert User.objects.count() == 1


def test_another_threads_operations_do_not_join_the_transaction(models: tuple[Any, Any]) -> None:
    User, Profile = models
    started = threading.Event()
    checked = threading.Event()
    seen: list[int] = []

    def rolls_back() -> None:
        with pytest.raises(Boom), User.objects.transaction():
            User.objects.create(name="Ada", email="ada@x.io")
            started.set()
            checked.wait(timeout=30)
            raise Boom

    def reads() -> None:
        started.wait(timeout=30)
        seen.append(User.objects.count())
        seen.append(Profile.objects.count())
        checked.set()

    errors = _run_threads([rolls_back, reads])

    assert errors == []
    assert seen == [0, 0]
    assert User.objects.count() == 0


def test_threads_each_in_their_own_transaction(models: tuple[Any, Any]) -> None:
    User, Profile = models

    def worker(n: int) -> Any:
        def run() -> None:
            for i in range(5):
                with User.objects.transaction():
                    before = Profile.objects.count()
                    user = User.objects.create(name=f"t{n}", email=f"t{n}-{i}@x.io")
                    Profile.objects.create(user_id=user.id, bio=str(before))
                    if i == 4 and n % 2:
                        raise Boom

        return run

    errors = _run_threads([worker(n) for n in range(6)])

    assert all(isinstance(e, Boom) for e in errors), errors
    assert len(errors) == 3
    # 6 threads x 5 transactions, the last one of 3 threads rolled back.
    assert User.objects.count() == 27
    assert Profile.objects.count() == 27
    users = {u.id for u in User.objects.all()}
    assert {p.user_id for p in Profile.objects.all()} == users


async def test_asyncio_tasks_each_have_their_own_transaction(models: tuple[Any, Any]) -> None:
    User, _ = models
    inside = asyncio.Event()
    checked = asyncio.Event()
    seen: list[int] = []

    async def rolls_back() -> None:
        with pytest.raises(Boom), User.objects.transaction():
            User.objects.create(name="Ada", email="ada@x.io")
            inside.set()
            await checked.wait()
            raise Boom

    async def reads() -> None:
        await inside.wait()
        seen.append(User.objects.count())
        checked.set()

    await asyncio.wait_for(asyncio.gather(rolls_back(), reads()), timeout=30)

    assert seen == [0]
    assert User.objects.count() == 0


def test_transaction_is_usable_again_after_a_rollback(models: tuple[Any, Any]) -> None:
    User, _ = models

    with pytest.raises(Boom), User.objects.transaction():
        User.objects.create(name="Ada", email="ada@x.io")
        raise Boom
    with User.objects.transaction():
        User.objects.create(name="Bob", email="bob@x.io")

    assert [u.name for u in User.objects.all()] == ["Bob"]


def test_transactions_on_different_databases_are_independent(
    database_url: str, tmp_path: Any
) -> None:
    other_url = f"sqlite:///{tmp_path / 'other.db'}"

    @database_registry(database_url, table_name="local_items")
    class Local(BaseModel):
        id: int | None = None
        name: str

    @database_registry(other_url, table_name="remote_items")
    class Remote(BaseModel):
        id: int | None = None
        name: str

    try:
        with pytest.raises(Boom), Local.objects.transaction():
            Local.objects.create(name="rolled back")
            Remote.objects.create(name="own transaction")
            raise Boom

        assert Local.objects.count() == 0
        assert Remote.objects.count() == 1
    finally:
        from registers.db import dispose_engine

        dispose_engine(other_url)


def test_a_caught_error_inside_a_block_keeps_earlier_writes(models: tuple[Any, Any]) -> None:
    User, Profile = models
    User.objects.create(name="Ada", email="ada@x.io")

    with User.objects.transaction():
        User.objects.create(name="Bob", email="bob@x.io")
        with pytest.raises(RegistryError):
            User.objects.create(name="Dup", email="ada@x.io")
        with pytest.raises(RegistryError):
            User.objects.bulk_create(
                [{"name": "Cy", "email": "cy@x.io"}, {"name": "Dup", "email": "ada@x.io"}]
            )
        Profile.objects.create(user_id=2)

    assert sorted(u.name for u in User.objects.all()) == ["Ada", "Bob"]
    assert Profile.objects.count() == 1
