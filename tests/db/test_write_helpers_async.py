"""Issue 16, async: the twins of the write helpers and of upsert's new rules."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import BaseModel

from registers.db import (
    F,
    InvalidQueryError,
    aio,
    database_registry,
    is_password_hash,
)


@pytest.fixture
async def async_url(database_url: str) -> AsyncIterator[str]:
    yield database_url
    await aio.adispose_all()


@pytest.fixture
def User(async_url: str) -> Any:
    @database_registry(async_url, table_name="users", unique_fields=["email"])
    class User(BaseModel):
        id: int | None = None
        name: str
        email: str | None = None
        role: str = "member"
        score: int = 0
        password: str | None = None

    return User


@pytest.fixture
def Item(async_url: str) -> Any:
    @database_registry(async_url, table_name="items", key_field="sku")
    class Item(BaseModel):
        sku: str
        qty: int = 0

    return Item


async def test_aupsert_keeps_fields_not_given(User: Any) -> None:
    await User.objects.acreate(name="Ada", role="admin")
    updated = await User.objects.aupsert(id=1, name="x")
    assert (updated.name, updated.role) == ("x", "admin")
    assert (await User.objects.arequire(1)).role == "admin"


async def test_aupsert_on_conflict_increments(Item: Any) -> None:
    add = {"qty": F("qty") + 2}
    assert (await Item.objects.aupsert(sku="MUG", qty=2, on_conflict=add)).qty == 2
    assert (await Item.objects.aupsert(sku="MUG", qty=2, on_conflict=add)).qty == 4


async def test_aupsert_refuses_on_conflict_naming_the_key(Item: Any) -> None:
    with pytest.raises(InvalidQueryError, match="it is the key"):
        await Item.objects.aupsert(sku="A", on_conflict={"sku": "B"})
    assert await Item.objects.acount() == 0


async def test_concurrent_tasks_increment_without_losing_any(Item: Any) -> None:
    async def work() -> None:
        for _ in range(25):
            await Item.objects.aupsert(sku="HOT", qty=1, on_conflict={"qty": F("qty") + 1})

    await asyncio.gather(*(work() for _ in range(8)))
    assert (await Item.objects.arequire("HOT")).qty == 200


async def test_abulk_upsert_keeps_fields_not_given(User: Any) -> None:
    await User.objects.abulk_create([{"name": "a", "role": "admin"}])
    [done] = await User.objects.abulk_upsert([{"id": 1, "name": "b"}])
    assert (done.name, done.role) == ("b", "admin")


async def test_aget_or_create_and_aupdate_or_create(User: Any) -> None:
    made, created = await User.objects.aget_or_create(email="a@x.io", defaults={"name": "A"})
    assert created
    got, created = await User.objects.aget_or_create(email="a@x.io")
    assert not created and got == made
    updated, created = await User.objects.aupdate_or_create(
        email="a@x.io", defaults={"score": F("score") + 5})
    assert not created and updated.score == 5


async def test_concurrent_aget_or_create_creates_exactly_once(User: Any) -> None:
    for round_ in range(3):
        results = await asyncio.gather(*(
            User.objects.aget_or_create(email=f"{round_}@x.io", defaults={"name": f"{n}"})
            for n in range(8)))
        assert sorted(created for _, created in results) == [False] * 7 + [True]
    assert await User.objects.acount() == 3


async def test_concurrent_aupdate_or_create_creates_exactly_once(User: Any) -> None:
    results = await asyncio.gather(*(
        User.objects.aupdate_or_create(email="same@x.io", defaults={"name": f"{n}"})
        for n in range(8)))
    assert sorted(created for _, created in results) == [False] * 7 + [True]
    assert await User.objects.acount() == 1


async def test_aget_or_create_hashes_a_password_default(User: Any) -> None:
    made, _ = await User.objects.aget_or_create(email="p@x.io",
                                                defaults={"name": "P", "password": "pw"})
    assert is_password_hash(made.password) and made.verify_password("pw")


async def test_abulk_update(User: Any, async_url: str) -> None:
    users = await User.objects.abulk_create([{"name": f"u{i}"} for i in range(30)])
    for user in users:
        user.score = 7
    users[0].password = "secret"  # hashed off the loop (PBKDF2 is slow: one is enough)
    assert await User.objects.abulk_update(users, ["score", "password"]) == 30
    stored = await User.objects.aall()
    assert {u.score for u in stored} == {7}
    assert is_password_hash(stored[0].password) and stored[0].verify_password("secret")
    assert {u.password for u in stored[1:]} == {None}


async def test_abulk_update_refuses_unsaved_models(User: Any) -> None:
    with pytest.raises(InvalidQueryError, match="never saved"):
        await User.objects.abulk_update([User(name="x")], ["name"])


async def test_ain_bulk(User: Any) -> None:
    users = await User.objects.abulk_create([{"name": f"u{i}", "email": f"{i}@x"}
                                             for i in range(3)])
    assert await User.objects.ain_bulk([users[1].id]) == {users[1].id: users[1]}
    assert list(await User.objects.ain_bulk(["2@x"], field="email")) == ["2@x"]
    with pytest.raises(InvalidQueryError, match="not unique"):
        await User.objects.ain_bulk(["x"], field="role")


async def test_araw(User: Any) -> None:
    users = await User.objects.abulk_create([{"name": f"u{i}"} for i in range(3)])
    p = User.objects.dialect.placeholder
    found = await User.objects.araw(f"SELECT * FROM users WHERE id > {p} ORDER BY id DESC",
                                    [users[0].id])
    assert found == [users[2], users[1]]
    with pytest.raises(InvalidQueryError, match="no column"):
        await User.objects.araw("SELECT id FROM users")
