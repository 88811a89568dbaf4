"""Writer processes for the concurrency and crash tests (run as ``python _worker.py MODE``).

Each mode declares its model itself (a fresh interpreter, like a real second process),
reports progress as lines on stdout, and is either left to finish or killed by the parent.

Modes:
    create URL WORKER N GO_FILE   wait for GO_FILE, then N single-row creates; print JSON
    tx-kill URL COMMITTED HALF    COMMITTED committed rows, then HALF rows inside an open
                                  transaction(); print "inside" and hang (to be killed)
    bulk-kill URL COMMITTED BULK  COMMITTED committed rows, then a bulk_create of BULK rows
                                  that hangs half-written; prints "inside" (to be killed)
    tx-loop URL PER_TX            transactions of PER_TX rows forever; "committed T" after each
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from pydantic import BaseModel

from registers.db import database_registry

HANG_SECONDS = 120


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def entry_model(url: str) -> Any:
    @database_registry(url, table_name="entries")
    class Entry(BaseModel):
        id: int | None = None
        worker: int
        seq: int
        payload: str

    return Entry


def crash_model(url: str) -> Any:
    @database_registry(url, table_name="crash_rows")
    class CrashRow(BaseModel):
        id: int | None = None
        batch: str
        n: int
        payload: str

    return CrashRow


def run_create(url: str, worker: int, count: int, go_file: str) -> None:
    entry = entry_model(url)
    say("ready")
    while not os.path.exists(go_file):
        time.sleep(0.005)
    errors: list[str] = []
    started = time.perf_counter()
    for seq in range(count):
        try:
            entry.objects.create(worker=worker, seq=seq, payload=f"w{worker}-s{seq}-" + "x" * 64)
        except Exception as exc:  # counted, never fatal: the parent asserts there are none
            errors.append(f"{type(exc).__name__}: {exc}"[:300])
    say(json.dumps({"errors": errors, "seconds": time.perf_counter() - started}))


def _spill_to_wal(model: Any) -> None:
    """Make SQLite write uncommitted pages to the WAL early (a harsher crash)."""
    db = model.objects.database
    if not db.is_sqlite:
        return
    conn, owned = db.acquire()
    try:
        conn.execute("PRAGMA cache_size = 8")
    finally:
        db.release(conn, owned)


def _commit_rows(model: Any, count: int) -> None:
    for n in range(count):
        model.objects.create(batch="committed", n=n, payload=f"committed-{n}")
    say(f"committed {count}")


def run_tx_kill(url: str, committed: int, half: int) -> None:
    model = crash_model(url)
    _spill_to_wal(model)
    _commit_rows(model, committed)
    with model.objects.transaction():
        for n in range(half):
            model.objects.create(batch="uncommitted", n=n, payload="u" * 2000)
        say("inside")
        time.sleep(HANG_SECONDS)
        for n in range(half, 2 * half):
            model.objects.create(batch="uncommitted", n=n, payload="u" * 2000)
    say("escaped")


def _hang_mid_write(model: Any) -> None:
    """Freeze the next bulk write half-way: SQLite progress handler or a statement hook."""
    db = model.objects.database
    if db.is_sqlite:
        conn, owned = db.acquire()
        db.release(conn, owned)
        calls = [0]

        def progress() -> int:
            calls[0] += 1
            if calls[0] == 400:
                say(f"inside {calls[0]}")
                time.sleep(HANG_SECONDS)
            return 0

        conn.set_progress_handler(progress, 1000)
        return
    import sqlalchemy as sa

    inserts = [0]

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT"):
            inserts[0] += 1
            if inserts[0] == 3:  # two batches written inside the open transaction
                say("inside")
                time.sleep(HANG_SECONDS)

    sa.event.listen(db.engine, "before_cursor_execute", before)


def run_bulk_kill(url: str, committed: int, bulk: int) -> None:
    model = crash_model(url)
    _spill_to_wal(model)
    _commit_rows(model, committed)
    _hang_mid_write(model)
    model.objects.bulk_create(
        [{"batch": "uncommitted", "n": n, "payload": "b" * 200} for n in range(bulk)]
    )
    say("escaped")


def run_tx_loop(url: str, per_tx: int) -> None:
    model = crash_model(url)
    say("start")
    tx = 0
    while True:
        with model.objects.transaction():
            for n in range(per_tx):
                model.objects.create(batch=f"tx{tx}", n=n, payload=f"tx{tx}-{n}")
        say(f"committed {tx}")
        tx += 1


def main(argv: list[str]) -> None:
    mode, url, *rest = argv
    if mode == "create":
        run_create(url, int(rest[0]), int(rest[1]), rest[2])
    elif mode == "tx-kill":
        run_tx_kill(url, int(rest[0]), int(rest[1]))
    elif mode == "bulk-kill":
        run_bulk_kill(url, int(rest[0]), int(rest[1]))
    elif mode == "tx-loop":
        run_tx_loop(url, int(rest[0]))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
