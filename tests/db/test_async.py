"""SPEC D12: async twins of every manager read and write, on SQLAlchemy's async engine."""

import asyncio
import contextlib
import enum
import itertools
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import BaseModel, ValidationError

from registers.db import (
    ConfigurationError,
    DuplicateKeyError,
    F,
    ImmutableFieldError,
    InvalidPrimaryKeyAssignmentError,
    InvalidQueryError,
    RecordNotFoundError,
    RegistryError,
    UniqueConstraintError,
    aio,
    async_ops,
    database_registry,
    db_field,
    get_engine,
    is_password_hash,
)

from ._helpers import count_statements_on


class Boom(Exception):
    """Raised by tests to abort a transaction."""


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


@pytest.fixture
async def async_url(database_url: str) -> AsyncIterator[str]:
    """``database_url``, with the async connections closed before its schema is dropped."""
    yield database_url
    await aio.adispose_all()


@pytest.fixture
def models(async_url: str) -> tuple[Any, Any]:
    database_url = async_url

    @database_registry(database_url, table_name="users", unique_fields=["email"])
    class User(BaseModel):
        id: int | None = None
        name: str
        email: str
        age: int = 0
        password: str | None = None

    @database_registry(database_url, table_name="profiles")
    class Profile(BaseModel):
        id: int | None = None
        user_id: int
        bio: str = ""

    return User, Profile


@pytest.fixture
def User(models: tuple[Any, Any]) -> Any:
    return models[0]


@pytest.fixture
def Tag(async_url: str) -> Any:
    @database_registry(async_url, table_name="tags", key_field="slug")
    class Tag(BaseModel):
        slug: str
        label: str

    return Tag


@pytest.fixture
def statements() -> Iterator[list[tuple[sa.Engine | None, str, int]]]:
    """Every statement any engine sends: (engine, SQL, thread id).

    The engine is None for the sync manager, whose hot path hands listeners the DBAPI
    connection rather than a SQLAlchemy one.
    """
    seen: list[tuple[sa.Engine | None, str, int]] = []

    def record(conn: Any, cursor: Any, sql: str, *args: Any) -> None:
        seen.append((getattr(conn, "engine", None), sql, threading.get_ident()))

    sa.event.listen(sa.Engine, "before_cursor_execute", record)
    yield seen
    sa.event.remove(sa.Engine, "before_cursor_execute", record)


async def _seed(User: Any) -> list[Any]:
    return [
        await User.objects.acreate(name=name, email=f"{name.lower()}@x.io", age=age)
        for name, age in (("Ada", 36), ("Bob", 25), ("Cy", 41), ("Di", 25))
    ]


# --- writes -------------------------------------------------------------------------


async def test_acreate_returns_the_model_with_its_generated_key(User: Any) -> None:
    ada = await User.objects.acreate(name="Ada", email="ada@x.io")

    assert isinstance(ada, User)
    assert ada.id is not None
    assert await User.objects.aget(ada.id) == ada
    assert User.objects.get(ada.id) == ada  # visible to the sync API


async def test_astrict_create_raises_duplicate_key_error_on_an_existing_key(Tag: Any) -> None:
    await Tag.objects.astrict_create(slug="py", label="Python")

    with pytest.raises(DuplicateKeyError) as info:
        await Tag.objects.astrict_create(slug="py", label="Other")

    assert info.value.field == "slug"
    assert not isinstance(info.value.__cause__, sa.exc.SQLAlchemyError)  # the driver's error
    assert (await Tag.objects.arequire("py")).label == "Python"


async def test_acreate_raises_unique_constraint_error_on_a_unique_collision(User: Any) -> None:
    await User.objects.acreate(name="Ada", email="ada@x.io")

    with pytest.raises(UniqueConstraintError) as info:
        await User.objects.acreate(name="Other", email="ada@x.io")

    assert info.value.field == "email"
    assert await User.objects.acount() == 1


async def test_acreate_rejects_a_database_managed_key(User: Any) -> None:
    with pytest.raises(InvalidPrimaryKeyAssignmentError):
        await User.objects.acreate(id=5, name="Ada", email="ada@x.io")


async def test_acreate_validates_before_any_sql(
    User: Any, statements: list[tuple[sa.Engine | None, str, int]]
) -> None:
    with pytest.raises(ValidationError):
        await User.objects.acreate(name="Ada", email="ada@x.io", age="old")

    assert statements == []


