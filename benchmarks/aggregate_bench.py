"""Issue 16 aggregates and grouping against the hand-written sqlite3 floor (file SQLite, WAL).

Run from the repository root::

    python benchmarks/aggregate_bench.py            # ~1 minute
    python benchmarks/aggregate_bench.py --quick    # smoke run, a few seconds

Workloads (the same work for every contender, the results checked equal first):

* aggregate         ``User.objects.where(active=True, score__gte=t).aggregate(n=Count("id"),
                    total=Sum("score"), mean=Avg("score"))`` for several thresholds, against
                    ``SELECT COUNT(id), SUM(score), AVG(score) ... WHERE ...`` by hand; peer:
                    the same numbers from validated models (``filter()`` and Python ``sum``),
                    what a user without aggregates would write
* grouped annotate  ``values("role").annotate(n=Count("id"), mean=Avg("score"))
                    .order_by("-n")`` against ``GROUP BY role ORDER BY 2 DESC, role``
* Decimal sum       ``aggregate(total=Sum("balance"))`` (exact on SQLite's Decimal text)
                    against the exact hand-written way (fetch the text, ``sum`` of
                    ``Decimal``); peer: SQLite's own ``SUM`` (a float: inexact)
* to-many count     ``Author.objects.values("name").annotate(posts=Count("posts"))`` (the
                    link is indexed: a correlated count per author) against the usual
                    hand-written ``LEFT JOIN ... GROUP BY``; then the same for a page of
                    20 authors (``where(id__in=...)``)

Prints statements/s and the ratio to the floor (higher is better; 1.0 is the floor): the
median of per-round ratios, the rounds of all contenders interleaved so a busy machine
slows them alike. A benchmark, not a test: nothing here asserts on timings.
"""

from __future__ import annotations

import argparse
import gc
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal

from pydantic import BaseModel

from registers.db import Avg, Count, HasMany, Sum, database_registry


def measure(work: Callable[[], int]) -> float:
    """Units/second of one run of ``work`` (which returns its unit count)."""
    gc.collect()
    start = time.perf_counter()
    units = work()
    return units / (time.perf_counter() - start)


