"""Generated and explicit keys never collide, on every backend, whatever moved the key
counter (PostgreSQL's sequence, MariaDB's AUTO_INCREMENT, SQLite's sqlite_sequence).

registers writes explicit keys with ``upsert(id=...)`` (whole and partial) and hands out
the others itself. On PostgreSQL an explicit key does not move the sequence, so registers
moves it when an explicit key overtakes it; whether it did is read from the sequence in
the same statement, never remembered between calls, so a counter reset outside registers
(``TRUNCATE ... RESTART IDENTITY``, a fixture emptying tables between tests) cannot make a
later ``create()`` collide with a key written explicitly after the reset. And since the
explicit key is stored one statement before the sequence moves past it, a ``create()``
in between may draw it: on PostgreSQL a generated key that is already stored is retried
with the next one.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from registers.db import database_registry

from ._helpers import RawSQL


def _model(url: str) -> Any:
    @database_registry(url, table_name="counted", unique_fields=["code"])
    class Item(BaseModel):
        id: int | None = None
        code: str | None = None
        name: str

    return Item


def _empty_and_reset(raw: RawSQL, backend: str) -> None:
    """Empty the table and set its key counter back to the start, outside registers."""
    if backend == "postgresql":
        raw.execute("TRUNCATE counted RESTART IDENTITY")
    elif backend == "mysql":
        raw.execute("TRUNCATE TABLE counted")  # resets AUTO_INCREMENT
    else:
        raw.execute("DELETE FROM counted")
        raw.execute("DELETE FROM sqlite_sequence WHERE name = 'counted'")


KEYS = st.integers(min_value=1, max_value=12)
STEP = st.one_of(
    st.tuples(st.just("create")),
    st.tuples(st.just("upsert"), KEYS),          # every field given: one statement
    st.tuples(st.just("partial upsert"), KEYS),  # code left alone: RETURNING the row
    st.tuples(st.just("bulk upsert"), st.lists(KEYS, min_size=1, max_size=3, unique=True)),
    st.tuples(st.just("delete"), KEYS),
    st.tuples(st.just("reset"),),
)


def _run(Item: Any, raw: RawSQL, backend: str, steps: list[tuple[Any, ...]]) -> None:
    _empty_and_reset(raw, backend)
    stored: dict[int, str] = {}
    for number, step in enumerate(steps):
        name = f"n{number}"
        if step[0] == "create":
            key = Item.objects.create(name=name).id
            assert key not in stored, f"create() handed out the stored key {key}"
            stored[key] = name
        elif step[0] == "upsert":
            assert Item.objects.upsert(id=step[1], name=name, code=None).id == step[1]
            stored[step[1]] = name
        elif step[0] == "partial upsert":
            assert Item.objects.upsert(id=step[1], name=name).name == name
            stored[step[1]] = name
        elif step[0] == "bulk upsert":
            Item.objects.bulk_upsert([Item(id=k, name=name) for k in step[1]])
            stored.update(dict.fromkeys(step[1], name))
        elif step[0] == "delete":
            Item.objects.delete(step[1])
            stored.pop(step[1], None)
        else:
            _empty_and_reset(raw, backend)
            stored.clear()
    assert {i.id: i.name for i in Item.objects.all()} == stored


@settings(max_examples=25, deadline=None, print_blob=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=st.lists(STEP, max_size=14))
def test_explicit_and_generated_keys_never_collide(database_url: str, backend: str,
                                                   raw: RawSQL, steps: Any) -> None:
    Item = _model(database_url)
    Item.objects.count()  # creates the table
    _run(Item, raw, backend, steps)


@pytest.mark.parametrize("partial", [False, True])
def test_a_key_written_after_an_outside_reset_is_not_handed_out_again(
        database_url: str, backend: str, raw: RawSQL, partial: bool) -> None:
    """The case found: the sequence reset by a fixture, then an explicit key below the
    keys seen before; ``create()`` used to reach it and fail with a duplicate key."""
    Item = _model(database_url)
    Item.objects.upsert(id=10, name="before", **({} if partial else {"code": None}))
    _empty_and_reset(raw, backend)
    Item.objects.upsert(id=3, name="explicit", **({} if partial else {"code": None}))
    keys = [Item.objects.create(name=f"c{i}").id for i in range(4)]
    assert 3 not in keys and len(set(keys)) == 4
    assert Item.objects.count() == 5


async def test_the_async_upsert_moves_the_counter_after_an_outside_reset(
        database_url: str, backend: str, raw: RawSQL) -> None:
    Item = _model(database_url)
    await Item.objects.aupsert(id=10, name="before", code=None)
    _empty_and_reset(raw, backend)
    await Item.objects.aupsert(id=2, name="explicit")
    keys = [(await Item.objects.acreate(name=f"c{i}")).id for i in range(3)]
    assert 2 not in keys and len(set(keys)) == 3


def _postgresql_only(backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("only PostgreSQL's counter can fall behind the stored keys (MariaDB "
                    "and SQLite move theirs past an explicit key as they store it)")


def _set_sequence(raw: RawSQL, value: int, called: bool = True) -> None:
    """Move the table's key sequence by hand (``called``: ``value`` was handed out)."""
    raw.execute(f"SELECT setval(pg_get_serial_sequence('counted', 'id'), {value}, "
                f"{'true' if called else 'false'})")