async def test_acreate_rejects_unknown_fields(User: Any) -> None:
    with pytest.raises(InvalidQueryError, match="no field 'nope'"):
        await User.objects.acreate(name="Ada", email="ada@x.io", nope=1)


async def test_aupsert_inserts_then_updates_by_key(Tag: Any) -> None:
    first = await Tag.objects.aupsert(slug="py", label="Python")
    second = await Tag.objects.aupsert(slug="py", label="Python 3")

    assert first.slug == second.slug == "py"
    assert await Tag.objects.aall() == [Tag(slug="py", label="Python 3")]


async def test_aupsert_updates_by_unique_field_and_accepts_an_instance(User: Any) -> None:
    ada = await User.objects.acreate(name="Ada", email="ada@x.io")

    updated = await User.objects.aupsert(name="Ada L.", email="ada@x.io")
    again = await User.objects.aupsert(updated, age=37)

    assert updated.id == again.id == ada.id
    assert (await User.objects.arequire(ada.id)).age == 37
    assert await User.objects.acount() == 1


async def test_aupsert_rejects_an_instance_of_another_model(User: Any, Tag: Any) -> None:
    with pytest.raises(InvalidQueryError, match="upsert"):
        await User.objects.aupsert(Tag(slug="py", label="Python"))


async def test_aupsert_by_key_never_overwrites_the_row_owning_a_unique_value(
    async_url: str,
) -> None:
    @database_registry(async_url, table_name="items", unique_fields=["code"])
    class Item(BaseModel):
        id: int
        code: str
        name: str = ""

    await Item.objects.abulk_create([Item(id=1, code="a"), Item(id=2, code="b")])

    with pytest.raises(UniqueConstraintError):
        await Item.objects.aupsert(id=2, code="a", name="taken")
    with pytest.raises(UniqueConstraintError):
        await Item.objects.abulk_upsert([Item(id=2, code="a", name="taken")])
    await Item.objects.aupsert(id=2, code="c", name="moved")

    assert await Item.objects.aall() == [Item(id=1, code="a"), Item(id=2, code="c", name="moved")]
    assert Item.objects.all() == await Item.objects.aall()


async def test_concurrent_aupserts_of_one_key_never_raise(Tag: Any) -> None:
    await asyncio.gather(*(Tag.objects.aupsert(slug="hot", label=f"v{i}") for i in range(20)))

    assert await Tag.objects.acount() == 1


async def test_aupdate_where_returns_the_updated_rows(User: Any) -> None:
    ada, bob, _, di = await _seed(User)

    updated = await User.objects.aupdate_where({"age": 25}, age=F("age") + 1)

    assert [u.id for u in updated] == [bob.id, di.id]
    assert [u.age for u in updated] == [26, 26]
    assert (await User.objects.aget(ada.id)).age == 36


