"""``prefetch()`` against the hand-written two-query floor, on file SQLite.

``python -m benchmarks.prefetch_bench [--parents 10000] [--rounds 5]``

The floor: ``sqlite3`` by hand, one query for the parents and one ``IN (...)`` query for
their children, every row validated into its pydantic model, children grouped by parent
in a dict. registers: ``Author.objects.all()`` then ``prefetch(authors, "posts")`` and a
read of ``author.posts`` on every parent (served from the prefetched values). A benchmark,
not a test: nothing asserts on timings.
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


class AuthorRow(BaseModel):
    id: int | None = None
    name: str


class PostRow(BaseModel):
    id: int | None = None
    author_id: int
    title: str


def floor(path: str) -> float:
    start = time.perf_counter()
    conn = sqlite3.connect(path)
    authors = [AuthorRow.model_validate({"id": r[0], "name": r[1]})
               for r in conn.execute("SELECT id, name FROM authors ORDER BY id")]
    groups: dict[int, list[PostRow]] = {}
    keys = [a.id for a in authors]
    for i in range(0, len(keys), 5000):
        chunk = keys[i:i + 5000]
        sql = (f"SELECT id, author_id, title FROM posts WHERE author_id IN "
               f"({', '.join('?' * len(chunk))}) ORDER BY id")
        for r in conn.execute(sql, chunk):
            post = PostRow.model_validate({"id": r[0], "author_id": r[1], "title": r[2]})
            groups.setdefault(post.author_id, []).append(post)
    total = sum(len(groups.get(a.id or 0, [])) for a in authors)
    conn.close()
    assert total > 0
    return time.perf_counter() - start


def registers_run(models: Any) -> float:
    from registers.db import prefetch

    Author, _ = models
    start = time.perf_counter()
    authors = Author.objects.all()
    prefetch(authors, "posts")
    total = sum(len(a.posts) for a in authors)
    assert total > 0
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parents", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    from registers.db import HasMany, database_registry, dispose_all

    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "prefetch.db")
        url = f"sqlite:///{path}"

        @database_registry(url, table_name="authors")
        class Author(AuthorRow):
            pass

        @database_registry(url, table_name="posts")
        class Post(PostRow):
            pass

        Author.posts = HasMany(Post, foreign_key="author_id")  # type: ignore[attr-defined]
        Author.objects.bulk_create([{"name": f"a{i}"} for i in range(args.parents)])
        Post.objects.bulk_create([{"author_id": 1 + i % args.parents, "title": f"t{i}"}
                                  for i in range(args.parents * 3)])
        ratios, floors, ours = [], [], []
        for _ in range(args.rounds):
            f = floor(path)
            r = registers_run((Author, Post))
            floors.append(f)
            ours.append(r)
            ratios.append(f / r)
        dispose_all()
    print(f"prefetch of {args.parents:,} parents x 3 children, {args.rounds} rounds")
    print(f"  floor      median {statistics.median(floors) * 1000:8.1f} ms")
    print(f"  registers  median {statistics.median(ours) * 1000:8.1f} ms")
    print(f"  registers speed / floor speed: median {statistics.median(ratios):.2f}x "
          f"(spread {min(ratios):.2f}-{max(ratios):.2f}; target >= 1/1.2 = 0.83x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
