"""Issue 15 queries against the hand-written sqlite3 floor, on file SQLite in WAL mode.

Run from the repository root::

    python benchmarks/query_bench.py            # ~30 seconds
    python benchmarks/query_bench.py --quick    # smoke run, a few seconds

Workloads (each one the same work for every contender; every row returned is a
validated pydantic model):

* first in a loop   N lookups of one row by a non-key column (``title = ?``, indexed),
                    ``ORDER BY id LIMIT 1``: the floor (sqlite3 + ``model_validate``),
                    ``Post.objects.first(title=...)`` (the manager shortcut) and
                    ``Post.objects.where(title=...).first()`` (a lazy ``Query`` built per
                    call: its SQL comes from the per-shape cache)
* relation filter   ``Post.objects.filter(author__name=...)``: posts of one author through
                    the BelongsTo join, against the same JOIN written by hand
* has-many filter   ``Author.objects.filter(posts__views__gt=...)``: authors with a post
                    over a threshold (an EXISTS), against the same EXISTS written by hand

Prints ops/s (rows/s for the filters) and the ratio to the floor (higher is better; 1.0
is the floor): the median of per-round ratios, the rounds of all contenders interleaved
so a busy machine slows them alike. A benchmark, not a test: nothing here asserts on
timings.
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

from pydantic import BaseModel

from registers.db import BelongsTo, HasMany, database_registry


def measure(work: Callable[[], int]) -> float:
    """Units/second of one run of ``work`` (which returns its unit count)."""
    gc.collect()
    start = time.perf_counter()
    units = work()
    return units / (time.perf_counter() - start)


def race(floor: Callable[[], int], contenders: list[tuple[str, Callable[[], int]]],
         rounds: int) -> list[tuple[str, float, float]]:
    """Rounds of the floor then each contender, interleaved so that a busy machine slows
    all of them alike: (name, best rate, median of the per-round ratios to the floor)."""
    rates: dict[str, list[float]] = {"floor": []}
    ratios: dict[str, list[float]] = {name: [] for name, _ in contenders}
    for _ in range(rounds):
        base = measure(floor)
        rates["floor"].append(base)
        for name, work in contenders:
            rate = measure(work)
            rates.setdefault(name, []).append(rate)
            ratios[name].append(rate / base)
    found = [("floor (sqlite3 + model_validate)", max(rates["floor"]), 1.0)]
    found += [(name, max(rates[name]), statistics.median(ratios[name])) for name, _ in contenders]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one round")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    authors, per_author, lookups = (50, 20, 1000) if args.quick else (200, 50, 4000)
    rounds = 1 if args.quick else args.rounds

    folder = tempfile.mkdtemp(prefix="registers-query-bench-")
    url = f"sqlite:///{os.path.join(folder, 'bench.db')}"

    @database_registry(url, table_name="authors")
    class Author(BaseModel):
        id: int | None = None
        name: str

    @database_registry(url, table_name="posts")
    class Post(BaseModel):
        id: int | None = None
        title: str
        author_id: int | None = None
        views: int = 0

    Post.author = BelongsTo(Author, local_key="author_id")  # type: ignore[attr-defined]
    Author.posts = HasMany(Post, foreign_key="author_id")  # type: ignore[attr-defined]
    Author.objects.bulk_create([{"name": f"author {i}"} for i in range(authors)])
    Post.objects.bulk_create([
        {"title": f"post {a}-{j}", "author_id": a + 1, "views": (a * 7 + j) % 100}
        for a in range(authors) for j in range(per_author)
    ])

    raw = sqlite3.connect(os.path.join(folder, "bench.db"), isolation_level=None)
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("PRAGMA synchronous=NORMAL")
    raw.execute("CREATE INDEX IF NOT EXISTS ix_posts_title ON posts (title)")
    raw.execute("CREATE INDEX IF NOT EXISTS ix_posts_author ON posts (author_id)")
    raw.execute("CREATE INDEX IF NOT EXISTS ix_authors_name ON authors (name)")
    titles = [f"post {i % authors}-{i % per_author}" for i in range(lookups)]
    names = [f"author {i}" for i in range(0, authors, max(1, authors // 40))]
    validate = Post.model_validate
    post_columns = ("id", "title", "author_id", "views")

    def floor_first() -> int:
        for title in titles:
            row = raw.execute(
                "SELECT id, title, author_id, views FROM posts WHERE title = ? "
                "ORDER BY id LIMIT 1", (title,)).fetchone()
            validate(dict(zip(post_columns, row)))
        return len(titles)

    def manager_first() -> int:
        first = Post.objects.first
        for title in titles:
            first(title=title)
        return len(titles)

    def query_first() -> int:
        where = Post.objects.where
        for title in titles:
            where(title=title).first()
        return len(titles)

    def floor_relation() -> int:
        found = 0
        for name in names:
            rows = raw.execute(
                "SELECT posts.id, posts.title, posts.author_id, posts.views FROM posts "
                "LEFT JOIN authors AS r1 ON r1.id = posts.author_id WHERE r1.name = ?",
                (name,)).fetchall()
            found += len([validate(dict(zip(post_columns, r))) for r in rows])
        return found

    def registers_relation() -> int:
        return sum(len(Post.objects.filter(author__name=name)) for name in names)

    author_validate = Author.model_validate
    thresholds = list(range(90, 100))

    def floor_has_many() -> int:
        found = 0
        for views in thresholds:
            rows = raw.execute(
                "SELECT authors.id, authors.name FROM authors WHERE EXISTS (SELECT 1 FROM "
                "posts AS r1 WHERE r1.author_id = authors.id AND r1.views > ?)",
                (views,)).fetchall()
            found += len([author_validate({"id": r[0], "name": r[1]}) for r in rows])
        return found

    def registers_has_many() -> int:
        return sum(len(Author.objects.filter(posts__views__gt=v)) for v in thresholds)

    workloads: list[tuple[str, Callable[[], int], list[tuple[str, Callable[[], int]]]]] = [
        ("first in a loop", floor_first, [("objects.first(title=)", manager_first)]),
    ]
    # Without Q/where (an older registers on PYTHONPATH, for a before/after of first()),
    # only the manager shortcut is measured.
    if hasattr(Post.objects, "where"):
        workloads[0][2].append(("where(title=).first()", query_first))
        # both sides must return the same rows
        assert floor_relation() == registers_relation()
        assert floor_has_many() == registers_has_many()
        workloads += [
            ("relation filter", floor_relation,
             [("filter(author__name=)", registers_relation)]),
            ("has-many filter", floor_has_many,
             [("filter(posts__views__gt=)", registers_has_many)]),
        ]

    results: list[tuple[str, str, float, float]] = []
    for workload, floor, contenders in workloads:
        for name, rate, ratio in race(floor, contenders, rounds):
            results.append((workload, name, rate, ratio))

    print(f"posts: {authors * per_author}, lookups: {lookups}, rounds: {rounds}")
    print(f"{'workload':<18} {'contender':<34} {'best /s':>12} {'x floor':>8}  (median ratio)")
    for workload, name, rate, ratio in results:
        print(f"{workload:<18} {name:<34} {rate:>12,.0f} {ratio:>8.2f}")
    raw.close()
    Post.objects.dispose()


if __name__ == "__main__":
    main()