@pytest.mark.parametrize(
    ("criteria", "updates", "error"),
    [
        ({}, {"age": 1}, InvalidQueryError),
        ({"age": 25}, {}, InvalidQueryError),
        ({"age": 25}, {"id": 9}, ImmutableFieldError),
        ({"nope": 1}, {"age": 1}, InvalidQueryError),
    ],
)
async def test_aupdate_where_rejects_bad_arguments(
    User: Any, criteria: dict[str, Any], updates: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        await User.objects.aupdate_where(criteria, **updates)


async def test_aupdate_where_validates_values(User: Any) -> None:
    await _seed(User)

    with pytest.raises(ValidationError):
        await User.objects.aupdate_where({"age": 25}, age="old")


async def test_adelete_and_adelete_where(User: Any) -> None:
    ada, *_ = await _seed(User)

    assert await User.objects.adelete(ada.id) is True
    assert await User.objects.adelete(ada.id) is False
    assert await User.objects.adelete_where(age=25) == 2
    assert [u.name for u in await User.objects.aall()] == ["Cy"]


async def test_adelete_where_without_criteria_is_refused(User: Any) -> None:
    with pytest.raises(InvalidQueryError, match="criteria"):
        await User.objects.adelete_where()


async def test_adelete_rejects_an_invalid_key(User: Any) -> None:
    with pytest.raises(InvalidQueryError):
        await User.objects.adelete("not-an-int")


async def test_abulk_create_takes_models_and_dicts(User: Any) -> None:
    created = await User.objects.abulk_create(
        [User(name="Ada", email="ada@x.io"), {"name": "Bob", "email": "bob@x.io"}]
    )

    assert [u.name for u in created] == ["Ada", "Bob"]
    assert await User.objects.aall() == created
    assert await User.objects.abulk_create([]) == []


async def test_abulk_create_is_all_or_nothing(User: Any) -> None:
    await User.objects.acreate(name="Ada", email="ada@x.io")

    with pytest.raises(UniqueConstraintError):
        await User.objects.abulk_create(
            [{"name": "Bob", "email": "bob@x.io"}, {"name": "Dup", "email": "ada@x.io"}]
        )

    assert await User.objects.acount() == 1


async def test_abulk_create_validates_every_item_before_any_sql(
    User: Any, statements: list[tuple[sa.Engine | None, str, int]]
) -> None:
    with pytest.raises(ValidationError):
        await User.objects.abulk_create(
            [{"name": "Ada", "email": "ada@x.io"}, {"name": "Bob", "email": "b", "age": "x"}]
        )

    assert statements == []


async def test_abulk_create_rejects_managed_keys(User: Any) -> None:
    with pytest.raises(InvalidPrimaryKeyAssignmentError):
        await User.objects.abulk_create([{"id": 3, "name": "Ada", "email": "ada@x.io"}])


async def test_abulk_upsert_inserts_and_updates(User: Any, Tag: Any) -> None:
    ada = await User.objects.acreate(name="Ada", email="ada@x.io")

    rows = await User.objects.abulk_upsert(
        [{"name": "Ada L.", "email": "ada@x.io"}, {"name": "Bob", "email": "bob@x.io"}]
    )
    tags = await Tag.objects.abulk_upsert([Tag(slug="a", label="A"), Tag(slug="a", label="B")])

    assert rows[0].id == ada.id
    assert rows[1].id is not None and rows[1].id != ada.id
    assert [u.name for u in await User.objects.aall()] == ["Ada L.", "Bob"]
    assert [t.slug for t in tags] == ["a", "a"]
    assert await Tag.objects.aall() == [Tag(slug="a", label="B")]


# --- reads --------------------------------------------------------------------------


async def test_aget_by_key_or_criteria(User: Any) -> None:
    ada, bob, *_ = await _seed(User)

    assert await User.objects.aget(ada.id) == ada
    assert await User.objects.aget(str(ada.id)) == ada  # coerced like get()
    assert await User.objects.aget(name="Bob") == bob
    assert await User.objects.aget(age=25) == bob  # first by key
    assert await User.objects.aget(10_000) is None
    assert await User.objects.aget(name="Nobody") is None


@pytest.mark.parametrize(
    ("args", "criteria"),
    [((1,), {"name": "Ada"}), ((1, 2), {}), ((), {}), ((), {"nope": 1}), (({"a": 1},), {})],
)
async def test_aget_rejects_malformed_calls(
    User: Any, args: tuple[Any, ...], criteria: dict[str, Any]
) -> None:
    with pytest.raises(InvalidQueryError):
        await User.objects.aget(*args, **criteria)


async def test_arequire_raises_record_not_found_naming_model_and_criteria(User: Any) -> None:
    ada, *_ = await _seed(User)

    assert await User.objects.arequire(ada.id) == ada
    with pytest.raises(RecordNotFoundError, match=r"no User with name='Zed'"):
        await User.objects.arequire(name="Zed")
    with pytest.raises(RecordNotFoundError, match="password=<hidden>"):
        await User.objects.arequire(password="secret")


async def test_afilter_with_lookups_order_limit_and_offset(User: Any) -> None:
    await _seed(User)

    older = await User.objects.afilter(age__gte=30, order_by="-age")
    page = await User.objects.afilter(order_by=["age", "name"], limit=2, offset=1)

    assert [u.name for u in older] == ["Cy", "Ada"]
    assert [u.name for u in page] == ["Di", "Ada"]
    assert [u.name for u in await User.objects.afilter(name__in=["Bob", "Cy"])] == ["Bob", "Cy"]


@pytest.mark.parametrize(
    "criteria",
    [{"nope": 1}, {"age__near": 3}, {"age": "old"}],
)
async def test_afilter_rejects_bad_criteria(User: Any, criteria: dict[str, Any]) -> None:
    with pytest.raises(InvalidQueryError):
        await User.objects.afilter(**criteria)


async def test_afilter_rejects_a_negative_limit(User: Any) -> None:
    with pytest.raises(InvalidQueryError, match="limit"):
        await User.objects.afilter(limit=-1)


async def test_aall_afirst_alast_aexists_acount(User: Any) -> None:
    ada, bob, cy, di = await _seed(User)

    assert await User.objects.aall() == [ada, bob, cy, di]
    assert await User.objects.aget_all() == [ada, bob, cy, di]
    assert await User.objects.afirst() == ada
    assert await User.objects.afirst(age=25) == bob
    assert await User.objects.alast() == di
    assert await User.objects.alast(order_by="age") == cy
    assert await User.objects.afirst(name="Zed") is None
    assert await User.objects.aexists(name="Cy") is True
    assert await User.objects.aexists(name="Zed") is False
    assert await User.objects.acount() == 4
    assert await User.objects.acount(age=25) == 2


async def test_aiterate_streams_every_row_in_batches(User: Any) -> None:
    await User.objects.abulk_create(
        [{"name": f"u{i:03}", "email": f"{i}@x.io", "age": i % 3} for i in range(25)]
    )

    by_key = [u.name async for u in User.objects.aiterate(batch_size=4)]
    ordered = [u.name async for u in User.objects.aiterate(batch_size=4, order_by="-name")]
    some = [u.name async for u in User.objects.aiterate(batch_size=3, age=0)]

    assert by_key == [f"u{i:03}" for i in range(25)]
    assert ordered == by_key[::-1]
    assert some == [f"u{i:03}" for i in range(0, 25, 3)]


@pytest.mark.parametrize("batch_size", [0, -1, True, "10"])
async def test_aiterate_rejects_a_bad_batch_size(User: Any, batch_size: Any) -> None:
    with pytest.raises(InvalidQueryError, match="batch_size"):
        async for _ in User.objects.aiterate(batch_size=batch_size):
            pass


# --- instances ----------------------------------------------------------------------


async def test_asave_inserts_then_updates_and_reflects_the_key(User: Any) -> None:
    user = User(name="Ada", email="ada@x.io")

    assert await user.asave() is user
    assert user.id is not None
    user.age = 37
    await user.asave()

    assert await User.objects.aall() == [user]


async def test_asave_refuses_a_changed_persisted_key(User: Any) -> None:
    user = await User.objects.acreate(name="Ada", email="ada@x.io")
    user.id += 100

    with pytest.raises(ImmutableFieldError):
        await user.asave()


async def test_adelete_and_arefresh_on_instances(User: Any) -> None:
    user = await User.objects.acreate(name="Ada", email="ada@x.io")
    await User.objects.aupdate_where({"id": user.id}, age=50)

    fresh = await user.arefresh()
    assert fresh.age == 50 and user.age == 0  # a fresh copy; the instance is untouched
    assert await user.adelete() is True
    assert await user.adelete() is False
    with pytest.raises(RecordNotFoundError, match="deleted"):
        await user.arefresh()
    with pytest.raises(RecordNotFoundError, match="never saved"):
        await User(name="New", email="new@x.io").arefresh()
    assert await User(name="New", email="new@x.io").adelete() is False


async def test_passwords_are_hashed_once(User: Any) -> None:
    user = await User.objects.acreate(name="Ada", email="ada@x.io", password="s3cret")
    stored = user.password

    user.age = 1
    await user.asave()

    assert is_password_hash(stored)
    assert (await user.arefresh()).password == stored  # not hashed again
    assert user.verify_password("s3cret")
    [updated] = await User.objects.aupdate_where({"id": user.id}, password="n3w")
    assert updated.verify_password("n3w")


async def _max_tick_gap(work: Any) -> tuple[Any, float]:
    """Await ``work`` while a task ticks every 10 ms; return its result and the longest gap."""
    loop = asyncio.get_running_loop()
    ticks: list[float] = []

    async def tick() -> None:
        while True:
            ticks.append(loop.time())
            await asyncio.sleep(0.01)

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0)
    try:
        result = await work
    finally:
        ticker.cancel()
    ticks.append(loop.time())
    return result, max(b - a for a, b in itertools.pairwise(ticks))


