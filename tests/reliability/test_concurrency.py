"""Concurrency: many writers on one database lose nothing and never see a lock error.

* 8 processes x 500 single-row creates (separate interpreters, started together);
* 8 threads upserting the same keys (by primary key and by a unique field) converge;
* 8 threads incrementing one counter with ``F("hits") + 1`` lose no update.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from registers.db import F, database_registry

from ._support import Worker, raw_rows

PROCESSES = 8
CREATES_PER_PROCESS = 500
THREADS = 8


def run_threads(count: int, target: Callable[[int], None]) -> list[BaseException]:
    """Run ``target(i)`` in ``count`` threads released together; return their errors."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def body(i: int) -> None:
        barrier.wait()
        try:
            target(i)
        except BaseException as exc:  # collected and asserted on by the caller
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    return errors


@pytest.mark.slow
def test_eight_processes_creating_rows_lose_none_and_never_fail(
    database_url: str, tmp_path: Path, figures: Callable[[str, object], None]
) -> None:
    @database_registry(database_url, table_name="entries")
    class Entry(BaseModel):
        id: int | None = None
        worker: int
        seq: int
        payload: str

    go = tmp_path / "go"
    workers = [
        Worker("create", database_url, w, CREATES_PER_PROCESS, go) for w in range(PROCESSES)
    ]
    for worker in workers:
        worker.wait_for("ready", timeout=120)
    started = time.perf_counter()
    go.touch()
    reports = [json.loads(w.wait_for("{", timeout=240)) for w in workers]
    elapsed = time.perf_counter() - started
    for worker in workers:
        assert worker.proc.wait(timeout=60) == 0, worker.stderr()

    errors = [e for r in reports for e in r["errors"]]
    rows = raw_rows(database_url, "SELECT id, worker, seq FROM entries")
    expected = {(w, s) for w in range(PROCESSES) for s in range(CREATES_PER_PROCESS)}
    written = {(w, s) for _, w, s in rows}
    total = PROCESSES * CREATES_PER_PROCESS
    figures("processes", PROCESSES)
    figures("creates", total)
    figures("errors", len(errors))
    figures("rows lost", len(expected - written))
    figures("seconds", round(elapsed, 2))
    figures("creates/s", round(total / elapsed))
    assert errors == []
    assert len(rows) == total
    assert written == expected
    assert len({r[0] for r in rows}) == total  # no key handed out twice
    assert Entry.objects.count() == total


def test_concurrent_upserts_of_shared_keys_converge(
    database_url: str, figures: Callable[[str, object], None]
) -> None:
    @database_registry(database_url, table_name="settings")
    class Setting(BaseModel):
        id: int
        value: str
        writer: int

    keys = range(1, 21)
    rounds = 10

    def upsert_all(writer: int) -> None:
        for r in range(rounds):
            for k in keys:
                Setting.objects.upsert(id=k, value=f"w{writer}-r{r}-k{k}", writer=writer)
        for k in keys:  # the last round of every writer agrees: the result is determined
            Setting.objects.upsert(id=k, value=f"final-{k}", writer=-1)

    errors = run_threads(THREADS, upsert_all)
    rows = Setting.objects.all()
    figures("threads", THREADS)
    figures("upserts", THREADS * (rounds + 1) * len(keys))
    figures("errors", len(errors))
    assert errors == []
    assert [(s.id, s.value, s.writer) for s in rows] == [(k, f"final-{k}", -1) for k in keys]


def test_concurrent_upserts_by_unique_field_create_one_row_per_value(
    database_url: str, figures: Callable[[str, object], None]
) -> None:
    @database_registry(database_url, table_name="accounts", unique_fields=["email"])
    class Account(BaseModel):
        id: int | None = None
        email: str
        visits: int

    emails = [f"user{i}@example.com" for i in range(10)]
    seen: dict[str, set[int]] = {e: set() for e in emails}
    lock = threading.Lock()

    def upsert_all(writer: int) -> None:
        for r in range(10):
            for email in emails:
                account = Account.objects.upsert(email=email, visits=r)
                with lock:
                    seen[email].add(account.id)

    errors = run_threads(THREADS, upsert_all)
    rows = Account.objects.all()
    figures("upserts", THREADS * 10 * len(emails))
    figures("errors", len(errors))
    assert errors == []
    assert sorted(a.email for a in rows) == sorted(emails)
    by_email = {a.email: a.id for a in rows}
    # Every upsert of one email reported the one row that exists for it.
    assert {e: ids for e, ids in seen.items()} == {e: {by_email[e]} for e in emails}
    assert all(a.visits == 9 for a in rows)


def test_f_increments_from_eight_threads_lose_no_update(
    database_url: str, figures: Callable[[str, object], None]
) -> None:
    @database_registry(database_url, table_name="counters")
    class Counter(BaseModel):
        id: int
        hits: int

    Counter.objects.create(id=1, hits=0)
    Counter.objects.create(id=2, hits=0)
    per_thread = 100
    returned: list[int] = []
    lock = threading.Lock()

    def bump(_: int) -> None:
        for _ in range(per_thread):
            (row,) = Counter.objects.update_where({"id": 1}, hits=F("hits") + 1)
            with lock:
                returned.append(row.hits)

    errors = run_threads(THREADS, bump)
    total = THREADS * per_thread
    final = Counter.objects.require(1).hits
    figures("threads", THREADS)
    figures("increments", total)
    figures("errors", len(errors))
    figures("updates lost", total - final)
    assert errors == []
    assert final == total
    # Each update read back its own result: every value from 1 to total, once.
    assert sorted(returned) == list(range(1, total + 1))
    assert Counter.objects.require(2).hits == 0


def test_f_expressions_refuse_unknown_fields_and_non_numbers(database_url: str) -> None:
    from registers.db import InvalidQueryError

    @database_registry(database_url, table_name="counters")
    class Counter(BaseModel):
        id: int
        hits: int

    Counter.objects.create(id=1, hits=5)
    bad: list[Any] = [F("nope") + 1, F("hits") + "1; DROP TABLE counters"]
    for expression in bad:
        with pytest.raises(InvalidQueryError):
            Counter.objects.update_where({"id": 1}, hits=expression)
    assert Counter.objects.require(1).hits == 5
