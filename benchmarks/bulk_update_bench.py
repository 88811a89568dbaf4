"""``bulk_update()`` against the hand-written sqlite3 floor, on file SQLite (WAL).

``python -m benchmarks.bulk_update_bench [--rows 10000] [--rounds 5]``

The floor: ``sqlite3`` by hand, one transaction, ``executemany("UPDATE users SET name = ?,
score = ? WHERE id = ?")`` over the models' attributes (the models are already
validated pydantic instances, as bulk_update's input is). registers:
``User.objects.bulk_update(users, ["name", "score"])`` (every value validated again, then
chunked ``UPDATE ... FROM (VALUES ...)``). Also shown: one ``save()`` per model, the loop
bulk_update replaces. A benchmark, not a test: nothing asserts on timings.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel


class UserRow(BaseModel):
    id: int | None = None
    name: str
    email: str
    score: int = 0


def floor(path: str, users: list[Any], round_: int) -> float:
    start = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany("UPDATE users SET name = ?, score = ? WHERE id = ?",
                     [(u.name, u.score + round_, u.id) for u in users])
    conn.execute("COMMIT")
    conn.close()
    return time.perf_counter() - start


def registers_run(User: Any, users: list[Any], round_: int) -> float:
    for user in users:
        user.score = round_
    start = time.perf_counter()
    assert User.objects.bulk_update(users, ["name", "score"]) == len(users)
    return time.perf_counter() - start


def saves(users: list[Any], count: int) -> float:
    start = time.perf_counter()
    for user in users[:count]:
        user.save()
    return (time.perf_counter() - start) * len(users) / count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    from registers.db import database_registry, dispose_all

    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "bulk_update.db")

        @database_registry(f"sqlite:///{path}", table_name="users", unique_fields=["email"])
        class User(UserRow):
            pass

        users = User.objects.bulk_create([{"name": f"u{i}", "email": f"u{i}@x.io"}
                                          for i in range(args.rows)])
        floors, ours, ratios = [], [], []
        for round_ in range(args.rounds):
            f = floor(path, users, round_)
            r = registers_run(User, users, round_)
            floors.append(f)
            ours.append(r)
            ratios.append(f / r)
        loop = saves(users, min(500, args.rows))
        dispose_all()
    print(f"bulk_update of {args.rows:,} rows x 2 fields, {args.rounds} rounds")
    print(f"  floor (executemany)  median {statistics.median(floors) * 1000:8.1f} ms")
    print(f"  registers            median {statistics.median(ours) * 1000:8.1f} ms")
    print(f"  save() per model     est.   {loop * 1000:8.1f} ms")
    print(f"  registers speed / floor speed: median {statistics.median(ratios):.2f}x "
          f"(spread {min(ratios):.2f}-{max(ratios):.2f}); vs a save() loop: "
          f"{loop / statistics.median(ours):.1f}x faster")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