async def test_password_hashing_does_not_block_the_event_loop(User: Any) -> None:
    # The real default cost (600,000 PBKDF2 rounds, ~0.3 s): run on the loop it would
    # stall every other task for that long. The database's first async call imports the
    # async machinery once (milliseconds, but longer on a loaded machine): done first,
    # so the gaps measured are the hash's alone.
    await User.objects.acount()
    start = asyncio.get_running_loop().time()
    ada, gap = await _max_tick_gap(
        User.objects.acreate(name="Ada", email="ada@x.io", password="s3cret"))
    took = asyncio.get_running_loop().time() - start

    assert is_password_hash(ada.password) and ada.verify_password("s3cret")
    assert took > 0.1  # the hash really was computed at full cost...
    # ...while the loop kept ticking: hashed on the loop, one tick would last the whole
    # hash (a bound relative to it holds on a loaded machine too, where both stretch)
    assert gap < max(0.1, took / 2)

    start = asyncio.get_running_loop().time()
    [updated], gap = await _max_tick_gap(
        User.objects.aupdate_where({"id": ada.id}, password="n3w"))
    took = asyncio.get_running_loop().time() - start
    assert updated.verify_password("n3w") and gap < max(0.1, took / 2)


async def test_many_concurrent_single_statements_on_one_database(User: Any) -> None:
    made = await asyncio.gather(*(
        User.objects.acreate(name=f"u{i}", email=f"u{i}@x.io", age=i) for i in range(40)))

    assert len({u.id for u in made}) == 40
    found = await asyncio.gather(*(User.objects.aget(u.id) for u in made),
                                 *(User.objects.acount(age__gte=0) for _ in range(5)))
    assert found[:40] == made and found[40:] == [40] * 5
    await asyncio.gather(*(User.objects.aupdate_where({"id": u.id}, age=F("age") + 1)
                           for u in made), *(u.adelete() for u in made[:10]))
    assert sorted(u.age for u in User.objects.all()) == list(range(11, 41))  # sync sees it


