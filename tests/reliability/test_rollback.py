"""Rollback: whatever fails inside ``transaction()`` or a bulk write leaves no partial write.

Each case snapshots both tables (read with plain SQL), fails somewhere, and compares.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from registers.db import (
    DuplicateKeyError,
    F,
    RegistryError,
    UniqueConstraintError,
    database_registry,
)

from ._support import raw_rows


class Boom(Exception):
    """The failure injected inside a transaction block."""


def declare(url: str) -> tuple[Any, Any]:
    @database_registry(url, table_name="accounts", unique_fields=["owner"])
    class Account(BaseModel):
        id: int
        owner: str
        balance: int

    @database_registry(url, table_name="ledger")
    class Ledger(BaseModel):
        id: int | None = None
        account: int
        amount: int

    Account.objects.bulk_create(
        [{"id": i, "owner": f"owner{i}", "balance": 100 * i} for i in range(1, 6)]
    )
    Ledger.objects.bulk_create([{"account": 1, "amount": a} for a in (5, 10, 15)])
    return Account, Ledger


def snapshot(url: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    return (
        raw_rows(url, "SELECT id, owner, balance FROM accounts ORDER BY id"),
        raw_rows(url, "SELECT id, account, amount FROM ledger ORDER BY id"),
    )


def _create(a: Any, g: Any) -> None:
    a.objects.create(id=10, owner="new", balance=1)


def _bulk_create(a: Any, g: Any) -> None:
    g.objects.bulk_create([{"account": 2, "amount": n} for n in range(2500)])


def _update_where(a: Any, g: Any) -> None:
    a.objects.update_where({"balance__gte": 0}, balance=0)


def _f_increment(a: Any, g: Any) -> None:
    a.objects.update_where({"id": 1}, balance=F("balance") + 1000)


def _delete_where(a: Any, g: Any) -> None:
    assert g.objects.delete_where(account=1) == 3


def _delete_by_key(a: Any, g: Any) -> None:
    assert a.objects.delete(3)


def _upsert(a: Any, g: Any) -> None:
    a.objects.upsert(id=1, owner="owner1", balance=-1)
    a.objects.upsert(id=11, owner="eleven", balance=11)


def _upsert_by_unique(a: Any, g: Any) -> None:
    a.objects.upsert(id=2, owner="owner2", balance=2222)


def _bulk_upsert(a: Any, g: Any) -> None:
    a.objects.bulk_upsert([{"id": i, "owner": f"owner{i}", "balance": 0} for i in range(1, 9)])


def _instance_methods(a: Any, g: Any) -> None:
    account = a.objects.require(4)
    account.balance = 999
    account.save()
    a.objects.require(5).delete()


def _both_models(a: Any, g: Any) -> None:
    _create(a, g)
    _bulk_create(a, g)
    _update_where(a, g)
    _delete_where(a, g)


def _nested_savepoint_released(a: Any, g: Any) -> None:
    with a.objects.transaction():  # released: its work belongs to the outer block now
        _create(a, g)
        _delete_by_key(a, g)


def _failed_write_after_writes(a: Any, g: Any) -> None:
    _bulk_create(a, g)
    a.objects.create(id=1, owner="dup", balance=0)  # DuplicateKeyError propagates


WORK = {
    "create": _create,
    "bulk_create": _bulk_create,
    "update_where": _update_where,
    "f_increment": _f_increment,
    "delete_where": _delete_where,
    "delete": _delete_by_key,
    "upsert": _upsert,
    "upsert_by_unique": _upsert_by_unique,
    "bulk_upsert": _bulk_upsert,
    "save_and_delete": _instance_methods,
    "both_models": _both_models,
    "nested_savepoint": _nested_savepoint_released,
    "failing_write": _failed_write_after_writes,
}
FAILURES: dict[str, type[BaseException]] = {
    "exception": Boom,
    "keyboard_interrupt": KeyboardInterrupt,
}


@pytest.mark.parametrize("failure", FAILURES)
@pytest.mark.parametrize("work", WORK)
def test_an_exception_inside_transaction_rolls_back_every_write(
    database_url: str, work: str, failure: str
) -> None:
    account, ledger = declare(database_url)
    before = snapshot(database_url)
    error = FAILURES[failure]
    expected: type[BaseException] = DuplicateKeyError if work == "failing_write" else error
    with pytest.raises(expected), account.objects.transaction():
        WORK[work](account, ledger)
        raise error("injected")
    assert snapshot(database_url) == before
    # The connection is usable afterwards, outside and inside a new block.
    with ledger.objects.transaction():
        ledger.objects.create(account=5, amount=1)
    assert ledger.objects.count() == len(before[1]) + 1


def test_a_failed_nested_block_rolls_back_only_itself(database_url: str) -> None:
    account, ledger = declare(database_url)
    with account.objects.transaction():
        ledger.objects.create(account=2, amount=20)
        with pytest.raises(Boom), account.objects.transaction():
            _both_models(account, ledger)
            raise Boom
        account.objects.update_where({"id": 2}, balance=F("balance") + 1)
    accounts, entries = snapshot(database_url)
    assert accounts[1] == (2, "owner2", 201)
    assert [e[1:] for e in entries] == [(1, 5), (1, 10), (1, 15), (2, 20)]
    assert len(accounts) == 5


def test_a_failed_outer_block_discards_released_savepoints(database_url: str) -> None:
    account, ledger = declare(database_url)
    before = snapshot(database_url)
    with pytest.raises(Boom), account.objects.transaction():
        with account.objects.transaction(), ledger.objects.transaction():
            _bulk_create(account, ledger)
        raise Boom
    assert snapshot(database_url) == before


def test_a_validation_error_halfway_through_bulk_create_writes_nothing(
    database_url: str,
) -> None:
    account, ledger = declare(database_url)
    before = snapshot(database_url)
    items: list[Any] = [{"account": 3, "amount": n} for n in range(1000)]
    items[500] = {"account": 3, "amount": "not a number"}
    with pytest.raises(ValidationError):
        ledger.objects.bulk_create(items)
    items[500] = {"account": 3}
    with pytest.raises(ValidationError):
        ledger.objects.bulk_create(items)
    with pytest.raises(ValidationError):
        account.objects.bulk_upsert(
            [{"id": 1, "owner": "owner1", "balance": 0}, {"id": 2, "owner": "x", "balance": "?"}]
        )
    assert snapshot(database_url) == before


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_a_duplicate_key_halfway_through_bulk_create_writes_nothing(
    database_url: str, where: str
) -> None:
    account, _ = declare(database_url)
    before = snapshot(database_url)
    items = [{"id": 100 + n, "owner": f"bulk{n}", "balance": n} for n in range(3000)]
    position = {"first": 0, "middle": 1500, "last": 2999}[where]
    items[position] = {"id": 3, "owner": "again", "balance": 0}  # key 3 exists
    with pytest.raises(DuplicateKeyError):
        account.objects.bulk_create(items)
    assert snapshot(database_url) == before


def test_a_unique_violation_in_a_later_batch_of_bulk_create_writes_nothing(
    database_url: str,
) -> None:
    @database_registry(database_url, table_name="members", unique_fields=["email"])
    class Member(BaseModel):
        id: int | None = None
        email: str

    Member.objects.create(email="taken@example.com")
    items = [{"email": f"m{n}@example.com"} for n in range(4000)]
    items[3500] = {"email": "taken@example.com"}  # several batches in on a server
    with pytest.raises(UniqueConstraintError):
        Member.objects.bulk_create(items)
    assert Member.objects.count() == 1
    items[3500] = {"email": "m3500@example.com"}
    assert len(Member.objects.bulk_create(items)) == 4000


def test_a_bulk_create_failing_inside_a_transaction_leaves_none_of_its_rows(
    database_url: str,
) -> None:
    """A caught bulk failure inside a block: the bulk is all-or-nothing, the rest is kept.

    The block's earlier write must either be committed with the block or the block must
    fail loudly; it may never be dropped silently while the block appears to succeed.
    """
    account, ledger = declare(database_url)
    accounts_before, entries_before = snapshot(database_url)
    items = [{"id": 100 + n, "owner": f"bulk{n}", "balance": n} for n in range(100)]
    items[50] = {"id": 2, "owner": "again", "balance": 0}
    block_error: BaseException | None = None
    try:
        with account.objects.transaction():
            ledger.objects.create(account=4, amount=44)
            with pytest.raises(DuplicateKeyError):
                account.objects.bulk_create(items)
    except RegistryError as exc:
        block_error = exc
    accounts, entries = snapshot(database_url)
    assert accounts == accounts_before, "a failed bulk_create left part of its rows"
    if block_error is None:
        assert [e[1:] for e in entries] == [*[e[1:] for e in entries_before], (4, 44)], (
            "the block reported success but its earlier write was discarded"
        )
    else:
        assert entries == entries_before