def _one_behind(Item: Any, raw: RawSQL) -> None:
    """Keys 1-3 stored, the sequence set back to 1: it hands out 2 and 3 again."""
    for name in "abc":
        Item.objects.create(name=name)
    _set_sequence(raw, 1)


def test_a_generated_key_already_stored_is_retried_with_the_next(
        database_url: str, backend: str, raw: RawSQL) -> None:
    """The state of the race below, made by hand: the sequence one step behind."""
    _postgresql_only(backend)
    Item = _model(database_url)
    _one_behind(Item, raw)
    assert Item.objects.create(name="d").id == 4  # 2 and 3 were taken: retried
    assert [i.id for i in Item.objects.bulk_create([Item(name="e"), Item(name="f")])] == [5, 6]


async def test_an_async_create_retries_a_stored_generated_key_too(
        database_url: str, backend: str, raw: RawSQL) -> None:
    _postgresql_only(backend)
    Item = _model(database_url)
    for name in "abc":
        await Item.objects.acreate(name=name)
    _set_sequence(raw, 1)
    assert (await Item.objects.acreate(name="d")).id == 4
    assert [i.id for i in await Item.objects.abulk_create([Item(name="e")])] == [5]


def test_a_counter_far_behind_fails_saying_so_and_stores_nothing(
        database_url: str, backend: str, raw: RawSQL) -> None:
    _postgresql_only(backend)
    from registers.db import DuplicateKeyError

    Item = _model(database_url)
    Item.objects.bulk_create([Item(name=f"n{i}") for i in range(40)])
    _set_sequence(raw, 1, called=False)
    with pytest.raises(DuplicateKeyError, match=r"^the id the database generated for a new "
                       r"Item belongs to a stored row in table 'counted' \(Item\): the table's "
                       r"key counter is behind its keys") as caught:
        Item.objects.create(name="late")
    assert (caught.value.field, caught.value.value) == ("id", None)
    assert Item.objects.count() == 40 and not Item.objects.exists(name="late")


def test_creates_racing_explicit_keys_just_above_the_sequence_never_fail(
        database_url: str, backend: str, raw: RawSQL) -> None:
    """One thread upserts the keys the sequence will hand out next; another creates.
    The explicit key is stored one statement before the sequence moves past it."""
    import threading

    _postgresql_only(backend)
    Item = _model(database_url)
    Item.objects.create(name="first")
    errors: list[BaseException] = []
    explicit: list[int] = []

    def upserting() -> None:
        try:
            for _ in range(60):
                ahead = int(raw.scalar(
                    "SELECT pg_sequence_last_value("
                    "pg_get_serial_sequence('counted', 'id')::regclass)")) + 1
                Item.objects.upsert(id=ahead, name="explicit")
                explicit.append(ahead)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def creating() -> list[int]:
        return [Item.objects.create(name="generated").id for _ in range(150)]

    thread = threading.Thread(target=upserting)
    thread.start()
    try:
        created = creating()
    finally:
        thread.join()
    assert not errors, errors
    assert len(set(created)) == len(created)  # no create() raised, none drew a key twice
    # an explicit key a create() had already drawn updated that row, as an upsert does
    assert Item.objects.count() == 1 + len(set(created) | set(explicit))
    assert Item.objects.create(name="after").id > max(created + explicit)


def test_get_or_create_and_update_or_create_retry_a_stored_generated_key(
        database_url: str, backend: str, raw: RawSQL) -> None:
    _postgresql_only(backend)
    Item = _model(database_url)
    _one_behind(Item, raw)
    made, created = Item.objects.get_or_create(name="d")
    assert created and made.id == 4
    _set_sequence(raw, 2)
    made, created = Item.objects.update_or_create(name="e", defaults={"code": "E"})
    assert created and made.id == 5 and made.code == "E"