async def test_a_cancelled_statement_leaves_the_database_usable(User: Any) -> None:
    await _seed(User)
    tasks = [asyncio.create_task(User.objects.acreate(name=f"c{i}", email=f"c{i}@x.io"))
             for i in range(10)]
    tasks += [asyncio.create_task(User.objects.aall()) for _ in range(10)]
    await asyncio.sleep(0)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)

    User.objects.create(name="Sync", email="sync@x.io")  # no write lock left behind
    assert await User.objects.acount() == User.objects.count()


@pytest.mark.parametrize("yields", [0, 1, 2, 3])
async def test_a_cancelled_write_is_final_once_its_task_has_ended(
        User: Any, yields: int) -> None:
    await _seed(User)
    for trial in range(5):
        # cancelled before, while and after their statements were sent (aiosqlite runs
        # queued statements of cancelled tasks anyway; a MySQL server finishes a statement
        # whose connection closed; psycopg cancels it in the server)
        tasks = [asyncio.create_task(User.objects.acreate(
            name="c", email=f"t{trial}-{i}@x.io")) for i in range(6)]
        tasks += [asyncio.create_task(User.objects.aupsert(
            name="u", email=f"u{trial}-{i}@x.io")) for i in range(3)]
        tasks += [asyncio.create_task(User.objects.aupdate_where(
            {"name": "Ada"}, age=F("age") + 1))]
        for _ in range(yields):
            await asyncio.sleep(0)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

        ended = User.objects.count(), User.objects.get(name="Ada").age
        await asyncio.sleep(0.05)  # anything still running in a driver thread lands here
        assert (User.objects.count(), User.objects.get(name="Ada").age) == ended
        assert await User.objects.acount() == ended[0]


async def test_a_cancelled_write_waiting_on_a_lock_never_lands_after_its_task_ended(
        User: Any) -> None:
    await _seed(User)
    holding, release = threading.Event(), threading.Event()

    class RollBack(Exception):
        pass

    def hold_the_email() -> None:  # SQLite: the write lock; the servers: the unique key
        with contextlib.suppress(RollBack), User.objects.transaction():
            User.objects.create(name="Held", email="held@x.io")
            holding.set()
            release.wait(10)
            raise RollBack

    holder = threading.Thread(target=hold_the_email)
    holder.start()
    try:
        assert await asyncio.to_thread(holding.wait, 10)
        task = asyncio.create_task(User.objects.acreate(name="New", email="held@x.io"))
        await asyncio.sleep(0.2)  # sent, and waiting for the holder's transaction
        task.cancel()
        # SQLite can only let its statement finish: the lock goes while the task settles
        asyncio.get_running_loop().call_later(0.5, release.set)
        await asyncio.gather(task, return_exceptions=True)
        ended = User.objects.count()  # the lock may still be held: a plain read
    finally:
        release.set()
        await asyncio.to_thread(holder.join, 10)
    # Once the holder rolled back, a server session still running the insert (its
    # connection closed, nobody told the server) would store the row now.
    await asyncio.sleep(0.2)

    assert User.objects.count() == ended == await User.objects.acount()
    assert ended in (4, 5)


# --- transactions -------------------------------------------------------------------


