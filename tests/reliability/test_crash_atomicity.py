"""Crash atomicity: a writer killed with SIGKILL keeps every commit and no partial work.

The writer is a separate interpreter (``_worker.py``) killed with SIGKILL while it is
inside a ``transaction()`` block or half-way through a ``bulk_create`` (frozen there by a
SQLite progress handler, or by a statement hook between the batches on a server). On
SQLite its page cache is shrunk so uncommitted pages are already in the WAL when it dies.
Afterwards the database must open cleanly, pass ``PRAGMA integrity_check``, hold every
committed row, none of the uncommitted ones, and accept new writes.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from registers.db import database_registry, dispose_engine

from ._support import Worker, raw_rows, sqlite_path

COMMITTED = 200


def declare(url: str) -> Any:
    @database_registry(url, table_name="crash_rows")
    class CrashRow(BaseModel):
        id: int | None = None
        batch: str
        n: int
        payload: str

    return CrashRow


def batches(url: str) -> Counter[str]:
    return Counter(b for (b,) in raw_rows(url, "SELECT batch FROM crash_rows"))


def assert_opens_cleanly(url: str) -> None:
    """The file recovers: integrity_check passes and a fresh writer can commit."""
    if url.startswith("sqlite"):
        conn = sqlite3.connect(sqlite_path(url))
        try:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        finally:
            conn.close()
    dispose_engine(url)
    model = declare(url)
    row = model.objects.create(batch="after", n=0, payload="after the crash")
    assert model.objects.require(row.id).payload == "after the crash"


def wal_bytes(url: str) -> int:
    wal = Path(sqlite_path(url) + "-wal")
    return wal.stat().st_size if url.startswith("sqlite") and wal.exists() else 0


@pytest.mark.parametrize("mode", ["tx-kill", "bulk-kill"])
def test_sigkill_inside_a_write_keeps_commits_and_drops_the_open_transaction(
    database_url: str, mode: str, figures: Callable[[str, object], None]
) -> None:
    declare(database_url)  # the table exists before the writer starts
    size = 200 if mode == "tx-kill" else 40_000
    worker = Worker(mode, database_url, COMMITTED, size)
    worker.wait_for("committed", timeout=120)
    worker.wait_for("inside", timeout=120)
    wal_at_kill = wal_bytes(database_url)
    worker.kill()

    assert "escaped" not in worker.seen + worker.drain()
    found = batches(database_url)
    figures("faults injected", 1)
    figures("committed rows lost", COMMITTED - found["committed"])
    figures("uncommitted rows visible", found["uncommitted"])
    if wal_at_kill:
        figures("WAL bytes at kill", wal_at_kill)
    assert found == Counter({"committed": COMMITTED})
    assert sorted(n for (n,) in raw_rows(
        database_url, "SELECT n FROM crash_rows WHERE batch = 'committed'"
    )) == list(range(COMMITTED))
    assert_opens_cleanly(database_url)


@pytest.mark.slow
def test_repeated_sigkills_at_random_moments_leave_only_whole_transactions(
    sqlite_url: str, figures: Callable[[str, object], None]
) -> None:
    declare(sqlite_url)
    rng = random.Random(20240611)
    per_tx, kills = 50, 12
    for round_no in range(kills):
        worker = Worker("tx-loop", sqlite_url, per_tx)
        worker.wait_for("start", timeout=120)
        # Let it commit a few transactions, then kill it at an arbitrary instant.
        worker.wait_for("committed", timeout=60)
        time.sleep(rng.uniform(0.0, 0.15))
        worker.kill()
        lines = worker.seen + worker.drain()
        reported = {f"tx{line.split()[1]}" for line in lines if line.startswith("committed")}
        found = Counter({b: c for b, c in batches(sqlite_url).items() if b.startswith("tx")})
        assert all(count == per_tx for count in found.values()), found
        missing = reported - set(found)
        assert missing == set(), f"committed transactions lost: {sorted(missing)}"
        conn = sqlite3.connect(sqlite_path(sqlite_url))
        try:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        finally:
            conn.close()
        # The next writer numbers from tx0 again: move this round's batches aside.
        dispose_engine(sqlite_url)
        conn = sqlite3.connect(sqlite_path(sqlite_url))
        with conn:
            conn.execute(
                "UPDATE crash_rows SET batch = 'done-' || batch || '-' || ? "
                "WHERE batch NOT LIKE 'done-%'",
                (str(round_no),),
            )
        conn.close()

    final = batches(sqlite_url)
    figures("faults injected", kills)
    figures("transactions committed", len(final))
    figures("partial transactions", sum(1 for c in final.values() if c != per_tx))
    assert all(c == per_tx for c in final.values())
    assert_opens_cleanly(sqlite_url)