def race(floor: Callable[[], int], contenders: list[tuple[str, Callable[[], int]]],
         rounds: int) -> list[tuple[str, float, float]]:
    """Rounds of the floor then each contender, interleaved: (name, best rate, median of
    the per-round ratios to the floor)."""
    rates: dict[str, list[float]] = {"floor": []}
    ratios: dict[str, list[float]] = {name: [] for name, _ in contenders}
    for _ in range(rounds):
        base = measure(floor)
        rates["floor"].append(base)
        for name, work in contenders:
            rate = measure(work)
            rates.setdefault(name, []).append(rate)
            ratios[name].append(rate / base)
    found = [("floor (sqlite3 by hand)", max(rates["floor"]), 1.0)]
    found += [(name, max(rates[name]), statistics.median(ratios[name])) for name, _ in contenders]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one round")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    users, authors, per_author = (2000, 100, 5) if args.quick else (20000, 1000, 10)
    rounds = 1 if args.quick else args.rounds

    folder = tempfile.mkdtemp(prefix="registers-aggregate-bench-")
    path = os.path.join(folder, "bench.db")
    url = f"sqlite:///{path}"

    @database_registry(url, table_name="users")
    class User(BaseModel):
        id: int | None = None
        role: str | None = None
        score: int
        active: bool = True
        balance: Decimal = Decimal("0")

    @database_registry(url, table_name="authors")
    class Author(BaseModel):
        id: int | None = None
        name: str

    @database_registry(url, table_name="posts", indexes=["author_id"])
    class Post(BaseModel):
        id: int | None = None
        author_id: int
        likes: int = 0

    Author.posts = HasMany(Post, foreign_key="author_id")  # type: ignore[attr-defined]
    roles = ["admin", "member", "guest", None, "owner", "bot"]
    User.objects.bulk_create([
        {"role": roles[i % len(roles)], "score": (i * 37) % 1000, "active": i % 3 != 0,
         "balance": Decimal(f"{i % 1000}.{i % 97:02d}")}
        for i in range(users)
    ])
    Author.objects.bulk_create([{"name": f"author {i}"} for i in range(authors)])
    Post.objects.bulk_create([{"author_id": a + 1, "likes": j}
                              for a in range(0, authors, 2) for j in range(per_author)])

    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("PRAGMA synchronous=NORMAL")
    thresholds = [0, 250, 500, 750, 900]

    def floor_aggregate() -> int:
        for t in thresholds:
            n, total, mean = raw.execute(
                "SELECT COUNT(id), SUM(score), AVG(score) FROM users "
                "WHERE active = ? AND score >= ?", (1, t)).fetchone()
            result = {"n": n, "total": total, "mean": mean}
        return len(thresholds) + 0 * len(result)

    def registers_aggregate() -> int:
        where = User.objects.where
        for t in thresholds:
            where(active=True, score__gte=t).aggregate(
                n=Count("id"), total=Sum("score"), mean=Avg("score"))
        return len(thresholds)

    def models_aggregate() -> int:
        for t in thresholds:
            found = User.objects.filter(active=True, score__gte=t)
            total = sum(u.score for u in found)
            result = {"n": len(found), "total": total,
                      "mean": total / len(found) if found else None}
        return len(thresholds) + 0 * len(result)

    def floor_grouped() -> int:
        for _ in range(5):
            rows = raw.execute(
                "SELECT role, COUNT(id), AVG(score) FROM users GROUP BY role "
                "ORDER BY 2 DESC, role").fetchall()
            [{"role": r[0], "n": r[1], "mean": r[2]} for r in rows]
        return 5

    def registers_grouped() -> int:
        for _ in range(5):
            User.objects.values("role").annotate(n=Count("id"), mean=Avg("score")).order_by(
                "-n").all()
        return 5

    def floor_decimal() -> int:
        for t in thresholds:
            rows = raw.execute("SELECT balance FROM users WHERE score >= ?", (t,)).fetchall()
            sum((Decimal(r[0]) for r in rows), Decimal(0))
        return len(thresholds)

    def sqlite_sum_decimal() -> int:
        for t in thresholds:
            raw.execute("SELECT SUM(balance) FROM users WHERE score >= ?", (t,)).fetchone()
        return len(thresholds)

    def registers_decimal() -> int:
        for t in thresholds:
            User.objects.where(score__gte=t).aggregate(total=Sum("balance"))
        return len(thresholds)

    def floor_to_many() -> int:
        for _ in range(5):
            rows = raw.execute(
                "SELECT authors.name, COUNT(posts.id) FROM authors LEFT JOIN posts ON "
                "posts.author_id = authors.id GROUP BY authors.name "
                "ORDER BY authors.name").fetchall()
            [{"name": r[0], "posts": r[1]} for r in rows]
        return 5

    def registers_to_many() -> int:
        for _ in range(5):
            Author.objects.values("name").annotate(posts=Count("posts")).all()
        return 5

    pages = [list(range(start, start + 20)) for start in range(1, authors, authors // 10)]

    def floor_page() -> int:
        for ids in pages:
            rows = raw.execute(
                "SELECT authors.name, COUNT(posts.id) FROM authors LEFT JOIN posts ON "
                f"posts.author_id = authors.id WHERE authors.id IN ({', '.join('?' * len(ids))}) "
                "GROUP BY authors.name ORDER BY authors.name", ids).fetchall()
            [{"name": r[0], "posts": r[1]} for r in rows]
        return len(pages)

    def registers_page() -> int:
        for ids in pages:
            Author.objects.where(id__in=ids).values("name").annotate(posts=Count("posts")).all()
        return len(pages)

    # every contender computes the same numbers
    for t in thresholds:
        got = User.objects.where(active=True, score__gte=t).aggregate(
            n=Count("id"), total=Sum("score"), mean=Avg("score"))
        n, total, mean = raw.execute("SELECT COUNT(id), SUM(score), AVG(score) FROM users "
                                     "WHERE active = 1 AND score >= ?", (t,)).fetchone()
        assert (got["n"], got["total"]) == (n, total) and abs(got["mean"] - mean) < 1e-9
        exact = sum((Decimal(r[0]) for r in raw.execute(
            "SELECT balance FROM users WHERE score >= ?", (t,))), Decimal(0))
        assert User.objects.where(score__gte=t).aggregate(total=Sum("balance"))["total"] == exact
    grouped = User.objects.values("role").annotate(n=Count("id")).order_by("-n").all()
    assert [(g["role"], g["n"]) for g in grouped] == raw.execute(
        "SELECT role, COUNT(id) FROM users GROUP BY role ORDER BY 2 DESC, role IS NOT NULL, "
        "role").fetchall()
    assert [tuple(g.values()) for g in Author.objects.values("name").annotate(
        posts=Count("posts")).all()] == raw.execute(
        "SELECT authors.name, COUNT(posts.id) FROM authors LEFT JOIN posts ON posts.author_id "
        "= authors.id GROUP BY authors.name ORDER BY authors.name").fetchall()

    workloads: list[tuple[str, Callable[[], int], list[tuple[str, Callable[[], int]]]]] = [
        ("aggregate", floor_aggregate, [("where().aggregate()", registers_aggregate),
                                        ("filter() + Python sum", models_aggregate)]),
        ("grouped annotate", floor_grouped, [("values().annotate()", registers_grouped)]),
        ("Decimal sum", floor_decimal, [("aggregate(Sum(decimal))", registers_decimal),
                                        ("sqlite3 SUM (float, inexact)", sqlite_sum_decimal)]),
        ("to-many count", floor_to_many, [("annotate(Count(relation))", registers_to_many)]),
        ("... 20 of them", floor_page, [("where(id__in=).annotate()", registers_page)]),
    ]
    results: list[tuple[str, str, float, float]] = []
    for workload, floor, contenders in workloads:
        for name, rate, ratio in race(floor, contenders, rounds):
            results.append((workload, name, rate, ratio))

    print(f"users: {users}, authors: {authors}, posts: {authors // 2 * per_author}, "
          f"rounds: {rounds}")
    print(f"{'workload':<17} {'contender':<30} {'best stmt/s':>12} {'x floor':>8}  (median ratio)")
    for workload, name, rate, ratio in results:
        print(f"{workload:<17} {name:<30} {rate:>12,.0f} {ratio:>8.2f}")
    raw.close()
    User.objects.dispose()


if __name__ == "__main__":
    main()