async def test_atransaction_commits_across_two_models(models: tuple[Any, Any]) -> None:
    User, Profile = models

    async with User.objects.atransaction() as conn:
        ada = await User.objects.acreate(name="Ada", email="ada@x.io")
        await Profile.objects.acreate(user_id=ada.id, bio="math")
        result = await conn.execute(sa.text("SELECT COUNT(*) FROM profiles"))
        assert result.scalar() == 1  # the block's connection sees its own writes

    assert await User.objects.acount() == 1
    assert Profile.objects.count() == 1


async def test_atransaction_rolls_back_both_models_on_error(models: tuple[Any, Any]) -> None:
    User, Profile = models

    with pytest.raises(Boom):
        async with Profile.objects.atransaction():
            ada = await User.objects.acreate(name="Ada", email="ada@x.io")
            await Profile.objects.acreate(user_id=ada.id)
            raise Boom

    assert await User.objects.acount() == 0
    assert await Profile.objects.acount() == 0


async def test_a_registry_error_inside_atransaction_rolls_back(User: Any) -> None:
    with pytest.raises(UniqueConstraintError):
        async with User.objects.atransaction():
            await User.objects.acreate(name="Ada", email="ada@x.io")
            await User.objects.acreate(name="Dup", email="ada@x.io")

    assert await User.objects.acount() == 0


async def test_a_failed_write_inside_atransaction_leaves_the_block_usable(User: Any) -> None:
    async with User.objects.atransaction():
        await User.objects.acreate(name="Ada", email="ada@x.io")
        with pytest.raises(UniqueConstraintError):
            await User.objects.acreate(name="Dup", email="ada@x.io")
        with pytest.raises(UniqueConstraintError):
            await User.objects.abulk_create([{"name": "Bob", "email": "bob@x.io"},
                                             {"name": "Dup", "email": "ada@x.io"}])
        await User.objects.acreate(name="Cy", email="cy@x.io")

    assert [u.name for u in await User.objects.aall()] == ["Ada", "Cy"]


async def test_nested_atransaction_is_a_savepoint(User: Any) -> None:
    async with User.objects.atransaction():
        await User.objects.acreate(name="Kept", email="kept@x.io")
        with pytest.raises(Boom):
            async with User.objects.atransaction():
                await User.objects.acreate(name="Dropped", email="dropped@x.io")
                raise Boom
        async with User.objects.atransaction():
            await User.objects.acreate(name="Inner", email="inner@x.io")

    assert [u.name for u in await User.objects.aall()] == ["Kept", "Inner"]


async def test_tasks_spawned_inside_atransaction_share_it(User: Any) -> None:
    with pytest.raises(Boom):
        async with User.objects.atransaction():
            await asyncio.gather(
                *(User.objects.acreate(name=f"u{i}", email=f"{i}@x.io") for i in range(10))
            )
            assert await User.objects.acount() == 10
            raise Boom

    assert await User.objects.acount() == 0


async def test_async_operations_refuse_to_run_inside_a_sync_transaction(User: Any) -> None:
    with User.objects.transaction(), pytest.raises(InvalidQueryError, match="atransaction"):
        await User.objects.acount()


async def test_concurrent_acreates_lose_no_rows(User: Any) -> None:
    created = await asyncio.gather(
        *(User.objects.acreate(name=f"u{i}", email=f"{i}@x.io") for i in range(100))
    )

    assert len({u.id for u in created}) == 100
    assert await User.objects.acount() == 100
    assert sorted(u.id for u in User.objects.all()) == sorted(u.id for u in created)


