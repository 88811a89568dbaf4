"""Concurrent writers on every backend (SPEC D11): no error, no lost row, consistent values."""

from __future__ import annotations

import multiprocessing
import threading

import pytest
from pydantic import BaseModel

from registers.db import database_registry

THREADS = 8
UPSERTS_PER_THREAD = 200
SHARED_KEYS = 20
PROCESSES = 4
CREATES_PER_PROCESS = 500


def _counter_model(url: str) -> type[BaseModel]:
    @database_registry(url, table_name="slots")
    class Slot(BaseModel):
        id: int
        owner: str
        round: int

    return Slot


def _event_model(url: str) -> type[BaseModel]:
    @database_registry(url, table_name="events")
    class Event(BaseModel):
        id: int | None = None
        worker: int
        seq: int

    return Event


def test_threads_upserting_the_same_keys_never_fail_and_converge(database_url: str) -> None:
    Slot = _counter_model(database_url)
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def worker(n: int) -> None:
        start.wait()
        try:
            for i in range(UPSERTS_PER_THREAD):
                Slot.objects.upsert(id=i % SHARED_KEYS, owner=f"t{n}", round=i)
        except BaseException as exc:  # collected, asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    rows = Slot.objects.all()
    assert [row.id for row in rows] == list(range(SHARED_KEYS))
    for row in rows:
        # Every row holds one complete write: a round that maps to its key.
        assert row.round % SHARED_KEYS == row.id
        assert row.owner in {f"t{n}" for n in range(THREADS)}


def _create_events(url: str, worker: int, count: int) -> int:
    Event = _event_model(url)
    for seq in range(count):
        Event.objects.create(worker=worker, seq=seq)
    return count


def test_processes_creating_rows_lose_none(database_url: str) -> None:
    Event = _event_model(database_url)
    context = multiprocessing.get_context("spawn")
    with context.Pool(PROCESSES) as pool:
        done = pool.starmap(
            _create_events,
            [(database_url, worker, CREATES_PER_PROCESS) for worker in range(PROCESSES)],
        )
    assert done == [CREATES_PER_PROCESS] * PROCESSES
    assert Event.objects.count() == PROCESSES * CREATES_PER_PROCESS
    for worker in range(PROCESSES):
        seqs = sorted(e.seq for e in Event.objects.filter(worker=worker))
        assert seqs == list(range(CREATES_PER_PROCESS))
    keys = [e.id for e in Event.objects.all()]
    assert len(set(keys)) == len(keys)


@pytest.mark.parametrize("threads", [THREADS])
def test_threads_in_their_own_transactions_all_commit(database_url: str, threads: int) -> None:
    Event = _event_model(database_url)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for seq in range(20):
                with Event.objects.transaction():
                    Event.objects.create(worker=n, seq=seq)
                    Event.objects.create(worker=n, seq=seq + 1000)
        except BaseException as exc:
            errors.append(exc)

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    assert errors == []
    assert Event.objects.count() == threads * 40