async def test_a_transient_error_is_retried(User: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    await User.objects.acreate(name="Ada", email="ada@x.io")
    calls: list[BaseException] = []

    def transient_once(family: str, exc: BaseException) -> bool:
        calls.append(exc)
        return len(calls) == 1

    monkeypatch.setattr(async_ops, "is_transient", transient_once)
    with count_statements_on(User.objects.database.key) as sync_log, pytest.raises(
        UniqueConstraintError
    ):
        await User.objects.acreate(name="Dup", email="ada@x.io")

    assert len(calls) == 2  # failed, retried, failed again (not transient this time)
    assert sync_log == []


# --- async all the way down ---------------------------------------------------------


async def test_async_calls_use_the_async_engine_on_the_event_loop_thread(
    User: Any, statements: list[tuple[sa.Engine | None, str, int]]
) -> None:
    # The first async use of a process imports the async layer, and creates pending tables,
    # in a worker thread (tests of their own): warm up first.
    await User.objects.acount()
    statements.clear()
    loop = asyncio.get_running_loop()
    executor_calls: list[Any] = []
    original = loop.run_in_executor

    def spy(*args: Any) -> Any:
        executor_calls.append(args)
        return original(*args)

    loop.run_in_executor = spy  # type: ignore[method-assign]
    try:
        ada = await User.objects.acreate(name="Ada", email="ada@x.io")
        await User.objects.aget(ada.id)
        await User.objects.aupdate_where({"id": ada.id}, age=2)
        async with User.objects.atransaction():
            await User.objects.abulk_create([{"name": "Bob", "email": "bob@x.io"}])
        await ada.adelete()
    finally:
        loop.run_in_executor = original  # type: ignore[method-assign]

    sync_engine = get_engine(User.objects.database.key)
    assert statements, "the async engine reports its statements"
    assert all(engine is not None and engine is not sync_engine for engine, _, _ in statements)
    assert {thread for _, _, thread in statements} == {threading.get_ident()}
    assert executor_calls == []
    with count_statements_on(User.objects.database.key) as sync_log:
        User.objects.count()
    assert sync_log  # control: the sync API does show up on the sync engine


async def test_results_match_the_sync_api(async_url: str) -> None:
    @database_registry(async_url, table_name="things")
    class Thing(BaseModel):
        id: int | None = None
        when: datetime
        day: date
        price: Decimal = db_field(max_digits=10, decimal_places=2)
        uid: uuid.UUID
        blob: bytes
        color: Color
        meta: dict[str, Any]
        tags: list[str]
        ratio: float
        flag: bool
        note: str | None = None

    values = {
        "when": datetime(2024, 5, 1, 12, 30, 15, 123000, tzinfo=timezone(timedelta(hours=2))),
        "day": date(2024, 5, 1),
        "price": Decimal("12.50"),
        "uid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "blob": b"\x00\xffbytes",
        "color": Color.GREEN,
        "meta": {"a": [1, 2], "b": None},
        "tags": ["x", "y"],
        "ratio": 0.25,
        "flag": True,
    }
    made_async = await Thing.objects.acreate(**values)
    made_sync = Thing.objects.create(**values)

    assert made_async.model_dump(exclude={"id"}) == made_sync.model_dump(exclude={"id"})
    assert await Thing.objects.aall() == Thing.objects.all()
    assert await Thing.objects.afilter(color=Color.GREEN, flag=True) == Thing.objects.filter(
        color=Color.GREEN, flag=True
    )
    assert await Thing.objects.aget(made_sync.id) == Thing.objects.get(made_sync.id)
    assert (await Thing.objects.aget(made_async.id)).when == values["when"]


async def test_aupdate_where_with_decimal_arithmetic_is_exact(async_url: str) -> None:
    @database_registry(async_url, table_name="accounts")
    class Account(BaseModel):
        id: int | None = None
        balance: Decimal = db_field(max_digits=12, decimal_places=2)

    account = await Account.objects.acreate(balance=Decimal("0.10"))

    [updated] = await Account.objects.aupdate_where(
        {"id": account.id}, balance=F("balance") + Decimal("0.20")
    )

    assert updated.balance == Decimal("0.30")
    assert await Account.objects.afilter(balance__gt=Decimal("0.25")) == [updated]


async def test_adispose_closes_connections_and_they_reopen(User: Any) -> None:
    await User.objects.acreate(name="Ada", email="ada@x.io")

    await User.objects.adispose()
    await aio.adispose_all()

    assert await User.objects.acount() == 1


async def test_adispose_of_a_database_never_used_asynchronously_is_a_no_op(
        async_url: str) -> None:
    @database_registry(async_url, table_name="never_async")
    class Never(BaseModel):
        id: int | None = None
        name: str

    Never.objects.create(name="sync only")

    await Never.objects.adispose()

    assert Never.objects.database.async_side is None
    assert await Never.objects.acount() == 1  # the async side is made on first use
    assert Never.objects.database.async_side is not None


async def test_one_relative_sqlite_url_in_two_directories_is_two_async_databases(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Each directory's model is used while that directory is the working one: a relative
    # SQLite path is opened relative to the working directory of the moment.
    def declare() -> Any:
        @database_registry("relative.db", table_name="items")
        class Item(BaseModel):
            id: int | None = None
            name: str

        return Item

    models = {}
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        monkeypatch.chdir(tmp_path / name)
        models[name] = declare()
    before = set(threading.enumerate())
    try:
        for round_ in range(3):
            for name, model in models.items():
                monkeypatch.chdir(tmp_path / name)
                await model.objects.acreate(name=f"{name}{round_}")
                assert [i.name for i in await model.objects.aall()] == [
                    f"{name}{r}" for r in range(round_ + 1)]
        sides = [m.objects.database.async_side for m in models.values()]
        assert sides[0] is not None and sides[1] is not None and sides[0] is not sides[1]
        # aiosqlite's connection threads (not the loop's executor, which made the tables)
        started = {t for t in set(threading.enumerate()) - before
                   if not t.name.startswith("asyncio")}
        assert len(started) >= 2
        await aio.adispose_all()  # both databases' connections, not only the last one's
        for thread in started:
            thread.join(timeout=5)
        assert not any(thread.is_alive() for thread in started)
        monkeypatch.chdir(tmp_path / "a")
        assert await models["a"].objects.acount() == 3  # reopened on demand
    finally:
        await aio.adispose_all()
        for model in models.values():
            model.objects.dispose()


async def test_the_first_async_use_creates_pending_tables_off_the_event_loop(
        async_url: str) -> None:
    @database_registry(async_url, table_name="firsts")
    class First(BaseModel):
        id: int | None = None
        name: str

    loop = asyncio.get_running_loop()
    loop_thread = threading.get_ident()
    created_on: list[int] = []
    original = First.objects.create_schema

    def spy() -> None:
        created_on.append(threading.get_ident())
        original()

    First.objects.database.pending_tables["firsts"] = spy
    results = await asyncio.gather(First.objects.acreate(name="a"), First.objects.acount(),
                                   First.objects.aget(name="a"))
    assert results[0].name == "a"
    assert created_on and loop_thread not in created_on
    assert "firsts" not in First.objects.database.pending_tables
    assert await First.objects.acount() == 1
    assert loop.is_running()


async def test_adispose_stops_the_sqlite_fast_path_threads(sqlite_url: str) -> None:
    @database_registry(sqlite_url, table_name="users")
    class User(BaseModel):
        id: int | None = None
        name: str

    User.objects.database.create_pending()  # first use would run it in an executor thread
    before = set(threading.enumerate())
    await User.objects.aget((await User.objects.acreate(name="Ada")).id)
    started = set(threading.enumerate()) - before

    await User.objects.adispose()

    assert started, "aiosqlite runs each connection on a thread of its own"
    for thread in started:
        thread.join(timeout=5)
    assert not any(thread.is_alive() for thread in started)
    assert await User.objects.acount() == 1  # reopened on demand
    await User.objects.adispose()


def test_each_event_loop_gets_its_own_engine(sqlite_url: str) -> None:
    @database_registry(sqlite_url, table_name="users")
    class User(BaseModel):
        id: int | None = None
        name: str

    async def count() -> int:
        result: int = await User.objects.acount()
        return result

    User.objects.create(name="Ada")

    assert asyncio.run(count()) == 1
    assert asyncio.run(count()) == 1  # a new loop: connections of the old one are not reused
    asyncio.run(User.objects.adispose())


def test_in_memory_sqlite_is_refused_for_async_use() -> None:
    @database_registry("sqlite:///:memory:", table_name="mem_async")
    class Mem(BaseModel):
        id: int | None = None
        name: str

    with pytest.raises(ConfigurationError, match="in-memory SQLite"):
        asyncio.run(Mem.objects.acount())


async def test_every_async_error_is_a_registry_error(User: Any) -> None:
    User.objects.drop_schema()

    with pytest.raises(RegistryError, match="does not exist"):
        await User.objects.acount()
    with pytest.raises(RegistryError):
        await User.objects.acreate(name="Ada", email="ada@x.io")


async def test_sqlite_connections_get_the_pragmas_and_write_with_begin_immediate(
    sqlite_url: str, statements: list[tuple[sa.Engine | None, str, int]]
) -> None:
    @database_registry(sqlite_url, table_name="notes")
    class Note(BaseModel):
        id: int | None = None
        text: str

    try:
        await Note.objects.abulk_create([{"text": "a"}, {"text": "b"}])
        async with Note.objects.atransaction() as conn:
            pragmas = [
                (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar()
                for name in ("journal_mode", "foreign_keys", "busy_timeout")
            ]
    finally:
        await Note.objects.adispose()

    assert pragmas == ["wal", 1, 30_000]
    assert [sql for _, sql, _ in statements].count("BEGIN IMMEDIATE") == 2
